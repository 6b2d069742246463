"""Rule proposals_shard: mask proposals for the frames of one shard."""

from nvos.logs import stage_log
from nvos.pipeline import run_proposals

snakemake = snakemake  # noqa: F821  (injected by Snakemake)

with stage_log(snakemake.log[0], "proposals") as log:
    summary = run_proposals(
        snakemake.input[0],
        snakemake.output.proposals,
        snakemake.params.proposals,
        snakemake.params.lock_dir,
        snakemake.wildcards.shard,
        skipped_out=snakemake.output.skipped,
    )
    log.info("%s", summary)
