"""The contract checks over every public detector, with fast settings: scikit-learn's
(parametrize_with_checks) and skood's own (skood.utils.estimator_checks)."""

import pytest
from _detectors import VARIANTS, build
from sklearn.utils.estimator_checks import parametrize_with_checks

from skood import ConditionalDLSGAN, DMRDetector, PostHocDetector
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
    if isinstance(estimator, PostHocDetector | DMRDetector | ConditionalDLSGAN):
        return SUPERVISED_FAILURES
    return {}


@parametrize_with_checks(DETECTORS, expected_failed_checks=expected_failed_checks)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


# The supervised variant of check_outlier_orientation puts its outliers between two classes,
# where a classifier cannot tell them apart. ConditionalDLSGAN scores like DLSGANDetector, by
# the likelihood of the latent code, and the encoder maps the gap between two classes to the
# middle of the latent prior; tests/test_conditional.py checks its orientation on far-out rows.
BETWEEN_CLASSES = (
    "scores by the latent code's likelihood, which is high in the gap between two classes, "
    "where the supervised orientation check puts its outliers"
)


def expected_failed_contract_checks(detector) -> dict:
    if isinstance(detector, ConditionalDLSGAN):
        return {"check_outlier_orientation": BETWEEN_CLASSES}
    return {}


@parametrize_with_detector_checks(DETECTORS, expected_failed_checks=expected_failed_contract_checks)
def test_detector_contract(detector, check):
    check(detector)
