"""Rules sam_clip_shard, oracle_shard, predict_shard (workflow/rules/methods.smk): one method's
predictions on one shard (nvos.methods)."""

from nvos.layout import RunLayout
from nvos.logs import stage_log
from nvos.methods import predict_method_shard

snakemake = snakemake  # noqa: F821  (injected by Snakemake)

with stage_log(snakemake.log[0], "predict") as log:
    params = snakemake.params
    summary = predict_method_shard(
        snakemake.config,
        RunLayout(params.run),
        snakemake.wildcards.method,
        snakemake.wildcards.shard,
        params.method,
        params.lock_dir,
    )
    log.info("%s", summary)
