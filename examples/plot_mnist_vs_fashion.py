"""
======================================================
Image OOD: DLSGAN trained on MNIST flags Fashion-MNIST
======================================================

Images stay 2-D for scikit-learn: one flattened 28 x 28 image per row, scaled to [-1, 1] by the
loaders, and ``input_shape=(1, 28, 28)`` selects DLSGAN's convolutional networks. The score is
DLSGAN's default, minus the negative log-likelihood of the encoded latent (higher = more
normal); the same fitted model also gives the reconstruction score, samples and
reconstructions. Needs the MNIST and Fashion-MNIST files (``SKOOD_DATA``, or ``download=True``
to fetch them once).

**Training length.** By default the detector trains on 4,000 digits for 3 epochs (375
optimisation steps, about 15 minutes on one CPU core). When the environment variable
``SKOOD_EXAMPLES_QUICK=1`` is set, as it is when this site is built in continuous integration,
it trains on 2,000 digits for 3 epochs (190 steps, about two minutes on two CPU cores), and the
numbers and pictures on this page come from that short run: the GAN has only begun to learn
digits, so reconstructions and samples are blurry strokes, far from what the papers' 30 epochs
of 60,000 digits give (see the benchmarks page for the real-size runs). The setting used is
printed below.
"""

# %%
# Data and setting
# ----------------
import os

import numpy as np

from skood.datasets import load_fashion_mnist, load_mnist

QUICK = os.environ.get("SKOOD_EXAMPLES_QUICK", "")
if QUICK == "smoke":  # the test suite's: every line runs, the numbers mean nothing
    train_size, test_size, epochs = 256, 100, 2
elif QUICK not in ("", "0"):
    train_size, test_size, epochs = 2000, 500, 3
else:
    train_size, test_size, epochs = 4000, 1000, 3
print(f"setting: {train_size} training digits, {epochs} epochs, {test_size} + {test_size} test")

digits, _ = load_mnist(subset="train", return_X_y=True, download=True)
held_out, _ = load_mnist(subset="test", return_X_y=True, download=True)
fashion, _ = load_fashion_mnist(subset="test", return_X_y=True, download=True)
X_train = digits[:train_size]
X_test = np.r_[held_out[:test_size], fashion[:test_size]]
y_test = np.r_[np.ones(test_size), -np.ones(test_size)]  # +1 digit, -1 Fashion-MNIST

# %%
# Train, one epoch per call
# -------------------------
# With ``warm_start=True`` each ``fit`` continues the last one, exactly as one fit of ``epochs``
# epochs would train, so the AUROC can be watched as training goes on.
from skood import DLSGANDetector
from skood.metrics import roc_auc, tnr_at_tpr

detector = DLSGANDetector(
    input_shape=(1, 28, 28), latent_dim=64, max_epochs=1, warm_start=True, random_state=0
)
auroc_by_epoch = []
for epoch in range(1, epochs + 1):
    detector.fit(X_train)
    auroc_by_epoch.append(roc_auc(y_test, detector.score_samples(X_test)))
    print(f"epoch {epoch}: NLP AUROC {auroc_by_epoch[-1]:.3f}")

scores = {}
for score_type in ("nlp", "reconstruction"):
    scores[score_type] = detector.set_params(score_type=score_type).score_samples(X_test)
    print(
        f"{score_type:<15} AUROC {roc_auc(y_test, scores[score_type]):.3f}  "
        f"TNR@95%TPR {tnr_at_tpr(y_test, scores[score_type]):.3f}"
    )
detector.set_params(score_type="nlp")

# %%
# Scores of digits and of Fashion-MNIST items
# -------------------------------------------
import matplotlib.pyplot as plt

from skood.plotting import plot_image_grid, plot_roc_curves, plot_score_histograms

fig, axes = plt.subplots(1, 2, figsize=(10, 4))
plot_score_histograms(y_test, scores["nlp"], clip_percentile=1, ax=axes[0])
axes[0].set_title("DLSGAN NLP: digits (inliers) vs Fashion-MNIST")
plot_roc_curves(y_test, {f"DLSGAN {name}": values for name, values in scores.items()}, ax=axes[1])
fig.tight_layout()
plt.show()

# %%
# Reconstructions and samples
# ---------------------------
# ``inverse_transform(transform(X))`` is G(E(x)); ``sample`` decodes draws of the scaled latent
# prior. A model trained long enough returns digits as digits and Fashion-MNIST items as the
# digits it finds nearest; after a short run (the quick setting) both are still blurry strokes.
images = plot_image_grid(
    {
        "digits": X_test[:10],
        "G(E(digit))": detector.inverse_transform(detector.transform(X_test[:10])),
        "fashion": X_test[-10:],
        "G(E(fashion))": detector.inverse_transform(detector.transform(X_test[-10:])),
        "samples": detector.sample(10, random_state=0),
    },
    image_shape=(1, 28, 28),
)
plt.show()
