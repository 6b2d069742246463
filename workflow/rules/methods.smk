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
