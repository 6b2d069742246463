# The prediction methods (nvos.methods.FAMILY): per member, a rule predicting one of its methods
# on one shard (inputs, params, extra outputs and GPUs declared by the member) and a rule
# collecting all its predictions. A new method needs no rule here.
for _member in FAMILY:
    _names = method_names(config)[_member.name]

    rule:
        f"""{_member.doc}"""
        name:
            _member.rule
        input:
            unpack(lambda wc, m=_member: m.inputs(config, LAYOUT, wc.method, wc.shard)),
        output:
            predictions=LAYOUT.predictions("{method}", "{shard}"),
            skipped=LAYOUT.skipped("predictions/{method}", "{shard}"),
            **extra_outputs(_member, LAYOUT, "{method}", "{shard}"),
        wildcard_constraints:
            method="|".join(map(re.escape, _names)) if _names else "(?!)",
        params:
            run=LAYOUT.root,
            method=lambda wc, m=_member: m.params(config, wc.method),
            lock_dir=config["gpu_lock_dir"],
        resources:
            **({"gpu": gpus(_member, config)} if gpus(_member, config) else {}),
        log:
            LAYOUT.log("predict", "{method}", "{shard}"),
        benchmark:
            LAYOUT.benchmark("predict", "{method}", "{shard}")
        script:
            "../scripts/predict.py"

    rule:
        f"""{_member.target_doc}"""
        name:
            _member.target
        input:
            expand(LAYOUT.predictions("{method}", "{shard}"), method=_names, shard=SHARDS),


# The segment stage's scope (nvos.segment.scope): the same members again, for the steps of
# segment.method only, as rules segment_<member rule> writing under <run>/segment/, with the
# config the scope derives (its splits, every phrase).
for _member in FAMILY:
    _names = [n for n in method_names(SEGMENT_CONFIG)[_member.name] if n in SEGMENT_METHODS]
    if not _names:
        continue

    rule:
        f"""Segment stage: {_member.doc[0].lower()}{_member.doc[1:]}"""
        name:
            f"segment_{_member.rule}"
        input:
            unpack(
                lambda wc, m=_member: m.inputs(SEGMENT_CONFIG, SEGMENT_LAYOUT, wc.method, wc.shard)
            ),
        output:
            predictions=SEGMENT_LAYOUT.predictions("{method}", "{shard}"),
            skipped=SEGMENT_LAYOUT.skipped("predictions/{method}", "{shard}"),
            **extra_outputs(_member, SEGMENT_LAYOUT, "{method}", "{shard}"),
        wildcard_constraints:
            method="|".join(map(re.escape, _names)),
        params:
            run=LAYOUT.root,
            scope=SEGMENT_LAYOUT.scope,
            method=lambda wc, m=_member: m.params(SEGMENT_CONFIG, wc.method),
            lock_dir=config["gpu_lock_dir"],
        resources:
            **({"gpu": gpus(_member, SEGMENT_CONFIG)} if gpus(_member, SEGMENT_CONFIG) else {}),
        log:
            SEGMENT_LAYOUT.log("predict", "{method}", "{shard}"),
        benchmark:
            SEGMENT_LAYOUT.benchmark("predict", "{method}", "{shard}")
        script:
            "../scripts/predict.py"
