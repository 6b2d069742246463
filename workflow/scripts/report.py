"""Rule report: table.md, index.html and overlays from every method's metrics."""

from nvos.layout import RunLayout
from nvos.logs import stage_log
from nvos.pipeline import run_report

snakemake = snakemake  # noqa: F821  (injected by Snakemake)

with stage_log(snakemake.log[0], "report") as log:
    params = snakemake.params
    summary = run_report(
        RunLayout(params.run),
        params.methods,
        params.splits,
        params.shards,
        params.run_config,
    )
    log.info("%s", summary)
