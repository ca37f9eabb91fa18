"""warm_start: fit continues training the fitted networks."""

import pickle

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from skood import (
    ApproximateMassFlowDetector,
    AutoencoderDetector,
    DLSGANDetector,
    InvGANDetector,
    TrainingDivergedError,
)

MLP = {"hidden_dims": (16,), "device": "cpu", "random_state": 0}
CASES = {
    "dlsgan": (DLSGANDetector, {"latent_dim": 4, **MLP}),
    "msegan": (DLSGANDetector, {"latent_dim": 4, "variant": "msegan", **MLP}),
    "autoencoder": (AutoencoderDetector, {"latent_dim": 2, **MLP}),
    "flow": (ApproximateMassFlowDetector, {"n_couplings": 2, "batch_size": 32, **MLP}),
    "invgan": (InvGANDetector, {"latent_dim": 2, "n_centres": 4, "n_kmeans_samples": 300, **MLP}),
    "invgan-encoded": (
        InvGANDetector,
        {"latent_dim": 2, "n_centres": 4, "n_kmeans_samples": 300, "kmeans_on": "encoded", **MLP},
    ),
}
IMAGE_FLOW = {
    "input_shape": (1, 8, 8),
    "n_blocks": 1,
    "mid_channels": 4,
    "batch_size": 16,
    "device": "cpu",
    "random_state": 0,
}


# Tiny networks: one thread (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def X():
    return np.random.RandomState(0).normal(size=(100, 5))


def _make(case: str, **params):
    cls, base = CASES[case]
    return cls(**{**base, **params})


@pytest.mark.parametrize("case", list(CASES))
def test_warm_fits_train_exactly_as_one_longer_fit(case, X):
    # Optimizer moments, decayed learning rates, the traced variance, the batch order and the
    # latent noise all carry on: 2 + 3 epochs are the 5-epoch fit, to the last bit.
    once = _make(case, max_epochs=5).fit(X)
    warm = _make(case, max_epochs=2, warm_start=True).fit(X)
    first_scores = warm.score_samples(X)
    warm.set_params(max_epochs=3).fit(X)
    assert len(warm.history_) == 5
    np.testing.assert_array_equal(warm.score_samples(X), once.score_samples(X))
    assert warm.offset_ == once.offset_
    assert not np.array_equal(first_scores, warm.score_samples(X))
    # The losses of the last three epochs are those of the longer fit's (same batches, same
    # noise), not a repeat of its first ones.
    np.testing.assert_array_equal(warm.history_[:, "train_loss"], once.history_[:, "train_loss"])


def test_image_flow_continues_its_dequantization_noise(images):
    once = ApproximateMassFlowDetector(**IMAGE_FLOW, max_epochs=3).fit(images)
    warm = ApproximateMassFlowDetector(**IMAGE_FLOW, max_epochs=1, warm_start=True).fit(images)
    warm.set_params(max_epochs=2).fit(images)
    np.testing.assert_array_equal(warm.score_samples(images), once.score_samples(images))


def test_without_warm_start_fit_trains_new_networks(X):
    detector = _make("dlsgan", max_epochs=2)
    scores = detector.fit(X).score_samples(X)
    detector.fit(X)
    assert len(detector.history_) == 2
    np.testing.assert_array_equal(detector.score_samples(X), scores)
    # And warm_start on an unfitted detector is an ordinary fit.
    fresh = _make("dlsgan", max_epochs=2, warm_start=True).fit(X)
    np.testing.assert_array_equal(fresh.score_samples(X), scores)


@pytest.mark.parametrize("case", ["dlsgan", "invgan-encoded"])
def test_warm_start_after_pickling_continues_the_same_way(case, X):
    detector = _make(case, max_epochs=2, warm_start=True).fit(X)
    restored = pickle.loads(pickle.dumps(detector))
    detector.set_params(max_epochs=2).fit(X)
    restored.set_params(max_epochs=2).fit(X)
    assert len(restored.history_) == 4
    np.testing.assert_array_equal(restored.score_samples(X), detector.score_samples(X))


def test_continuing_on_new_rows_keeps_the_standardization(X):
    detector = _make("autoencoder", max_epochs=2, warm_start=True).fit(X)
    mean, scale = detector.input_mean_.copy(), detector.input_scale_.copy()
    shifted = X[:60] + 0.5
    detector.set_params(contamination=0.2).fit(shifted)
    # The networks model the first fit's standardized units, so those stay; offset_ is the
    # new contamination's percentile of the new rows' scores.
    np.testing.assert_array_equal(detector.input_mean_, mean)
    np.testing.assert_array_equal(detector.input_scale_, scale)
    assert detector.offset_ == pytest.approx(np.percentile(detector.score_samples(shifted), 20))


@pytest.mark.parametrize(
    ("changed", "message"),
    [({"lr": 1e-2}, r"lr \(was 0\.001, now 0\.01\)"), ({"latent_dim": 3}, r"latent_dim \(was 4")],
)
def test_changing_a_network_parameter_is_refused(changed, message, X):
    detector = _make("dlsgan", max_epochs=2, warm_start=True).fit(X)
    scores = detector.score_samples(X)
    detector.set_params(**changed)
    with pytest.raises(ValueError, match=message):
        detector.fit(X)
    # Refused before anything changed: the fitted model scores as before.
    np.testing.assert_array_equal(detector.score_samples(X), scores)
    assert len(detector.history_) == 2
    # Without warm start the new value trains new networks.
    detector.set_params(warm_start=False).fit(X)
    assert len(detector.history_) == 2


def test_scoring_and_seed_parameters_may_change(X):
    detector = _make("dlsgan", max_epochs=1, warm_start=True).fit(X)
    detector.set_params(score_type="reconstruction", random_state=5, verbose=0).fit(X)
    assert len(detector.history_) == 2
    np.testing.assert_array_less(detector.score_samples(X), 0.0)  # minus squared errors


def test_a_different_width_is_refused(X):
    detector = _make("flow", max_epochs=1, warm_start=True).fit(X)
    with pytest.raises(ValueError, match="features"):
        detector.fit(X[:, :4])
    assert len(detector.history_) == 1


def test_a_failed_continuation_leaves_the_detector_unfitted(X, monkeypatch):
    detector = _make("invgan", max_epochs=1, warm_start=True).fit(X)

    def diverge(*args, **kwargs):
        raise TrainingDivergedError("diverged")

    monkeypatch.setattr(detector.net_, "partial_fit", diverge)
    with pytest.raises(TrainingDivergedError):
        detector.fit(X)
    with pytest.raises(NotFittedError):
        detector.score_samples(X)


def test_random_state_saved_on_another_device_kind_restarts_the_streams(X):
    # A CUDA generator's state (16 bytes) does not fit a CPU generator: after a CUDA fit is
    # loaded on a CPU-only machine, continuing draws new streams instead of failing.
    detector = _make("dlsgan", max_epochs=1, warm_start=True).fit(X)
    reference = pickle.loads(pickle.dumps(detector)).fit(X)
    cuda_like = np.zeros(16, dtype=np.uint8)
    detector.net_._noise_state = cuda_like
    detector.net_._batch_order_state = cuda_like
    detector.fit(X)
    assert len(detector.history_) == 2
    assert np.all(np.isfinite(detector.score_samples(X)))
    assert not np.array_equal(detector.score_samples(X), reference.score_samples(X))


def test_too_few_rows_for_encoded_centres_are_refused_before_training(X):
    detector = _make("invgan-encoded", max_epochs=1, warm_start=True).fit(X)
    scores = detector.score_samples(X)
    with pytest.raises(ValueError, match="only 3 rows"):
        detector.fit(X[:3])
    np.testing.assert_array_equal(detector.score_samples(X), scores)
