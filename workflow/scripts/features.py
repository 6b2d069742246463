"""Rule features_shard: CLIP embeddings of the proposals and phrases of one shard."""

from nvos.logs import stage_log
from nvos.pipeline import run_features

snakemake = snakemake  # noqa: F821  (injected by Snakemake)

with stage_log(snakemake.log[0], "features") as log:
    summary = run_features(
        snakemake.input.frames,
        snakemake.input.proposals,
        snakemake.input.phrases,
        snakemake.input.clips,
        snakemake.wildcards.shard,
        snakemake.output.regions,
        snakemake.output.text,
        snakemake.params.features,
        snakemake.params.lock_dir,
        skipped_out=snakemake.output.skipped,
    )
    log.info("%s", summary)
