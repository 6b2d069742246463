rule phrases:
    """Object phrases of every narration (tags or a parser) -> phrases.parquet."""
    input:
        rules.dataset.output.clips,
    output:
        phrases=LAYOUT.phrases,
        skipped=LAYOUT.skipped("phrases"),
    params:
        phrases=config["phrases"],
    log:
        LAYOUT.log("phrases"),
    benchmark:
        LAYOUT.benchmark("phrases")
    script:
        "../scripts/phrases.py"
