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

import numpy as np
from sklearn import metrics as _skm
from sklearn.utils import check_random_state

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


def _is_outlier(y_true, outlier_label) -> np.ndarray:
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
        raise ValueError(f"y_true contains labels {sorted(present)}; {hint}")
    return y_true == outlier_label


def _check(y_true, scores, outlier_label, *, need_both: bool = True):
    outlier = _is_outlier(y_true, outlier_label)
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 1 or scores.shape[0] != outlier.shape[0]:
        raise ValueError(
            f"scores must be 1-D with one value per label: got shape {scores.shape} for "
            f"{outlier.shape[0]} labels."
        )
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores contain NaN or infinite values.")
    if need_both and (outlier.all() or not outlier.any()):
        raise ValueError(
            "y_true holds a single class; ranking metrics need both inliers and outliers."
        )
    return outlier, scores


def roc_auc(y_true, scores, *, outlier_label=-1) -> float:
    """Area under the ROC curve with outliers as the positive class.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        +1 inlier / -1 outlier (or 0/1 with ``outlier_label=1``).
    scores : array-like of shape (n_samples,)
        Normality scores, higher = more normal (``score_samples``, ``decision_function``).
    outlier_label : {-1, 1}, default=-1
        The label that marks outliers.

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


def average_precision(y_true, scores, *, outlier_label=-1, positive="outlier") -> float:
    """Average precision (area under the precision-recall curve).

    Parameters
    ----------
    y_true, scores, outlier_label
        As in :func:`roc_auc`.
    positive : {"outlier", "inlier"}, default="outlier"
        ``"outlier"`` gives AUPR-Out (outliers positive, ranked by ``-scores``); ``"inlier"``
        gives AUPR-In (inliers positive, ranked by ``scores``).

    Returns
    -------
    ap : float

    Examples
    --------
    >>> from skood.metrics import average_precision
    >>> average_precision([1, 1, -1], [0.9, 0.8, 0.1])
    1.0
    """
    outlier, scores = _check(y_true, scores, outlier_label)
    if positive == "outlier":
        return float(_skm.average_precision_score(outlier, -scores))
    if positive == "inlier":
        return float(_skm.average_precision_score(~outlier, scores))
    raise ValueError(f"positive must be 'outlier' or 'inlier', got {positive!r}.")


def tnr_at_tpr(y_true, scores, *, tpr=0.95, outlier_label=-1) -> float:
    """Fraction of outliers rejected at the threshold that accepts ``tpr`` of the inliers.

    Inliers are the positive class: the ROC curve is computed on ``scores`` with inliers
    positive and ``TNR = 1 - FPR`` is interpolated at the requested TPR
    (``np.interp(tpr, tpr_curve, 1 - fpr_curve)``), as the OOD literature reports it; along a
    flat stretch of the curve the lowest FPR is used.

    Parameters
    ----------
    y_true, scores, outlier_label
        As in :func:`roc_auc`.
    tpr : float in (0, 1], default=0.95
        Fraction of inliers accepted.

    Returns
    -------
    tnr : float

    Examples
    --------
    >>> from skood.metrics import tnr_at_tpr
    >>> tnr_at_tpr([1, 1, 1, 1, -1, -1], [6, 5, 4, 3, 2, 1], tpr=1.0)
    1.0
    """
    if not 0 < tpr <= 1:
        raise ValueError(f"tpr must be in (0, 1], got {tpr!r}.")
    outlier, scores = _check(y_true, scores, outlier_label)
    fpr_curve, tpr_curve, _ = _skm.roc_curve(~outlier, scores, drop_intermediate=False)
    # Where the curve runs flat at one TPR, keep its lowest FPR (first point): np.interp needs
    # distinct abscissae, and that threshold accepts the same inliers and fewest outliers.
    tpr_levels, first = np.unique(tpr_curve, return_index=True)
    return float(np.interp(tpr, tpr_levels, 1.0 - fpr_curve[first]))


def fpr_at_tpr(y_true, scores, *, tpr=0.95, outlier_label=-1) -> float:
    """Fraction of outliers accepted at the threshold that accepts ``tpr`` of the inliers.

    ``1 - tnr_at_tpr``; see :func:`tnr_at_tpr`.

    Examples
    --------
    >>> from skood.metrics import fpr_at_tpr
    >>> fpr_at_tpr([1, 1, 1, 1, -1, -1], [6, 5, 4, 3, 2, 1], tpr=1.0)
    0.0
    """
    return 1.0 - tnr_at_tpr(y_true, scores, tpr=tpr, outlier_label=outlier_label)


def balanced_roc_auc(y_true, scores, *, n_repeats=5, random_state=None, outlier_label=-1) -> float:
    """ROC AUC on equal numbers of inliers and outliers, averaged over random subsamples.

    The larger class is subsampled without replacement to the size of the smaller one, as the
    approximate-mass paper evaluates; the mean over ``n_repeats`` draws is returned.

    Parameters
    ----------
    y_true, scores, outlier_label
        As in :func:`roc_auc`.
    n_repeats : int, default=5
        Number of subsamples (only matters when the classes differ in size).
    random_state : int, RandomState instance or None, default=None
        Seed of the subsampling.

    Returns
    -------
    auc : float

    Examples
    --------
    >>> from skood.metrics import balanced_roc_auc
    >>> balanced_roc_auc([1, 1, 1, -1], [3, 2, 1, 0], random_state=0)
    1.0
    """
    outlier, scores = _check(y_true, scores, outlier_label)
    if n_repeats < 1:
        raise ValueError(f"n_repeats must be at least 1, got {n_repeats!r}.")
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


def f1_at_contamination(y_true, scores, *, contamination=None, outlier_label=-1) -> float:
    """F1 (outliers positive) when the lowest-scoring ``contamination`` fraction is flagged.

    The threshold is the ``100 * contamination`` percentile of ``scores`` and samples strictly
    below it are flagged, as a detector's ``predict`` does with ``offset_``; if ties leave none
    flagged, samples at the threshold are flagged too.

    Parameters
    ----------
    y_true, scores, outlier_label
        As in :func:`roc_auc`.
    contamination : float in (0, 1) or None, default=None
        Fraction to flag; None uses the true outlier fraction of ``y_true``.

    Returns
    -------
    f1 : float

    Examples
    --------
    >>> from skood.metrics import f1_at_contamination
    >>> f1_at_contamination([1, 1, 1, -1], [0.9, 0.8, 0.7, 0.1])
    1.0
    """
    outlier, scores = _check(y_true, scores, outlier_label)
    if contamination is None:
        contamination = outlier.mean()
    if not 0 < contamination < 1:
        raise ValueError(f"contamination must be in (0, 1), got {contamination!r}.")
    threshold = np.percentile(scores, 100.0 * contamination)
    flagged = scores < threshold
    if not flagged.any():
        flagged = scores <= threshold
    return float(_skm.f1_score(outlier, flagged, zero_division=0.0))


def outlier_f1(y_true, y_pred, *, outlier_label=-1) -> float:
    """F1 of a detector's ``predict`` output (-1 outlier, +1 inlier), outliers positive.

    Examples
    --------
    >>> from skood.metrics import outlier_f1
    >>> outlier_f1([1, 1, -1, -1], [1, -1, -1, -1])
    0.8
    """
    outlier = _is_outlier(y_true, outlier_label)
    y_pred = np.asarray(y_pred)
    if not set(np.unique(y_pred).tolist()) <= {-1, 1}:
        raise ValueError("y_pred must hold predict's labels: -1 (outlier) or +1 (inlier).")
    if y_pred.shape != outlier.shape:
        raise ValueError(f"y_pred has shape {y_pred.shape}, y_true {outlier.shape}.")
    return float(_skm.f1_score(outlier, y_pred == -1, zero_division=0.0))


_RANKING = {
    "roc_auc": roc_auc,
    "average_precision": average_precision,
    "tnr_at_tpr": tnr_at_tpr,
    "balanced_roc_auc": balanced_roc_auc,
}


def make_outlier_scorer(metric: str, *, outlier_label=-1, **kwargs):
    """A scorer for ``GridSearchCV``/``cross_val_score`` from one of the metrics above.

    Ranking metrics score with the estimator's ``decision_function`` (any scikit-learn outlier
    detector or a Pipeline ending in one); ``"f1"`` uses ``predict``. Greater is better.

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
    scorer : callable ``scorer(estimator, X, y)``

    Examples
    --------
    >>> from skood.metrics import make_outlier_scorer
    >>> scorer = make_outlier_scorer("roc_auc", outlier_label=1)  # for 0/1 labels
    """
    if metric == "f1":
        return _skm.make_scorer(
            outlier_f1, response_method="predict", outlier_label=outlier_label, **kwargs
        )
    if metric not in _RANKING:
        raise ValueError(f"metric must be one of {sorted([*_RANKING, 'f1'])}, got {metric!r}.")
    return _skm.make_scorer(
        _RANKING[metric],
        response_method="decision_function",
        outlier_label=outlier_label,
        **kwargs,
    )


#: ROC AUC scorer for scikit-learn labels (+1 inlier, -1 outlier).
outlier_auroc_scorer = make_outlier_scorer("roc_auc")
#: Average-precision (outliers positive) scorer for scikit-learn labels.
outlier_average_precision_scorer = make_outlier_scorer("average_precision")
#: F1 of ``predict`` (outliers positive) for scikit-learn labels.
outlier_f1_scorer = make_outlier_scorer("f1")
