rule frames_shard:
    """Decode and sample one shard's frames -> frames/<shard>.parquet."""
    input:
        clips=rules.dataset.output.clips,
        annotations=rules.dataset.output.annotations,
    output:
        frames=LAYOUT.frames("{shard}"),
        skipped=LAYOUT.skipped("frames", "{shard}"),
    params:
        frames=config["frames"],
        folder_fps=config["dataset"]["folder_fps"],
    priority: 50  # the critical path first (docs/pipeline.md#scheduling)
    log:
        LAYOUT.log("frames", "{shard}"),
    benchmark:
        LAYOUT.benchmark("frames", "{shard}")
    script:
        "../scripts/frames.py"


rule frames:
    """Target: the frames of every shard."""
    input:
        expand(LAYOUT.frames("{shard}"), shard=SHARDS),
