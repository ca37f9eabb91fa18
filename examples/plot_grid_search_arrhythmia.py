"""
=========================================================
Tune a detector in a Pipeline with GridSearchCV
=========================================================

A skood detector is a scikit-learn estimator, so it tunes like one: here
:class:`~skood.DLSGANDetector` sits in a :class:`~sklearn.pipeline.Pipeline` after a
:class:`~sklearn.preprocessing.StandardScaler`, and
:class:`~sklearn.model_selection.GridSearchCV` picks its latent size and hidden layers by
cross-validated ROC AUC on the training part of Arrhythmia. The outlier scorer ranks by
``decision_function`` with outliers as the positive class. The labels are used by the scorer
only; the detectors never see them. The held-out part is scored once, at the end.
"""

# %%
# The search
# ----------
from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skood import DLSGANDetector
from skood.datasets import load_arrhythmia
from skood.metrics import outlier_auroc_scorer, roc_auc

X, y = load_arrhythmia(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.4, random_state=0, stratify=y)

pipeline = make_pipeline(StandardScaler(), DLSGANDetector(max_epochs=20, random_state=0))
grid = {"dlsgandetector__latent_dim": [16, 32], "dlsgandetector__hidden_dims": [(64,), (128, 128)]}
search = GridSearchCV(
    pipeline,
    grid,
    scoring=outlier_auroc_scorer,
    cv=StratifiedKFold(3, shuffle=True, random_state=0),
)
search.fit(X_train, y_train)

print("best parameters:", search.best_params_)
print(f"cross-validated ROC AUC: {search.best_score_:.3f}")
print(f"held-out ROC AUC: {roc_auc(y_test, search.decision_function(X_test)):.3f}")

# %%
# Cross-validated ROC AUC of each setting
# ---------------------------------------
# The error bars are the standard deviation over the three folds: with 271 training rows and
# about 40 outliers in them, differences smaller than that are noise.
import matplotlib.pyplot as plt
import numpy as np

results = search.cv_results_
labels = [
    f"latent {p['dlsgandetector__latent_dim']}\nhidden {p['dlsgandetector__hidden_dims']}"
    for p in results["params"]
]
fig, axis = plt.subplots(figsize=(7, 3.5))
positions = np.arange(len(labels))
axis.bar(positions, results["mean_test_score"], yerr=results["std_test_score"], capsize=4)
axis.set_xticks(positions, labels)
axis.set_ylim(0.5, 1.0)
axis.set_ylabel("ROC AUC (3-fold CV)")
axis.set_title("DLSGANDetector on Arrhythmia")
fig.tight_layout()
plt.show()
