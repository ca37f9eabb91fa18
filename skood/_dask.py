"""Scoring of dask arrays block by block, with the fitted model shipped to the workers.

A detector's ``score_samples``, ``decision_function`` and ``predict`` given a 2-D
``dask.array.Array`` return a lazy dask array of one value per row: each block of rows (all
columns in one chunk) is scored by the fitted detector where the block lives, so memory per
worker is bounded by the chunk and nothing is refitted. dask is not imported unless such an
array is passed.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

__all__ = ["is_dask_array", "map_row_blocks", "row_blocks"]


def is_dask_array(X) -> bool:
    """Whether ``X`` is a ``dask.array.Array`` (checked without importing dask)."""
    return type(X).__module__.startswith("dask.array") and hasattr(X, "map_blocks")


def map_row_blocks(function: Callable, X, dtype) -> object:
    """Apply ``function`` (rows -> one value per row) to each row block of the dask array ``X``.

    The columns are first gathered into one chunk, so each call sees whole rows.
    """
    if X.ndim != 2:
        raise ValueError(f"Expected a 2-D dask array of rows, got {X.ndim} dimension(s).")
    rows = X.rechunk({1: -1})
    return rows.map_blocks(function, drop_axis=1, dtype=dtype, meta=np.empty((0,), dtype=dtype))


def row_blocks(dtype) -> Callable:
    """Decorator of a method ``method(self, X)``: dask arrays are scored block by block."""

    def decorate(method: Callable) -> Callable:
        @functools.wraps(method)
        def method_or_blocks(self, X):
            if is_dask_array(X):
                return map_row_blocks(functools.partial(method, self), X, dtype)
            return method(self, X)

        return method_or_blocks

    return decorate
