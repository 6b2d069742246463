"""Rule temporal_select (workflow/rules/decode.smk): a <base>+temporal method's decoder settings,
chosen on val (nvos.temporal.select)."""

from nvos.logs import stage_log
from nvos.temporal.select import SelectInputs, select_settings

snakemake = snakemake  # noqa: F821  (injected by Snakemake)

with stage_log(snakemake.log[0], "temporal_select") as log:
    inputs, params = snakemake.input, snakemake.params
    selection = select_settings(
        SelectInputs(
            scores=list(inputs.scores),
            links=list(inputs.links),
            proposals=list(inputs.proposals),
            frames=list(inputs.frames),
            clips=inputs.clips,
            annotations=inputs.annotations,
        ),
        list(params.decode["link_weight"]),
        list(params.decode["absent_quantile"]),
        snakemake.output.selection,
        snakemake.output.grid,
        snakemake.wildcards.method,
        params.protocol,
        float(params.bound_th),
    )
    log.info("chose %s", {k: selection[k] for k in ("link_weight", "absent_quantile", "val")})
