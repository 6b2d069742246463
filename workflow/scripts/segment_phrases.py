"""Rule segment_phrases: the segment stage's phrases (nvos.segment.stage.segment_phrases)."""

from nvos.logs import stage_log
from nvos.segment.stage import segment_phrases

snakemake = snakemake  # noqa: F821  (injected by Snakemake)

with stage_log(snakemake.log[0], "segment_phrases") as log:
    counts = segment_phrases(
        snakemake.input.clips,
        snakemake.input.phrases,
        snakemake.output.phrases,
        snakemake.params.mode,
        snakemake.params.parser,
    )
    log.info("%s", {k: v for k, v in counts.items() if not isinstance(v, list)})
