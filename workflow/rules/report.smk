# Prediction methods whose skips are accounted for (none when nothing is evaluated).
SKIP_METHODS = [
    m
    for m in config["evaluate"]["methods"]
    if config["evaluate"]["splits"] and (m in ("sam_clip", "oracle") or m in ROSA_VARIANTS)
]


rule skips:
    """Every item a stage skipped, with its reason -> skipped.csv + reconciliation.csv."""
    input:
        expand(f"{RUN}/skipped/frames/{{shard}}.parquet", shard=SHARDS),
        expand(f"{RUN}/skipped/proposals/{{shard}}.parquet", shard=SHARDS),
        f"{RUN}/skipped/phrases.parquet",
        expand(f"{RUN}/skipped/features/{{shard}}.parquet", shard=SHARDS),
        expand(
            f"{RUN}/skipped/predictions/{{method}}/{{shard}}.parquet",
            method=SKIP_METHODS,
            shard=SHARDS,
        ),
    output:
        skipped=f"{RUN}/skipped.csv",
        reconciliation=f"{RUN}/reconciliation.csv",
    log:
        f"{RUN}/logs/skips.log",
    benchmark:
        f"{RUN}/benchmarks/skips.tsv"
    script:
        "../scripts/skips.py"


rule report:
    """Results table, HTML page and overlays of the run."""
    input:
        metrics=rules.evaluate.input,
        predictions=expand(
            f"{RUN}/predictions/{{method}}/{{shard}}.parquet",
            method=config["evaluate"]["methods"],
            shard=SHARDS,
        ),
        frames=expand(f"{RUN}/frames/{{shard}}.parquet", shard=SHARDS),
        clips=rules.dataset.output.clips,
        annotations=rules.dataset.output.annotations,
        reconciliation=rules.skips.output.reconciliation,
    output:
        table=report(f"{RUN}/report/table.md", category="Results", caption="../report/table.rst"),
        html=report(f"{RUN}/report/index.html", category="Results", caption="../report/index.rst"),
        overlays=report(
            directory(f"{RUN}/report/overlays"),
            patterns=["{name}.jpg"],
            category="Qualitative",
            caption="../report/overlays.rst",
        ),
        config=f"{RUN}/report/config.yaml",
    params:
        run_config=config,  # all of it: the report states its digest
        metrics_dir=f"{RUN}/metrics",
        frames_dir=f"{RUN}/frames",
        predictions_dir=f"{RUN}/predictions",
        out_dir=f"{RUN}/report",
    log:
        f"{RUN}/logs/report.log",
    benchmark:
        f"{RUN}/benchmarks/report.tsv"
    script:
        "../scripts/report.py"
