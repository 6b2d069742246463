"""What a text-prompted segmenter is: an RGB frame and phrases in, one mask per phrase out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

__all__ = ["PhraseMask", "Segmenter"]


@dataclass(frozen=True)
class PhraseMask:
    """A phrase's mask on one frame: ``mask`` (H, W) bool at the frame's size, ``score`` the
    segmenter's confidence (0.0 with an empty mask when it found nothing)."""

    mask: np.ndarray
    score: float

    @classmethod
    def empty(cls, height: int, width: int) -> PhraseMask:
        """Nothing found: an all-false mask, score 0."""
        return cls(np.zeros((height, width), dtype=bool), 0.0)


class Segmenter(Protocol):
    """A text-prompted segmenter (GroundedSAM, SAM 3) on a device."""

    def segment(self, image: np.ndarray, phrases: Sequence[str]) -> list[PhraseMask]:
        """One mask per phrase, in order, on the RGB uint8 (H, W, 3) ``image``."""
        ...

    def describe(self) -> dict[str, Any]:
        """Models, checkpoints (path, sha256) and settings, for the provenance."""
        ...
