"""Rule sam_clip_shard: the SAM + CLIP zero-shot baseline's predictions for one shard."""

from nvos.logs import stage_log
from nvos.pipeline import run_sam_clip

snakemake = snakemake  # noqa: F821  (injected by Snakemake)

with stage_log(snakemake.log[0], "sam_clip") as log:
    summary = run_sam_clip(
        snakemake.input.regions,
        snakemake.input.proposals,
        snakemake.input.frames,
        snakemake.input.phrases,
        snakemake.input.clips,
        snakemake.wildcards.shard,
        snakemake.output.predictions,
        snakemake.params.features,
        snakemake.params.splits,
        snakemake.params.lock_dir,
        skipped_out=snakemake.output.skipped,
    )
    log.info("%s", summary)
