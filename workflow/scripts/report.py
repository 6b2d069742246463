"""Rule report: table.md, index.html and overlays from every method's metrics."""

from nvos.logs import stage_log
from nvos.pipeline import run_report

snakemake = snakemake  # noqa: F821  (injected by Snakemake)

with stage_log(snakemake.log[0], "report") as log:
    params = snakemake.params
    summary = run_report(
        params.metrics_dir,
        params.frames_dir,
        snakemake.input.annotations,
        params.predictions_dir,
        snakemake.input.clips,
        params.out_dir,
        params.run_config,
        snakemake.input.reconciliation,
    )
    log.info("%s", summary)
