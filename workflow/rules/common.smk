# The run's layout (every path under results/<run>/: nvos.layout.RunLayout), the shard list and
# the prediction methods. Shard ids depend only on the number of clips, so the DAG is known
# before any clip is read (see nvos.shards).
import re

from nvos.features.clip_names import clip_checkpoint, features_params
from nvos.layout import RunLayout
from nvos.methods import FAMILY, evaluated_methods, method_names
from nvos.methods.temporal import base_method as temporal_base, is_temporal
from nvos.methods.base import extra_outputs, gpus
from nvos.methods.propagated import propagated_names
from nvos.segment.scope import (
    segment_chain,
    segment_config,
    segment_layout,
    segment_shared,
    selection_methods,
)
from nvos.workflow import manifest_path, scoring_params, shard_list


LAYOUT = RunLayout.of(config)
MANIFEST = manifest_path(config)
SHARDS = shard_list(config)
ROSA_VARIANTS = method_names(config)["rosa"]
# The segment stage's scope: its layout (<run>/segment/), config and method steps.
SEGMENT_LAYOUT = segment_layout(config, LAYOUT)
SEGMENT_CONFIG = segment_config(config)
SEGMENT_METHODS = segment_chain(config["segment"]["method"])


localrules:
    all,
    frames,
    proposals,
    features,
    sam_clip,
    predict,
    oracle,
    temporal,
    links,
    propagate,
    imported,
    imported_shard,
    free_text,
    evaluate,
    skips,
    segment,
    segment_skips,
    demo_data,
    report,


wildcard_constraints:
    shard=r"s\d{5}",
    method=r"[A-Za-z0-9_.+-]+",
    split=r"[A-Za-z0-9_-]+",
