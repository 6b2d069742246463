from nvos.rosa.config import variant_params


ROSA_VARIANTS = list(config["rosa"]["variants"])


wildcard_constraints:
    variant="|".join(ROSA_VARIANTS) if ROSA_VARIANTS else "(?!)",


rule train:
    """Train one ROSA variant (VNA + RPA losses); keep the weights with the best validation VNA."""
    input:
        clips=rules.dataset.output.clips,
        phrases=rules.phrases.output.phrases,
        regions=expand(f"{RUN}/features/{{shard}}.regions.parquet", shard=SHARDS),
        text=expand(f"{RUN}/features/{{shard}}.text.parquet", shard=SHARDS),
        proposals=expand(f"{RUN}/proposals/{{shard}}.parquet", shard=SHARDS),
        frames=expand(f"{RUN}/frames/{{shard}}.parquet", shard=SHARDS),
    output:
        checkpoint=f"{RUN}/models/{{variant}}/checkpoint.pt",
        train_log=f"{RUN}/models/{{variant}}/train_log.csv",
    params:
        rosa=lambda wc: variant_params(config["rosa"], wc.variant),
        run_dir=RUN,
        shards=SHARDS,
        lock_dir=config["gpu_lock_dir"],
    resources:
        gpu=config["rosa"]["train"]["gpus"],
    log:
        f"{RUN}/logs/train/{{variant}}.log",
    benchmark:
        f"{RUN}/benchmarks/train/{{variant}}.tsv"
    script:
        "../scripts/train.py"


rule predict_shard:
    """Masks for one shard's tagged phrases from a trained ROSA variant."""
    input:
        clips=rules.dataset.output.clips,
        phrases=rules.phrases.output.phrases,
        regions=f"{RUN}/features/{{shard}}.regions.parquet",
        text=f"{RUN}/features/{{shard}}.text.parquet",
        proposals=f"{RUN}/proposals/{{shard}}.parquet",
        frames=f"{RUN}/frames/{{shard}}.parquet",
        checkpoint=f"{RUN}/models/{{variant}}/checkpoint.pt",
    output:
        predictions=f"{RUN}/predictions/{{variant}}/{{shard}}.parquet",
        skipped=f"{RUN}/skipped/predictions/{{variant}}/{{shard}}.parquet",
    params:
        rosa=lambda wc: variant_params(config["rosa"], wc.variant),
        predict=config["predict"],
        run_dir=RUN,
        lock_dir=config["gpu_lock_dir"],
    resources:
        gpu=1,
    log:
        f"{RUN}/logs/predict/{{variant}}/{{shard}}.log",
    benchmark:
        f"{RUN}/benchmarks/predict/{{variant}}/{{shard}}.tsv"
    script:
        "../scripts/predict.py"


rule predict:
    """Target: the predictions of every ROSA variant for every shard."""
    input:
        expand(f"{RUN}/predictions/{{variant}}/{{shard}}.parquet", variant=ROSA_VARIANTS, shard=SHARDS),
