"""MNIST and Fashion-MNIST from their IDX files.

Files are looked for in ``<data_home>/mnist`` and ``<data_home>/fashion_mnist`` (gzipped or
not). With ``download=True`` a missing file is fetched from the dataset's public mirror. Every
file, local or downloaded, is verified against the MD5 of its *decompressed* content, so a
re-compressed copy of the canonical data is accepted and anything else is refused.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import urllib.request
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

from .._docstrings import fill_doc
from ._base import _missing, get_data_home

__all__ = ["load_fashion_mnist", "load_mnist", "scale_images"]

_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
_DATASETS = {
    "mnist": {
        "folder": "mnist",
        "mirror": "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "md5": {
            "train_images": "6bbc9ace898e44ae57da46a324031adb",
            "train_labels": "a25bea736e30d166cdddb491f175f624",
            "test_images": "2646ac647ad5339dbf082846283269ea",
            "test_labels": "27ae3e4e09519cfbb04c329615203637",
        },
        "classes": [str(digit) for digit in range(10)],
        "descr": (
            "MNIST handwritten digits (LeCun, Bottou, Bengio and Haffner, 'Gradient-based "
            "learning applied to document recognition', Proc. IEEE 86(11), 1998). 60,000 "
            "training and 10,000 test images of 28 x 28 grey levels; CC BY-SA 3.0."
        ),
    },
    "fashion_mnist": {
        "folder": "fashion_mnist",
        "mirror": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "md5": {
            "train_images": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
            "train_labels": "9018921c3c673c538a1fc5bad174d6f9",
            "test_images": "8181f5470baa50b63fa0f6fddb340f0a",
            "test_labels": "15d484375f8d13e6eb1aabb0c3f46965",
        },
        "classes": [
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ],  # fmt: skip
        "descr": (
            "Fashion-MNIST (Xiao, Rasul and Vollgraf, 'Fashion-MNIST: a Novel Image Dataset "
            "for Benchmarking Machine Learning Algorithms', arXiv:1708.07747, 2017). 60,000 "
            "training and 10,000 test images of 28 x 28 grey levels, 10 classes; MIT licence."
        ),
    },
}


def scale_images(pixels: np.ndarray, scale: str | None) -> np.ndarray:
    """Map 8-bit pixels to float32.

    Parameters
    ----------
    pixels : array-like
        Pixel values in 0..255, of any shape.
    scale : {"symmetric", "unit"} or None
        ``"symmetric"``: [-1, 1] (``x / 127.5 - 1``, as the DLSGAN reference does);
        ``"unit"``: [0, 1] (``x / 255``); None: 0..255 unchanged.

    Returns
    -------
    scaled : ndarray of float32
        The scaled pixels, of the shape of ``pixels``.
    """
    pixels = np.asarray(pixels, dtype=np.float32)
    if scale == "symmetric":
        return pixels / np.float32(127.5) - np.float32(1.0)
    if scale == "unit":
        return pixels / np.float32(255.0)
    if scale is None:
        return pixels
    raise ValueError(f"scale must be 'symmetric', 'unit' or None, got {scale!r}.")


def _read_idx(path: Path, expected_md5: str) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        content = handle.read()
    digest = hashlib.md5(content, usedforsecurity=False).hexdigest()
    if digest != expected_md5:
        raise OSError(
            f"{path} is corrupt or not the canonical file: MD5 of its content is {digest}, "
            f"expected {expected_md5}. Delete it and load again."
        )
    n_dims = content[3]
    shape = tuple(int.from_bytes(content[4 + 4 * i : 8 + 4 * i], "big") for i in range(n_dims))
    return np.frombuffer(content, dtype=np.uint8, offset=4 + 4 * n_dims).reshape(shape)


def _locate(dataset: str, key: str, home: Path, download: bool) -> Path:
    spec = _DATASETS[dataset]
    folder = home / spec["folder"]
    stem = _FILES[key]
    candidates = [folder / f"{stem}.gz", folder / stem]
    for path in candidates:
        if path.is_file():
            return path
    if not download:
        raise _missing(f"{dataset} file {stem}", candidates)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{stem}.gz"
    partial = target.with_suffix(".gz.part")
    url = spec["mirror"] + f"{stem}.gz"
    with urllib.request.urlopen(url, timeout=60) as response, open(partial, "wb") as handle:
        shutil.copyfileobj(response, handle)
    try:
        _read_idx(partial.rename(target), spec["md5"][key])
    except OSError:
        target.unlink(missing_ok=True)
        raise
    return target


def _load(
    dataset: str,
    *,
    subset: str,
    data_home,
    return_X_y: bool,
    scale: str | None,
    download: bool,
):
    if subset not in ("train", "test", "all"):
        raise ValueError(f"subset must be 'train', 'test' or 'all', got {subset!r}.")
    spec = _DATASETS[dataset]
    home = get_data_home(data_home)
    parts = ["train", "test"] if subset == "all" else [subset]
    images, labels = [], []
    for part in parts:
        for key, store in ((f"{part}_images", images), (f"{part}_labels", labels)):
            store.append(_read_idx(_locate(dataset, key, home, download), spec["md5"][key]))
    pixels = np.concatenate(images)
    X = scale_images(pixels.reshape(len(pixels), -1), scale)
    y = np.concatenate(labels).astype(np.int64)
    if return_X_y:
        return X, y
    return Bunch(
        data=X,
        target=y,
        images=pixels,
        image_shape=(1, 28, 28),
        target_names=np.array(spec["classes"]),
        DESCR=spec["descr"],
    )


@fill_doc
def load_mnist(
    *,
    subset: str = "train",
    data_home: str | os.PathLike | None = None,
    return_X_y: bool = False,
    scale: str | None = "symmetric",
    download: bool = False,
):
    """Load MNIST as flat rows that image detectors take with ``input_shape=(1, 28, 28)``.

    Parameters
    ----------
    %(image_loader_options)s

    Returns
    -------
    %(image_loader_returns)s

    Examples
    --------
    >>> from skood.datasets import load_mnist
    >>> X, y = load_mnist(subset="test", return_X_y=True)  # doctest: +SKIP
    >>> X.shape, X.min(), X.max()  # doctest: +SKIP
    ((10000, 784), -1.0, 1.0)
    """
    return _load(
        "mnist",
        subset=subset,
        data_home=data_home,
        return_X_y=return_X_y,
        scale=scale,
        download=download,
    )


@fill_doc
def load_fashion_mnist(
    *,
    subset: str = "train",
    data_home: str | os.PathLike | None = None,
    return_X_y: bool = False,
    scale: str | None = "symmetric",
    download: bool = False,
):
    """Load Fashion-MNIST as flat rows (``input_shape=(1, 28, 28)``).

    Works as :func:`load_mnist`; targets are the 10 clothing classes named in
    ``target_names``.

    Parameters
    ----------
    %(image_loader_options)s

    Returns
    -------
    %(image_loader_returns)s

    Examples
    --------
    >>> from skood.datasets import load_fashion_mnist
    >>> X, y = load_fashion_mnist(subset="test", return_X_y=True)  # doctest: +SKIP
    """
    return _load(
        "fashion_mnist",
        subset=subset,
        data_home=data_home,
        return_X_y=return_X_y,
        scale=scale,
        download=download,
    )
