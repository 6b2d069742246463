"""The zero-shot keyframe scorer: mask proposals + frozen CLIP, scored by prompt cosine.

The same choice as the ``sam_clip`` method (:mod:`nvos.baselines`), for frames that are not in
the pipeline's tables: a keyframe's proposals come from a proposal backend (SAM, or the
weight-free classical one), the best ``max_regions`` by the backend's ranking; each non-empty one
is cut as a masked crop (:mod:`nvos.features.regions`) and embedded by the CLIP image tower; a
phrase is embedded as its prompt (``features.prompt``, e.g. ``"a photo of a {phrase}."``) by the
text tower. A region's score for a phrase is the cosine of the two (L2-normalised) embeddings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from nvos import rle
from nvos.features.clip_model import ClipEncoder
from nvos.features.regions import masked_crops, normalise_frame
from nvos.features.stage import crop_policy, encode_regions
from nvos.features.text import encode_texts
from nvos.proposals.base import ProposalBackend, top_k

__all__ = ["KeyframeRegions", "ZeroShotScorer"]


@dataclass(frozen=True)
class KeyframeRegions:
    """A keyframe's K regions: RLE ``counts`` of size (height, width) and their embeddings
    (K, D) float32, L2-normalised (K may be 0)."""

    frame_index: int
    counts: tuple[bytes, ...]
    height: int
    width: int
    embeddings: np.ndarray


@dataclass
class ZeroShotScorer:
    """Regions of keyframes and embeddings of phrases for prompt-cosine scoring.

    ``backend`` makes proposals; ``encoder`` is the frozen CLIP model; ``margin`` the crop margin
    (``features.crop.margin``); ``prompt`` a template with ``{phrase}``; ``max_regions`` the
    proposals kept per keyframe; ``batch`` the crops or texts per forward.
    """

    backend: ProposalBackend
    encoder: ClipEncoder
    margin: float = 0.1
    prompt: str = "a photo of a {phrase}."
    max_regions: int = 32
    batch: int = 64

    def __post_init__(self) -> None:
        if "{phrase}" not in self.prompt:
            raise ValueError(f"prompt template {self.prompt!r} has no {{phrase}}")
        self.policy = crop_policy({"crop": {"margin": self.margin}}, self.encoder)

    def regions(self, frame_index: int, image: np.ndarray) -> KeyframeRegions:
        """The proposals of one RGB uint8 frame (H, W, 3) and their region embeddings."""
        height, width = image.shape[:2]
        props = top_k(self.backend.generate([image])[0], self.max_regions)
        masks = props.masks[props.masks.any(axis=(1, 2))]
        counts = tuple(rle.encode_many(masks)) if len(masks) else ()
        if not counts:
            empty = np.zeros((0, self.encoder.embed_dim), np.float32)
            return KeyframeRegions(frame_index, (), height, width, empty)
        boxes = torch.tensor([rle.bbox(c, height, width) for c in counts], dtype=torch.float32)
        frame = normalise_frame(image, self.encoder.mean, self.encoder.std, self.encoder.device)
        parts = []
        for start in range(0, len(counts), self.batch):
            chunk = torch.from_numpy(masks[start : start + self.batch])
            crops = masked_crops(frame, chunk, boxes[start : start + self.batch], self.policy)
            parts.append(encode_regions(self.encoder, crops).astype(np.float32))
        embeddings = np.concatenate(parts)
        embeddings /= np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
        return KeyframeRegions(frame_index, counts, height, width, embeddings)

    def phrases(self, texts: Sequence[str]) -> np.ndarray:
        """(P, D) float32 L2-normalised prompt embeddings of the phrase ``texts``."""
        prompts = [self.prompt.format(phrase=text) for text in texts]
        return encode_texts(self.encoder, prompts, self.batch).numpy().astype(np.float32)
