"""The SAM upper bound as a method (:mod:`nvos.oracle`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nvos.layout import RunLayout
from nvos.methods.base import MethodInfo, ShardJob, ShardResult


class Oracle:
    """Per tagged object and annotated frame, the proposal with the best IoU with the truth."""

    name = "oracle"
    rule = "oracle_shard"
    target = "oracle"
    gpu = 0
    scores_regions = False
    doc = "SAM upper bound for one shard: the best-IoU proposal per tagged object and frame."
    target_doc = "Target: the oracle's predictions for every shard."

    def names(self, config: Mapping[str, Any]) -> list[str]:
        return [self.name]

    def inputs(
        self, config: Mapping[str, Any], layout: RunLayout, method: str, shard: str
    ) -> dict[str, Any]:
        return {
            "clips": layout.clips,
            "annotations": layout.annotations,
            "proposals": layout.proposals(shard),
        }

    def describe(self, config: Mapping[str, Any], method: str) -> MethodInfo:
        return MethodInfo("SAM upper bound (oracle)", "oracle", short="Oracle keyframes")

    def params(self, config: Mapping[str, Any], method: str) -> dict[str, Any]:
        return {}

    def predict(self, job: ShardJob) -> ShardResult:
        from nvos.oracle import build_oracle

        layout, shard = job.layout, job.shard
        return build_oracle(
            layout.clips,
            layout.annotations,
            layout.proposals(shard),
            shard,
            job.out,
            meta={"shard": shard},
        )
