"""Tune DLSGANDetector inside a Pipeline with GridSearchCV on Arrhythmia.

The outlier scorer ranks by ``decision_function`` with outliers as the positive class; labels
follow scikit-learn's convention (+1 inlier, -1 outlier), as ``load_arrhythmia`` returns them.
The search uses only the training part; the held-out part is scored once at the end.

Run: ``python examples/grid_search_arrhythmia.py`` (under a minute on 2 CPU cores).
"""

from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skood import DLSGANDetector
from skood.datasets import load_arrhythmia
from skood.metrics import outlier_auroc_scorer, roc_auc

X, y = load_arrhythmia(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.4, random_state=0, stratify=y)

pipeline = make_pipeline(StandardScaler(), DLSGANDetector(max_epochs=20, random_state=0))
search = GridSearchCV(
    pipeline,
    {"dlsgandetector__latent_dim": [16, 32], "dlsgandetector__hidden_dims": [(64,), (128, 128)]},
    scoring=outlier_auroc_scorer,
    cv=StratifiedKFold(3, shuffle=True, random_state=0),
)
search.fit(X_train, y_train)  # y is used by the scorer only; the detectors never see it

print("best parameters:", search.best_params_)
print(f"cross-validated ROC AUC: {search.best_score_:.3f}")
print(f"held-out ROC AUC: {roc_auc(y_test, search.decision_function(X_test)):.3f}")
