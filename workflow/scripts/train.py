"""Rule train: one ROSA variant trained from narrations (VNA + RPA) on the feature cache."""

from nvos.layout import RunLayout
from nvos.logs import stage_log
from nvos.rosa.config import RosaConfig
from nvos.rosa.stage import train_variant

snakemake = snakemake  # noqa: F821  (injected by Snakemake)

with stage_log(snakemake.log[0], "train") as log:
    params = snakemake.params
    summary = train_variant(
        RunLayout(params.run),
        params.shards,
        snakemake.wildcards.variant,
        RosaConfig.from_mapping(params.rosa),
        params.lock_dir,
    )
    log.info("%s", summary)
