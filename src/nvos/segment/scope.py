"""The segment stage as a scope of the run: the run's own methods again, on other clips and phrases.

``snakemake segment`` gives every phrase of every clip of ``segment.splits`` (default: all, the
training clips included) a mask on every frame through ``segment.method``, a chain such as
``rosa+temporal+flow`` (ROSA's choices on the keyframes, decoded over time with the settings
chosen on val, propagated to every frame) or the zero-shot ``sam_clip+temporal+flow``. Nothing is
a second code path: the chain's steps are the family's members (:mod:`nvos.methods`), run by rules
``segment_<member rule>`` in the scope ``<run>/segment/`` (:attr:`nvos.layout.RunLayout.scope`)
under the config :func:`segment_config` derives: ``predict.splits`` (and the splits the baseline
reads) set to the segment's splits, ``predict.phrases: all``, and only the chain's decoded and
propagated steps. The scope has its own phrases (``segment.phrases``: the run's, or ``free_text``:
tags stripped and every narration parsed), text features and links; it shares the clips, frames,
proposals, region features, trained models and the decoder's selections with the run.

Imports nothing heavy: the Snakefile calls it to build the DAG.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from nvos.layout import SEGMENT_SCOPE, RunLayout
from nvos.methods.base import STEP, root_method

__all__ = [
    "FREE_TEXT",
    "SEGMENT_SCOPE",
    "free_text_method",
    "scope_config",
    "segment_chain",
    "segment_config",
    "scope_layout",
    "segment_layout",
    "segment_problems",
    "segment_shared",
    "segment_splits",
    "selection_methods",
]

FREE_TEXT = "free_text"
"""The last step of the method that scores the free-text path: ``<segment.method>+free_text``."""

DECODE_STEP = "temporal"
"""The step of a temporally decoded method (``<base>+temporal``, :mod:`nvos.methods.temporal`)."""


def segment_group(config: Mapping[str, Any]) -> Mapping[str, Any]:
    """The ``segment`` group of a validated config (empty when absent)."""
    return config.get("segment") or {}


def segment_splits(config: Mapping[str, Any]) -> list[str]:
    """The splits the segment stage covers (``segment.splits``, or every split)."""
    splits = segment_group(config).get("splits")
    return list(splits if splits is not None else config["dataset"]["splits"])


def segment_chain(method: str) -> list[str]:
    """Every step of a composite method, from its root: ``rosa+temporal+flow`` ->
    ``[rosa, rosa+temporal, rosa+temporal+flow]``."""
    steps = method.split(STEP)
    return [STEP.join(steps[: i + 1]) for i in range(len(steps))]


def _steps(config: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """The chain's decoded bases and propagated keyframe methods (their steps' inputs)."""
    backend = (config.get("temporal") or {}).get("propagate", {}).get("backend", "flow")
    chain = segment_chain(segment_group(config).get("method", ""))
    decoded, propagated = [], []
    for previous, step in zip(chain, chain[1:], strict=False):
        last = step.rsplit(STEP, 1)[1]
        if last == DECODE_STEP:
            decoded.append(previous)
        elif last == backend:
            propagated.append(previous)
    return decoded, propagated


def selection_methods(config: Mapping[str, Any]) -> list[str]:
    """The chain's ``<base>+temporal`` steps whose selection is chosen on this run's val (none
    when ``segment.selection`` names another run's)."""
    if segment_group(config).get("selection"):
        return []
    decoded, _ = _steps(config)
    return [f"{base}{STEP}{DECODE_STEP}" for base in decoded]


def segment_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The config of the segment scope (see the module docstring); ``config`` is not changed."""
    from nvos.config import plain

    derived = copy.deepcopy(plain(dict(config)))
    splits = segment_splits(config)
    derived["predict"] = {**derived["predict"], "splits": splits, "phrases": "all"}
    derived["evaluate"] = {**derived["evaluate"], "splits": splits}
    group = segment_group(config)
    if group.get("model"):  # another run's weights (nvos segment --model)
        derived["predict"]["checkpoint"] = group["model"]
    decoded, propagated = _steps(config)
    temporal = derived.setdefault("temporal", {})
    temporal["decode"] = {**temporal.get("decode", {}), "methods": decoded}
    if group.get("selection"):  # another run's decoder settings, chosen on its val
        temporal["decode"]["selection"] = group["selection"]
    temporal["propagate"] = {**temporal.get("propagate", {}), "methods": propagated}
    return derived


def segment_shared(config: Mapping[str, Any]) -> frozenset[str]:
    """The parts the segment scope takes from the run (:attr:`RunLayout.shared`): ``phrases``
    (and their text features) with ``segment.phrases: narration``, ``links`` when the run's links
    already cover the segment's splits (``predict.splits``)."""
    shared = set()
    if segment_group(config).get("phrases", "narration") == "narration":
        shared.add("phrases")
    if set(segment_splits(config)) <= set(config["predict"]["splits"]):
        shared.add("links")
    return frozenset(shared)


def segment_layout(config: Mapping[str, Any], layout: RunLayout) -> RunLayout:
    """The segment scope of the run ``layout`` under ``config``."""
    return layout.scoped(SEGMENT_SCOPE, segment_shared(config))


def scope_layout(config: Mapping[str, Any], layout: RunLayout, scope: str) -> RunLayout:
    """The layout a job of ``scope`` writes in: the run's (``""``) or the segment scope's."""
    return segment_layout(config, layout) if scope else layout


def scope_config(config: Mapping[str, Any], scope: str) -> Mapping[str, Any]:
    """The config a job of ``scope`` runs under: the run's (``""``) or the segment scope's."""
    if not scope:
        return config
    if scope != SEGMENT_SCOPE:
        raise ValueError(f"unknown scope {scope!r}")
    return segment_config(config)


def free_text_method(config: Mapping[str, Any]) -> str | None:
    """``<segment.method>+free_text`` when ``segment.phrases`` is ``free_text``, else None."""
    group = segment_group(config)
    if group.get("phrases") != FREE_TEXT or not group.get("method"):
        return None
    return f"{group['method']}{STEP}{FREE_TEXT}"


def segment_problems(config: Mapping[str, Any]) -> list[str]:
    """What is wrong with the ``segment`` group of a validated config (empty: nothing)."""
    from nvos.methods.registry import method_names

    group = segment_group(config)
    method = str(group.get("method", ""))
    problems = []
    unknown = sorted(set(segment_splits(config)) - set(config["dataset"]["splits"]))
    if unknown:
        problems.append(f"segment.splits: {unknown} are not in dataset.splits")
    backend = config["temporal"]["propagate"]["backend"]
    if not method.endswith(f"{STEP}{backend}"):
        problems.append(
            f"segment.method: {method!r} does not end with +{backend} "
            "(temporal.propagate.backend): only a propagated method has a mask on every frame"
        )
        return problems
    root = root_method(method)
    if root in {"oracle", *(config["evaluate"].get("imported") or {})}:
        problems.append(
            f"segment.method: {method!r} starts from {root!r}, which has no masks outside the "
            "annotated frames"
        )
        return problems
    names = {n for found in method_names(segment_config(config)).values() for n in found}
    for step in segment_chain(method):
        if step not in names:
            problems.append(
                f"segment.method: step {step!r} of {method!r} is not a method of this config "
                "(a region-scoring method, then +temporal and/or +<backend>)"
            )
            break
    return problems
