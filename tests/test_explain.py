"""explain(X): the nearest in-distribution version and the per-feature deviation, for every
detector with an encoder and a decoder (skood/_explain.py)."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.exceptions import NotFittedError

from skood import AutoencoderDetector, ConditionalDLSGAN, DLSGANDetector, InvGANDetector

pytestmark = pytest.mark.usefixtures("one_thread")

SHIFTED = (2, 5)
NETS = {"hidden_dims": (32, 32), "max_epochs": 10, "device": "cpu", "random_state": 0}
DETECTORS = {
    "dlsgan": lambda: DLSGANDetector(latent_dim=4, variance_decay=0.99, **NETS),
    "conditional": lambda: ConditionalDLSGAN(latent_dim=4, variance_decay=0.99, **NETS),
    "invgan": lambda: InvGANDetector(latent_dim=2, **NETS),
    "autoencoder": lambda: AutoencoderDetector(latent_dim=2, **NETS),
}
# The share of outliers whose two largest deviations are the two shifted columns: at random
# 1/28 (0.04), for deviations of zeros 0.
LEAST_RATE = {"dlsgan": 0.8, "conditional": 0.8, "invgan": 0.8, "autoencoder": 0.8}


def two_column_table(seed=0, n_rows=1000, n_outliers=50, shift=6.0):
    """Inliers on a curved 2-D manifold in 8 standardized columns; outliers are inliers moved
    by +-``shift`` standard deviations in columns 2 and 5 only."""
    rng = np.random.RandomState(seed)
    mixing = rng.normal(size=(2, 8))
    codes = rng.normal(size=(n_rows + n_outliers, 2))
    X = np.tanh(codes) @ mixing + 0.1 * rng.normal(size=(n_rows + n_outliers, 8))
    X /= X[:n_rows].std(axis=0)
    outliers = X[n_rows:].copy()
    outliers[:, list(SHIFTED)] += shift * rng.choice([-1, 1], size=(n_outliers, 2))
    return X[:n_rows], outliers


@pytest.fixture(scope="module")
def fitted():
    cache = {}

    def get(name):
        if name not in cache:
            X, outliers = two_column_table()
            detector = DETECTORS[name]()
            if name == "conditional":
                detector.fit(X, (X[:, 0] > 0).astype(int))
            else:
                detector.fit(X)
            cache[name] = detector, X, outliers
        return cache[name]

    return get


@pytest.mark.parametrize("name", list(DETECTORS))
def test_explain_names_the_shifted_columns(name, fitted):
    detector, X, outliers = fitted(name)
    nearest, deviation = detector.explain(outliers)
    assert nearest.shape == deviation.shape == outliers.shape
    ranked = np.argsort(-np.abs(deviation) / detector.input_scale_, axis=1)[:, :2]
    rate = np.mean([set(top) == set(SHIFTED) for top in ranked])
    assert rate >= LEAST_RATE[name], rate
    # The deviations of the outliers in the shifted columns exceed those of inliers there.
    _, inlier_deviation = detector.explain(X[:200])
    outlying = np.abs(deviation[:, list(SHIFTED)]).mean()
    assert outlying > 3 * np.abs(inlier_deviation[:, list(SHIFTED)]).mean()


@pytest.mark.parametrize("name", list(DETECTORS))
def test_nearest_is_the_code_shrunk_into_the_typical_region(name, fitted):
    detector, X, outliers = fitted(name)
    rows = np.vstack([X[:20], outliers[:20]])
    codes = detector.transform(rows)
    training = detector.transform(X)
    if name == "autoencoder":  # no prior: a diagonal Gaussian fitted to the training codes
        mean, variance = training.mean(axis=0), training.var(axis=0)
        np.testing.assert_allclose(detector.code_mean_, mean, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(detector.code_variance_, variance, rtol=1e-4)
    else:
        mean = 0.0
        networks = detector._inference_networks()
        variance = detector._latent_prior_variance(networks).double().numpy()
    radius = np.sqrt(np.sum((codes - mean) ** 2 / variance, axis=1))
    typical = detector.typical_latent_radius_
    # The median radius of the training codes, by definition.
    np.testing.assert_allclose(
        typical, np.median(np.sqrt(np.sum((training - mean) ** 2 / variance, axis=1))), rtol=1e-4
    )
    shrink = np.minimum(1.0, typical / radius)
    assert np.any(shrink < 1) and np.any(shrink == 1)
    expected = detector.inverse_transform(mean + (codes - mean) * shrink[:, None])
    nearest, deviation = detector.explain(rows)
    np.testing.assert_allclose(nearest, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(deviation, rows - nearest)
    # Inside the typical region the nearest version is the reconstruction.
    inside = shrink == 1
    reconstruction = detector.inverse_transform(codes[inside])
    np.testing.assert_allclose(nearest[inside], reconstruction, rtol=1e-5, atol=1e-6)


def test_dataframes_come_back_as_dataframes(fitted):
    detector, X, _ = fitted("dlsgan")
    frame = pd.DataFrame(X[:5], columns=[f"c{i}" for i in range(8)], index=list("abcde"))
    named = DLSGANDetector(latent_dim=4, **{**NETS, "max_epochs": 1}).fit(
        pd.DataFrame(X, columns=frame.columns)
    )
    nearest, deviation = named.explain(frame)
    assert isinstance(nearest, pd.DataFrame) and isinstance(deviation, pd.DataFrame)
    assert list(deviation.columns) == list(frame.columns)
    assert list(deviation.index) == list("abcde")
    np.testing.assert_allclose(deviation.to_numpy(), X[:5] - nearest.to_numpy())


@settings(max_examples=20, deadline=None)
@given(rows=arrays(np.float64, (3, 8), elements=st.floats(-1e6, 1e6, allow_nan=False)))
def test_nearest_plus_deviation_is_the_input_and_finite(fitted, rows):
    detector, _, _ = fitted("dlsgan")
    nearest, deviation = detector.explain(rows)
    assert np.all(np.isfinite(nearest))
    np.testing.assert_allclose(nearest + deviation, rows, rtol=1e-12, atol=1e-6)


def test_explain_errors(fitted):
    detector, X, _ = fitted("dlsgan")
    with pytest.raises(NotFittedError):
        DLSGANDetector().explain(X)
    with pytest.raises(ValueError, match="features"):
        detector.explain(X[:, :3])
    with pytest.raises(ValueError, match="NaN"):
        detector.explain(np.full((2, 8), np.nan))
