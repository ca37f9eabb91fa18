"""
=============================================================
Edit a row toward a class, and explain what makes a row odd
=============================================================

:class:`~skood.ConditionalDLSGAN` trains a DLSGAN against a fixed random linear classifier on
its scaled latent, so each class becomes a direction in latent space: ``edit_path`` moves a
real row along it and decodes, a continuous "what would this row look like in the other
class". Every detector with an encoder and a decoder also has ``explain``: the nearest
in-distribution version of a row and the per-feature deviation from it, which names the
features that make an outlier unusual.
"""

# %%
# Editing breast-cancer rows toward the other diagnosis
# -----------------------------------------------------
# The diagnosis is the class. An independent classifier, a logistic regression trained on the
# same rows, judges the edits: along the path its probability of the target class should rise.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skood import ConditionalDLSGAN

X, y = load_breast_cancer(return_X_y=True)  # y: 1 benign, 0 malignant
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
model = ConditionalDLSGAN(latent_dim=16, max_epochs=200, variance_decay=0.99, random_state=0)
model.fit(X_train, y_train)
judge = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X_train, y_train)
print(f"judge accuracy on clean test rows: {judge.score(X_test, y_test):.3f}")

malignant = X_test[y_test == 0][:8]
values = np.linspace(-1.0, 1.0, 9)
paths = model.edit_path(malignant, attribute=1, values=values)  # toward benign
benign_probability = judge.predict_proba(paths.reshape(-1, X.shape[1]))[:, 1]
benign_probability = benign_probability.reshape(len(malignant), len(values))

fig, axis = plt.subplots(figsize=(6, 4))
axis.plot(values, benign_probability.T, color="tab:blue", alpha=0.6)
axis.set_xlabel("edit value (standard deviations of the classifier output toward benign)")
axis.set_ylabel("judge's probability of benign")
axis.set_title("Eight malignant test rows edited toward benign")
fig.tight_layout()
plt.show()

# %%
# Which features make an outlier unusual
# --------------------------------------
# A synthetic table: inliers on a curved 2-D surface in 8 columns, outliers moved by 6
# standard deviations in columns 2 and 5 only. ``explain`` should blame those two columns.
from skood import DLSGANDetector

rng = np.random.RandomState(0)
mixing = rng.normal(size=(2, 8))
codes = rng.normal(size=(1050, 2))
table = np.tanh(codes) @ mixing + 0.1 * rng.normal(size=(1050, 8))
table /= table[:1000].std(axis=0)
inliers, outliers = table[:1000], table[1000:].copy()
outliers[:, [2, 5]] += 6 * rng.choice([-1, 1], size=(50, 2))

detector = DLSGANDetector(latent_dim=4, max_epochs=10, variance_decay=0.99, random_state=0)
detector.fit(inliers)
nearest, deviation = detector.explain(outliers)
standardized = np.abs(deviation) / detector.input_scale_
top_two = np.sort(np.argsort(-standardized, axis=1)[:, :2], axis=1)
print(
    "outliers whose two largest deviations are columns 2 and 5:",
    np.mean((top_two == [2, 5]).all(axis=1)),
)

_, inlier_deviation = detector.explain(inliers[:50])
fig, axis = plt.subplots(figsize=(6, 3.5))
columns = np.arange(8)
axis.bar(columns - 0.2, standardized.mean(axis=0), width=0.4, label="outliers")
axis.bar(
    columns + 0.2,
    (np.abs(inlier_deviation) / detector.input_scale_).mean(axis=0),
    width=0.4,
    label="inliers",
)
axis.set_xticks(columns)
axis.set_xlabel("column")
axis.set_ylabel("mean |deviation| (standard deviations)")
axis.legend()
fig.tight_layout()
plt.show()
