"""Rule links_shard (workflow/rules/decode.smk): the link term of one shard
(nvos.temporal.links)."""

from nvos.logs import stage_log
from nvos.temporal.links import build_links, links_settings

snakemake = snakemake  # noqa: F821  (injected by Snakemake)

with stage_log(snakemake.log[0], "links") as log:
    params = snakemake.params
    summary = build_links(
        snakemake.input.frames,
        snakemake.input.proposals,
        snakemake.input.clips,
        snakemake.wildcards.shard,
        snakemake.output.links,
        links_settings(params.links),
        list(params.splits),
        float(params.folder_fps),
    )
    log.info("%s", summary)
