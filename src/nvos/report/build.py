"""The ``report`` stage: metrics of every method and split -> table.md, index.html, overlays."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

import pyarrow.parquet as pq

from nvos import storage
from nvos.config import load_schema, typed, with_defaults
from nvos.evaluation.truth import group_truth, read_annotations, tagged_objects
from nvos.layout import RunLayout
from nvos.logs import Progress
from nvos.methods.temporal import is_temporal
from nvos.report.facts import config_yaml, facts_markdown, run_facts
from nvos.report.html import ClipSection, render_html
from nvos.report.overlays import (
    Overlay,
    OverlayCounts,
    clip_overlays,
    iter_clip_frames,
    read_method_predictions,
    select_clips,
)
from nvos.report.rows import is_oracle, method_label, order_methods, row_infos
from nvos.report.selection import read_selections, selection_html, selection_markdown
from nvos.report.sweep import sweep_html, sweep_markdown
from nvos.report.table import (
    LEGEND,
    ORACLE,
    MetricsError,
    SplitTable,
    format_score,
    load_summaries,
    markdown_report,
    plural,
    skips_markdown,
    split_tables,
)
from nvos.report.videos import clip_videos
from nvos.rosa.sweep import read_sweep_table
from nvos.skips import read_reconciliation
from nvos.types import PathLike

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReportConfig:
    """The ``report`` config group (meanings and defaults: ``config/schema.yaml``)."""

    GROUP: ClassVar[tuple[str, ...]] = ("report",)

    title: str
    overlay_clips: int
    overlay_frames: int
    overlay_method: str | None
    overlay_alpha: float
    labels: dict[str, str]
    methods: list[str] | None


@dataclass
class ReportSummary:
    """What :func:`build_report` wrote."""

    table_path: str
    html_path: str
    splits: list[str]
    methods: list[str]
    overlay_method: str | None
    overlay_reason: str = ""
    config_path: str = ""
    overlay_candidates: int = 0
    overlays: list[str] = field(default_factory=list)
    video_method: str | None = None
    videos: list[str] = field(default_factory=list)
    stale_overlays_removed: int = 0
    clips_without_frames: int = 0
    frames_without_prediction: int = 0
    clips_skipped: int = 0


@dataclass(frozen=True)
class ReportInputs:
    """Every file the report reads: ``summaries`` (method, split) -> ``summary.json``,
    ``predictions`` method -> its ``predictions/<method>/<shard>.parquet`` files, ``frames`` the
    ``frames/<shard>.parquet`` files, the run's ``clips.parquet`` and ``annotations.parquet``,
    and ``selections`` method -> ``temporal/<method>/selection.json`` of the decoded methods."""

    summaries: Mapping[tuple[str, str], PathLike]
    predictions: Mapping[str, Sequence[PathLike]]
    frames: Sequence[PathLike]
    clips: PathLike
    annotations: PathLike
    selections: Mapping[str, PathLike] = field(default_factory=dict)
    masks: Mapping[str, Sequence[PathLike]] = field(default_factory=dict)
    """Propagated method -> its ``masks/<method>/<shard>.parquet`` files (the overlay videos)."""

    @classmethod
    def in_run(
        cls,
        layout: RunLayout,
        methods: Sequence[str],
        splits: Sequence[str],
        shards: Sequence[str],
        dense_methods: Sequence[str] = (),
    ) -> ReportInputs:
        """The files of ``methods`` x ``splits`` and ``shards`` in the run folder ``layout``;
        ``dense_methods``: those of ``methods`` with dense masks."""
        return cls(
            summaries={(m, s): layout.summary(m, s) for m in methods for s in splits},
            predictions={m: layout.method_predictions(m, shards) for m in methods},
            frames=[layout.frames(shard) for shard in shards],
            clips=layout.clips,
            annotations=layout.annotations,
            selections={m: layout.temporal_selection(m) for m in methods if is_temporal(m)},
            masks={m: [layout.masks(m, s) for s in shards] for m in dense_methods},
        )


def choose_overlay_method(
    tables: Sequence[SplitTable], predictions: Mapping[str, Sequence[PathLike]], wanted: str | None
) -> tuple[str | None, str]:
    """The method drawn in the overlays, and why (a sentence).

    ``wanted`` when given (it must have predictions); otherwise the non-oracle method with the
    best J&F on the first split that has one (ties: table order), else the oracle; only methods
    with prediction files count. (None, reason) when no method has predictions.
    """
    if wanted:
        if not predictions.get(wanted):
            raise MetricsError(f"report.overlay_method {wanted!r}: no predictions of that method")
        return wanted, "it is set by report.overlay_method."
    for table in tables:
        candidates = [
            s
            for s in table.present
            if not is_oracle(s.method)
            and s.scores.get("J&F") is not None
            and predictions.get(s.method)
        ]
        if candidates:
            best = max(s.scores["J&F"] for s in candidates)  # type: ignore[type-var]
            method = next(s.method for s in candidates if s.scores["J&F"] == best)
            return method, (
                f"it has the best J&F on {table.split} ({format_score(best)}) of the "
                f"{plural(len(candidates), 'method')} with predictions, the oracle left out "
                "(report.overlay_method: null)."
            )
    upper = next((m for m in (ORACLE, *predictions) if is_oracle(m) and predictions.get(m)), None)
    if upper is not None:  # the oracle, else a method composed on it (oracle+flow)
        return upper, "no other method has both predictions and a J&F."
    return None, "no method has predictions."


def _predicted_clips(paths: Sequence[PathLike]) -> set[str]:
    clips: set[str] = set()
    for path in paths:
        clips.update(pq.read_table(path, columns=["clip_id"]).column("clip_id").to_pylist())
    return clips


def _remove_stale(overlay_dir: Path, keep: set[str]) -> int:
    removed = 0
    if overlay_dir.is_dir():
        for path in [*overlay_dir.glob("*.jpg"), *overlay_dir.glob("*.mp4")]:
            if path.name not in keep:
                path.unlink()
                removed += 1
    return removed


def build_report(
    inputs: ReportInputs,
    out_dir: PathLike,
    config: Mapping[str, Any] | None = None,
    reconciliation: PathLike | None = None,
    now: datetime | None = None,
    sweep: PathLike | None = None,
) -> ReportSummary:
    """Write ``table.md``, ``index.html``, ``config.yaml`` and ``overlays/*.jpg`` in ``out_dir``.

    ``inputs``: every file read (:class:`ReportInputs`); ``config``: the run's full config (its
    ``report`` group: :class:`ReportConfig`), written to ``config.yaml`` and digested in the
    header (:mod:`nvos.report.facts`); ``reconciliation``: the run's ``reconciliation.csv``
    (:mod:`nvos.skips`), shown as a "Skipped clips" section; ``now``: the report's date
    (default: now, UTC); ``sweep``: a ``rosa.sweep``'s ``sweep.csv`` (:mod:`nvos.rosa.sweep`),
    shown as a "ROSA sweep" section.
    """
    run_config = dict(config or {})
    cfg = typed(run_config.get("report"), ReportConfig)
    out = Path(out_dir)
    metrics = load_summaries(inputs.summaries)
    if not metrics:
        raise MetricsError("no <method>/<split>/summary.json to report")
    found = sorted({m for per_split in metrics.values() for m in per_split})
    family_config = with_defaults(run_config, load_schema())  # the members read their groups
    infos = row_infos(family_config, sorted({*found, *(cfg.methods or [])}), cfg.labels)
    tables = split_tables(metrics, infos, cfg.methods)
    methods = order_methods(found, infos)
    config_text = config_yaml(run_config)
    config_path = out / "config.yaml"
    storage.write_text(config_path, config_text)
    facts = run_facts(run_config, inputs.clips, methods, config_text, now)
    skips = read_reconciliation(reconciliation) if reconciliation is not None else []
    selections = read_selections(inputs.selections)
    text = markdown_report(tables, cfg.title, facts_markdown(facts, infos))
    if selections:
        text += "\n" + selection_markdown(selections, infos)
    table_path = out / "table.md"
    sweep_rows = read_sweep_table(sweep) if sweep is not None else []
    text += "\n" + sweep_markdown(sweep_rows) if sweep_rows else ""
    storage.write_text(table_path, text + ("\n" + skips_markdown(skips) if skips else ""))

    overlay_method, reason = choose_overlay_method(tables, inputs.predictions, cfg.overlay_method)
    summary = ReportSummary(
        clips_skipped=sum(int(row["clips_skipped"]) for row in skips),
        table_path=str(table_path),
        html_path=str(out / "index.html"),
        splits=[t.split for t in tables],
        methods=methods,
        overlay_method=overlay_method,
        overlay_reason=reason,
        config_path=str(config_path),
    )
    sections: list[ClipSection] = []
    if overlay_method is not None and cfg.overlay_clips > 0:
        sections = _overlays(
            cfg, overlay_method, inputs, out, set(metrics), summary,
        )  # fmt: skip
    else:
        logger.warning("report: no overlays (%s)", reason if overlay_method is None else "0 clips")
    video_method, video_reason = choose_overlay_method(tables, inputs.masks, None)
    if video_method is not None and sections:
        sections = _with_videos(sections, video_method, inputs, out, run_config, cfg)
        summary.video_method = video_method
        summary.videos = [s.video.path for s in sections if s.video is not None]
        overlay_video = method_label(video_method, infos)
        video_reason = f"The videos show {overlay_video} ({video_method}): {video_reason}"
    keep = {Path(o.path).name for s in sections for o in s.overlays}
    keep |= {Path(s.video.path).name for s in sections if s.video is not None}
    summary.stale_overlays_removed = _remove_stale(out / "overlays", keep)
    overlay_text = ""
    if overlay_method is not None:
        overlay_text = overlay_sentences(
            method_label(overlay_method, infos), overlay_method, reason, len(sections),
            summary.overlay_candidates, cfg.overlay_frames,
        )  # fmt: skip
        if summary.videos:
            overlay_text += " " + video_reason + VIDEO_NOTE
    page = render_html(
        cfg.title,
        facts,
        tables,
        sections,
        overlay_text,
        {"table.md": "table.md", "config.yaml": "config.yaml"},
        LEGEND,
        skips,
        infos,
        [*selection_html(selections, infos), *([sweep_html(sweep_rows)] if sweep_rows else [])],
    )
    storage.write_text(out / "index.html", page)
    logger.info("report: %s", summary)
    return summary


VIDEO_NOTE = (
    " Each video (MP4, mpeg-4 part 2: open it in a player) shows the clip's dense masks on every "
    "propagated frame, the ground truth's outline on the annotated frames."
)


def _with_videos(
    sections: Sequence[ClipSection],
    method: str,
    inputs: ReportInputs,
    out: Path,
    run_config: Mapping[str, Any],
    cfg: ReportConfig,
) -> list[ClipSection]:
    """``sections`` with the overlay video of ``method``'s dense masks for each clip."""
    wanted = [s.clip_id for s in sections]
    rows = storage.read_table(inputs.clips, "clips").to_pylist()
    clips = {r["clip_id"]: r for r in rows if r["clip_id"] in wanted}
    objects = {c: tagged_objects(clips[c]["narration"], c) for c in wanted}
    truths = group_truth(read_annotations(inputs.annotations, wanted), inputs.annotations)
    folder_fps = float((run_config.get("dataset") or {}).get("folder_fps", 30.0))
    videos = clip_videos(
        inputs.masks[method], clips, objects, truths, out, folder_fps, cfg.overlay_alpha
    )
    return [dataclasses.replace(s, video=videos.get(s.clip_id)) for s in sections]


def overlay_sentences(
    label: str, method: str, reason: str, clips: int, candidates: int, frames: int
) -> str:
    """What the qualitative section shows, which method and why, and how the clips were chosen."""
    return (
        f"The overlays show {label} ({method}): {reason} "
        f"{plural(clips, 'clip')} of the {plural(candidates, 'annotated clip')} with tagged "
        "objects and predictions, chosen by the smallest SHA-1 of the clip id (not by score), "
        f"with up to {plural(frames, 'evenly spaced annotated frame')} each. Each tagged object's "
        "predicted mask (its first phrase) is filled and outlined in its colour; the white "
        "outline is the ground truth of all tagged objects."
    )


def _overlays(
    cfg: ReportConfig,
    method: str,
    inputs: ReportInputs,
    out: Path,
    splits: set[str],
    summary: ReportSummary,
) -> list[ClipSection]:
    paths = inputs.predictions.get(method, [])
    annotations_path = inputs.annotations
    clips = {
        row["clip_id"]: row
        for row in storage.read_table(
            inputs.clips, "clips", columns=["clip_id", "split", "narration"]
        ).to_pylist()
        if row["split"] in splits
    }
    annotated = set(
        pq.read_table(annotations_path, columns=["clip_id"]).column("clip_id").to_pylist()
    )
    candidates = [
        clip_id
        for clip_id in _predicted_clips(paths) & annotated & set(clips)
        if tagged_objects(clips[clip_id]["narration"], clip_id)
    ]
    summary.overlay_candidates = len(candidates)
    chosen = select_clips(candidates, cfg.overlay_clips)
    truths = group_truth(read_annotations(annotations_path, chosen), annotations_path)
    predictions = read_method_predictions(paths, chosen)
    counts = OverlayCounts()
    by_clip: dict[str, list[Overlay]] = {}
    progress = Progress(logger, len(chosen), "overlay clips")
    for frames in iter_clip_frames(list(inputs.frames), chosen):
        objects = tagged_objects(clips[frames.clip_id]["narration"], frames.clip_id)
        by_clip[frames.clip_id] = clip_overlays(
            frames, objects, truths[frames.clip_id], predictions, out,
            cfg.overlay_frames, cfg.overlay_alpha, counts,
        )  # fmt: skip
        progress.update()
    missing = [c for c in chosen if c not in by_clip]
    if missing:
        logger.warning(
            "report: %s no annotated frames: %s",
            plural(len(missing), "chosen clip has", "chosen clips have"),
            missing,
        )
    summary.clips_without_frames = len(missing)
    summary.frames_without_prediction = counts.frames_without_prediction
    if counts.frames_without_prediction:
        logger.warning(
            "report: %s no prediction of %s",
            plural(
                counts.frames_without_prediction,
                "(object, frame) overlay had",
                "(object, frame) overlays had",
            ),
            method,
        )
    sections = [
        ClipSection(c, clips[c]["split"], clips[c]["narration"], tuple(by_clip[c]))
        for c in chosen
        if c in by_clip
    ]
    summary.overlays = [o.path for s in sections for o in s.overlays]
    return sections
