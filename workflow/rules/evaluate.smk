rule seen_vocabulary:
    """Training vocabulary and head nouns of the tagged phrases (seen / unseen breakdown), once."""
    input:
        clips=rules.dataset.output.clips,
    output:
        seen=LAYOUT.seen_vocabulary,
    params:
        train_split=config["evaluate"]["train_split"],
        spacy_model=config["evaluate"]["spacy_model"],
    log:
        LAYOUT.log("seen_vocabulary"),
    benchmark:
        LAYOUT.benchmark("seen_vocabulary")
    script:
        "../scripts/seen_vocabulary.py"


rule evaluate_method:
    """J, F and J&F (DAVIS semantics) of one method on one split."""
    input:
        predictions=lambda wc: LAYOUT.method_predictions(wc.method, SHARDS),
        clips=rules.dataset.output.clips,
        annotations=rules.dataset.output.annotations,
        **(
            {"seen": LAYOUT.seen_vocabulary}
            if config["evaluate"]["train_split"] and config["evaluate"]["seen_unseen"]
            else {}
        ),
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
