"""Property-based tests (hypothesis) of the outlier contract on one fitted DLSGANDetector.

hypothesis does not allow function-scoped fixtures in ``@given`` tests, so the detector is fitted
once per session through a cached function and never modified.
"""

from functools import lru_cache

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.base import clone

from skood import DLSGANDetector

N_FEATURES = 3
LATENT_DIM = 3


@lru_cache(maxsize=1)
def _detector() -> DLSGANDetector:
    X = np.random.RandomState(0).normal(size=(120, N_FEATURES))
    return DLSGANDetector(
        max_epochs=2, latent_dim=LATENT_DIM, hidden_dims=(8,), device="cpu", random_state=0
    ).fit(X)


# Moderate values most of the time, and any finite float64 (up to +-1.8e308) some of the time.
finite = st.one_of(
    st.floats(-1e12, 1e12, allow_nan=False, allow_infinity=False, width=64),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
)
n_rows = st.integers(1, 20)
finite_arrays = arrays(np.float64, st.tuples(n_rows, st.just(N_FEATURES)), elements=finite)


@settings(max_examples=40, deadline=None)
@given(X=finite_arrays)
def test_finite_inputs_keep_the_contract(X):
    det = _detector()
    scores = det.score_samples(X)
    assert scores.dtype == np.float64
    assert scores.shape == (len(X),)
    assert np.all(np.isfinite(scores))
    decision = det.decision_function(X)
    np.testing.assert_array_equal(decision, scores - det.offset_)
    labels = det.predict(X)
    np.testing.assert_array_equal(labels, np.where(decision < 0, -1, 1))
    alone = np.array([det.score_samples(row[None, :])[0] for row in X])
    np.testing.assert_allclose(alone, scores, rtol=1e-9)


@settings(max_examples=25, deadline=None)
@given(X=finite_arrays)
def test_latent_codes_are_finite_and_row_wise(X):
    det = _detector()
    latents = det.transform(X)
    assert latents.shape == (len(X), LATENT_DIM)
    assert np.all(np.isfinite(latents))
    np.testing.assert_allclose(det.transform(X[-1:]), latents[-1:], rtol=1e-9)


@settings(max_examples=25, deadline=None)
@given(
    X=arrays(
        np.float32,
        st.tuples(n_rows, st.just(N_FEATURES)),
        elements=st.floats(allow_nan=False, allow_infinity=False, width=32),
    )
)
def test_float32_input_scores_like_the_same_values_in_float64(X):
    det = _detector()
    scores = det.score_samples(X)
    assert scores.dtype == np.float64
    assert np.all(np.isfinite(scores))
    np.testing.assert_array_equal(scores, det.score_samples(X.astype(np.float64)))


# scikit-learn's finiteness check sums X first; +inf and -inf together make that sum NaN.
@pytest.mark.filterwarnings("ignore:invalid value encountered in reduce:RuntimeWarning")
@settings(max_examples=30, deadline=None)
@given(X=finite_arrays, data=st.data())
def test_non_finite_values_always_raise(X, data):
    n_bad = data.draw(st.integers(1, X.size))
    cells = data.draw(st.lists(st.integers(0, X.size - 1), min_size=1, max_size=n_bad))
    for cell in cells:
        X.flat[cell] = data.draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    det = _detector()
    for method in (det.score_samples, det.decision_function, det.predict, det.transform):
        with pytest.raises(ValueError, match="NaN|infinity"):
            method(X)
    if len(X) >= 2:
        with pytest.raises(ValueError, match="NaN|infinity"):
            clone(det).fit(X)


@settings(max_examples=20, deadline=None)
@given(width=st.integers(1, 8).filter(lambda w: w != N_FEATURES), n=n_rows)
def test_wrong_width_always_raises(width, n):
    det = _detector()
    X = np.zeros((n, width))
    for method in (det.score_samples, det.decision_function, det.predict, det.transform):
        with pytest.raises(ValueError, match=f"X has {width} features"):
            method(X)


@settings(max_examples=20, deadline=None)
@given(width=st.integers(1, 8).filter(lambda w: w != LATENT_DIM), n=n_rows)
def test_wrong_latent_width_always_raises(width, n):
    with pytest.raises(ValueError, match=f"{width} latent coordinates"):
        _detector().inverse_transform(np.zeros((n, width)))


@settings(max_examples=20, deadline=None)
@given(
    X=arrays(np.float64, st.tuples(st.integers(2, 20), st.just(N_FEATURES)), elements=finite),
    data=st.data(),
)
def test_predictions_follow_row_order(X, data):
    order = np.array(data.draw(st.permutations(range(len(X)))))
    det = _detector()
    np.testing.assert_array_equal(det.predict(X[order]), det.predict(X)[order])
    np.testing.assert_allclose(det.score_samples(X[order]), det.score_samples(X)[order], rtol=1e-9)
