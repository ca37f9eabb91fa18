"""scikit-learn's estimator checks over every public detector, with fast settings."""

import pytest
from _detectors import VARIANTS, build
from sklearn.utils.estimator_checks import parametrize_with_checks

from skood import DMRDetector, PostHocDetector

DETECTORS = [build(name, **params) for _, name, params in VARIANTS]

# sklearn's check_outliers_train and check_outliers_fit_predict call fit(X) without y even when
# the tags say y is required; the supervised detectors' own test files run the same assertions
# with class labels (test_outlier_contract_with_labels).
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


@pytest.mark.parametrize("estimator", DETECTORS, ids=lambda e: type(e).__name__)
def test_detectors_have_docstring_examples(estimator):
    assert "Examples" in type(estimator).__doc__
