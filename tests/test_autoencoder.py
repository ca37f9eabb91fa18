"""AutoencoderDetector: reconstruction scores, training, the latent API. The outlier contract,
persistence and seeds are checked for every detector by skood.utils.estimator_checks
(tests/test_common.py)."""

import copy

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from skood import AutoencoderDetector

TINY = {"latent_dim": 2, "hidden_dims": (32, 32), "device": "cpu", "random_state": 0}


def _plane_data(rng, n):
    # Points on a 2-D plane in 6-D: an autoencoder with a 2-D bottleneck can reconstruct them.
    basis = np.array([[1, 0, 1, 0, 1, 0], [0, 1, 0, 1, 0, 1]], dtype=float)
    return rng.normal(size=(n, 2)) @ basis


def test_off_plane_points_reconstruct_worse():
    rng = np.random.RandomState(0)
    train, inliers = _plane_data(rng, 400), _plane_data(rng, 100)
    outliers = _plane_data(rng, 30) + rng.normal(scale=1.5, size=(30, 6))
    det = AutoencoderDetector(max_epochs=40, **TINY).fit(train)
    scores = det.score_samples(np.vstack([inliers, outliers]))
    assert roc_auc_score(np.r_[np.ones(100), np.zeros(30)], scores) > 0.95
    # score_samples is minus the mean squared reconstruction error in standardized units
    standardized = (inliers - det.input_mean_) / det.input_scale_
    decoded = (det.inverse_transform(det.transform(inliers)) - det.input_mean_) / det.input_scale_
    np.testing.assert_allclose(
        det.score_samples(inliers), -((standardized - decoded) ** 2).mean(axis=1), rtol=1e-6
    )


def test_training_lowers_the_loss():
    # Pickling and seeds: check_pickle_round_trip, check_random_state (tests/test_common.py).
    rng = np.random.RandomState(1)
    X = _plane_data(rng, 300)
    det = AutoencoderDetector(max_epochs=8, **TINY).fit(X)
    losses = det.history_[:, "train_loss"]
    assert losses[-1] < losses[0] and np.all(np.isfinite(losses))


def test_scores_and_latent_api_equal_the_networks():
    """score_samples is -mean((x - D(E(x)))**2) in standardized units, transform E(x),
    inverse_transform D(z) in original units, sample(n, random_state=r) decodes
    RandomState(r).standard_normal((n, latent_dim)); all from the fitted networks."""
    rng = np.random.RandomState(2)
    X = 5.0 + _plane_data(rng, 120) * np.array([1.0, 3.0, 0.5, 2.0, 10.0, 1.0])
    det = AutoencoderDetector(max_epochs=2, **TINY).fit(X)
    decoder = copy.deepcopy(det.net_.module_).double().eval()
    encoder = copy.deepcopy(det.net_.encoder_).double().eval()
    standardized = (X - det.input_mean_) / det.input_scale_

    def decode(latents):
        with torch.no_grad():
            return decoder.network(torch.as_tensor(latents)).numpy()

    with torch.no_grad():
        codes = encoder(torch.as_tensor(standardized))[1].numpy()
    expected = -((standardized - decode(codes)) ** 2).mean(axis=1)
    np.testing.assert_allclose(det.score_samples(X), expected, rtol=1e-10)
    np.testing.assert_allclose(det.transform(X), codes, rtol=1e-10, atol=1e-12)
    latents = rng.normal(size=(6, 2))
    in_units = decode(latents) * det.input_scale_ + det.input_mean_
    np.testing.assert_allclose(det.inverse_transform(latents), in_units, rtol=1e-10)
    draws = np.random.RandomState(4).standard_normal((5, 2))
    in_units = decode(draws) * det.input_scale_ + det.input_mean_
    np.testing.assert_allclose(det.sample(5, random_state=4), in_units, rtol=1e-10)
