from nvos.rosa.config import resolve_variant


wildcard_constraints:
    variant="|".join(map(re.escape, ROSA_VARIANTS)) if ROSA_VARIANTS else "(?!)",


rule train:
    """Train one ROSA variant (VNA + RPA losses); keep the weights with the best validation VNA."""
    input:
        clips=rules.dataset.output.clips,
        phrases=rules.phrases.output.phrases,
        regions=expand(LAYOUT.regions("{shard}"), shard=SHARDS),
        text=expand(LAYOUT.text("{shard}"), shard=SHARDS),
        regions_cache=expand(LAYOUT.feature_cache("{shard}", "regions"), shard=SHARDS),
        text_cache=expand(LAYOUT.feature_cache("{shard}", "text"), shard=SHARDS),
        proposals=expand(LAYOUT.proposals("{shard}"), shard=SHARDS),
        frames=expand(LAYOUT.frames("{shard}"), shard=SHARDS),
    output:
        checkpoint=LAYOUT.checkpoint("{variant}"),
        train_log=LAYOUT.train_log("{variant}"),
    params:
        rosa=lambda wc: resolve_variant(config["rosa"], wc.variant).to_dict(),
        run=LAYOUT.root,
        shards=SHARDS,
        lock_dir=config["gpu_lock_dir"],
    resources:
        gpu=config["rosa"]["train"]["gpus"],
    priority: 20  # the critical path first (docs/pipeline.md#scheduling)
    log:
        LAYOUT.log("train", "{variant}"),
    benchmark:
        LAYOUT.benchmark("train", "{variant}")
    script:
        "../scripts/train.py"
