"""Cross-checks of a schema-valid configuration, before any job runs.

The schema (``config/schema.yaml``) checks each key on its own; :func:`config_problems` checks the
keys against each other, against what is installed (CLIP model configs, spaCy pipelines) or on
disk (checkpoint files), and against the clips per split of the manifest. The Snakefile runs it
at workflow start (:func:`nvos.workflow.start_workflow`) and ``nvos validate`` after validating a
manifest, so a mistake is one message naming the key before hours of frames, proposals and
features.

Imports neither torch, open_clip nor spaCy: the Snakefile imports this module.
"""

from __future__ import annotations

import difflib
import importlib.util
import os
from collections.abc import Mapping
from typing import Any

from nvos.config import ConfigError, invalid
from nvos.features.clip_names import REMOTE_PREFIXES, SHIPPED_CONFIGS_DIR, known_clip_models
from nvos.methods import FAMILY, evaluated_methods, method_names
from nvos.rosa.config import MIN_VAL_CLIPS, TRAIN_SPLIT, VAL_SPLIT, resolve_variant
from nvos.rosa.sweep import sweep_names
from nvos.segment.scope import segment_problems

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt")
"""A ``features.clip.pretrained`` value ending so is a file, not an open_clip tag."""


def _listed(values: Any) -> str:
    return ", ".join(str(v) for v in values) or "none"


def sam_checkpoint_problem(checkpoint: str | None, random_weights: bool) -> str | None:
    """Why ``proposals.sam`` cannot run (no checkpoint, a missing file, or both set), or None."""
    if checkpoint is None and not random_weights:
        return (
            "proposals.sam.checkpoint: SAM needs a checkpoint file (e.g. sam_vit_h_4b8939.pth); "
            "set proposals.sam.random_weights: true to run random weights on purpose"
        )
    if checkpoint is not None and random_weights:
        return (
            "proposals.sam.random_weights: true contradicts proposals.sam.checkpoint "
            f"{checkpoint!r}; set one of them"
        )
    if checkpoint is not None and not os.path.isfile(checkpoint):
        return f"proposals.sam.checkpoint: {checkpoint}: file not found"
    return None


def folder_checkpoint_problem(key: str, folder: str | None, random_weights: bool) -> str | None:
    """Why the config ``key`` (a checkpoint folder) cannot be used with ``random_weights``, or
    None: no folder without random weights, both set, or a folder without ``config.json``."""
    flag = key.rsplit(".", 1)[0] + ".random_weights"
    if folder is None and not random_weights:
        return f"{key}: a local checkpoint folder is needed; set {flag}: true for random weights"
    if folder is not None and random_weights:
        return f"{flag}: true contradicts {key} {folder!r}; set one of them"
    if folder is not None and not os.path.isfile(os.path.join(folder, "config.json")):
        return f"{key}: {folder}: not a checkpoint folder (no config.json)"
    return None


def trained_variants(config: Mapping[str, Any]) -> list[str]:
    """The ROSA variants a full run trains: those evaluated, or all when nothing is evaluated."""
    variants = list(config["rosa"]["variants"])
    if not config["evaluate"]["splits"]:
        return variants
    return [m for m in config["evaluate"]["methods"] if m in variants]


def _method_problems(config: Mapping[str, Any]) -> list[str]:
    owners = method_names(config)  # the family's members and their methods (nvos.methods)
    variants = owners["rosa"]
    baselines = {name for owner, names in owners.items() if owner != "rosa" for name in names}
    known = sorted({name for names in owners.values() for name in names})
    problems = [
        f"rosa.variants.{name}: a variant cannot be named like the baseline {name!r}"
        for name in variants
        if name in baselines
    ]
    scoring = sorted({n for m in FAMILY if m.scores_regions for n in owners[m.name]})
    for base in config["temporal"]["decode"]["methods"]:
        if base not in scoring:
            problems.append(
                f"temporal.decode.methods: {base!r} does not score regions (decodable: "
                f"{_listed(scoring)})"
            )
    computed = {name for owner, names in owners.items() if owner != "imported" for name in names}
    problems += [
        f"evaluate.imported.{name}: an imported method cannot be named like the computed method "
        f"{name!r}"
        for name in owners["imported"]
        if name in computed
    ]
    for method in config["evaluate"]["methods"]:
        if method not in known:
            problems.append(
                f"evaluate.methods: unknown method {method!r} (known: {_listed(known)}: "
                "the baselines, the rosa.variants, <base>+temporal, <keyframe method>+<backend> "
                "and evaluate.imported)"
            )
    report = config["report"]
    methods = config["evaluate"]["methods"]
    overlay = report.get("overlay_method")
    if overlay is not None and overlay not in methods:
        problems.append(
            f"report.overlay_method: {overlay!r} is not one of evaluate.methods "
            f"({_listed(methods)})"
        )
    for method in report.get("methods") or []:
        if method not in methods:
            problems.append(
                f"report.methods: {method!r} is not one of evaluate.methods ({_listed(methods)})"
            )
    return problems


def _propagate_problems(config: Mapping[str, Any]) -> list[str]:
    """Keyframe methods of ``temporal.propagate.methods`` are family methods (not propagated
    ones of the same name); the ``sam2`` backend has a model config, a checkpoint on disk and its
    package."""
    from nvos.methods.propagated import propagate_group, propagated_names

    group = propagate_group(config)
    owners = method_names(config)
    known = sorted({n for owner, names in owners.items() if owner != "propagated" for n in names})
    problems = [
        f"temporal.propagate.methods: unknown keyframe method {name!r} (known: {_listed(known)})"
        for name in group.get("methods", [])
        if name not in known and name not in propagated_names(config)
    ]
    sam2 = group.get("sam2", {})
    if group.get("backend") == "sam2" and group.get("methods"):
        if not sam2.get("config"):
            problems.append(
                "temporal.propagate.sam2.config: backend sam2 needs a sam2 model config "
                "(e.g. configs/sam2.1/sam2.1_hiera_l.yaml)"
            )
        if sam2.get("checkpoint") and not os.path.isfile(sam2["checkpoint"]):
            problems.append(
                f"temporal.propagate.sam2.checkpoint: {sam2['checkpoint']}: file not found"
            )
        if not _installed("sam2"):
            problems.append(
                "temporal.propagate.backend: sam2 needs the sam2 package (SAM2_BUILD_CUDA=0 pip "
                "install --no-build-isolation sam2==1.1.0; docs/temporal.md#installing-sam2)"
            )
    return problems


def _variant_problems(config: Mapping[str, Any]) -> list[str]:
    """Each variant's overrides (and each ``rosa.sweep`` point's) merged into the ``rosa`` group:
    schema, then cross-field rules."""
    problems = []
    for name in [*config["rosa"]["variants"], *sweep_names(config["rosa"])]:
        try:
            resolve_variant(config["rosa"], name)
        except ConfigError as error:  # the schema's lines name their key paths, others do not
            problems += error.problems or [f"rosa.variants.{name}: {error}"]
    return problems


def _split_problems(config: Mapping[str, Any], counts: Mapping[str, int] | None) -> list[str]:
    """Split names against ``dataset.splits`` and, when known, the clips per split."""
    allowed = config["dataset"]["splits"]
    evaluate, predict = config["evaluate"], config["predict"]
    problems = []
    named = [("evaluate.splits", s) for s in evaluate["splits"]]
    named += [("predict.splits", s) for s in predict["splits"]]
    if evaluate.get("seen_unseen") and evaluate.get("train_split") is not None:
        named.append(("evaluate.train_split", evaluate["train_split"]))
    keys: dict[str, list[str]] = {}  # split -> the keys naming it, so one line per split
    for key, split in named:
        keys.setdefault(split, []).append(key)
    for split, where in keys.items():
        if split not in allowed:
            problems.append(
                f"{', '.join(where)}: {split!r} is not in dataset.splits ({_listed(allowed)})"
            )
        elif counts is not None and not counts.get(split):
            problems.append(
                f"{', '.join(where)}: no clip of the manifest has split {split!r} "
                f"({_counted(counts)})"
            )
    rosa_rows = [m for m in evaluate["methods"] if m in config["rosa"]["variants"]]
    unpredicted = [s for s in evaluate["splits"] if s in allowed and s not in predict["splits"]]
    if rosa_rows and unpredicted:
        problems.append(
            f"predict.splits: evaluate.splits scores {_listed(unpredicted)} for the ROSA rows "
            f"({_listed(rosa_rows)}), which predict.splits ({_listed(predict['splits'])}) "
            "does not predict; add them to predict.splits"
        )
    return problems


def _counted(counts: Mapping[str, int]) -> str:
    return "its splits: " + (_listed(f"{s} {n}" for s, n in sorted(counts.items())) or "none")


def _training_problems(config: Mapping[str, Any], counts: Mapping[str, int]) -> list[str]:
    """A train split to learn from and, where a checkpoint is chosen by it, a usable val split."""
    variants = trained_variants(config)
    if not variants:
        return []
    if not counts.get(TRAIN_SPLIT):
        return [
            f"rosa.variants: {_listed(variants)} train on split {TRAIN_SPLIT!r}, but no clip of "
            f"the manifest has it ({_counted(counts)})"
        ]
    n_val = counts.get(VAL_SPLIT, 0)
    if not 0 < n_val < MIN_VAL_CLIPS:
        return []
    selecting = []  # the variants whose checkpoint the val split selects
    for name in variants:
        train = resolve_variant(config["rosa"], name).train
        if train.restarts > 1 or train.val_every > 0:
            selecting.append(name)
    if not selecting:
        return []
    return [
        f"rosa.variants ({_listed(selecting)}): the {VAL_SPLIT!r} split has {n_val} clip, too "
        f"few to select a checkpoint (its VNA loss contrasts clips: at least {MIN_VAL_CLIPS}); "
        "add validation clips, or set rosa.train.restarts: 1 and val_every: 0"
    ]


def _clip_problems(config: Mapping[str, Any]) -> list[str]:
    clip = config["features"]["clip"]
    model, pretrained = clip["model"], clip["pretrained"]
    problems = []
    known = known_clip_models()
    if not model.startswith(REMOTE_PREFIXES) and model not in known:
        close = difflib.get_close_matches(model, sorted(known), n=3)
        hint = f"did you mean {_listed(close)}? " if close else ""
        problems.append(
            f"features.clip.model: unknown CLIP model {model!r} ({hint}see "
            f"open_clip.list_models() and {SHIPPED_CONFIGS_DIR})"
        )
    if isinstance(pretrained, str) and not os.path.isfile(pretrained):
        if os.sep in pretrained or pretrained.endswith(CHECKPOINT_SUFFIXES):
            problems.append(f"features.clip.pretrained: {pretrained}: file not found")
    return problems


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None  # found, not imported
    except (ImportError, ValueError):
        return False


def _spacy_problems(config: Mapping[str, Any]) -> list[str]:
    """The spaCy pipelines named: installed packages, or pipeline folders."""
    named = [("phrases.spacy_model", config["phrases"]["spacy_model"])]
    evaluate = config["evaluate"]
    if evaluate.get("seen_unseen") and evaluate.get("train_split") is not None:
        named.append(("evaluate.spacy_model", evaluate["spacy_model"]))
    return [
        f"{key}: spaCy pipeline {name!r} is not installed (pip install it, or name an installed "
        "pipeline or a pipeline folder)"
        for key, name in named
        if not os.path.isdir(name) and not _installed(name)
    ]


def config_problems(
    config: Mapping[str, Any], split_counts: Mapping[str, int] | None = None
) -> list[str]:
    """Every cross-check problem of a schema-valid ``config``, one line each, naming the key.

    ``split_counts`` (clips per split of the manifest, or None when unknown) adds the checks that
    every named split has clips, that ROSA has a train split and a val split large enough to
    select its checkpoint.
    """
    try:  # first: every method name below depends on the sweep's points
        sweep_names(config["rosa"])
    except ConfigError as error:  # a sweep key that is no rosa key, an empty list, no rosa
        return list(error.problems) or [str(error)]
    problems = _method_problems(config) + _variant_problems(config) + _propagate_problems(config)
    problems += segment_problems(config) + _split_problems(config, split_counts)
    if split_counts is not None and not problems:
        problems += _training_problems(config, split_counts)
    problems += _clip_problems(config) + _spacy_problems(config)
    return problems + _weights_problems(config)


def _weights_problems(config: Mapping[str, Any]) -> list[str]:
    """The checkpoints of the SAM proposals and of the text-prompted rows that will run."""
    methods = evaluated_methods(config)
    sam = config["proposals"]["sam"]
    found = []
    if config["proposals"]["backend"] == "sam" or "grounded_sam" in methods:
        found.append(
            sam_checkpoint_problem(sam.get("checkpoint"), sam.get("random_weights", False))
        )
    if "grounded_sam" in methods:
        group = config["grounded_sam"]
        found.append(
            folder_checkpoint_problem(
                "grounded_sam.detector", group["detector"], group["random_weights"]
            )
        )
    if "sam3" in methods:
        group = config["sam3"]
        found.append(
            folder_checkpoint_problem("sam3.model", group["model"], group["random_weights"])
        )
    return [problem for problem in found if problem is not None]


def check_config(config: Mapping[str, Any], split_counts: Mapping[str, int] | None = None) -> None:
    """Raise one :class:`~nvos.config.ConfigError` listing every :func:`config_problems` line."""
    problems = config_problems(config, split_counts)
    if problems:
        raise invalid(problems)
