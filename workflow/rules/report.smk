from nvos.rosa.sweep import is_swept


rule skips:
    """Every item a stage skipped, with its reason -> skipped.csv + reconciliation.csv."""
    input:
        LAYOUT.skip_ledgers(SHARDS, evaluated_methods(config)),
    output:
        skipped=LAYOUT.skipped_csv,
        reconciliation=LAYOUT.reconciliation,
    log:
        LAYOUT.log("skips"),
    benchmark:
        LAYOUT.benchmark("skips")
    script:
        "../scripts/skips.py"


rule report:
    """Results table, HTML page and overlays of the run."""
    input:
        metrics=rules.evaluate.input,
        predictions=expand(
            LAYOUT.predictions("{method}", "{shard}"),
            method=config["evaluate"]["methods"],
            shard=SHARDS,
        ),
        frames=expand(LAYOUT.frames("{shard}"), shard=SHARDS),
        selections=[
            LAYOUT.temporal_selection(m) for m in config["evaluate"]["methods"] if is_temporal(m)
        ],
        masks=expand(
            LAYOUT.masks("{method}", "{shard}"),
            method=[m for m in config["evaluate"]["methods"] if m in propagated_names(config)],
            shard=SHARDS,
        ),
        clips=rules.dataset.output.clips,
        annotations=rules.dataset.output.annotations,
        reconciliation=rules.skips.output.reconciliation,
        sweep=[LAYOUT.sweep_table] if is_swept(config["rosa"]) else [],
    output:
        table=report(
            LAYOUT.report_file("table.md"), category="Results", caption="../report/table.rst"
        ),
        html=report(
            LAYOUT.report_file("index.html"), category="Results", caption="../report/index.rst"
        ),
        overlays=report(
            directory(LAYOUT.report_file("overlays")),
            patterns=["{name}.jpg", "{name}.mp4"],
            category="Qualitative",
            caption="../report/overlays.rst",
        ),
        config=LAYOUT.report_file("config.yaml"),
    params:
        run_config=config,  # all of it: the report states its digest
        run=LAYOUT.root,
        methods=config["evaluate"]["methods"],
        splits=config["evaluate"]["splits"],
        shards=SHARDS,
    log:
        LAYOUT.log("report"),
    benchmark:
        LAYOUT.benchmark("report")
    script:
        "../scripts/report.py"
