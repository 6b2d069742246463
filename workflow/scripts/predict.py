"""Rules sam_clip_shard, oracle_shard, predict_shard, ... and their segment_* twins
(workflow/rules/methods.smk): one method's predictions on one shard (nvos.methods), in the run or
in the segment stage's scope (nvos.segment.scope)."""

from nvos.layout import RunLayout
from nvos.logs import stage_log
from nvos.methods import predict_method_shard
from nvos.segment.scope import scope_config, scope_layout

snakemake = snakemake  # noqa: F821  (injected by Snakemake)

with stage_log(snakemake.log[0], "predict") as log:
    params = snakemake.params
    scope = getattr(params, "scope", "")
    summary = predict_method_shard(
        scope_config(snakemake.config, scope),
        scope_layout(snakemake.config, RunLayout(params.run), scope),
        snakemake.wildcards.method,
        snakemake.wildcards.shard,
        params.method,
        params.lock_dir,
    )
    log.info("%s", summary)
