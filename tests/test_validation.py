"""skood._validation: the parameter constraints accept and refuse what they should, read well in
scikit-learn's InvalidParameterError, and the shape checks word their errors as the detectors'."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import InvalidParameterError, validate_parameter_constraints

from skood._validation import (
    Betas,
    ImageShape,
    IntegerWidths,
    RealPair,
    check_input_shape,
    check_n_samples,
)

positive = st.integers(min_value=1, max_value=10_000)
not_positive = st.integers(max_value=0)
sequences = st.sampled_from([tuple, list])
# Values that are never a width, a side or a count.
not_integers = st.one_of(
    st.booleans(),
    st.floats(allow_nan=True),
    st.text(max_size=3),
    st.none(),
    st.just(np.float64(2.0)),
)


# ---------------------------------------------------------------------- IntegerWidths
@given(sequences, st.lists(positive, min_size=1, max_size=5))
def test_integer_widths_accepts_positive_integers(kind, widths):
    assert IntegerWidths().is_satisfied_by(kind(widths))
    assert IntegerWidths().is_satisfied_by(kind(np.int64(width) for width in widths))


@given(
    sequences,
    st.lists(positive, max_size=4),
    st.one_of(not_positive, not_integers),
    st.integers(min_value=0, max_value=4),
)
def test_integer_widths_refuses_any_bad_width(kind, widths, bad, position):
    widths.insert(min(position, len(widths)), bad)
    assert not IntegerWidths().is_satisfied_by(kind(widths))


@pytest.mark.parametrize("value", [(), [], 64, "64", None, np.array([8, 4]), {8, 4}])
def test_integer_widths_refuses_empty_and_non_sequences(value):
    assert not IntegerWidths().is_satisfied_by(value)


# ---------------------------------------------------------------------- ImageShape
@given(sequences, st.tuples(positive, positive, positive))
def test_image_shape_accepts_three_positive_integers(kind, shape):
    assert ImageShape().is_satisfied_by(kind(shape))


@given(sequences, st.lists(positive, max_size=6).filter(lambda sizes: len(sizes) != 3))
def test_image_shape_refuses_other_lengths(kind, sizes):
    assert not ImageShape().is_satisfied_by(kind(sizes))


@given(
    st.lists(positive, min_size=2, max_size=2),
    st.one_of(not_positive, not_integers),
    st.integers(min_value=0, max_value=2),
)
def test_image_shape_refuses_a_bad_size(sizes, bad, position):
    sizes.insert(position, bad)
    assert not ImageShape().is_satisfied_by(tuple(sizes))


@pytest.mark.parametrize("value", [None, "1x8x8", 64, np.array([1, 8, 8])])
def test_image_shape_refuses_non_sequences(value):
    assert not ImageShape().is_satisfied_by(value)


# ---------------------------------------------------------------------- RealPair, Betas
unit = st.floats(min_value=0.0, max_value=1.0, exclude_max=True)


@given(sequences, unit, unit)
def test_betas_accepts_two_reals_in_the_unit_interval(kind, first, second):
    assert Betas().is_satisfied_by(kind((first, second)))
    assert Betas().is_satisfied_by((np.float64(first), 0))


@given(
    st.one_of(
        st.floats(max_value=0.0, exclude_max=True),
        st.floats(min_value=1.0),
        st.just(math.nan),
        st.booleans(),
        st.text(max_size=2),
        st.none(),
    ),
    unit,
    st.booleans(),
)
def test_betas_refuses_a_bad_beta(bad, good, first):
    pair = (bad, good) if first else (good, bad)
    assert not Betas().is_satisfied_by(pair)


@pytest.mark.parametrize(
    "value", [(0.5,), (0.5, 0.9, 0.99), 0.5, "0.5", None, np.array([0.5, 0.9])]
)
def test_betas_refuses_anything_but_a_pair(value):
    assert not Betas().is_satisfied_by(value)


@given(st.floats(allow_nan=False), st.floats(allow_nan=False))
def test_an_unbounded_real_pair_takes_any_two_finite_or_infinite_reals(first, second):
    assert RealPair().is_satisfied_by([first, second])
    assert not RealPair().is_satisfied_by([first, math.nan])


@pytest.mark.parametrize(
    ("closed", "accepted", "refused"),
    [
        ("both", [(0, 1), (1, 0)], [(-0.1, 0), (0, 1.1)]),
        ("left", [(0, 0.5)], [(0, 1)]),
        ("right", [(1, 0.5)], [(0, 1)]),
        ("neither", [(0.5, 0.25)], [(0, 0.5), (0.5, 1)]),
    ],
)
def test_real_pair_bounds_follow_closed(closed, accepted, refused):
    constraint = RealPair(0, 1, closed=closed)
    assert all(constraint.is_satisfied_by(pair) for pair in accepted)
    assert not any(constraint.is_satisfied_by(pair) for pair in refused)


def test_real_pair_refuses_bad_arguments():
    with pytest.raises(ValueError, match="closed"):
        RealPair(0, 1, closed="open")
    with pytest.raises(ValueError, match="must not exceed"):
        RealPair(1, 0)


# ---------------------------------------------------------------------- error messages
@pytest.mark.parametrize(
    ("constraints", "value", "wording"),
    [
        ([IntegerWidths()], (), "a non-empty tuple or list of positive integers"),
        (
            [ImageShape(), None],
            (28, 28),
            "a tuple or list of 3 positive integers (channels, height, width) or None",
        ),
        ([Betas()], (0.5, 1.0), "a tuple or list of two real numbers in the range [0, 1)"),
        (
            [RealPair(None, 0, closed="neither")],
            [0, 0],
            "a tuple or list of two real numbers in the range (-inf, 0)",
        ),
        ([RealPair()], "ab", "a tuple or list of two real numbers"),
    ],
)
def test_invalid_parameter_error_names_the_constraint(constraints, value, wording):
    with pytest.raises(InvalidParameterError) as error:
        validate_parameter_constraints({"param": constraints}, {"param": value}, "Caller")
    assert str(error.value) == (
        f"The 'param' parameter of Caller must be {wording}. Got {value!r} instead."
    )


class _Estimator(BaseEstimator):
    _parameter_constraints: dict = {
        "hidden_dims": [IntegerWidths()],
        "input_shape": [ImageShape(), None],
        "betas": [Betas()],
    }

    def __init__(self, hidden_dims=(8,), input_shape=None, betas=(0.5, 0.999)):
        self.hidden_dims = hidden_dims
        self.input_shape = input_shape
        self.betas = betas


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"hidden_dims": (8, 0)}, "hidden_dims"),
        ({"input_shape": (1, 8)}, "input_shape"),
        ({"betas": (0.9, 1)}, "betas"),
    ],
)
def test_estimator_validation_refuses_with_the_parameter_name(params, name):
    _Estimator()._validate_params()
    _Estimator(input_shape=[3, 32, 32], betas=[0, 0.99])._validate_params()
    with pytest.raises(InvalidParameterError, match=f"The '{name}' parameter of _Estimator"):
        _Estimator(**params)._validate_params()


# ---------------------------------------------------------------------- check_input_shape
@given(st.tuples(positive, positive, positive), sequences)
def test_check_input_shape_returns_the_shape_as_ints(shape, kind):
    n_features = math.prod(shape)
    result = check_input_shape(kind(np.int64(size) for size in shape), n_features)
    assert result == shape
    assert all(type(size) is int for size in result)


@given(st.tuples(positive, positive, positive), st.integers(min_value=1, max_value=5))
def test_check_input_shape_refuses_a_shape_of_another_size(shape, offset):
    n_features = math.prod(shape) + offset
    message = (
        f"input_shape={shape!r} must be (channels, height, width) with "
        f"channels * height * width == n_features ({n_features})."
    )
    with pytest.raises(ValueError) as error:
        check_input_shape(shape, n_features)
    assert str(error.value) == message


@pytest.mark.parametrize(
    "shape", [(8, 8), (1, 8, 8, 1), (1, 8, 8.0), (True, 8, 8), "abc", None, 64]
)
def test_check_input_shape_refuses_what_is_not_three_positive_integers(shape):
    with pytest.raises(ValueError, match=r"must be \(channels, height, width\)"):
        check_input_shape(shape, 64)


@given(positive, st.integers(1, 12), st.integers(1, 12), st.sampled_from([1, 2, 4, 8]))
def test_check_input_shape_side_multiple(channels, height, width, multiple):
    shape = (channels, height, width)
    if height % multiple or width % multiple:
        with pytest.raises(ValueError, match=f"need sides divisible by {multiple}"):
            check_input_shape(shape, math.prod(shape), side_multiple=multiple)
    else:
        assert check_input_shape(shape, math.prod(shape), side_multiple=multiple) == shape


def test_check_input_shape_says_how_to_pad():
    with pytest.raises(
        ValueError, match=r"divisible by 8; zero-pad the images \(28 x 28 -> 32 x 32\)"
    ):
        check_input_shape((1, 28, 28), 784, side_multiple=8)


# ---------------------------------------------------------------------- check_n_samples
@given(st.one_of(positive, positive.map(np.int64)))
def test_check_n_samples_accepts_positive_integers(n_samples):
    result = check_n_samples(n_samples)
    assert result == n_samples and type(result) is int


@given(st.one_of(not_positive, not_integers))
def test_check_n_samples_refuses_the_rest(n_samples):
    with pytest.raises(ValueError) as error:
        check_n_samples(n_samples)
    assert str(error.value) == f"n_samples must be a positive integer, got {n_samples!r}."
