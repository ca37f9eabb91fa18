"""Property-based tests (hypothesis): input handling and the contract's invariants."""

from functools import lru_cache

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from skood import DLSGANDetector

N_FEATURES = 3


@lru_cache(maxsize=1)
def _detector() -> DLSGANDetector:
    X = np.random.RandomState(0).normal(size=(120, N_FEATURES))
    return DLSGANDetector(
        max_epochs=2, latent_dim=3, hidden_dims=(8,), device="cpu", random_state=0
    ).fit(X)


finite = st.one_of(
    st.floats(-1e12, 1e12, allow_nan=False, allow_infinity=False),
    st.floats(allow_nan=False, allow_infinity=False),
)
rows = st.integers(1, 20)


@settings(max_examples=40, deadline=None)
@given(X=arrays(np.float64, st.tuples(rows, st.just(N_FEATURES)), elements=finite))
def test_finite_inputs_keep_the_contract(X):
    det = _detector()
    scores = det.score_samples(X)
    assert scores.shape == (len(X),) and np.all(np.isfinite(scores))
    decision = det.decision_function(X)
    np.testing.assert_array_equal(decision, scores - det.offset_)
    np.testing.assert_array_equal(det.predict(X), np.where(decision < 0, -1, 1))
    alone = np.array([det.score_samples(row[None, :])[0] for row in X])
    np.testing.assert_allclose(alone, scores, rtol=1e-9)


@settings(max_examples=30, deadline=None)
@given(
    X=arrays(np.float64, st.tuples(rows, st.just(N_FEATURES)), elements=finite),
    data=st.data(),
)
def test_non_finite_values_always_raise(X, data):
    row = data.draw(st.integers(0, len(X) - 1))
    column = data.draw(st.integers(0, N_FEATURES - 1))
    X[row, column] = data.draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    with pytest.raises(ValueError, match="NaN|infinity"):
        _detector().score_samples(X)


@settings(max_examples=20, deadline=None)
@given(width=st.integers(1, 8).filter(lambda w: w != N_FEATURES), n=rows)
def test_wrong_width_always_raises(width, n):
    with pytest.raises(ValueError, match="features"):
        _detector().predict(np.zeros((n, width)))


@settings(max_examples=20, deadline=None)
@given(
    X=arrays(np.float64, st.tuples(st.integers(2, 20), st.just(N_FEATURES)), elements=finite),
    data=st.data(),
)
def test_predictions_follow_row_order(X, data):
    order = data.draw(st.permutations(range(len(X))))
    det = _detector()
    np.testing.assert_array_equal(det.predict(X[order]), det.predict(X)[order])
    np.testing.assert_allclose(det.score_samples(X[order]), det.score_samples(X)[order])
