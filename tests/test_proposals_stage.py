"""The proposals stage with a fake backend: schema, RLE round trip, ordering, empty frames."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from nvos import rle, storage
from nvos.frames import encode_jpeg
from nvos.proposals.base import FrameProposals, proposal_scores
from nvos.proposals.classical import ClassicalBackend
from nvos.proposals.stage import (
    build_backend,
    generate_proposals,
    read_empty_frames,
    read_proposals,
)

HEIGHT, WIDTH = 24, 32


class FakeBackend:
    """Proposals = horizontal bands of the image brighter than k/8 (k = 1..7), scores from k.

    A black image has no band, hence no proposal. Records the batch sizes it was called with.
    """

    name = "fake"

    def __init__(self) -> None:
        self.batch_sizes: list[int] = []
        self.seen: list[np.ndarray] = []

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "bands": 7}

    def generate(self, images: Sequence[np.ndarray]) -> list[FrameProposals]:
        self.batch_sizes.append(len(images))
        return [self._one(image) for image in images]

    def _one(self, image: np.ndarray) -> FrameProposals:
        self.seen.append(image)
        gray = image.mean(axis=2) / 255.0
        masks, ious, stabs = [], [], []
        for k in range(1, 8):
            mask = gray > k / 8
            if mask.any():
                masks.append(mask)
                # deliberately not sorted: the stage must sort by iou * stability
                ious.append(0.5 + 0.05 * ((k * 3) % 7))
                stabs.append(0.9 - 0.01 * k)
        if not masks:
            return FrameProposals.empty(*image.shape[:2])
        return FrameProposals(np.stack(masks), np.array(ious), np.array(stabs))


def _frame_image(seed: int) -> np.ndarray:
    """RGB uint8 (HEIGHT, WIDTH, 3): a smooth vertical gradient with a random offset."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 255, HEIGHT)[:, None] * rng.uniform(0.5, 1.0) + rng.uniform(0, 40)
    return (
        np.repeat(np.clip(ramp, 0, 255)[:, :, None], 3, axis=2)
        .repeat(WIDTH, 1)
        .astype(np.uint8)
        .reshape(HEIGHT, WIDTH, 3)
    )


def _write_frames(
    path: Path,
    images: dict[tuple[str, int], np.ndarray],
    annotated: frozenset[tuple[str, int]] = frozenset(),
    proposals_on_annotated: bool = True,
) -> None:
    rows: dict[str, list[Any]] = {name: [] for name in storage.SCHEMAS["frames"].names}
    for (clip_id, frame_index), image in images.items():
        rows["clip_id"].append(clip_id)
        rows["frame_index"].append(frame_index)
        rows["time_sec"].append(frame_index / 30.0)
        rows["height"].append(image.shape[0])
        rows["width"].append(image.shape[1])
        rows["role"].append("annotated" if (clip_id, frame_index) in annotated else "sampled")
        rows["jpeg"].append(encode_jpeg(image[:, :, ::-1].copy(), 95))
    config = {"proposals_on_annotated": proposals_on_annotated}
    storage.write_table(pa.table(rows), path, "frames", meta={"stage": "frames", "config": config})


@pytest.fixture()
def frames_path(tmp_path: Path) -> Path:
    images = {("clipA", i): _frame_image(i) for i in (0, 5, 9)}
    images[("clipB", 2)] = np.zeros((HEIGHT, WIDTH, 3), dtype=np.uint8)  # no proposal
    images[("clipB", 7)] = _frame_image(7)
    path = tmp_path / "frames" / "s0.parquet"
    _write_frames(path, images)
    return path


def test_schema_order_and_round_trip(frames_path: Path, tmp_path: Path) -> None:
    backend = FakeBackend()
    out = tmp_path / "proposals" / "s0.parquet"
    summary = generate_proposals(frames_path, out, backend, max_per_frame=4, batch_frames=2)

    table = storage.read_table(out, "proposals")
    assert table.schema.equals(storage.SCHEMAS["proposals"])
    assert backend.batch_sizes == [2, 2, 1]
    assert summary.frames == 5
    assert summary.proposals == table.num_rows

    stored = read_proposals(out)
    assert list(stored) == [("clipA", 0), ("clipA", 5), ("clipA", 9), ("clipB", 7)]
    # the backend saw the decoded frames in the same order; recompute its proposals per frame
    seen = dict(
        zip(
            [("clipA", 0), ("clipA", 5), ("clipA", 9), ("clipB", 2), ("clipB", 7)],
            backend.seen,
            strict=True,
        )
    )
    for key, frame in stored.items():
        expected = FakeBackend()._one(seen[key])
        scores = proposal_scores(expected)
        order = np.argsort(-scores, kind="stable")[:4]
        assert len(frame) == min(4, len(expected))
        np.testing.assert_array_equal(frame.proposal_id, np.arange(len(frame)))
        # rows sorted by score, descending, and equal to the backend's best masks
        got_scores = frame.predicted_iou * frame.stability_score
        assert np.all(np.diff(got_scores) <= 0)
        np.testing.assert_allclose(got_scores, scores[order], rtol=1e-6)
        masks = frame.masks()
        np.testing.assert_array_equal(masks, expected.masks[order])
        for i, mask in enumerate(masks):
            ys, xs = np.nonzero(mask)
            box = [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
            np.testing.assert_allclose(frame.bbox[i], box)
            assert frame.area[i] == mask.sum()
            assert rle.decode(frame.rle_counts[i], frame.height, frame.width).sum() == mask.sum()
        assert (frame.height, frame.width) == (HEIGHT, WIDTH)


def test_empty_frame_is_recorded(
    frames_path: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "p.parquet"
    with caplog.at_level(logging.INFO, logger="nvos.proposals.stage"):
        summary = generate_proposals(
            frames_path,
            out,
            FakeBackend(),
            max_per_frame=3,
            batch_frames=8,
            meta={"config": {"backend": "fake", "max_per_frame": 3}, "shard": "s0"},
        )
    assert summary.frames_empty == 1
    assert summary.empty_frames == (("clipB", 2),)
    assert read_empty_frames(out) == [("clipB", 2)]
    record = storage.read_provenance(out)
    assert record["stage"] == "proposals"
    assert record["backend"] == {"backend": "fake", "bands": 7}
    assert record["config"] == {"backend": "fake", "max_per_frame": 3}
    assert record["shard"] == "s0"
    assert record["max_per_frame"] == 3
    assert record["frames_in"] == 5 and record["frames_empty"] == 1
    assert record["proposals"] == pq.read_metadata(out).num_rows
    table = storage.read_table(out, "proposals").to_pydict()
    assert ("clipB", 2) not in set(zip(table["clip_id"], table["frame_index"], strict=True))
    assert "1 of 5 frames have no proposal" in caplog.text
    assert "5/5 frames" in caplog.text


@pytest.mark.parametrize("on_annotated", [True, False])
def test_honest_protocol_keeps_annotated_frames_out(tmp_path: Path, on_annotated: bool) -> None:
    """With frames.proposals_on_annotated false (recorded by the frames stage) the annotated
    frames get no proposals and are no empty frames; a clip with annotated frames only is
    accounted for as skipped."""
    images = {("clipA", i): _frame_image(i) for i in (0, 5, 9)}
    images[("clipB", 4)] = _frame_image(4)
    annotated = frozenset({("clipA", 5), ("clipB", 4)})
    path = tmp_path / "frames.parquet"
    _write_frames(path, images, annotated, proposals_on_annotated=on_annotated)
    out = tmp_path / "proposals.parquet"
    summary = generate_proposals(path, out, FakeBackend(), 5, 2, meta={"shard": "s0"})
    table = pq.read_table(out)
    proposed = set(zip(table["clip_id"].to_pylist(), table["frame_index"].to_pylist(), strict=True))
    expected = set(images) if on_annotated else set(images) - annotated
    assert proposed == expected and summary.frames == len(expected) and summary.frames_empty == 0
    assert summary.ledger.clips_in == ("clipA", "clipB")
    skipped = [(s.clip_id, s.reason) for s in summary.ledger.skips]
    assert skipped == ([] if on_annotated else [("clipB", "no_proposals")])


def test_deterministic(frames_path: Path, tmp_path: Path) -> None:
    first, second = tmp_path / "a.parquet", tmp_path / "b.parquet"
    generate_proposals(frames_path, first, FakeBackend(), max_per_frame=5, batch_frames=3)
    generate_proposals(frames_path, second, FakeBackend(), max_per_frame=5, batch_frames=3)
    assert storage.read_table(first).equals(storage.read_table(second))
    assert storage.read_provenance(first) == storage.read_provenance(second)


def test_bad_backend_output_names_the_frame(frames_path: Path, tmp_path: Path) -> None:
    class WrongSize(FakeBackend):
        def _one(self, image: np.ndarray) -> FrameProposals:
            return FrameProposals.empty(HEIGHT + 1, WIDTH)

    with pytest.raises(RuntimeError, match="clip 'clipA' frame 0"):
        generate_proposals(frames_path, tmp_path / "x.parquet", WrongSize(), 3, 2)
    assert not (tmp_path / "x.parquet").exists()
    with pytest.raises(ValueError, match="max_per_frame"):
        generate_proposals(frames_path, tmp_path / "x.parquet", FakeBackend(), 0, 2)


def test_out_of_memory_retries_half_batches(frames_path: Path, tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")

    class OomOnBig(FakeBackend):
        def generate(self, images: Sequence[np.ndarray]) -> list[FrameProposals]:
            if len(images) > 2:
                self.batch_sizes.append(-len(images))
                raise torch.cuda.OutOfMemoryError("CUDA out of memory (fake)")
            return super().generate(images)

    backend = OomOnBig()
    summary = generate_proposals(frames_path, tmp_path / "o.parquet", backend, 3, 5)
    assert summary.frames == 5
    # 5 fails, then halves: later batches keep the smaller size (nvos.oom.AdaptiveBatch)
    assert backend.batch_sizes == [-5, 2, 2, 1]


def test_build_backend() -> None:
    backend = build_backend({"backend": "classical", "classical": {"scales": [100, 300]}})
    assert isinstance(backend, ClassicalBackend)
    assert backend.describe()["scales"] == [100.0, 300.0]
    with pytest.raises(ValueError, match=r"proposals\.classical\.scale: unknown key"):
        build_backend({"backend": "classical", "classical": {"scale": [1]}})
    with pytest.raises(ValueError, match="proposals.backend"):
        build_backend({"backend": "nope"})
