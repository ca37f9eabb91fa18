"""Ray: a grid search under Ray's joblib backend gives the sequential search's scores."""

import joblib
import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from skood import DLSGANDetector
from skood.metrics import outlier_auroc_scorer

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def ray_backend():
    from ray.util.joblib import register_ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    register_ray()
    yield
    ray.shutdown()


def test_grid_search_under_the_ray_backend_matches_the_sequential_one(ray_backend):
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
    with joblib.parallel_config(backend="ray"):
        distributed = GridSearchCV(**search, n_jobs=2).fit(X, y)
    np.testing.assert_allclose(
        distributed.cv_results_["mean_test_score"],
        sequential.cv_results_["mean_test_score"],
        atol=1e-6,
    )
    assert distributed.best_params_ == sequential.best_params_
