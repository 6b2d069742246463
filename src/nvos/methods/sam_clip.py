"""The SAM + CLIP zero-shot baseline as a method (:mod:`nvos.baselines`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nvos.features.clip_names import clip_checkpoint
from nvos.layout import RunLayout
from nvos.methods.base import MethodInfo, ShardJob, ShardResult


class SamClip:
    """Per tagged phrase and keyframe, the proposal whose CLIP embedding is closest to the
    phrase's prompt; every proposal's cosine goes to the scores file."""

    name = "sam_clip"
    rule = "sam_clip_shard"
    target = "sam_clip"
    gpu = 1
    scores_regions = True
    doc = "SAM + CLIP zero-shot baseline for one shard: the proposal nearest each phrase's prompt."
    target_doc = "Target: the SAM + CLIP baseline's predictions for every shard."

    def names(self, config: Mapping[str, Any]) -> list[str]:
        return [self.name]

    def inputs(
        self, config: Mapping[str, Any], layout: RunLayout, method: str, shard: str
    ) -> dict[str, Any]:
        return {
            "regions": layout.regions(shard),
            "proposals": layout.proposals(shard),
            "frames": layout.frames(shard),
            "phrases": layout.phrases,
            "clips": layout.clips,
            "checkpoint": clip_checkpoint(config),
        }

    def describe(self, config: Mapping[str, Any], method: str) -> MethodInfo:
        return MethodInfo("SAM + CLIP (zero-shot)", "none", short="SAM + CLIP")

    def params(self, config: Mapping[str, Any], method: str) -> dict[str, Any]:
        return {
            "features": config["features"],
            "splits": config["evaluate"]["splits"],
            "phrases": config["predict"]["phrases"],
        }

    def predict(self, job: ShardJob) -> ShardResult:
        from nvos.baselines import check_same_model, clip_prompt_encoder, sam_clip_predictions
        from nvos.devices import claim_device
        from nvos.features.stage import build_encoder

        features, layout, shard = job.params["features"], job.layout, job.shard
        with claim_device(job.lock_dir) as device:
            encoder = build_encoder(features, device)
            check_same_model(layout.regions(shard), encoder.describe())
            return sam_clip_predictions(
                layout.regions(shard),
                layout.proposals(shard),
                layout.frames(shard),
                layout.phrases,
                layout.clips,
                shard,
                job.out,
                clip_prompt_encoder(encoder, int(features["batch_texts"])),
                str(features["prompt"]),
                splits=list(job.params["splits"]),
                meta={"config": dict(features), "clip": encoder.describe()},
                scores_path=job.scores_out,
                phrases_predicted=str(job.params.get("phrases", "tagged")),
            )
