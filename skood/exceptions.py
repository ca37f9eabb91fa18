"""Exceptions raised by skood."""

__all__ = ["TrainingDivergedError"]


class TrainingDivergedError(FloatingPointError):
    """Training produced a non-finite loss or statistic.

    The message names the epoch, the batch, the quantity that diverged and what to change
    (usually a lower learning rate or standardized inputs). A detector that raises it is left
    unfitted: it never keeps a model that would score NaN.
    """
