"""MNIST-C-style image corruptions, written with numpy and scipy.ndimage.

The ten corruptions of the DLSGAN papers' OOD table, following the descriptions and the default
severities of MNIST-C (N. Mu and J. Gilmer, "MNIST-C: A Robustness Benchmark for Computer
Vision", 2019): shot noise, impulse noise, glass blur, motion blur, stripe, fog, spatter, dotted
line, zigzag and Canny edges; plus :func:`blend`, the near-OOD mixture ``0.1 * ood + 0.9 * id``
of the follow-up paper.

Every function takes a batch of grey images ``(n, H, W)`` (or one image ``(H, W)``) with pixel
values in ``value_range`` (``(0, 255)`` by default; ``(-1, 1)`` for data from the loaders'
default scaling), returns an array of the same shape, dtype and value range, and draws its
randomness from ``random_state`` only. These are re-implementations, not the published MNIST-C
arrays: the motion blur replaces ImageMagick's with a one-sided Gaussian line kernel, and Canny
edges come from a numpy/scipy Canny detector, so pixel values differ from the released files.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import ndimage
from sklearn.utils import check_random_state

__all__ = [
    "CORRUPTIONS",
    "blend",
    "canny_edges",
    "corrupt",
    "dotted_line",
    "fog",
    "glass_blur",
    "impulse_noise",
    "motion_blur",
    "shot_noise",
    "spatter",
    "stripe",
    "zigzag",
]


# ----------------------------------------------------------------------------- plumbing
def _to_unit(images, value_range):
    images = np.asarray(images)
    if images.ndim not in (2, 3):
        raise ValueError(f"images must be (H, W) or (n, H, W), got shape {images.shape}.")
    low, high = value_range
    if not high > low:
        raise ValueError(f"value_range must be (low, high) with high > low, got {value_range}.")
    unit = (images.astype(np.float64) - low) / (high - low)
    return unit[None] if images.ndim == 2 else unit, images


def _from_unit(unit, original, value_range):
    low, high = value_range
    out = np.clip(unit, 0.0, 1.0) * (high - low) + low
    if original.ndim == 2:
        out = out[0]
    if np.issubdtype(original.dtype, np.integer):
        return np.rint(out).astype(original.dtype)
    return out.astype(original.dtype)


def _corruption(function: Callable) -> Callable:
    """Wrap ``function(unit_images, rng)`` (pixels in [0, 1], shape (n, H, W))."""

    def corrupted(images, *, random_state=None, value_range=(0, 255)):
        unit, original = _to_unit(images, value_range)
        result = function(unit, check_random_state(random_state))
        return _from_unit(result, original, value_range)

    corrupted.__name__ = function.__name__.lstrip("_")
    corrupted.__qualname__ = corrupted.__name__
    corrupted.__doc__ = (function.__doc__ or "") + "\n" + _COMMON_DOC
    return corrupted


_COMMON_DOC = """
    Parameters
    ----------
    images : array-like of shape (n, H, W) or (H, W)
        Grey images with values in ``value_range``.
    random_state : int, RandomState instance or None, default=None
        Source of every random draw.
    value_range : tuple (low, high), default=(0, 255)
        Range of the pixel values, kept by the output.

    Returns
    -------
    corrupted : ndarray
        Same shape, dtype and value range as ``images``.
"""


def _blur(images, sigma):
    # skimage.filters.gaussian's conventions (edge mode "nearest", truncate 4) per image.
    return ndimage.gaussian_filter(images, sigma=(0, sigma, sigma), mode="nearest", truncate=4.0)


# ----------------------------------------------------------------------------- noise
@_corruption
def _shot_noise(x, rng):
    """Poisson (shot) noise: ``poisson(x * 3) / 3`` on [0, 1] pixels (MNIST-C severity 5)."""
    photons = 3.0
    return rng.poisson(x * photons) / photons


@_corruption
def _impulse_noise(x, rng):
    """Salt-and-pepper noise replacing 17% of the pixels, half white, half black."""
    amount = 0.17
    out = x.copy()
    hit = rng.random_sample(x.shape) < amount
    salt = rng.random_sample(x.shape) < 0.5
    out[hit & salt] = 1.0
    out[hit & ~salt] = 0.0
    return out


# ----------------------------------------------------------------------------- blur
@_corruption
def _glass_blur(x, rng):
    """Gaussian blur (sigma 0.7), two passes of random local pixel swaps (up to 1 pixel), blur."""
    sigma, delta, iterations = 0.7, 1, 2
    n, height, width = x.shape
    out = np.floor(_blur(x, sigma) * 255) / 255  # the reference quantises to 8 bits here
    rows = np.arange(n)
    for _ in range(iterations):
        for h in range(height - delta, delta, -1):
            for w in range(width - delta, delta, -1):
                swap = rng.random_sample(n) < 0.5
                dx, dy = rng.randint(-delta, delta, size=(2, n))
                h2, w2 = h + dy, w + dx
                here, there = out[rows, h, w].copy(), out[rows, h2, w2].copy()
                out[rows, h, w] = np.where(swap, there, here)
                out[rows, h2, w2] = np.where(swap, here, there)
    return _blur(out, sigma)


def _motion_kernel(radius: int, sigma: float, angle: float) -> np.ndarray:
    size = 2 * radius + 1
    kernel = np.zeros((size, size))
    theta = np.deg2rad(angle)
    for step in np.linspace(0, radius, 4 * radius + 1):
        weight = np.exp(-(step**2) / (2 * sigma**2))
        col, row = radius + step * np.cos(theta), radius - step * np.sin(theta)
        c0, r0 = int(np.floor(col)), int(np.floor(row))
        fc, fr = col - c0, row - r0
        for dr, wr in ((0, 1 - fr), (1, fr)):
            for dc, wc in ((0, 1 - fc), (1, fc)):
                if 0 <= r0 + dr < size and 0 <= c0 + dc < size:
                    kernel[r0 + dr, c0 + dc] += weight * wr * wc
    return kernel / kernel.sum()


@_corruption
def _motion_blur(x, rng):
    """One-sided motion blur along a random direction in [-45, 45] degrees (radius 10,
    Gaussian weights with sigma 3), as MNIST-C's severity 1."""
    out = np.empty_like(x)
    for index, image in enumerate(x):
        kernel = _motion_kernel(10, 3.0, rng.uniform(-45, 45))
        out[index] = ndimage.convolve(image, kernel, mode="nearest")
    return out


# ----------------------------------------------------------------------------- overlays
@_corruption
def _stripe(x, rng):
    """Invert the 7 leftmost and the 7 rightmost columns (a quarter of the width each)."""
    out = x.copy()
    quarter = x.shape[2] // 4
    out[:, :, :quarter] = 1.0 - out[:, :, :quarter]
    out[:, :, x.shape[2] - quarter :] = 1.0 - out[:, :, x.shape[2] - quarter :]
    return out


def _plasma(size: int, decay: float, rng) -> np.ndarray:
    """Diamond-square height map in [0, 1] (``size`` a power of two)."""
    field = np.zeros((size, size))
    step, wibble = size, 100.0

    def wibbled_mean(total):
        return total / 4 + wibble * rng.uniform(-wibble, wibble, total.shape)

    while step >= 2:
        half = step // 2
        corners = field[0:size:step, 0:size:step]
        square = corners + np.roll(corners, -1, axis=0)
        square = square + np.roll(square, -1, axis=1)
        field[half:size:step, half:size:step] = wibbled_mean(square)
        centres = field[half:size:step, half:size:step]
        corners = field[0:size:step, 0:size:step]
        left = centres + np.roll(centres, 1, axis=0) + corners + np.roll(corners, -1, axis=1)
        field[0:size:step, half:size:step] = wibbled_mean(left)
        top = centres + np.roll(centres, 1, axis=1) + corners + np.roll(corners, -1, axis=0)
        field[half:size:step, 0:size:step] = wibbled_mean(top)
        step //= 2
        wibble /= decay
    field -= field.min()
    return field / field.max()


@_corruption
def _fog(x, rng):
    """Add a plasma-fractal haze (strength 3, decay 1.4), rescaled to keep the image maximum."""
    strength, decay = 3.0, 1.4
    height, width = x.shape[1:]
    out = np.empty_like(x)
    for index, image in enumerate(x):
        haze = _plasma(256, decay, rng)[:height, :width]
        peak = image.max()
        out[index] = (image + strength * haze) * peak / (peak + strength)
    return out


@_corruption
def _spatter(x, rng):
    """Mud spatter: thresholded blurred noise blobs painted in dark grey (63/255)."""
    loc, scale, sigma, threshold, mask_sigma = 0.65, 0.3, 1.0, 0.65, 1.5
    liquid = _blur(rng.normal(loc, scale, size=x.shape), sigma)
    liquid[liquid < threshold] = 0
    mask = _blur((liquid > threshold).astype(np.float64), mask_sigma)
    mask[mask < 0.8] = 0
    return x * (1 - mask) + 63 / 255 * mask


def _line(c0, r0, c1, r1, height, width):
    """Anti-aliased line between (column, row) points: intensity ``log(1 - d/2.3) + 1``."""
    if c1 == c0:
        return np.zeros((height, width))
    cols, rows = np.meshgrid(np.arange(width, dtype=float), np.arange(height, dtype=float))
    slope = (r1 - r0) / (c1 - c0)
    distance = np.clip(np.abs(rows - (slope * (cols - c0) + r0)), 0, 2.3 - 1e-10)
    line = np.clip(np.log(1 - distance / 2.3) + 1, 0, 1)
    line[:, : int(np.floor(c0))] = 0
    line[:, int(np.ceil(c1)) :] = 0
    return line


@_corruption
def _dotted_line(x, rng):
    """A dashed line across the image between random heights (dashes 2 pixels long)."""
    n, height, width = x.shape
    out = x.copy()
    for index in range(n):
        r0, r1 = rng.randint(0, height - 1, size=2)
        line = _line(0, r0, width - 1, r1, height, width)
        for start in range(0, width, 4):
            line[:, start : start + 2] = 0
        out[index] = x[index] + line
    return out


@_corruption
def _zigzag(x, rng):
    """A zigzag (segments 2 pixels long, amplitude 2) across the image at a random height."""
    n, height, width = x.shape
    length, amplitude = 2.0, 2.0
    c0, c1 = 2, width - 3
    out = x.copy()
    for index in range(n):
        r0 = rng.randint(0, height - 1)
        r1 = r0 + rng.randint(-5, 5)
        theta = np.arctan((r1 - r0) / (c1 - c0))
        span = (c1 - c0) / np.cos(theta)
        points = [(0.0, 0.0)]
        for i in range(int((span - length) // (2 * length)) + 1):
            points.append(((2 * i + 1) * length, (-1) ** i * amplitude))
        last = (2 * length) * (span // (2 * length))
        if span != last:
            points.append((span, points[-1][1] / (2 * (span - last))))
        rotation = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
        cols, rows = rotation @ np.array(points).T
        cols, rows = cols + c0, rows + r0
        image = x[index].copy()
        for i in range(1, len(cols)):
            image = np.clip(
                image + _line(cols[i - 1], rows[i - 1], cols[i], rows[i], height, width), 0, 1
            )
        out[index] = image
    return out


# ----------------------------------------------------------------------------- edges
def _canny(image, sigma=1.0, low=0.1, high=0.2):
    """Canny edges (Gaussian smoothing, Sobel gradients, non-maximum suppression, hysteresis)."""
    smooth = ndimage.gaussian_filter(image, sigma, mode="constant")
    gy, gx = ndimage.sobel(smooth, axis=0), ndimage.sobel(smooth, axis=1)
    magnitude = np.hypot(gx, gy)
    angle = (np.rad2deg(np.arctan2(gy, gx)) + 180) % 180
    sector = (np.round(angle / 45).astype(int)) % 4  # 0: horizontal gradient ... 3: 135 degrees
    offsets = {0: (0, 1), 1: (1, 1), 2: (1, 0), 3: (1, -1)}
    padded = np.pad(magnitude, 1)
    keep = np.zeros_like(magnitude, dtype=bool)
    h, w = magnitude.shape
    for code, (dr, dc) in offsets.items():
        ahead = padded[1 + dr : 1 + dr + h, 1 + dc : 1 + dc + w]
        behind = padded[1 - dr : 1 - dr + h, 1 - dc : 1 - dc + w]
        keep |= (sector == code) & (magnitude >= ahead) & (magnitude >= behind)
    # Gradients here are Sobel-scaled (x8 of a unit derivative); thresholds apply to the unit one.
    candidates = keep & (magnitude / 8 >= low)
    strong = keep & (magnitude / 8 >= high)
    labels, count = ndimage.label(candidates, structure=np.ones((3, 3)))
    if count == 0:
        return np.zeros_like(image)
    connected = np.zeros(count + 1, dtype=bool)
    connected[np.unique(labels[strong])] = True
    connected[0] = False
    return connected[labels].astype(float)


@_corruption
def _canny_edges(x, rng):
    """Replace each image by its Canny edge map (sigma 1; white edges on black)."""
    return np.stack([_canny(image) for image in x])


shot_noise = _shot_noise
impulse_noise = _impulse_noise
glass_blur = _glass_blur
motion_blur = _motion_blur
stripe = _stripe
fog = _fog
spatter = _spatter
dotted_line = _dotted_line
zigzag = _zigzag
canny_edges = _canny_edges

#: The corruptions of the DLSGAN OOD table, in its order.
CORRUPTIONS: dict[str, Callable] = {
    "shot_noise": shot_noise,
    "impulse_noise": impulse_noise,
    "glass_blur": glass_blur,
    "motion_blur": motion_blur,
    "stripe": stripe,
    "fog": fog,
    "spatter": spatter,
    "dotted_line": dotted_line,
    "zigzag": zigzag,
    "canny_edges": canny_edges,
}


def corrupt(images, name: str, *, random_state=None, value_range=(0, 255)):
    """Apply the corruption called ``name`` (a key of :data:`CORRUPTIONS`).

    Flat rows ``(n, H * W)`` of square images are accepted too and returned flat.

    Parameters
    ----------
    images : array-like of shape (n, H, W), (H, W) or (n, H * W)
        Grey images with values in ``value_range``; rows of shape ``(n, H * W)`` hold square
        images.
    name : str
        The corruption, a key of :data:`CORRUPTIONS` (``"shot_noise"``, ``"fog"``, ...).
    random_state : int, RandomState instance or None, default=None
        Source of every random draw.
    value_range : tuple (low, high), default=(0, 255)
        Range of the pixel values, kept by the output.

    Returns
    -------
    corrupted : ndarray
        Same shape, dtype and value range as ``images``.

    Examples
    --------
    >>> import numpy as np
    >>> from skood.datasets.corruptions import corrupt
    >>> digits = np.zeros((2, 28, 28), dtype=np.uint8)
    >>> corrupt(digits, "stripe")[0, 0, :8]
    array([255, 255, 255, 255, 255, 255, 255,   0], dtype=uint8)
    """
    if name not in CORRUPTIONS:
        raise ValueError(f"Unknown corruption {name!r}; choose from {sorted(CORRUPTIONS)}.")
    images = np.asarray(images)
    flat = images.ndim == 2 and images.shape[1] != images.shape[0]
    if flat:
        side = int(round(np.sqrt(images.shape[1])))
        if side * side != images.shape[1]:
            raise ValueError("flat rows must hold square images (H * W with H == W).")
        images = images.reshape(len(images), side, side)
    out = CORRUPTIONS[name](images, random_state=random_state, value_range=value_range)
    return out.reshape(len(out), -1) if flat else out


def blend(ood, inlier, *, weight=0.1):
    """Near-OOD images: ``weight * ood + (1 - weight) * inlier``, pixelwise, same dtype.

    The follow-up DLSGAN paper pairs each OOD image with the in-distribution image of the same
    index and uses ``weight=0.1``.

    Parameters
    ----------
    ood : array-like
        Out-of-distribution images.
    inlier : array-like
        In-distribution images, of the same shape as ``ood``.
    weight : float in [0, 1], default=0.1
        Weight of ``ood`` in the mixture.

    Returns
    -------
    blended : ndarray
        The mixture, of the shape of the inputs: rounded to the dtype of ``inlier`` when that
        is an integer dtype, else of ``numpy.result_type`` of the two dtypes.

    Examples
    --------
    >>> import numpy as np
    >>> from skood.datasets.corruptions import blend
    >>> blend(np.full(3, 1.0), np.full(3, -1.0))
    array([-0.8, -0.8, -0.8])
    """
    ood, inlier = np.asarray(ood), np.asarray(inlier)
    if ood.shape != inlier.shape:
        raise ValueError(f"shapes differ: {ood.shape} and {inlier.shape}.")
    if not 0 <= weight <= 1:
        raise ValueError(f"weight must be in [0, 1], got {weight!r}.")
    mixed = weight * ood.astype(np.float64) + (1 - weight) * inlier.astype(np.float64)
    if np.issubdtype(inlier.dtype, np.integer):
        return np.rint(mixed).astype(inlier.dtype)
    return mixed.astype(np.result_type(ood.dtype, inlier.dtype))
