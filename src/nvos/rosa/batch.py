"""One training/evaluation batch of ROSA: padded clips of cached region and phrase embeddings.

A :class:`ClipItem` is one clip as read from the feature cache (unpadded numpy arrays); a
:class:`ClipBatch` is a list of items padded to the largest clip in the batch, with boolean masks
that say which frames, proposals (regions) and phrases are real. Padded entries hold zeros and must
never be selected (regions) or counted (phrases) by the model and losses.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch
from torch import Tensor


@dataclass
class ClipItem:
    """One clip from the feature cache (unpadded).

    Shapes: T frames, K proposals per frame at most (``region_count[t]`` real ones on frame t),
    N phrases, D the embedding size.

    - ``regions``: (T, K, D) float16/float32, rows past ``region_count[t]`` are zeros.
    - ``region_count``: (T,) int64, the number of real proposals per frame.
    - ``boxes``: (T, K, 4) float32 (x, y, w, h) divided by the frame's width/height.
    - ``frame_time``: (T,) float32 clip-relative time in [0, 1].
    - ``frame_index``: (T,) int64; ``proposal_id``: (T, K) int64 (-1 where padded).
    - ``phrase_context`` / ``phrase_plain``: (N, D); ``phrase_id``: (N,) int64.
    """

    clip_id: str
    regions: np.ndarray
    region_count: np.ndarray
    boxes: np.ndarray
    frame_time: np.ndarray
    frame_index: np.ndarray
    proposal_id: np.ndarray
    phrase_context: np.ndarray
    phrase_plain: np.ndarray
    phrase_id: np.ndarray


@dataclass
class ClipBatch:
    """B padded clips (DESIGN §7). T, K, N are the batch maxima; D the embedding size.

    - ``regions``: (B, T, K, D) float32 frozen CLIP region embeddings (zeros where padded).
    - ``region_mask``: (B, T, K) bool, True = real proposal.
    - ``boxes``: (B, T, K, 4) float32 (x, y, w, h) / frame size, in [0, 1].
    - ``frame_time``: (B, T) float32 clip-relative time in [0, 1].
    - ``frame_mask``: (B, T) bool, True = real frame.
    - ``phrase_context``: (B, N, D) float32 phrase pooled from the whole narration.
    - ``phrase_plain``: (B, N, D) float32 phrase encoded alone.
    - ``phrase_mask``: (B, N) bool, True = real phrase.
    - ``clip_ids``: B clip ids; ``frame_index``: (B, T) int64 (-1 padded);
      ``proposal_id``: (B, T, K) int64 (-1 padded); ``phrase_id``: (B, N) int64 (-1 padded).
    """

    regions: Tensor
    region_mask: Tensor
    boxes: Tensor
    frame_time: Tensor
    frame_mask: Tensor
    phrase_context: Tensor
    phrase_plain: Tensor
    phrase_mask: Tensor
    clip_ids: list[str]
    frame_index: Tensor
    proposal_id: Tensor
    phrase_id: Tensor

    def _map(self, fn) -> ClipBatch:  # noqa: ANN001
        values = {}
        for f in fields(self):
            value = getattr(self, f.name)
            values[f.name] = fn(value) if isinstance(value, Tensor) else value
        return ClipBatch(**values)

    def to(self, device: torch.device | str, non_blocking: bool = False) -> ClipBatch:
        """A copy with every tensor on ``device``."""
        return self._map(lambda t: t.to(device, non_blocking=non_blocking))

    def pin_memory(self) -> ClipBatch:
        """A copy with every tensor in pinned host memory (used by the DataLoader on CUDA)."""
        return self._map(lambda t: t.pin_memory())

    def __len__(self) -> int:
        return len(self.clip_ids)


def collate(items: list[ClipItem]) -> ClipBatch:
    """Pad ``items`` to the batch maxima of T, K and N and stack them into a :class:`ClipBatch`."""
    if not items:
        raise ValueError("collate: empty list of clips")
    dim = items[0].regions.shape[-1]
    for item in items:
        if item.regions.shape[-1] != dim or item.phrase_context.shape[-1] != dim:
            raise ValueError(
                f"collate: clip {item.clip_id} has embedding size {item.regions.shape[-1]}"
                f"/{item.phrase_context.shape[-1]}, expected {dim}"
            )
    b = len(items)
    t_max = max(item.regions.shape[0] for item in items)
    k_max = max(item.regions.shape[1] for item in items)
    n_max = max(item.phrase_id.shape[0] for item in items)
    regions = np.zeros((b, t_max, k_max, dim), np.float32)
    region_mask = np.zeros((b, t_max, k_max), bool)
    boxes = np.zeros((b, t_max, k_max, 4), np.float32)
    frame_time = np.zeros((b, t_max), np.float32)
    frame_mask = np.zeros((b, t_max), bool)
    frame_index = np.full((b, t_max), -1, np.int64)
    proposal_id = np.full((b, t_max, k_max), -1, np.int64)
    phrase_context = np.zeros((b, n_max, dim), np.float32)
    phrase_plain = np.zeros((b, n_max, dim), np.float32)
    phrase_mask = np.zeros((b, n_max), bool)
    phrase_id = np.full((b, n_max), -1, np.int64)
    for i, item in enumerate(items):
        t, k = item.regions.shape[:2]
        n = item.phrase_id.shape[0]
        regions[i, :t, :k] = item.regions
        region_mask[i, :t, :k] = np.arange(k)[None, :] < item.region_count[:, None]
        boxes[i, :t, :k] = item.boxes
        frame_time[i, :t] = item.frame_time
        frame_mask[i, :t] = True
        frame_index[i, :t] = item.frame_index
        proposal_id[i, :t, :k] = item.proposal_id
        phrase_context[i, :n] = item.phrase_context
        phrase_plain[i, :n] = item.phrase_plain
        phrase_mask[i, :n] = True
        phrase_id[i, :n] = item.phrase_id
    return ClipBatch(
        regions=torch.from_numpy(regions),
        region_mask=torch.from_numpy(region_mask),
        boxes=torch.from_numpy(boxes),
        frame_time=torch.from_numpy(frame_time),
        frame_mask=torch.from_numpy(frame_mask),
        phrase_context=torch.from_numpy(phrase_context),
        phrase_plain=torch.from_numpy(phrase_plain),
        phrase_mask=torch.from_numpy(phrase_mask),
        clip_ids=[item.clip_id for item in items],
        frame_index=torch.from_numpy(frame_index),
        proposal_id=torch.from_numpy(proposal_id),
        phrase_id=torch.from_numpy(phrase_id),
    )
