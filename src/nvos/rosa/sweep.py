"""Sweeps of ROSA's settings as pipeline steps, chosen on the val split (``rosa.sweep``).

``rosa.sweep: {lr: [0.001, 0.003], max_regions: [10, 20]}`` declares a grid over keys of the
``rosa`` group (``lr``-like keys of ``rosa.train`` by their own name, or as ``train.lr``). Each
point of the grid is a ROSA variant (:func:`sweep_points`): the ``rosa`` variant with the point's
values merged in, named ``rosa-sw-<8 hex>`` after a hash of its settings (the same settings keep
their name, so a grown grid reuses what was trained). The variants are trained and predicted like
any other (the ROSA member of :mod:`nvos.methods`); the ``select_sweep`` rule
(:func:`select_sweep`) then chooses one on **val only** and the ``rosa`` row becomes the chosen
variant's predictions (:mod:`nvos.methods.rosa_chosen`):

- ``val_jf`` (``val`` in ``evaluate.splits`` and ``predict.splits``): the highest val J&F;
  ties, or a val split without masks (no object scored), fall back to the lowest validation VNA;
- ``val_vna`` (otherwise): the lowest validation VNA of the train logs (narrations only).

The rule's inputs are the variants' train logs and val summaries (:func:`selection_inputs`), and
:func:`select_sweep` reads only the files it is given: no test metric or annotation is ever read
before the choice. ``sweep/sweep.csv`` lists every setting with its val scores, the chosen one
marked (:data:`SWEEP_COLUMNS`; the report shows it); ``sweep/selection.json`` names the choice.

Imports no torch and nothing of :mod:`nvos.rosa.config` (which imports this module).
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nvos import storage
from nvos.config import ConfigError, group_schema, invalid
from nvos.layout import RunLayout
from nvos.types import PathLike

__all__ = [
    "SWEEP_COLUMNS",
    "SWEEP_PREFIX",
    "SWEPT_VARIANT",
    "Candidate",
    "choose",
    "is_swept",
    "read_candidate",
    "read_selection",
    "read_sweep_table",
    "select_by",
    "select_sweep",
    "selection_inputs",
    "settings_label",
    "sweep_names",
    "sweep_overrides",
    "sweep_points",
    "trained_variants",
]

#: The variant whose settings are swept; its row (``rosa``) becomes the chosen point's.
SWEPT_VARIANT = "rosa"

#: Prefix of the sweep's variant names: ``rosa-sw-<8 hex of the settings>``.
SWEEP_PREFIX = "rosa-sw-"

#: The split that chooses (never ``test``).
SELECT_SPLIT = "val"

#: Columns of ``sweep/sweep.csv``: one row per setting.
SWEEP_COLUMNS = ("variant", "settings", "val_jf", "val_j", "val_vna", "chosen", "basis")

_NOT_SWEPT = ("train", "variants", "sweep")


def _key_path(key: str) -> tuple[str, ...]:
    """Where a sweep key lives in the ``rosa`` group: ``('max_regions',)``, ``('train', 'lr')``
    (``lr`` or ``train.lr``). Raises :class:`ConfigError` for any other key."""
    rosa = group_schema(("rosa",))["properties"]
    train = rosa["train"]["properties"]
    name = key.removeprefix("train.")
    if key.startswith("train.") or (name not in rosa and name in train):
        if name in train:
            return ("train", name)
    elif name in rosa and name not in _NOT_SWEPT:
        return (name,)
    known = [k for k in rosa if k not in _NOT_SWEPT] + list(train)
    raise ConfigError(f"rosa.sweep.{key}: not a key of rosa or rosa.train (known: {known})")


def is_swept(rosa: Mapping[str, Any]) -> bool:
    """Whether the ``rosa`` group declares a sweep (an empty ``rosa.sweep`` is off)."""
    return bool(rosa.get("sweep"))


def settings_label(point: Mapping[str, Any]) -> str:
    """``lr=0.003, max_regions=10``: a point's settings, keys sorted."""
    return ", ".join(f"{k}={point[k]}" for k in sorted(point))


def sweep_points(rosa: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Variant name -> its point of the grid (sweep key -> value), in grid order (the declared
    keys, each list's order). Raises :class:`ConfigError` for an unknown key, an empty list, or
    a sweep without the ``rosa`` variant to sweep."""
    sweep = rosa.get("sweep") or {}
    if not sweep:
        return {}
    problems = []
    for key, values in sweep.items():
        try:
            _key_path(key)
        except ConfigError as error:
            problems.append(str(error))
        if not isinstance(values, list) or not values:
            problems.append(f"rosa.sweep.{key}: a non-empty list of values, got {values!r}")
    if SWEPT_VARIANT not in (rosa.get("variants") or {}):
        problems.append(
            f"rosa.sweep: sweeps the {SWEPT_VARIANT!r} variant, which rosa.variants lacks"
        )
    if problems:
        raise invalid(problems)
    points = {}
    for values in itertools.product(*sweep.values()):
        point = dict(zip(sweep, values, strict=True))
        digest = hashlib.sha256(json.dumps(point, sort_keys=True).encode()).hexdigest()[:8]
        points[f"{SWEEP_PREFIX}{digest}"] = point
    return points


def sweep_names(rosa: Mapping[str, Any]) -> list[str]:
    """The sweep's variant names, in grid order (none without a sweep)."""
    return list(sweep_points(rosa))


def sweep_overrides(rosa: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    """The overrides of sweep variant ``name`` (the ``rosa`` variant's, then the point's), or
    None when ``name`` is no sweep variant."""
    point = sweep_points(rosa).get(name) if name.startswith(SWEEP_PREFIX) else None
    if point is None:
        return None
    overrides = _copy(rosa["variants"][SWEPT_VARIANT] or {})
    for key, value in point.items():
        *parents, leaf = _key_path(key)
        target = overrides
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = value
    return overrides


def _copy(value: Any) -> Any:
    """A deep copy of plain config data (JSON round trip)."""
    return json.loads(json.dumps(value))


def select_by(config: Mapping[str, Any]) -> str:
    """``val_jf`` when the val split is predicted and scored, else ``val_vna``."""
    splits = (config["evaluate"]["splits"], config["predict"]["splits"])
    return "val_jf" if all(SELECT_SPLIT in s for s in splits) else "val_vna"


def selection_inputs(config: Mapping[str, Any], layout: RunLayout) -> dict[str, list[str]]:
    """The files the ``select_sweep`` rule reads: every sweep variant's train log and, when
    choosing by val J&F, its val summary. Never a test file."""
    names = sweep_names(config["rosa"])
    inputs = {"train_logs": [layout.train_log(n) for n in names]}
    if select_by(config) == "val_jf":
        inputs["summaries"] = [layout.summary(n, SELECT_SPLIT) for n in names]
    return inputs


@dataclass(frozen=True)
class Candidate:
    """One setting of the sweep and its val scores (None: not measured)."""

    variant: str
    settings: str
    val_jf: float | None
    val_j: float | None
    val_vna: float | None


def _lowest_val_vna(train_log: PathLike) -> float | None:
    """The lowest ``val_vna`` of a ``train_log.csv`` (None when validation never ran)."""
    with open(train_log, newline="") as handle:
        values = [float(row["val_vna"]) for row in csv.DictReader(handle) if row.get("val_vna")]
    return min(values) if values else None


def read_candidate(
    variant: str, settings: str, train_log: PathLike, summary: PathLike | None
) -> Candidate:
    """A candidate's scores from its ``train_log.csv`` and (optional) val ``summary.json``;
    a summary of another split is refused (only val chooses)."""
    jf = j = None
    if summary is not None:
        data = json.loads(Path(summary).read_text())
        if data.get("split") != SELECT_SPLIT:
            raise ValueError(
                f"{summary}: split {data.get('split')!r}, only {SELECT_SPLIT!r} chooses"
            )
        jf, j = data.get("J&F"), data.get("J")
    return Candidate(variant, settings, jf, j, _lowest_val_vna(train_log))


def choose(candidates: Sequence[Candidate], by: str) -> tuple[Candidate, str]:
    """The chosen candidate and the basis used: ``val_jf`` (highest; ties: lowest val VNA, then
    grid order) when every candidate has a val J&F, else ``val_vna`` (lowest; none measured:
    the first)."""
    if not candidates:
        raise ValueError("a sweep without candidates")
    vna = [math.inf if c.val_vna is None else c.val_vna for c in candidates]
    order = range(len(candidates))
    if by == "val_jf" and all(c.val_jf is not None for c in candidates):
        best = min(order, key=lambda i: (-candidates[i].val_jf, vna[i], i))  # type: ignore[operator]
        return candidates[best], "val_jf"
    return candidates[min(order, key=lambda i: (vna[i], i))], "val_vna"


def select_sweep(
    points: Mapping[str, Mapping[str, Any]],
    by: str,
    train_logs: Sequence[PathLike],
    summaries: Sequence[PathLike] | None,
    selection_json: PathLike,
    table_csv: PathLike,
) -> dict[str, Any]:
    """Choose among the sweep's ``points`` (variant -> settings, grid order) from their
    ``train_logs`` and, by ``val_jf``, val ``summaries`` (both in the same order); write
    ``table_csv`` (:data:`SWEEP_COLUMNS`) and ``selection_json``; return the selection. Reads
    nothing but the files given."""
    names = list(points)
    if len(train_logs) != len(names) or (summaries is not None and len(summaries) != len(names)):
        raise ValueError(f"{len(names)} sweep variants, but other counts of train logs/summaries")
    candidates = [
        read_candidate(n, settings_label(points[n]), log, None if summaries is None else s)
        for n, log, s in zip(names, train_logs, summaries or [None] * len(names), strict=True)
    ]
    chosen, basis = choose(candidates, by)
    rows = [
        {**c.__dict__, "chosen": c.variant == chosen.variant, "basis": basis} for c in candidates
    ]
    storage.write_csv(table_csv, SWEEP_COLUMNS, rows)
    selection = {
        "chosen": chosen.variant,
        "settings": dict(points[chosen.variant]),
        "label": chosen.settings,
        "basis": basis,
        "requested": by,
        "read": [str(p) for p in [*train_logs, *(summaries or [])]],
    }
    storage.write_text(selection_json, json.dumps(selection, indent=2) + "\n")
    return selection


def read_selection(path: PathLike) -> dict[str, Any]:
    """``sweep/selection.json`` as written by :func:`select_sweep`."""
    return json.loads(Path(path).read_text())


def read_sweep_table(path: PathLike) -> list[dict[str, str]]:
    """The rows of ``sweep/sweep.csv``."""
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def trained_variants(rosa: Mapping[str, Any]) -> list[str]:
    """The ROSA variants trained and predicted: ``rosa.variants`` and the sweep's points; with a
    sweep, ``rosa`` itself is not trained (its row is the chosen point's)."""
    names = sweep_names(rosa)
    return [v for v in rosa["variants"] if not (names and v == SWEPT_VARIANT)] + names
