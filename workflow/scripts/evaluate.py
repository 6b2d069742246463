"""Rule evaluate_method: score one method on one split (per_object.csv + summary.json)."""

from pathlib import Path

from nvos.logs import stage_log
from nvos.pipeline import run_evaluate

snakemake = snakemake  # noqa: F821  (injected by Snakemake)

with stage_log(snakemake.log[0], "evaluate") as log:
    summary = run_evaluate(
        snakemake.wildcards.method,
        list(snakemake.input.predictions),
        snakemake.input.clips,
        snakemake.input.annotations,
        snakemake.wildcards.split,
        Path(snakemake.output.summary).parent,
        snakemake.params.evaluate,
        workers=snakemake.threads,
        seen=snakemake.input.get("seen"),
    )
    log.info("J&F %.4f over %d objects", summary["J&F"], summary["objects"])
