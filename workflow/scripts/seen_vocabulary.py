"""Rule seen_vocabulary: the training vocabulary and the tagged phrases' head nouns, seen.json
(nvos.evaluation.seen), read by every evaluate_method job."""

from nvos.evaluation.seen import write_seen_vocabulary
from nvos.logs import stage_log

snakemake = snakemake  # noqa: F821  (injected by Snakemake)

with stage_log(snakemake.log[0], "seen_vocabulary") as log:
    params = snakemake.params
    seen = write_seen_vocabulary(
        snakemake.input.clips, params.train_split, params.spacy_model, snakemake.output.seen
    )
    log.info(
        "%d training narrations, %d lemmas, %d phrase head nouns",
        seen.train_narrations, len(seen.vocabulary), len(seen.heads),
    )  # fmt: skip
