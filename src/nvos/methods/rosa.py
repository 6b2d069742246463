"""ROSA's ablation variants as methods (:mod:`nvos.rosa.predict`): one method per variant."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nvos.layout import RunLayout
from nvos.methods.base import MethodInfo, ShardJob, ShardResult
from nvos.rosa.config import RosaConfig, resolve_variant
from nvos.rosa.sweep import trained_variants

VARIANT_LABELS: dict[str, str] = {
    "rosa": "ROSA",
    "rosa_noctx": "ROSA w/o phrase context",
    "rosa_vna_only": "ROSA (L_VNA only)",
    "rosa_rpa_only": "ROSA (L_RPA only)",
}
"""Row labels of the shipped variants; another variant is labelled ``ROSA (<name>)``."""


class Rosa:
    """Per tagged phrase and annotated frame, the proposal with the highest g of the trained
    variant's model (``models/<variant>/checkpoint.pt``, rule ``train``)."""

    name = "rosa"
    rule = "predict_shard"
    target = "predict"
    gpu = 1
    scores_regions = True
    doc = "Masks for one shard's tagged phrases from a trained ROSA variant."
    target_doc = "Target: the predictions of every ROSA variant for every shard."

    def names(self, config: Mapping[str, Any]) -> list[str]:
        return trained_variants(config["rosa"])  # the variants and a sweep's points

    def inputs(
        self, config: Mapping[str, Any], layout: RunLayout, method: str, shard: str
    ) -> dict[str, Any]:
        return {
            "clips": layout.clips,
            "phrases": layout.phrases,
            "regions": layout.regions(shard),
            "text": layout.text(shard),
            "regions_cache": layout.feature_cache(shard, "regions"),
            "text_cache": layout.feature_cache(shard, "text"),
            "proposals": layout.proposals(shard),
            "frames": layout.frames(shard),
            "checkpoint": checkpoint(config, layout, method),
        }

    def describe(self, config: Mapping[str, Any], method: str) -> MethodInfo:
        return MethodInfo(VARIANT_LABELS.get(method, f"ROSA ({method})"), "narration")

    def params(self, config: Mapping[str, Any], method: str) -> dict[str, Any]:
        """The variant resolved (:func:`nvos.rosa.config.resolve_variant`) and ``predict``."""
        return {"rosa": resolve_variant(config["rosa"], method).to_dict(), **config["predict"]}

    def predict(self, job: ShardJob) -> ShardResult:
        from nvos.rosa.predict import predict_shard

        return predict_shard(
            job.layout,
            job.shard,
            job.method,
            RosaConfig.from_mapping(job.params["rosa"]),
            splits=list(job.params["splits"]),
            batch_size=int(job.params["batch_size"]),
            lock_dir=job.lock_dir,
            phrases=str(job.params.get("phrases", "tagged")),
            checkpoint=job.params.get("checkpoint"),
        )


def checkpoint(config: Mapping[str, Any], layout: RunLayout, variant: str) -> str:
    """The weights a variant predicts with: ``predict.checkpoint`` when the segment stage's
    ``segment.model`` names another run's, else the run's ``models/<variant>/checkpoint.pt``."""
    return config["predict"].get("checkpoint") or layout.checkpoint(variant)
