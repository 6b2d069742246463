"""Rule features_shard: CLIP embeddings of the proposals and phrases of one shard, and ROSA's
feature cache of them."""

from nvos.layout import RunLayout
from nvos.logs import stage_log
from nvos.pipeline import run_features

snakemake = snakemake  # noqa: F821  (injected by Snakemake)

with stage_log(snakemake.log[0], "features") as log:
    summary = run_features(
        RunLayout(snakemake.params.run),
        snakemake.wildcards.shard,
        snakemake.params.features,
        snakemake.params.lock_dir,
    )
    log.info("%s", summary)
