"""Rule train: one ROSA variant trained from narrations (VNA + RPA) on the feature cache."""

from pathlib import Path

from nvos.logs import stage_log
from nvos.pipeline import run_train

snakemake = snakemake  # noqa: F821  (injected by Snakemake)

with stage_log(snakemake.log[0], "train") as log:
    params = snakemake.params
    summary = run_train(
        params.run_dir,
        params.shards,
        snakemake.input.clips,
        Path(snakemake.output.checkpoint).parent,
        params.rosa,
        snakemake.wildcards.variant,
        params.lock_dir,
    )
    log.info("%s", summary)
