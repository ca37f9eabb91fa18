"""Paragraphs of docstrings that several detectors and functions share, written once.

A docstring names a shared paragraph with ``%(name)s`` alone on a line, indented like a
parameter entry; :func:`fill_doc` replaces the line by the paragraph at that indentation.
"""

from __future__ import annotations

import re
import textwrap
from typing import TypeVar

__all__ = ["fill_doc"]

_Documented = TypeVar("_Documented")

# Entry line, then its description indented by four more spaces (numpydoc's layout).
_PARAGRAPHS = {
    # The image loaders of skood.datasets.
    "image_loader_options": """
subset : {"train", "test", "all"}, default="train"
    60,000 training images, 10,000 test images, or both (train first, 70,000).
data_home : str or path-like, default=None
    Folder holding the dataset's folder (``mnist/``, ``fashion_mnist/``); see
    :func:`~skood.datasets.get_data_home`.
return_X_y : bool, default=False
    Return ``(X, y)`` instead of a Bunch.
scale : {"symmetric", "unit"} or None, default="symmetric"
    Pixel scaling: [-1, 1], [0, 1] or raw 0..255 (all float32).
download : bool, default=False
    Fetch missing files from the public mirror (checksum-verified).
""",
    "image_loader_returns": """
data : :class:`~sklearn.utils.Bunch`
    ``data`` (float32, n x 784, row-major 28 x 28), ``target`` (class 0-9), ``images``
    (uint8, n x 28 x 28), ``image_shape``, ``target_names``, ``DESCR``.
(X, y) : tuple if ``return_X_y``
    ``data`` and ``target`` of the Bunch.
""",
    "warm_start": """
warm_start : bool, default=False
    When True and the detector is fitted, ``fit`` trains the fitted networks for
    ``max_epochs`` more epochs instead of building new ones: optimizer state, learning
    rate decay and random streams carry on, so fits of 2 and then 3 epochs train as one
    fit of 5. Between such fits only ``max_epochs``, ``verbose``, ``contamination``,
    ``inference_batch_size``, ``random_state``, ``device`` (resolving to the same device)
    and the scoring parameters may change; ``offset_`` is set again from the new fit's
    data.
""",
    "contamination": """
contamination : float in (0, 0.5], default=0.1
    Expected fraction of outliers in the training data; sets ``offset_``.
""",
    "device": """
device : str, default="auto"
    ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
""",
    "mixed_precision": """
mixed_precision : bool or "auto", default="auto"
    Train the forward passes under bfloat16 autocast (weights, losses, the optimizer and
    scoring stay float32; bfloat16 keeps float32's range, so no loss scaling is needed).
    ``"auto"``: for image networks (``input_shape`` given) on CUDA and on processors with
    native bfloat16 arithmetic (AVX512-BF16 or AMX), where it trains DLSGAN's small image
    networks about 1.5x faster on 2 CPU cores; tables stay float32 (their small matrix
    products gain nothing and would lose precision). As "auto" depends on the processor,
    pass ``True`` or ``False`` for scores that agree across machines. See
    ``docs/training.md``.
""",
    "verbose": """
verbose : int, default=0
    0: silent. 1: print a table of the losses and the duration of every epoch, and a line
    naming each stage of a fit in stages (DMR: classifier, generator, rejection network;
    PostHoc: classifier, statistics; InvGAN with ``kmeans_on="encoded"``: networks, variance
    refit) as it starts. 2 or more: also progress by batch on standard error, during ``fit``
    (epoch and batch, current losses, rows per second, time left in the epoch and in the
    training call) and while scoring, encoding or decoding more rows than
    ``inference_batch_size`` (rows done, rows per second, time left). On a terminal a tqdm
    bar redraws in place; elsewhere (a log file, CI) plain lines are written: one after the
    first batch, then at most one every 5 seconds, and a summary. Progress changes no result.
""",
    "offset_": """
offset_ : float
    Threshold on ``score_samples``: the ``100 * contamination`` percentile of the training
    scores.
""",
    "input_scaling_": """
input_mean_, input_scale_ : ndarray of shape (`n_features_in_`,)
    Standardization statistics (zeros and ones when the detector does not standardize).
""",
    "n_features_in_": """
n_features_in_ : int
    Number of features seen during fit.
""",
    "feature_names_in_": """
feature_names_in_ : ndarray of shape (`n_features_in_`,)
    Feature names seen during fit, when X has string column names.
""",
    # Metrics and plots.
    "y_true": """
y_true : array-like of shape (n_samples,)
    +1 inlier / -1 outlier (or 0/1 with ``outlier_label=1``).
""",
    "scores": """
scores : array-like of shape (n_samples,)
    Normality scores, higher = more normal.
""",
    "outlier_label": """
outlier_label : {-1, 1}, default=-1
    The label that marks outliers.
""",
    "tpr": """
tpr : float in (0, 1], default=0.95
    Fraction of inliers accepted.
""",
    # The checks of skood.utils.estimator_checks.
    "check_name_detector": """
name : str
    Name of the detector in the failure messages (:func:`check_detector` passes the class
    name).
detector : estimator instance
    The unfitted detector to check; it is left unchanged (the checks fit clones).
""",
    "check_data": """
X : array-like of shape (n_samples, n_features), default=None
    Training rows, flattened images for an image detector (which the check skips without
    them). None: the check builds its own table of two classes.
y : array-like of shape (n_samples,), default=None
    Class labels of ``X``, for detectors whose ``fit`` requires them; ignored otherwise.
""",
    "ax": """
ax : matplotlib Axes, default=None
    Where to draw; a new figure when None.
""",
}

_PLACEHOLDER = re.compile(r"^( *)%\((\w+)\)s$", flags=re.MULTILINE)


def fill_doc(documented: _Documented) -> _Documented:
    """Decorator of a class or function: replace each ``%(name)s`` line by its paragraph.

    Only whole placeholder lines are replaced, so a ``%`` elsewhere in the text needs no
    escaping. An unknown name is an error at import time, not a hole in the documentation.
    """

    def paragraph(match: re.Match) -> str:
        indent, name = match.groups()
        if name not in _PARAGRAPHS:
            raise KeyError(
                f"{documented.__name__}'s docstring names an unknown paragraph {name!r}."
            )
        return textwrap.indent(_PARAGRAPHS[name].strip("\n"), indent)

    documented.__doc__ = _PLACEHOLDER.sub(paragraph, documented.__doc__)
    return documented
