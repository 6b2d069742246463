"""Rule skips: every stage job's skips in skipped.csv, clips in/out/skipped per stage."""

from nvos.logs import stage_log
from nvos.pipeline import run_skips

snakemake = snakemake  # noqa: F821  (injected by Snakemake)

with stage_log(snakemake.log[0], "skips") as log:
    rows = run_skips(
        list(snakemake.input), snakemake.output.skipped, snakemake.output.reconciliation
    )
    log.info("%d stages reconciled", len(rows))
