"""Rule dataset: validate the manifest, write clips.parquet and annotations.parquet."""

from nvos.logs import stage_log
from nvos.pipeline import run_dataset

snakemake = snakemake  # noqa: F821  (injected by Snakemake)

with stage_log(snakemake.log[0], "dataset") as log:
    summary = run_dataset(
        snakemake.input.manifest,
        snakemake.output.clips,
        snakemake.output.annotations,
        snakemake.params.dataset,
        snakemake.params.shards,
    )
    log.info("%s", summary)
