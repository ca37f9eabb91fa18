"""skood: out-of-distribution and anomaly detectors with exact scikit-learn semantics.

Detectors are scikit-learn outlier estimators (``fit``, ``score_samples``, ``decision_function``,
``predict``, ``fit_predict``) whose networks are PyTorch modules trained through skorch.
"""

from . import io
from .autoencoder import AutoencoderDetector
from .conditional import ConditionalDLSGAN
from .conformal import ConformalDetector
from .dlsgan import DLSGANDetector
from .dmr import DMRDetector
from .ensemble import BaggingDetector
from .exceptions import (
    FileVerificationError,
    InconsistentSkoodVersionWarning,
    TrainingDivergedError,
)
from .flow import ApproximateMassFlowDetector
from .invgan import InvGANDetector
from .posthoc import PostHocDetector

__version__ = "0.1.0"

__all__ = [
    "ApproximateMassFlowDetector",
    "AutoencoderDetector",
    "BaggingDetector",
    "ConditionalDLSGAN",
    "ConformalDetector",
    "DLSGANDetector",
    "DMRDetector",
    "FileVerificationError",
    "InconsistentSkoodVersionWarning",
    "InvGANDetector",
    "PostHocDetector",
    "TrainingDivergedError",
    "io",
    "__version__",
]
