"""The free-text path as a method: ``<segment.method>+free_text`` (:mod:`nvos.segment.free_text`).

Present when ``segment.phrases`` is ``free_text``: its job reads the segment stage's predictions
of ``segment.method`` (the parsed phrases of the tag-stripped narrations) and writes them as the
tagged objects they match, so the evaluation and the report score the path a user's free text
takes beside the tagged protocol of the same method.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nvos.layout import SEGMENT_SCOPE, RunLayout
from nvos.methods.base import STEP, MethodInfo, ShardJob, ShardResult


class FreeText:
    """Per tagged object, the segment's masks of the first parsed phrase matching it."""

    name = "free_text"
    rule = "free_text_shard"
    target = "free_text"
    gpu = 0
    scores_regions = False
    doc = "One shard's free-text masks (tags stripped, parsed, segmented) as the tags they match."
    target_doc = "Target: the free-text predictions of segment.method for every shard."

    def names(self, config: Mapping[str, Any]) -> list[str]:
        from nvos.segment.scope import free_text_method

        method = free_text_method(config)
        return [method] if method else []

    def base(self, method: str) -> str:
        """The segment method whose masks ``method`` scores."""
        return method.rsplit(STEP, 1)[0]

    def describe(self, config: Mapping[str, Any], method: str) -> MethodInfo:
        """The segment method's label and supervision (as its scope names it), then "+ free
        text"."""
        from nvos.methods.registry import member
        from nvos.segment.scope import segment_config

        scope, base = segment_config(config), self.base(method)
        return member(scope, base).describe(scope, base).then("free text")

    def inputs(
        self, config: Mapping[str, Any], layout: RunLayout, method: str, shard: str
    ) -> dict[str, Any]:
        segment = layout.scoped(SEGMENT_SCOPE)  # free text: the scope's own phrases
        return {
            "clips": layout.clips,
            "phrases": layout.phrases,
            "segment_phrases": segment.phrases,
            "segment_predictions": segment.predictions(self.base(method), shard),
        }

    def params(self, config: Mapping[str, Any], method: str) -> dict[str, Any]:
        return {"splits": list(config["evaluate"]["splits"])}

    def predict(self, job: ShardJob) -> ShardResult:
        from nvos.segment.free_text import free_text_predictions

        layout = job.layout
        segment = layout.scoped(SEGMENT_SCOPE)
        return free_text_predictions(
            layout.clips,
            layout.phrases,
            segment.phrases,
            segment.predictions(self.base(job.method), job.shard),
            job.shard,
            list(job.params["splits"]),
            job.out,
            job.method,
        )
