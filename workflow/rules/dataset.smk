rule demo_data:
    output:
        directory(f"{RUN}/demo_data"),
    params:
        demo=config["dataset"]["demo"],
    log:
        f"{RUN}/logs/demo_data.log",
    benchmark:
        f"{RUN}/benchmarks/demo_data.tsv"
    script:
        "../scripts/demo_data.py"


rule dataset:
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
