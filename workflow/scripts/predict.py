"""Rule predict_shard: per phrase and annotated frame, the proposal with the highest g."""

from nvos.logs import stage_log
from nvos.pipeline import run_predict

snakemake = snakemake  # noqa: F821  (injected by Snakemake)

with stage_log(snakemake.log[0], "predict") as log:
    params = snakemake.params
    summary = run_predict(
        params.run_dir,
        snakemake.wildcards.shard,
        snakemake.input.checkpoint,
        snakemake.output.predictions,
        params.rosa,
        snakemake.wildcards.variant,
        params.predict,
        params.lock_dir,
        skipped_out=snakemake.output.skipped,
    )
    log.info("%s", summary)
