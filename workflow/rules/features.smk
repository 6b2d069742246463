rule features_shard:
    """CLIP embeddings of one shard's region proposals and narration phrases."""
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
    """Target: the region and phrase embeddings of every shard."""
    input:
        expand(
            f"{RUN}/features/{{shard}}.{{table}}.parquet", shard=SHARDS, table=["regions", "text"]
        ),


rule sam_clip_shard:
    """SAM + CLIP zero-shot baseline for one shard: the proposal nearest each phrase's prompt."""
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
    """Target: the SAM + CLIP baseline's predictions for every shard."""
    input:
        expand(f"{RUN}/predictions/sam_clip/{{shard}}.parquet", shard=SHARDS),
