"""ConformalDetector: the contract checks, p-values by hand, validity, FDR control, splits."""

import numpy as np
import pytest
from scipy import stats
from sklearn.base import BaseEstimator, OutlierMixin
from sklearn.ensemble import IsolationForest
from sklearn.utils.estimator_checks import parametrize_with_checks

from skood import ConformalDetector, DLSGANDetector
from skood.conformal import benjamini_hochberg
from skood.utils.estimator_checks import parametrize_with_detector_checks

pytestmark = pytest.mark.usefixtures("one_thread")

FAST_GAN = {"max_epochs": 2, "hidden_dims": (16,), "latent_dim": 4, "device": "cpu"}
DETECTORS = [
    ConformalDetector(IsolationForest(n_estimators=10, random_state=0), random_state=0),
    ConformalDetector(DLSGANDetector(**FAST_GAN, random_state=0), random_state=0),
]

NO_CONTAMINATION = "no contamination: offset_ is set by alpha on the calibration scores"


def _expected_failed_sklearn(estimator):
    if isinstance(estimator.detector, DLSGANDetector):
        # The rows checked include the calibration rows, each on the edge of its own rank; the
        # GAN scores a row with last-bit differences between batch sizes, which moves it.
        return {"check_methods_subset_invariance": "calibration rows rescored at other sizes"}
    return {}


# alpha, not contamination, sets the threshold: the checks that set a contamination, or compare
# offset_ with a percentile of the training scores, do not apply.
def _expected_failed_skood(detector):
    return {
        "check_decision_function_and_predict": NO_CONTAMINATION,
        "check_contamination": NO_CONTAMINATION,
        "check_failed_fit_leaves_unfitted": "no contamination parameter to refuse a fit with",
    }


@parametrize_with_checks(DETECTORS, expected_failed_checks=_expected_failed_sklearn)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


@parametrize_with_detector_checks(DETECTORS[:1], expected_failed_checks=_expected_failed_skood)
def test_detector_contract(detector, check):
    check(detector)


class FixedScores(OutlierMixin, BaseEstimator):
    """A fake detector: the score of a row is its first feature."""

    def fit(self, X, y=None):
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def score_samples(self, X):
        return np.asarray(X, dtype=np.float64)[:, 0]


def _column(values):
    return np.asarray(values, dtype=np.float64).reshape(-1, 1)


def test_p_values_by_hand():
    calibration = _column([3.0, 1.0, 2.0, 2.0, 5.0])
    detector = ConformalDetector(FixedScores()).fit(_column([0.0]), X_calibration=calibration)
    np.testing.assert_array_equal(detector.calibration_scores_, [1.0, 2.0, 2.0, 3.0, 5.0])
    p = detector.p_values(_column([0.5, 1.0, 2.0, 2.5, 5.0, 9.0]))
    # (1 + #{s_j <= s}) / (5 + 1)
    np.testing.assert_allclose(p, np.array([1, 2, 4, 4, 6, 6]) / 6.0)
    # alpha = 0.1 < 1/6: nothing can be flagged
    assert detector.offset_ == -np.inf and detector.predict(_column([-5.0])).tolist() == [1]
    detector.set_params(alpha=1 / 3).fit(_column([0.0]), X_calibration=calibration)
    assert detector.offset_ == 2.0  # p <= 1/3 <=> 1 + #{s_j <= s} <= 2 <=> s < 2
    np.testing.assert_array_equal(detector.decision_function(_column([1.5, 2.0])), [-0.5, 0.0])
    assert detector.predict(_column([1.5, 2.0])).tolist() == [-1, 1]
    np.testing.assert_array_equal(detector.score_samples(_column([2.5])), [2.5])


def test_far_outlier_gets_the_smallest_p_value():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(201, 2))
    detector = ConformalDetector(
        IsolationForest(n_estimators=20, random_state=0), calibration_size=100, random_state=0
    ).fit(X)
    assert detector.calibration_scores_.size == 100
    assert detector.p_values([[50.0, 50.0]])[0] == 1.0 / 101
    assert detector.predict([[50.0, 50.0], [0.0, 0.0]]).tolist() == [-1, 1]


def test_predict_at_alpha_and_by_benjamini_hochberg():
    calibration = _column(np.arange(1.0, 20.0))  # 19 rows: p = k / 20
    X = _column([0.0, 1.0, 2.0, 3.0, 10.0])  # p = 0.05, 0.1, 0.15, 0.2, 0.55
    plain = ConformalDetector(FixedScores(), alpha=0.15).fit(X, X_calibration=calibration)
    np.testing.assert_allclose(plain.p_values(X), [0.05, 0.1, 0.15, 0.2, 0.55])
    assert plain.predict(X).tolist() == [-1, -1, -1, 1, 1]
    # BH at 0.15 over m=5 compares p_(k) with 0.03k: 0.05 > 0.03, 0.1 > 0.06, 0.15 > 0.09,
    # 0.2 > 0.12, 0.55 > 0.15: nothing is rejected, though three rows have p <= 0.15.
    bh = ConformalDetector(FixedScores(), alpha=0.15, fdr=True).fit(X, X_calibration=calibration)
    assert bh.predict(X).tolist() == [1, 1, 1, 1, 1]
    # The step-up: three rows at p = 0.15, BH at 0.2 compares with 0.2k/3; the first fails
    # (0.15 > 0.067) but the third passes (0.15 <= 0.2) and carries all three.
    ties = _column([2.0, 2.0, 2.0])
    assert bh.set_params(alpha=0.2).predict(ties).tolist() == [-1, -1, -1]
    assert bh.predict(np.vstack([ties, _column([15.0])])).tolist() == [-1, -1, -1, 1]
    bh.set_params(alpha=0.15)
    np.testing.assert_array_equal(bh.decision_function(X), plain.decision_function(X))
    assert plain.predict(X).tolist() == np.where(plain.decision_function(X) < 0, -1, 1).tolist()


def test_benjamini_hochberg():
    assert benjamini_hochberg([], 0.1).shape == (0,)
    assert benjamini_hochberg([0.2, 0.3], 0.1).tolist() == [False, False]
    p = np.array([0.04, 0.001, 0.9, 0.03, 0.02])  # thresholds 0.02k: 0.001, 0.02, 0.03, 0.04
    assert benjamini_hochberg(p, 0.1).tolist() == [True, True, False, True, True]


def test_explicit_calibration_rows_train_on_all_of_X():
    rng = np.random.RandomState(1)
    X, X_cal = rng.normal(size=(60, 3)), rng.normal(size=(30, 3))
    detector = ConformalDetector(IsolationForest(n_estimators=10, random_state=0)).fit(
        X, X_calibration=X_cal
    )
    assert detector.train_indices_ is None and detector.calibration_indices_ is None
    assert detector.detector_.max_samples_ == 60  # trained on all 60 rows
    expected = np.sort(IsolationForest(n_estimators=10, random_state=0).fit(X).score_samples(X_cal))
    np.testing.assert_array_equal(detector.calibration_scores_, expected)
    with pytest.raises(ValueError, match="features"):
        ConformalDetector().fit(X, X_calibration=X_cal[:, :2])


def test_split_sizes_and_errors():
    X = np.random.RandomState(2).normal(size=(11, 2))
    detector = ConformalDetector(FixedScores(), calibration_size=0.5, random_state=0).fit(X)
    assert detector.calibration_indices_.size == 6 and detector.train_indices_.size == 5
    assert set(detector.calibration_indices_) | set(detector.train_indices_) == set(range(11))
    assert ConformalDetector(FixedScores(), calibration_size=3).fit(X).calibration_scores_.size == 3
    for size in (11, 0.99):
        with pytest.raises(ValueError, match="calibration_size"):
            ConformalDetector(FixedScores(), calibration_size=size).fit(X)
    with pytest.raises(ValueError, match="calibration_size"):
        ConformalDetector(calibration_size=1.0).fit(X)
    with pytest.raises(ValueError, match="alpha"):
        ConformalDetector(alpha=0.0).fit(X)


def test_random_state_reproducible_and_global_state_untouched():
    X = np.random.RandomState(3).normal(size=(80, 2))
    before = np.random.get_state()  # noqa: NPY002 (the global state is the subject)
    first = ConformalDetector(FixedScores(), random_state=5).fit(X)
    second = ConformalDetector(FixedScores(), random_state=5).fit(X)
    other = ConformalDetector(FixedScores(), random_state=6).fit(X)
    after = np.random.get_state()  # noqa: NPY002
    assert before[0] == after[0] and np.array_equal(before[1], after[1]) and before[2:] == after[2:]
    np.testing.assert_array_equal(first.calibration_indices_, second.calibration_indices_)
    assert not np.array_equal(first.calibration_indices_, other.calibration_indices_)


def _repeat_inlier_p_values(n_repetitions=200, n_train=40, n_cal=39, n_test=20):
    """Test inliers' p-values over fresh draws of the training, calibration and test rows."""
    rng = np.random.RandomState(0)
    p = []
    for repetition in range(n_repetitions):
        X = rng.normal(size=(n_train + n_cal, 2))
        detector = ConformalDetector(
            IsolationForest(n_estimators=5, max_samples=32, random_state=repetition),
            calibration_size=n_cal,
            random_state=repetition,
        ).fit(X)
        # One test row per draw keeps the rows independent across repetitions (rows that share
        # a calibration set are dependent); several rows per draw are used for the KS distance.
        p.append(detector.p_values(rng.normal(size=(n_test, 2))))
    return np.array(p), n_cal


@pytest.fixture(scope="module")
def inlier_p_values():
    return _repeat_inlier_p_values()


@pytest.mark.parametrize("alpha", [0.05, 0.1, 0.2])
def test_false_positive_rate_on_inliers_is_alpha(inlier_p_values, alpha):
    p, n_cal = inlier_p_values
    first = p[:, 0]  # one row per repetition: independent Bernoulli draws
    exact = np.floor(alpha * (n_cal + 1)) / (n_cal + 1)  # P(p <= alpha), without ties
    sigma = np.sqrt(exact * (1 - exact) / first.size)
    rate = np.mean(first <= alpha)
    assert rate <= alpha + 4 * sigma
    assert abs(rate - exact) <= 4 * sigma
    # All rows: the mean over the 200 calibration sets (dependent within a set).
    assert abs(np.mean(p <= alpha) - exact) <= 0.03


def test_p_values_are_discrete_uniform(inlier_p_values):
    p, n_cal = inlier_p_values
    levels = np.arange(1, n_cal + 2) / (n_cal + 1)
    values = np.sort(p.ravel())
    empirical = np.searchsorted(values, levels, side="right") / values.size
    distance = np.max(np.abs(empirical - levels))  # the uniform CDF at its atoms is k/(n+1)
    # 4,000 rows, dependent within each of the 200 calibration sets: about 0.01 of noise
    # at each level; an off-by-one count shifts every level by 1 / (n + 1) = 0.025.
    assert distance < 0.045
    # The independent rows (one per calibration set) against the continuous uniform.
    assert stats.kstest(p[:, 0], "uniform").statistic < 0.15


def test_fdr_controlled_on_a_mixture():
    rng = np.random.RandomState(1)
    n_inliers, n_outliers, q = 180, 20, 0.1
    fdp, power, plain_fpr = [], [], []
    for repetition in range(40):
        X = rng.normal(size=(300, 2))
        batch = np.vstack([rng.normal(size=(n_inliers, 2)), rng.normal(4.0, 1.0, (n_outliers, 2))])
        outlier = np.arange(n_inliers + n_outliers) >= n_inliers
        detector = ConformalDetector(
            IsolationForest(n_estimators=20, random_state=repetition),
            alpha=q,
            fdr=True,
            random_state=repetition,
        ).fit(X)
        flagged = detector.predict(batch) == -1
        fdp.append(np.sum(flagged & ~outlier) / max(1, np.sum(flagged)))
        power.append(np.mean(flagged[outlier]))
        plain = detector.set_params(fdr=False).predict(batch) == -1
        plain_fpr.append(np.mean(plain[~outlier]))
        assert np.all(flagged <= plain)  # BH at q flags a subset of p <= q
    assert np.mean(fdp) <= q + 0.03
    assert np.mean(power) > 0.5
    # Without BH, ~10% of the 180 inliers are flagged: a realised FDR well above q.
    assert abs(np.mean(plain_fpr) - q) < 0.03
