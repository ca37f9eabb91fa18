"""Exceptions and warnings raised by skood."""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["FileVerificationError", "InconsistentSkoodVersionWarning", "TrainingDivergedError"]


class TrainingDivergedError(FloatingPointError):
    """Training produced a non-finite loss or statistic.

    The message names the epoch, the batch, the quantity that diverged and what to change
    (usually a lower learning rate or standardized inputs). A detector that raises it is left
    unfitted: it never keeps a model that would score NaN.
    """


class FileVerificationError(ValueError):
    """A file given to :func:`skood.io.load` cannot be verified, so nothing is built from it.

    Raised for anything but a complete, consistent ``skood.io`` archive: a pickle or other
    file, a class outside skood's allow-list, a missing, corrupted or unexpected entry, a
    tensor or array whose shape, dtype or digest does not match, a manifest that does not
    follow the format. The message names the entry at fault.
    """


class InconsistentSkoodVersionWarning(UserWarning):
    """Warning raised when a detector is loaded under other versions than it was saved with.

    The skood counterpart of :class:`sklearn.exceptions.InconsistentVersionWarning`, raised by
    unpickling (which records the skood version) and by :func:`skood.io.load` (which records
    the skood, PyTorch, scikit-learn and skorch versions).

    Parameters
    ----------
    estimator_name : str
        Name of the detector's class.
    current_versions : mapping of str to str
        Versions of the packages in this process, by package name.
    original_versions : mapping of str to str or None
        Versions the detector was saved with (only the packages that differ, or all);
        None where the file did not record one.
    operation : {"unpickle", "load"}, default="unpickle"
        How the detector is being restored, for the message.

    Attributes
    ----------
    current_skood_version : str
        This process's skood version.
    original_skood_version : str or None
        The skood version that saved the detector; None when the file did not record it.
    """

    def __init__(
        self,
        *,
        estimator_name: str,
        current_versions: Mapping[str, str],
        original_versions: Mapping[str, str | None],
        operation: str = "unpickle",
    ) -> None:
        self.estimator_name = estimator_name
        self.current_versions = dict(current_versions)
        self.original_versions = dict(original_versions)
        self.operation = operation
        self.current_skood_version = self.current_versions.get("skood")
        self.original_skood_version = self.original_versions.get("skood")

    def __str__(self) -> str:
        def listed(versions: Mapping[str, str | None]) -> str:
            return ", ".join(
                f"{name} {'(not recorded)' if version is None else version}"
                for name, version in versions.items()
            )

        current = {name: self.current_versions.get(name) for name in self.original_versions}
        return (
            f"Trying to {self.operation} estimator {self.estimator_name} saved with "
            f"{listed(self.original_versions)} when using {listed(current)}. This might lead "
            "to breaking code or invalid results. Use at your own risk. For more info please "
            "refer to skood's docs/persistence.md."
        )
