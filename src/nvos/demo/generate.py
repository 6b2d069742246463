"""Write the demo dataset: mp4 videos (some shared by two clip windows) and ``manifest.jsonl``.

The manifest follows DESIGN §4: paths relative to the manifest, ``frame_index`` the index of the
decoded frame in the video, masks as COCO compressed RLE ``{"size": [h, w], "counts": str}``.
The manifest is written last and atomically (an old one is removed first), so an interrupted run
leaves no manifest.
"""

from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing
import os
import shutil
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from nvos import rle
from nvos.demo.narration import free_narration, tagged_narration
from nvos.demo.plan import FPS, HEIGHT, WIDTH, ClipPlan, plan_clip
from nvos.demo.render import RenderedClip, render_clip
from nvos.demo.vocabulary import Vocabulary, load_vocabulary
from nvos.storage import write_text
from nvos.types import PathLike

logger = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.jsonl"
# Annotated frames of a val / test clip: the centre frames of these segments of the clip cut into
# ANNOTATION_SEGMENTS equal parts. With the default `frames.per_clip: 6` they are exactly frames the
# `frames` stage samples anyway, so they cost no extra decoding, proposals or features.
ANNOTATION_SEGMENTS = 6
ANNOTATED_SEGMENTS = (0, 2, 3, 5)
VAL_FRACTION = TEST_FRACTION = 0.15
LEAD_IN_FRAMES = 5  # frames before the first clip of a shared video (outside every window)
MAX_CODEC_ERROR = 12.0  # mean absolute difference (0-255) allowed between rendered and decoded


@dataclass(frozen=True)
class DemoClip:
    """One generated clip: its plan, rendered frames / labels, narration and tagged object ids."""

    split: str
    plan: ClipPlan
    rendered: RenderedClip
    narration: str
    tagged: tuple[str, ...]


def split_counts(n_clips: int) -> dict[str, int]:
    """Clips per split: :data:`VAL_FRACTION` val and :data:`TEST_FRACTION` test (rounded; at least
    1 each from 3 clips), the rest (about 70%) train: weak supervision needs the training clips
    more than evaluation does."""
    if n_clips < 1:
        raise ValueError(f"the demo needs at least 1 clip, got {n_clips}")
    n_val = max(1, round(n_clips * VAL_FRACTION)) if n_clips >= 2 else 0
    n_test = max(1, round(n_clips * TEST_FRACTION)) if n_clips >= 3 else 0
    return {"train": n_clips - n_val - n_test, "val": n_val, "test": n_test}


def video_groups(n_clips: int) -> list[tuple[str, list[int]]]:
    """(split, clip indices) per video: within each split, videos hold 2, 1, 2, 1, ... clips."""
    groups: list[tuple[str, list[int]]] = []
    index = 0
    for split, count in split_counts(n_clips).items():
        remaining, size = count, 2
        while remaining > 0:
            take = min(size, remaining)
            groups.append((split, list(range(index, index + take))))
            index, remaining, size = index + take, remaining - take, 3 - size
    return groups


def make_clip(vocab: Vocabulary, seed: int, index: int, split: str) -> DemoClip:
    """Generate clip ``index`` of the demo with ``seed`` (a pure function of its arguments)."""
    rng = np.random.default_rng([seed, index])
    plan = plan_clip(vocab, rng, int(rng.integers(33, 40)))
    rendered = render_clip(plan, vocab)
    if split == "train":
        return DemoClip(split, plan, rendered, free_narration(vocab, plan, rng), ())
    text, tagged = tagged_narration(vocab, plan, rng)
    return DemoClip(split, plan, rendered, text, tuple(tagged))


def annotated_frames(n_frames: int) -> list[int]:
    """Clip-local indices of the annotated frames, spread over the clip: the centre frame of
    segments :data:`ANNOTATED_SEGMENTS` of :data:`ANNOTATION_SEGMENTS` equal segments (the
    ``frames`` stage's rule for sampled frames, :func:`nvos.frames.sample_frame_indices`)."""
    n = ANNOTATION_SEGMENTS
    return sorted({((2 * i + 1) * n_frames) // (2 * n) for i in ANNOTATED_SEGMENTS})


def clip_annotations(clip: DemoClip, first_frame: int) -> list[dict[str, Any]]:
    """Manifest annotations of a clip: visible masks of its tagged objects on annotated frames."""
    out = []
    for local in annotated_frames(clip.plan.n_frames):
        objects = {}
        for oid in clip.tagged:
            counts = rle.encode(clip.rendered.labels[local] == int(oid))
            objects[oid] = {"size": [HEIGHT, WIDTH], "counts": counts.decode("ascii")}
        out.append({"frame_index": first_frame + local, "objects": objects})
    return out


def write_video(path: Path, frames: np.ndarray) -> None:
    """Write BGR frames (T, H, W, 3) uint8 as mp4 ('mp4v') and check the decoded frames.

    Raises RuntimeError naming the file when the decoded frame count differs from T or a decoded
    frame is too far from the rendered one (the ground-truth masks would not match it).
    """
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (WIDTH, HEIGHT))
    if not writer.isOpened():
        raise RuntimeError(f"{path}: OpenCV cannot open an mp4v video writer")
    for frame in frames:
        writer.write(frame)
    writer.release()
    capture = cv2.VideoCapture(str(path))
    decoded = 0
    try:
        while True:
            ok, image = capture.read()
            if not ok:
                break
            if decoded < len(frames):
                error = float(np.abs(image.astype(np.int16) - frames[decoded]).mean())
                if error > MAX_CODEC_ERROR:
                    raise RuntimeError(f"{path}: decoded frame {decoded} differs by {error:.1f}")
            decoded += 1
    finally:
        capture.release()
    if decoded != len(frames):
        raise RuntimeError(f"{path}: wrote {len(frames)} frames but {decoded} decode")


def _write_video(
    vocab: Vocabulary, seed: int, number: int, split: str, indices: list[int], build: Path
) -> list[str]:
    """Render video ``number`` (the clips ``indices``) into ``build``; its manifest lines."""
    name = f"demo_v{number:03d}"
    clips = [make_clip(vocab, seed, i, split) for i in indices]
    segments = [clip.rendered.frames for clip in clips]
    first = LEAD_IN_FRAMES if len(clips) > 1 else 0
    if first:
        segments.insert(0, np.repeat(clips[0].rendered.frames[:1], first, axis=0))
    write_video(build / f"{name}.mp4", np.concatenate(segments, axis=0))
    lines = []
    for j, clip in enumerate(clips):
        record = {
            "clip_id": f"{name}_c{j}",
            "video": f"videos/{name}.mp4",
            "start_sec": first / FPS,
            "end_sec": (first + clip.plan.n_frames) / FPS,
            "split": split,
            "narration": clip.narration,
            "annotations": clip_annotations(clip, first) if clip.tagged else [],
        }
        lines.append(json.dumps(record))
        first += clip.plan.n_frames
    return lines


def generate_demo(
    out_dir: Path,
    n_clips: int,
    seed: int,
    vocabulary: PathLike | None = None,
    workers: int = 1,
) -> Path:
    """Generate the demo dataset into ``out_dir``; return the path of its ``manifest.jsonl``.

    ``n_clips`` clips (:func:`split_counts`: 70% train, 15% val, 15% test) of about 3 s at 12 fps,
    320x240, in ``out_dir/videos/*.mp4``. Same ``seed`` -> identical manifest bytes and frames,
    whatever ``workers`` (processes rendering videos side by side; every clip is drawn from its
    own seed and index, never from shared random state).
    """
    if seed < 0:
        raise ValueError(f"demo seed must be >= 0, got {seed}")
    vocab = load_vocabulary(vocabulary)
    groups = video_groups(n_clips)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = out_dir / MANIFEST_NAME
    manifest.unlink(missing_ok=True)
    build = Path(tempfile.mkdtemp(prefix=".demo-build-", dir=out_dir))
    lines: list[str] = []
    jobs = [(vocab, seed, n, split, list(ix), build) for n, (split, ix) in enumerate(groups)]
    try:
        with contextlib.ExitStack() as stack:
            if workers > 1:
                pool = stack.enter_context(
                    ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
                )
                videos = pool.map(_write_video, *zip(*jobs, strict=True))
            else:
                videos = (_write_video(*job) for job in jobs)
            for number, video_lines in enumerate(videos):  # in order, whatever the workers
                lines.extend(video_lines)
                logger.info(
                    "demo: video %d/%d written (%d clips)", number + 1, len(groups), len(lines)
                )
        videos_dir = out_dir / "videos"
        videos_dir.mkdir(exist_ok=True)
        for path in sorted(build.glob("*.mp4")):
            os.replace(path, videos_dir / path.name)
    finally:
        shutil.rmtree(build, ignore_errors=True)
    write_text(manifest, "\n".join(lines) + "\n")
    logger.info("demo: %d clips in %d videos -> %s", len(lines), len(groups), manifest)
    return manifest
