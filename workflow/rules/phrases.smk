rule phrases:
    """Object phrases of every narration (tags or a parser) -> phrases.parquet."""
    input:
        rules.dataset.output.clips,
    output:
        phrases=f"{RUN}/phrases.parquet",
        skipped=f"{RUN}/skipped/phrases.parquet",
    params:
        phrases=config["phrases"],
    log:
        f"{RUN}/logs/phrases.log",
    benchmark:
        f"{RUN}/benchmarks/phrases.tsv"
    script:
        "../scripts/phrases.py"
