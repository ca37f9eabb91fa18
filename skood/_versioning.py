"""Versions recorded with saved detectors, and the warning when they differ on loading."""

from __future__ import annotations

import platform
import warnings
from collections.abc import Mapping

from .exceptions import InconsistentSkoodVersionWarning

__all__ = ["compared_versions", "recorded_versions", "skood_version", "warn_if_inconsistent"]

# Packages whose version a loaded detector is compared against; the others are recorded only.
_COMPARED = ("skood", "torch", "scikit-learn", "skorch")


def skood_version() -> str:
    """The running skood version (read at call time: ``skood/__init__`` imports this module)."""
    import skood

    return skood.__version__


def recorded_versions() -> dict[str, str]:
    """The versions :func:`skood.io.save` writes into a manifest."""
    import numpy
    import sklearn
    import skorch
    import torch

    versions = {
        "skood": skood_version(),
        "torch": torch.__version__,
        "scikit-learn": sklearn.__version__,
        "skorch": skorch.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
    }
    try:
        import safetensors
    except ImportError:  # pragma: no cover - save needs it; info only
        pass
    else:
        versions["safetensors"] = safetensors.__version__
    return versions


def compared_versions() -> dict[str, str]:
    """The recorded versions that a loaded detector must match to load without a warning."""
    versions = recorded_versions()
    return {name: versions[name] for name in _COMPARED}


def _release(name: str, version: str | None) -> str | None:
    # A CPU and a CUDA build of one PyTorch release ("2.3.0+cpu", "2.3.0+cu121") compute alike.
    if version is None or name != "torch":
        return version
    return version.split("+", 1)[0]


def warn_if_inconsistent(
    estimator_name: str,
    original: Mapping[str, str | None],
    current: Mapping[str, str],
    *,
    operation: str,
    stacklevel: int = 2,
) -> None:
    """Warn with :class:`~skood.exceptions.InconsistentSkoodVersionWarning` where versions differ.

    Only the packages in ``current`` are compared; one missing from ``original`` (not
    recorded) counts as different.
    """
    differing = {
        name: original.get(name)
        for name, version in current.items()
        if _release(name, original.get(name)) != _release(name, version)
    }
    if differing:
        warnings.warn(
            InconsistentSkoodVersionWarning(
                estimator_name=estimator_name,
                current_versions=dict(current),
                original_versions=differing,
                operation=operation,
            ),
            stacklevel=stacklevel + 1,
        )
