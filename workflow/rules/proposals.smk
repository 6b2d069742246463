rule proposals_shard:
    """Class-agnostic mask proposals (SAM or classical) of one shard's frames."""
    input:
        rules.frames_shard.output.frames,
    output:
        proposals=LAYOUT.proposals("{shard}"),
        skipped=LAYOUT.skipped("proposals", "{shard}"),
    params:
        proposals=config["proposals"],
        lock_dir=config["gpu_lock_dir"],
    resources:
        gpu=1,
    priority: 40  # the critical path first (docs/pipeline.md#scheduling)
    log:
        LAYOUT.log("proposals", "{shard}"),
    benchmark:
        LAYOUT.benchmark("proposals", "{shard}")
    script:
        "../scripts/proposals.py"


rule proposals:
    """Target: the mask proposals of every shard."""
    input:
        expand(LAYOUT.proposals("{shard}"), shard=SHARDS),
