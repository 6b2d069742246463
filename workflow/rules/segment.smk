# The segment stage (docs/segment.md, nvos.segment.scope): every phrase of every clip of
# segment.splits, a mask on every frame through segment.method. Its method steps are the family's
# rules again in the scope <run>/segment/ (methods.smk); here are the scope's own inputs (its
# phrases, their text features, the link term on its clips) and its output.
SEGMENT_OUTPUT_METHOD = config["segment"]["method"]
SEGMENT_SHARED = segment_shared(config)


# The scope's own phrases (and their text features) unless it shares the run's (segment.phrases:
# narration), its own link term unless the run's covers its splits (nvos.segment.scope).
if "phrases" not in SEGMENT_SHARED:

    rule segment_phrases:
        """Segment stage: the phrases to segment (the run's, or free text: tags stripped, parsed)."""
        input:
            clips=rules.dataset.output.clips,
            phrases=rules.phrases.output.phrases,
        output:
            phrases=SEGMENT_LAYOUT.phrases,
        params:
            mode=config["segment"]["phrases"],
            parser=config["phrases"],
        log:
            SEGMENT_LAYOUT.log("phrases"),
        benchmark:
            SEGMENT_LAYOUT.benchmark("phrases")
        script:
            "../scripts/segment_phrases.py"

    rule segment_text_shard:
        """Segment stage: CLIP embeddings of one shard's phrases to segment."""
        input:
            phrases=SEGMENT_LAYOUT.phrases,
            clips=rules.dataset.output.clips,
            checkpoint=lambda wc: clip_checkpoint(config),
        output:
            text=SEGMENT_LAYOUT.text("{shard}"),
            text_cache=SEGMENT_LAYOUT.feature_cache("{shard}", "text"),
        params:
            features=features_params(config),
            run=LAYOUT.root,
            lock_dir=config["gpu_lock_dir"],
        resources:
            gpu=1,
        log:
            SEGMENT_LAYOUT.log("features", "{shard}"),
        benchmark:
            SEGMENT_LAYOUT.benchmark("features", "{shard}")
        script:
            "../scripts/segment_text.py"


if "links" not in SEGMENT_SHARED:

    rule segment_links_shard:
        """Segment stage: the link term between consecutive keyframes of one shard's clips."""
        input:
            frames=rules.frames_shard.output.frames,
            proposals=rules.proposals_shard.output.proposals,
            clips=rules.dataset.output.clips,
        output:
            links=SEGMENT_LAYOUT.links("{shard}"),
        params:
            links=config["temporal"]["links"],
            splits=SEGMENT_CONFIG["predict"]["splits"],
            folder_fps=config["dataset"]["folder_fps"],
        log:
            SEGMENT_LAYOUT.log("links", "{shard}"),
        benchmark:
            SEGMENT_LAYOUT.benchmark("links", "{shard}")
        script:
            "../scripts/links.py"


rule segment_shard:
    """Segment stage: one shard's masks of every phrase on every frame, with the phrase's words."""
    input:
        masks=SEGMENT_LAYOUT.masks(SEGMENT_OUTPUT_METHOD, "{shard}"),
        phrases=SEGMENT_LAYOUT.phrases,
    output:
        masks=LAYOUT.segment_masks("{shard}"),
    params:
        segment=config["segment"],
    log:
        SEGMENT_LAYOUT.log("segment", "{shard}"),
    benchmark:
        SEGMENT_LAYOUT.benchmark("segment", "{shard}")
    script:
        "../scripts/segment.py"


rule segment_skips:
    """Segment stage: every clip its steps skipped, with the reason (segment/skipped.csv)."""
    input:
        [LAYOUT.skipped(stage, s) for stage in ("frames", "proposals") for s in SHARDS],
        [SEGMENT_LAYOUT.skipped(f"predictions/{m}", s) for m in SEGMENT_METHODS for s in SHARDS],
    output:
        skipped=SEGMENT_LAYOUT.skipped_csv,
        reconciliation=SEGMENT_LAYOUT.reconciliation,
    log:
        SEGMENT_LAYOUT.log("skips"),
    benchmark:
        SEGMENT_LAYOUT.benchmark("skips")
    script:
        "../scripts/skips.py"


rule segment:
    """Target: every phrase of every clip of segment.splits masked on every frame (segment/)."""
    input:
        expand(LAYOUT.segment_masks("{shard}"), shard=SHARDS),
        rules.segment_skips.output,
