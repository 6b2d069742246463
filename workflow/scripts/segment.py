"""Rule segment_shard: the segment stage's output of one shard
(nvos.segment.stage.segment_masks)."""

from nvos.logs import stage_log
from nvos.segment.stage import segment_masks

snakemake = snakemake  # noqa: F821  (injected by Snakemake)

with stage_log(snakemake.log[0], "segment") as log:
    summary = segment_masks(
        snakemake.input.masks,
        snakemake.input.phrases,
        snakemake.wildcards.shard,
        snakemake.output.masks,
        {"segment": dict(snakemake.params.segment)},
    )
    log.info("%s", summary)
