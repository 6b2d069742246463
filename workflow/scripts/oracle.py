"""Rule oracle_shard: the SAM upper bound (best-IoU proposal per object and frame)."""

from nvos.logs import stage_log
from nvos.pipeline import run_oracle

snakemake = snakemake  # noqa: F821  (injected by Snakemake)

with stage_log(snakemake.log[0], "oracle") as log:
    summary = run_oracle(
        snakemake.input.clips,
        snakemake.input.annotations,
        snakemake.input.proposals,
        snakemake.wildcards.shard,
        snakemake.output.predictions,
        skipped_out=snakemake.output.skipped,
    )
    log.info("%s", summary)
