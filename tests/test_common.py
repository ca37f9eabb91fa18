"""scikit-learn's estimator checks over every public detector, with fast settings."""

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from skood import AutoencoderDetector, DLSGANDetector

FAST = {"max_epochs": 2, "latent_dim": 4, "hidden_dims": (16,), "random_state": 0, "device": "cpu"}

DETECTORS = [
    DLSGANDetector(variant="dlsgan", **FAST),
    DLSGANDetector(variant="msegan", score_type="reconstruction", **FAST),
    DLSGANDetector(variant="infogan", **FAST),
    AutoencoderDetector(**FAST),
]

# Checks expected to fail, with the reason; none at present.
EXPECTED_FAILED_CHECKS: dict = {}


@parametrize_with_checks(DETECTORS, expected_failed_checks=lambda estimator: EXPECTED_FAILED_CHECKS)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


@pytest.mark.parametrize("estimator", DETECTORS, ids=lambda e: type(e).__name__)
def test_detectors_have_docstring_examples(estimator):
    assert "Examples" in type(estimator).__doc__
