"""Metrics for outlier and OOD detection, built on :mod:`sklearn.metrics`.

Conventions, the same as scikit-learn's outlier detectors:

* ``scores`` are oriented like ``score_samples`` and ``decision_function``: **higher means more
  normal**.
* ``y_true`` uses **+1 for inliers and -1 for outliers** by default. For the ODDS/PyOD form,
  where ``1`` marks an outlier and ``0`` an inlier, pass ``outlier_label=1``. Labels are never
  guessed: a silent sign flip would invert every AUROC.

Outliers are the positive class of ROC AUC, average precision and F1 unless a function says
otherwise; TNR/FPR at a TPR treat inliers as positive, as the OOD literature does.

>>> import numpy as np
>>> from skood.metrics import roc_auc
>>> y = np.array([1, 1, 1, -1])            # the last sample is an outlier
>>> scores = np.array([0.9, 0.8, 0.7, 0.1])  # and it has the lowest normality score
>>> roc_auc(y, scores)
1.0
>>> roc_auc(np.array([0, 0, 0, 1]), scores, outlier_label=1)
1.0
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike
from sklearn import metrics as _skm
from sklearn.utils import check_random_state

from ._docstrings import fill_doc

__all__ = [
    "average_precision",
    "balanced_roc_auc",
    "f1_at_contamination",
    "fpr_at_tpr",
    "make_outlier_scorer",
    "outlier_auroc_scorer",
    "outlier_average_precision_scorer",
    "outlier_f1",
    "outlier_f1_scorer",
    "roc_auc",
    "tnr_at_tpr",
]


def _is_outlier(y_true: ArrayLike, outlier_label: int) -> np.ndarray:
    """Boolean mask of outliers, after checking that the labels follow the stated convention."""
    y_true = np.asarray(y_true)
    if y_true.ndim != 1:
        raise ValueError(f"y_true must be 1-D, got shape {y_true.shape}.")
    if outlier_label == -1:
        allowed = {-1, 1}
        hint = (
            "skood follows scikit-learn: +1 inlier, -1 outlier. For 0/1 labels with 1 = "
            "outlier (ODDS/PyOD), pass outlier_label=1."
        )
    elif outlier_label == 1:
        allowed = {0, 1}
        hint = "With outlier_label=1, labels must be 0 (inlier) or 1 (outlier)."
    else:
        raise ValueError(f"outlier_label must be -1 or 1, got {outlier_label!r}.")
    present = set(np.unique(y_true).tolist())
    if not present <= allowed:
        raise ValueError(f"y_true contains labels {sorted(present, key=str)}; {hint}")
    return y_true == outlier_label


def _check(
    y_true: ArrayLike, scores: ArrayLike, outlier_label: int
) -> tuple[np.ndarray, np.ndarray]:
    """Outlier mask and float64 scores, validated for a ranking metric."""
    outlier = _is_outlier(y_true, outlier_label)
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 1 or scores.shape[0] != outlier.shape[0]:
        raise ValueError(
            f"scores must be 1-D with one value per label: got shape {scores.shape} for "
            f"{outlier.shape[0]} labels."
        )
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores contain NaN or infinite values.")
    if outlier.all() or not outlier.any():
        raise ValueError(
            "y_true holds a single class; ranking metrics need both inliers and outliers."
        )
    return outlier, scores


@fill_doc
def roc_auc(y_true: ArrayLike, scores: ArrayLike, *, outlier_label: int = -1) -> float:
    """Area under the ROC curve with outliers as the positive class.

    Outliers are ranked by ``-scores``. AUROC is symmetric in the choice of positive class, but
    computing it this way keeps the sign convention in one visible place.

    Parameters
    ----------
    %(y_true)s
    scores : array-like of shape (n_samples,)
        Normality scores, higher = more normal (``score_samples``, ``decision_function``).
    outlier_label : {-1, 1}, default=-1
        The label that marks outliers: -1 for scikit-learn's labels, 1 for ODDS/PyOD 0/1 labels.

    Returns
    -------
    auc : float
        1.0 when every outlier scores below every inlier, 0.5 at chance.

    Examples
    --------
    >>> from skood.metrics import roc_auc
    >>> roc_auc([1, 1, -1, -1], [0.9, 0.4, 0.5, 0.1])
    0.75
    """
    outlier, scores = _check(y_true, scores, outlier_label)
    return float(_skm.roc_auc_score(outlier, -scores))


@fill_doc
def average_precision(
    y_true: ArrayLike,
    scores: ArrayLike,
    *,
    outlier_label: int = -1,
    positive: Literal["outlier", "inlier"] = "outlier",
) -> float:
    """Average precision (area under the precision-recall curve).

    Parameters
    ----------
    %(y_true)s
    %(scores)s
    %(outlier_label)s
    positive : {"outlier", "inlier"}, default="outlier"
        ``"outlier"`` gives AUPR-Out (outliers positive, ranked by ``-scores``); ``"inlier"``
        gives AUPR-In (inliers positive, ranked by ``scores``).

    Returns
    -------
    ap : float
        :func:`sklearn.metrics.average_precision_score` for the chosen positive class; its
        chance level is that class's share of the samples.

    Examples
    --------
    >>> from skood.metrics import average_precision
    >>> average_precision([1, 1, -1], [0.9, 0.8, 0.1])
    1.0
    >>> average_precision([1, 1, -1], [0.9, 0.8, 0.1], positive="inlier")
    1.0
    """
    if positive not in ("outlier", "inlier"):
        raise ValueError(f"positive must be 'outlier' or 'inlier', got {positive!r}.")
    outlier, scores = _check(y_true, scores, outlier_label)
    if positive == "outlier":
        return float(_skm.average_precision_score(outlier, -scores))
    return float(_skm.average_precision_score(~outlier, scores))


@fill_doc
def tnr_at_tpr(
    y_true: ArrayLike, scores: ArrayLike, *, tpr: float = 0.95, outlier_label: int = -1
) -> float:
    """Fraction of outliers rejected at the threshold that accepts ``tpr`` of the inliers.

    Inliers (in-distribution) are the positive class: the ROC curve is computed on ``scores``
    with inliers positive, and ``TNR = 1 - FPR`` is read off it at the requested TPR by linear
    interpolation (``np.interp(tpr, tpr_curve, 1 - fpr_curve)``), as the OOD literature reports
    "TNR at 95% TPR". Where the curve runs flat at exactly the requested TPR, the lowest FPR of
    that stretch is used.

    Parameters
    ----------
    %(y_true)s
    %(scores)s
    %(tpr)s
    %(outlier_label)s

    Returns
    -------
    tnr : float
        Fraction of outliers scoring below the threshold, in [0, 1].

    Examples
    --------
    >>> from skood.metrics import tnr_at_tpr
    >>> tnr_at_tpr([1, 1, 1, 1, -1, -1], [6, 5, 4, 3, 2, 1], tpr=1.0)
    1.0
    >>> tnr_at_tpr([1, 1, 1, 1, -1, -1], [6, 5, 3, 1, 4, 0], tpr=0.75)
    0.5
    """
    if not 0 < tpr <= 1:
        raise ValueError(f"tpr must be in (0, 1], got {tpr!r}.")
    outlier, scores = _check(y_true, scores, outlier_label)
    fpr_curve, tpr_curve, _ = _skm.roc_curve(~outlier, scores, drop_intermediate=False)
    return _interpolate_tnr(tpr_curve, 1.0 - fpr_curve, tpr)


def _interpolate_tnr(tpr_curve: np.ndarray, tnr_curve: np.ndarray, tpr: float) -> float:
    """TNR along the ROC curve at ``tpr``, where the curve may run flat at one TPR.

    ``np.interp`` needs distinct abscissae, so each TPR level is kept once per side: a level hit
    exactly takes its highest TNR (that threshold accepts the same inliers and the fewest
    outliers); between two levels the curve's own segment is followed, from the last point of the
    lower level to the first point of the upper one. Deduplicating to a single point per level
    would interpolate from the wrong end of a flat stretch and overstate the TNR.
    """
    levels, first = np.unique(tpr_curve, return_index=True)
    last = np.r_[first[1:] - 1, len(tpr_curve) - 1]
    # Tolerance: tpr_curve holds ratios k / n_inliers, which a requested 0.95 may miss by an ulp.
    upper = int(np.searchsorted(levels, tpr - 1e-12))
    if abs(levels[upper] - tpr) <= 1e-12:
        return float(tnr_curve[first[upper]])
    lower = upper - 1  # levels[0] is 0 and tpr > 0, so a lower level exists
    return float(
        np.interp(
            tpr,
            [levels[lower], levels[upper]],
            [tnr_curve[last[lower]], tnr_curve[first[upper]]],
        )
    )


@fill_doc
def fpr_at_tpr(
    y_true: ArrayLike, scores: ArrayLike, *, tpr: float = 0.95, outlier_label: int = -1
) -> float:
    """Fraction of outliers accepted at the threshold that accepts ``tpr`` of the inliers.

    ``1 - tnr_at_tpr``: the "FPR at 95% TPR" of the OOD literature; see :func:`tnr_at_tpr`.

    Parameters
    ----------
    %(y_true)s
    %(scores)s
    %(tpr)s
    %(outlier_label)s

    Returns
    -------
    fpr : float
        Fraction of outliers scoring at or above the threshold, in [0, 1]; lower is better.

    Examples
    --------
    >>> from skood.metrics import fpr_at_tpr
    >>> fpr_at_tpr([1, 1, 1, 1, -1, -1], [6, 5, 4, 3, 2, 1], tpr=1.0)
    0.0
    """
    return 1.0 - tnr_at_tpr(y_true, scores, tpr=tpr, outlier_label=outlier_label)


@fill_doc
def balanced_roc_auc(
    y_true: ArrayLike,
    scores: ArrayLike,
    *,
    n_repeats: int = 5,
    random_state: int | np.random.RandomState | None = None,
    outlier_label: int = -1,
) -> float:
    """ROC AUC on equal numbers of inliers and outliers, averaged over random subsamples.

    The larger class is subsampled without replacement to the size of the smaller one, as the
    approximate-mass paper evaluates; the mean over ``n_repeats`` draws is returned. When the
    classes are already the same size one draw is all there is, and the result is
    :func:`roc_auc`.

    Parameters
    ----------
    %(y_true)s
    %(scores)s
    n_repeats : int, default=5
        Number of subsamples (only matters when the classes differ in size).
    random_state : int, RandomState instance or None, default=None
        Seed of the subsampling.
    %(outlier_label)s

    Returns
    -------
    auc : float
        Mean ROC AUC over the subsamples.

    Examples
    --------
    Three inliers and two outliers: a draw keeps two of the inliers, and its AUC is 0.75,
    0.5 or 0.25 depending on which two; the full AUC is 0.5.

    >>> from skood.metrics import balanced_roc_auc, roc_auc
    >>> y, scores = [1, 1, 1, -1, -1], [5, 3, 1, 4, 2]
    >>> roc_auc(y, scores)
    0.5
    >>> sorted({balanced_roc_auc(y, scores, n_repeats=1, random_state=seed) for seed in range(20)})
    [0.25, 0.5, 0.75]
    >>> balanced_roc_auc(y, scores, random_state=1)  # the mean of five draws
    0.4
    """
    outlier, scores = _check(y_true, scores, outlier_label)
    if isinstance(n_repeats, bool) or not isinstance(n_repeats, int | np.integer) or n_repeats < 1:
        raise ValueError(f"n_repeats must be a positive integer, got {n_repeats!r}.")
    rng = check_random_state(random_state)
    inliers, outliers = np.flatnonzero(~outlier), np.flatnonzero(outlier)
    size = min(len(inliers), len(outliers))
    values = []
    for _ in range(n_repeats if len(inliers) != len(outliers) else 1):
        keep = np.concatenate(
            [rng.choice(inliers, size, replace=False), rng.choice(outliers, size, replace=False)]
        )
        values.append(_skm.roc_auc_score(outlier[keep], -scores[keep]))
    return float(np.mean(values))


@fill_doc
def f1_at_contamination(
    y_true: ArrayLike,
    scores: ArrayLike,
    *,
    contamination: float | None = None,
    outlier_label: int = -1,
) -> float:
    """F1 (outliers positive) when the lowest-scoring ``contamination`` fraction is flagged.

    The threshold is the ``100 * contamination`` percentile of ``scores`` and samples strictly
    below it are flagged, as a detector's ``predict`` does with ``offset_``; if ties leave none
    flagged, samples at the threshold are flagged too.

    Parameters
    ----------
    %(y_true)s
    %(scores)s
    contamination : float in (0, 1) or None, default=None
        Fraction to flag; None uses the true outlier fraction of ``y_true`` (the PyOD
        benchmark protocol).
    %(outlier_label)s

    Returns
    -------
    f1 : float
        :func:`sklearn.metrics.f1_score` with outliers as the positive class.

    Examples
    --------
    >>> from skood.metrics import f1_at_contamination
    >>> f1_at_contamination([1, 1, 1, -1], [0.9, 0.8, 0.7, 0.1])
    1.0
    """
    outlier, scores = _check(y_true, scores, outlier_label)
    if contamination is None:
        contamination = float(outlier.mean())
    if not 0 < contamination < 1:
        raise ValueError(f"contamination must be in (0, 1), got {contamination!r}.")
    threshold = np.percentile(scores, 100.0 * contamination)
    flagged = scores < threshold
    if not flagged.any():
        flagged = scores <= threshold
    return float(_skm.f1_score(outlier, flagged, zero_division=0.0))


@fill_doc
def outlier_f1(y_true: ArrayLike, y_pred: ArrayLike, *, outlier_label: int = -1) -> float:
    """F1 of a detector's ``predict`` output (-1 outlier, +1 inlier), outliers positive.

    Parameters
    ----------
    %(y_true)s
    y_pred : array-like of shape (n_samples,)
        Output of ``predict``: -1 outlier, +1 inlier (always scikit-learn's form, whatever
        ``outlier_label`` says about ``y_true``).
    outlier_label : {-1, 1}, default=-1
        The label that marks outliers in ``y_true``.

    Returns
    -------
    f1 : float
        :func:`sklearn.metrics.f1_score` with outliers as the positive class (0.0 when no
        outlier is predicted or present).

    Examples
    --------
    >>> from skood.metrics import outlier_f1
    >>> outlier_f1([1, 1, -1, -1], [1, -1, -1, -1])
    0.8
    """
    outlier = _is_outlier(y_true, outlier_label)
    y_pred = np.asarray(y_pred)
    if y_pred.shape != outlier.shape:
        raise ValueError(f"y_pred has shape {y_pred.shape}, y_true {outlier.shape}.")
    if not set(np.unique(y_pred).tolist()) <= {-1, 1}:
        raise ValueError("y_pred must hold predict's labels: -1 (outlier) or +1 (inlier).")
    return float(_skm.f1_score(outlier, y_pred == -1, zero_division=0.0))


_RANKING_METRICS: dict[str, Callable[..., float]] = {
    "roc_auc": roc_auc,
    "average_precision": average_precision,
    "tnr_at_tpr": tnr_at_tpr,
    "balanced_roc_auc": balanced_roc_auc,
}


def make_outlier_scorer(metric: str, *, outlier_label: int = -1, **kwargs) -> Callable:
    """A scorer for ``GridSearchCV``/``cross_val_score`` from one of the metrics above.

    Ranking metrics score with the estimator's ``decision_function`` (any scikit-learn outlier
    detector, or a Pipeline ending in one); ``"f1"`` uses ``predict``. Greater is better for
    all of them.

    Parameters
    ----------
    metric : {"roc_auc", "average_precision", "tnr_at_tpr", "balanced_roc_auc", "f1"}
        The metric.
    outlier_label : {-1, 1}, default=-1
        -1 for scikit-learn's labels (+1 inlier, -1 outlier); 1 for 0/1 labels with 1 = outlier.
    **kwargs
        Further keyword arguments of the metric (``tpr=0.9``, ``positive="inlier"``, ...).

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y)``, as made by :func:`sklearn.metrics.make_scorer`.

    Examples
    --------
    >>> from sklearn.ensemble import IsolationForest
    >>> from skood.metrics import make_outlier_scorer
    >>> X = [[0.0], [0.1], [0.2], [0.1], [5.0]]
    >>> y = [0, 0, 0, 0, 1]  # ODDS/PyOD form: 1 = outlier
    >>> scorer = make_outlier_scorer("roc_auc", outlier_label=1)
    >>> scorer(IsolationForest(n_estimators=10, random_state=0).fit(X), X, y)
    1.0
    """
    if metric == "f1":
        function, response_method = outlier_f1, "predict"
    elif metric in _RANKING_METRICS:
        function, response_method = _RANKING_METRICS[metric], "decision_function"
    else:
        choices = sorted([*_RANKING_METRICS, "f1"])
        raise ValueError(f"metric must be one of {choices}, got {metric!r}.")
    # Catch a misspelt keyword now rather than inside the first cross-validation fold.
    unknown = set(kwargs) - set(inspect.signature(function).parameters)
    if unknown:
        raise TypeError(f"{metric!r} takes no argument(s) {sorted(unknown)}.")
    return _skm.make_scorer(
        function, response_method=response_method, outlier_label=outlier_label, **kwargs
    )


#: ROC AUC scorer for scikit-learn labels (+1 inlier, -1 outlier).
outlier_auroc_scorer = make_outlier_scorer("roc_auc")
#: Average-precision (outliers positive) scorer for scikit-learn labels.
outlier_average_precision_scorer = make_outlier_scorer("average_precision")
#: F1 of ``predict`` (outliers positive) for scikit-learn labels.
outlier_f1_scorer = make_outlier_scorer("f1")
