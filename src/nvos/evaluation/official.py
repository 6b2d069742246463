"""Score result PNGs in the official DAVIS 2017 / VOST folder layouts, as their scripts do.

:func:`evaluate_folder` reads a dataset in the official layout and a results folder
(``<results>/<seq>/<frame>.png``, indexed PNGs whose pixel values are labels) and returns what
``evaluation_method.py`` of ``davis2017-evaluation`` (``--task semi-supervised``) or of
``TRI-ML/VOST`` computes, with the same CSV texts (:meth:`FolderResult.global_csv`,
:meth:`FolderResult.per_sequence_csv`). J and F come from :mod:`nvos.metrics` (bit-identical to
DAVIS's); frames, objects and statistics from :mod:`nvos.evaluation.protocols`.

Layouts: DAVIS ``<root>/Annotations/480p/<seq>/*.png`` and ``<root>/ImageSets/2017/<set>.txt``;
VOST ``<root>/Annotations/<seq>/*.png`` and ``<root>/ImageSets/<set>.txt``. The frames of a
sequence are its annotation PNGs (sorted by name); JPEGs are never read.

Where the official scripts exit silently (a missing result PNG; DAVIS: a result label above K) or
fail with a traceback (a sequence with fewer than 3 annotated frames, masks of another size, an
RGB PNG), this module raises :class:`~nvos.evaluation.protocols.ProtocolError` naming the file.
VOST's dropped labels above K are listed in :attr:`FolderResult.warnings`.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from nvos.evaluation.protocols import (
    IGNORE_LABEL,
    Protocol,
    ProtocolError,
    Statistics,
    evaluated,
    get_protocol,
    last_start,
    object_count,
    statistics,
)
from nvos.metrics import DEFAULT_BOUND_TH, boundary_f, jaccard
from nvos.types import PathLike

"""Void / ignore label of both benchmarks; their semi-supervised scoring treats it as background."""

OFFICIAL_SETS: dict[str, tuple[str, ...]] = {
    "davis": ("train", "val", "test-dev", "test-challenge"),
    "vost": ("train", "val", "test"),
}
"""The ``--set`` values each official script accepts (``DAVIS.SUBSET_OPTIONS``,
``Dataset.SUBSET_OPTIONS``)."""


@dataclass(frozen=True)
class ObjectResult:
    """One object (label ``label`` of ``sequence``): per-frame values (n,) and their statistics."""

    sequence: str
    label: int
    frames: tuple[str, ...]
    j: np.ndarray
    f: np.ndarray | None
    j_stats: Statistics
    f_stats: Statistics | None
    j_last: Statistics | None

    @property
    def key(self) -> str:
        """The official row name ``<seq>_<label>``."""
        return f"{self.sequence}_{self.label}"


@dataclass
class FolderResult:
    """Every object's result, in the official order (sequences as listed, labels ascending)."""

    protocol: Protocol
    subset: str
    objects: list[ObjectResult] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def global_row(self) -> dict[str, float]:
        """The official global numbers: means over all objects (not sequences)."""
        row: dict[str, float] = {}
        j = _means([o.j_stats for o in self.objects])
        if self.protocol.boundary:
            f = _means([o.f_stats for o in self.objects if o.f_stats is not None])
            row["J&F-Mean"] = (j["Mean"] + f["Mean"]) / 2.0
            row.update({f"J-{k}": v for k, v in j.items()})
            row.update({f"F-{k}": v for k, v in f.items()})
        else:
            last = _means([o.j_last for o in self.objects if o.j_last is not None])
            row.update({f"J-{k}": v for k, v in j.items()})
            row.update({f"J_last-{k}": v for k, v in last.items()})
        return row

    def global_csv(self) -> str:
        """``global_results-<set>.csv`` as the official script writes it (``%.3f``)."""
        row = self.global_row()
        return _csv([list(row), [_fmt(v) for v in row.values()]])

    def per_sequence_csv(self) -> str:
        """``per-sequence_results-<set>.csv`` as the official script writes it."""
        second = "F-Mean" if self.protocol.boundary else "J_last-Mean"
        rows: list[list[str]] = [["Sequence", "J-Mean", second]]
        for o in self.objects:
            other = o.f_stats if self.protocol.boundary else o.j_last
            rows.append([o.key, _fmt(o.j_stats.mean), _fmt(other.mean if other else math.nan)])
        return _csv(rows)


def _means(stats: Sequence[Statistics]) -> dict[str, float]:
    return {
        "Mean": float(np.mean([s.mean for s in stats])),
        "Recall": float(np.mean([s.recall for s in stats])),
        "Decay": float(np.mean([s.decay for s in stats])),
    }


def _fmt(value: float) -> str:
    """pandas ``to_csv(float_format="%.3f")``: NaN is an empty field."""
    return "" if math.isnan(value) else f"{value:.3f}"


def _csv(rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def _read_labels(path: Path, what: str) -> np.ndarray:
    """An indexed PNG (H, W) of labels, as ``np.array(Image.open(path))``."""
    try:
        with Image.open(path) as image:
            labels = np.array(image)
    except FileNotFoundError:
        raise ProtocolError(
            f"{path}: {what} is missing (the official script exits without a result)"
        ) from None
    except OSError as error:
        raise ProtocolError(f"{path}: cannot read {what}: {error}") from None
    if labels.ndim != 2:
        raise ProtocolError(
            f"{path}: {what} must be an indexed (palette or grey) PNG of labels, got an image of "
            f"shape {labels.shape}"
        )
    return labels.astype(np.int64)


def _layout(protocol: Protocol, root: Path, subset: str, resolution: str) -> tuple[Path, Path]:
    """(annotation folder, sequence list) of the protocol's official layout."""
    if protocol.name == "davis":
        return root / "Annotations" / resolution, root / "ImageSets" / "2017" / f"{subset}.txt"
    if protocol.name == "vost":
        return root / "Annotations", root / "ImageSets" / f"{subset}.txt"
    raise ProtocolError(f"protocol {protocol.name!r} has no official folder layout (davis, vost)")


def evaluate_folder(
    protocol_name: str,
    root: PathLike,
    results: PathLike,
    subset: str = "val",
    resolution: str = "480p",
    bound_th: float = DEFAULT_BOUND_TH,
) -> FolderResult:
    """Score ``results`` against the dataset at ``root`` with the official ``davis`` / ``vost``
    rules (module docstring). ``resolution`` is DAVIS's folder level (``480p``)."""
    protocol = get_protocol(protocol_name)
    annotations, listing = _layout(protocol, Path(root), subset, resolution)
    if subset not in OFFICIAL_SETS[protocol.name]:
        raise ProtocolError(
            f"set {subset!r}: the official {protocol.name} script accepts only "
            f"{list(OFFICIAL_SETS[protocol.name])}"
        )
    if not listing.is_file():
        raise ProtocolError(f"{listing}: sequence list of set {subset!r} not found")
    sequences = [line.strip() for line in listing.read_text().splitlines() if line.strip()]
    out = FolderResult(protocol, subset)
    for sequence in sequences:
        out.objects.extend(_sequence(protocol, annotations, Path(results), sequence, bound_th, out))
    return out


def _sequence(
    protocol: Protocol,
    annotations: Path,
    results: Path,
    sequence: str,
    bound_th: float,
    out: FolderResult,
) -> list[ObjectResult]:
    """The objects of one sequence: GT 255 -> 0, K from the first frame, frames [1:-1]."""
    paths = sorted((annotations / sequence).glob("*.png"))
    if len(paths) < protocol.min_frames:
        raise ProtocolError(
            f"{annotations / sequence}: {len(paths)} annotation PNGs; the {protocol.name} protocol "
            f"needs at least {protocol.min_frames} (its first and last are not scored)"
        )
    gt = [_read_labels(p, "annotation") for p in paths]
    for path, labels in zip(paths, gt, strict=True):
        if labels.shape != gt[0].shape:
            raise ProtocolError(f"{path}: size {labels.shape} differs from {paths[0].name}'s")
        labels[labels == IGNORE_LABEL] = 0
    first = set(np.unique(gt[0]).tolist())
    k = object_count(protocol, [label in first for label in range(1, int(gt[0].max()) + 1)])
    frames = evaluated(protocol, [p.stem for p in paths])
    gt = list(evaluated(protocol, gt))
    pred = []
    for frame, truth in zip(frames, gt, strict=True):
        path = results / sequence / f"{frame}.png"
        labels = _read_labels(path, "result")
        if labels.shape != truth.shape:
            raise ProtocolError(f"{path}: size {labels.shape} differs from the annotation's")
        pred.append(labels)
    extra = [f for f, labels in zip(frames, pred, strict=True) if labels.max() > k]
    if extra and protocol.extra_labels == "error":
        raise ProtocolError(
            f"{results / sequence}: frames {extra[:5]} hold a label above the {k} objects of the "
            "first annotated frame (the official script exits without a result)"
        )
    if extra:
        out.warnings.append(f"{sequence}: labels above K = {k} ignored on frames {extra}")
    objects = []
    for label in range(1, k + 1):
        j = np.array([jaccard(t == label, p == label) for t, p in zip(gt, pred, strict=True)])
        f = None
        if protocol.boundary:
            f = np.array(
                [
                    boundary_f(t == label, p == label, bound_th=bound_th)
                    for t, p in zip(gt, pred, strict=True)
                ]
            )
        last = None
        if protocol.last_fraction is not None:
            last = statistics(j[last_start(protocol, len(j)) :])
        objects.append(
            ObjectResult(
                sequence,
                label,
                frames,
                j,
                f,
                statistics(j),
                None if f is None else statistics(f),
                last,
            )
        )
    return objects
