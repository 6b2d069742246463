"""Predictions made elsewhere, brought in by ``nvos import-predictions`` (:mod:`nvos.imports`).

Each key of ``evaluate.imported`` is a method: its files ``predictions/<method>/<shard>.parquet``
come from the import, never from a job. Its rule has no inputs, so Snakemake takes the imported
files as they are; when one is missing the rule's job stops with an error saying how to import it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nvos.errors import NvosError
from nvos.layout import RunLayout
from nvos.methods.base import MethodInfo, ShardJob, ShardResult


class ImportedPredictionsMissing(NvosError, FileNotFoundError):
    """An imported method's predictions file is not in the run folder."""


class Imported:
    """Masks of another method, imported into the run (``evaluate.imported``)."""

    name = "imported"
    rule = "imported_shard"
    target = "imported"
    gpu = 0
    scores_regions = False
    doc = "Imported predictions (nvos import-predictions): never recomputed; a missing file stops."
    target_doc = "Target: the imported predictions of every shard."

    def names(self, config: Mapping[str, Any]) -> list[str]:
        return list(config["evaluate"]["imported"])

    def describe(self, config: Mapping[str, Any], method: str) -> MethodInfo:
        entry = config["evaluate"]["imported"][method]
        return MethodInfo(entry.get("display") or method, entry["supervision"])

    def inputs(
        self, config: Mapping[str, Any], layout: RunLayout, method: str, shard: str
    ) -> dict[str, Any]:
        return {}

    def params(self, config: Mapping[str, Any], method: str) -> dict[str, Any]:
        return {}

    def predict(self, job: ShardJob) -> ShardResult:
        ledger = job.layout.skipped(f"predictions/{job.method}", job.shard)
        missing = " and ".join(p for p in (job.out, ledger) if not Path(p).is_file()) or job.out
        raise ImportedPredictionsMissing(
            f"{missing}: the predictions of the imported method {job.method!r} are not in the run "
            f"folder; import them first: nvos import-predictions {job.layout.root} --method "
            f"{job.method} --format davis|coco-rle|parquet PATH (docs/evaluation.md)"
        )
