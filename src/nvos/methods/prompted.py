"""The text-prompted comparison rows as methods (:mod:`nvos.prompted`): GroundedSAM and SAM 3.

Both were trained with labelled masks (``supervision = "mask"``), unlike ROSA; they read only
the frames and the phrases, and are off by default (not in ``evaluate.methods``): with the demo's
random weights their rows would be noise. ``config/examples/text_prompted.yaml`` turns them on
with real checkpoints.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

from nvos.layout import RunLayout
from nvos.methods.base import MethodInfo, ShardJob, ShardResult

__all__ = ["GroundedSamMethod", "Sam3Method", "SAM_MODEL_KEYS"]

SAM_MODEL_KEYS = ("model_type", "checkpoint", "random_weights", "image_size")
"""The keys of ``proposals.sam`` that choose SAM's weights (GroundedSAM shares them)."""


class _Prompted(ABC):
    """What the two members share: inputs, splits, the shard loop; a member adds its group's
    name and how to build its segmenter."""

    name: str
    rule: str
    target: str
    gpu = 1
    scores_regions = False
    supervision = "mask"

    label: str

    def names(self, config: Mapping[str, Any]) -> list[str]:
        return [self.name]

    def describe(self, config: Mapping[str, Any], method: str) -> MethodInfo:
        return MethodInfo(self.label, self.supervision)

    def inputs(
        self, config: Mapping[str, Any], layout: RunLayout, method: str, shard: str
    ) -> dict[str, Any]:
        return {"clips": layout.clips, "phrases": layout.phrases, "frames": layout.frames(shard)}

    def params(self, config: Mapping[str, Any], method: str) -> dict[str, Any]:
        return {self.name: dict(config[self.name]), "splits": list(config["evaluate"]["splits"])}

    @abstractmethod
    def segmenter(self, params: Mapping[str, Any], device: Any) -> Any:
        """The member's segmenter (:class:`nvos.prompted.base.Segmenter`) on ``device``."""

    def predict(self, job: ShardJob) -> ShardResult:
        from nvos.devices import claim_device
        from nvos.prompted.predict import predict_prompted_shard

        layout, shard = job.layout, job.shard
        with claim_device(job.lock_dir) as device:
            return predict_prompted_shard(
                self.segmenter(job.params, device),
                job.method,
                layout.clips,
                layout.phrases,
                layout.frames(shard),
                shard,
                job.out,
                splits=list(job.params["splits"]),
                config=dict(job.params),
            )


class GroundedSamMethod(_Prompted):
    """Per tagged phrase and annotated frame, SAM's mask for Grounding DINO's best box."""

    name, rule, target = "grounded_sam", "grounded_sam_shard", "grounded_sam"
    label = "GroundedSAM"
    doc = "GroundedSAM for one shard: Grounding DINO's best box per phrase and frame, SAM's mask."
    target_doc = "Target: GroundedSAM's predictions for every shard."

    def inputs(
        self, config: Mapping[str, Any], layout: RunLayout, method: str, shard: str
    ) -> dict[str, Any]:
        checkpoint = config["proposals"]["sam"]["checkpoint"]
        return {**super().inputs(config, layout, method, shard),
                **({"sam_checkpoint": checkpoint} if checkpoint else {})}  # fmt: skip

    def params(self, config: Mapping[str, Any], method: str) -> dict[str, Any]:
        sam = config["proposals"]["sam"]
        return {**super().params(config, method), "sam": {k: sam[k] for k in SAM_MODEL_KEYS}}

    def segmenter(self, params: Mapping[str, Any], device: Any) -> Any:
        from nvos.prompted.grounded_sam import GroundedSam

        return GroundedSam.from_config(params[self.name], params["sam"], device)


class Sam3Method(_Prompted):
    """Per tagged phrase and annotated frame, SAM 3's best instance (or union) for the phrase."""

    name, rule, target = "sam3", "sam3_shard", "sam3"
    label = "SAM 3"
    doc = "SAM 3 for one shard: the phrase as its text prompt on every scored frame."
    target_doc = "Target: SAM 3's predictions for every shard."

    def segmenter(self, params: Mapping[str, Any], device: Any) -> Any:
        from nvos.prompted.sam3 import Sam3Segmenter

        return Sam3Segmenter.from_config(params[self.name], device)
