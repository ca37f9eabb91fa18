"""Plots for outlier and OOD detection: score histograms, ROC curves, image grids, spectra.

Needs matplotlib (``pip install "skood[plot]"``); importing this module does not, calling a
function does. Every function draws into a given Axes (or a new figure) and returns what it drew
on, so plots compose with the rest of a matplotlib figure. The backend is left to the user.

Scores follow :mod:`skood.metrics`: higher means more normal, ``+1`` inlier / ``-1`` outlier
labels, or ``0/1`` labels with ``outlier_label=1``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numpy.typing import ArrayLike
from sklearn import metrics as _skm
from sklearn.utils.validation import check_is_fitted

from ._docstrings import fill_doc
from .metrics import _check

__all__ = [
    "plot_image_grid",
    "plot_latent_spectrum",
    "plot_roc_curves",
    "plot_score_histograms",
]


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ImportError(
            'skood.plotting needs matplotlib: pip install "skood[plot]" (or matplotlib).'
        ) from error
    return plt


def _axes(ax):
    """``ax``, or the Axes of a new figure."""
    if ax is not None:
        return ax
    _, ax = _pyplot().subplots()
    return ax


def _named(scores, what: str) -> dict[str, np.ndarray]:
    """A mapping name -> values from a mapping or a single array (named ``what``)."""
    if isinstance(scores, Mapping):
        if not scores:
            raise ValueError("scores is an empty mapping: give at least one detector's scores.")
        return dict(scores)
    return {what: scores}


@fill_doc
def plot_score_histograms(
    y_true: ArrayLike,
    scores: ArrayLike,
    *,
    outlier_label: int = -1,
    bins: int = 30,
    clip_percentile: float | None = None,
    density: bool = True,
    ax=None,
):
    """Plot histograms of the scores of inliers and of outliers, on shared bins.

    Parameters
    ----------
    %(y_true)s
    scores : array-like of shape (n_samples,)
        Normality scores, higher = more normal (``score_samples``, ``decision_function``).
    %(outlier_label)s
    bins : int, default=30
        Number of bins, shared by both histograms.
    clip_percentile : float in [0, 50), default=None
        Clip the scores to this percentile and its mirror (``100 - clip_percentile``) before
        binning. The scores of neural detectors often have long tails that squeeze the bulk
        into a few bins; the clipped values collect in the outermost bins.
    density : bool, default=True
        Normalise each histogram to unit area, so that classes of different sizes compare.
    %(ax)s

    Returns
    -------
    ax : matplotlib Axes
        The axes with the two histograms and their legend.

    Examples
    --------
    >>> import numpy as np
    >>> from skood.plotting import plot_score_histograms
    >>> y = np.r_[np.ones(90), -np.ones(10)]
    >>> scores = np.r_[np.random.default_rng(0).normal(size=90), np.full(10, -3.0)]
    >>> ax = plot_score_histograms(y, scores)
    >>> [text.get_text() for text in ax.get_legend().get_texts()]
    ['inliers (90)', 'outliers (10)']
    """
    outlier, scores = _check(y_true, scores, outlier_label)
    if clip_percentile is not None:
        if not 0 <= clip_percentile < 50:
            raise ValueError(f"clip_percentile must be in [0, 50), got {clip_percentile!r}.")
        low, high = np.percentile(scores, [clip_percentile, 100 - clip_percentile])
        scores = np.clip(scores, low, high)
    edges = np.histogram_bin_edges(scores, bins=bins)
    ax = _axes(ax)
    for mask, label in ((~outlier, "inliers"), (outlier, "outliers")):
        ax.hist(
            scores[mask], bins=edges, density=density, alpha=0.6, label=f"{label} ({mask.sum()})"
        )
    ax.set_xlabel("score (higher = more normal)")
    ax.set_ylabel("density" if density else "count")
    ax.legend()
    return ax


@fill_doc
def plot_roc_curves(y_true: ArrayLike, scores, *, outlier_label: int = -1, ax=None):
    """Plot ROC curves of one or several detectors, outliers as the positive class.

    The x axis is the fraction of inliers flagged (false alarms), the y axis the fraction of
    outliers flagged, as the threshold on the scores rises; each legend entry gives the area,
    equal to :func:`skood.metrics.roc_auc`.

    Parameters
    ----------
    %(y_true)s
    scores : array-like of shape (n_samples,) or mapping of str to such arrays
        Normality scores, higher = more normal; a mapping draws one curve per detector name.
    %(outlier_label)s
    %(ax)s

    Returns
    -------
    ax : matplotlib Axes
        The axes with one curve per detector, the chance diagonal and a legend.

    Examples
    --------
    >>> import numpy as np
    >>> from skood.plotting import plot_roc_curves
    >>> y = np.array([1, 1, 1, -1, -1])
    >>> ax = plot_roc_curves(y, {"good": [5, 4, 3, 2, 1], "poor": [1, 2, 3, 4, 5]})
    >>> [text.get_text() for text in ax.get_legend().get_texts()]
    ['good (AUROC 1.000)', 'poor (AUROC 0.000)']
    """
    named = _named(scores, "scores")
    checked = {name: _check(y_true, values, outlier_label) for name, values in named.items()}
    ax = _axes(ax)
    for name, (outlier, values) in checked.items():
        fpr, tpr, _ = _skm.roc_curve(outlier, -values)
        area = _skm.auc(fpr, tpr)  # roc_auc's value, without validating the labels again
        ax.plot(fpr, tpr, label=f"{name} (AUROC {area:.3f})")
    ax.plot([0, 1], [0, 1], color="0.6", linestyle=":", linewidth=1)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("fraction of inliers flagged")
    ax.set_ylabel("fraction of outliers flagged")
    ax.legend(loc="lower right")
    return ax


def _as_images(images: ArrayLike, image_shape: tuple[int, ...] | None) -> np.ndarray:
    """(n, H, W) or (n, H, W, 3) arrays for ``imshow`` from flat rows or image arrays."""
    images = np.asarray(images, dtype=np.float64)
    if images.ndim == 2:
        n, width = images.shape
        if image_shape is None:
            side = int(round(np.sqrt(width)))
            if side * side != width:
                raise ValueError(
                    f"Rows of {width} values are not square grayscale images: pass "
                    "image_shape=(C, H, W) or (H, W)."
                )
            image_shape = (side, side)
        if int(np.prod(image_shape)) != width:
            raise ValueError(f"image_shape {tuple(image_shape)} does not hold {width} values.")
        images = images.reshape(n, *image_shape)
    if images.ndim == 4:
        channels = images.shape[1]
        if channels == 1:
            images = images[:, 0]
        elif channels == 3:
            images = images.transpose(0, 2, 3, 1)
        else:
            raise ValueError(f"Images need 1 or 3 channels first (N, C, H, W), got {channels}.")
    elif images.ndim != 3:
        raise ValueError(
            "Images must be flat rows (n, C*H*W) or arrays (n, H, W) or (n, C, H, W); got "
            f"shape {images.shape}."
        )
    return images


def plot_image_grid(
    rows: Mapping[str, ArrayLike],
    *,
    image_shape: tuple[int, ...] | None = None,
    value_range: tuple[float, float] = (-1.0, 1.0),
    n_columns: int = 10,
    cell_size: float = 1.0,
):
    """Plot a grid of images, one labelled row per entry: samples, reconstructions, corruptions.

    Parameters
    ----------
    rows : mapping of str to array-like
        Row label -> images, as flat rows ``(n, C*H*W)`` (the form detectors take; see
        ``image_shape``), ``(n, H, W)`` or ``(n, C, H, W)`` with one or three channels. The
        first ``n_columns`` images of each entry are drawn.
    image_shape : tuple of int, default=None
        ``(C, H, W)`` or ``(H, W)`` of flat rows, as the detectors' ``input_shape``. None reads
        flat rows as square grayscale images.
    value_range : (float, float), default=(-1.0, 1.0)
        Pixel values drawn black and white: (-1, 1) for skood's scaled images, (0, 255) for raw
        pixels. Values outside are clipped.
    n_columns : int, default=10
        Images per row.
    cell_size : float, default=1.0
        Size of one image in inches.

    Returns
    -------
    figure : matplotlib Figure
        The figure, with one row of axes per entry of ``rows``.

    Examples
    --------
    >>> import numpy as np
    >>> from skood.plotting import plot_image_grid
    >>> rng = np.random.default_rng(0)
    >>> figure = plot_image_grid(
    ...     {"noise": rng.uniform(-1, 1, (4, 784)), "black": -np.ones((4, 784))}, n_columns=4
    ... )
    >>> len(figure.axes)
    8
    """
    if not rows:
        raise ValueError("rows is empty: give at least one row of images.")
    if n_columns < 1:
        raise ValueError(f"n_columns must be at least 1, got {n_columns!r}.")
    low, high = value_range
    if not high > low:
        raise ValueError(f"value_range must be (low, high) with high > low, got {value_range!r}.")
    grid = {label: _as_images(images, image_shape)[:n_columns] for label, images in rows.items()}
    plt = _pyplot()
    # Room for the row labels beside the images (about 0.07 inch a character at 8 points),
    # so that the images keep their cell size.
    label_width = 0.07 * max(len(str(label)) for label in grid) + 0.2
    figure, axes = plt.subplots(
        len(grid),
        n_columns,
        figsize=(n_columns * cell_size + label_width, len(grid) * cell_size),
        squeeze=False,
    )
    for axis_row, (label, images) in zip(axes, grid.items(), strict=True):
        for column, axis in enumerate(axis_row):
            axis.set_xticks([])
            axis.set_yticks([])
            if column >= len(images):
                axis.set_axis_off()
                continue
            image = images[column]
            if image.ndim == 3:  # colour: imshow takes floats in [0, 1]
                axis.imshow(np.clip((image - low) / (high - low), 0.0, 1.0))
            else:
                axis.imshow(image, cmap="gray", vmin=low, vmax=high)
        axis_row[0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    figure.tight_layout()
    return figure


@fill_doc
def plot_latent_spectrum(detectors, *, per_epoch: bool = False, ax=None):
    """Plot the sorted traced latent variance of fitted DLSGAN-family detectors, on a log scale.

    The dynamic latent scale of :class:`~skood.DLSGANDetector` shows in this spectrum: the
    coordinates the data use keep a large traced variance while the others shrink; with
    ``variant="msegan"`` the spectrum stays flatter.

    Parameters
    ----------
    detectors : fitted detector or mapping of str to fitted detectors
        Detectors with a ``latent_variance_`` attribute (``DLSGANDetector`` of any variant); a
        mapping draws one line per name.
    per_epoch : bool, default=False
        Draw the spectrum after every epoch (from ``history_[:, "traced_variance"]``, lighter
        for earlier epochs) instead of the final one alone.
    %(ax)s

    Returns
    -------
    ax : matplotlib Axes
        The axes with the spectra (one line per detector, or per epoch) and a legend.

    Examples
    --------
    >>> import numpy as np
    >>> from skood import DLSGANDetector
    >>> from skood.plotting import plot_latent_spectrum
    >>> X = np.random.default_rng(0).normal(size=(64, 4))
    >>> detector = DLSGANDetector(latent_dim=3, hidden_dims=(8,), max_epochs=2).fit(X)
    >>> ax = plot_latent_spectrum(detector)
    >>> len(ax.get_lines()[0].get_ydata())
    3
    """
    named = _named(detectors, "detector")
    ax = _axes(ax)
    for index, (name, detector) in enumerate(named.items()):
        params = detector.get_params() if hasattr(detector, "get_params") else {}
        if "variance_decay" not in params:  # the detectors that trace a latent variance
            raise TypeError(
                f"{type(detector).__name__} traces no latent variance; plot_latent_spectrum "
                "takes DLSGANDetector models."
            )
        check_is_fitted(detector, "latent_variance_")
        colour = f"C{index}"
        if per_epoch:
            spectra = np.asarray(detector.history_[:, "traced_variance"], dtype=np.float64)
            for epoch, spectrum in enumerate(spectra, start=1):
                last = epoch == len(spectra)
                ax.semilogy(
                    np.sort(spectrum)[::-1],
                    color=colour,
                    alpha=1.0 if last else 0.15 + 0.6 * epoch / len(spectra),
                    linewidth=1.5 if last else 0.8,
                    label=f"{name}, epochs 1-{len(spectra)}" if last else None,
                )
        else:
            ax.semilogy(np.sort(detector.latent_variance_)[::-1], color=colour, label=name)
    ax.set_xlabel("latent coordinate, sorted")
    ax.set_ylabel("traced variance")
    ax.legend()
    return ax
