"""GroundedSAM: Grounding DINO boxes for the phrase, the best one as SAM's box prompt.

Per phrase and frame: Grounding DINO (``transformers``' GroundingDinoForObjectDetection, its
processor and ``post_process_grounded_object_detection``, as the library documents them) scores
its query boxes against the phrase text (the phrase as a one-label list, which the processor
writes ``"<phrase>."``); the highest-scoring box whose score is above ``box_threshold`` goes to
SAM (``segment_anything``'s SamPredictor, ``multimask_output=False``) as a box prompt, and SAM's
mask is the prediction, scored with the box's score. No box above the threshold: an empty mask.

SAM is the proposals stage's model setting (``proposals.sam``: model type, checkpoint or random
weights), so the GroundedSAM row and the SAM-based rows share one SAM.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from nvos.checks import folder_checkpoint_problem, sam_checkpoint_problem
from nvos.config import invalid
from nvos.prompted.base import PhraseMask
from nvos.prompted.hub import load_local, seeded, weights_sha256
from nvos.storage import file_sha256

logger = logging.getLogger(__name__)

__all__ = ["GroundedSam"]


class GroundedSam:
    """Grounding DINO + SAM on ``device`` (see the module docstring).

    Args:
        detector: A GroundingDinoForObjectDetection; ``processor`` its GroundingDinoProcessor.
        sam: A ``segment_anything`` Sam (:func:`nvos.proposals.sam.build_sam`).
        box_threshold: A box is used when its score (max over the phrase's tokens of the
            sigmoid logits) is above this.
        info: What the models are (checkpoints and hashes), for :meth:`describe`.
    """

    def __init__(
        self,
        detector: Any,
        processor: Any,
        sam: Any,
        device: torch.device,
        box_threshold: float,
        info: Mapping[str, Any] | None = None,
    ) -> None:
        from segment_anything import SamPredictor

        self.device = torch.device(device)
        self.detector = detector.to(self.device).eval()
        self.processor = processor
        self.predictor = SamPredictor(sam.to(self.device).eval())
        self.box_threshold = float(box_threshold)
        self.info = dict(info or {})

    @classmethod
    def from_config(
        cls, group: Mapping[str, Any], sam_group: Mapping[str, Any], device: torch.device
    ) -> GroundedSam:
        """From the ``grounded_sam`` group and the model keys of ``proposals.sam``."""
        from nvos.proposals.sam import build_sam

        folder, sam_checkpoint = group["detector"], sam_group["checkpoint"]
        problems = [
            folder_checkpoint_problem(
                "grounded_sam.detector", folder, bool(group["random_weights"])
            ),
            sam_checkpoint_problem(sam_checkpoint, bool(sam_group["random_weights"])),
        ]
        if any(problems):
            raise invalid([p for p in problems if p])
        with seeded(int(group["seed"])):
            detector, processor = _detector(folder)
            sam_path = None if sam_checkpoint is None else Path(sam_checkpoint)
            sam = build_sam(str(sam_group["model_type"]), sam_path, sam_group.get("image_size"))
        if folder is None or sam_checkpoint is None:
            logger.warning("GroundedSAM with RANDOM weights: its masks mean nothing")
        info = {
            "detector": None if folder is None else str(Path(folder).resolve()),
            "detector_sha256": None if folder is None else weights_sha256(folder),
            "sam_model_type": str(sam_group["model_type"]),
            "sam_checkpoint": None if sam_path is None else str(sam_path.resolve()),
            "sam_checkpoint_sha256": None if sam_path is None else file_sha256(sam_path),
            "seed": int(group["seed"]),
        }
        return cls(detector, processor, sam, device, float(group["box_threshold"]), info)

    def describe(self) -> dict[str, Any]:
        return {"segmenter": "grounded_sam", "box_threshold": self.box_threshold, **self.info}

    @torch.inference_mode()
    def best_box(
        self, pixels: Mapping[str, torch.Tensor], phrase: str, size: tuple[int, int]
    ) -> tuple[np.ndarray, float] | None:
        """(box xyxy (4,) float in frame pixels, score) of the best box above the threshold for
        ``phrase``, or None; ``pixels``: the image processor's output for the frame."""
        text = self.processor(text=[[phrase]], return_tensors="pt")
        inputs = {**pixels, **{k: v.to(self.device) for k, v in text.items()}}
        outputs = self.detector(**inputs)
        (found,) = self.processor.post_process_grounded_object_detection(
            outputs, inputs["input_ids"], threshold=self.box_threshold, target_sizes=[size]
        )
        if len(found["scores"]) == 0:
            return None
        best = int(torch.argmax(found["scores"]))
        return found["boxes"][best].cpu().numpy(), float(found["scores"][best])

    def segment(self, image: np.ndarray, phrases: Sequence[str]) -> list[PhraseMask]:
        height, width = image.shape[:2]
        pixels = self.processor.image_processor(images=Image.fromarray(image), return_tensors="pt")
        pixels = {k: v.to(self.device) for k, v in pixels.items()}
        boxes = [self.best_box(pixels, phrase, (height, width)) for phrase in phrases]
        if all(box is None for box in boxes):
            return [PhraseMask.empty(height, width) for _ in phrases]
        self.predictor.set_image(image)
        out = []
        for found in boxes:
            if found is None:
                out.append(PhraseMask.empty(height, width))
                continue
            box, score = found
            masks, _, _ = self.predictor.predict(box=box, multimask_output=False)
            out.append(PhraseMask(masks[0].astype(bool), score))
        return out


def _detector(folder: str | None) -> tuple[Any, Any]:
    """The Grounding DINO model and processor of a local checkpoint folder (None: the tiny
    random one, :func:`nvos.prompted.tiny.tiny_grounding_dino`)."""
    if folder is None:
        from nvos.prompted.tiny import tiny_grounding_dino

        return tiny_grounding_dino()
    from transformers import GroundingDinoForObjectDetection, GroundingDinoProcessor

    key = "grounded_sam.detector"
    return (
        load_local(GroundingDinoForObjectDetection, folder, key).eval(),
        load_local(GroundingDinoProcessor, folder, key),
    )
