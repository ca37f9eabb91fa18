"""Parts of the outlier contract shared by skood's detectors and its meta-detectors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from ._dask import row_blocks

__all__ = ["OffsetThresholdMixin", "default_outlier_detector", "previous_fit_kept_on_failure"]


def default_outlier_detector():
    """The detector a meta-detector wraps when given none: scikit-learn's IsolationForest()."""
    from sklearn.ensemble import IsolationForest

    return IsolationForest()


@contextmanager
def previous_fit_kept_on_failure(estimator) -> Iterator[None]:
    """Restore ``estimator``'s fitted attributes (names ending in ``_``) if the block fails.

    A meta-detector's fit that fails (bad input, a member that cannot fit, Ctrl-C) then leaves
    it as it was: unfitted, or with its earlier fit whole.
    """
    kept = {key: value for key, value in vars(estimator).items() if key.endswith("_")}
    try:
        yield
    except BaseException:
        for key in [key for key in vars(estimator) if key.endswith("_")]:
            delattr(estimator, key)
        vars(estimator).update(kept)
        raise


class OffsetThresholdMixin:
    """``decision_function`` and ``predict`` from ``score_samples`` and ``offset_``.

    ``decision_function(X) = score_samples(X) - offset_`` is negative for outliers, and
    ``predict`` returns -1 there and +1 elsewhere, as scikit-learn's outlier detectors do.
    A class whose ``offset_`` belongs to some of its parameters' values overrides
    ``_check_offset_matches_scoring`` to refuse a threshold that no longer fits the score.
    """

    def _check_offset_matches_scoring(self) -> None:
        """Raise when ``offset_`` is not a threshold on the current score (nothing here)."""

    @row_blocks(np.float64)
    def decision_function(self, X):
        """Shifted score: ``score_samples(X) - offset_``; negative for outliers.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples to score.

        Returns
        -------
        decision : ndarray of shape (n_samples,)
            Negative values flag outliers, positive values inliers.
        """
        self._check_offset_matches_scoring()
        return self.score_samples(X) - self.offset_

    @row_blocks(np.int64)
    def predict(self, X):
        """Label each sample as inlier (+1) or outlier (-1).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples to label.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            -1 where ``decision_function(X) < 0``, +1 elsewhere.
        """
        decision = self.decision_function(X)
        labels = np.ones(decision.shape[0], dtype=int)
        labels[decision < 0] = -1
        return labels
