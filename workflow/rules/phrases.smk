rule phrases:
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
