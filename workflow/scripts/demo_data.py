"""Rule demo_data: generate the embedded demo dataset.

The generator renders videos in spawned worker processes, which import this script as their main
module: the work runs only under ``__main__``, not again in each worker.
"""

from nvos.logs import stage_log
from nvos.pipeline import run_demo_data

if __name__ == "__main__":
    snakemake = snakemake  # noqa: F821  (injected by Snakemake)
    with stage_log(snakemake.log[0], "demo_data") as log:
        manifest = run_demo_data(snakemake.output[0], snakemake.params.demo, snakemake.threads)
        log.info("demo manifest: %s", manifest)
