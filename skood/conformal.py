"""ConformalDetector: split-conformal p-values and Benjamini-Hochberg flags for any detector.

Any outlier detector with ``fit`` and ``score_samples`` (higher = more normal: skood's and
scikit-learn's) is trained on one part of the inliers and scores a held-out calibration part;
a new row's p-value is its rank among the calibration scores. Flags at ``p <= alpha`` hold the
false-positive rate on inliers at ``alpha``, and Benjamini-Hochberg flags over a batch hold the
false discovery rate at ``alpha`` (Bates et al., 2023).
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, OutlierMixin, _fit_context, clone
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval
from sklearn.utils.validation import check_is_fitted, validate_data

from ._dask import is_dask_array, map_row_blocks, row_blocks
from ._outlier import default_outlier_detector, previous_fit_kept_on_failure

__all__ = ["ConformalDetector", "benjamini_hochberg"]


def benjamini_hochberg(p_values, alpha):
    """Compute the rejections of the Benjamini-Hochberg step-up procedure at level ``alpha``.

    With the p-values sorted, ``p_(1) <= ... <= p_(m)``, the ``k`` smallest are rejected for
    the largest ``k`` with ``p_(k) <= alpha * k / m`` (none where there is no such ``k``).

    Parameters
    ----------
    p_values : array-like of shape (m,)
        The p-values.
    alpha : float
        The level at which the false discovery rate is controlled.

    Returns
    -------
    rejected : ndarray of bool, shape (m,)
        True where the null hypothesis is rejected.

    Examples
    --------
    >>> from skood.conformal import benjamini_hochberg
    >>> benjamini_hochberg([0.01, 0.02, 0.5, 0.04], alpha=0.1)
    array([ True,  True, False,  True])
    """
    p = np.asarray(p_values, dtype=np.float64).ravel()
    m = p.size
    rejected = np.zeros(m, dtype=bool)
    if m == 0:
        return rejected
    order = np.argsort(p, kind="stable")
    below = p[order] <= alpha * np.arange(1, m + 1) / m
    if below.any():
        k = int(np.flatnonzero(below)[-1]) + 1
        rejected[order[:k]] = True
    return rejected


class ConformalDetector(OutlierMixin, BaseEstimator):
    """Split-conformal p-values and false-discovery-rate flags from any outlier detector.

    ``fit(X)`` trains a clone of ``detector`` on a random part of the rows of ``X`` (all
    assumed inliers) and scores the rest, the calibration rows (``calibration_size`` of
    them), or trains on all of ``X`` and scores the rows given as ``X_calibration``. The
    conformal p-value of a row ``x`` for the null hypothesis "``x`` is an inlier" is

        ``p(x) = (1 + #{j : s_j <= s(x)}) / (n + 1)``

    with ``s`` the detector's ``score_samples`` (higher = more normal) and ``s_1, ..., s_n``
    the calibration scores: a row scored below every calibration row gets ``1 / (n + 1)``, the
    smallest p-value there is. ``predict`` flags (-1) the rows with ``p <= alpha``, or, with
    ``fdr=True``, the rows the Benjamini-Hochberg procedure rejects at level ``alpha`` among
    the rows of the batch given to ``predict``.

    Parameters
    ----------
    detector : estimator instance, default=None
        The outlier detector: anything with ``fit`` and ``score_samples`` (higher = more
        normal), such as :class:`skood.DLSGANDetector` or
        :class:`sklearn.ensemble.IsolationForest`. ``None``: an ``IsolationForest()``. It is
        cloned with its own parameters, ``random_state`` included (leave it ``None`` and the
        detector's training is not reproducible even with our ``random_state``).
    calibration_size : float in (0, 1) or int, default=0.5
        Calibration rows drawn from ``X`` by ``fit``: a fraction of the rows (rounded up) or a
        count; at least one row is left to train on and at least one calibrates. Ignored when
        ``X_calibration`` is given to ``fit``.
    alpha : float in (0, 1), default=0.1
        The level: the false-positive rate on inliers (``fdr=False``) or the false discovery
        rate (``fdr=True``) that ``predict`` holds.
    fdr : bool, default=False
        ``predict`` by Benjamini-Hochberg over the batch instead of ``p <= alpha`` row by row.
    random_state : int, RandomState instance or None, default=None
        Draws the split of ``X`` into training and calibration rows; the global random state
        is never touched.

    Attributes
    ----------
    detector_ : estimator
        The fitted clone of ``detector``.
    calibration_scores_ : ndarray of shape (n_calibration,)
        The detector's scores of the calibration rows, sorted.
    train_indices_ : ndarray or None
        The rows of ``X`` the detector was trained on (sorted); ``None`` where
        ``X_calibration`` was given (then it was trained on all of ``X``).
    calibration_indices_ : ndarray or None
        The rows of ``X`` that calibrate (sorted); ``None`` where ``X_calibration`` was given.
    offset_ : float
        The score below which ``p <= alpha``: the ``k``-th lowest calibration score, ``k`` the
        largest whole number with ``k / (n + 1) <= alpha`` (``-inf`` where there is none:
        ``alpha < 1 / (n + 1)``, nothing is flagged). ``decision_function = score_samples -
        offset_``.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of the features seen during fit, where ``X`` had string column names.

    See Also
    --------
    skood.conformal.benjamini_hochberg : The step-up procedure behind ``fdr=True``.
    skood.BaggingDetector : Another meta-detector over any outlier detector.

    Notes
    -----
    The guarantee is about inliers exchangeable with the calibration rows (drawn from the
    same distribution, independently of the training rows): for such a row,
    ``P(p(x) <= alpha) <= alpha`` for every ``alpha``, whatever the detector, and the p-value
    is uniform on ``{1, ..., n + 1} / (n + 1)`` where the scores have no ties. The p-values of
    several test rows share the calibration set and so are dependent, but positively
    (PRDS): the Benjamini-Hochberg procedure over them controls the false discovery rate at
    ``alpha`` (Bates, Candès, Lei, Romano and Sesia, "Testing for outliers with conformal
    p-values", Annals of Statistics 51(1), 2023). The guarantee says nothing about power:
    a poor detector gives valid but uninformative p-values. With ``n`` calibration rows, no
    p-value is below ``1 / (n + 1)``: at ``alpha < 1 / (n + 1)`` nothing is flagged.

    ``score_samples`` gives the detector's scores (the same polarity, not p-values: they keep
    apart far outliers that all get the smallest p-value). Since the p-value is monotone in
    the score, ``p <= alpha`` is a threshold on the score, ``offset_``, and
    ``decision_function = score_samples - offset_`` is negative exactly where ``p <= alpha``,
    as in scikit-learn. With ``fdr=True``, ``decision_function`` is the same while
    ``predict`` flags by Benjamini-Hochberg, which depends on the whole batch (a row's label
    can change with the other rows given; BH flags a subset of the ``p <= alpha`` rows).
    There is no ``contamination``: ``alpha`` sets the threshold, from calibration rows rather
    than from the training rows.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.ensemble import IsolationForest
    >>> from skood import ConformalDetector
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(400, 3))
    >>> detector = ConformalDetector(
    ...     IsolationForest(n_estimators=50, random_state=0), alpha=0.05, random_state=0
    ... ).fit(X)
    >>> detector.p_values([[0.0, 0.0, 0.0], [8.0, 8.0, 8.0]]).round(3)
    array([0.97 , 0.005])
    >>> detector.predict([[0.0, 0.0, 0.0], [8.0, 8.0, 8.0]])
    array([ 1, -1])

    Benjamini-Hochberg flags over a batch with 20 shifted rows among 180 inliers:

    >>> batch = np.vstack([rng.normal(size=(180, 3)), rng.normal(4.0, 1.0, size=(20, 3))])
    >>> flags = ConformalDetector(
    ...     IsolationForest(n_estimators=50, random_state=0), fdr=True, random_state=0
    ... ).fit(X).predict(batch)
    >>> int(np.sum(flags[180:] == -1)) >= 15  # most of the shifted rows are found
    True
    """

    _parameter_constraints: dict = {
        "detector": [HasMethods(["fit", "score_samples"]), None],
        "calibration_size": [
            Interval(Integral, 1, None, closed="left"),
            Interval(Real, 0, 1, closed="neither"),
        ],
        "alpha": [Interval(Real, 0, 1, closed="neither")],
        "fdr": ["boolean"],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        detector=None,
        *,
        calibration_size=0.5,
        alpha=0.1,
        fdr=False,
        random_state=None,
    ):
        self.detector = detector
        self.calibration_size = calibration_size
        self.alpha = alpha
        self.fdr = fdr
        self.random_state = random_state

    def _detector(self):
        return default_outlier_detector() if self.detector is None else self.detector

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self._detector().__sklearn_tags__().non_deterministic
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = False
        return tags

    def _n_calibration(self, n_samples: int) -> int:
        value = self.calibration_size
        if isinstance(value, Integral) and not isinstance(value, bool):
            n_calibration = int(value)
        else:
            n_calibration = int(np.ceil(value * n_samples))
        if not 1 <= n_calibration <= n_samples - 1:
            raise ValueError(
                f"calibration_size={value!r} leaves {n_calibration} calibration and "
                f"{n_samples - n_calibration} training rows of the {n_samples} rows of X; "
                "both need at least one: give more rows, another calibration_size, or the "
                "calibration rows as X_calibration."
            )
        return n_calibration

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None, *, X_calibration=None):
        """Train the detector and score the calibration rows.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Inliers. Without ``X_calibration``, split at random into training rows and
            calibration rows (at least 2 rows); with it, all of them train the detector.
        y : None
            Ignored.
        X_calibration : array-like of shape (n_calibration, n_features), default=None
            Inliers held out from training, to calibrate on (at least one row).

        Returns
        -------
        self : ConformalDetector
            The fitted detector.
        """
        # A fit that fails leaves the detector as it was.
        with previous_fit_kept_on_failure(self):
            self._fit(X, X_calibration)
        return self

    def _fit(self, X, X_calibration) -> None:
        if X_calibration is None:
            X = validate_data(self, X, dtype=np.float64, ensure_min_samples=2)
            n_samples = X.shape[0]
            n_calibration = self._n_calibration(n_samples)
            permutation = check_random_state(self.random_state).permutation(n_samples)
            calibration = np.sort(permutation[:n_calibration])
            train = np.sort(permutation[n_calibration:])
            X_train, X_cal = X[train], X[calibration]
        else:
            X_train = validate_data(self, X, dtype=np.float64)
            X_cal = validate_data(self, X_calibration, dtype=np.float64, reset=False)
            train = calibration = None
        detector = clone(self._detector()).fit(X_train)
        scores = np.asarray(detector.score_samples(X_cal), dtype=np.float64).ravel()
        self.detector_ = detector
        self.calibration_scores_ = np.sort(scores)
        self.train_indices_ = train
        self.calibration_indices_ = calibration
        # p <= alpha  <=>  1 + #{s_j <= s} <= k  <=>  s < s_(k), with k the largest whole
        # number where k / (n + 1) <= alpha (in the float arithmetic of p_values).
        n = scores.size
        k = int(np.floor(self.alpha * (n + 1)))
        while (k + 1) / (n + 1.0) <= self.alpha:
            k += 1
        while k > 0 and k / (n + 1.0) > self.alpha:
            k -= 1
        self.offset_ = float(self.calibration_scores_[k - 1]) if k > 0 else float("-inf")

    @row_blocks(np.float64)
    def score_samples(self, X):
        """The detector's scores; higher = more normal.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to score.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            ``detector_.score_samples(X)``, in float64.
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return np.asarray(self.detector_.score_samples(X), dtype=np.float64).ravel()

    @row_blocks(np.float64)
    def p_values(self, X):
        """Conformal p-values for "the row is an inlier"; small for outliers.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to test.

        Returns
        -------
        p_values : ndarray of shape (n_samples,)
            ``(1 + #{calibration scores <= score}) / (n_calibration + 1)``, in
            ``[1 / (n_calibration + 1), 1]``.
        """
        scores = self.score_samples(X)
        calibration = self.calibration_scores_
        at_most = np.searchsorted(calibration, scores, side="right")
        return (1.0 + at_most) / (calibration.size + 1.0)

    @row_blocks(np.float64)
    def decision_function(self, X):
        """``score_samples(X) - offset_``: negative exactly where ``p <= alpha``.

        With ``fdr=True`` ``predict`` flags by Benjamini-Hochberg over the batch instead, and
        the sign of the decision is the flag of ``p <= alpha`` alone (see Notes).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to score.

        Returns
        -------
        decision : ndarray of shape (n_samples,)
            ``score_samples(X) - offset_``.
        """
        return self.score_samples(X) - self.offset_

    def predict(self, X):
        """-1 for the flagged rows, +1 for the others.

        Flagged: ``p <= alpha`` (``fdr=False``), or rejected by Benjamini-Hochberg at level
        ``alpha`` among the rows of ``X`` (``fdr=True``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to label.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            -1 or +1 for every row.
        """
        if is_dask_array(X):
            if not self.fdr:
                return map_row_blocks(self.predict, X, np.int64)
            # Benjamini-Hochberg ranks the p-values of the whole batch: computed, one float a row.
            p = np.asarray(self.p_values(X).compute())
        else:
            p = self.p_values(X)
        flagged = benjamini_hochberg(p, self.alpha) if self.fdr else p <= self.alpha
        return np.where(flagged, -1, 1)

    def fit_predict(self, X, y=None, *, X_calibration=None):
        """``fit(X, X_calibration=X_calibration).predict(X)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Inliers to fit on, then to label.
        y : None
            Ignored.
        X_calibration : array-like of shape (n_calibration, n_features), default=None
            Calibration rows, as in ``fit``.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            -1 or +1 for every row of ``X``.
        """
        return self.fit(X, X_calibration=X_calibration).predict(X)
