"""Rule demo_data: generate the embedded demo dataset."""

from nvos.logs import stage_log
from nvos.pipeline import run_demo_data

snakemake = snakemake  # noqa: F821  (injected by Snakemake)

with stage_log(snakemake.log[0], "demo_data") as log:
    manifest = run_demo_data(snakemake.output[0], snakemake.params.demo, snakemake.threads)
    log.info("demo manifest: %s", manifest)
