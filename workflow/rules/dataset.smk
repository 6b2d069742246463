rule demo_data:
    output:
        directory(LAYOUT.demo_data),
    params:
        demo=config["dataset"]["demo"],
    log:
        LAYOUT.log("demo_data"),
    benchmark:
        LAYOUT.benchmark("demo_data")
    script:
        "../scripts/demo_data.py"


rule dataset:
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
