"""SamBackend against the stock SamAutomaticMaskGenerator, on a tiny randomly initialised SAM.

The comparisons run in float64. The tiny model's weights are scaled up so that its masks depend on
the prompt (see :func:`_tiny_model`); that also makes it ill-conditioned: in float32 a relative
change of 1e-6 in its weights (the size of the rounding differences between two CPUs' kernels, or
between batched and unbatched matrix products) flips masks across thresholds and NMS, and the
float32 comparison passed on one CPU and failed on another. In float64 the same outputs are stable
under relative weight changes of 1e-8 (checked while writing these tests), ten million times the
float64 rounding, so the comparisons are exact decisions, not luck of the CPU.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import segment_anything.automatic_mask_generator as stock_amg
import torch
from segment_anything import SamAutomaticMaskGenerator, sam_model_registry
from segment_anything.modeling import Sam
from segment_anything.modeling.prompt_encoder import PositionEmbeddingRandom
from torchvision.ops.boxes import batched_nms

from nvos.config import ConfigError
from nvos.oom import AdaptiveBatch
from nvos.proposals.base import FrameProposals, proposal_scores, top_k
from nvos.proposals.sam import SamBackend, SamSettings, build_sam

CPU = torch.device("cpu")


def _tiny_model(seed: int = 0, dtype: torch.dtype = torch.float64) -> Sam:
    """The tiny SAM, with weights scaled so that its masks depend on the prompt point.

    Plain random init makes every point give the same blob (one mask per image after NMS), which
    would leave thresholds, NMS and ordering untested; larger weights give varied masks and scores.
    float64 by default (see the module docstring).
    """
    torch.manual_seed(seed)
    model = build_sam("tiny")
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.Linear | torch.nn.Conv2d | torch.nn.ConvTranspose2d):
                module.weight.mul_(6.0)
        for mlp in model.mask_decoder.output_hypernetworks_mlps:
            mlp.layers[-1].weight.mul_(10.0)
    return model.to(dtype)


@pytest.fixture(autouse=True)
def _stock_sam_in_float64(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let the stock generator run a float64 model; a float32 model computes exactly as before.

    Two places in segment_anything hard-code float32: the prompt encoder casts point coordinates
    to float32 before multiplying them with its (here float64) Gaussian matrix, and the generator
    casts boxes to float32 for NMS, which torchvision requires to match the scores' dtype. Boxes
    are integer pixel coordinates, exact in either dtype.
    """
    pe_encoding = PositionEmbeddingRandom._pe_encoding

    def pe_in_matrix_dtype(self: PositionEmbeddingRandom, coords: torch.Tensor) -> torch.Tensor:
        return pe_encoding(self, coords.to(self.positional_encoding_gaussian_matrix.dtype))

    def nms_in_score_dtype(
        boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor, iou_threshold: float
    ) -> torch.Tensor:
        return batched_nms(boxes.to(scores.dtype), scores, idxs, iou_threshold)

    monkeypatch.setattr(PositionEmbeddingRandom, "_pe_encoding", pe_in_matrix_dtype)
    monkeypatch.setattr(stock_amg, "batched_nms", nms_in_score_dtype)


@pytest.fixture(scope="module")
def model() -> Sam:
    return _tiny_model()


def _frame(height: int, width: int, seed: int) -> np.ndarray:
    """(H, W, 3) uint8 synthetic frame: textured background, a rectangle and a disc."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width]
    image = np.empty((height, width, 3), np.uint8)
    image[...] = (40 + 30 * np.sin(xx / rng.uniform(5, 12)))[..., None].astype(np.uint8)
    y0, x0 = rng.integers(0, height // 2), rng.integers(0, width // 2)
    image[y0 : y0 + height // 3, x0 : x0 + width // 3] = rng.integers(100, 255, 3)
    cy, cx, r = rng.integers(height // 3, height), rng.integers(width // 3, width), height // 6
    image[(yy - cy) ** 2 + (xx - cx) ** 2 < r**2] = rng.integers(0, 255, 3)
    return image


FRAMES = [_frame(96, 128, 0), _frame(120, 80, 1), _frame(64, 64, 2)]


def _stock(model: Sam, settings: SamSettings, image: np.ndarray) -> FrameProposals:
    records = SamAutomaticMaskGenerator(model, **settings.generator_kwargs()).generate(image)
    if not records:
        return FrameProposals.empty(*image.shape[:2])
    return FrameProposals(
        masks=np.stack([r["segmentation"] for r in records]),
        predicted_iou=np.array([r["predicted_iou"] for r in records]),
        stability_score=np.array([r["stability_score"] for r in records]),
    )


def _assert_same_proposals(ours: FrameProposals, ref: FrameProposals) -> None:
    """Same set of masks (each matched one-to-one with IoU >= 0.99) and the same scores (1e-6:
    the float64 comparisons agree to ~1e-12; 0.99 allows for a pixel whose logit is 0 to ~1e-12)."""
    assert ours.masks.shape == ref.masks.shape
    flat_o = ours.masks.reshape(len(ours), -1).astype(np.float64)
    flat_r = ref.masks.reshape(len(ref), -1).astype(np.float64)
    inter = flat_o @ flat_r.T
    union = flat_o.sum(1)[:, None] + flat_r.sum(1)[None, :] - inter
    iou = np.where(union > 0, inter / np.maximum(union, 1), 1.0)
    unmatched = set(range(len(ref)))
    for i in range(len(ours)):
        j = max(unmatched, key=lambda k: iou[i, k])
        assert iou[i, j] >= 0.99, f"our mask {i} has no match (best IoU {iou[i, j]:.3f})"
        unmatched.remove(j)
        np.testing.assert_allclose(ours.predicted_iou[i], ref.predicted_iou[j], rtol=1e-6)
        np.testing.assert_allclose(ours.stability_score[i], ref.stability_score[j], rtol=1e-6)


SETTINGS = {
    "grid": dict(pred_iou_thresh=0.0, stability_score_thresh=0.0, box_nms_thresh=0.9),
    "thresholds": dict(pred_iou_thresh=1.0, stability_score_thresh=0.9, box_nms_thresh=0.8),
    "crops": dict(
        pred_iou_thresh=0.0, stability_score_thresh=0.5, box_nms_thresh=0.9, crop_n_layers=1
    ),
    "small_regions": dict(pred_iou_thresh=0.0, stability_score_thresh=0.3, min_mask_region_area=20),
}


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_same_masks_as_stock_generator(model: Sam, name: str) -> None:
    settings = SamSettings(
        points_per_side=6, points_per_batch=16, frames_per_batch=2, **SETTINGS[name]
    )
    ours = SamBackend(model, settings, CPU, "tiny").generate(FRAMES)
    assert len(ours) == len(FRAMES)
    total = 0
    for image, props in zip(FRAMES, ours, strict=True):
        assert props.masks.shape[1:] == image.shape[:2]
        assert props.masks.dtype == bool
        _assert_same_proposals(props, _stock(model, settings, image))
        total += len(props)
    assert total >= 2 * len(FRAMES)  # the comparison is not vacuous


def test_batch_composition_does_not_change_results(model: Sam) -> None:
    base = dict(points_per_side=5, pred_iou_thresh=0.0, stability_score_thresh=0.0)
    one = SamBackend(model, SamSettings(frames_per_batch=1, points_per_batch=7, **base), CPU, "t")
    many = SamBackend(model, SamSettings(frames_per_batch=3, points_per_batch=64, **base), CPU, "t")
    for a, b in zip(one.generate(FRAMES), many.generate(FRAMES), strict=True):
        _assert_same_proposals(a, b)
    # A frame's proposals do not depend on which other frames share its batch.
    alone = one.generate(FRAMES[1:2])[0]
    _assert_same_proposals(alone, many.generate(FRAMES)[1])


@pytest.mark.parametrize("crop_n_layers", [0, 1])
def test_frame_without_proposals_is_empty_not_lost(model: Sam, crop_n_layers: int) -> None:
    settings = SamSettings(points_per_side=4, pred_iou_thresh=1e9, crop_n_layers=crop_n_layers)
    result = SamBackend(model, settings, CPU, "tiny").generate(FRAMES[:2])
    assert [p.masks.shape for p in result] == [(0, 96, 128), (0, 120, 80)]
    assert [p.predicted_iou.shape for p in result] == [(0,), (0,)]


def test_top_k_orders_by_iou_times_stability(model: Sam) -> None:
    settings = SamSettings(points_per_side=6, pred_iou_thresh=0.0, stability_score_thresh=0.0)
    props = SamBackend(model, settings, CPU, "tiny").generate(FRAMES[:1])[0]
    assert len(props) >= 5
    best = top_k(props, 4)
    scores = proposal_scores(props)
    assert np.all(np.diff(proposal_scores(best)) <= 0)
    np.testing.assert_array_equal(np.sort(scores)[::-1][:4], proposal_scores(best))
    for i in range(4):
        j = int(np.flatnonzero(scores == proposal_scores(best)[i])[0])
        np.testing.assert_array_equal(best.masks[i], props.masks[j])
    assert len(top_k(props, 10_000)) == len(props)


def test_top_k_ties_keep_original_order() -> None:
    masks = np.zeros((4, 2, 2), bool)
    for i in range(4):
        masks[i].flat[i] = True
    props = FrameProposals(
        masks=masks,
        predicted_iou=np.array([0.5, 1.0, 0.25, 0.5]),
        stability_score=np.array([1.0, 0.25, 1.0, 0.5]),
    )  # scores 0.5, 0.25, 0.25, 0.25
    best = top_k(props, 3)
    assert [int(np.flatnonzero(m.ravel())[0]) for m in best.masks] == [0, 1, 2]
    assert top_k(props, 0).masks.shape == (0, 2, 2)


def _raise_oom_once(target: Any, attribute: str, when: Any) -> list[int]:
    """Patch target.attribute to raise CUDA OOM on its first call satisfying ``when``."""
    original = getattr(target, attribute)
    calls: list[int] = []

    def patched(*args: Any, **kwargs: Any) -> Any:
        if not calls and when(*args, **kwargs):
            calls.append(1)
            raise torch.cuda.OutOfMemoryError("simulated")
        return original(*args, **kwargs)

    setattr(target, attribute, patched)
    return calls


def test_oom_retries_batch_at_half_size(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    model = _tiny_model()
    settings = SamSettings(
        points_per_side=4,
        points_per_batch=16,
        frames_per_batch=3,
        pred_iou_thresh=0.0,
        stability_score_thresh=0.0,
    )
    expected = SamBackend(model, settings, CPU, "tiny").generate(FRAMES)
    encoder_sizes: list[int] = []
    original_encoder = model.image_encoder.forward

    def recording_encoder(x: torch.Tensor) -> torch.Tensor:
        encoder_sizes.append(x.shape[0])
        return original_encoder(x)

    monkeypatch.setattr(model.image_encoder, "forward", recording_encoder)
    enc_calls = _raise_oom_once(model.image_encoder, "forward", lambda x: x.shape[0] == 3)
    dec_calls = _raise_oom_once(model.mask_decoder, "forward", lambda **kw: True)
    with caplog.at_level(logging.WARNING, logger="nvos.proposals.sam"):
        got = SamBackend(model, settings, CPU, "tiny").generate(FRAMES)
    assert enc_calls == [1] and dec_calls == [1]
    assert encoder_sizes == [1, 1, 1]  # the batch of 3 failed; retried at 3 // 2 = 1, then kept
    messages = [r.getMessage() for r in caplog.records]
    assert any("image-encoder batch of 3: retrying at 1" in m for m in messages)
    assert any("mask-decoder batch of 16: retrying at 8" in m for m in messages)
    for a, b in zip(got, expected, strict=True):
        _assert_same_proposals(a, b)


def test_oom_at_batch_of_one_fails() -> None:
    def always_oom(start: int, stop: int) -> None:
        raise torch.cuda.OutOfMemoryError("simulated")

    with pytest.raises(torch.cuda.OutOfMemoryError):
        list(AdaptiveBatch(4, "test").run(always_oom, 5))
    done = list(AdaptiveBatch(2, "test").run(lambda a, b: (a, b), 5))
    assert [(s, e) for s, e, _ in done] == [(0, 2), (2, 4), (4, 5)]


def test_checkpoint_loading_and_describe(tmp_path: Path) -> None:
    model = _tiny_model(seed=3, dtype=torch.float32)  # as a checkpoint loads
    path = tmp_path / "tiny.pth"
    torch.save(model.state_dict(), path)
    config = {
        "model_type": "tiny",
        "checkpoint": str(path),
        "points_per_side": 4,
        "pred_iou_thresh": 0.0,
        "stability_score_thresh": 0.0,
    }
    backend = SamBackend.from_config(config, CPU)
    info = backend.describe()
    assert info["checkpoint_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert info["model_type"] == "tiny" and info["random_weights"] is False
    assert info["settings"]["points_per_side"] == 4 and info["image_size"] == 128
    direct = SamBackend(model, backend.settings, CPU, "tiny").generate(FRAMES[:1])[0]
    _assert_same_proposals(backend.generate(FRAMES[:1])[0], direct)
    with pytest.raises(ValueError, match="cannot load SAM checkpoint .*tiny.pth as model type"):
        build_sam("vit_b", path)
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        build_sam("tiny", tmp_path / "missing.pth")


def test_bad_config_and_inputs_are_named(model: Sam) -> None:
    with pytest.raises(ConfigError, match=r"proposals\.sam\.points_per_sid: unknown key"):
        SamBackend.from_config({"model_type": "tiny", "points_per_sid": 4}, CPU)
    with pytest.raises(ConfigError, match=r"proposals\.sam\.points_per_side: 0 is less than"):
        SamSettings(points_per_side=0)
    with pytest.raises(ValueError, match="unknown SAM model type 'vit_x'"):
        build_sam("vit_x")
    backend = SamBackend(model, SamSettings(points_per_side=2), CPU, "tiny")
    with pytest.raises(ValueError, match=r"image 1: expected RGB uint8"):
        backend.generate([FRAMES[0], FRAMES[0][..., 0]])


def test_architecture_matches_segment_anything_registry() -> None:
    ours = build_sam("vit_b").state_dict()
    stock = sam_model_registry["vit_b"]().state_dict()
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in stock.items()}
