"""Parameter constraints and shape checks shared by skood's detectors.

The constraints go into ``_parameter_constraints``, so that scikit-learn's parameter validation
refuses a bad value in ``fit`` with an ``InvalidParameterError`` that names the parameter and
what it must be. They subclass scikit-learn's ``Options`` only because that validation accepts
no other custom constraint type; each overrides ``is_satisfied_by`` and ``__str__`` (the text
after "must be" in the error message).

The functions check what depends on the data (an image shape against the number of columns)
or on a method's own argument (``n_samples`` of ``sample``), with one wording for every
detector.
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any

from sklearn.utils._param_validation import Options

__all__ = [
    "Betas",
    "ImageShape",
    "IntegerWidths",
    "RealPair",
    "check_input_shape",
    "check_n_samples",
]


def _is_positive_integer(value: Any) -> bool:
    # bool is an Integral, but True as a width or a count is a mistake, not 1.
    return isinstance(value, Integral) and not isinstance(value, bool) and value >= 1


def _is_real(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


class _SequenceConstraint(Options):
    """Base of the constraints below: an ``Options`` of no options (which nothing satisfies)
    whose subclasses override ``is_satisfied_by`` and ``__str__``."""

    def __init__(self) -> None:
        super().__init__(object, set())


class IntegerWidths(_SequenceConstraint):
    """Constraint: a non-empty tuple or list of positive integers (layer widths).

    Widths such as 2.5 would otherwise be truncated silently when the layers are built, and a
    width of 0 or an empty tuple would build a network without features. Booleans are refused.

    Examples
    --------
    >>> from skood._validation import IntegerWidths
    >>> IntegerWidths().is_satisfied_by((64, 32)), IntegerWidths().is_satisfied_by(())
    (True, False)
    """

    def is_satisfied_by(self, val: Any) -> bool:
        return (
            isinstance(val, tuple | list)
            and len(val) > 0
            and all(_is_positive_integer(width) for width in val)
        )

    def __str__(self) -> str:
        return "a non-empty tuple or list of positive integers"


class ImageShape(_SequenceConstraint):
    """Constraint: an image shape, a tuple or list of 3 positive integers (C, H, W).

    Whether ``C * H * W`` matches the number of columns is known only in ``fit``
    (:func:`check_input_shape`). ``None`` (tables) is a separate constraint: list both, as in
    ``"input_shape": [ImageShape(), None]``.

    Examples
    --------
    >>> from skood._validation import ImageShape
    >>> ImageShape().is_satisfied_by((1, 28, 28)), ImageShape().is_satisfied_by((28, 28))
    (True, False)
    """

    def is_satisfied_by(self, val: Any) -> bool:
        return (
            isinstance(val, tuple | list)
            and len(val) == 3
            and all(_is_positive_integer(size) for size in val)
        )

    def __str__(self) -> str:
        return "a tuple or list of 3 positive integers (channels, height, width)"


class RealPair(_SequenceConstraint):
    """Constraint: a tuple or list of two real numbers, each in an interval.

    Parameters
    ----------
    low, high : float or None, default=None
        Bounds of the interval; None is unbounded on that side.
    closed : {"left", "right", "both", "neither"}, default="both"
        Which bounds belong to the interval (as for scikit-learn's ``Interval``).

    Examples
    --------
    >>> from skood._validation import RealPair
    >>> pair = RealPair(0, None, closed="neither")
    >>> pair.is_satisfied_by((0.5, 2)), pair.is_satisfied_by([0.0, 1.0]), str(pair)
    (True, False, 'a tuple or list of two real numbers in the range (0, inf)')
    """

    def __init__(
        self, low: float | None = None, high: float | None = None, *, closed: str = "both"
    ) -> None:
        super().__init__()
        if closed not in ("left", "right", "both", "neither"):
            raise ValueError(
                f"closed must be 'left', 'right', 'both' or 'neither', got {closed!r}."
            )
        if low is not None and high is not None and low > high:
            raise ValueError(f"low={low!r} must not exceed high={high!r}.")
        self.low = low
        self.high = high
        self.closed = closed

    def _contains(self, value: Any) -> bool:
        if not _is_real(value) or math.isnan(value):
            return False
        left_closed = self.closed in ("left", "both")
        right_closed = self.closed in ("right", "both")
        if self.low is not None and (value < self.low or (value == self.low and not left_closed)):
            return False
        return self.high is None or value < self.high or (value == self.high and right_closed)

    def is_satisfied_by(self, val: Any) -> bool:
        return isinstance(val, tuple | list) and len(val) == 2 and all(map(self._contains, val))

    def __str__(self) -> str:
        text = "a tuple or list of two real numbers"
        if self.low is None and self.high is None:
            return text
        left = "[" if self.closed in ("left", "both") and self.low is not None else "("
        right = "]" if self.closed in ("right", "both") and self.high is not None else ")"
        low = "-inf" if self.low is None else f"{self.low}"
        high = "inf" if self.high is None else f"{self.high}"
        return f"{text} in the range {left}{low}, {high}{right}"


class Betas(RealPair):
    """Constraint: Adam's ``betas``, two real numbers in ``[0, 1)``.

    Examples
    --------
    >>> from skood._validation import Betas
    >>> Betas().is_satisfied_by((0.5, 0.999)), Betas().is_satisfied_by((0.5, 1.0))
    (True, False)
    """

    def __init__(self) -> None:
        super().__init__(0, 1, closed="left")


def check_input_shape(
    input_shape: Any, n_features: int, *, side_multiple: int = 1
) -> tuple[int, int, int]:
    """Check an image shape against the number of columns of ``X``.

    Parameters
    ----------
    input_shape : sequence of 3 int
        ``(channels, height, width)`` of the images stored one per row.
    n_features : int
        Columns of ``X``; must equal ``channels * height * width``.
    side_multiple : int, default=1
        Height and width must be divisible by it (8 for three stride-2 layers).

    Returns
    -------
    shape : tuple of 3 int
        ``(channels, height, width)`` as Python integers.

    Raises
    ------
    ValueError
        When ``input_shape`` is not three positive integers whose product is ``n_features``,
        or when a side is not a multiple of ``side_multiple``.

    Examples
    --------
    >>> from skood._validation import check_input_shape
    >>> check_input_shape([1, 8, 8], 64, side_multiple=8)
    (1, 8, 8)
    """
    # A shape may come as a tuple, a list or a 1-D NumPy array, never as a string.
    is_sequence = hasattr(input_shape, "__len__") and not isinstance(input_shape, str | bytes)
    sizes = list(input_shape) if is_sequence else None
    if sizes is None or not ImageShape().is_satisfied_by(sizes) or math.prod(sizes) != n_features:
        raise ValueError(
            f"input_shape={input_shape!r} must be (channels, height, width) with "
            f"channels * height * width == n_features ({n_features})."
        )
    channels, height, width = (int(size) for size in sizes)
    if height % side_multiple or width % side_multiple:
        padded = tuple(-(-side // side_multiple) * side_multiple for side in (height, width))
        raise ValueError(
            f"input_shape={(channels, height, width)}: the image networks need sides divisible "
            f"by {side_multiple}; zero-pad the images ({height} x {width} -> "
            f"{padded[0]} x {padded[1]})."
        )
    return channels, height, width


def check_n_samples(n_samples: Any) -> int:
    """Check the number of samples to draw (``sample`` methods).

    Parameters
    ----------
    n_samples : int
        A positive integer; booleans are refused.

    Returns
    -------
    n_samples : int

    Raises
    ------
    ValueError
        When ``n_samples`` is not a positive integer.

    Examples
    --------
    >>> from skood._validation import check_n_samples
    >>> check_n_samples(3)
    3
    """
    if not _is_positive_integer(n_samples):
        raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}.")
    return int(n_samples)
