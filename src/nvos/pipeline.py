"""One entry function per stage: paths and the stage's config group in, files out.

The Snakemake scripts in ``workflow/scripts/`` and the ``nvos`` command line both call these, so
a stage behaves the same inside and outside the workflow. Each function only maps the config group
onto the stage module's typed parameters and records provenance.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from nvos.layout import RunLayout
from nvos.types import PathLike
from nvos.workflow import resolve_manifest

logger = logging.getLogger(__name__)


def _with_skips(skipped_out: PathLike | None, summary: Any) -> Any:
    """Write the stage summary's ledger (:mod:`nvos.skips`) to ``skipped_out`` when given."""
    if skipped_out is not None:
        from nvos.skips import write_ledger

        write_ledger(summary.ledger, skipped_out)
    return summary


def run_skips(
    skipped: Sequence[PathLike], skipped_csv: PathLike, reconciliation_csv: PathLike
) -> list[dict[str, Any]]:
    """Every stage job's skips in one ``skipped.csv`` and the per-stage ``reconciliation.csv``."""
    from nvos.skips import gather

    return gather(list(skipped), skipped_csv, reconciliation_csv)


def run_demo_data(out_dir: PathLike, demo: Mapping[str, Any], workers: int = 1) -> Path:
    """Generate the embedded demo dataset (videos + manifest) into ``out_dir``, rendering
    ``workers`` videos side by side (the output does not depend on it); ``demo`` is the
    ``dataset.demo`` config block (``style`` absent: the default style)."""
    from nvos.demo import DEFAULT_STYLE, generate_demo

    style = str(demo.get("style", DEFAULT_STYLE))
    return generate_demo(
        Path(out_dir), int(demo["clips"]), int(demo["seed"]), workers=workers, style=style
    )


def run_dataset(
    manifest: PathLike,
    clips_out: PathLike,
    annotations_out: PathLike,
    dataset: Mapping[str, Any],
    shards: Mapping[str, Any],
) -> Any:
    """Validate the manifest and write ``clips.parquet`` and ``annotations.parquet``."""
    from nvos.dataset import build_dataset

    return build_dataset(
        resolve_manifest(manifest),
        clips_out,
        annotations_out,
        splits=list(dataset["splits"]),
        clips_per_shard=int(shards["clips_per_shard"]),
        folder_fps=float(dataset["folder_fps"]),
    )


def run_frames(
    clips: PathLike,
    annotations: PathLike,
    shard: str,
    out: PathLike,
    frames: Mapping[str, Any],
    folder_fps: float,
    skipped_out: PathLike | None = None,
) -> Any:
    """Decode, sample and store the frames of one shard (its skips to ``skipped_out``)."""
    from nvos.frames import extract_frames

    return _with_skips(
        skipped_out,
        extract_frames(
            clips,
            annotations,
            shard,
            out,
            per_clip=int(frames["per_clip"]),
            max_side=int(frames["max_side"]),
            jpeg_quality=int(frames["jpeg_quality"]),
            folder_fps=float(folder_fps),
            proposals_on_annotated=bool(frames.get("proposals_on_annotated", True)),
        ),
    )


def run_proposals(
    frames: PathLike,
    out: PathLike,
    proposals: Mapping[str, Any],
    lock_dir: PathLike | None,
    shard: str,
    skipped_out: PathLike | None = None,
) -> Any:
    """Generate mask proposals for one shard's frames on a claimed device."""
    from nvos.devices import claim_device
    from nvos.proposals.stage import build_backend, generate_proposals

    with claim_device(lock_dir) as device:
        backend = build_backend(dict(proposals), device=device)
        summary = generate_proposals(
            frames,
            out,
            backend,
            max_per_frame=int(proposals["max_per_frame"]),
            batch_frames=int(proposals["batch_frames"]),
            meta={"config": dict(proposals), "shard": shard},
        )
    return _with_skips(skipped_out, summary)


def run_phrases(
    clips: PathLike,
    out: PathLike,
    phrases: Mapping[str, Any],
    skipped_out: PathLike | None = None,
) -> Any:
    """Extract the object phrases of every clip into ``phrases.parquet``."""
    from nvos.phrases.stage import build_parser, extract_phrases

    summary = extract_phrases(clips, out, build_parser(phrases), meta={"config": dict(phrases)})
    return _with_skips(skipped_out, summary)


def run_features(
    layout: RunLayout,
    shard: str,
    features: Mapping[str, Any],
    lock_dir: PathLike | None,
) -> Any:
    """CLIP embeddings of one shard's proposals (regions) and phrases on a claimed device, and
    ROSA's memory-mapped cache of them (``features/cache/``, :mod:`nvos.rosa.feature_cache`)."""
    from nvos.devices import claim_device
    from nvos.features.stage import build_encoder, crop_policy, extract_features
    from nvos.rosa.feature_cache import ensure_cache

    with claim_device(lock_dir) as device:
        encoder = build_encoder(features, device)
        summary = extract_features(
            layout.frames(shard),
            layout.proposals(shard),
            layout.phrases,
            layout.clips,
            shard,
            layout.regions(shard),
            layout.text(shard),
            encoder,
            crop_policy(features, encoder),
            batch_regions=int(features["batch_regions"]),
            batch_texts=int(features["batch_texts"]),
            config=dict(features),
        )
    for kind in ("regions", "text"):
        ensure_cache(kind, layout.shard_paths(shard))
    return _with_skips(layout.skipped("features", shard), summary)


def run_text_features(
    layout: RunLayout, shard: str, features: Mapping[str, Any], lock_dir: PathLike | None
) -> dict[str, Any]:
    """CLIP embeddings of one shard's phrases of ``layout`` (the segment stage's scope: its own
    phrases) on a claimed device, and ROSA's cache of them; returns the text counts."""
    from nvos.devices import claim_device
    from nvos.features.stage import build_encoder, extract_text_features
    from nvos.rosa.feature_cache import ensure_cache

    with claim_device(lock_dir) as device:
        encoder = build_encoder(features, device)
        counts = extract_text_features(
            layout.clips, layout.phrases, shard, layout.text(shard), encoder,
            int(features["batch_texts"]), dict(features),
        )  # fmt: skip
    ensure_cache("text", layout.shard_paths(shard))
    return counts


def run_evaluate(
    method: str,
    predictions: list[PathLike],
    clips: PathLike,
    annotations: PathLike,
    split: str,
    out_dir: PathLike,
    evaluate: Mapping[str, Any],
    workers: int = 1,
    seen: PathLike | None = None,
) -> dict[str, Any]:
    """Score one method on one split: ``per_object.csv`` and ``summary.json`` in ``out_dir``
    (``seen``: the run's ``seen.json``, rule ``seen_vocabulary``)."""
    from nvos.evaluation import evaluate_method

    return evaluate_method(
        method,
        list(predictions),
        clips,
        annotations,
        split,
        out_dir,
        bound_th=float(evaluate["bound_th"]),
        workers=int(workers),
        train_split=evaluate["train_split"],
        seen_unseen=bool(evaluate["seen_unseen"]),
        spacy_model=str(evaluate["spacy_model"]),
        meta={"config": dict(evaluate)},
        protocol=str(evaluate["protocol"]),
        seen_path=seen,
    )


def run_report(
    layout: RunLayout,
    methods: Sequence[str],
    splits: Sequence[str],
    shards: Sequence[str],
    config: Mapping[str, Any],
    with_skips: bool = True,
) -> Any:
    """The results table, the HTML page with the run's facts (from the full run ``config``) and
    the qualitative overlays of ``methods`` on ``splits`` (:class:`nvos.report.build.ReportInputs`
    of the run ``layout``), with the skip counts of ``reconciliation.csv`` (``with_skips``) and,
    with a ``rosa.sweep``, its ``sweep/sweep.csv``."""
    from nvos.methods.propagated import propagated_names
    from nvos.report import build_report
    from nvos.report.build import ReportInputs
    from nvos.rosa.sweep import is_swept

    dense = [m for m in methods if m in propagated_names(config)]
    inputs = ReportInputs.in_run(layout, methods, splits, shards, dense)
    reconciliation = layout.reconciliation if with_skips else None
    sweep = layout.sweep_table if is_swept(config.get("rosa") or {}) else None
    return build_report(inputs, layout.report_dir, dict(config), reconciliation, sweep=sweep)


def run_shards(layout: RunLayout) -> list[str]:
    """The shard ids of a run folder, from its ``clips.parquet`` (sorted)."""
    from nvos import storage

    if not Path(layout.clips).is_file():
        raise FileNotFoundError(f"{layout.clips}: no such file (run the dataset stage first)")
    clips = storage.read_table(layout.clips, "clips", columns=["shard"])
    return sorted(set(clips["shard"].to_pylist()))


def run_export_davis(
    layout: RunLayout,
    method: str,
    out_dir: PathLike,
    folders: str = "davis",
    with_gt: bool = False,
    splits: list[str] | None = None,
) -> Any:
    """A method's predictions (every shard of the run ``layout``) as indexed PNGs in the DAVIS /
    VOST folder layout (``folders``); with ``with_gt`` also the truth, frames and ImageSets."""
    from nvos.export import ExportError, export_davis

    shards = run_shards(layout)
    paths = [p for p in layout.method_predictions(method, shards) if Path(p).is_file()]
    if len(paths) != len(shards):
        missing = len(shards) - len(paths)
        raise ExportError(f"{layout.predictions(method, '<shard>')}: {missing} of "
                          f"{len(shards)} shards have no predictions")  # fmt: skip
    frames = [layout.frames(s) for s in shards] if with_gt else ()
    return export_davis(
        paths, layout.clips, layout.annotations, out_dir, folders, with_gt, frames, splits
    )


def run_import_predictions(
    layout: RunLayout,
    config: Mapping[str, Any],
    method: str,
    fmt: str,
    source: PathLike,
    ids: PathLike | None = None,
) -> Any:
    """Another method's masks from ``source`` (format ``fmt``: davis, coco-rle or parquet) as
    ``predictions/<method>/<shard>.parquet`` of every shard of the run ``layout``. ``method`` must
    be a key of ``evaluate.imported`` (its report row); ``ids``: the davis format's id mapping."""
    from nvos.config import plain
    from nvos.imports import (
        ImportSummary,
        PredictionImportError,
        RunTargets,
        import_predictions,
        read_masks,
    )

    imported = config["evaluate"]["imported"]
    if method not in imported:
        raise PredictionImportError(
            f"--method {method!r}: not a key of evaluate.imported "
            f"({', '.join(imported) or 'none'}); add `evaluate: {{imported: {{{method}: "
            "{supervision: mask, display: ...}}}` "
            "(supervision mask or narration) to a --config file"
        )
    targets = RunTargets.of_run(layout)
    summary = ImportSummary(method, fmt, str(source))
    masks = read_masks(fmt, source, targets, summary, ids)
    meta = {"imported": plain(imported[method])}
    return import_predictions(masks, targets, layout, method, summary, meta)
