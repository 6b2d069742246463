"""Rule phrases: object phrases of every narration (tags, or the spaCy parser)."""

from nvos.logs import stage_log
from nvos.pipeline import run_phrases

snakemake = snakemake  # noqa: F821  (injected by Snakemake)

with stage_log(snakemake.log[0], "phrases") as log:
    summary = run_phrases(
        snakemake.input[0],
        snakemake.output.phrases,
        snakemake.params.phrases,
        skipped_out=snakemake.output.skipped,
    )
    log.info("%s", summary)
