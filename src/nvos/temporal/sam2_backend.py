"""Dense propagation backend ``sam2``: SAM 2's video predictor from the ``sam2`` package.

Keyframe masks are given as mask prompts (``add_new_mask``, one object per phrase; an empty mask
says "not here"), then ``propagate_in_video`` runs forward from the first keyframe and backward
from the last frame, under bfloat16 autocast as sam2 documents it (it stores its memory features
in bfloat16). The two passes are fused per pixel by temporal distance: on a frame between
keyframes k0 < t < k1 the forward mask has weight (k1 - t)/(k1 - k0), the backward one the rest,
and a pixel is in the mask when the weighted vote is at least 0.5 (so the pass from the nearer
keyframe wins where they disagree); before the first keyframe only the backward pass exists, after
the last only the forward one. A propagated score is the same blend of the keyframes' scores.

Frames are not loaded up front (the stock ``init_state`` loads a whole JPEG folder): the inference
state's ``images`` is a :class:`LazyFrames` that decodes blocks of frames from a
:data:`~nvos.temporal.propagate.FrameSource` and keeps at most two blocks. The per-frame
preprocessing is the stock one (PIL resize to the model's square size, /255, ImageNet mean and
std), so the masks are those of the stock API on the same frames. SAM 2 itself keeps a small
memory (64-channel features at 1/16 resolution) for every tracked frame; ``offload_state_to_cpu``
moves it to host memory. The fused masks of a pass are held as RLE until the clip is done.

The ``sam2`` package (PyPI ``sam2==1.1.0``) is optional: import errors name the pip line.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from nvos import rle, storage
from nvos.temporal.propagate import (
    SOURCE_KEYFRAME,
    SOURCE_PROPAGATED,
    DenseFrame,
    FrameSource,
    Keyframe,
    check_keyframes,
)

PIP_LINE = "SAM2_BUILD_CUDA=0 pip install --no-build-isolation sam2==1.1.0"
IMAGE_MEAN = (0.485, 0.456, 0.406)
IMAGE_STD = (0.229, 0.224, 0.225)


def require_sam2() -> Any:
    """The ``sam2`` package, or an ImportError that says how to install it."""
    try:
        import sam2
        from sam2.sam2_video_predictor import SAM2VideoPredictor  # noqa: F401
    except ImportError as error:
        raise ImportError(
            f"propagation backend 'sam2' needs the sam2 package: {PIP_LINE} ({error})"
        ) from error
    return sam2


def preprocess(image_rgb: np.ndarray, image_size: int) -> torch.Tensor:
    """A frame (H, W, 3) uint8 RGB as SAM 2's video loader makes it: (3, S, S) float32,
    PIL-resized to S = ``image_size``, scaled to [0, 1], normalised by ImageNet mean and std."""
    resized = np.array(Image.fromarray(image_rgb).convert("RGB").resize((image_size, image_size)))
    image = torch.from_numpy(resized / 255.0).permute(2, 0, 1).float()
    mean = torch.tensor(IMAGE_MEAN, dtype=torch.float32)[:, None, None]
    std = torch.tensor(IMAGE_STD, dtype=torch.float32)[:, None, None]
    return (image - mean) / std


class LazyFrames:
    """``inference_state["images"]``: frame i of ``indices`` decoded on access, in ascending
    blocks of ``block`` frames (one pass of the source per block, so a backward pass costs one
    seek per block); at most two blocks are held."""

    def __init__(
        self, source: FrameSource, indices: Sequence[int], image_size: int, block: int = 16
    ) -> None:
        self.source, self.indices = source, list(indices)
        self.image_size, self.block = image_size, max(1, block)
        self._blocks: OrderedDict[int, list[torch.Tensor]] = OrderedDict()

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, position: int) -> torch.Tensor:
        if not 0 <= position < len(self.indices):
            raise IndexError(position)
        start = (position // self.block) * self.block
        if start not in self._blocks:
            wanted = self.indices[start : start + self.block]
            decoded = list(self.source(wanted))
            if [i for i, _ in decoded] != wanted:
                raise ValueError(f"frame source gave {[i for i, _ in decoded]}, not {wanted}")
            self._blocks[start] = [preprocess(image, self.image_size) for _, image in decoded]
            while len(self._blocks) > 2:
                self._blocks.popitem(last=False)
        self._blocks.move_to_end(start)
        return self._blocks[start][position - start]


def init_state(
    predictor: Any,
    images: LazyFrames,
    height: int,
    width: int,
    offload_state_to_cpu: bool = False,
) -> dict[str, Any]:
    """The inference state of ``SAM2VideoPredictor.init_state`` (sam2 1.1.0), over lazy frames
    whose masks are (height, width)."""
    device = predictor.device
    state: dict[str, Any] = {
        "images": images,
        "num_frames": len(images),
        "offload_video_to_cpu": True,
        "offload_state_to_cpu": offload_state_to_cpu,
        "video_height": height,
        "video_width": width,
        "device": device,
        "storage_device": torch.device("cpu") if offload_state_to_cpu else device,
        "point_inputs_per_obj": {},
        "mask_inputs_per_obj": {},
        "cached_features": {},
        "constants": {},
        "obj_id_to_idx": OrderedDict(),
        "obj_idx_to_id": OrderedDict(),
        "obj_ids": [],
        "output_dict_per_obj": {},
        "temp_output_dict_per_obj": {},
        "frames_tracked_per_obj": {},
    }
    predictor._get_image_feature(state, frame_idx=0, batch_size=1)  # as init_state: warm-up
    return state


def fuse_weight(keys: Sequence[int], t: int) -> float:
    """Weight of the forward pass at position ``t`` given the keyframe positions ``keys``: 1 after
    the last keyframe, 0 before the first, (k1 - t)/(k1 - k0) between keyframes k0 < t < k1."""
    before = [k for k in keys if k <= t]
    after = [k for k in keys if k >= t]
    if not before:
        return 0.0
    if not after:
        return 1.0
    k0, k1 = before[-1], after[0]
    return 1.0 if k1 == k0 else (k1 - t) / (k1 - k0)


def fuse(forward: np.ndarray | None, backward: np.ndarray | None, weight: float) -> np.ndarray:
    """Fused masks (P, H, W) bool: weight · forward + (1 - weight) · backward >= 0.5 (a pass with
    weight 0 may be None)."""
    vote = np.zeros_like(forward if forward is not None else backward, dtype=np.float32)
    if weight > 0:
        vote += weight * forward
    if weight < 1:
        vote += (1 - weight) * backward
    return vote >= 0.5


class Sam2Propagator:
    """Backend ``sam2`` around a built ``SAM2VideoPredictor`` (see the module docstring)."""

    name = "sam2"

    def __init__(
        self,
        predictor: Any,
        offload_state_to_cpu: bool = False,
        block: int = 16,
        config: str | None = None,
        checkpoint: str | None = None,
    ) -> None:
        self.predictor = predictor
        self.offload_state_to_cpu = offload_state_to_cpu
        self.block = block
        self.config = config
        self.checkpoint = checkpoint
        self.checkpoint_sha256 = None if checkpoint is None else storage.file_sha256(checkpoint)

    def propagate(
        self, keyframes: Sequence[Keyframe], targets: Sequence[int], frames: FrameSource
    ) -> Iterator[DenseFrame]:
        ordered = check_keyframes(keyframes)
        order = sorted(set(int(t) for t in targets) | {k.frame_index for k in ordered})
        position = {index: p for p, index in enumerate(order)}
        height, width, n_phrases = ordered[0].height, ordered[0].width, len(ordered[0].counts)
        if n_phrases == 0:  # nothing to track (SAM 2 refuses to propagate without a prompt)
            key_indices = {k.frame_index for k in ordered}
            for index in order:
                source = SOURCE_KEYFRAME if index in key_indices else SOURCE_PROPAGATED
                empty = np.zeros((0, height, width), bool)
                yield DenseFrame(index, source, empty, np.zeros(0, np.float32))
            return
        images = LazyFrames(frames, order, self.predictor.image_size, self.block)
        device_type = torch.device(self.predictor.device).type
        # sam2 keeps its memory features in bfloat16 and runs under autocast (its documented use)
        with torch.inference_mode(), torch.autocast(device_type, dtype=torch.bfloat16):
            state = init_state(self.predictor, images, height, width, self.offload_state_to_cpu)
            for key in ordered:
                masks = key.masks()
                for phrase in range(n_phrases):
                    self.predictor.add_new_mask(
                        state,
                        frame_idx=position[key.frame_index],
                        obj_id=phrase,
                        mask=masks[phrase],
                    )
            forward = _collect(self.predictor.propagate_in_video(state))
            backward = _collect(
                self.predictor.propagate_in_video(
                    state, start_frame_idx=len(order) - 1, reverse=True
                )
            )
        keys = [position[k.frame_index] for k in ordered]
        by_position = {position[k.frame_index]: k for k in ordered}
        for t, index in enumerate(order):
            if t in by_position:
                key = by_position[t]
                yield DenseFrame(index, SOURCE_KEYFRAME, key.masks(), key.scores.astype(np.float32))
                continue
            weight = fuse_weight(keys, t)
            masks = fuse(
                _masks(forward.get(t), height, width),
                _masks(backward.get(t), height, width),
                weight,
            )
            before = [by_position[k] for k in keys if k < t]
            after = [by_position[k] for k in keys if k > t]
            scores = np.zeros(n_phrases, np.float64)
            if before and weight > 0:
                scores += weight * before[-1].scores
            if after and weight < 1:
                scores += (1 - weight) * after[0].scores
            yield DenseFrame(index, SOURCE_PROPAGATED, masks, scores.astype(np.float32))

    def provenance(self) -> dict[str, Any]:
        """What to record with the dense masks: the model config and checkpoint with its hash."""
        return {
            "backend": self.name,
            "config": self.config,
            "checkpoint": self.checkpoint,
            "checkpoint_sha256": self.checkpoint_sha256,
            "offload_state_to_cpu": self.offload_state_to_cpu,
        }


def _collect(passes: Iterator[tuple[int, list[int], torch.Tensor]]) -> dict[int, list[bytes]]:
    """Masks (logits > 0) of one propagation pass, per position, as RLE per object (objects in
    ascending id = phrase order)."""
    out: dict[int, list[bytes]] = {}
    for position, obj_ids, logits in passes:
        masks = (logits[:, 0] > 0).cpu().numpy()  # (objects, H, W) in obj_ids order
        out[position] = rle.encode_many(masks[np.argsort(np.asarray(obj_ids))])
    return out


def _masks(counts: list[bytes] | None, height: int, width: int) -> np.ndarray | None:
    if counts is None:
        return None
    return np.stack([rle.decode(c, height, width) for c in counts])


def make_sam2_propagator(
    config: str,
    checkpoint: str | None = None,
    device: str = "cpu",
    offload_state_to_cpu: bool = False,
) -> Sam2Propagator:
    """A :class:`Sam2Propagator` from a sam2 model config name (e.g.
    ``configs/sam2.1/sam2.1_hiera_t.yaml``) and a local checkpoint file (never downloaded)."""
    require_sam2()
    from sam2.build_sam import build_sam2_video_predictor

    if checkpoint is not None and not Path(checkpoint).is_file():
        raise FileNotFoundError(f"sam2 checkpoint {checkpoint}: file not found")
    predictor = build_sam2_video_predictor(config, checkpoint, device=device)
    return Sam2Propagator(predictor, offload_state_to_cpu, config=config, checkpoint=checkpoint)
