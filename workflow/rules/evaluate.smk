rule evaluate_method:
    """J, F and J&F (DAVIS semantics) of one method on one split."""
    input:
        predictions=lambda wc: LAYOUT.method_predictions(wc.method, SHARDS),
        clips=rules.dataset.output.clips,
        annotations=rules.dataset.output.annotations,
    output:
        per_object=LAYOUT.per_object("{method}", "{split}"),
        summary=LAYOUT.summary("{method}", "{split}"),
    params:
        evaluate=scoring_params(config),
    threads: config["evaluate"]["workers"]
    resources:
        mem_mb=lambda wc, attempt: 4000 * attempt,
    log:
        LAYOUT.log("evaluate", "{method}", "{split}"),
    benchmark:
        LAYOUT.benchmark("evaluate", "{method}", "{split}")
    script:
        "../scripts/evaluate.py"


rule evaluate:
    """Target: the metrics of every evaluate.methods on every evaluate.splits."""
    input:
        expand(
            LAYOUT.summary("{method}", "{split}"),
            method=config["evaluate"]["methods"],
            split=config["evaluate"]["splits"],
        ),
