"""The interface every mask-proposal backend implements, and how proposals are ranked (DESIGN §7).

A backend turns RGB frames into class-agnostic mask proposals. Each proposal carries the two
scores SAM produces (``predicted_iou`` and ``stability_score``); backends that have no such notion
(the weight-free classical backend) fill them with their own scores in [0, 1]. Proposals are
ranked by ``predicted_iou * stability_score`` (DESIGN §7: "highest SAM predicted IoU × stability").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

__all__ = ["FrameProposals", "ProposalBackend", "proposal_scores", "top_k"]


@dataclass
class FrameProposals:
    """Mask proposals of one frame.

    Attributes:
        masks: (N, H, W) bool, at the frame's resolution.
        predicted_iou: (N,) float32.
        stability_score: (N,) float32.
    """

    masks: np.ndarray
    predicted_iou: np.ndarray
    stability_score: np.ndarray

    def __post_init__(self) -> None:
        if self.masks.ndim != 3:
            raise ValueError(
                f"FrameProposals.masks must be (N, H, W), got shape {self.masks.shape}"
            )
        n = self.masks.shape[0]
        for name in ("predicted_iou", "stability_score"):
            arr = getattr(self, name)
            if arr.shape != (n,):
                raise ValueError(f"FrameProposals.{name} must have shape ({n},), got {arr.shape}")
        self.masks = self.masks.astype(bool, copy=False)
        self.predicted_iou = self.predicted_iou.astype(np.float32, copy=False)
        self.stability_score = self.stability_score.astype(np.float32, copy=False)

    def __len__(self) -> int:
        return int(self.masks.shape[0])

    @classmethod
    def empty(cls, height: int, width: int) -> FrameProposals:
        """No proposal for a frame of size (height, width): masks of shape (0, H, W)."""
        return cls(
            masks=np.zeros((0, height, width), dtype=bool),
            predicted_iou=np.zeros((0,), dtype=np.float32),
            stability_score=np.zeros((0,), dtype=np.float32),
        )


class ProposalBackend(Protocol):
    """A mask-proposal generator (SAM, or the weight-free classical backend)."""

    name: str

    def describe(self) -> dict[str, Any]:
        """What made the proposals (backend, model type, checkpoint sha256, settings).

        JSON-serialisable; it goes into the Parquet schema metadata.
        """
        ...

    def generate(self, images: Sequence[np.ndarray]) -> list[FrameProposals]:
        """Proposals for each image.

        Args:
            images: RGB uint8 arrays of shape (H, W, 3); sizes may differ between images.

        Returns:
            One FrameProposals per image, in order, masks at that image's resolution.
        """
        ...


def proposal_scores(props: FrameProposals) -> np.ndarray:
    """(N,) float32 ranking score = predicted_iou * stability_score."""
    return (props.predicted_iou * props.stability_score).astype(np.float32)


def top_k(props: FrameProposals, k: int) -> FrameProposals:
    """The k best proposals by predicted_iou * stability_score, best first.

    Ties keep the original order (stable sort by index). ``k`` larger than N keeps all N.
    """
    if k < 0:
        raise ValueError(f"top_k: k must be >= 0, got {k}")
    order = np.argsort(-proposal_scores(props), kind="stable")[:k]
    return FrameProposals(
        masks=props.masks[order],
        predicted_iou=props.predicted_iou[order],
        stability_score=props.stability_score[order],
    )
