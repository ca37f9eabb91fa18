"""A grid search run sequentially and under a joblib backend: the check that a cluster
backend (dask, Ray) gives the sequential search's results, shared by test_dask and test_ray."""

import joblib
import numpy as np
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from skood import DLSGANDetector
from skood.metrics import outlier_auroc_scorer


def assert_search_matches_sequential(backend: str) -> None:
    rng = np.random.RandomState(5)
    X = rng.normal(size=(240, 6))
    y = np.where(np.arange(240) < 216, 1, -1)
    X[y == -1] += 4.0
    search = {
        "estimator": DLSGANDetector(max_epochs=2, hidden_dims=(16,), device="cpu", random_state=0),
        "param_grid": {"latent_dim": [2, 4]},
        "scoring": outlier_auroc_scorer,
        "cv": StratifiedKFold(2, shuffle=True, random_state=0),
    }
    sequential = GridSearchCV(**search).fit(X, y)
    with joblib.parallel_config(backend=backend):
        distributed = GridSearchCV(**search, n_jobs=2).fit(X, y)
    np.testing.assert_allclose(
        distributed.cv_results_["mean_test_score"],
        sequential.cv_results_["mean_test_score"],
        atol=1e-6,
    )
    assert distributed.best_params_ == sequential.best_params_
