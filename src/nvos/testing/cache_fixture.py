"""A synthetic feature cache with the pipeline's real file layout, for tests and benchmarks.

Writes, under ``root`` (laid out like ``results/<run>/``): ``clips.parquet``, ``phrases.parquet``,
``frames/<shard>.parquet`` (metadata + a tiny placeholder ``jpeg``), ``proposals/<shard>.parquet``
(box-shaped masks as COCO RLE, ``proposal_id`` in descending ``predicted_iou * stability_score``
order as the proposals stage writes them), ``features/<shard>.regions.parquet`` (rows of a frame in
a shuffled order, so readers must not rely on it) and ``features/<shard>.text.parquet``
(``phrase_id`` -1 = the narration). Embeddings are random unit vectors (float16).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from nvos import rle, storage
from nvos.types import PathLike

FPS = 10.0


@dataclass(frozen=True)
class SyntheticClip:
    """The shape of one synthetic clip.

    ``proposals`` is the number of proposals of every frame, or one count per frame (frames in
    ascending ``frame_index`` order; 0 = a frame without proposal). ``phrases`` is the number of
    object phrases (0 = a clip without phrase); ``tagged`` gives them object ids.
    """

    clip_id: str
    shard: str = "s00000"
    split: str = "train"
    sampled_frames: int = 4
    annotated_frames: int = 2
    proposals: int | Sequence[int] = 8
    phrases: int = 3
    tagged: bool = True

    @property
    def n_frames(self) -> int:
        """Stored frames of the clip (sampled + annotated)."""
        return self.sampled_frames + self.annotated_frames

    def proposal_counts(self) -> list[int]:
        """Proposals per frame, one entry per stored frame."""
        if isinstance(self.proposals, int):
            return [self.proposals] * self.n_frames
        counts = list(self.proposals)
        if len(counts) != self.n_frames:
            raise ValueError(
                f"clip {self.clip_id}: {len(counts)} proposal counts, {self.n_frames} frames"
            )
        return counts


def synthetic_clips(
    n: int,
    clips_per_shard: int,
    splits: Sequence[str] = ("train",),
    **shape: object,
) -> list[SyntheticClip]:
    """``n`` clips c00000... in shards of ``clips_per_shard``, splits cycling over ``splits``."""
    return [
        SyntheticClip(
            clip_id=f"c{i:05d}",
            shard=f"s{i // clips_per_shard:05d}",
            split=splits[i % len(splits)],
            **shape,  # type: ignore[arg-type]
        )
        for i in range(n)
    ]


def _unit_f16(rng: np.random.Generator, n: int, dim: int) -> pa.FixedSizeListArray:
    values = rng.standard_normal((n, dim), dtype=np.float32)
    values /= np.linalg.norm(values, axis=1, keepdims=True) + 1e-12
    return pa.FixedSizeListArray.from_arrays(pa.array(values.astype(np.float16).ravel()), dim)


def write_synthetic_cache(
    root: PathLike,
    clips: Sequence[SyntheticClip],
    dim: int = 16,
    seed: int = 0,
    frame_size: tuple[int, int] = (24, 32),
) -> list[str]:
    """Write the synthetic cache of ``clips`` under ``root``; return the shard ids in order."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    height, width = frame_size
    shards = list(dict.fromkeys(c.shard for c in clips))
    clip_rows: dict[str, list[object]] = {name: [] for name in storage.SCHEMAS["clips"].names}
    phrase_rows: dict[str, list[object]] = {name: [] for name in storage.SCHEMAS["phrases"].names}
    for clip in clips:
        duration = clip.n_frames * 3 / FPS
        for name, value in (
            ("clip_id", clip.clip_id),
            ("video", f"videos/{clip.clip_id}.mp4"),
            ("start_sec", 0.0),
            ("end_sec", duration),
            ("fps", FPS),
            ("split", clip.split),
            ("narration", " and ".join(f"object {k}" for k in range(clip.phrases))),
            ("shard", clip.shard),
        ):
            clip_rows[name].append(value)
        for k in range(clip.phrases):
            phrase_rows["clip_id"].append(clip.clip_id)
            phrase_rows["phrase_id"].append(k)
            phrase_rows["text"].append(f"object {k}")
            phrase_rows["char_start"].append(0)
            phrase_rows["char_end"].append(8)
            phrase_rows["object_id"].append(str(k + 1) if clip.tagged else None)
            phrase_rows["source"].append("tag" if clip.tagged else "parser")
    storage.write_table(pa.table(clip_rows), root / "clips.parquet", "clips")
    storage.write_table(pa.table(phrase_rows), root / "phrases.parquet", "phrases")
    for shard in shards:
        _write_shard(root, shard, [c for c in clips if c.shard == shard], dim, rng, height, width)
    return shards


def _write_shard(
    root: Path,
    shard: str,
    clips: Sequence[SyntheticClip],
    dim: int,
    rng: np.random.Generator,
    height: int,
    width: int,
) -> None:
    frames: dict[str, list[object]] = {name: [] for name in storage.SCHEMAS["frames"].names}
    props: dict[str, list[object]] = {name: [] for name in storage.SCHEMAS["proposals"].names}
    regions: dict[str, list[object]] = {"clip_id": [], "frame_index": [], "proposal_id": []}
    text: dict[str, list[object]] = {"clip_id": [], "phrase_id": []}
    for clip in clips:
        roles = ["sampled"] * clip.sampled_frames + ["annotated"] * clip.annotated_frames
        roles = [roles[i] for i in rng.permutation(len(roles))]
        for j, (role, count) in enumerate(zip(roles, clip.proposal_counts(), strict=True)):
            frame_index = 3 * j
            for name, value in (
                ("clip_id", clip.clip_id),
                ("frame_index", frame_index),
                ("time_sec", frame_index / FPS),
                ("height", height),
                ("width", width),
                ("role", role),
                ("jpeg", b"\xff\xd8"),
            ):
                frames[name].append(value)
            scores = rng.uniform(0.5, 1.0, size=(count, 2)).astype(np.float32)
            order = np.argsort(-(scores[:, 0] * scores[:, 1]), kind="stable")
            masks = np.zeros((count, height, width), dtype=bool)
            corners = np.zeros((count, 4), np.float32)  # x, y, w, h of each box mask
            for p in range(count):
                x0, y0 = rng.integers(0, width - 2), rng.integers(0, height - 2)
                x1, y1 = rng.integers(x0 + 1, width), rng.integers(y0 + 1, height)
                masks[p, y0:y1, x0:x1] = True
                corners[p] = (x0, y0, x1 - x0, y1 - y0)
            counts = rle.encode_many(masks) if count else []
            for pid, p in enumerate(order):
                props["clip_id"].append(clip.clip_id)
                props["frame_index"].append(frame_index)
                props["proposal_id"].append(pid)
                props["height"].append(height)
                props["width"].append(width)
                props["rle_counts"].append(counts[p])
                props["bbox"].append(corners[p].tolist())
                props["area"].append(int(corners[p, 2] * corners[p, 3]))
                props["predicted_iou"].append(float(scores[p, 0]))
                props["stability_score"].append(float(scores[p, 1]))
            for pid in rng.permutation(count):
                regions["clip_id"].append(clip.clip_id)
                regions["frame_index"].append(frame_index)
                regions["proposal_id"].append(int(pid))
        for k in range(-1, clip.phrases):
            text["clip_id"].append(clip.clip_id)
            text["phrase_id"].append(k)
    n_regions, n_text = len(regions["clip_id"]), len(text["clip_id"])
    storage.write_table(pa.table(frames), root / "frames" / f"{shard}.parquet", "frames")
    storage.write_table(
        pa.table(props, schema=storage.SCHEMAS["proposals"]),
        root / "proposals" / f"{shard}.parquet",
        "proposals",
    )
    regions_table = pa.table(
        {**regions, "embedding": _unit_f16(rng, n_regions, dim)}, schema=storage.regions_schema(dim)
    )
    storage.write_table(
        regions_table, root / "features" / f"{shard}.regions.parquet", storage.regions_schema(dim)
    )
    text_table = pa.table(
        {
            **text,
            "embedding_context": _unit_f16(rng, n_text, dim),
            "embedding_plain": _unit_f16(rng, n_text, dim),
        },
        schema=storage.text_schema(dim),
    )
    storage.write_table(
        text_table, root / "features" / f"{shard}.text.parquet", storage.text_schema(dim)
    )
