rule oracle_shard:
    """SAM upper bound for one shard: the best-IoU proposal per tagged object and frame."""
    input:
        clips=rules.dataset.output.clips,
        annotations=rules.dataset.output.annotations,
        proposals=rules.proposals_shard.output.proposals,
    output:
        predictions=f"{RUN}/predictions/oracle/{{shard}}.parquet",
        skipped=f"{RUN}/skipped/predictions/oracle/{{shard}}.parquet",
    log:
        f"{RUN}/logs/oracle/{{shard}}.log",
    benchmark:
        f"{RUN}/benchmarks/oracle/{{shard}}.tsv"
    script:
        "../scripts/oracle.py"


rule oracle:
    """Target: the oracle's predictions for every shard."""
    input:
        expand(f"{RUN}/predictions/oracle/{{shard}}.parquet", shard=SHARDS),


rule evaluate_method:
    """J, F and J&F (DAVIS semantics) of one method on one split."""
    input:
        predictions=lambda wc: expand(
            f"{RUN}/predictions/{wc.method}/{{shard}}.parquet", shard=SHARDS
        ),
        clips=rules.dataset.output.clips,
        annotations=rules.dataset.output.annotations,
    output:
        per_object=f"{RUN}/metrics/{{method}}/{{split}}/per_object.csv",
        summary=f"{RUN}/metrics/{{method}}/{{split}}/summary.json",
    params:
        evaluate=config["evaluate"],
    threads: config["evaluate"]["workers"]
    resources:
        mem_mb=lambda wc, attempt: 4000 * attempt,
    log:
        f"{RUN}/logs/evaluate/{{method}}/{{split}}.log",
    benchmark:
        f"{RUN}/benchmarks/evaluate/{{method}}/{{split}}.tsv"
    script:
        "../scripts/evaluate.py"


rule evaluate:
    """Target: the metrics of every evaluate.methods on every evaluate.splits."""
    input:
        expand(
            f"{RUN}/metrics/{{method}}/{{split}}/summary.json",
            method=config["evaluate"]["methods"],
            split=config["evaluate"]["splits"],
        ),
