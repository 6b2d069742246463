"""SAM 3: the phrase as a text (concept) prompt, the best instance or the union of instances.

Per frame, SAM 3's vision features are computed once (``Sam3Model.get_vision_features``, as
``transformers``' documentation shows for several prompts on one image); per phrase, the model
decodes the phrase's instances from them, and ``Sam3Processor.post_process_instance_segmentation``
makes their masks at the frame's size (``mask_threshold`` on the mask probabilities) with their
scores. The prediction is:

- ``union_threshold`` null (default): the highest-scoring instance whose score is above
  ``score_threshold``; none: an empty mask;
- ``union_threshold`` set: the union of every instance whose score is above it (its score: the
  best of them), which is what ``J_union`` scores when an object has several instances.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from nvos.checks import folder_checkpoint_problem
from nvos.config import ConfigError
from nvos.prompted.base import PhraseMask
from nvos.prompted.hub import load_local, seeded, weights_sha256

logger = logging.getLogger(__name__)

__all__ = ["Sam3Segmenter", "choose_instances"]


def choose_instances(
    masks: torch.Tensor,
    scores: torch.Tensor,
    score_threshold: float,
    union_threshold: float | None,
    size: tuple[int, int],
) -> PhraseMask:
    """The prediction from instances ``masks`` (N, H, W) bool and ``scores`` (N,) (module
    docstring); an empty (H, W) = ``size`` mask when no instance qualifies."""
    threshold = score_threshold if union_threshold is None else union_threshold
    keep = scores > threshold
    if not bool(keep.any()):
        return PhraseMask.empty(*size)
    if union_threshold is None:
        best = int(torch.argmax(scores))
        return PhraseMask(masks[best].cpu().numpy().astype(bool), float(scores[best]))
    union = masks[keep].any(dim=0)
    return PhraseMask(union.cpu().numpy(), float(scores[keep].max()))


class Sam3Segmenter:
    """SAM 3 on ``device`` (see the module docstring).

    Args:
        model: A ``transformers`` Sam3Model; ``processor`` its Sam3Processor.
        score_threshold: The best instance counts when its score is above this.
        mask_threshold: Mask probabilities above this are the mask.
        union_threshold: None, or predict the union of instances scoring above it.
        info: What the model is (checkpoint and hashes), for :meth:`describe`.
    """

    def __init__(
        self,
        model: Any,
        processor: Any,
        device: torch.device,
        score_threshold: float,
        mask_threshold: float,
        union_threshold: float | None = None,
        info: Mapping[str, Any] | None = None,
    ) -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.processor = processor
        self.score_threshold = float(score_threshold)
        self.mask_threshold = float(mask_threshold)
        self.union_threshold = None if union_threshold is None else float(union_threshold)
        self.info = dict(info or {})

    @classmethod
    def from_config(cls, group: Mapping[str, Any], device: torch.device) -> Sam3Segmenter:
        """From the ``sam3`` config group."""
        folder = group["model"]
        problem = folder_checkpoint_problem("sam3.model", folder, bool(group["random_weights"]))
        if problem is not None:
            raise ConfigError(problem)
        with seeded(int(group["seed"])):
            model, processor = _model(folder)
        if folder is None:
            logger.warning("SAM 3 with RANDOM weights: its masks mean nothing")
        info = {
            "model": None if folder is None else str(Path(folder).resolve()),
            "model_sha256": None if folder is None else weights_sha256(folder),
            "seed": int(group["seed"]),
        }
        union = group["union_threshold"]
        return cls(
            model, processor, device, float(group["score_threshold"]),
            float(group["mask_threshold"]), None if union is None else float(union), info,
        )  # fmt: skip

    def describe(self) -> dict[str, Any]:
        return {
            "segmenter": "sam3",
            "score_threshold": self.score_threshold,
            "mask_threshold": self.mask_threshold,
            "union_threshold": self.union_threshold,
            **self.info,
        }

    @torch.inference_mode()
    def segment(self, image: np.ndarray, phrases: Sequence[str]) -> list[PhraseMask]:
        size = (int(image.shape[0]), int(image.shape[1]))
        pixels = self.processor(images=Image.fromarray(image), return_tensors="pt")
        vision = self.model.get_vision_features(pixel_values=pixels["pixel_values"].to(self.device))
        threshold = self.score_threshold if self.union_threshold is None else self.union_threshold
        out = []
        for phrase in phrases:
            text = self.processor(text=phrase, return_tensors="pt").to(self.device)
            outputs = self.model(
                vision_embeds=vision, input_ids=text.input_ids, attention_mask=text.attention_mask
            )
            (found,) = self.processor.post_process_instance_segmentation(
                outputs,
                threshold=threshold,
                mask_threshold=self.mask_threshold,
                target_sizes=[size],
            )
            masks, scores = found["masks"], found["scores"]
            out.append(
                choose_instances(masks, scores, self.score_threshold, self.union_threshold, size)
            )
        return out


def _model(folder: str | None) -> tuple[Any, Any]:
    """SAM 3's model and processor of a local checkpoint folder (None: the tiny random one,
    :func:`nvos.prompted.tiny.tiny_sam3`)."""
    if folder is None:
        from nvos.prompted.tiny import tiny_sam3

        return tiny_sam3()
    from transformers import Sam3Model, Sam3Processor

    return (
        load_local(Sam3Model, folder, "sam3.model").eval(),
        load_local(Sam3Processor, folder, "sam3.model"),
    )
