"""Temporal decoding as methods: ``<base>+temporal`` for each base in ``temporal.decode.methods``
(:mod:`nvos.temporal.stage`; docs/temporal.md)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nvos.layout import RunLayout
from nvos.methods.base import MethodInfo, ShardJob, ShardResult

SUFFIX = "+temporal"


def is_temporal(method: str) -> bool:
    """Whether ``method`` is a ``<base>+temporal`` method."""
    return method.endswith(SUFFIX)


def base_method(method: str) -> str:
    """The region-scoring method a ``<base>+temporal`` method decodes."""
    if not method.endswith(SUFFIX):
        raise ValueError(f"{method!r} is not a temporal method (<base>{SUFFIX})")
    return method[: -len(SUFFIX)]


class Temporal:
    """Per tagged phrase, the path over the clip's keyframes (a proposal or ABSENT on each) that
    maximises the base method's scores plus the weighted link term (Viterbi), with the weights
    chosen on val (``temporal/<method>/selection.json``); rows on every keyframe, an empty mask
    where the phrase is decoded ABSENT."""

    name = "temporal"
    rule = "temporal_shard"
    target = "temporal"
    gpu = 0
    scores_regions = False
    doc = "One shard's phrase choices decoded over the keyframes (<base>+temporal), CPU."
    target_doc = "Target: the predictions of every <base>+temporal method for every shard."

    def names(self, config: Mapping[str, Any]) -> list[str]:
        decode = (config.get("temporal") or {}).get("decode") or {}  # none in a partial config
        return [f"{base}{SUFFIX}" for base in decode.get("methods", [])]

    def describe(self, config: Mapping[str, Any], method: str) -> MethodInfo:
        """The base's label and supervision, then "+ temporal"."""
        from nvos.methods.registry import member

        base = base_method(method)
        return member(config, base).describe(config, base).then("temporal")

    def inputs(
        self, config: Mapping[str, Any], layout: RunLayout, method: str, shard: str
    ) -> dict[str, Any]:
        return {
            "scores": layout.scores(base_method(method), shard),
            "links": layout.links(shard),
            "proposals": layout.proposals(shard),
            "frames": layout.frames(shard),
            "clips": layout.clips,
            "selection": self.selection(config, layout, method),
        }

    def selection(self, config: Mapping[str, Any], layout: RunLayout, method: str) -> str:
        """The decoder's settings: ``temporal.decode.selection`` when the segment stage's
        ``segment.selection`` names another run's, else the run's choice on val."""
        decode = (config.get("temporal") or {}).get("decode") or {}
        return decode.get("selection") or layout.temporal_selection(method)

    def params(self, config: Mapping[str, Any], method: str) -> dict[str, Any]:
        selection = ((config.get("temporal") or {}).get("decode") or {}).get("selection")
        return {"splits": config["predict"]["splits"], "selection": selection}

    def predict(self, job: ShardJob) -> ShardResult:
        from nvos.temporal.select import read_selection
        from nvos.temporal.stage import temporal_predictions

        layout, shard = job.layout, job.shard
        selection = job.params.get("selection") or layout.temporal_selection(job.method)
        return temporal_predictions(
            layout.scores(base_method(job.method), shard),
            layout.links(shard),
            layout.proposals(shard),
            layout.frames(shard),
            layout.clips,
            shard,
            job.out,
            read_selection(selection),
            list(job.params["splits"]),
            job.method,
            meta={"selection": selection},
        )
