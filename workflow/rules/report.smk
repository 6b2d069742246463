rule report:
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
    output:
        table=report(f"{RUN}/report/table.md", category="Results", caption="../report/table.rst"),
        html=report(f"{RUN}/report/index.html", category="Results", caption="../report/index.rst"),
        overlays=report(
            directory(f"{RUN}/report/overlays"),
            patterns=["{name}.jpg"],
            category="Qualitative",
            caption="../report/overlays.rst",
        ),
    params:
        report=config["report"],
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
