"""Given image helpers: open an image file, and fit a digit into the MNIST 28x28 frame.

MNIST digits are white on black. Each was scaled to fit a 20x20 box, keeping its aspect
ratio, and placed in a 28x28 image so that its centre of mass lies at the centre.
:func:`fit_to_mnist_frame` repeats that procedure for any image of a single digit.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from mnist_course.data import IMAGE_SIZE
from mnist_course.errors import CourseError

DIGIT_BOX = 20
INK_THRESHOLD = 0.1
"""Pixels brighter than this fraction of the brightest pixel count as ink when cropping."""


def open_image(source: str | Path | Image.Image) -> Image.Image:
    """Return ``source`` as a loaded PIL image with 8 bits per channel.

    Paths are opened and read fully. 16-bit and 32-bit grayscale images (modes ``I;16``,
    ``I`` and ``F``) are scaled to 8-bit ``L``, because Pillow's own conversion to ``L``
    clips every value above 255 instead of scaling it.

    Raises:
        CourseError: the file does not exist or is not an image that Pillow can read.
    """
    if isinstance(source, Image.Image):
        return to_8_bit(source)
    path = Path(source)
    if not path.is_file():
        raise CourseError(f"Image file {path} not found. Check the path and try again.")
    try:
        with Image.open(path) as image:
            image.load()
            return to_8_bit(image)
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise CourseError(
            f"Cannot read {path} as an image ({err}). Use a PNG or JPEG file."
        ) from err


def to_8_bit(image: Image.Image) -> Image.Image:
    """Scale a high-bit-depth grayscale image to mode ``L``; return other images unchanged."""
    if not (image.mode.startswith("I") or image.mode == "F"):
        return image
    pixels = np.asarray(image, dtype=np.float64)
    if image.mode.startswith("I;16"):
        full_scale = 65535.0
    elif image.mode == "F" and pixels.max(initial=0.0) <= 1.0:
        full_scale = 1.0
    elif pixels.max(initial=0.0) > 255:
        full_scale = 65535.0 if pixels.max() <= 65535 else float(pixels.max())
    else:
        full_scale = 255.0
    scaled = np.clip(np.rint(pixels / full_scale * 255), 0, 255).astype(np.uint8)
    return Image.fromarray(scaled)


def fit_to_mnist_frame(ink: np.ndarray) -> np.ndarray:
    """Crop, scale and centre a white-on-black digit the way MNIST did.

    Args:
        ink: float array of shape (H, W) with values in [0, 1], where 0 is background and
            larger values are ink. Any size.

    Returns:
        float32 array of shape (28, 28) with values in [0, 1]: the digit scaled to fit a
        20x20 box and shifted so that its centre of mass is at the centre. An image without
        ink comes back all zero.
    """
    ink = np.asarray(ink, dtype=np.float32)
    if ink.ndim != 2:
        raise ValueError(f"expected a 2-D (H, W) array, got shape {tuple(ink.shape)}")
    frame = np.zeros((IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    peak = float(ink.max(initial=0.0))
    if peak <= 0.0:
        return frame

    # Crop to the bounding box of the ink.
    rows = np.flatnonzero((ink > INK_THRESHOLD * peak).any(axis=1))
    columns = np.flatnonzero((ink > INK_THRESHOLD * peak).any(axis=0))
    digit = ink[rows[0] : rows[-1] + 1, columns[0] : columns[-1] + 1] / peak

    # Scale the longer side to 20 pixels, keeping the aspect ratio.
    height, width = digit.shape
    scale = DIGIT_BOX / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resized = Image.fromarray(digit.astype(np.float32)).resize(
        size, Image.Resampling.BILINEAR
    )
    digit = np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)

    # Put the centre of mass at the centre of the 28x28 frame, staying inside it.
    height, width = digit.shape
    mass = digit.sum()
    center_row = (
        (digit.sum(axis=1) @ np.arange(height)) / mass if mass > 0 else height / 2
    )
    center_column = (
        (digit.sum(axis=0) @ np.arange(width)) / mass if mass > 0 else width / 2
    )
    top = round(IMAGE_SIZE / 2 - 0.5 - center_row)
    left = round(IMAGE_SIZE / 2 - 0.5 - center_column)
    top = min(max(top, 0), IMAGE_SIZE - height)
    left = min(max(left, 0), IMAGE_SIZE - width)
    frame[top : top + height, left : left + width] = digit
    return frame
