rule phrases:
    """Object phrases of every narration (tags or a parser) -> phrases.parquet."""
    input:
        rules.dataset.output.clips,
    output:
        phrases=LAYOUT.phrases,
        skipped=LAYOUT.skipped("phrases"),
    params:
        phrases=config["phrases"],
    priority: 40  # the critical path first (docs/pipeline.md#scheduling)
    log:
        LAYOUT.log("phrases"),
    benchmark:
        LAYOUT.benchmark("phrases")
    script:
        "../scripts/phrases.py"
