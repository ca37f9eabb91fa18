"""The outlier-detection contract of skood's detectors, written once as checks.

Every check is a public function ``check_<what>(name, detector)`` that takes an unfitted
detector (it works on clones and never fits the object it is given), builds its own small data
set (two classes of rows; the class labels go to detectors whose tags say that ``fit`` requires
``y``) and raises :class:`AssertionError` where the detector breaks the contract. The contract
is the one of ``BaseDetector`` (docs: DESIGN.md section 2):

* ``score_samples`` is higher for more normal rows; ``decision_function`` is
  ``score_samples - offset_``; ``predict`` is -1 where that is negative and +1 elsewhere;
  ``fit_predict`` is ``fit`` then ``predict``; ``offset_`` is the ``100 * contamination``
  percentile of the training scores;
* ``n_features_in_`` and ``feature_names_in_`` are set from the training data, with
  scikit-learn's warnings when names do not match, and a wrong width is an error naming both
  counts; bad input (NaN, infinity, 1-D, empty, strings, complex, sparse) is a clear
  ``ValueError`` or ``TypeError``, at fit and at score time;
* clones are unfitted with the same parameters, ``set_params`` leaves the fit alone, pickle
  and joblib round trips score identically, a model whose net was on CUDA loads on a CPU;
* the same ``random_state`` gives bit-identical scores and another one other scores, and fit
  leaves the global random states of torch, NumPy and Python alone;
* a failed fit leaves the detector unfitted, a huge learning rate raises
  :class:`~skood.TrainingDivergedError` (or warns) saying to lower it;
* the class docstring has an Examples section.

:func:`check_detector` runs them all on one detector; :func:`parametrize_with_detector_checks`
turns them into pytest cases, as scikit-learn's ``parametrize_with_checks`` does (skood's
tests/test_common.py runs both over every detector). The checks use the detector's own
parameters: give them fast ones (a couple of epochs, small networks), as the test suite does.

The checks only use public API, and ``net_`` (the fitted skorch net, whose ``device`` a model
fitted on a GPU carries into its pickle).
"""

from __future__ import annotations

import copy
import functools
import os
import pickle
import random
import re
import subprocess
import sys
import tempfile
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from unittest import SkipTest, mock

import joblib
import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import ConvergenceWarning, NotFittedError, SkipTestWarning
from sklearn.utils.validation import check_is_fitted
from skorch import NeuralNet

from .._docstrings import fill_doc
from ..exceptions import TrainingDivergedError

__all__ = [
    "check_bad_input_at_fit",
    "check_bad_input_at_score_time",
    "check_clone",
    "check_contamination",
    "check_cuda_marked_model_loads_on_cpu",
    "check_decision_function_and_predict",
    "check_detector",
    "check_divergence",
    "check_docstring_examples",
    "check_failed_fit_leaves_unfitted",
    "check_feature_names",
    "check_fit_predict",
    "check_fitted_on_cuda_loads_on_cpu",
    "check_global_random_state",
    "check_not_fitted",
    "check_outlier_orientation",
    "check_pickle_round_trip",
    "check_random_state",
    "check_set_params",
    "check_wrong_width_at_score_time",
    "parametrize_with_detector_checks",
]

# The default data of the checks: 100 rows x 5 features in two classes.
N_SAMPLES, N_FEATURES = 100, 5
# The methods every detector has that take rows to score.
SCORING_METHODS = ("score_samples", "decision_function", "predict")
# Methods some detectors have that take rows too: checked wherever a detector has them.
OPTIONAL_ROW_METHODS = (
    "transform",
    "score",
    "predict_class",
    "predict_class_proba",
    "ood_probability",
)
# A learning rate at which every detector's training blows up, as it must be told.
HUGE_LR = 1e8


# --------------------------------------------------------------------------- helpers
def _is_supervised(detector) -> bool:
    """Whether ``fit`` needs class labels (the tags say ``y`` is required)."""
    return bool(detector.__sklearn_tags__().target_tags.required)


def _two_classes(n_samples: int, n_features: int, *, shift: float, seed: int = 0):
    """Rows of two classes, N(-shift, 1) and N(+shift, 1) in every feature, alternating."""
    rng = np.random.RandomState(seed)
    y = np.arange(n_samples) % 2
    X = rng.normal(size=(n_samples, n_features)) + np.where(y[:, None] == 1, shift, -shift)
    return X, y


def _skip_images(detector, X) -> None:
    if X is None and getattr(detector, "input_shape", None) is not None:
        raise SkipTest(
            f"{type(detector).__name__} has an input_shape: give the checks images as X "
            "(check_detector(detector, X=...)); their own data are tables"
        )


def _data(detector, X=None, y=None, *, n_samples=N_SAMPLES, n_features=N_FEATURES, shift=2.0):
    """The training data of a check: ``X`` (and ``y`` for supervised detectors, else None).

    The given ``X`` and ``y`` where given (``n_samples`` and the others then do not apply);
    otherwise two classes of rows.
    """
    supervised = _is_supervised(detector)
    if X is None:
        _skip_images(detector, X)
        X, y = _two_classes(n_samples, n_features, shift=shift)
    else:
        X = np.asarray(X, dtype=np.float64)
        if supervised and y is None:
            raise ValueError(f"{type(detector).__name__} needs class labels: give y with X.")
    return X, (np.asarray(y) if supervised else None)


def _unfitted(detector, **params):
    """A clone of ``detector`` with ``params`` on top, and a fixed seed if it had none."""
    detector = clone(detector)
    if "random_state" in detector.get_params(deep=False) and detector.random_state is None:
        detector.set_params(random_state=0)
    detector.set_params(**params)
    return detector


def _fit(detector, X, y):
    """Fit ``detector`` as a user would: ``fit(X, y)`` when supervised, ``fit(X)`` otherwise."""
    result = detector.fit(X) if y is None else detector.fit(X, y)
    assert result is detector, f"{type(detector).__name__}.fit must return self."
    return detector


def _fit_predict(detector, X, y):
    return detector.fit_predict(X) if y is None else detector.fit_predict(X, y)


# Fitted detectors shared by the checks of one detector (the checks of a detector run one after
# another): most checks only read a fitted model, and fitting it once for all of them keeps the
# checks fast. Checks that change a fitted model change a deep copy of it.
_FITTED: OrderedDict = OrderedDict()
_FITTED_KEPT = 6


def _fit_key(detector, X, y, replica: int) -> tuple:
    params = joblib.hash(detector.get_params(deep=False))
    return type(detector), params, joblib.hash((X, y)), replica


def _keep_fit(key, fitted) -> None:
    _FITTED[key] = fitted
    while len(_FITTED) > _FITTED_KEPT:
        _FITTED.popitem(last=False)


def _share_fit(detector, X, y, fitted) -> None:
    """Offer ``fitted``, a fresh fit of ``detector`` on ``X, y`` that a check made for its own
    purpose, to the checks that only read fitted models (as the first or second fit)."""
    if not _fitted_attributes(fitted):
        return
    for replica in (0, 1):
        key = _fit_key(detector, X, y, replica)
        if key not in _FITTED:
            _keep_fit(key, fitted)
            return


def _fitted(detector, X, y, *, replica: int = 0):
    """``detector`` (a prepared clone) fitted on ``X, y``: shared, so never change it.

    ``replica=1`` is another fit of the same detector on the same data, independent of the
    first (to compare them).
    """
    key = _fit_key(detector, X, y, replica)
    if key in _FITTED:
        _FITTED.move_to_end(key)
        return _FITTED[key]
    fitted = _fit(clone(detector), X, y)
    _keep_fit(key, fitted)
    return fitted


def _fitted_attributes(detector) -> list[str]:
    return [key for key in vars(detector) if key.endswith("_") and not key.startswith("__")]


def _assert_unfitted(detector, X, context: str) -> None:
    left = _fitted_attributes(detector)
    assert not left, f"{context}: {type(detector).__name__} kept fitted attributes {left}."
    try:
        detector.score_samples(X)
    except NotFittedError:
        return
    raise AssertionError(f"{context}: score_samples did not raise NotFittedError.")


@contextmanager
def _raises(expected, match: str | None, context: str):
    """Assert that the block raises ``expected`` with a message matching ``match``."""
    try:
        yield
    except expected as error:
        if match is not None and not re.search(match, str(error)):
            raise AssertionError(
                f"{context}: {type(error).__name__} raised, but its message {str(error)!r} "
                f"does not match {match!r}."
            ) from error
    except Exception as error:
        names = getattr(expected, "__name__", None) or " or ".join(e.__name__ for e in expected)
        raise AssertionError(
            f"{context}: expected {names}, got {type(error).__name__}: {error}"
        ) from error
    else:
        names = getattr(expected, "__name__", None) or " or ".join(e.__name__ for e in expected)
        raise AssertionError(f"{context}: did not raise {names}.")


@contextmanager
def _recorded_warnings():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught


def _assert_warns(caught, category, match: str, context: str) -> None:
    messages = [str(w.message) for w in caught if issubclass(w.category, category)]
    assert any(re.search(match, message) for message in messages), (
        f"{context}: expected a {category.__name__} matching {match!r}; got {messages}."
    )


def _assert_equal(actual, expected, what: str) -> None:
    try:
        np.testing.assert_array_equal(actual, expected)
    except AssertionError as error:
        raise AssertionError(f"{what} differ:\n{error}") from None


def _outputs(detector, X) -> dict:
    """Everything a fitted detector computes from X, by public method (to compare models)."""
    outputs = {"offset_": detector.offset_}
    for method in (*SCORING_METHODS, *OPTIONAL_ROW_METHODS):
        if hasattr(detector, method):
            outputs[method] = getattr(detector, method)(X)
    for method in ("sample", "synthesize"):
        if hasattr(detector, method):
            outputs[method] = getattr(detector, method)(4, random_state=1)
    return outputs


def _assert_same_outputs(restored, expected: dict, X, context: str) -> None:
    for name, value in _outputs(restored, X).items():
        _assert_equal(value, expected[name], f"{context}: {name} of the restored detector")


def _other_seed(random_state):
    return random_state + 1 if isinstance(random_state, int) else 12345


def _same_params(first, second) -> bool:
    """Whether two parameter values are equal; estimators by their class and parameters."""
    if isinstance(first, BaseEstimator) or isinstance(second, BaseEstimator):
        return type(first) is type(second) and all(
            _same_params(value, second.get_params(deep=False)[name])
            for name, value in first.get_params(deep=False).items()
        )
    if isinstance(first, tuple | list) and isinstance(second, tuple | list):
        return len(first) == len(second) and all(map(_same_params, first, second))
    if isinstance(first, np.ndarray) or isinstance(second, np.ndarray):
        return np.array_equal(first, second)
    if isinstance(first, np.random.RandomState) and isinstance(second, np.random.RandomState):
        return all(
            np.array_equal(a, b) for a, b in zip(first.get_state(), second.get_state(), strict=True)
        )
    try:
        return bool(first == second)
    except (TypeError, ValueError):
        return first is second


def _assert_same_params(actual: dict, expected: dict, context: str) -> None:
    assert actual.keys() == expected.keys(), f"{context}: {sorted(actual)} != {sorted(expected)}"
    changed = [name for name in expected if not _same_params(actual[name], expected[name])]
    assert not changed, f"{context}: parameters {changed} differ."


def _reachable(value, found: Callable[[object], bool], seen: set) -> Iterator:
    """The objects ``found`` accepts that are reachable from ``value``, through containers and
    the attributes of estimators and skorch nets (not further into what ``found`` accepts)."""
    if id(value) in seen:
        return
    seen.add(id(value))
    if found(value):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _reachable(item, found, seen)
    elif isinstance(value, list | tuple | set):
        for item in value:
            yield from _reachable(item, found, seen)
    elif hasattr(value, "get_params") and hasattr(value, "__dict__"):  # estimators, skorch nets
        yield from _reachable(vars(value), found, seen)


def _is_torch_object(value) -> bool:
    return isinstance(value, torch.Tensor | torch.nn.Module | torch.optim.Optimizer)


def _tensors(value, seen: set) -> Iterator[torch.Tensor]:
    """The tensors reachable from ``value``: through estimators, nets, containers, modules."""
    for item in _reachable(value, _is_torch_object, seen):
        if isinstance(item, torch.Tensor):
            yield item
        elif isinstance(item, torch.nn.Module):
            yield from item.parameters()
            yield from item.buffers()
        else:
            for state in item.state.values():
                yield from _tensors(state, seen)


def _nets(value) -> list[NeuralNet]:
    """The skorch nets reachable from ``value``: through estimators and containers."""
    return list(_reachable(value, lambda item: isinstance(item, NeuralNet), set()))


_CHECK_PARAMETERS = """

    Parameters
    ----------
    %(check_name_detector)s
    %(check_data)s
    """


def _detector_check(check=None, *, prepare: bool = True):
    """Decorator of a check of ``(name, detector, X=None, y=None)``: its Parameters section,
    and (``prepare``) an unfitted clone of the detector and the data it trains on.

    With ``prepare``, the check is called with ``_unfitted(detector)`` and ``_data(...)``'s
    ``X, y``; without, it gets its arguments as given and builds what it needs itself.
    """
    if check is None:
        return functools.partial(_detector_check, prepare=prepare)

    @functools.wraps(check)
    def run(name, detector, X=None, y=None):
        if prepare:
            detector = _unfitted(detector)
            X, y = _data(detector, X, y)
        check(name, detector, X, y)  # a check returns nothing: it raises

    del run.__wrapped__  # the signature shown is this one, with its defaults
    run.__doc__ = check.__doc__.rstrip() + _CHECK_PARAMETERS
    return fill_doc(run)


# --------------------------------------------------------------------------- the checks
@fill_doc
def check_docstring_examples(name, detector):
    """The detector's class docstring has a numpydoc Examples section with code.

    Parameters
    ----------
    %(check_name_detector)s
    """
    doc = type(detector).__doc__ or ""
    assert re.search(r"^\s*Examples\n\s*-{8}", doc, re.MULTILINE) and ">>>" in doc, (
        f"{name}'s docstring has no Examples section with code."
    )


@_detector_check(prepare=False)
def check_not_fitted(name, detector, X=None, y=None):
    """Before fit, every method that scores rows (or samples) raises NotFittedError."""
    detector = _unfitted(detector)
    X, _ = _data(detector, X, y)
    calls = {method: functools.partial(getattr(detector, method), X) for method in SCORING_METHODS}
    for method in OPTIONAL_ROW_METHODS:
        if hasattr(detector, method):
            calls[method] = functools.partial(getattr(detector, method), X)
    if hasattr(detector, "sample"):
        calls["sample"] = functools.partial(detector.sample, 2)
    for method, call in calls.items():
        with _raises(NotFittedError, None, f"{name}.{method} before fit"):
            call()


@_detector_check(prepare=False)
def check_outlier_orientation(name, detector, X=None, y=None):
    """``score_samples`` is higher = more normal: obvious outliers score below typical rows.

    Detectors that fit without labels are trained on a Gaussian blob, and the outliers lie
    20 standard deviations out. Supervised detectors score by what a classifier learned, and
    a classifier is not expected to flag points far from the data (its logits grow there,
    Hein et al., CVPR 2019): they are trained on two well-separated classes, and the outliers
    lie between them, where the classifier cannot tell the classes apart. The data are larger
    than elsewhere (500 and 4,000 rows), so that even two epochs train the networks.

    With given data ``X``, the outliers are the centre of ``X`` (supervised detectors) or its
    rows moved ten times as far from the centre (others; for images, clipped to the range of
    ``X``)."""
    detector = _unfitted(detector)
    supervised = _is_supervised(detector)
    if X is None:
        _skip_images(detector, X)
        rng = np.random.RandomState(0)
        if supervised:
            X, y = _two_classes(4000, 4, shift=3.0)
            outliers = rng.normal(scale=0.2, size=(10, 4))
        else:
            X, y = rng.normal(size=(500, 4)), None
            directions = rng.normal(size=(10, 4))
            outliers = 20.0 * directions / np.linalg.norm(directions, axis=1, keepdims=True)
    else:
        X, y = _data(detector, X, y)
        centre = X.mean(axis=0)
        if supervised:
            outliers = centre + np.zeros((10, X.shape[1]))
        else:
            outliers = centre + 10.0 * (X[:10] - centre)
            if getattr(detector, "input_shape", None) is not None:
                outliers = np.clip(outliers, X.min(), X.max())
    fitted = _fit(detector, X, y)
    typical = np.median(fitted.score_samples(X[:500]))
    scores = fitted.score_samples(outliers)
    assert np.median(scores) < typical, (
        f"{name}: obvious outliers score higher (median {np.median(scores):.6g}) than the "
        f"training rows (median {typical:.6g}); score_samples must be higher for more normal "
        "rows (negate an anomaly score)."
    )


@_detector_check
def check_decision_function_and_predict(name, detector, X=None, y=None):
    """Float64 finite scores; ``offset_`` the percentile; decision and labels agree.

    ``decision_function == score_samples - offset_`` exactly, ``predict`` is -1 where that is
    negative and +1 elsewhere (the training rows get both), and float32 rows score in float64
    as the same rows in float64."""
    fitted = _fitted(detector, X, y)
    scores = fitted.score_samples(X)
    assert isinstance(scores, np.ndarray) and scores.dtype == np.float64, (
        f"{name}.score_samples must return a float64 array, not {type(scores)} "
        f"of {getattr(scores, 'dtype', None)}."
    )
    assert scores.shape == (len(X),), f"{name}.score_samples has shape {scores.shape}."
    assert np.all(np.isfinite(scores)), f"{name}.score_samples gave non-finite scores."
    assert isinstance(fitted.offset_, float), f"{name}.offset_ must be a float."
    expected = np.percentile(scores, 100 * fitted.contamination)
    assert fitted.offset_ == expected, (
        f"{name}.offset_ is {fitted.offset_!r}, not the {100 * fitted.contamination:g} "
        f"percentile of the training scores ({expected!r})."
    )
    decision = fitted.decision_function(X)
    _assert_equal(
        decision, scores - fitted.offset_, f"{name}: decision_function and score_samples - offset_"
    )
    labels = fitted.predict(X)
    assert labels.shape == (len(X),), f"{name}.predict has shape {labels.shape}."
    assert labels.dtype.kind == "i", f"{name}.predict must return integers, not {labels.dtype}."
    assert set(np.unique(labels)) == {-1, 1}, (
        f"{name}.predict gave {np.unique(labels)} on the training rows, not -1 and +1."
    )
    _assert_equal(
        labels,
        np.where(decision < 0, -1, 1),
        f"{name}: predict and the sign of decision_function (-1 where negative, +1 elsewhere)",
    )
    X32 = X.astype(np.float32)
    scores32 = fitted.score_samples(X32)
    assert scores32.dtype == np.float64, f"{name} scores float32 rows in {scores32.dtype}."
    _assert_equal(
        scores32,
        fitted.score_samples(X32.astype(np.float64)),
        f"{name}: scores of float32 rows and of the same rows in float64",
    )


@_detector_check
def check_fit_predict(name, detector, X=None, y=None):
    """``fit_predict(X)`` equals ``fit(X).predict(X)``."""
    candidate = clone(detector)
    labels = _fit_predict(candidate, X, y)
    _share_fit(detector, X, y, candidate)
    _assert_equal(
        labels, _fitted(detector, X, y).predict(X), f"{name}: fit_predict and fit then predict"
    )


@_detector_check(prepare=False)
def check_contamination(name, detector, X=None, y=None):
    """``contamination`` sets the fraction of training rows flagged.

    With 101 rows and contamination 0.25, ``offset_`` is the 26th lowest training score
    itself: the 25 rows below it are -1, and that row (decision 0) is +1."""
    detector = _unfitted(detector, contamination=0.25)
    X, y = _data(detector, X, y, n_samples=101)
    fitted = _fit(detector, X, y)
    scores = fitted.score_samples(X)
    assert fitted.offset_ == np.percentile(scores, 25.0), (
        f"{name}.offset_ with contamination=0.25 is {fitted.offset_!r}, not the 25th "
        f"percentile of the training scores ({np.percentile(scores, 25.0)!r})."
    )
    labels = fitted.predict(X)
    expected = int(np.sum(scores < np.percentile(scores, 25.0)))  # 25 without ties
    flagged = int(np.sum(labels == -1))
    assert flagged == expected, (
        f"{name} with contamination=0.25 flags {flagged} of {len(X)} training rows, not {expected}."
    )
    if len(X) == 101 and np.unique(scores).size == len(scores):
        assert flagged == 25, f"{name} flags {flagged} of 101 rows at contamination=0.25."
        at_offset = fitted.decision_function(X) == 0
        assert np.count_nonzero(at_offset) == 1 and np.all(labels[at_offset] == 1), (
            f"{name}: the row whose score equals offset_ must be an inlier (+1)."
        )


@_detector_check(prepare=False)
def check_feature_names(name, detector, X=None, y=None):
    """``n_features_in_`` always, ``feature_names_in_`` from a DataFrame, and the warnings
    and errors of scikit-learn when names do not match."""
    try:
        import pandas as pd
    except ImportError:
        raise SkipTest("pandas is not installed: feature names are not checked") from None
    detector = _unfitted(detector)
    X, y = _data(detector, X, y)
    plain = _fitted(detector, X, y)
    assert plain.n_features_in_ == X.shape[1], (
        f"{name}.n_features_in_ is {plain.n_features_in_}, not {X.shape[1]}."
    )
    assert not hasattr(plain, "feature_names_in_"), (
        f"{name} fitted on an array must not have feature_names_in_."
    )
    columns = [f"f{i}" for i in range(X.shape[1])]
    frame = pd.DataFrame(X, columns=columns)
    with _recorded_warnings() as caught:
        plain.predict(frame)
    _assert_warns(
        caught,
        UserWarning,
        "fitted without feature names",
        f"{name} fitted without names, predicting a DataFrame",
    )

    named = _fit(clone(detector), frame, y)
    assert named.n_features_in_ == X.shape[1], f"{name}.n_features_in_ from a DataFrame."
    assert list(getattr(named, "feature_names_in_", [])) == columns, (
        f"{name}.feature_names_in_ must be the DataFrame's columns {columns}."
    )
    expected = named.score_samples(frame)
    with _recorded_warnings() as caught:
        bare = named.score_samples(X)
    _assert_warns(
        caught,
        UserWarning,
        "X does not have valid feature names",
        f"{name} fitted on a DataFrame, scoring an array",
    )
    # A DataFrame converts to a Fortran-ordered array: the same values, last bits may differ.
    np.testing.assert_allclose(bare, expected, rtol=1e-12, err_msg=f"{name}: frame vs array")
    with _raises(ValueError, "feature names", f"{name}.predict with the columns reordered"):
        named.predict(frame[columns[::-1]])


@_detector_check
def check_wrong_width_at_score_time(name, detector, X=None, y=None):
    """Check that rows of the wrong width are a ValueError naming both feature counts."""
    fitted = _fitted(detector, X, y)
    n_features = X.shape[1]
    methods = [*SCORING_METHODS, *(m for m in OPTIONAL_ROW_METHODS if hasattr(fitted, m))]
    for width in (n_features - 1, n_features + 2):
        match = (
            f"X has {width} features, but {type(fitted).__name__} is expecting {n_features} "
            "features"
        )
        for method in methods:
            with _raises(ValueError, match, f"{name}.{method} on {width} features"):
                getattr(fitted, method)(np.zeros((3, width)))


def _with_value(X, value):
    bad = X.copy()
    bad[3, 2 % X.shape[1]] = value
    return bad


# Bad rows, the error they must raise and what its message must say (scikit-learn's words).
BAD_INPUTS = {
    "nan": (lambda X: _with_value(X, np.nan), ValueError, "NaN"),
    "inf": (lambda X: _with_value(X, np.inf), ValueError, "infinity"),
    "-inf": (lambda X: _with_value(X, -np.inf), ValueError, "infinity"),
    "1d": (lambda X: X[:, 0], ValueError, "Expected 2D array, got 1D array"),
    "empty": (lambda X: X[:0], ValueError, "0 sample"),
    "strings": (lambda X: np.full((4, X.shape[1]), "apple", dtype=object), ValueError, "string"),
    "complex": (lambda X: X + 1j, ValueError, "Complex data not supported"),
    "sparse": (lambda X: sp.csr_matrix(X), TypeError, "dense data is required"),
}


@_detector_check
def check_bad_input_at_fit(name, detector, X=None, y=None):
    """Bad training rows (NaN, infinity, 1-D, empty, one row, strings, complex, sparse) are a
    clear ValueError or TypeError, and the detector stays unfitted."""
    cases = {**BAD_INPUTS, "one-sample": (lambda X: X[:1], ValueError, "1 sample")}
    for case, (make_bad, error, match) in cases.items():
        bad = make_bad(X)
        labels = None if y is None else y[: bad.shape[0]]
        candidate = clone(detector)
        with _raises(error, match, f"{name}.fit on {case} rows"):
            _fit(candidate, bad, labels)
        _assert_unfitted(candidate, X, f"{name}.fit on {case} rows")


@_detector_check
def check_bad_input_at_score_time(name, detector, X=None, y=None):
    """Bad rows to score are the same clear errors; one good row scores as in a batch."""
    fitted = _fitted(detector, X, y)
    methods = [*SCORING_METHODS, *(m for m in OPTIONAL_ROW_METHODS if hasattr(fitted, m))]
    for case, (make_bad, error, match) in BAD_INPUTS.items():
        bad = make_bad(X)
        for method in methods:
            with _raises(error, match, f"{name}.{method} on {case} rows"):
                getattr(fitted, method)(bad)
    np.testing.assert_allclose(
        fitted.score_samples(X[7:8]),
        fitted.score_samples(X)[7:8],
        rtol=1e-9,
        err_msg=f"{name}: a row scored alone and in a batch",
    )


@_detector_check
def check_clone(name, detector, X=None, y=None):
    """A clone of a fitted detector is unfitted, with the same parameters."""
    fitted = _fitted(detector, X, y)
    copy_ = clone(fitted)
    _assert_same_params(
        copy_.get_params(deep=False),
        fitted.get_params(deep=False),
        f"{name}: the clone's parameters",
    )
    _assert_same_params(
        detector.get_params(deep=False),
        fitted.get_params(deep=False),
        f"{name}: the parameters after fit",
    )
    _assert_unfitted(copy_, X, f"{name}: a clone of a fitted detector")
    check_is_fitted(fitted)


@_detector_check
def check_set_params(name, detector, X=None, y=None):
    """``set_params`` returns the detector, shows in ``get_params`` and leaves the fit alone
    (only the scoring batch size changes, which must not change the scores)."""
    fitted = copy.deepcopy(_fitted(detector, X, y))
    before = fitted.score_samples(X)
    offset = fitted.offset_
    params = fitted.get_params(deep=False)
    changes = {"random_state": _other_seed(params.get("random_state"))}
    if "max_epochs" in params:
        changes["max_epochs"] = params["max_epochs"] + 1
    assert fitted.set_params(**changes) is fitted, f"{name}.set_params must return self."
    for key, value in changes.items():
        assert fitted.get_params()[key] == value, f"{name}.set_params({key}=...) did not stick."
    nested = [key for key in fitted.get_params(deep=True) if key.endswith("__random_state")]
    for key in nested:
        fitted.set_params(**{key: 7})
        assert fitted.get_params(deep=True)[key] == 7, f"{name}.set_params({key}=7)."
    _assert_equal(fitted.score_samples(X), before, f"{name}: scores before and after set_params")
    assert fitted.offset_ == offset, f"{name}.set_params changed offset_."
    if "inference_batch_size" in params:
        fitted.set_params(inference_batch_size=7)
        np.testing.assert_allclose(
            fitted.score_samples(X),
            before,
            rtol=1e-10,
            err_msg=f"{name}: scores with inference_batch_size=7",
        )
    with _raises(ValueError, "Invalid parameter", f"{name}.set_params(no_such_parameter=1)"):
        fitted.set_params(no_such_parameter=1)
    fitted.set_params(**params)
    _assert_same_params(
        fitted.get_params(deep=False), params, f"{name}: set_params(**get_params()) round trip"
    )


@_detector_check
def check_pickle_round_trip(name, detector, X=None, y=None):
    """Pickle and joblib round trips give a detector that computes exactly the same."""
    fitted = _fitted(detector, X, y)
    expected = _outputs(fitted, X)
    _assert_same_outputs(pickle.loads(pickle.dumps(fitted)), expected, X, f"{name} pickled")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "detector.joblib"
        joblib.dump(fitted, path)
        _assert_same_outputs(joblib.load(path), expected, X, f"{name} through joblib")


@contextmanager
def _storages_saved_as_cuda() -> Iterator[None]:
    """torch tags every CPU tensor it serializes with ``cuda:0``, as on a GPU.

    A tensor pickled outside skorch's device-aware path then fails to load without CUDA, as one
    from a GPU does."""
    tag_of = torch.serialization.location_tag

    def cuda_tag(storage) -> str:
        return "cuda:0" if storage.device.type == "cpu" else tag_of(storage)

    with mock.patch.object(torch.serialization, "location_tag", cuda_tag):
        yield


@_detector_check(prepare=False)
def check_cuda_marked_model_loads_on_cpu(name, detector, X=None, y=None):
    """A model whose net says it is on CUDA unpickles on a CPU-only machine: it warns, and
    every tensor comes back on the CPU, scoring as before.

    Simulated where there is no GPU: the nets say ``device="cuda"`` and every tensor is pickled
    tagged ``cuda:0``, as a model fitted on a GPU pickles;
    :func:`check_fitted_on_cuda_loads_on_cpu` runs where one is."""
    if torch.cuda.is_available():
        raise SkipTest("a GPU exists: check_fitted_on_cuda_loads_on_cpu runs instead")
    detector = _unfitted(detector)
    X, y = _data(detector, X, y)
    marked = copy.deepcopy(_fitted(detector, X, y))
    nets = _nets(marked)
    if not nets:
        raise SkipTest(f"{type(detector).__name__} holds no skorch net")
    expected = marked.score_samples(X)
    for net in nets:
        net.device = "cuda"
    with _storages_saved_as_cuda():
        payload = pickle.dumps(marked)
    with _recorded_warnings() as caught:
        try:
            restored = pickle.loads(payload)
        except RuntimeError as error:
            raise AssertionError(
                f"{name} pickled on CUDA does not load where there is none: {error}"
            ) from None
    _assert_warns(caught, Warning, "CUDA", f"{name} unpickled on a machine without CUDA")
    for net in _nets(restored):
        assert str(net.device) == "cpu", (
            f"{name}: a restored net's device is {net.device!r}, not 'cpu'."
        )
    tensors = list(_tensors(restored, set()))
    assert tensors, f"{name}: no tensors found in the restored detector."
    elsewhere = {str(tensor.device) for tensor in tensors if tensor.device.type != "cpu"}
    assert not elsewhere, f"{name}: restored tensors on {elsewhere}."
    _assert_equal(restored.score_samples(X), expected, f"{name}: scores after loading on CPU")


_LOAD_ON_CPU = """
import pickle, sys, warnings
import numpy as np, torch
assert not torch.cuda.is_available()
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    det = pickle.loads(open(sys.argv[1], "rb").read())
assert any("CUDA" in str(w.message) for w in caught), [str(w.message) for w in caught]
assert str(det.net_.device) == "cpu", det.net_.device
X = np.load(sys.argv[2])
scores = det.score_samples(X)
assert np.all(np.isfinite(scores))
np.testing.assert_allclose(scores, np.load(sys.argv[3]), rtol=1e-5)
"""


@_detector_check(prepare=False)
def check_fitted_on_cuda_loads_on_cpu(name, detector, X=None, y=None):
    """A model fitted on a real GPU loads and scores in a process that has no CUDA."""
    if not torch.cuda.is_available():
        raise SkipTest("needs a GPU to fit on CUDA")
    if "device" not in detector.get_params(deep=False):
        raise SkipTest(f"{type(detector).__name__} has no device parameter")
    detector = _unfitted(detector, device="cuda")
    X, y = _data(detector, X, y)
    fitted = _fit(detector, X, y)
    assert str(fitted.net_.device).startswith("cuda"), f"{name}: net_.device after fit on CUDA."
    with tempfile.TemporaryDirectory() as folder:
        paths = [Path(folder) / file for file in ("detector.pkl", "X.npy", "scores.npy")]
        paths[0].write_bytes(pickle.dumps(fitted))
        np.save(paths[1], X)
        scores = fitted.score_samples(X)
        assert np.all(np.isfinite(scores)), f"{name} fitted on CUDA gave non-finite scores."
        np.save(paths[2], scores)
        # The detector's class must import there as here (classes defined by test modules).
        env = {
            **os.environ,
            "CUDA_VISIBLE_DEVICES": "",
            "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
        }
        result = subprocess.run(
            [sys.executable, "-c", _LOAD_ON_CPU, *map(str, paths)],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert result.returncode == 0, f"{name} fitted on CUDA, loaded on CPU:\n{result.stderr}"


@_detector_check
def check_random_state(name, detector, X=None, y=None):
    """The same ``random_state`` gives bit-identical fits; another one other scores."""
    first = _fitted(detector, X, y)
    again = _fitted(detector, X, y, replica=1)
    _assert_equal(
        again.score_samples(X),
        first.score_samples(X),
        f"{name}: scores of two fits with the same random_state",
    )
    assert again.offset_ == first.offset_, f"{name}: offset_ of two fits with one random_state."
    for method in OPTIONAL_ROW_METHODS:
        if hasattr(first, method):
            _assert_equal(
                getattr(again, method)(X),
                getattr(first, method)(X),
                f"{name}: {method} of two fits with the same random_state",
            )
    seed = _other_seed(detector.random_state)
    other = _fit(clone(detector).set_params(random_state=seed), X, y)
    assert not np.allclose(other.score_samples(X), first.score_samples(X)), (
        f"{name}: random_state={seed} gave the scores of random_state={detector.random_state}."
    )


def _global_random_states() -> dict:
    states = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),  # noqa: NPY002 (the legacy global state is the point)
        "random": random.getstate(),
    }
    if torch.cuda.is_available():
        states["torch.cuda"] = torch.cuda.get_rng_state_all()
    return states


def _same_state(first, second) -> bool:
    if isinstance(first, torch.Tensor):
        return torch.equal(first, second)
    if isinstance(first, np.ndarray):
        return np.array_equal(first, second)
    if isinstance(first, tuple | list):
        return len(first) == len(second) and all(map(_same_state, first, second))
    return first == second


@_detector_check
def check_global_random_state(name, detector, X=None, y=None):
    """Fit and scoring leave the global random states (torch, NumPy, Python) alone."""
    before = _global_random_states()
    fitted = _fit(clone(detector), X, y)
    fitted.score_samples(X)
    after = _global_random_states()
    _share_fit(detector, X, y, fitted)
    changed = [key for key in before if not _same_state(before[key], after[key])]
    assert not changed, f"{name}: fit or score_samples changed the global random state {changed}."


# No CUDA at all here, or one index past the last GPU: either way a device that does not exist.
def _missing_gpu() -> str:
    return f"cuda:{torch.cuda.device_count()}"


@_detector_check
def check_failed_fit_leaves_unfitted(name, detector, X=None, y=None):
    """A fit refused for a bad device or parameter leaves an unfitted detector unfitted, and
    a refit refused for a bad device leaves the earlier fit whole."""
    # A detector without a device of its own (an ensemble: its members have theirs) is refused
    # on a bad contamination alone.
    has_device = "device" in detector.get_params(deep=False)
    refusals = [({"contamination": 0.7}, "contamination")]
    if has_device:
        refusals = [({"device": "gpu7"}, "device"), ({"device": _missing_gpu()}, "device|CUDA")]
        refusals.append(({"contamination": 0.7}, "contamination"))
    for params, match in refusals:
        candidate = clone(detector).set_params(**params)
        with _raises(ValueError, match, f"{name}.fit with {params}"):
            _fit(candidate, X, y)
        _assert_unfitted(candidate, X, f"{name}.fit with {params}")
    fitted = copy.deepcopy(_fitted(detector, X, y))
    expected = fitted.score_samples(X)
    bad, match = ({"device": _missing_gpu()}, "device|CUDA") if has_device else refusals[-1]
    fitted.set_params(**bad)
    with _raises(ValueError, match, f"{name} refitted with {bad}"):
        _fit(fitted, X[:, :-1], y)
    check_is_fitted(fitted)
    fitted.set_params(**{key: detector.get_params(deep=False)[key] for key in bad})
    assert fitted.n_features_in_ == X.shape[1], f"{name}: a refused refit changed the width."
    _assert_equal(fitted.score_samples(X), expected, f"{name}: scores after a refused refit")


def _huge_lr(detector):
    """``detector`` set to blow up: a huge ``lr``, and no gradient clipping where it has any."""
    params = detector.get_params(deep=False)
    if "lr" not in params:
        raise SkipTest(f"{type(detector).__name__} has no lr parameter")
    extra = {"max_grad_norm": None} if "max_grad_norm" in params else {}
    return detector.set_params(lr=HUGE_LR, **extra)


@_detector_check(prepare=False)
def check_divergence(name, detector, X=None, y=None):
    """A huge learning rate raises TrainingDivergedError naming lr and leaves the detector
    unfitted (also when it was fitted before, on other data), or warns (ConvergenceWarning)
    with finite scores; either way it says to lower lr.

    Trained on overlapping classes: on separable ones a classifier can reach zero loss in one
    huge step."""
    detector = _unfitted(detector)
    earlier = _data(detector, X, y)  # the data of the earlier fit, refitted below
    X, y = _data(detector, X, y, n_samples=120, n_features=6, shift=0.5)
    blown = _huge_lr(clone(detector))
    with _recorded_warnings() as caught:
        try:
            _fit(blown, X, y)
        except TrainingDivergedError as error:
            raised = error
        else:
            raised = None
    if raised is None:
        _assert_warns(
            caught,
            ConvergenceWarning,
            r"(?i)lower\b.*\blr",
            f"{name}.fit with lr={HUGE_LR:g} neither raised nor",
        )
        assert np.all(np.isfinite(blown.score_samples(X))), f"{name}: non-finite scores."
        return
    assert isinstance(raised, FloatingPointError), "TrainingDivergedError is a FloatingPointError"
    message = str(raised)
    assert re.search(r"(?i)lower\b.*\blr", message) and "epoch" in message, (
        f"{name}: the divergence error must say where (epoch) and to lower lr: {message!r}"
    )
    _assert_unfitted(blown, X, f"{name} after a diverged fit")
    # A refit that diverges after the new width (6 features, the earlier fit had 5; with
    # given data the same rows), standardization and networks were set must not leave them
    # mixed with the earlier fit.
    refit = _huge_lr(copy.deepcopy(_fitted(detector, *earlier)))
    with _raises(TrainingDivergedError, "lr", f"{name} refitted with lr={HUGE_LR:g}"):
        _fit(refit, X, y)
    _assert_unfitted(refit, X, f"{name} after a diverged refit")


# --------------------------------------------------------------------------- running them
def _yield_detector_checks(detector, *, X=None, y=None) -> Iterator[Callable]:
    """The checks of ``detector``, as functions of ``(name, detector)``.

    With ``X`` (and ``y``), the checks that train on data train on these instead of their
    own; the checks that need particular data keep theirs.
    """
    data = {} if X is None else {"X": X, "y": y}

    def bound(check):
        return functools.partial(check, **data) if data else check

    yield check_docstring_examples
    yield bound(check_not_fitted)
    # The fits of these two are shared with the checks after them, which only read fits.
    yield bound(check_global_random_state)
    yield bound(check_fit_predict)
    yield bound(check_decision_function_and_predict)
    yield bound(check_random_state)
    yield bound(check_wrong_width_at_score_time)
    yield bound(check_bad_input_at_score_time)
    yield bound(check_feature_names)
    yield bound(check_clone)
    yield bound(check_set_params)
    yield bound(check_pickle_round_trip)
    yield bound(check_cuda_marked_model_loads_on_cpu)
    yield bound(check_failed_fit_leaves_unfitted)
    yield bound(check_bad_input_at_fit)
    yield bound(check_contamination)
    yield bound(check_outlier_orientation)
    yield bound(check_divergence)
    yield bound(check_fitted_on_cuda_loads_on_cpu)


def check_detector(detector, *, X=None, y=None) -> list[str]:
    """Check that ``detector`` keeps skood's outlier-detection contract.

    Runs every check of this module on clones of ``detector`` (see the module's description):
    scores, offsets and labels, contamination, feature names, bad input, clone and
    set_params, persistence (pickle, joblib, CUDA to CPU), seeds and the global random
    states, failed and diverging fits, the docstring. The checks fit the detector many times:
    give it fast parameters.

    Parameters
    ----------
    detector : estimator instance
        The unfitted detector to check; it is cloned, never fitted itself.
    X : array-like of shape (n_samples, n_features), default=None
        Training rows for the checks that need some (images for an image detector); by
        default each check builds its own table.
    y : array-like of shape (n_samples,), default=None
        Class labels of ``X``, for detectors whose ``fit`` requires them.

    Returns
    -------
    checks : list of str
        The names of the checks that ran; a check that cannot run here (a GPU check without
        a GPU, feature names without pandas) is left out, with a
        :class:`~sklearn.exceptions.SkipTestWarning`.

    Raises
    ------
    AssertionError
        At the first check the detector fails, saying what broke.

    See Also
    --------
    parametrize_with_detector_checks : The same checks as pytest cases.

    Examples
    --------
    >>> from skood import AutoencoderDetector
    >>> from skood.utils.estimator_checks import check_detector
    >>> detector = AutoencoderDetector(
    ...     max_epochs=2, hidden_dims=(16,), latent_dim=4, device="cpu", random_state=0
    ... )
    >>> import torch
    >>> threads = torch.get_num_threads()
    >>> torch.set_num_threads(1)  # networks this small train fastest on one thread
    >>> ran = check_detector(detector)
    >>> torch.set_num_threads(threads)
    >>> "check_pickle_round_trip" in ran
    True
    """
    name = type(detector).__name__
    ran = []
    for check in _yield_detector_checks(detector, X=X, y=y):
        try:
            check(name, detector)
        except SkipTest as skipped:
            warnings.warn(f"{_check_name(check)}: {skipped}", SkipTestWarning, stacklevel=2)
        else:
            ran.append(_check_name(check))
    return ran


def _check_name(check) -> str:
    if isinstance(check, functools.partial):
        return check.func.__name__
    return check.__name__


def _detector_id(detector) -> str:
    return re.sub(r"\s", "", str(detector))


def parametrize_with_detector_checks(detectors, *, expected_failed_checks=None):
    """A pytest ``parametrize`` decorator over every check of every detector.

    Like scikit-learn's ``parametrize_with_checks``: the decorated test takes ``detector``
    and ``check`` and calls ``check(detector)``; test ids read ``ClassName(params)-check_name``.

    Parameters
    ----------
    detectors : list of estimator instances
        Unfitted detectors, with fast parameters.
    expected_failed_checks : callable, default=None
        ``expected_failed_checks(detector)`` gives a dict from check names to the reasons
        the detector fails them; those cases are marked ``xfail(strict=True)``, so that they
        fail once the detector is fixed and the entry must go.

    Returns
    -------
    decorator : callable
        ``pytest.mark.parametrize("detector, check", ...)``.

    Examples
    --------
    >>> from skood import AutoencoderDetector
    >>> from skood.utils.estimator_checks import parametrize_with_detector_checks
    >>> @parametrize_with_detector_checks([AutoencoderDetector(max_epochs=2, device="cpu")])
    ... def test_detector(detector, check):
    ...     check(detector)
    """
    import pytest

    cases = []
    for detector in detectors:
        name = type(detector).__name__
        expected = {} if expected_failed_checks is None else expected_failed_checks(detector)
        for check in _yield_detector_checks(detector):
            check_name = _check_name(check)
            marks = []
            if check_name in expected:
                marks.append(pytest.mark.xfail(reason=expected[check_name], strict=True))
            cases.append(
                pytest.param(
                    detector,
                    functools.partial(check, name),
                    id=f"{_detector_id(detector)}-{check_name}",
                    marks=marks,
                )
            )
    return pytest.mark.parametrize(("detector", "check"), cases)
