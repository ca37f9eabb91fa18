"""partial_fit: one pass over each chunk, continuing the networks as warm_start does."""

import numpy as np
import pytest
from test_warm_start import CASES, _make

from skood import ConditionalDLSGAN, DMRDetector, PostHocDetector

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def X():
    return np.random.RandomState(0).normal(size=(120, 5))


@pytest.mark.parametrize("case", list(CASES))
def test_passes_over_the_same_rows_train_as_one_fit(case, X):
    # Three calls on the same rows are the 3-epoch fit, to the last bit.
    once = _make(case, max_epochs=3).fit(X)
    chunked = _make(case, max_epochs=30)  # max_epochs plays no part in partial_fit
    for _ in range(3):
        chunked.partial_fit(X)
    np.testing.assert_array_equal(chunked.score_samples(X), once.score_samples(X))
    assert len(chunked.history_) == 3


def test_chunks_continue_the_networks_and_keep_the_first_scaling(X):
    rng = np.random.RandomState(1)
    first, second = X[:60] * 3.0 + 1.0, rng.normal(size=(60, 5))
    detector = _make("dlsgan").partial_fit(first)
    scale, mean = detector.input_scale_.copy(), detector.input_mean_.copy()
    before = detector.score_samples(X)
    detector.partial_fit(second)
    np.testing.assert_array_equal(detector.input_scale_, scale)
    np.testing.assert_array_equal(detector.input_mean_, mean)
    assert not np.array_equal(detector.score_samples(X), before)
    # The same two chunks in the same order: the same model.
    again = _make("dlsgan").partial_fit(first).partial_fit(second)
    np.testing.assert_array_equal(again.score_samples(X), detector.score_samples(X))


def test_the_threshold_comes_from_the_last_chunk(X):
    detector = _make("autoencoder", contamination=0.2).partial_fit(X[:60]).partial_fit(X[60:])
    expected = np.percentile(detector.score_samples(X[60:]), 20.0)
    assert detector.offset_ == pytest.approx(expected, rel=1e-9)


def test_parameters_that_shape_the_networks_cannot_change_between_chunks(X):
    detector = _make("dlsgan").partial_fit(X)
    detector.set_params(latent_dim=8)
    with pytest.raises(ValueError, match="latent_dim"):
        detector.partial_fit(X)


def test_supervised_partial_fit_takes_labels(X):
    y = (X[:, 0] > 0).astype(int)
    params = {"latent_dim": 4, "hidden_dims": (16,), "device": "cpu", "random_state": 0}
    once = ConditionalDLSGAN(max_epochs=2, **params).fit(X, y)
    chunked = ConditionalDLSGAN(**params).partial_fit(X, y).partial_fit(X, y)
    np.testing.assert_array_equal(chunked.score_samples(X), once.score_samples(X))


@pytest.mark.parametrize("cls", [DMRDetector, PostHocDetector])
def test_detectors_without_warm_start_have_no_partial_fit(cls):
    # Their fits are several stages that cannot be resumed by one pass.
    assert not hasattr(cls(), "partial_fit")


def test_dask_ml_incremental_trains_block_by_block(X):
    da = pytest.importorskip("dask.array")
    wrappers = pytest.importorskip("dask_ml.wrappers")
    from skood.metrics import outlier_auroc_scorer

    rows = np.random.RandomState(2).normal(size=(180, 5))
    wrapped = wrappers.Incremental(
        _make("dlsgan", standardize=False), scoring=outlier_auroc_scorer, shuffle_blocks=False
    ).fit(da.from_array(rows, chunks=(60, -1)))
    by_hand = _make("dlsgan", standardize=False)
    for start in (0, 60, 120):
        by_hand.partial_fit(rows[start : start + 60])
    np.testing.assert_array_equal(wrapped.estimator_.score_samples(X), by_hand.score_samples(X))
