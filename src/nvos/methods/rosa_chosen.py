"""The ``rosa`` row of a sweep: the predictions of the setting chosen on val
(:mod:`nvos.rosa.sweep`).

With ``rosa.sweep`` set, the ROSA member (:mod:`nvos.methods.rosa`) trains and predicts every point
of the grid as a variant ``rosa-sw-<hash>``; the ``select_sweep`` rule chooses one on the val split
only (``sweep/selection.json``). This member provides the ``rosa`` method then: each shard job
copies the chosen variant's predictions, region scores and skip ledger, its provenance naming the
chosen setting.
Without a sweep it provides nothing (the ROSA member trains ``rosa`` itself).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nvos.layout import RunLayout
from nvos.methods.base import MethodInfo, ShardJob
from nvos.rosa.sweep import SWEPT_VARIANT, is_swept, sweep_points
from nvos.skips import Ledger


@dataclass(frozen=True)
class ChosenSummary:
    """What a shard job did: the variant copied, its rows and the shard's ledger."""

    chosen: str
    rows: int
    ledger: Ledger


class RosaChosen:
    """``rosa`` = the sweep's point with the best val score (copied per shard)."""

    name = "rosa_chosen"
    rule = "rosa_chosen_shard"
    target = "rosa_chosen"
    gpu = 0
    scores_regions = True
    doc = "The rosa row of a sweep for one shard: the predictions of the setting chosen on val."
    target_doc = "Target: the rosa row of a sweep (the chosen setting's predictions), every shard."

    def names(self, config: Mapping[str, Any]) -> list[str]:
        return [SWEPT_VARIANT] if is_swept(config["rosa"]) else []

    def describe(self, config: Mapping[str, Any], method: str) -> MethodInfo:
        return MethodInfo("ROSA (chosen on val)", "narration")

    def inputs(
        self, config: Mapping[str, Any], layout: RunLayout, method: str, shard: str
    ) -> dict[str, Any]:
        points = list(sweep_points(config["rosa"]))
        return {
            "clips": layout.clips,
            "selection": layout.sweep_selection,
            "predictions": [layout.predictions(p, shard) for p in points],
            "ledgers": [layout.skipped(f"predictions/{p}", shard) for p in points],
            "scores": [layout.scores(p, shard) for p in points],
        }

    def params(self, config: Mapping[str, Any], method: str) -> dict[str, Any]:
        return {"points": sweep_points(config["rosa"])}

    def predict(self, job: ShardJob) -> ChosenSummary:
        from nvos import skips, storage
        from nvos.dataset import read_shard_clips
        from nvos.methods.rows import PredictionRows, ScoreRows
        from nvos.rosa.sweep import read_selection

        layout, shard = job.layout, job.shard
        selection = read_selection(layout.sweep_selection)
        chosen = selection["chosen"]
        if chosen not in job.params["points"]:
            raise ValueError(
                f"{layout.sweep_selection}: chosen {chosen!r} is no point of rosa.sweep "
                f"({sorted(job.params['points'])}); rerun select_sweep"
            )
        source = layout.predictions(chosen, shard)
        table = storage.read_table(source, "predictions")
        meta = {
            **storage.read_provenance(source),
            "method": job.method,
            "sweep": {**selection, "source": source},
        }
        PredictionRows.from_table(table).write(job.out, meta)
        scores = storage.read_table(layout.scores(chosen, shard), ScoreRows.SCHEMA)
        ScoreRows.from_table(scores).write(layout.scores(job.method, shard), meta)
        skipped = storage.read_table(layout.skipped(f"predictions/{chosen}", shard), skips.SCHEMA)
        ledger = Ledger.of(
            f"predictions/{job.method}",
            shard,
            read_shard_clips(layout.clips, shard)["clip_id"].to_pylist(),
            table["clip_id"].to_pylist(),
            [
                skips.Skip(r["clip_id"], r["reason"], r["frame_index"], r["detail"] or "")
                for r in skipped.to_pylist()
            ],
        )
        return ChosenSummary(chosen, table.num_rows, ledger)
