rule frames_shard:
    input:
        clips=rules.dataset.output.clips,
        annotations=rules.dataset.output.annotations,
    output:
        frames=LAYOUT.frames("{shard}"),
        skipped=LAYOUT.skipped("frames", "{shard}"),
    params:
        frames=config["frames"],
        folder_fps=config["dataset"]["folder_fps"],
    log:
        LAYOUT.log("frames", "{shard}"),
    benchmark:
        LAYOUT.benchmark("frames", "{shard}")
    script:
        "../scripts/frames.py"


rule frames:
    input:
        expand(LAYOUT.frames("{shard}"), shard=SHARDS),
