"""
=====================================================
Compare DLSGAN with IsolationForest and OneClassSVM
=====================================================

Every skood detector follows scikit-learn's orientation (higher ``score_samples`` = more
normal), so the same metric and plotting code serves all of them. This example fits DLSGAN's
two scores (the negative log-likelihood of the encoded latent and the reconstruction error),
:class:`~sklearn.ensemble.IsolationForest` and :class:`~sklearn.svm.OneClassSVM` on the
training part of the embedded Arrhythmia data, and compares them on a held-out part.
"""

# %%
# Data
# ----
# Arrhythmia (ODDS): 452 patients, 274 features, 66 outliers. Labels follow scikit-learn:
# +1 inlier, -1 outlier. The detectors never see the labels; they only rank the test rows.
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from skood.datasets import load_arrhythmia

X, y = load_arrhythmia(return_X_y=True)
X_train, X_test, _, y_test = train_test_split(X, y, test_size=0.4, random_state=0)
scaler = StandardScaler().fit(X_train)
X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
print(f"{len(X_train)} training rows, {len(X_test)} test rows, {(y_test == -1).sum()} outliers")

# %%
# Fit the detectors and score the test rows
# -----------------------------------------
from sklearn.ensemble import IsolationForest
from sklearn.svm import OneClassSVM

from skood import DLSGANDetector
from skood.metrics import average_precision, roc_auc, tnr_at_tpr

detectors = {
    "DLSGAN NLP": DLSGANDetector(random_state=0),
    "DLSGAN reconstruction": DLSGANDetector(score_type="reconstruction", random_state=0),
    "IsolationForest": IsolationForest(random_state=0),
    "OneClassSVM": OneClassSVM(gamma="auto"),
}
scores = {}
for name, detector in detectors.items():
    scores[name] = detector.fit(X_train).score_samples(X_test)
    print(
        f"{name:<24} ROC AUC {roc_auc(y_test, scores[name]):.3f}  "
        f"AP {average_precision(y_test, scores[name]):.3f}  "
        f"TNR@95%TPR {tnr_at_tpr(y_test, scores[name]):.3f}"
    )

# %%
# Score distributions and ROC curves
# ----------------------------------
# A good score separates the two histograms; the ROC curve plots the fraction of outliers
# flagged against the fraction of inliers flagged as the threshold rises.
import matplotlib.pyplot as plt

from skood.plotting import plot_roc_curves, plot_score_histograms

fig, axes = plt.subplots(2, 2, figsize=(9, 6.5))
for axis, (name, values) in zip(axes.flat, scores.items(), strict=True):
    # Neural scores have long lower tails; clipping the extreme 2% keeps the bulk readable.
    plot_score_histograms(y_test, values, clip_percentile=2, ax=axis)
    axis.set_title(name)
fig.tight_layout()
plt.show()

# %%
fig, axis = plt.subplots(figsize=(5.5, 5))
plot_roc_curves(y_test, scores, ax=axis)
axis.set_title("Arrhythmia, held-out rows")
fig.tight_layout()
plt.show()

# %%
# DLSGAN's latent spectrum
# ------------------------
# DLSGAN traces the variance of each coordinate of the encoded latent and scales the latent by
# it: the coordinates the data use keep a large traced variance while the others shrink. The
# lighter lines are earlier epochs.
from skood.plotting import plot_latent_spectrum

fig, axis = plt.subplots(figsize=(6, 4))
plot_latent_spectrum({"DLSGAN": detectors["DLSGAN NLP"]}, per_epoch=True, ax=axis)
fig.tight_layout()
plt.show()
