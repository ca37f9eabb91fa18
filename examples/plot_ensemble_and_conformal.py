"""
==============================================================
Steadier scores with an ensemble, flags with a guarantee
==============================================================

Two meta-detectors wrap any outlier detector, skood's or scikit-learn's.
:class:`~skood.BaggingDetector` trains several members that differ by seed (and optionally by
rows and features) and averages their rank-normalised scores, which removes much of the
seed-to-seed variance of a neural detector. :class:`~skood.ConformalDetector` calibrates a
detector's scores on held-out inliers into p-values, so that flagging ``p <= alpha`` flags at
most a fraction ``alpha`` of inliers, whatever the detector.
"""

# %%
# Seed variance of one network, and of an ensemble
# ------------------------------------------------
# Five DLSGAN fits on the training part of Arrhythmia that differ only by ``random_state``,
# beside an ensemble of five members.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from skood import BaggingDetector, DLSGANDetector
from skood.datasets import load_arrhythmia
from skood.metrics import roc_auc

X, y = load_arrhythmia(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.4, random_state=0, stratify=y)
scaler = StandardScaler().fit(X_train)
X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)

single = [
    roc_auc(y_test, DLSGANDetector(random_state=seed).fit(X_train).score_samples(X_test))
    for seed in range(5)
]
ensemble = BaggingDetector(DLSGANDetector(), n_estimators=5, random_state=0).fit(X_train)
ensemble_auc = roc_auc(y_test, ensemble.score_samples(X_test))
print("single networks, ROC AUC:", " ".join(f"{value:.3f}" for value in single))
print(f"ensemble of 5, ROC AUC: {ensemble_auc:.3f}")

fig, axis = plt.subplots(figsize=(6, 3))
axis.scatter(single, np.zeros(5), label="one DLSGAN, five seeds", s=60)
axis.scatter([ensemble_auc], [0], marker="*", s=250, label="BaggingDetector, 5 members")
axis.set_yticks([])
axis.set_xlabel("held-out ROC AUC on Arrhythmia")
axis.legend(loc="upper left")
fig.tight_layout()
plt.show()

# %%
# Conformal p-values
# ------------------
# The training rows include outliers (Arrhythmia is unlabelled for the detector), so the
# calibration rows are drawn from the inliers of the training part: the guarantee holds for
# rows exchangeable with them. The p-values of held-out inliers are close to uniform; those of
# outliers pile up near zero when the detector separates them.
from sklearn.ensemble import IsolationForest

from skood import ConformalDetector

inliers = X_train[y_train == 1]
conformal = ConformalDetector(IsolationForest(random_state=0), alpha=0.1, random_state=0)
conformal.fit(inliers)
p_values = conformal.p_values(X_test)
flagged = conformal.predict(X_test) == -1
# The guarantee is on average over calibration draws: one draw may flag slightly more.
print(f"inliers flagged at alpha=0.1: {flagged[y_test == 1].mean():.3f} (0.1 on average)")
print(f"outliers flagged at alpha=0.1: {flagged[y_test == -1].mean():.3f}")

fig, axis = plt.subplots(figsize=(6, 3.5))
bins = np.linspace(0, 1, 21)
axis.hist(p_values[y_test == 1], bins=bins, alpha=0.6, density=True, label="held-out inliers")
axis.hist(p_values[y_test == -1], bins=bins, alpha=0.6, density=True, label="outliers")
axis.axvline(0.1, color="black", linestyle="--", label="alpha = 0.1")
axis.set_xlabel("conformal p-value")
axis.set_ylabel("density")
axis.legend()
fig.tight_layout()
plt.show()
