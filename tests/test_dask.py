"""Dask: scoring dask arrays block by block, and grid searches on a dask.distributed cluster.

Every detector's ``score_samples``, ``decision_function`` and ``predict`` take a 2-D dask
array and return a lazy dask array equal to the NumPy result; on a ``LocalCluster`` the fitted
model is shipped to the worker processes, never refitted; ``GridSearchCV`` under joblib's dask
backend gives the sequential search's scores.
"""

import numpy as np
import pytest
from _detectors import DETECTORS, fit
from _parallel_search import assert_search_matches_sequential
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.ensemble import IsolationForest

from skood import BaggingDetector, ConformalDetector, DLSGANDetector

da = pytest.importorskip("dask.array")

pytestmark = pytest.mark.usefixtures("one_thread")

METHODS = ("score_samples", "decision_function", "predict")


def _data(seed=0, n=300, width=6):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, width))
    y = (X[:, 0] > 0).astype(int)
    return X, y


@pytest.fixture(scope="module")
def fitted():
    cache = {}

    def get(name):
        if name not in cache:
            X, y = _data()
            if name == "bagging":
                cache[name] = BaggingDetector(IsolationForest(), n_estimators=3, random_state=0)
                cache[name].fit(X)
            elif name == "conformal":
                cache[name] = ConformalDetector(DLSGANDetector(max_epochs=2, random_state=0))
                cache[name].set_params(random_state=0).fit(X)
            else:
                cache[name] = fit(name, X, y)
        return cache[name]

    return get


@pytest.mark.parametrize("name", [*DETECTORS, "bagging", "conformal"])
def test_dask_arrays_score_as_numpy(name, fitted):
    detector = fitted(name)
    X, _ = _data(seed=1, n=250)
    blocks = da.from_array(X, chunks=(64, 4))  # uneven row blocks, columns split too
    for method in METHODS:
        lazy = getattr(detector, method)(blocks)
        assert isinstance(lazy, da.Array), f"{name}.{method} computed eagerly"
        assert lazy.shape == (250,)
        expected = getattr(detector, method)(X)
        result = lazy.compute()
        assert result.dtype == expected.dtype
        # Equal up to the float rounding of a smaller batch (as a row scored alone is).
        np.testing.assert_allclose(result, expected, rtol=1e-9, err_msg=f"{name}.{method}")


@settings(max_examples=10, deadline=None)
@given(rows=st.integers(1, 120), n=st.integers(1, 250))
def test_any_row_chunking_gives_the_numpy_scores(fitted, rows, n):
    detector = fitted("dlsgan")
    X, _ = _data(seed=2, n=n)
    lazy = detector.score_samples(da.from_array(X, chunks=(rows, -1)))
    np.testing.assert_allclose(lazy.compute(), detector.score_samples(X), rtol=1e-9)


def test_conformal_fdr_flags_the_whole_batch(fitted):
    # Benjamini-Hochberg ranks every p-value of the batch, so it cannot run block by block.
    detector = fitted("conformal")
    X, _ = _data(seed=3, n=200)
    X[:20] += 6.0
    detector.set_params(fdr=True)
    try:
        labels = detector.predict(da.from_array(X, chunks=(50, -1)))
        np.testing.assert_array_equal(labels, detector.predict(X))
        assert (labels[:20] == -1).mean() > 0.5
    finally:
        detector.set_params(fdr=False)


def test_dask_input_must_be_rows(fitted):
    detector = fitted("dlsgan")
    with pytest.raises(ValueError, match="2-D dask array"):
        detector.score_samples(da.zeros(10, chunks=5))


@pytest.fixture(scope="module")
def cluster_client():
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


def test_scoring_on_worker_processes_ships_the_fitted_model(cluster_client, fitted):
    detector = fitted("dlsgan")
    X, _ = _data(seed=4, n=400)
    lazy = detector.score_samples(da.from_array(X, chunks=(100, -1)))
    np.testing.assert_allclose(cluster_client.compute(lazy).result(), detector.score_samples(X))
    # The detector was not refitted on the way: its networks are those of the local model.
    shipped = cluster_client.submit(lambda d: d.latent_variance_, detector).result()
    np.testing.assert_array_equal(shipped, detector.latent_variance_)


def test_grid_search_under_the_dask_backend_matches_the_sequential_one(cluster_client):
    assert_search_matches_sequential("dask")
