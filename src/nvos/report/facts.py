"""The run's facts for the report header: what was run, on what, with which code and weights.

Run name, clips per split, methods, the digest of the full config (written beside the page as
``config.yaml``, so ``sha256sum config.yaml`` checks it), the nvos version and git commit, the
date, and notes on random weights: a run whose CLIP or SAM has random weights (the embedded demo)
measures the pipeline, not the method, and the page says so where it cannot be missed.
"""

from __future__ import annotations

import hashlib
import subprocess
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

import nvos
from nvos import storage
from nvos.config import plain
from nvos.report.rows import RowInfo, method_label
from nvos.report.table import order_splits, plural

UNKNOWN = "unknown"


@dataclass(frozen=True)
class RunFacts:
    """What the report header states (see :func:`run_facts`)."""

    run: str
    clips_per_split: Mapping[str, int]
    methods: tuple[str, ...]
    config_sha256: str
    version: str
    commit: str
    date: str
    encoders: str
    random_weights: tuple[str, ...]

    def rows(self, infos: Mapping[str, RowInfo] | None = None) -> list[tuple[str, str]]:
        """(label, value) lines of the header, in order; the same in table.md and index.html."""
        clips = ", ".join(f"{split} {n}" for split, n in self.clips_per_split.items())
        total = sum(self.clips_per_split.values())
        methods = ", ".join(_named(method_label(m, infos), m) for m in self.methods)
        return [
            ("Run", self.run),
            ("Clips", f"{plural(total, 'clip')}: {clips}" if clips else plural(0, "clip")),
            ("Methods", methods or "none"),
            ("Encoders", self.encoders),
            ("Config", f"sha256 {self.config_sha256[:12]} (config.yaml)"),
            ("Code", f"nvos {self.version}, commit {self.commit}"),
            ("Date", self.date),
        ]

    @property
    def random_note(self) -> str | None:
        """The warning shown when some model has random weights, else None."""
        if not self.random_weights:
            return None
        return (
            "Random weights: "
            + "; ".join(self.random_weights)
            + ". These scores test the pipeline, not the method; do not compare them with "
            "published results."
        )


def _named(label: str, method: str) -> str:
    """A method's label, followed by its config name where the label does not contain it."""
    return label if method.lower() in label.lower() else f"{label} ({method})"


def config_yaml(config: Mapping[str, Any]) -> str:
    """The full config as YAML with sorted keys: the text ``config.yaml`` holds and the digest
    is taken of."""
    return yaml.safe_dump(plain(config), sort_keys=True, allow_unicode=True)


def random_weights(config: Mapping[str, Any]) -> list[str]:
    """Which models of ``config`` have random weights (empty for a run with real weights)."""
    notes = []
    clip = (config.get("features") or {}).get("clip") or {}
    if "model" in clip and clip.get("pretrained") is None:
        notes.append(
            f"CLIP {clip['model']} is randomly initialised (features.clip.pretrained: null)"
        )
    proposals = config.get("proposals") or {}
    if proposals.get("backend") == "sam" and (proposals.get("sam") or {}).get("checkpoint") is None:
        notes.append("SAM is randomly initialised (proposals.sam.checkpoint: null)")
    methods = (config.get("evaluate") or {}).get("methods") or []
    for method, keys in PROMPTED_CHECKPOINTS.items():
        missing = [key for key in keys if _value(config, key) is None]
        if method in methods and missing:
            nulls = ", ".join(f"{key}: null" for key in missing)
            notes.append(f"{method} is randomly initialised ({nulls})")
    return notes


PROMPTED_CHECKPOINTS = {
    "grounded_sam": ("grounded_sam.detector", "proposals.sam.checkpoint"),
    "sam3": ("sam3.model",),
}
"""The checkpoint keys of the text-prompted rows (docs/methods.md): null means random weights."""


def _value(config: Mapping[str, Any], dotted: str) -> Any:
    """The value at a dotted key path of ``config`` (None where any part is missing)."""
    value: Any = config
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def encoders(config: Mapping[str, Any]) -> str:
    """One line on the proposal backend and the CLIP model of ``config``."""
    proposals = config.get("proposals") or {}
    backend = proposals.get("backend", UNKNOWN)
    if backend == "sam":
        sam = proposals.get("sam") or {}
        backend = f"SAM {sam.get('model_type', '')} ({sam.get('checkpoint') or 'random weights'})"
    elif backend == "classical":
        backend = "classical (weight-free superpixels)"
    clip = (config.get("features") or {}).get("clip") or {}
    if "model" not in clip:
        return f"proposals: {backend}; CLIP: {UNKNOWN}"
    weights = clip.get("pretrained") or "random weights"
    return f"proposals: {backend}; CLIP: {clip['model']} ({weights})"


def git_commit(folder: Path | None = None) -> str:
    """The git commit of the checkout holding ``folder`` (default: the nvos package), with
    ' (uncommitted changes)' when tracked files differ; 'unknown' outside a git checkout."""
    folder = folder or Path(nvos.__file__).resolve().parent

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=30
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if not commit:
        return UNKNOWN
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return commit[:12] + (" (uncommitted changes)" if dirty else "")


def clips_per_split(clips_path: str | Path) -> dict[str, int]:
    """Clips of each split in ``clips.parquet``, in print order."""
    counts = Counter(
        storage.read_table(clips_path, "clips", columns=["split"])["split"].to_pylist()
    )
    return {split: counts[split] for split in order_splits(list(counts))}


def run_facts(
    config: Mapping[str, Any],
    clips_path: str | Path,
    methods: Sequence[str],
    config_text: str,
    now: datetime | None = None,
) -> RunFacts:
    """The facts of a run: ``config`` is the full run config, ``config_text`` its
    :func:`config_yaml` (digested), ``now`` the report's date (default: the current UTC time)."""
    now = now or datetime.now(timezone.utc)
    return RunFacts(
        run=str(config.get("run", UNKNOWN)),
        clips_per_split=clips_per_split(clips_path),
        methods=tuple(methods),
        config_sha256=hashlib.sha256(config_text.encode()).hexdigest(),
        version=nvos.__version__,
        commit=git_commit(),
        date=now.strftime("%Y-%m-%d %H:%M %Z").strip(),
        encoders=encoders(config),
        random_weights=tuple(random_weights(config)),
    )


def facts_markdown(facts: RunFacts, infos: Mapping[str, RowInfo] | None = None) -> str:
    """The header of ``table.md``: the random-weights note (a quote) and one bullet per fact."""
    lines = [f"> **{facts.random_note}**", ""] if facts.random_note else []
    lines += [f"- **{name}**: {value}" for name, value in facts.rows(infos)]
    return "\n".join(lines) + "\n"
