rule phrases:
    input:
        rules.dataset.output.clips,
    output:
        f"{RUN}/phrases.parquet",
    params:
        phrases=config["phrases"],
    log:
        f"{RUN}/logs/phrases.log",
    benchmark:
        f"{RUN}/benchmarks/phrases.tsv"
    script:
        "../scripts/phrases.py"
