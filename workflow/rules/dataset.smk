rule demo_data:
    """Generate the embedded demo (videos + manifest), used when dataset.manifest is null."""
    output:
        directory(LAYOUT.demo_data),
    params:
        demo=config["dataset"]["demo"],
    threads: workflow.cores  # videos rendered side by side; nothing else can run before it
    log:
        LAYOUT.log("demo_data"),
    benchmark:
        LAYOUT.benchmark("demo_data")
    script:
        "../scripts/demo_data.py"


rule dataset:
    """Validate the manifest (every bad line at once) -> clips.parquet + annotations.parquet."""
    input:
        manifest=MANIFEST,
    output:
        clips=LAYOUT.clips,
        annotations=LAYOUT.annotations,
    params:
        dataset=config["dataset"],
        shards=config["shards"],
    log:
        LAYOUT.log("dataset"),
    benchmark:
        LAYOUT.benchmark("dataset")
    script:
        "../scripts/dataset.py"
