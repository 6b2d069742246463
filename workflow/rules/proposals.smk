rule proposals_shard:
    """Class-agnostic mask proposals (SAM or classical) of one shard's frames."""
    input:
        rules.frames_shard.output.frames,
    output:
        proposals=f"{RUN}/proposals/{{shard}}.parquet",
        skipped=f"{RUN}/skipped/proposals/{{shard}}.parquet",
    params:
        proposals=config["proposals"],
        lock_dir=config["gpu_lock_dir"],
    resources:
        gpu=1,
    log:
        f"{RUN}/logs/proposals/{{shard}}.log",
    benchmark:
        f"{RUN}/benchmarks/proposals/{{shard}}.tsv"
    script:
        "../scripts/proposals.py"


rule proposals:
    """Target: the mask proposals of every shard."""
    input:
        expand(f"{RUN}/proposals/{{shard}}.parquet", shard=SHARDS),
