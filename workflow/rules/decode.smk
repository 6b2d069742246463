# Temporal decoding (docs/temporal.md): the link term between consecutive keyframes per shard, and
# per <base>+temporal method the decoder's settings chosen on val. The methods' own shard jobs
# come from the family (methods.smk, member nvos.methods.temporal.Temporal). The decoded methods:
# the run's, and the steps of segment.method (the segment stage decodes with their selection).
TEMPORAL_METHODS = list(dict.fromkeys(method_names(config)["temporal"] + selection_methods(config)))


rule links_shard:
    """Link term (IoU after DIS optical flow) between consecutive keyframes of one shard's clips."""
    input:
        frames=rules.frames_shard.output.frames,
        proposals=rules.proposals_shard.output.proposals,
        clips=rules.dataset.output.clips,
    output:
        links=LAYOUT.links("{shard}"),
    params:
        links=config["temporal"]["links"],
        splits=config["predict"]["splits"],
        folder_fps=config["dataset"]["folder_fps"],
    log:
        LAYOUT.log("links", "{shard}"),
    benchmark:
        LAYOUT.benchmark("links", "{shard}")
    script:
        "../scripts/links.py"


rule links:
    """Target: the link term of every shard."""
    input:
        expand(LAYOUT.links("{shard}"), shard=SHARDS),


rule temporal_select:
    """The decoder's settings of one <base>+temporal method: the grid scored on val only."""
    input:
        scores=lambda wc: [LAYOUT.scores(temporal_base(wc.method), s) for s in SHARDS],
        links=expand(LAYOUT.links("{shard}"), shard=SHARDS),
        proposals=expand(LAYOUT.proposals("{shard}"), shard=SHARDS),
        frames=expand(LAYOUT.frames("{shard}"), shard=SHARDS),
        clips=rules.dataset.output.clips,
        annotations=rules.dataset.output.annotations,
    output:
        selection=LAYOUT.temporal_selection("{method}"),
        grid=LAYOUT.temporal_grid("{method}"),
    wildcard_constraints:
        method="|".join(map(re.escape, TEMPORAL_METHODS)) if TEMPORAL_METHODS else "(?!)",
    params:
        decode=config["temporal"]["decode"],
        protocol=config["evaluate"]["protocol"],
        bound_th=config["evaluate"]["bound_th"],
    log:
        LAYOUT.log("temporal_select", "{method}"),
    benchmark:
        LAYOUT.benchmark("temporal_select", "{method}")
    script:
        "../scripts/temporal_select.py"
