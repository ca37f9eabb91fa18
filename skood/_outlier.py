"""The threshold half of the outlier contract, shared by every skood detector and ensemble."""

from __future__ import annotations

import numpy as np

__all__ = ["OffsetThresholdMixin"]


class OffsetThresholdMixin:
    """``decision_function`` and ``predict`` from ``score_samples`` and ``offset_``.

    ``decision_function(X) = score_samples(X) - offset_`` is negative for outliers, and
    ``predict`` returns -1 there and +1 elsewhere, as scikit-learn's outlier detectors do.
    A class whose ``offset_`` belongs to some of its parameters' values overrides
    ``_check_offset_matches_scoring`` to refuse a threshold that no longer fits the score.
    """

    def _check_offset_matches_scoring(self) -> None:
        """Raise when ``offset_`` is not a threshold on the current score (nothing here)."""

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
