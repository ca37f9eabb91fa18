"""BaggingDetector: an ensemble of outlier detectors, bagged the scikit-learn way.

Members are clones of one detector (skood's or scikit-learn's) that differ by seed and,
optionally, by the training rows and features they see, as in scikit-learn's
``BaggingClassifier`` and ``IsolationForest``. Their scores are put on a common scale with
statistics of their training scores, fixed at fit, and averaged.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, OutlierMixin, _fit_context, clone
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ._dask import row_blocks
from ._joint import can_fit_jointly, fit_jointly
from ._outlier import (
    OffsetThresholdMixin,
    default_outlier_detector,
    previous_fit_kept_on_failure,
)

__all__ = ["BaggingDetector"]

_MAX_INT = np.iinfo(np.int32).max


def _fit_member(estimator, X, y, rows, features, seed):
    """Fit one member on its rows and features; return it and its scores on every row."""
    if "random_state" in estimator.get_params(deep=False):
        estimator.set_params(random_state=seed)
    X_member = X[rows][:, features]
    if y is None:
        estimator.fit(X_member)
    else:
        estimator.fit(X_member, y[rows])
    return estimator, _training_scores(estimator, X, features)


def _training_scores(member, X, features) -> np.ndarray:
    """A fitted member's float64 scores of every training row, on its own features."""
    return np.asarray(member.score_samples(X[:, features]), dtype=np.float64)


class BaggingDetector(OffsetThresholdMixin, OutlierMixin, BaseEstimator):
    """An ensemble of outlier detectors whose rescaled scores are averaged.

    Each of the ``n_estimators`` members is a clone of ``estimator`` with its own seed (set
    through ``random_state`` where the estimator has that parameter), fitted on a draw of the
    training rows (``max_samples``, with or without replacement: ``bootstrap``) and of the
    features (``max_features``, without replacement). After fitting, each member scores all
    training rows (on its own features); these training scores fix how that member's scores are
    put on a common scale (``combination``), and ``score_samples`` is the mean of the members'
    rescaled scores, higher = more normal. Members are fitted in parallel through joblib
    (``n_jobs``; any joblib backend, Dask or Ray included, through
    ``joblib.parallel_backend``), or, for skood detectors whose networks stack (DLSGAN and
    its baselines on tables), all in one training whose steps update every member at once
    (``joint_training``).

    Parameters
    ----------
    estimator : estimator instance, default=None
        The outlier detector to bag: anything with ``fit`` and ``score_samples`` (higher = more
        normal), such as :class:`skood.DLSGANDetector` or
        :class:`sklearn.ensemble.IsolationForest`. ``None``: an ``IsolationForest()``. A
        detector whose ``fit`` requires ``y`` (its tags say so, like
        :class:`skood.PostHocDetector`) gets the labels of its rows, and then the ensemble's
        ``fit`` requires ``y`` as well.
    n_estimators : int, default=5
        Number of members.
    max_samples : int or float, default=1.0
        Rows each member is trained on: an int is a count (at most ``n_samples``), a float in
        (0, 1] a fraction of ``n_samples`` (at least one row).
    max_features : int or float, default=1.0
        Features each member sees: a count (at most ``n_features``) or a fraction in (0, 1]
        (at least one feature), drawn without replacement.
    bootstrap : bool, default=False
        Draw the rows with replacement. Without it (and ``max_samples=1.0``) every member sees
        every row and the members differ by seed only.
    combination : {"rank", "zscore", "mean"}, default="rank"
        How the members' scores are put on a common scale before the mean; see Notes.
    contamination : float in (0, 0.5], default=0.1
        Expected fraction of outliers: ``offset_`` is the ``100 * contamination`` percentile
        of the ensemble's training scores.
    n_jobs : int, default=None
        Members fitted at once (joblib; ``None`` is 1 unless in a
        ``joblib.parallel_backend`` context, ``-1`` all processors). The default backend runs
        processes, so the members pickle there and back. Not used when the members train
        jointly.
    joint_training : bool or "auto", default="auto"
        Train the members in one training, their networks stacked so that each step updates
        every member in one batched pass (see Notes). ``"auto"``: where the estimator allows
        it (skood's DLSGAN, MSEGAN, InfoGAN and flow on tables); ``True`` requires it; ``False``
        fits the members one by one (or in parallel, ``n_jobs``).
    random_state : int, RandomState instance or None, default=None
        Draws one seed per member (its ``random_state`` and its rows and features); the global
        random state is never touched.
    verbose : int, default=0
        Verbosity of joblib's progress while the members fit.

    Attributes
    ----------
    estimators_ : list of estimators
        The fitted members.
    estimators_samples_ : list of ndarray
        The training rows (indices, sorted, repeated where drawn with replacement) of each
        member.
    estimators_features_ : list of ndarray
        The features (indices, sorted) each member sees.
    seeds_ : ndarray of shape (n_estimators,)
        The seed of each member.
    joint_training_ : bool
        Whether the members were trained jointly.
    training_scores_ : list of ndarray
        Each member's raw scores of all training rows, sorted (the ``"rank"`` scale).
    score_means_ : ndarray of shape (n_estimators,)
        Mean of each member's training scores (the ``"zscore"`` scale).
    score_scales_ : ndarray of shape (n_estimators,)
        Standard deviation of each member's training scores (1 where it is 0).
    offset_ : float
        ``decision_function = score_samples - offset_``.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of the features seen during fit, where ``X`` had string column names.

    See Also
    --------
    sklearn.ensemble.BaggingClassifier : The bagging this follows, for classifiers.
    sklearn.ensemble.IsolationForest : Bagged isolation trees; scikit-learn's own ensemble
        of outlier detectors.

    Notes
    -----
    Members' raw scores live on unrelated scales (a GAN's latent log-likelihood, a forest's
    path length), so each is rescaled by its own training scores ``t_1, ..., t_n`` (all
    training rows, the member's features) before the mean:

    * ``"rank"``: the member's empirical distribution function of its training scores,
      interpolated linearly between them: 0 at the lowest training score, 1 at the highest,
      ``(k - 1) / (n - 1)`` at the ``k``-th lowest; beyond them, linear tails in units of the
      training scores' range, ``(s - t_min) / (t_max - t_min)`` below and ``1 + (s - t_max) /
      (t_max - t_min)`` above. Monotone, insensitive to the scale, and within the training
      range insensitive to extreme training scores. Interpolated rather than the plain step
      ``#{i : t_i <= s} / n``, so that a training row scored again (float noise of another
      batch size) keeps its rank instead of jumping a step. The tails keep apart rows scored
      below every training row: clipped at 0, they would tie, and they are many where a
      member fits its few training rows closely (on four splits of lympho, 88 training rows,
      five flows scored 55 % of the test rows below all their training rows; clipped ranks
      gave ROC AUC 0.78, the tails 0.97, one flow 0.95; ``docs/ensemble.md``).
    * ``"zscore"``: ``s -> (s - mean(t)) / std(t)`` (``std`` 1 where it is 0). Keeps how far
      outside the training range a row lies, and is sensitive to heavy-tailed members.
    * ``"mean"``: the raw scores, for members on one scale already.

    Joint training gives each member what a fit of its own gives it (its random streams,
    history, learning-rate schedule and optimizer moments; only float rounding differs, a
    batched matrix product rounding differently from a single one), at a fraction of the
    cost: a training step on a table costs its fixed overhead more than its arithmetic, and
    the stacked step pays that overhead once for all members. Five DLSGANs on tables train
    in about two fits' time (``docs/ensemble.md`` gives the measurements).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.ensemble import IsolationForest
    >>> from skood import BaggingDetector
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(200, 3))
    >>> detector = BaggingDetector(
    ...     IsolationForest(n_estimators=20), n_estimators=3, max_samples=0.5, random_state=0
    ... ).fit(X)
    >>> detector.predict([[0.0, 0.0, 0.0], [8.0, 8.0, 8.0]])
    array([ 1, -1])

    Bagged DLSGANs (tiny settings, fast):

    >>> from skood import DLSGANDetector
    >>> gans = BaggingDetector(
    ...     DLSGANDetector(max_epochs=2, hidden_dims=(16,), latent_dim=2, device="cpu"),
    ...     n_estimators=2,
    ...     random_state=0,
    ... ).fit(X)
    >>> gans.score_samples(X[:4]).shape
    (4,)
    """

    _parameter_constraints: dict = {
        "estimator": [HasMethods(["fit", "score_samples"]), None],
        "n_estimators": [Interval(Integral, 1, None, closed="left")],
        "max_samples": [
            Interval(Integral, 1, None, closed="left"),
            Interval(Real, 0, 1, closed="right"),
        ],
        "max_features": [
            Interval(Integral, 1, None, closed="left"),
            Interval(Real, 0, 1, closed="right"),
        ],
        "bootstrap": ["boolean"],
        "combination": [StrOptions({"rank", "zscore", "mean"})],
        "contamination": [Interval(Real, 0, 0.5, closed="right")],
        "n_jobs": [Integral, None],
        "joint_training": ["boolean", StrOptions({"auto"})],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        estimator=None,
        *,
        n_estimators=5,
        max_samples=1.0,
        max_features=1.0,
        bootstrap=False,
        combination="rank",
        contamination=0.1,
        n_jobs=None,
        joint_training="auto",
        random_state=None,
        verbose=0,
    ):
        self.estimator = estimator
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.max_features = max_features
        self.bootstrap = bootstrap
        self.combination = combination
        self.contamination = contamination
        self.n_jobs = n_jobs
        self.joint_training = joint_training
        self.random_state = random_state
        self.verbose = verbose

    def _estimator(self):
        return default_outlier_detector() if self.estimator is None else self.estimator

    def _member_requires_y(self) -> bool:
        return bool(self._estimator().__sklearn_tags__().target_tags.required)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        member = self._estimator().__sklearn_tags__()
        tags.target_tags.required = member.target_tags.required
        tags.non_deterministic = member.non_deterministic
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = False
        return tags

    @staticmethod
    def _draw_count(value, total: int, what: str, parameter: str) -> int:
        if isinstance(value, Integral) and not isinstance(value, bool):
            if value > total:
                raise ValueError(
                    f"{parameter}={value} is larger than the number of {what} ({total}); "
                    f"give at most {total}, or a fraction in (0, 1]."
                )
            return int(value)
        return max(1, int(value * total))

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None):
        """Fit the members on their draws of rows and features and fix the scales.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training rows (at least 2: they also fix the members' scales).
        y : array-like of shape (n_samples,), default=None
            Class labels, for members whose ``fit`` requires them; ignored otherwise.

        Returns
        -------
        self : BaggingDetector
            The fitted ensemble.
        """
        # A fit that fails (bad input, a member that cannot fit) leaves the ensemble as it was.
        with previous_fit_kept_on_failure(self):
            self._fit(X, y)
        return self

    def _fit(self, X, y) -> None:
        supervised = self._member_requires_y()
        if supervised:
            X, y = validate_data(self, X, y, dtype=np.float64, ensure_min_samples=2)
        else:
            X = validate_data(self, X, dtype=np.float64, ensure_min_samples=2)
            y = None
        n_samples, n_features = X.shape
        n_rows = self._draw_count(self.max_samples, n_samples, "samples", "max_samples")
        n_cols = self._draw_count(self.max_features, n_features, "features", "max_features")

        random_state = check_random_state(self.random_state)
        seeds = random_state.randint(_MAX_INT, size=self.n_estimators)
        samples, features = [], []
        for seed in seeds:
            rng = np.random.RandomState(seed)
            if self.bootstrap:
                rows = rng.randint(0, n_samples, n_rows)
            else:
                rows = rng.permutation(n_samples)[:n_rows]
            cols = rng.permutation(n_features)[:n_cols]
            samples.append(np.sort(rows))
            features.append(np.sort(cols))

        template = self._estimator()
        joint = self._trains_jointly(template)
        if joint:
            members, raw = self._fit_members_jointly(template, X, samples, features, seeds)
        else:
            fitted = Parallel(n_jobs=self.n_jobs, verbose=self.verbose)(
                delayed(_fit_member)(clone(template), X, y, rows, cols, int(seed))
                for rows, cols, seed in zip(samples, features, seeds, strict=True)
            )
            members = [member for member, _ in fitted]
            raw = [scores for _, scores in fitted]
        self.estimators_ = members
        self.estimators_samples_ = samples
        self.estimators_features_ = features
        self.seeds_ = seeds
        self.joint_training_ = joint
        self._set_scales(raw)
        self.offset_ = float(np.percentile(self._combine(raw), 100.0 * self.contamination))

    def _set_scales(self, raw: list[np.ndarray]) -> None:
        """Fix each member's scale from its raw training scores (see ``combination``)."""
        scales = np.array([scores.std() for scores in raw])
        scales[~(scales > 0)] = 1.0
        self.training_scores_ = [np.sort(scores) for scores in raw]
        self.score_means_ = np.array([scores.mean() for scores in raw])
        self.score_scales_ = scales

    def _trains_jointly(self, template) -> bool:
        if self.joint_training is False:
            return False
        possible = can_fit_jointly(template) and self.n_estimators > 1
        if self.joint_training is True and not possible:
            raise ValueError(
                f"joint_training=True, but {type(template).__name__} cannot train its members "
                "jointly: that needs a skood detector whose networks stack (DLSGANDetector or "
                "ApproximateMassFlowDetector on tables) and n_estimators > 1. Set "
                "joint_training='auto' or False."
            )
        return possible

    @staticmethod
    def _fit_members_jointly(template, X, samples, features, seeds):
        """Fit the members in one stacked training; return them and their training scores."""
        members = [clone(template).set_params(random_state=int(seed)) for seed in seeds]
        fit_jointly(
            members, [X[rows][:, cols] for rows, cols in zip(samples, features, strict=True)]
        )
        raw = [
            _training_scores(member, X, cols)
            for member, cols in zip(members, features, strict=True)
        ]
        return members, raw

    def _normalise(self, index: int, scores: np.ndarray) -> np.ndarray:
        if self.combination == "rank":
            train = self.training_scores_[index]
            levels = np.arange(train.size) / (train.size - 1)
            ranks = np.interp(scores, train, levels, left=0.0, right=1.0)
            # Beyond the training scores, linear tails in units of their range keep the order
            # of rows that every training row out-ranks (or out-ranked): far outliers, and on
            # small tables many test rows, would otherwise all tie at 0 (or 1).
            span = train[-1] - train[0]
            if span > 0:
                ranks = np.where(scores < train[0], (scores - train[0]) / span, ranks)
                ranks = np.where(scores > train[-1], 1.0 + (scores - train[-1]) / span, ranks)
            return ranks
        if self.combination == "zscore":
            return (scores - self.score_means_[index]) / self.score_scales_[index]
        return scores

    def _combine(self, member_scores) -> np.ndarray:
        normalised = [self._normalise(i, s) for i, s in enumerate(member_scores)]
        return np.mean(normalised, axis=0)

    def member_scores(self, X):
        """Each member's normalised scores of ``X`` (the rows whose mean ``score_samples`` is).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to score.

        Returns
        -------
        scores : ndarray of shape (n_estimators, n_samples)
            Member ``i``'s scores on the ``combination`` scale.
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return np.stack(
            [
                self._normalise(i, np.asarray(member.score_samples(X[:, cols]), dtype=np.float64))
                for i, (member, cols) in enumerate(
                    zip(self.estimators_, self.estimators_features_, strict=True)
                )
            ]
        )

    @row_blocks(np.float64)
    def score_samples(self, X):
        """Mean of the members' normalised scores; higher = more normal.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to score.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            The ensemble's scores.
        """
        return self.member_scores(X).mean(axis=0)

    def fit_predict(self, X, y=None):
        """``fit(X, y).predict(X)`` (``y`` reaches members that need it).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training rows.
        y : array-like of shape (n_samples,), default=None
            Class labels, for members whose ``fit`` requires them.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            -1 or +1 for every training row.
        """
        return self.fit(X, y).predict(X)
