"""The weight-free classical proposal backend: validity, determinism, and quality on the demo."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from nvos import rle, video
from nvos.config import ConfigError, typed
from nvos.demo import generate_demo
from nvos.proposals.base import top_k
from nvos.proposals.classical import ClassicalBackend, ClassicalConfig

K = 20  # proposals kept per frame when measuring quality (the stage's max_per_frame)


def _scene(seed: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """RGB uint8 (120, 160, 3): textured counter + 3 flat coloured shapes; their masks."""
    rng = np.random.default_rng(seed)
    texture = cv2.GaussianBlur(rng.normal(0, 20, (120, 160, 3)), (0, 0), 2)
    image = np.full((120, 160, 3), 150.0) + texture
    masks = []
    for k, colour in enumerate([(200, 30, 30), (30, 160, 40), (40, 60, 210)]):
        mask = np.zeros((120, 160), np.uint8)
        cv2.circle(mask, (30 + 50 * k, 40 + 20 * k), 16 + 2 * k, 1, -1)
        image[mask.astype(bool)] = colour
        masks.append(mask.astype(bool))
    return np.clip(image + rng.normal(0, 3, image.shape), 0, 255).astype(np.uint8), masks


def _best_iou(masks: np.ndarray, target: np.ndarray) -> float:
    """Best IoU of (N, H, W) masks with target (H, W) (0 for no mask)."""
    if len(masks) == 0:
        return 0.0
    inter = (masks & target).sum(axis=(1, 2))
    union = (masks | target).sum(axis=(1, 2))
    return float((inter / union).max())


def test_proposals_are_valid_and_deterministic() -> None:
    image, objects = _scene(0)
    backend = ClassicalBackend()
    first, second = backend.generate([image, image])
    assert first.masks.shape[1:] == image.shape[:2] and len(first) > 0
    np.testing.assert_array_equal(first.masks, second.masks)
    np.testing.assert_array_equal(first.predicted_iou, second.predicted_iou)
    again = ClassicalBackend().generate([image])[0]
    np.testing.assert_array_equal(again.masks, first.masks)
    for scores in (first.predicted_iou, first.stability_score):
        assert np.all((scores >= 0) & (scores <= 1))
    config = backend.config
    areas = first.masks.sum(axis=(1, 2)) / image[..., 0].size
    assert np.all(areas >= config.min_area_frac) and np.all(areas <= config.max_area_frac)
    # near-duplicates are removed
    flat = first.masks.reshape(len(first), -1).astype(np.float64)
    inter = flat @ flat.T
    union = flat.sum(1)[:, None] + flat.sum(1)[None, :] - inter
    iou = inter / union
    np.fill_diagonal(iou, 0)
    assert iou.max() <= config.dedup_iou + 1e-9
    for mask in objects:
        assert _best_iou(first.masks, mask) > 0.9


def test_full_resolution_masks_from_a_smaller_working_size() -> None:
    image, objects = _scene(1)
    big = cv2.resize(image, (320, 240), interpolation=cv2.INTER_NEAREST)
    props = ClassicalBackend(ClassicalConfig(work_side=160)).generate([big])[0]
    assert props.masks.shape[1:] == (240, 320)
    for mask in objects:
        big_mask = cv2.resize(mask.astype(np.uint8), (320, 240), interpolation=cv2.INTER_NEAREST)
        assert _best_iou(props.masks, big_mask.astype(bool)) > 0.85


def test_uniform_image_has_no_proposal() -> None:
    props = ClassicalBackend().generate([np.zeros((60, 80, 3), np.uint8)])[0]
    assert len(props) == 0 and props.masks.shape == (0, 60, 80)


def test_config_errors_are_clear() -> None:
    with pytest.raises(ValueError, match="min_area_frac"):
        ClassicalConfig(min_area_frac=0.6, max_area_frac=0.5)
    with pytest.raises(ConfigError, match=r"proposals\.classical\.scale: unknown key"):
        typed({"scale": 3}, ClassicalConfig)
    with pytest.raises(ConfigError, match=r"proposals\.classical\.dedup_iou: 1\.5 is greater"):
        ClassicalConfig(dedup_iou=1.5)
    with pytest.raises(ValueError, match="RGB uint8"):
        ClassicalBackend().generate([np.zeros((10, 10), np.uint8)])


def demo_best_ious(out: Path, style: str) -> tuple[np.ndarray, np.ndarray]:
    """Best-proposal IoU of every visible ground-truth object of an 8-clip demo (seed 0) of
    ``style``, for the classical backend (top K) and for a same-size grid of blocks (a proposal set
    that knows no image)."""
    manifest = generate_demo(out, 8, 0, style=style)
    backend = ClassicalBackend()
    ours, grid = [], []
    for line in manifest.read_text().splitlines():
        record = json.loads(line)
        if not record["annotations"]:
            continue
        info = video.probe(str(out / record["video"]))
        objects = {a["frame_index"]: a["objects"] for a in record["annotations"]}
        for frame_index, bgr in video.read_frames(info, sorted(objects)):
            props = top_k(backend.generate([cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)])[0], K)
            blocks = _grid_blocks(*bgr.shape[:2])
            for obj in objects[frame_index].values():
                target = rle.decode(obj["counts"], *obj["size"])
                if target.any():
                    ours.append(_best_iou(props.masks, target))
                    grid.append(_best_iou(blocks, target))
    return np.array(ours), np.array(grid)


def _grid_blocks(height: int, width: int) -> np.ndarray:
    """K masks (K, H, W): a 4 x 5 grid of blocks covering the frame."""
    rows, cols = np.array_split(np.arange(height), 4), np.array_split(np.arange(width), 5)
    blocks = np.zeros((len(rows) * len(cols), height, width), bool)
    for i, (r, c) in enumerate((r, c) for r in rows for c in cols):
        blocks[i, r[0] : r[-1] + 1, c[0] : c[-1] + 1] = True
    return blocks


def test_classical_backend_finds_the_demo_objects(tmp_path: Path) -> None:
    """Measured on this demo (seed 0, 8 clips, 16 visible objects) with the default settings:
    mean best IoU 0.92, every object above IoU 0.5 (the usual "object found" criterion); the
    demo's val frames give 0.78 (docs/pipeline.md). The thresholds leave a margin for codec
    differences and sit far above an image-blind proposal set of the same size (a grid of
    blocks, mean ~0.2)."""
    ours, grid = demo_best_ious(tmp_path, "kitchen")
    assert len(ours) >= 15
    assert ours.mean() >= 0.8
    assert np.mean(ours > 0.5) >= 0.85
    assert ours.mean() >= grid.mean() + 0.3


def test_classical_backend_finds_the_workshop_objects(tmp_path: Path) -> None:
    """The demo's second style (tools of several parts, containers with bails and handles) is
    harder. Measured (seed 0, 8 clips, 19 visible objects on 8 frames): mean best IoU 0.69, 79 %
    above 0.5, grid of blocks 0.21; on 40 clips (seed 1, 84 objects): 0.65, 71 %, grid 0.20."""
    ours, grid = demo_best_ious(tmp_path, "workshop")
    assert len(ours) >= 15
    assert ours.mean() >= 0.55
    assert np.mean(ours > 0.5) >= 0.6
    assert ours.mean() >= grid.mean() + 0.3
