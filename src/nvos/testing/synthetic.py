"""Synthetic ROSA clips with known latent alignments, for tests and benchmarks (no files).

A vocabulary of V objects has an image-side prototype and a text-side prototype (the image
prototype through a random orthogonal map, so raw cosine between the two is near 0 and the dual
encoder has to *learn* the alignment). Each clip mentions N distinct objects; on each of its T
frames, one region per mentioned object is its image prototype plus noise (at a random position
among the frame's K regions), the other regions are unmentioned objects or pure noise. A phrase's
plain embedding is its text prototype plus noise; its context embedding mixes in the mean of the
narration's phrases (``context_mix``), like a text tower that floods phrase tokens with context.

``truth`` of a clip, (T, N) int64, is the position k of each phrase's true region on each frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from nvos.rosa.batch import ClipBatch, ClipItem, collate

__all__ = [
    "SyntheticClips",
    "SyntheticSpec",
    "alignment_accuracy",
    "make_synthetic_clips",
    "truth_tensor",
]


@dataclass(frozen=True)
class SyntheticSpec:
    """Sizes and noise of synthetic clips.

    ``frames``/``regions``/``phrases`` are (min, max) ranges drawn per clip (per frame for
    regions), so batches need padding; ``regions[0]`` must be at least ``phrases[1]``.
    ``vocabulary_seed`` draws the objects' prototypes (share it between splits), ``seed`` the
    clips.
    """

    n_clips: int = 64
    frames: tuple[int, int] = (4, 4)
    regions: tuple[int, int] = (8, 8)
    phrases: tuple[int, int] = (1, 3)
    dim: int = 32
    vocabulary: int = 40
    visual_noise: float = 0.5
    text_noise: float = 0.2
    context_mix: float = 0.3
    seed: int = 0
    vocabulary_seed: int = 0

    def __post_init__(self) -> None:
        if self.regions[0] < self.phrases[1]:
            raise ValueError("synthetic clips need at least as many regions per frame as phrases")
        if self.vocabulary < self.phrases[1] + 1:
            raise ValueError("synthetic vocabulary must exceed the phrases per clip")


@dataclass
class SyntheticClips:
    """Synthetic clips (unpadded) and, per clip, the (T, N) position of each phrase's region."""

    items: list[ClipItem]
    truth: list[np.ndarray]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> ClipItem:
        return self.items[index]

    def set_epoch(self, epoch: int) -> None:
        """Items do not change between epochs (the dataset interface of the loaders)."""

    @property
    def dim(self) -> int:
        """Embedding size D."""
        return int(self.items[0].regions.shape[-1])

    def batch(self, indices: Sequence[int]) -> tuple[ClipBatch, Tensor]:
        """The padded batch of clips ``indices`` and its (B, T, N) truth (-1 where padded)."""
        batch = collate([self.items[i] for i in indices])
        return batch, truth_tensor([self.truth[i] for i in indices], batch)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def make_synthetic_clips(spec: SyntheticSpec) -> SyntheticClips:
    """Draw ``spec.n_clips`` clips (deterministic for ``spec.seed``)."""
    d = spec.dim
    world = np.random.default_rng(spec.vocabulary_seed)
    image_protos = _unit(world.standard_normal((spec.vocabulary, d)))
    rotation, _ = np.linalg.qr(world.standard_normal((d, d)))
    rng = np.random.default_rng((spec.vocabulary_seed, spec.seed))
    text_protos = _unit(image_protos @ rotation)
    items, truth = [], []
    for c in range(spec.n_clips):
        t_count = int(rng.integers(spec.frames[0], spec.frames[1] + 1))
        n_count = int(rng.integers(spec.phrases[0], spec.phrases[1] + 1))
        k_counts = rng.integers(spec.regions[0], spec.regions[1] + 1, size=t_count)
        k_max = int(k_counts.max())
        objects = rng.choice(spec.vocabulary, size=n_count, replace=False)
        others = np.setdiff1d(np.arange(spec.vocabulary), objects)
        regions = np.zeros((t_count, k_max, d), np.float32)
        boxes = np.zeros((t_count, k_max, 4), np.float32)
        where = np.zeros((t_count, n_count), np.int64)
        for t in range(t_count):
            k = int(k_counts[t])
            slots = rng.permutation(k)
            where[t] = slots[:n_count]
            content = np.empty((k, d))
            content[slots[:n_count]] = image_protos[objects]
            n_other = k - n_count
            n_distractor = n_other // 2
            content[slots[n_count : n_count + n_distractor]] = image_protos[
                rng.choice(others, size=n_distractor)
            ]
            content[slots[n_count + n_distractor :]] = _unit(
                rng.standard_normal((n_other - n_distractor, d))
            )
            noise = rng.standard_normal((k, d)) * spec.visual_noise / np.sqrt(d)
            regions[t, :k] = _unit(content + noise)
            xy = rng.uniform(0.0, 0.7, size=(k, 2))
            wh = rng.uniform(0.05, 0.3, size=(k, 2))
            boxes[t, :k] = np.concatenate([xy, wh], axis=1)
        plain = _unit(
            text_protos[objects] + rng.standard_normal((n_count, d)) * spec.text_noise / np.sqrt(d)
        )
        narration = plain.mean(axis=0, keepdims=True)
        context = _unit((1 - spec.context_mix) * plain + spec.context_mix * narration)
        items.append(
            ClipItem(
                clip_id=f"syn{c:05d}",
                regions=regions,
                region_count=k_counts.astype(np.int64),
                boxes=boxes,
                frame_time=np.linspace(0.0, 1.0, t_count, dtype=np.float32),
                frame_index=np.arange(t_count, dtype=np.int64) * 10,
                proposal_id=np.where(
                    np.arange(k_max)[None, :] < k_counts[:, None], np.arange(k_max)[None, :], -1
                ).astype(np.int64),
                phrase_context=context.astype(np.float32),
                phrase_plain=plain.astype(np.float32),
                phrase_id=np.arange(n_count, dtype=np.int64),
            )
        )
        truth.append(where)
    return SyntheticClips(items, truth)


def truth_tensor(truth: Sequence[np.ndarray], batch: ClipBatch) -> Tensor:
    """Stack per-clip (T_i, N_i) truths into the batch's (B, T, N) shape, -1 where padded."""
    b, t, n = len(truth), batch.frame_mask.shape[1], batch.phrase_mask.shape[1]
    out = np.full((b, t, n), -1, np.int64)
    for i, where in enumerate(truth):
        out[i, : where.shape[0], : where.shape[1]] = where
    return torch.from_numpy(out)


def alignment_accuracy(predicted: Tensor, truth: Tensor) -> float:
    """Fraction of real (frame, phrase) pairs (truth ≥ 0) whose predicted region is the true one.

    Args:
        predicted: (B, T, N) chosen region positions (e.g. :meth:`RosaModel.align`'s ``index``).
        truth: (B, T, N) true positions, -1 where padded.
    """
    real = truth >= 0
    if not bool(real.any()):
        raise ValueError("alignment_accuracy: no real (frame, phrase) pair")
    return float((predicted[real] == truth[real]).float().mean())
