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
    frames: PathLike,
    proposals: PathLike,
    phrases: PathLike,
    clips: PathLike,
    shard: str,
    regions_out: PathLike,
    text_out: PathLike,
    features: Mapping[str, Any],
    lock_dir: PathLike | None,
    skipped_out: PathLike | None = None,
) -> Any:
    """CLIP embeddings of one shard's proposals (regions) and phrases on a claimed device."""
    from nvos.devices import claim_device
    from nvos.features.stage import build_encoder, crop_policy, extract_features

    with claim_device(lock_dir) as device:
        encoder = build_encoder(features, device)
        summary = extract_features(
            frames,
            proposals,
            phrases,
            clips,
            shard,
            regions_out,
            text_out,
            encoder,
            crop_policy(features, encoder),
            batch_regions=int(features["batch_regions"]),
            batch_texts=int(features["batch_texts"]),
            config=dict(features),
        )
    return _with_skips(skipped_out, summary)


def run_sam_clip(
    regions: PathLike,
    proposals: PathLike,
    frames: PathLike,
    phrases: PathLike,
    clips: PathLike,
    shard: str,
    out: PathLike,
    features: Mapping[str, Any],
    splits: Sequence[str],
    lock_dir: PathLike | None,
    skipped_out: PathLike | None = None,
) -> Any:
    """The SAM + CLIP zero-shot baseline's predictions for one shard."""
    from nvos.baselines import check_same_model, clip_prompt_encoder, sam_clip_predictions
    from nvos.devices import claim_device
    from nvos.features.stage import build_encoder

    with claim_device(lock_dir) as device:
        encoder = build_encoder(features, device)
        check_same_model(regions, encoder.describe())
        summary = sam_clip_predictions(
            regions,
            proposals,
            frames,
            phrases,
            clips,
            shard,
            out,
            clip_prompt_encoder(encoder, int(features["batch_texts"])),
            str(features["prompt"]),
            splits=list(splits),
            meta={"config": dict(features), "clip": encoder.describe()},
        )
    return _with_skips(skipped_out, summary)


def run_train(
    run_dir: PathLike,
    shards: Sequence[str],
    clips: PathLike,
    out_dir: PathLike,
    rosa: Mapping[str, Any],
    variant: str,
    lock_dir: PathLike | None,
) -> Any:
    """Train one ROSA variant (``models/<variant>/``); torchrun + DDP when rosa.train.gpus > 1."""
    from nvos.rosa.stage import launch_training

    return launch_training(run_dir, list(shards), clips, out_dir, rosa, variant, lock_dir)


def run_predict(
    run_dir: PathLike,
    shard: str,
    checkpoint: PathLike,
    out: PathLike,
    rosa: Mapping[str, Any],
    variant: str,
    predict: Mapping[str, Any],
    lock_dir: PathLike | None,
    skipped_out: PathLike | None = None,
) -> Any:
    """Predictions of one ROSA variant on one shard's annotated frames."""
    from nvos.rosa.predict import run_predict as predict_shard

    summary = predict_shard(
        run_dir,
        shard,
        checkpoint,
        out,
        rosa,
        variant,
        splits=list(predict["splits"]),
        batch_size=int(predict["batch_size"]),
        lock_dir=lock_dir,
    )
    return _with_skips(skipped_out, summary)


def run_oracle(
    clips: PathLike,
    annotations: PathLike,
    proposals: PathLike,
    shard: str,
    out: PathLike,
    skipped_out: PathLike | None = None,
) -> Any:
    """Best-IoU proposal per tagged object and annotated frame of one shard (SAM upper bound)."""
    from nvos.oracle import build_oracle

    summary = build_oracle(clips, annotations, proposals, shard, out, meta={"shard": shard})
    return _with_skips(skipped_out, summary)


def run_evaluate(
    method: str,
    predictions: list[PathLike],
    clips: PathLike,
    annotations: PathLike,
    split: str,
    out_dir: PathLike,
    evaluate: Mapping[str, Any],
    workers: int = 1,
) -> dict[str, Any]:
    """Score one method on one split: ``per_object.csv`` and ``summary.json`` in ``out_dir``."""
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
    )


def run_report(
    metrics_dir: PathLike,
    frames_dir: PathLike,
    annotations: PathLike,
    predictions_dir: PathLike,
    clips: PathLike,
    out_dir: PathLike,
    config: Mapping[str, Any],
    reconciliation: PathLike | None = None,
) -> Any:
    """The results table, the HTML page with the run's facts (from the full run ``config``) and
    the qualitative overlays (and the skip counts of ``reconciliation.csv`` when given)."""
    from nvos.report import build_report

    return build_report(
        metrics_dir, frames_dir, annotations, predictions_dir, clips, out_dir, dict(config),
        reconciliation,
    )  # fmt: skip


def run_export_davis(
    predictions_dir: PathLike,
    method: str,
    clips: PathLike,
    annotations: PathLike,
    out_dir: PathLike,
    layout: str = "davis",
    with_gt: bool = False,
    frames_dir: PathLike | None = None,
    splits: list[str] | None = None,
) -> Any:
    """A method's predictions as indexed PNGs in the DAVIS / VOST folder layout."""
    from nvos.export import ExportError, export_davis

    paths = sorted((Path(predictions_dir) / method).glob("*.parquet"))
    if not paths:
        raise ExportError(f"{predictions_dir}/{method}: no prediction shards")
    frames = sorted(Path(frames_dir).glob("*.parquet")) if frames_dir else ()
    return export_davis(paths, clips, annotations, out_dir, layout, with_gt, frames, splits)
