"""ROSA's feature cache and loader (nvos.rosa.feature_cache, nvos.rosa.data, nvos.rosa.batch)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch

from nvos import storage
from nvos.layout import RunLayout, ShardPaths
from nvos.rosa.batch import collate
from nvos.rosa.data import FRAME_COLUMNS, FeatureDataset, make_loader
from nvos.testing.cache_fixture import SyntheticClip, write_synthetic_cache

DIM = 8


def _clips() -> list[SyntheticClip]:
    return [
        SyntheticClip("a", "s00000", "train", sampled_frames=8, annotated_frames=2, proposals=9),
        SyntheticClip("b", "s00000", "train", 3, 1, proposals=[4, 0, 6, 2], phrases=1),
        SyntheticClip("c", "s00000", "train", 2, 1, proposals=5, phrases=0),  # no phrase
        SyntheticClip("d", "s00001", "train", 6, 2, proposals=12, phrases=5),
        SyntheticClip("e", "s00001", "train", 2, 1, proposals=0),  # no proposal at all
        SyntheticClip("f", "s00001", "val", 3, 3, proposals=[3, 0, 4, 5, 2, 6], tagged=True),
        SyntheticClip("g", "s00001", "train", 7, 3, proposals=7, phrases=2),
    ]


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    write_synthetic_cache(tmp_path, _clips(), dim=DIM, seed=3)
    return tmp_path


def _shards(root: Path) -> list[ShardPaths]:
    return [RunLayout.at(root).shard_paths(s) for s in ("s00000", "s00001")]


def _dataset(root: Path, **kwargs: object) -> FeatureDataset:
    args: dict[str, object] = {"splits": "train", "frames_per_clip": 3, "max_regions": 6}
    args.update(kwargs)
    return FeatureDataset(_shards(root), root / "clips.parquet", **args)  # type: ignore[arg-type]


def _frames(root: Path) -> pd.DataFrame:
    tables = [
        pq.read_table(root / "frames" / f"{s}.parquet", columns=FRAME_COLUMNS)
        for s in ("s00000", "s00001")
    ]
    return pd.concat([t.to_pandas() for t in tables])


def _proposals(root: Path) -> pd.DataFrame:
    frames = [
        pq.read_table(root / "proposals" / f"{s}.parquet").to_pandas() for s in ("s00000", "s00001")
    ]
    df = pd.concat(frames)
    df["score"] = df["predicted_iou"] * df["stability_score"]
    return df


def _batches_equal(x: object, y: object) -> bool:
    for name, value in vars(x).items():
        other = getattr(y, name)
        if isinstance(value, torch.Tensor):
            if not torch.equal(value, other):
                return False
        elif value != other:
            return False
    return True


def test_skipped_clips_are_counted(cache: Path) -> None:
    dataset = _dataset(cache)
    assert dataset.clip_ids == ["a", "b", "d", "g"]  # clips.parquet order, train split only
    summary = dataset.summary
    assert dict(summary.skipped) == {"c": "no_phrases", "e": "no_regions"}
    assert summary.clips_without_phrases == 1 and summary.clips_without_regions == 1
    assert summary.frames_without_regions == 1 + 3  # clip b's second frame, all of clip e
    frames = _frames(cache)
    kept = frames[frames.clip_id.isin(dataset.clip_ids)]
    assert summary.frames == len(kept) - 1
    assert summary.phrases == 3 + 1 + 5 + 2


def test_eval_items_hold_every_annotated_frame_with_proposals(cache: Path) -> None:
    dataset = _dataset(cache, splits=["val"], mode="eval")
    assert dataset.clip_ids == ["f"]
    frames = _frames(cache)
    annotated = frames[(frames.clip_id == "f") & (frames.role == "annotated")]
    counts = dict(zip(range(0, 18, 3), [3, 0, 4, 5, 2, 6], strict=True))
    expected = sorted(i for i in annotated.frame_index if counts[i] > 0)
    item = dataset[0]
    assert item.frame_index.tolist() == expected
    assert dataset.summary.frames_without_regions == sum(
        counts[i] == 0 for i in annotated.frame_index
    )
    # clip-relative time: frame_index / fps over the window [0, n_frames * 3 / fps]
    np.testing.assert_allclose(item.frame_time, np.array(expected) / 18.0, rtol=1e-6)


def test_frames_per_clip_sampling(cache: Path) -> None:
    dataset = _dataset(cache, frames_per_clip=3)
    frames = _frames(cache)
    for i, clip_id in enumerate(dataset.clip_ids):
        item = dataset[i]
        stored = frames[frames.clip_id == clip_id]
        with_regions = stored.frame_index.tolist()
        if clip_id == "b":
            with_regions.remove(3)  # the frame without proposal
        assert len(item.frame_index) == min(3, len(with_regions))
        assert set(item.frame_index.tolist()) <= set(with_regions)
        assert np.all(np.diff(item.frame_index) > 0)  # distinct, in time order
    # over epochs, clip a (10 usable frames) sees different samples; same epoch -> same sample
    samples = set()
    for epoch in range(6):
        dataset.set_epoch(epoch)
        samples.add(tuple(dataset[0].frame_index.tolist()))
        assert dataset[0].frame_index.tolist() == dataset[0].frame_index.tolist()
    assert len(samples) > 1


def test_max_regions_are_the_best_scored_proposals(cache: Path) -> None:
    dataset = _dataset(cache, frames_per_clip=10, max_regions=6)
    proposals = _proposals(cache)
    regions = pd.concat(
        pq.read_table(cache / "features" / f"{s}.regions.parquet").to_pandas()
        for s in ("s00000", "s00001")
    )
    for i, clip_id in enumerate(dataset.clip_ids):
        item = dataset[i]
        for t, frame_index in enumerate(item.frame_index):
            frame = proposals[
                (proposals.clip_id == clip_id) & (proposals.frame_index == frame_index)
            ]
            best = frame.sort_values("score", ascending=False).head(6)
            n = int(item.region_count[t])
            assert n == len(best)
            assert item.proposal_id[t, :n].tolist() == best.proposal_id.tolist()
            assert np.all(item.proposal_id[t, n:] == -1)
            assert np.all(item.regions[t, n:] == 0)
            for k, row in enumerate(best.itertuples()):
                stored = regions[
                    (regions.clip_id == clip_id)
                    & (regions.frame_index == frame_index)
                    & (regions.proposal_id == row.proposal_id)
                ].embedding.iloc[0]
                np.testing.assert_array_equal(item.regions[t, k], np.asarray(stored, np.float16))
                size = np.array([row.width, row.height, row.width, row.height], np.float32)
                np.testing.assert_allclose(item.boxes[t, k], np.asarray(row.bbox) / size, rtol=1e-6)


def test_collate_pads_and_masks(cache: Path) -> None:
    dataset = _dataset(cache, frames_per_clip=4, max_regions=10)
    items = [dataset[i] for i in range(len(dataset))]
    batch = collate(items)
    b, t, k, d = batch.regions.shape
    assert (b, d) == (4, DIM)
    assert t == max(len(x.frame_index) for x in items)
    assert k == max(int(x.region_count.max()) for x in items)
    assert batch.phrase_context.shape[1] == max(len(x.phrase_id) for x in items)
    for i, item in enumerate(items):
        ti, ni = len(item.frame_index), len(item.phrase_id)
        assert batch.frame_mask[i].tolist() == [True] * ti + [False] * (t - ti)
        assert batch.phrase_mask[i].tolist() == [True] * ni + [False] * (
            batch.phrase_id.shape[1] - ni
        )
        for j in range(t):
            n = int(item.region_count[j]) if j < ti else 0
            assert batch.region_mask[i, j].tolist() == [True] * n + [False] * (k - n)
        assert torch.all(batch.regions[i][~batch.region_mask[i]] == 0)
        assert torch.all(batch.proposal_id[i][~batch.region_mask[i]] == -1)
        assert torch.all(batch.frame_index[i, ti:] == -1)
        assert torch.all(batch.phrase_plain[i, ni:] == 0)
        torch.testing.assert_close(
            batch.phrase_context[i, :ni], torch.from_numpy(item.phrase_context).float()
        )
    assert batch.regions.dtype == torch.float32 and batch.region_mask.dtype == torch.bool


def test_loader_is_deterministic(cache: Path) -> None:
    def run(workers: int) -> list[object]:
        loader = make_loader(
            _dataset(cache), batch_size=3, shuffle=True, seed=7, num_workers=workers
        )
        out = []
        for epoch in (0, 1, 2):
            loader.set_epoch(epoch)
            out.extend(loader)
        return out

    first, second = run(0), run(0)
    assert len(first) == 6  # 2 batches (3 + 1 clips) per epoch
    assert all(_batches_equal(x, y) for x, y in zip(first, second, strict=True))
    orders = {tuple(first[e].clip_ids + first[e + 1].clip_ids) for e in (0, 2, 4)}
    assert len(orders) > 1  # each epoch reshuffles
    loader = make_loader(_dataset(cache), batch_size=3, shuffle=True, seed=7)
    loader.set_epoch(2)
    resumed = list(loader.iter_from(1))  # resume inside an epoch: same batches as a full pass
    assert len(resumed) == 1 and _batches_equal(resumed[0], first[5])
    workers = run(2)  # memory-mapped caches are re-opened in each worker, same batches
    assert all(_batches_equal(x, y) for x, y in zip(first, workers, strict=True))


def test_ranks_split_the_epoch(cache: Path) -> None:
    dataset = _dataset(cache)
    seen = []
    for rank in (0, 1):
        loader = make_loader(dataset, 1, shuffle=True, seed=1, rank=rank, world_size=2)
        seen.append([b.clip_ids[0] for b in loader])
    assert len(seen[0]) == len(seen[1]) == 2
    assert sorted(seen[0] + seen[1]) == sorted(dataset.clip_ids)


def test_frames_table_is_read_without_jpeg(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, list[str] | None]] = []
    original = storage.read_table

    def recording(path, schema=None, columns=None, memory_map=True):  # noqa: ANN001, ANN202
        calls.append((str(path), columns))
        return original(path, schema, columns=columns, memory_map=memory_map)

    monkeypatch.setattr(storage, "read_table", recording)
    dataset = _dataset(cache, memory_map=False)
    dataset[0]
    frame_calls = [cols for path, cols in calls if "/frames/" in path]
    assert len(frame_calls) == 2
    assert all(cols == FRAME_COLUMNS for cols in frame_calls)
    assert all(
        cols is not None and "jpeg" not in cols and "rle_counts" not in cols for _, cols in calls
    )


def test_cache_is_reused_and_rebuilt_when_stale(cache: Path) -> None:
    first = _dataset(cache)
    arrow = cache / "features" / "cache" / "s00000.regions.arrow"
    stamp = arrow.stat().st_mtime_ns
    assert first._arrays()[0].regions.flags.owndata is False  # a view of the mapped file
    _dataset(cache)
    assert arrow.stat().st_mtime_ns == stamp  # reused
    in_memory = _dataset(cache, memory_map=False)
    for i in range(len(first)):
        x, y = first[i], in_memory[i]
        assert all(
            np.array_equal(getattr(x, f), getattr(y, f))
            for f in ("regions", "boxes", "proposal_id")
        )
    # rewrite the regions with other embeddings: the cache follows
    path = cache / "features" / "s00000.regions.parquet"
    table = pq.read_table(path)
    embedding = np.zeros((table.num_rows, DIM), np.float16) + np.float16(0.5)
    import pyarrow as pa

    table = table.set_column(
        3, "embedding", pa.FixedSizeListArray.from_arrays(pa.array(embedding.ravel()), DIM)
    )
    storage.write_table(table, path, storage.regions_schema(DIM))
    os.utime(path, ns=(stamp + 10**9, stamp + 10**9))
    rebuilt = _dataset(cache)
    assert arrow.stat().st_mtime_ns != stamp
    assert np.all(rebuilt[0].regions[0, : rebuilt[0].region_count[0]] == np.float16(0.5))


def test_region_without_proposal_is_an_error(cache: Path) -> None:
    path = cache / "proposals" / "s00001.parquet"
    table = pq.read_table(path)
    storage.write_table(table.slice(1), path, "proposals")  # drop one proposal row
    with pytest.raises(ValueError, match=r"s00001.regions.parquet: 1 regions have no proposal"):
        _dataset(cache)
