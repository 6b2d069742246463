rule features_shard:
    input:
        frames=rules.frames_shard.output.frames,
        proposals=rules.proposals_shard.output.proposals,
        phrases=rules.phrases.output.phrases,
        clips=rules.dataset.output.clips,
        checkpoint=clip_checkpoint,
    output:
        regions=f"{RUN}/features/{{shard}}.regions.parquet",
        text=f"{RUN}/features/{{shard}}.text.parquet",
        skipped=f"{RUN}/skipped/features/{{shard}}.parquet",
    params:
        features={k: v for k, v in config["features"].items() if k != "prompt"},
        lock_dir=config["gpu_lock_dir"],
    resources:
        gpu=1,
    log:
        f"{RUN}/logs/features/{{shard}}.log",
    benchmark:
        f"{RUN}/benchmarks/features/{{shard}}.tsv"
    script:
        "../scripts/features.py"


rule features:
    input:
        expand(
            f"{RUN}/features/{{shard}}.{{table}}.parquet", shard=SHARDS, table=["regions", "text"]
        ),


rule sam_clip_shard:
    input:
        regions=rules.features_shard.output.regions,
        proposals=rules.proposals_shard.output.proposals,
        frames=rules.frames_shard.output.frames,
        phrases=rules.phrases.output.phrases,
        clips=rules.dataset.output.clips,
        checkpoint=clip_checkpoint,
    output:
        predictions=f"{RUN}/predictions/sam_clip/{{shard}}.parquet",
        skipped=f"{RUN}/skipped/predictions/sam_clip/{{shard}}.parquet",
    params:
        features=config["features"],
        splits=config["evaluate"]["splits"],
        lock_dir=config["gpu_lock_dir"],
    resources:
        gpu=1,
    log:
        f"{RUN}/logs/sam_clip/{{shard}}.log",
    benchmark:
        f"{RUN}/benchmarks/sam_clip/{{shard}}.tsv"
    script:
        "../scripts/sam_clip.py"


rule sam_clip:
    input:
        expand(f"{RUN}/predictions/sam_clip/{{shard}}.parquet", shard=SHARDS),
