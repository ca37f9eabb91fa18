"""AutoencoderDetector: reconstruction scores, training, persistence."""

import pickle

import numpy as np
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


def test_training_lowers_the_loss_and_round_trips():
    rng = np.random.RandomState(1)
    X = _plane_data(rng, 300)
    det = AutoencoderDetector(max_epochs=8, **TINY).fit(X)
    losses = det.history_[:, "train_loss"]
    assert losses[-1] < losses[0] and np.all(np.isfinite(losses))
    restored = pickle.loads(pickle.dumps(det))
    np.testing.assert_array_equal(restored.score_samples(X), det.score_samples(X))
    again = AutoencoderDetector(max_epochs=8, **TINY).fit(X)
    np.testing.assert_array_equal(again.score_samples(X), det.score_samples(X))
