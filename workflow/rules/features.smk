rule features_shard:
    """CLIP embeddings of one shard's region proposals and narration phrases."""
    input:
        frames=rules.frames_shard.output.frames,
        proposals=rules.proposals_shard.output.proposals,
        phrases=rules.phrases.output.phrases,
        clips=rules.dataset.output.clips,
        checkpoint=lambda wc: clip_checkpoint(config),
    output:
        regions=LAYOUT.regions("{shard}"),
        text=LAYOUT.text("{shard}"),
        regions_cache=LAYOUT.feature_cache("{shard}", "regions"),
        text_cache=LAYOUT.feature_cache("{shard}", "text"),
        skipped=LAYOUT.skipped("features", "{shard}"),
    params:
        features=features_params(config),
        run=LAYOUT.root,
        lock_dir=config["gpu_lock_dir"],
    resources:
        gpu=1,
    priority: 30  # the critical path first (docs/pipeline.md#scheduling)
    log:
        LAYOUT.log("features", "{shard}"),
    benchmark:
        LAYOUT.benchmark("features", "{shard}")
    script:
        "../scripts/features.py"


rule features:
    """Target: the region and phrase embeddings of every shard."""
    input:
        expand(LAYOUT.regions("{shard}"), shard=SHARDS),
        expand(LAYOUT.text("{shard}"), shard=SHARDS),
