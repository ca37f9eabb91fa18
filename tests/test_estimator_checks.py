"""skood.utils.estimator_checks can fail: each check rejects a detector broken in the way it
looks for (small subclasses of a fast AutoencoderDetector that break one thing), and the
runners (check_detector, parametrize_with_detector_checks) work."""

import copy
import warnings
from unittest import SkipTest

import numpy as np
import pytest
import torch
from _detectors import FAST, LATENT
from sklearn.exceptions import ConvergenceWarning, SkipTestWarning

from skood import AutoencoderDetector, DLSGANDetector, TrainingDivergedError
from skood.utils import estimator_checks as checks

# Tiny networks: one thread (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("one_thread")


class Working(AutoencoderDetector):
    """A detector that keeps the contract (what the broken ones below start from).

    Examples
    --------
    >>> Working()
    Working()
    """


def fast(cls):
    return cls(**LATENT)


# --------------------------------------------------------------------------- broken detectors
class NoExamples(AutoencoderDetector):
    """A detector whose docstring shows no example."""


class ScoresBeforeFit(Working):
    def score_samples(self, X):
        if not hasattr(self, "net_"):
            return np.zeros(len(X))
        return super().score_samples(X)


class FlippedSign(Working):
    """score_samples is an anomaly score (higher = more anomalous), consistently.

    Examples
    --------
    >>> FlippedSign()
    FlippedSign()
    """

    def fit(self, X, y=None):
        super().fit(X)  # offset_ for the flipped scores: only the orientation is wrong
        self.offset_ = float(np.percentile(self.score_samples(X), 100 * self.contamination))
        return self

    def score_samples(self, X):
        return -super().score_samples(X)


class NoOffsetInDecision(Working):
    def decision_function(self, X):
        return self.score_samples(X)


class ZeroOneLabels(Working):
    def predict(self, X):
        return (self.decision_function(X) >= 0).astype(int)


class Float32Scores(Working):
    def score_samples(self, X):
        return super().score_samples(X).astype(np.float32)


class InliersFromFitPredict(Working):
    def fit_predict(self, X, y=None):
        self.fit(X)
        return np.ones(len(X), dtype=int)


class FixedContamination(Working):
    """offset_ always flags 10 % of the training rows, whatever contamination says."""

    def fit(self, X, y=None):
        super().fit(X)
        self.offset_ = float(np.percentile(self.score_samples(X), 10.0))
        return self


class DropsFeatureNames(Working):
    def fit(self, X, y=None):
        return super().fit(np.asarray(X))


class TruncatesWideRows(Working):
    def score_samples(self, X):
        return super().score_samples(np.asarray(X)[:, : self.n_features_in_])


class FillsNaNAtFit(Working):
    def fit(self, X, y=None):
        return super().fit(np.nan_to_num(np.asarray(X, dtype=np.float64)))


class FillsNaNAtScoreTime(Working):
    def score_samples(self, X):
        return super().score_samples(np.nan_to_num(np.asarray(X, dtype=np.float64)))


class FittedClones(Working):
    def __sklearn_clone__(self):
        return copy.deepcopy(self)


class SetParamsMovesOffset(Working):
    def set_params(self, **params):
        super().set_params(**params)
        if hasattr(self, "offset_"):
            self.offset_ += 1.0
        return self


class PicklingLosesWeights(Working):
    """Unpickling re-draws the weights: the restored model scores differently."""

    def __setstate__(self, state):
        super().__setstate__(state)
        if hasattr(self, "net_"):
            with torch.no_grad():
                for parameter in self.net_.module_.parameters():
                    parameter.add_(0.1)


class StaysOnCuda(Working):
    """A restored net still claims the device it was fitted on."""

    def __getstate__(self):
        state = super().__getstate__()
        if "net_" in state:
            state["fitted_on"] = str(self.net_.device)
        return state

    def __setstate__(self, state):
        device = state.pop("fitted_on", None)
        super().__setstate__(state)
        if device is not None:
            self.net_.device = device


class KeepsATensorOutsideTheNet(Working):
    """Keeps a tensor of the training device beside the net, pickled the plain way."""

    def fit(self, X, y=None):
        super().fit(X)
        self.training_mean_ = torch.as_tensor(np.mean(X, axis=0))
        return self


class UnseededNoise(Working):
    def fit(self, X, y=None):
        noise = np.random.default_rng().normal(scale=1e-3, size=np.shape(X))
        return super().fit(np.asarray(X) + noise)


class IgnoresRandomState(Working):
    def fit(self, X, y=None):
        seed, self.random_state = self.random_state, 0
        try:
            return super().fit(X)
        finally:
            self.random_state = seed


class DrawsFromGlobalTorch(Working):
    def fit(self, X, y=None):
        torch.rand(1)
        return super().fit(X)


class DrawsFromGlobalNumpy(Working):
    def fit(self, X, y=None):
        np.random.rand()  # noqa: NPY002 (the legacy global state is the point)
        return super().fit(X)


class RecordsWidthFirst(Working):
    """Sets n_features_in_ before the checks that can refuse the fit."""

    def fit(self, X, y=None):
        self.n_features_in_ = np.shape(X)[1]
        return super().fit(X)


class SwallowsDivergence(Working):
    """Retries quietly at a lower learning rate when training blows up."""

    def fit(self, X, y=None):
        try:
            return super().fit(X)
        except TrainingDivergedError:
            lr, self.lr = self.lr, 1e-3
            try:
                return super().fit(X)
            finally:
                self.lr = lr


class WarnsOfDivergence(Working):
    """Falls back to a lower learning rate, and says so (allowed: the contract is raise or warn).

    Examples
    --------
    >>> WarnsOfDivergence()
    WarnsOfDivergence()
    """

    def fit(self, X, y=None):
        try:
            return super().fit(X)
        except TrainingDivergedError:
            warnings.warn("training blew up: lower lr", ConvergenceWarning, stacklevel=2)
            lr, self.lr = self.lr, 1e-3
            try:
                return super().fit(X)
            finally:
                self.lr = lr


class WarnsOfDivergenceVaguely(WarnsOfDivergence):
    def fit(self, X, y=None):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            super().fit(X)
        for warning in caught:
            warnings.warn("training blew up", warning.category, stacklevel=2)
        return self


class KeepsStateAfterDivergence(Working):
    def fit(self, X, y=None):
        try:
            return super().fit(X)
        except TrainingDivergedError:
            self.offset_ = 0.0
            raise


# (check, broken detector, what the failure says)
FAILURES = [
    (checks.check_docstring_examples, NoExamples, "Examples"),
    (checks.check_not_fitted, ScoresBeforeFit, "NotFittedError"),
    (checks.check_outlier_orientation, FlippedSign, "obvious outliers score higher"),
    (checks.check_decision_function_and_predict, NoOffsetInDecision, "offset_"),
    (checks.check_decision_function_and_predict, ZeroOneLabels, r"predict gave \[0 1\]"),
    (checks.check_decision_function_and_predict, Float32Scores, "float64"),
    (checks.check_fit_predict, InliersFromFitPredict, "fit_predict"),
    (checks.check_contamination, FixedContamination, "contamination=0.25"),
    (checks.check_feature_names, DropsFeatureNames, "feature_names_in_"),
    (checks.check_wrong_width_at_score_time, TruncatesWideRows, "7 features.*did not raise"),
    (checks.check_bad_input_at_fit, FillsNaNAtFit, "fit on nan rows: did not raise"),
    (checks.check_bad_input_at_score_time, FillsNaNAtScoreTime, "nan rows: did not raise"),
    (checks.check_clone, FittedClones, "kept fitted attributes"),
    (checks.check_set_params, SetParamsMovesOffset, "changed offset_"),
    (checks.check_pickle_round_trip, PicklingLosesWeights, "restored detector"),
    (checks.check_random_state, UnseededNoise, "same random_state"),
    (checks.check_random_state, IgnoresRandomState, "gave the scores of random_state"),
    (checks.check_global_random_state, DrawsFromGlobalTorch, r"\['torch'\]"),
    (checks.check_global_random_state, DrawsFromGlobalNumpy, r"\['numpy'\]"),
    (checks.check_failed_fit_leaves_unfitted, RecordsWidthFirst, "kept fitted attributes"),
    (checks.check_divergence, SwallowsDivergence, "neither raised nor"),
    (checks.check_divergence, KeepsStateAfterDivergence, "kept fitted attributes"),
    (checks.check_divergence, WarnsOfDivergenceVaguely, "ConvergenceWarning matching"),
]
if not torch.cuda.is_available():  # the simulated check runs where no GPU is
    FAILURES.append(
        (checks.check_cuda_marked_model_loads_on_cpu, StaysOnCuda, "not 'cpu'"),
    )
    FAILURES.append(
        (
            checks.check_cuda_marked_model_loads_on_cpu,
            KeepsATensorOutsideTheNet,
            "does not load where there is none",
        ),
    )


@pytest.mark.parametrize(
    ("check", "broken", "match"),
    FAILURES,
    ids=[f"{check.__name__}-{broken.__name__}" for check, broken, _ in FAILURES],
)
def test_check_rejects_the_broken_detector(check, broken, match):
    # Every check passes Working: test_parametrize_with_detector_checks below.
    with pytest.raises(AssertionError, match=match):
        check(broken.__name__, fast(broken))


def test_every_check_has_a_broken_detector():
    """Each check but the real-GPU one (which needs a GPU) is shown to fail above."""
    tested = {check.__name__ for check, _, _ in FAILURES}
    every = {checks._check_name(check) for check in checks._yield_detector_checks(Working())}
    untested = every - tested - {"check_fitted_on_cuda_loads_on_cpu"}
    if torch.cuda.is_available():
        untested -= {"check_cuda_marked_model_loads_on_cpu"}
    assert not untested


def test_divergence_may_warn_instead_of_raising():
    checks.check_divergence("WarnsOfDivergence", fast(WarnsOfDivergence))


# --------------------------------------------------------------------------- the runners
def test_check_detector_runs_every_check_on_given_data():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(80, 4))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SkipTestWarning)
        ran = checks.check_detector(fast(Working), X=X)
    every = [checks._check_name(check) for check in checks._yield_detector_checks(Working())]
    skipped = [str(w.message) for w in caught if issubclass(w.category, SkipTestWarning)]
    assert len(ran) + len(skipped) == len(every)
    assert {"check_pickle_round_trip", "check_outlier_orientation"} <= set(ran)
    with pytest.raises(AssertionError, match="obvious outliers"):
        checks.check_detector(fast(FlippedSign), X=X)


def test_check_detector_needs_labels_for_supervised_detectors():
    from skood import PostHocDetector

    with pytest.raises(ValueError, match="needs class labels"):
        checks.check_detector(PostHocDetector(**FAST), X=np.ones((9, 3)))


def test_image_detectors_need_images():
    detector = DLSGANDetector(input_shape=(1, 8, 8), max_epochs=1, device="cpu")
    with pytest.raises(SkipTest, match="give the checks images"):
        checks.check_decision_function_and_predict("DLSGANDetector", detector)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU exists: the check runs")
def test_the_real_gpu_check_skips_without_a_gpu():
    with pytest.raises(SkipTest, match="GPU"):
        checks.check_fitted_on_cuda_loads_on_cpu("Working", fast(Working))


@checks.parametrize_with_detector_checks([fast(Working)])
def test_parametrize_with_detector_checks(detector, check, request):
    assert request.node.callspec.id.startswith("Working(")
    assert request.node.callspec.id.endswith(f"-{checks._check_name(check.func)}")
    check(detector)
