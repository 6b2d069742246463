"""Rule frames_shard: decode and sample the frames of one shard."""

from nvos.logs import stage_log
from nvos.pipeline import run_frames

snakemake = snakemake  # noqa: F821  (injected by Snakemake)

with stage_log(snakemake.log[0], "frames") as log:
    summary = run_frames(
        snakemake.input.clips,
        snakemake.input.annotations,
        snakemake.wildcards.shard,
        snakemake.output.frames,
        snakemake.params.frames,
        snakemake.params.folder_fps,
        skipped_out=snakemake.output.skipped,
    )
    log.info("%s", summary)
