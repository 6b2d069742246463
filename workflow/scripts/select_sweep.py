"""Rule select_sweep: choose the rosa.sweep setting on val (sweep/selection.json, sweep.csv)."""

from nvos.logs import stage_log
from nvos.rosa.sweep import select_sweep

snakemake = snakemake  # noqa: F821  (injected by Snakemake)

with stage_log(snakemake.log[0], "select_sweep") as log:
    selection = select_sweep(
        snakemake.params.points,
        snakemake.params.by,
        list(snakemake.input.train_logs),
        list(snakemake.input.summaries) if "summaries" in snakemake.input.keys() else None,
        snakemake.output.selection,
        snakemake.output.table,
    )
    log.info("chose %s (%s) by %s", selection["chosen"], selection["label"], selection["basis"])
