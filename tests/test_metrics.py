"""Tests of nvos.metrics: golden DAVIS values, edge cases, crop equivalence, RLE and instances."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from benchmarks.reference_davis import reference_boundary_f, reference_jaccard, reference_seg2bmap
from nvos import rle
from nvos.metrics import (
    bound_pixels,
    boundary_f,
    boundary_f_rle,
    iou_matrix,
    jaccard,
    jaccard_rle,
    seg2bmap,
)
from nvos.metrics.bitpack import (
    boundary_maps,
    dilate_packed,
    disk_half_widths,
    disk_kernel,
    pack_rows,
    popcount,
)

DATA = Path(__file__).resolve().parent / "data"


PAIRS = np.load(DATA / "davis_pairs.npz")
N_PAIRS = int(PAIRS["n"])


def _pair(i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    height, width = (int(v) for v in PAIRS["shapes"][i])

    def unpack(key: str) -> np.ndarray:
        bits = np.unpackbits(PAIRS[key], count=height * width)
        return bits.reshape(height, width).astype(bool)

    void = unpack(f"void_{i:02d}") if PAIRS["has_void"][i] else None
    return unpack(f"gt_{i:02d}"), unpack(f"pred_{i:02d}"), void


# ------------------------------------------------------------------ golden values (official DAVIS)


def test_golden_file_has_all_pairs() -> None:
    assert N_PAIRS == 42
    assert int(PAIRS["has_void"].sum()) == 2


@pytest.mark.parametrize("i", range(N_PAIRS))
def test_golden_j_and_f(i: int) -> None:
    gt, pred, void = _pair(i)
    desc = str(PAIRS["desc"][i])
    assert jaccard(gt, pred, void) == pytest.approx(float(PAIRS["J"][i]), abs=1e-6), desc
    assert boundary_f(gt, pred, void) == pytest.approx(float(PAIRS["F"][i]), abs=1e-6), desc
    assert bound_pixels(*gt.shape) == int(PAIRS["bound_pix"][i])


@pytest.mark.parametrize("i", range(N_PAIRS))
def test_reference_implementation_golden(i: int) -> None:
    gt, pred, void = _pair(i)
    assert reference_jaccard(gt, pred, void) == pytest.approx(float(PAIRS["J"][i]), abs=1e-6)
    assert reference_boundary_f(gt, pred, void) == pytest.approx(float(PAIRS["F"][i]), abs=1e-6)


# ------------------------------------------------------------------ edge cases (REFERENCE §1)

H, W = 48, 64


def _zeros() -> np.ndarray:
    return np.zeros((H, W), dtype=bool)


def _square(y: int, x: int, size: int) -> np.ndarray:
    mask = _zeros()
    mask[y : y + size, x : x + size] = True
    return mask


def test_both_empty_is_one() -> None:
    assert jaccard(_zeros(), _zeros()) == 1.0
    assert boundary_f(_zeros(), _zeros()) == 1.0


def test_one_side_empty_is_zero() -> None:
    blob = _square(10, 10, 8)
    assert jaccard(_zeros(), blob) == 0.0
    assert boundary_f(_zeros(), blob) == 0.0
    assert jaccard(blob, _zeros()) == 0.0
    assert boundary_f(blob, _zeros()) == 0.0


def test_full_frame_has_no_boundary() -> None:
    full = np.ones((H, W), dtype=bool)
    assert not seg2bmap(full).any()
    assert jaccard(full, full) == 1.0
    assert boundary_f(full, full) == 1.0
    # full-frame GT (no boundary) against an object (boundary): P = 0, R = 1 -> F = 0
    assert boundary_f(full, _square(10, 10, 8)) == 0.0


def test_seg2bmap_half_pixel_ring() -> None:
    # REFERENCE §1.2: a 2x2 square at rows/cols 2-3 gives a 1-px ring over rows/cols 1-3
    # (outer pixels on the top/left, inner ones on the bottom/right)
    mask = np.zeros((8, 8), dtype=bool)
    mask[2:4, 2:4] = True
    expected = np.zeros((8, 8), dtype=bool)
    expected[1:4, 1:4] = True
    expected[2, 2] = False
    np.testing.assert_array_equal(seg2bmap(mask), expected)
    np.testing.assert_array_equal(reference_seg2bmap(mask), expected)


def test_seg2bmap_last_row_and_column_rules() -> None:
    mask = np.zeros((5, 6), dtype=bool)
    mask[4, 2] = True  # last row: only the east comparison counts
    mask[1, 5] = True  # last column: only the south comparison counts
    boundary = seg2bmap(mask)
    np.testing.assert_array_equal(boundary, reference_seg2bmap(mask))
    assert boundary[4, 1] and boundary[4, 2] and not boundary[4, 3]
    assert boundary[0, 5] and boundary[1, 5] and not boundary[2, 5]
    assert not boundary[4, 5]


def test_single_pixels_within_tolerance() -> None:
    a = _zeros()
    a[20, 20] = True
    b = _zeros()
    b[20, 25] = True
    assert jaccard(a, b) == 0.0
    assert boundary_f(a, b, bound_th=8) == 1.0
    # each pixel's boundary is its 2x2 block reaching up/left: columns 19-20 vs 24-25
    assert boundary_f(a, b, bound_th=3) == 0.0  # 4 px apart at the closest, beyond 3 px
    assert boundary_f(a, b, bound_th=4) == 0.5  # the nearer half of each ring matches
    assert boundary_f(a, b, bound_th=4) == reference_boundary_f(a, b, bound_th=4)
    assert boundary_f(a, a) == 1.0


def test_void_spill_is_not_penalised() -> None:
    gt = _square(10, 10, 10)
    pred = _square(8, 8, 14)
    void = pred & ~gt
    assert jaccard(gt, pred) < 1.0
    assert jaccard(gt, pred, void) == 1.0
    assert boundary_f(gt, pred, void) == 1.0


def test_everything_void_is_one() -> None:
    gt = _square(10, 10, 10)
    void = np.ones((H, W), dtype=bool)
    assert jaccard(gt, _zeros(), void) == 1.0
    assert boundary_f(gt, _zeros(), void) == 1.0


@pytest.mark.parametrize(
    ("shape", "expected"),
    [((480, 854), 8), ((480, 910), 9), ((480, 1152), 10), ((300, 400), 4), ((720, 1280), 12),
     ((1080, 1920), 18), ((1440, 1920), 20)],
)  # fmt: skip
def test_bound_pixels_table(shape: tuple[int, int], expected: int) -> None:
    assert bound_pixels(*shape) == expected
    assert bound_pixels(*shape, bound_th=3) == 3


def test_bad_input_is_rejected() -> None:
    with pytest.raises(ValueError, match="differ"):
        jaccard(np.zeros((4, 5), bool), np.zeros((5, 4), bool))
    with pytest.raises(ValueError, match="void mask"):
        boundary_f(np.zeros((4, 5), bool), np.zeros((4, 5), bool), np.zeros((4, 4), bool))
    with pytest.raises(ValueError, match="2-D"):
        boundary_f(np.zeros((2, 4, 5), bool), np.zeros((2, 4, 5), bool))


def test_non_bool_input_is_cast() -> None:
    gt = _square(5, 5, 10).astype(np.uint8) * 255
    pred = _square(7, 6, 10).astype(np.float32)
    assert jaccard(gt, pred) == reference_jaccard(gt, pred)
    assert boundary_f(gt, pred) == reference_boundary_f(gt, pred)


# ------------------------------------------------------------------ crop equivalence (random masks


def _random_blobs(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Union of a few random ellipses and rectangles; some flush with the image borders."""
    mask = np.zeros((height, width), dtype=np.uint8)
    for _ in range(int(rng.integers(1, 4))):
        cy, cx = int(rng.integers(0, height)), int(rng.integers(0, width))
        ry = int(rng.integers(1, max(2, height // 3)))
        rx = int(rng.integers(1, max(2, width // 3)))
        if rng.random() < 0.5:
            cv2.ellipse(mask, (cx, cy), (rx, ry), float(rng.uniform(0, 180)), 0, 360, 1, -1)
        else:
            mask[max(cy - ry, 0) : cy + ry, max(cx - rx, 0) : cx + rx] = 1
    kind = rng.random()
    if kind < 0.2:  # touch one or more borders
        for side in rng.choice(4, size=int(rng.integers(1, 5)), replace=False):
            depth = int(rng.integers(1, 4))
            lo, hi = sorted(int(v) for v in rng.integers(0, width if side < 2 else height, size=2))
            if side == 0:
                mask[:depth, lo : hi + 1] = 1
            elif side == 1:
                mask[-depth:, lo : hi + 1] = 1
            elif side == 2:
                mask[lo : hi + 1, :depth] = 1
            else:
                mask[lo : hi + 1, -depth:] = 1
    elif kind < 0.3:  # complement: a full frame with holes
        mask = 1 - mask
    elif kind < 0.4:  # speckle noise
        mask |= (rng.random((height, width)) < 0.01).astype(np.uint8)
    elif kind < 0.45:  # a single corner pixel
        mask[:] = 0
        mask[int(rng.choice([0, height - 1])), int(rng.choice([0, width - 1]))] = 1
    return mask.astype(bool)


SIZES = [(1, 1), (1, 9), (7, 1), (5, 7), (23, 40), (64, 64), (97, 131), (150, 70), (240, 427)]


def test_crop_equivalence_random_masks() -> None:
    rng = np.random.default_rng(20240601)
    checked = 0
    for round_ in range(360):
        height, width = SIZES[round_ % len(SIZES)]
        gt = _random_blobs(rng, height, width)
        pred = _random_blobs(rng, height, width) if rng.random() < 0.5 else gt.copy()
        if rng.random() < 0.5:  # a shifted copy: close boundaries, the common case
            pred = np.roll(gt, (int(rng.integers(-9, 10)), int(rng.integers(-9, 10))), (0, 1))
        void = _random_blobs(rng, height, width) if rng.random() < 0.25 else None
        bound_th = [0.008, 0.008, 0.03, 2, 5, 2.5, 1][round_ % 7]
        label = f"round {round_}: {height}x{width} bound_th={bound_th} void={void is not None}"
        assert jaccard(gt, pred, void) == reference_jaccard(gt, pred, void), label
        ours = boundary_f(gt, pred, void, bound_th)
        assert ours == reference_boundary_f(gt, pred, void, bound_th), label
        np.testing.assert_array_equal(seg2bmap(gt), reference_seg2bmap(gt), err_msg=label)
        checked += 1
    assert checked == 360


@pytest.mark.parametrize("radius", [1, 2, 8, 18, 40, 70])
@pytest.mark.parametrize("shape", [(3, 5), (30, 63), (41, 64), (57, 200)])
def test_packed_dilation_matches_cv2(radius: int, shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(radius * 1000 + shape[1])
    images = (rng.random((2, *shape)) < 0.02).astype(np.uint8)
    images[0, 0, -1] = images[1, -1, 0] = 1  # sources on the image sides
    half_widths = disk_half_widths(radius)
    assert half_widths is not None and len(half_widths) == radius + 1
    dilated = dilate_packed(pack_rows(list(images), pad_bits=radius), half_widths)
    for k in range(2):
        expected = cv2.dilate(images[k], disk_kernel(radius))
        other = (rng.random(shape) < 0.5).astype(np.uint8)
        both = popcount(pack_rows([other], pad_bits=radius) & dilated[k : k + 1])
        assert both == int(np.count_nonzero(other & expected))


@pytest.mark.parametrize("width", [1, 2, 63, 64, 65, 130])
def test_packed_boundary_maps_match_seg2bmap(width: int) -> None:
    rng = np.random.default_rng(width)
    for height in (1, 2, 9):
        masks = [_random_blobs(rng, height, width) for _ in range(3)]
        boundaries = boundary_maps(pack_rows(masks, pad_bits=1), width)
        for k, mask in enumerate(masks):
            bits = np.unpackbits(boundaries[k].view(np.uint8), axis=1, bitorder="little")
            assert not bits[:, width:].any()  # padding stays clear
            np.testing.assert_array_equal(bits[:, :width].astype(bool), reference_seg2bmap(mask))


def test_non_integer_radius_falls_back_to_cv2() -> None:
    assert disk_half_widths(2.5) is None
    gt, pred = _square(10, 10, 12), _square(12, 11, 12)
    assert boundary_f(gt, pred, bound_th=2.5) == reference_boundary_f(gt, pred, bound_th=2.5)


def test_bound_th_uses_full_frame_diagonal() -> None:
    # a small object in a big frame: the crop is small, the tolerance must still be 18 px
    gt = np.zeros((1080, 1920), dtype=bool)
    gt[500:540, 900:960] = True
    pred = np.roll(gt, 15, axis=1)
    assert boundary_f(gt, pred) == reference_boundary_f(gt, pred)
    assert math.isclose(boundary_f(gt, pred), 1.0)  # a 15 px shift is inside 18 px


# ------------------------------------------------------------------ RLE entry points


def test_iou_matrix_matches_jaccard() -> None:
    rng = np.random.default_rng(7)
    preds = [_random_blobs(rng, 40, 50) for _ in range(5)] + [np.zeros((40, 50), bool)]
    gts = [_random_blobs(rng, 40, 50) for _ in range(3)] + [np.zeros((40, 50), bool)]
    ious = iou_matrix([rle.encode(p) for p in preds], [rle.encode(g) for g in gts], 40, 50)
    assert ious.shape == (6, 4)
    for p, pred in enumerate(preds):
        for g, gt in enumerate(gts):
            assert ious[p, g] == jaccard(gt, pred)
    assert ious[5, 3] == 1.0  # both empty: DAVIS rule
    assert iou_matrix([], [rle.encode(gts[0])], 40, 50).shape == (0, 1)


def test_rle_entry_points() -> None:
    gt, pred, void = _pair(41)
    h, w = gt.shape
    gt_c, pred_c, void_c = rle.encode(gt), rle.encode(pred), rle.encode(void)
    assert jaccard_rle(gt_c, pred_c, h, w) == jaccard(gt, pred)
    assert jaccard_rle(gt_c, pred_c, h, w, void_c) == pytest.approx(float(PAIRS["J"][41]))
    assert boundary_f_rle(gt_c.decode(), pred_c, h, w, void_c) == pytest.approx(
        float(PAIRS["F"][41])
    )
    assert boundary_f_rle(gt_c, pred_c, h, w) == boundary_f(gt, pred)
