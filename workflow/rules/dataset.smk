rule demo_data:
    """Generate the embedded demo (videos + manifest), used when dataset.manifest is null."""
    output:
        directory(f"{RUN}/demo_data"),
    params:
        demo=config["dataset"]["demo"],
    threads: workflow.cores  # videos rendered side by side; nothing else can run before it
    log:
        f"{RUN}/logs/demo_data.log",
    benchmark:
        f"{RUN}/benchmarks/demo_data.tsv"
    script:
        "../scripts/demo_data.py"


rule dataset:
    """Validate the manifest (every bad line at once) -> clips.parquet + annotations.parquet."""
    input:
        manifest=MANIFEST,
    output:
        clips=f"{RUN}/clips.parquet",
        annotations=f"{RUN}/annotations.parquet",
    params:
        dataset=config["dataset"],
        shards=config["shards"],
    log:
        f"{RUN}/logs/dataset.log",
    benchmark:
        f"{RUN}/benchmarks/dataset.tsv"
    script:
        "../scripts/dataset.py"
