"""Where data live on disk, and the Bunch every loader returns."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

__all__ = ["get_data_home"]

_ENVIRONMENT_VARIABLE = "SKOOD_DATA"


def get_data_home(data_home: str | os.PathLike | None = None) -> Path:
    """The folder that holds skood's benchmark data.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Used as given when set. Otherwise the ``SKOOD_DATA`` environment variable, and failing
        that ``~/skood_data``.

    Returns
    -------
    path : pathlib.Path
        The folder (it need not exist).

    Examples
    --------
    >>> from skood.datasets import get_data_home
    >>> str(get_data_home("/data/ood"))
    '/data/ood'
    """
    if data_home is None:
        data_home = os.environ.get(_ENVIRONMENT_VARIABLE) or Path("~") / "skood_data"
    return Path(data_home).expanduser()


def _missing(what: str, searched: list[Path]) -> FileNotFoundError:
    places = "\n".join(f"  {path}" for path in searched)
    return FileNotFoundError(
        f"{what} was not found. Looked in:\n{places}\n"
        f"Pass data_home=... or set the {_ENVIRONMENT_VARIABLE} environment variable to the "
        "folder that holds odds/ and adbench/."
    )


def _outlier_labels_to_sklearn(y) -> np.ndarray:
    """0/1 labels with 1 = outlier to scikit-learn's +1 inlier / -1 outlier."""
    y = np.asarray(y).ravel()
    return np.where(y.astype(np.float64) != 0, -1, 1).astype(np.int64)


def _bunch(X, y, *, descr: str, name: str, return_X_y: bool, as_frame: bool):
    X = np.ascontiguousarray(X, dtype=np.float64)
    y = _outlier_labels_to_sklearn(y)
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"{name}: {X.shape[0]} rows but {y.shape[0]} labels.")
    feature_names = [f"x{i}" for i in range(X.shape[1])]
    if as_frame:
        try:
            import pandas as pd
        except ImportError as error:  # pragma: no cover - depends on the environment
            raise ImportError("as_frame=True needs pandas: pip install pandas") from error
        frame = pd.DataFrame(X, columns=feature_names)
        target = pd.Series(y, name="target")
        if return_X_y:
            return frame, target
        return Bunch(
            data=frame,
            target=target,
            frame=pd.concat([frame, target], axis=1),
            feature_names=feature_names,
            target_names=np.array(["outlier", "inlier"]),
            DESCR=descr,
            name=name,
        )
    if return_X_y:
        return X, y
    return Bunch(
        data=X,
        target=y,
        frame=None,
        feature_names=feature_names,
        target_names=np.array(["outlier", "inlier"]),
        DESCR=descr,
        name=name,
    )
