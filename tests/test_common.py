"""The contract checks over every public detector, with fast settings: scikit-learn's
(parametrize_with_checks) and skood's own (skood.utils.estimator_checks)."""

import pytest
from _detectors import VARIANTS, build
from sklearn.utils.estimator_checks import parametrize_with_checks

from skood import DMRDetector, PostHocDetector
from skood.utils.estimator_checks import parametrize_with_detector_checks

# Tiny networks: one thread (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("one_thread")

DETECTORS = [build(name, **params) for _, name, params in VARIANTS]

# sklearn's check_outliers_train and check_outliers_fit_predict call fit(X) without y even when
# the tags say y is required; skood's checks below run the same assertions with class labels
# (check_decision_function_and_predict, check_fit_predict, check_contamination).
NEEDS_LABELS = "sklearn's outlier checks fit without y; this detector needs class labels"
SUPERVISED_FAILURES = {
    "check_outliers_train": NEEDS_LABELS,
    "check_outliers_fit_predict": NEEDS_LABELS,
}


def expected_failed_checks(estimator) -> dict:
    if isinstance(estimator, PostHocDetector | DMRDetector):
        return SUPERVISED_FAILURES
    return {}


@parametrize_with_checks(DETECTORS, expected_failed_checks=expected_failed_checks)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


@parametrize_with_detector_checks(DETECTORS)
def test_detector_contract(detector, check):
    check(detector)
