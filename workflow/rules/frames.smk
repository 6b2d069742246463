rule frames_shard:
    """Decode and sample one shard's frames -> frames/<shard>.parquet."""
    input:
        clips=rules.dataset.output.clips,
        annotations=rules.dataset.output.annotations,
    output:
        frames=f"{RUN}/frames/{{shard}}.parquet",
        skipped=f"{RUN}/skipped/frames/{{shard}}.parquet",
    params:
        frames=config["frames"],
        folder_fps=config["dataset"]["folder_fps"],
    log:
        f"{RUN}/logs/frames/{{shard}}.log",
    benchmark:
        f"{RUN}/benchmarks/frames/{{shard}}.tsv"
    script:
        "../scripts/frames.py"


rule frames:
    """Target: the frames of every shard."""
    input:
        expand(f"{RUN}/frames/{{shard}}.parquet", shard=SHARDS),
