"""Tabular outlier-detection data: the embedded Arrhythmia set, ODDS and ADBench files."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import numpy as np
from scipy.io import loadmat

from ._base import _bunch, _missing, get_data_home

__all__ = ["list_adbench", "list_odds", "load_adbench", "load_arrhythmia", "load_odds"]

_ODDS_DESCR = (
    "ODDS outlier-detection dataset '{name}'. Target: +1 inlier, -1 outlier.\n"
    "Cite: Shebuti Rayana (2016). ODDS Library. Stony Brook University, Department of Computer "
    "Sciences; and the original source of the data set."
)
_ADBENCH_DESCR = (
    "ADBench 'Classical' dataset '{name}'. Target: +1 inlier, -1 anomaly.\n"
    "Cite: Han, Hu, Huang, Jiang and Zhao, 'ADBench: Anomaly Detection Benchmark', NeurIPS 2022 "
    "(Datasets and Benchmarks); and the original source of the data set."
)


def load_arrhythmia(*, return_X_y: bool = False, as_frame: bool = False):
    """Load the Arrhythmia outlier-detection data (ODDS), shipped with skood.

    452 patients x 274 ECG features; 66 (14.6%) are outliers. Read more in its ``DESCR``.

    Parameters
    ----------
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a Bunch.
    as_frame : bool, default=False
        Return pandas objects (needs pandas).

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        ``data`` (float64, 452 x 274), ``target`` (+1 inlier, -1 outlier), ``feature_names``,
        ``target_names``, ``frame`` (with ``as_frame``), ``DESCR``.
    (data, target) : tuple if ``return_X_y``
        ``data`` and ``target`` of the Bunch.

    Examples
    --------
    >>> from skood.datasets import load_arrhythmia
    >>> X, y = load_arrhythmia(return_X_y=True)
    >>> X.shape, int((y == -1).sum())
    ((452, 274), 66)
    """
    package = resources.files("skood.datasets")
    with resources.as_file(package / "data" / "arrhythmia.mat") as path:
        content = loadmat(path)
    descr = (package / "descr" / "arrhythmia.rst").read_text(encoding="utf-8")
    return _bunch(
        content["X"],
        content["y"],
        descr=descr,
        name="arrhythmia",
        return_X_y=return_X_y,
        as_frame=as_frame,
    )


def _odds_paths(name: str, home: Path) -> list[Path]:
    return [home / "odds" / f"{name}.mat", home / f"{name}.mat"]


def load_odds(
    name: str,
    *,
    data_home: str | os.PathLike | None = None,
    return_X_y: bool = False,
    as_frame: bool = False,
):
    """Load an ODDS dataset from ``<data_home>/odds/<name>.mat``.

    Parameters
    ----------
    name : str
        File stem, e.g. ``"arrhythmia"``, ``"satimage-2"``.
    data_home : str or path-like, default=None
        See :func:`get_data_home` (argument, then ``SKOOD_DATA``, then ``~/skood_data``).
        ``<data_home>/<name>.mat`` is accepted too.
    return_X_y, as_frame : bool, default=False
        As in :func:`load_arrhythmia`.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch` or (data, target)
        ``data`` is float64; ``target`` is +1 inlier / -1 outlier.

    Raises
    ------
    FileNotFoundError
        With every path that was looked at.

    Examples
    --------
    >>> from skood.datasets import load_odds
    >>> X, y = load_odds("wbc", return_X_y=True)  # doctest: +SKIP
    """
    home = get_data_home(data_home)
    candidates = _odds_paths(name, home)
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        raise _missing(f"ODDS dataset {name!r}", candidates)
    try:
        content = loadmat(path)
        X, y = content["X"], content["y"]
    except NotImplementedError:
        # MATLAB v7.3 files (smtp) are HDF5, stored transposed.
        try:
            import h5py
        except ImportError as error:
            raise ImportError(
                f"{path.name} is a MATLAB v7.3 (HDF5) file: install h5py, or use "
                f"load_adbench({name!r}) for the same data."
            ) from error
        with h5py.File(path, "r") as handle:
            X, y = handle["X"][()].T, handle["y"][()].T
    return _bunch(
        X,
        y,
        descr=_ODDS_DESCR.format(name=name),
        name=name,
        return_X_y=return_X_y,
        as_frame=as_frame,
    )


def _adbench_files(home: Path) -> dict[str, Path]:
    folder = home / "adbench"
    if not folder.is_dir():
        return {}
    return {path.stem.split("_", 1)[-1]: path for path in sorted(folder.glob("*.npz"))}


def load_adbench(
    name: str,
    *,
    data_home: str | os.PathLike | None = None,
    return_X_y: bool = False,
    as_frame: bool = False,
):
    """Load an ADBench "Classical" dataset from ``<data_home>/adbench/<n>_<name>.npz``.

    Parameters
    ----------
    name : str
        The bare name, case-insensitive (``"breastw"``, ``"Ionosphere"``, ``"magic.gamma"``) or
        the full file stem (``"4_breastw"``).
    data_home : str or path-like, default=None
        See :func:`get_data_home`.
    return_X_y, as_frame : bool, default=False
        As in :func:`load_arrhythmia`.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch` or (data, target)
        ``data`` is float64; ``target`` is +1 inlier / -1 anomaly.

    Raises
    ------
    FileNotFoundError
        With the path that was looked at.

    Examples
    --------
    >>> from skood.datasets import load_adbench
    >>> X, y = load_adbench("breastw", return_X_y=True)  # doctest: +SKIP
    """
    home = get_data_home(data_home)
    files = _adbench_files(home)
    wanted = name.lower()
    path = next((p for bare, p in files.items() if wanted in (bare.lower(), p.stem.lower())), None)
    if path is None:
        raise _missing(f"ADBench dataset {name!r}", [home / "adbench" / f"<number>_{name}.npz"])
    with np.load(path, allow_pickle=False) as content:
        X, y = content["X"], content["y"]
    bare = path.stem.split("_", 1)[-1]
    return _bunch(
        X,
        y,
        descr=_ADBENCH_DESCR.format(name=bare),
        name=bare,
        return_X_y=return_X_y,
        as_frame=as_frame,
    )


def list_odds(data_home: str | os.PathLike | None = None) -> list[str]:
    """List the ODDS datasets present in ``<data_home>/odds``.

    Parameters
    ----------
    data_home : str or path-like, default=None
        See :func:`get_data_home`.

    Returns
    -------
    names : list of str
        The stems of the ``.mat`` files, sorted, for :func:`load_odds`; empty when the folder
        does not exist.

    Examples
    --------
    >>> from skood.datasets import list_odds
    >>> "arrhythmia" in list_odds()  # doctest: +SKIP
    True
    """
    folder = get_data_home(data_home) / "odds"
    return sorted(path.stem for path in folder.glob("*.mat")) if folder.is_dir() else []


def list_adbench(data_home: str | os.PathLike | None = None) -> list[str]:
    """List the ADBench datasets present in ``<data_home>/adbench``.

    Parameters
    ----------
    data_home : str or path-like, default=None
        See :func:`get_data_home`.

    Returns
    -------
    names : list of str
        The bare names (``"breastw"`` for ``4_breastw.npz``), in file-name order, for
        :func:`load_adbench`; empty when the folder does not exist.

    Examples
    --------
    >>> from skood.datasets import list_adbench
    >>> "breastw" in list_adbench()  # doctest: +SKIP
    True
    """
    return list(_adbench_files(get_data_home(data_home)))
