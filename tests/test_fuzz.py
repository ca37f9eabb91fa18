"""One fuzz suite (hypothesis) over every public detector and variant of tests/_detectors.py.

Arbitrary finite data: magnitudes from 5e-324 to 1.8e308 of either sign and zeros, constant and
duplicate columns and rows, 0 to 10 rows and 1 to 4 columns, in every numeric dtype, as NumPy
arrays in C or Fortran order, strided views, read-only arrays, nested lists and DataFrames (of
one dtype or mixed), with labels of every kind for the supervised detectors. Per example:

* either fit raises a clear ValueError or TypeError, from skood's or scikit-learn's own checks
  (never an internal error of PyTorch or NumPy, never a NaN score), exactly where the data are
  below a detector's minimum (few rows or features, for InvGAN few distinct rows);
* or fit succeeds, and score_samples gives finite float64 scores of shape (n_samples,), bit
  for bit those of the same values as a C-contiguous float64 array; decision_function is
  score_samples - offset_ exactly; predict is -1 where that is negative and +1 elsewhere;
  sample, where a detector has it, gives finite rows; and the input is left unchanged.

Then, per variant, one fitted detector scores from 4 threads as from one, and the defects the
fuzzing found stay fixed.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import sklearn
from _detectors import SUPERVISED, VARIANTS, build
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import skood

try:
    import pandas as pd
except ImportError:  # pandas is a test requirement; without it the DataFrame cases drop out
    pd = None

# Tiny networks: one thread (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("one_thread")

# Even smaller than the fast settings of tests/_detectors.py: one epoch, eight hidden units.
TINY = {"max_epochs": 1, "hidden_dims": (8,)}
TINY_BY_NAME = {
    "dlsgan": {"latent_dim": 2},
    "autoencoder": {"latent_dim": 2},
    "flow": {},
    "invgan": {"latent_dim": 1, "n_centres": 2, "n_kmeans_samples": 50},
    "posthoc": {},
    "conditional": {"latent_dim": 2},
    "dmr": {
        "classifier_epochs": 1,
        "generator__max_epochs": 1,
        "generator__hidden_dims": (8,),
        "generator__latent_dim": 2,
    },
}
CASES = [(name, {**params, **TINY, **TINY_BY_NAME[name]}) for _, name, params in VARIANTS]
IDS = [variant for variant, _, _ in VARIANTS]

FUZZ = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

QUIET = pytest.mark.filterwarnings(
    "error::RuntimeWarning",
    "ignore:invalid value encountered in reduce:RuntimeWarning",
)

# --------------------------------------------------------------------------- strategies
DTYPES = [np.float64, np.float32, np.float16, np.int64, np.int32, np.int8, np.uint8, np.bool_]
CONTAINERS = ["C", "F", "strided-rows", "strided-columns", "read-only", "list"]
if pd is not None:
    CONTAINERS += ["DataFrame", "DataFrame-mixed"]
MAX_ROWS = 10
MAX_FEATURES = 4


def _extremes(dtype) -> list:
    """The edges of a dtype's range, and for floats the magnitudes near float64's limits."""
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return [False, True]
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return [int(info.min), int(info.max), 0, 1]
    info = np.finfo(dtype)
    values = [0.0, -0.0, 1.0, info.max, -info.max, info.tiny, -info.tiny, info.smallest_subnormal]
    tiny, huge = float(info.tiny), float(info.max)
    values += [v for v in (1e300, -1e300, 1e154, 1e-300, -1e-300) if tiny <= abs(v) <= huge]
    return [float(v) for v in values]


def _elements(dtype):
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return st.booleans()
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        anything = st.integers(int(info.min), int(info.max))
        return st.one_of(st.integers(max(-3, int(info.min)), 3), anything)
    width = 8 * dtype.itemsize
    anything = st.floats(allow_nan=False, allow_infinity=False, width=width)
    moderate = st.floats(-10, 10, allow_nan=False, width=width)
    return st.one_of(moderate, anything, st.sampled_from(_extremes(dtype)))


@st.composite
def datasets(draw, supervised: bool):
    """(values, container kind, labels or None): values is the C-contiguous array."""
    # float64 half the time, as in most use; every other dtype the rest.
    dtype = draw(st.one_of(st.just(np.float64), st.sampled_from(DTYPES)))
    n_rows = draw(st.integers(0, MAX_ROWS))
    n_features = draw(st.integers(1, MAX_FEATURES))
    X = draw(arrays(dtype, (n_rows, n_features), elements=_elements(dtype)))
    # Constant columns, duplicate columns and duplicate rows.
    edits = st.tuples(st.sampled_from(["constant", "same-column", "same-row"]), st.integers(0, 99))
    for edit, seed in draw(st.lists(edits, max_size=3)) if n_rows else []:
        i, j = seed % n_features, (seed // 10) % n_features
        if edit == "constant":
            X[:, i] = draw(st.sampled_from(_extremes(dtype)))
        elif edit == "same-column":
            X[:, i] = X[:, j]
        else:
            X[seed % n_rows] = X[(seed // 10) % n_rows]
    container = draw(st.sampled_from(CONTAINERS))
    y = None
    if supervised:
        classes = draw(st.sampled_from([[0, 1, 2], [-1, 7], ["in", "out", "other"], [1.0, 3.0]]))
        y = draw(st.lists(st.sampled_from(classes), min_size=n_rows, max_size=n_rows))
        # At least two classes wherever there are two rows.
        y[:2] = classes[: min(2, n_rows)]
        y = np.asarray(y)
    return X, container, y


def contain(X: np.ndarray, kind: str):
    """The values of X in a container of the given kind."""
    if kind == "F":
        return np.asfortranarray(X)
    if kind == "strided-rows":
        wide = np.zeros((2 * len(X), X.shape[1]), dtype=X.dtype)
        wide[::2] = X
        return wide[::2]
    if kind == "strided-columns":
        wide = np.zeros((len(X), 2 * X.shape[1]), dtype=X.dtype)
        wide[:, 1::2] = X
        return wide[:, 1::2]
    if kind == "read-only":
        X = X.copy()
        X.flags.writeable = False
        return X
    if kind == "list":
        return X.tolist()
    if kind == "DataFrame":
        return pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
    if kind == "DataFrame-mixed":  # every other column in float64
        columns = [X[:, i] if i % 2 else X[:, i].astype(np.float64) for i in range(X.shape[1])]
        return pd.DataFrame({f"x{i}": column for i, column in enumerate(columns)})
    return np.ascontiguousarray(X)


def contain_labels(y: np.ndarray, kind: str):
    """The labels in the container that goes with X's."""
    if kind.startswith("DataFrame"):
        return pd.Series(y)
    return y.tolist() if kind == "list" else y


# --------------------------------------------------------------------------- expectations
# Where a clear error may come from: skood's own code and scikit-learn's validation.
_VALIDATORS = (Path(skood.__file__).parent, Path(sklearn.__file__).parent)


def expected_errors(name: str, params: dict, X: np.ndarray) -> tuple[str | None, str | None]:
    """Patterns of the errors fit must raise on X (None: it must succeed), and may raise."""
    n_rows, n_features = X.shape
    if n_rows < 2:
        # (No rows as a list is [], which reads as one dimension.)
        return r"sample\(s\)|minimum of 2|Expected 2D array", None
    reasons, allowed = [], None
    if name == "flow" and n_features < 2:
        reasons.append("at least 2 features")
    if name == "invgan" and params["latent_dim"] > n_features:
        reasons.append("latent_dim=.* exceeds the number of features")
    if params.get("kmeans_on") == "encoded":
        if len(np.unique(X.astype(np.float64), axis=0)) <= params["n_centres"]:
            reasons.append("needs more distinct rows than centres")
        # Distinct rows that reach the networks as one (equal in float32 once standardized).
        allowed = "needs more distinct codes than centres"
    return "|".join(reasons) or None, allowed


def assert_clear(error: Exception) -> None:
    """A ValueError or TypeError with a real message, raised by a validation, not by torch."""
    message = str(error)
    assert len(message.strip()) >= 20, f"uninformative message: {message!r}"
    frame = error.__traceback__
    while frame.tb_next is not None:
        frame = frame.tb_next
    origin = Path(frame.tb_frame.f_code.co_filename).resolve()
    assert any(origin.is_relative_to(folder) for folder in _VALIDATORS), (
        f"{type(error).__name__} raised inside {origin}, not by a validation: {message}"
    )


def fit(detector, name: str, X, y):
    return detector.fit(X, y) if name in SUPERVISED else detector.fit(X)


# --------------------------------------------------------------------------- the fuzz test
@QUIET
@pytest.mark.parametrize(("name", "params"), CASES, ids=IDS)
@FUZZ
@given(data=st.data())
def test_arbitrary_finite_data_give_a_clear_error_or_the_outlier_contract(name, params, data):
    values, kind, y = data.draw(datasets(name in SUPERVISED), label="data")
    X = contain(values, kind)
    y = None if y is None else contain_labels(y, kind)
    before = values.copy()
    detector = build(name, **params)
    required, allowed = expected_errors(name, params, values)
    try:
        fit(detector, name, X, y)
    except (ValueError, TypeError) as error:
        event(f"refused: {type(error).__name__}")
        assert_clear(error)
        pattern = required or allowed
        assert pattern is not None, f"valid data rejected: {error!r}"
        assert re.search(pattern, str(error)), (pattern, str(error))
        return
    assert required is None, f"fit accepted data it must reject ({required})"
    event(f"fitted: {np.dtype(values.dtype).name}, {kind}")

    scores = detector.score_samples(X)
    assert isinstance(scores, np.ndarray)
    assert scores.dtype == np.float64
    assert scores.shape == (len(values),)
    assert np.all(np.isfinite(scores)), scores
    decision = detector.decision_function(X)
    np.testing.assert_array_equal(decision, scores - detector.offset_)
    labels = detector.predict(X)
    assert set(np.unique(labels)) <= {-1, 1}
    np.testing.assert_array_equal(labels, np.where(decision < 0, -1, 1))
    # The layout and container change nothing: the same values, C-contiguous float64.
    plain = contain(values.astype(np.float64), "DataFrame" if "DataFrame" in kind else "C")
    np.testing.assert_array_equal(detector.score_samples(plain), scores)
    if hasattr(detector, "sample"):  # generated rows back in the units of X, finite too
        samples = detector.sample(3, random_state=0)
        assert samples.shape == (3, values.shape[1])
        assert np.all(np.isfinite(samples)), samples
    # Neither fit nor scoring writes into the input.
    np.testing.assert_array_equal(np.asarray(X), before)


# --------------------------------------------------------------------------- threads
def awkward_data() -> tuple[np.ndarray, np.ndarray]:
    """40 rows: a constant column, a duplicated column, a column near 1e300, one near 1e-300."""
    rng = np.random.RandomState(0)
    X = rng.normal(size=(40, 6))
    X[:, 1] = 3.0
    X[:, 2] = X[:, 0]
    X[:, 3] *= 1e300
    X[:, 4] *= 1e-300
    return X, np.repeat([0, 1], 20)


@QUIET
@pytest.mark.parametrize(("name", "params"), CASES, ids=IDS)
def test_four_threads_score_like_one(name, params):
    X, y = awkward_data()
    detector = fit(build(name, **params), name, X, y)
    methods = [detector.score_samples, detector.decision_function, detector.predict]
    expected = [method(X) for method in methods]
    assert np.all(np.isfinite(expected[0]))
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda i: methods[i % 3](X), range(12)))
    for i, result in enumerate(results):
        np.testing.assert_array_equal(result, expected[i % 3])


# --------------------------------------------------------------------------- what the fuzz found
@QUIET
@pytest.mark.parametrize(("name", "params"), CASES, ids=IDS)
def test_fortran_ordered_rows_score_bit_for_bit_as_c_ordered(name, params):
    """Fortran-ordered tensors took other matrix-product paths, a last bit apart."""
    X, y = awkward_data()
    detector = fit(build(name, **params), name, X, y)
    np.testing.assert_array_equal(
        detector.score_samples(np.asfortranarray(X)), detector.score_samples(X)
    )


WITH_SAMPLE = [
    (case, i) for case, i in zip(CASES, IDS, strict=True) if hasattr(build(case[0]), "sample")
]


@QUIET
@pytest.mark.parametrize(
    ("name", "params"), [case for case, _ in WITH_SAMPLE], ids=[i for _, i in WITH_SAMPLE]
)
def test_samples_beside_the_float64_limit_stay_finite(name, params):
    """Unstandardizing rounded past the largest float64 to inf in such a column."""
    X, y = awkward_data()
    X[:, 3] *= np.finfo(np.float64).max / np.abs(X[:, 3]).max()
    samples = fit(build(name, **params), name, X, y).sample(200, random_state=0)
    assert np.all(np.isfinite(samples))


@QUIET
def test_encoded_centres_refuse_rows_the_networks_cannot_tell_apart():
    """No more distinct rows (or codes) than centres used to fail after training, with
    "the points are all identical" even for distinct rows."""
    name, params = CASES[IDS.index("invgan-encoded")]
    assert params["n_centres"] == 2
    X = np.array([[0.0], [1.0], [0.0], [1.0]])
    for rows, found in [(X[:2], "only 2 rows"), (X, "only 2 distinct rows among its 4")]:
        detector = build(name, **params)
        with pytest.raises(ValueError, match=f"more distinct rows than centres, but X has {found}"):
            detector.fit(rows)
        assert not hasattr(detector, "net_")
    # Three distinct rows, two of them one row once standardized in float32: found on the codes.
    detector = build(name, **params)
    with pytest.raises(ValueError, match="encode to only 2 distinct codes"):
        detector.fit(np.array([[0.0], [1.0], [1e9]]))
    assert not hasattr(detector, "net_")
    three = build(name, **params).fit(np.array([[0.0], [1.0], [0.5]]))
    assert np.all(np.isfinite(three.score_samples(X)))
