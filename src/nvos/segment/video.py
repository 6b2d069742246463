"""``nvos segment VIDEO --narration "..." --out DIR``: one video through the segment stage.

Nothing here segments: the command writes a one-clip manifest and a config layer into ``DIR``,
runs ``snakemake segment`` on them (the same rules as any run: cached, resumable, logged, with the
provenance of every file), and then draws the overlay video and writes the YouTube-VIS export of
the masks. The run folder is ``DIR/results/<clip>/``; rerunning the command reuses what is done.

The method: with ``--model RUN/models/<variant>/checkpoint.pt``, ``<variant>+temporal+flow`` with
the decoder settings ``RUN`` chose on its val split (``<variant>+flow`` when ``RUN`` has none);
without, the zero-shot ``sam_clip+flow``. A ROSA checkpoint records the features it was trained on
(``features``: the CLIP model, its weights and the crop settings, :func:`nvos.rosa.stage.
features_record`): the run computes the same ones, and a ``--config`` asking for others is refused
before anything runs.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from nvos.config import ConfigError
from nvos.errors import NvosError
from nvos.types import PathLike

__all__ = ["SegmentedVideo", "model_settings", "segment_video", "snakefile"]

logger = logging.getLogger(__name__)

SPLIT = "test"
"""The one clip's split: any configured split does (nothing is trained or scored)."""

FEATURE_IDENTITY = ("clip", "crop")
"""The ``features`` keys a checkpoint's weights depend on (the CLIP model and the crops)."""


@dataclass(frozen=True)
class SegmentedVideo:
    """Where :func:`segment_video` put everything."""

    run: Path
    masks: Path
    video: Path
    json: Path
    method: str
    phrases: int
    frames: int


def snakefile() -> Path:
    """The workflow's ``Snakefile`` (next to the package in a checkout or editable install)."""
    found = Path(__file__).resolve().parents[3] / "Snakefile"
    if not found.is_file():
        raise ConfigError(
            f"nvos segment runs the workflow, but {found} does not exist: run it from a "
            "checkout of the nvos repository (pip install -e .)"
        )
    return found


def model_settings(model: PathLike) -> dict[str, Any]:
    """What a checkpoint needs of the run that uses it: ``variant`` (its folder's name),
    ``features`` (the group it was trained on), ``rosa`` (its settings that prediction reads),
    ``selection`` (its run's decoder settings for ``<variant>+temporal``, or None)."""
    import torch

    path = Path(model)
    if not path.is_file():
        raise FileNotFoundError(f"--model {model}: no such file")
    state = torch.load(path, map_location="cpu", weights_only=False)
    record = state.get("features") if isinstance(state, dict) else None
    if not record or not record.get("config"):
        raise ConfigError(
            f"--model {model}: the checkpoint does not record the features it was trained on "
            "(trained before nvos recorded them): train it again"
        )
    variant = path.parent.name
    selection = path.parents[2] / "temporal" / f"{variant}+temporal" / "selection.json"
    rosa = state.get("config") or {}
    return {
        "variant": variant,
        "features": record["config"],
        "rosa": {k: rosa[k] for k in ("frames_per_clip", "max_regions") if k in rosa},
        "selection": str(selection.resolve()) if selection.is_file() else None,
    }


def check_features(
    wanted: Mapping[str, Any], trained: Mapping[str, Any], model: PathLike, where: str
) -> None:
    """Raise :class:`ConfigError` when ``wanted`` (a config's ``features``) differs from the
    group the checkpoint was ``trained`` on in a key its weights depend on."""
    for key in FEATURE_IDENTITY:
        mine, theirs = dict(wanted.get(key) or {}), dict(trained.get(key) or {})
        differ = {k: v for k, v in mine.items() if k in theirs and theirs[k] != v}
        if differ:
            raise ConfigError(
                f"{where}: features.{key} sets {differ}, but --model {model} was trained on "
                f"features.{key} {theirs}: remove it from the config, or use a model trained on "
                "these features"
            )


def clip_name(video: PathLike) -> str:
    """The clip id of a video: its file name without the suffix, unsafe characters replaced."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", Path(video).stem) or "video"


def write_run_files(
    video: PathLike,
    narration: str,
    out: Path,
    start: float | None,
    end: float | None,
    model: PathLike | None,
    user_layers: Sequence[PathLike],
) -> tuple[Path, dict[str, Any], str, str]:
    """The one-clip manifest and the config layer in ``out``: (layer, the config it gives,
    clip, method)."""
    from nvos.checks import check_config
    from nvos.config import load_config

    if not narration.strip():
        raise ConfigError("--narration is empty")
    clip = clip_name(video)
    line: dict[str, Any] = {
        "clip_id": clip, "video": str(Path(video).resolve()), "split": SPLIT,
        "narration": narration,
    }  # fmt: skip
    if start is not None:
        line["start_sec"] = float(start)
    if end is not None:
        line["end_sec"] = float(end)
    out.mkdir(parents=True, exist_ok=True)
    manifest = out / "manifest.jsonl"
    manifest.write_text(json.dumps(line) + "\n")
    layer: dict[str, Any] = {
        "run": clip,
        "results_dir": str((out / "results").resolve()),
        "dataset": {"manifest": str(manifest.resolve())},
        "predict": {"splits": [SPLIT]},
        "evaluate": {"methods": [], "splits": [SPLIT], "train_split": None},  # nothing scored
        "temporal": {"decode": {"methods": []}, "propagate": {"methods": []}},
    }
    if model is None:
        segment = {"method": "sam_clip+flow"}
    else:
        settings = model_settings(model)
        for given in user_layers:  # the user's own features must be the checkpoint's
            mine = yaml.safe_load(Path(given).read_text()) or {}
            check_features(mine.get("features") or {}, settings["features"], model, str(given))
        variant = settings["variant"]
        steps = "+temporal+flow" if settings["selection"] else "+flow"
        segment = {
            "method": f"{variant}{steps}",
            "model": str(Path(model).resolve()),
            "selection": settings["selection"],
        }
        layer["features"] = settings["features"]
        layer["rosa"] = {**settings["rosa"], "variants": {variant: {}}}
    layer["segment"] = {**segment, "splits": None, "phrases": "narration"}
    path = out / "config.yaml"
    path.write_text(yaml.safe_dump(layer, sort_keys=False))
    config = load_config([*user_layers, path])
    check_config(config)  # schema and cross-checks before any job
    return path, config, clip, layer["segment"]["method"]


def segment_video(
    video: PathLike,
    narration: str,
    out: PathLike,
    start: float | None = None,
    end: float | None = None,
    model: PathLike | None = None,
    user_layers: Sequence[PathLike] = (),
    cores: int = 2,
) -> SegmentedVideo:
    """Segment every phrase of ``narration`` on every frame of ``video`` (module docstring)."""
    from nvos.layout import RunLayout
    from nvos.segment.scope import segment_layout
    from nvos.workflow import shard_list

    out = Path(out)
    layer, config, clip, method = write_run_files(
        video, narration, out, start, end, model, list(user_layers)
    )
    defaults = snakefile().parent / "config" / "config.yaml"
    command = [
        sys.executable, "-m", "snakemake", "segment", "-s", str(snakefile()),
        "-d", str(out.resolve()), "--cores", str(cores), "--resources", f"gpu={cores}",
        "--configfile", str(defaults), *map(str, user_layers), str(layer),
    ]  # fmt: skip
    logger.info("running: %s", " ".join(command))
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise NvosError(
            f"snakemake segment failed (exit {done.returncode}; the job logs are under "
            f"{out / 'results'}); its output ends with:\n{done.stderr[-3000:]}"
        )
    layout = RunLayout.of(config)
    scope = segment_layout(config, layout)
    (shard,) = shard_list(config)  # one clip, one shard
    masks = Path(layout.segment_masks(shard))
    return _deliver(layout.clips, scope.phrases, masks, out, clip, method, config)


def _deliver(
    clips_path: str, phrases_path: str, masks: Path, out: Path, clip: str, method: str,
    config: Mapping[str, Any],
) -> SegmentedVideo:  # fmt: skip
    """The overlay MP4 and the YouTube-VIS JSON of the run's masks, in ``out``."""
    from nvos import storage
    from nvos.evaluation.truth import TaggedObject
    from nvos.exports.formats import export_masks
    from nvos.report.videos import dense_clip_masks, write_clip_video

    row = storage.read_table(clips_path, "clips").to_pylist()[0]
    phrases = storage.read_table(phrases_path, "phrases").to_pylist()
    objects = [
        TaggedObject(str(p["phrase_id"]), (int(p["phrase_id"]),), p["text"]) for p in phrases
    ]
    dense = dense_clip_masks([masks], clip)
    video_path = out / f"{clip}.mp4"
    frames = write_clip_video(
        video_path, row, objects, None, dense, float(config["dataset"]["folder_fps"]),
        float(config["report"]["overlay_alpha"]),
    )  # fmt: skip
    json_path = out / f"{clip}.ytvis.json"
    export_masks("ytvis", [masks], phrases_path, json_path, clips_path,
                 meta={"method": method, "masks": str(masks)})  # fmt: skip
    return SegmentedVideo(masks.parent.parent, masks, video_path, json_path, method,
                          len(phrases), frames)  # fmt: skip
