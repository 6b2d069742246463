"""Rule segment_text_shard: CLIP embeddings of the segment stage's phrases of one shard, and ROSA's
cache of them (nvos.pipeline.run_text_features)."""

from nvos.layout import RunLayout
from nvos.logs import stage_log
from nvos.pipeline import run_text_features
from nvos.segment.scope import segment_layout

snakemake = snakemake  # noqa: F821  (injected by Snakemake)

with stage_log(snakemake.log[0], "segment_text") as log:
    params = snakemake.params
    counts = run_text_features(
        segment_layout(snakemake.config, RunLayout(params.run)),
        snakemake.wildcards.shard,
        params.features,
        params.lock_dir,
    )
    log.info("%s", {k: v for k, v in counts.items() if not isinstance(v, list)})
