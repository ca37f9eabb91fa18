"""MNIST-C-style corruptions: shape, dtype and range kept, seeded, and the image changes."""

import numpy as np
import pytest

from skood.datasets.corruptions import CORRUPTIONS, blend, corrupt


@pytest.fixture(scope="module")
def digits():
    # Synthetic digit-like strokes: a bright ring and a bar on black, 28 x 28, uint8.
    rows, cols = np.mgrid[:28, :28]
    ring = np.abs(np.hypot(rows - 14, cols - 14) - 7) < 2
    bar = (np.abs(cols - 14) < 2) & (rows > 4) & (rows < 24)
    return np.stack([ring * 255, bar * 255, (ring | bar) * 230]).astype(np.uint8)


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_corruption_keeps_shape_dtype_range_and_changes_the_image(digits, name):
    out = corrupt(digits, name, random_state=0)
    assert out.shape == digits.shape and out.dtype == digits.dtype
    assert out.min() >= 0 and out.max() <= 255
    assert not np.array_equal(out, digits)
    np.testing.assert_array_equal(out, corrupt(digits, name, random_state=0))


@pytest.mark.parametrize("name", ["shot_noise", "impulse_noise", "dotted_line", "zigzag", "fog"])
def test_random_corruptions_depend_on_the_seed(digits, name):
    assert not np.array_equal(
        corrupt(digits, name, random_state=0), corrupt(digits, name, random_state=1)
    )


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_symmetric_float_range_and_flat_rows(digits, name):
    scaled = (digits.astype(np.float32) / 127.5 - 1).reshape(len(digits), -1)
    out = corrupt(scaled, name, random_state=0, value_range=(-1, 1))
    assert out.shape == scaled.shape and out.dtype == np.float32
    assert out.min() >= -1 and out.max() <= 1


def test_known_values(digits):
    stripe = corrupt(np.zeros((1, 28, 28), np.uint8), "stripe")[0]
    assert stripe[:, :7].min() == 255 and stripe[:, 21:].min() == 255
    assert stripe[:, 7:21].max() == 0
    edges = corrupt(digits[:1], "canny_edges")[0]
    assert set(np.unique(edges)) <= {0, 255}
    assert edges[14, 14] == 0 and edges.sum() > 0  # the ring's outline, not its centre


def test_single_image_and_errors(digits):
    assert corrupt(digits[0], "fog", random_state=0).shape == (28, 28)
    with pytest.raises(ValueError, match="Unknown corruption"):
        corrupt(digits, "snow")
    with pytest.raises(ValueError, match="value_range"):
        corrupt(digits, "stripe", value_range=(1, 1))


def test_blend_is_the_near_ood_mixture(digits):
    ood = np.full_like(digits, 200)
    mixed = blend(ood, digits)
    np.testing.assert_array_equal(mixed, np.rint(0.1 * 200 + 0.9 * digits.astype(float)))
    assert mixed.dtype == np.uint8
    with pytest.raises(ValueError, match="shapes"):
        blend(ood[:1], digits)
