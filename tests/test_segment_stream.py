"""The streaming segmenter (nvos.segment.stream) on a sliding square with overlapping windows."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from nvos import rle, storage
from nvos.exports.formats import export_masks
from nvos.segment.stream import (
    NarrationWindow,
    StreamSettings,
    clip_windows,
    keyframe_schedule,
    segment_stream,
)
from nvos.segment.writer import table_writer
from nvos.segment.zero_shot import KeyframeRegions
from nvos.video import VideoInfo
from tests.temporal_scenes import HEIGHT, WIDTH, iou, scene_frame, square_mask

BOX = np.zeros((HEIGHT, WIDTH), bool)
BOX[170:220, 250:300] = True  # a still patch of the background
EMBED = {"square": np.array([1.0, 0.0, 0.0]), "box": np.array([0.0, 1.0, 0.0])}


class TruthScorer:
    """Regions = the true square and the still box, embedded one-hot; phrases likewise."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def regions(self, frame_index: int, image: np.ndarray) -> KeyframeRegions:
        self.calls.append(frame_index)
        masks = np.stack([square_mask(frame_index), BOX])
        embeddings = np.stack([EMBED["square"], EMBED["box"]])
        return KeyframeRegions(frame_index, tuple(rle.encode_many(masks)), HEIGHT, WIDTH,
                               embeddings)  # fmt: skip

    def phrases(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([EMBED[t] for t in texts])


def window(name: str, first: int, last: int, *texts: str) -> NarrationWindow:
    return NarrationWindow(name, first, last, texts, tuple(range(len(texts))), (None,) * len(texts))


WINDOWS = [
    window("w0", 0, 39, "square"),
    window("w1", 20, 59, "box", "square"),
    window("w2", 52, 57, "square"),
]


def frames(stop: int = 60):
    return ((t, scene_frame(t)) for t in range(stop))


def test_keyframe_schedule_is_the_grid_inside_windows_plus_missed_windows() -> None:
    assert keyframe_schedule(WINDOWS, 10) == [0, 10, 20, 30, 40, 50, 54]
    assert keyframe_schedule(WINDOWS, 20) == [0, 20, 40, 54]
    assert keyframe_schedule([window("a", 100, 130, "x")], 50) == [100]
    assert keyframe_schedule([window("a", 101, 130, "x")], 50) == [115]


def test_every_phrase_gets_a_mask_on_every_frame_of_its_window(tmp_path: Path) -> None:
    scorer = TruthScorer()
    path = tmp_path / "dense.parquet"
    with table_writer(path, "dense_masks", {"stage": "test"}) as writer:
        summary = segment_stream(frames(), WINDOWS, scorer, StreamSettings(key_every=10), writer)
    schedule = [0, 10, 20, 30, 40, 50, 54]
    assert scorer.calls == schedule  # each keyframe scored once, shared by the windows
    table = storage.read_table(path, "dense_masks").to_pylist()
    assert storage.read_provenance(path) == {"stage": "test"}
    assert len(table) == summary.rows == 40 + 2 * 40 + 6
    assert summary.dense_frames == 40 + 40 + 6 and summary.frames_read == 60
    seen = {(r["clip_id"], r["phrase_id"], r["frame_index"]) for r in table}
    expected = {(w.narration_id, p, f) for w in WINDOWS for p in w.phrase_ids
                for f in range(w.first, w.last + 1)}  # fmt: skip
    assert seen == expected
    keyframes = {(w.narration_id, k) for w in WINDOWS for k in schedule if w.first <= k <= w.last}
    for row in table:
        mask = rle.decode(row["rle_counts"], row["height"], row["width"])
        texts = next(w.texts for w in WINDOWS if w.narration_id == row["clip_id"])
        truth = square_mask(row["frame_index"]) if texts[row["phrase_id"]] == "square" else BOX
        is_key = (row["clip_id"], row["frame_index"]) in keyframes
        assert row["source"] == ("keyframe" if is_key else "propagated")
        if is_key:
            assert np.array_equal(mask, truth) and row["score"] == pytest.approx(1.0)
        elif truth is BOX:
            assert iou(mask, truth) > 0.9
        else:  # DIS flow follows the 3 px/frame slide better than copying the nearest keyframe
            frame = row["frame_index"]
            nearest = min((k for c, k in keyframes if c == row["clip_id"]),
                          key=lambda k: abs(k - frame))  # fmt: skip
            assert iou(mask, truth) > max(0.6, iou(square_mask(nearest), truth)), frame
    # Frames 0..39 are held until w0 ends, then 20..59 for w1; never the whole video.
    assert summary.max_buffered_frames == 40
    assert summary.windows_without_phrases == [] and summary.absent_keyframe_masks == 0
    # The exports read the segmenter's output (with a phrases table of the windows).
    phrases = [(w.narration_id, p, t, 0, len(t), None, "parser") for w in WINDOWS
               for p, t in zip(w.phrase_ids, w.texts, strict=True)]  # fmt: skip
    names = storage.SCHEMAS["phrases"].names
    columns = {n: [row[i] for row in phrases] for i, n in enumerate(names)}
    storage.write_table(pa.table(columns), tmp_path / "phrases.parquet", "phrases")
    counts = export_masks("coco", [path], tmp_path / "phrases.parquet", tmp_path / "coco.json")
    assert (counts.clips, counts.tracks, counts.masks) == (3, 4, len(table))
    assert counts.categories == 2 and counts.frames == 40 + 40 + 6


def test_clip_windows_from_clip_and_phrase_rows() -> None:
    info = VideoInfo("v.mp4", HEIGHT, WIDTH, frame_count=100, fps=10.0, is_folder=False)
    clips = [
        {"clip_id": "a", "start_sec": 1.0, "end_sec": 2.5},
        {"clip_id": "b", "start_sec": 9.5, "end_sec": None},
        {"clip_id": "c", "start_sec": 20.0, "end_sec": 21.0},  # after the video's end
    ]
    phrases = {"a": [{"phrase_id": 0, "text": "red cup", "object_id": "3"}]}
    windows, empty = clip_windows(info, clips, phrases)
    assert windows == [
        NarrationWindow("a", 10, 24, ("red cup",), (0,), ("3",)),
        NarrationWindow("b", 95, 99, (), (), ()),
    ]
    assert empty == ["c"]


def test_windows_without_phrases_are_listed_and_short_sources_named(tmp_path: Path) -> None:
    settings = StreamSettings(key_every=20)
    empty = window("quiet", 5, 9)
    with table_writer(tmp_path / "a.parquet", "dense_masks") as writer:
        summary = segment_stream(frames(12), [empty], TruthScorer(), settings, writer)
    assert summary.windows_without_phrases == ["quiet"] and summary.rows == 0
    with pytest.raises(
        ValueError, match=r"ended at frame 49, before the end of narration 'w2' \(frame 57\)"
    ):
        with table_writer(tmp_path / "b.parquet", "dense_masks") as writer:
            segment_stream(frames(50), WINDOWS, TruthScorer(), settings, writer)
    assert not (tmp_path / "b.parquet").exists()  # nothing that looks finished


def test_zero_shot_scorer_embeds_proposals_and_prompts() -> None:
    from nvos.features.clip_model import load_clip
    from nvos.proposals.classical import ClassicalBackend
    from nvos.segment.zero_shot import ZeroShotScorer

    scorer = ZeroShotScorer(ClassicalBackend(), load_clip("nvos-tiny-vit", None), max_regions=8)
    found = scorer.regions(3, scene_frame(3))
    assert 0 < len(found.counts) <= 8 and (found.height, found.width) == (HEIGHT, WIDTH)
    assert found.embeddings.shape == (len(found.counts), scorer.encoder.embed_dim)
    assert np.allclose(np.linalg.norm(found.embeddings, axis=1), 1.0, atol=1e-3)
    assert all(rle.area(c, HEIGHT, WIDTH) > 0 for c in found.counts)
    texts = scorer.phrases(["red cup", "knife"])
    assert texts.shape == (2, scorer.encoder.embed_dim)
    assert np.allclose(np.linalg.norm(texts, axis=1), 1.0, atol=1e-5)
    with pytest.raises(ValueError, match="phrase"):
        ZeroShotScorer(ClassicalBackend(), scorer.encoder, prompt="a photo")
