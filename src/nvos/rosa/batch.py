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
    # the largest tensor: allocated empty, zero-filled only for clips that do not fill it
    regions = torch.empty((b, t_max, k_max, dim), dtype=torch.float32)
    region_mask = torch.zeros((b, t_max, k_max), dtype=torch.bool)
    boxes = torch.zeros((b, t_max, k_max, 4), dtype=torch.float32)
    frame_time = torch.zeros((b, t_max), dtype=torch.float32)
    frame_mask = torch.zeros((b, t_max), dtype=torch.bool)
    frame_index = torch.full((b, t_max), -1, dtype=torch.int64)
    proposal_id = torch.full((b, t_max, k_max), -1, dtype=torch.int64)
    phrase_context = torch.zeros((b, n_max, dim), dtype=torch.float32)
    phrase_plain = torch.zeros((b, n_max, dim), dtype=torch.float32)
    phrase_mask = torch.zeros((b, n_max), dtype=torch.bool)
    phrase_id = torch.full((b, n_max), -1, dtype=torch.int64)
    for i, item in enumerate(items):
        t, k = item.regions.shape[:2]
        n = item.phrase_id.shape[0]
        if (t, k) != (t_max, k_max):
            regions[i].zero_()
        # .float() converts float16 -> float32 ~10x faster than numpy's astype or a converting
        # copy_ into the strided slice (measured: 0.06 vs 0.5 vs 3.8 ms for 8 x 64 x 512)
        regions[i, :t, :k] = torch.from_numpy(item.regions).float()
        counts = torch.from_numpy(np.asarray(item.region_count, np.int64))
        region_mask[i, :t, :k] = torch.arange(k)[None, :] < counts[:, None]
        boxes[i, :t, :k] = torch.from_numpy(item.boxes)
        frame_time[i, :t] = torch.from_numpy(item.frame_time)
        frame_mask[i, :t] = True
        frame_index[i, :t] = torch.from_numpy(item.frame_index)
        proposal_id[i, :t, :k] = torch.from_numpy(item.proposal_id)
        phrase_context[i, :n] = torch.from_numpy(item.phrase_context)
        phrase_plain[i, :n] = torch.from_numpy(item.phrase_plain)
        phrase_mask[i, :n] = True
        phrase_id[i, :n] = torch.from_numpy(item.phrase_id)
    return ClipBatch(
        regions=regions,
        region_mask=region_mask,
        boxes=boxes,
        frame_time=frame_time,
        frame_mask=frame_mask,
        phrase_context=phrase_context,
        phrase_plain=phrase_plain,
        phrase_mask=phrase_mask,
        clip_ids=[item.clip_id for item in items],
        frame_index=frame_index,
        proposal_id=proposal_id,
        phrase_id=phrase_id,
    )
