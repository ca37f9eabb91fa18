"""Fast, unfitted instances of every public detector, shared by the cross-detector test files
(test_common.py, test_reliability.py, test_fuzz.py).

``FACTORIES`` maps a detector name to a function that builds it with fast settings, the
keyword arguments given on top; ``VARIANTS`` lists the configurations the cross-detector tests
cover, as (id, detector name, parameters) triples.
"""

from skood import (
    ApproximateMassFlowDetector,
    AutoencoderDetector,
    ConditionalDLSGAN,
    DLSGANDetector,
    DMRDetector,
    InvGANDetector,
    PostHocDetector,
)

FAST = {"max_epochs": 2, "hidden_dims": (16,), "random_state": 0, "device": "cpu"}
LATENT = {**FAST, "latent_dim": 4}
INVGAN = {**FAST, "latent_dim": 2, "n_centres": 4, "n_kmeans_samples": 300}
FLOW = {**FAST, "n_couplings": 2, "hidden_dims": (8,), "batch_size": 64}


def _dmr(**params) -> DMRDetector:
    return DMRDetector(
        **{"generator": DLSGANDetector(**LATENT), "classifier_epochs": 2, **FAST, **params}
    )


# One unfitted detector per name, with the test's parameters on top of the fast ones.
FACTORIES = {
    "dlsgan": lambda **params: DLSGANDetector(**{**LATENT, **params}),
    "autoencoder": lambda **params: AutoencoderDetector(**{**LATENT, **params}),
    "flow": lambda **params: ApproximateMassFlowDetector(**{**FLOW, **params}),
    "invgan": lambda **params: InvGANDetector(**{**INVGAN, **params}),
    "posthoc": lambda **params: PostHocDetector(**{**FAST, **params}),
    "dmr": _dmr,
    "conditional": lambda **params: ConditionalDLSGAN(**{**LATENT, **params}),
}
DETECTORS = list(FACTORIES)
# The detectors whose fit needs class labels.
SUPERVISED = {"posthoc", "dmr", "conditional"}

# The configurations the cross-detector tests cover: (id, name in FACTORIES, parameters).
VARIANTS = [
    ("dlsgan", "dlsgan", {}),
    ("msegan", "dlsgan", {"variant": "msegan", "score_type": "reconstruction"}),
    ("infogan", "dlsgan", {"variant": "infogan"}),
    ("autoencoder", "autoencoder", {}),
    # Wider than FLOW's coupling networks: the width scikit-learn's checks have always run.
    ("flow", "flow", {"hidden_dims": (16,), "score_type": "approximate_mass"}),
    ("flow-log_likelihood", "flow", {"hidden_dims": (16,), "score_type": "log_likelihood"}),
    ("invgan", "invgan", {}),
    ("invgan-encoded", "invgan", {"kmeans_on": "encoded"}),
    ("posthoc", "posthoc", {}),
    ("posthoc-odin", "posthoc", {"score_type": "odin"}),
    ("posthoc-vim", "posthoc", {"score_type": "vim"}),
    ("dmr", "dmr", {}),
    ("conditional", "conditional", {}),
]


def build(name: str, **params):
    """A fresh detector ``name``; parameters with "__" (``generator__max_epochs``) go to the
    detector's nested estimators, through set_params."""
    nested = {key: value for key, value in params.items() if "__" in key}
    direct = {key: value for key, value in params.items() if "__" not in key}
    return FACTORIES[name](**direct).set_params(**nested)


def fit(name: str, X, y, **params):
    """Fit a fresh detector ``name``, with the labels ``y`` where it is supervised."""
    detector = build(name, **params)
    return detector.fit(X, y) if name in SUPERVISED else detector.fit(X)
