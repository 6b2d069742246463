"""Boundary maps and disk dilation on bit-packed binary images: the fast core of F.

Layout: binary images (N, H, W) are packed along W into little-endian 64-bit words
(N, H, n_words), bit k of word j being column 64*j + k, with at least ``pad_bits`` zero bits after
column W - 1 in every row. Read as one flat bit string, the rows are then separated by zero gaps,
so horizontal shifts can run over the flat, contiguous word array (a carry between neighbouring
words) instead of row by row: a bit moved by at most ``pad_bits`` columns never reaches another
row's columns 0..W-1.

Dilation by a disk (any symmetric element whose rows are centred runs, such as
``skimage.morphology.disk``) is the union over row offsets dy of the image dilated horizontally by
the run half-width w(dy) and shifted by dy rows. The result equals ``cv2.dilate`` with that kernel
on columns 0..W-1 (cv2's default border adds nothing from outside the image); bits in the padding
may be set and are ignored by ANDing with an image whose padding is clear.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
from skimage.morphology import disk

_WORD_BITS = 64
_TOP_BIT = np.uint64(1 << 63)


@functools.lru_cache(maxsize=64)
def disk_kernel(radius: float) -> np.ndarray:
    """``skimage.morphology.disk(radius)`` as a read-only uint8 array (2r+1, 2r+1), cached."""
    kernel = disk(radius).astype(np.uint8)
    kernel.flags.writeable = False
    return kernel


@functools.lru_cache(maxsize=64)
def disk_half_widths(radius: float) -> tuple[int, ...] | None:
    """Half-widths w(dy), dy = 0..r, of the rows of ``disk_kernel(radius)``.

    Row r + dy and row r - dy of the kernel are both the run of ones at columns r - w .. r + w.
    Returns None when the kernel does not have that shape (e.g. a non-integer radius, which
    skimage turns into an even-sized kernel); callers then fall back to ``cv2.dilate``.
    """
    kernel = disk_kernel(radius)
    size = kernel.shape[0]
    if kernel.shape != (size, size) or size % 2 == 0:
        return None
    centre = size // 2
    widths = []
    for dy in range(centre + 1):
        w = int(np.count_nonzero(kernel[centre + dy])) // 2
        run = np.zeros(size, dtype=np.uint8)
        run[centre - w : centre + w + 1] = 1
        below, above = kernel[centre + dy], kernel[centre - dy]
        if not (np.array_equal(below, run) and np.array_equal(above, run)):
            return None
        widths.append(w)
    return tuple(widths)


def pack_rows(images: Sequence[np.ndarray], pad_bits: int = 0) -> np.ndarray:
    """Pack binary images, each (H, W) (bool or uint8, nonzero = 1), into words (N, H, n_words).

    n_words = ceil((W + pad_bits) / 64); the bits after column W - 1 are zero.
    """
    height, width = images[0].shape
    n_words = -(-(width + pad_bits) // _WORD_BITS)
    buffer = np.zeros((len(images), height, n_words * 8), dtype=np.uint8)
    for k, image in enumerate(images):
        packed = np.packbits(image, axis=1, bitorder="little")
        buffer[k, :, : packed.shape[1]] = packed
    return buffer.view("<u8")


def popcount(words: np.ndarray) -> int:
    """Number of set bits in an array of uint64 words."""
    if hasattr(np, "bitwise_count"):
        return int(np.bitwise_count(words).sum())
    return int(np.unpackbits(np.ascontiguousarray(words).view(np.uint8)).sum())


def boundary_maps(masks: np.ndarray, width: int) -> np.ndarray:
    """DAVIS ``seg2bmap`` of packed masks (N, H, n_words) of width W (at least 1 padding bit).

    A bit is set when its 2x2 block (itself, east, south, south-east) is not constant, the block
    being cut at column W - 1 and row H - 1 (the last row compares with the east neighbour only,
    the last column with the south one only, the corner with nothing). Returns packed maps of the
    same shape with clear padding.
    """
    height = masks.shape[1]
    flat = masks.reshape(-1)
    east = masks >> np.uint64(1)  # column x + 1 moved to x
    east.reshape(-1)[:-1] |= flat[1:] << np.uint64(_WORD_BITS - 1)
    last_word, last_bit = divmod(width - 1, _WORD_BITS)
    last_column = np.uint64(1 << last_bit)
    # the last column has no east neighbour: it compares with itself (its east bit is padding, 0)
    east[..., last_word] |= masks[..., last_word] & last_column
    boundary = masks ^ east
    # south and south-east: the next row; the last row has none (its block is itself + east)
    boundary[:, : height - 1] |= masks[:, : height - 1] ^ masks[:, 1:]
    boundary[:, : height - 1] |= masks[:, : height - 1] ^ east[:, 1:]
    boundary[..., -1] &= ~_TOP_BIT  # the carry from the next row's first word lands in padding
    return boundary


def _grow_horizontally(words: np.ndarray, shift: int) -> np.ndarray:
    """Union of packed images shifted by -shift, 0 and +shift columns (0 < shift < 64)."""
    left = np.uint64(shift)
    right = np.uint64(_WORD_BITS - shift)
    flat = words.reshape(-1)
    out = words << left
    out_flat = out.reshape(-1)
    out_flat[1:] |= flat[:-1] >> right
    out |= words >> left
    out_flat[:-1] |= flat[1:] << right
    out |= words
    return out


def dilate_packed(words: np.ndarray, half_widths: tuple[int, ...]) -> np.ndarray:
    """Dilate packed images (N, H, n_words) by the symmetric element with row half-widths w(dy).

    ``half_widths[dy]`` is the half-width of the element's rows at offsets +dy and -dy (a disk's
    decrease with dy). The images need at least max(half_widths) padding bits per row (see the
    module docstring). Returns packed images of the same shape.
    """
    height = words.shape[1]
    by_width: dict[int, np.ndarray] = {}
    grown, reach = words, 0
    for width in sorted(set(half_widths)):
        while reach < width:
            # growing a union of runs of half-width `reach` by `shift` <= 2*reach+1 leaves no gap,
            # and the witness of every new bit lies between it and its source
            shift = min(width - reach, 2 * reach + 1, _WORD_BITS - 1)
            grown = _grow_horizontally(grown, shift)
            reach += shift
        by_width[width] = grown
    dilated = by_width[half_widths[0]].copy()
    for dy in range(1, min(len(half_widths), height)):
        rows = by_width[half_widths[dy]]
        dilated[:, : height - dy] |= rows[:, dy:]
        dilated[:, dy:] |= rows[:, : height - dy]
    return dilated
