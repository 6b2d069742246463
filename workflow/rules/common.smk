# Shared paths and the shard list. Shard ids depend only on the number of clips, so the DAG is
# known before any clip is read (see nvos.shards).
import os

from nvos.workflow import run_dir, manifest_path, shard_list


RUN = run_dir(config)
MANIFEST = manifest_path(config)
SHARDS = shard_list(config)


localrules:
    all,
    frames,
    proposals,
    features,
    sam_clip,
    predict,
    oracle,
    evaluate,
    skips,
    demo_data,
    report,


wildcard_constraints:
    shard=r"s\d{5}",
    method=r"[A-Za-z0-9_.-]+",
    split=r"[A-Za-z0-9_-]+",


def clip_checkpoint(wildcards):
    """The local CLIP checkpoint as an input (so replacing the file reruns), or nothing."""
    pretrained = config["features"]["clip"]["pretrained"]
    return [pretrained] if pretrained and os.path.isfile(pretrained) else []
