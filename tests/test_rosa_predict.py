"""ROSA prediction (nvos.rosa.predict): the proposal with the highest g per phrase and frame."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch

from nvos import storage
from nvos.layout import RunLayout
from nvos.rosa.batch import ClipBatch
from nvos.rosa.config import ModelConfig
from nvos.rosa.data import FeatureDataset
from nvos.rosa.model import Alignment, RosaModel
from nvos.rosa.predict import predict_rosa
from nvos.testing.cache_fixture import SyntheticClip, write_synthetic_cache

DIM = 8
MAX_REGIONS = 5


def known_g(clip: str, phrase: int, frame: int, proposal: int) -> float:
    """A similarity with a known, irregular argmax."""
    return float(np.sin(1.7 * proposal + 0.37 * frame + 2.3 * phrase + 0.11 * ord(clip[-1])))


class KnownSimilarity:
    """A model stub whose g is :func:`known_g` of the batch's ids (padded regions never chosen)."""

    def align(self, batch: ClipBatch) -> Alignment:
        b_, t_, k_ = batch.proposal_id.shape
        n_ = batch.phrase_id.shape[1]
        index = torch.full((b_, t_, n_), -1, dtype=torch.int64)
        score = torch.full((b_, t_, n_), float("nan"))
        every = torch.full((b_, t_, k_, n_), float("-inf"))
        for b in range(b_):
            for t in range(t_):
                for n in range(n_):
                    if not (batch.frame_mask[b, t] and batch.phrase_mask[b, n]):
                        continue
                    g = [
                        known_g(
                            batch.clip_ids[b],
                            int(batch.phrase_id[b, n]),
                            int(batch.frame_index[b, t]),
                            int(batch.proposal_id[b, t, k]),
                        )
                        if batch.region_mask[b, t, k]
                        else float("-inf")
                        for k in range(k_)
                    ]
                    index[b, t, n] = int(np.argmax(g))
                    score[b, t, n] = max(g)
                    every[b, t, :, n] = torch.tensor(g)
        return Alignment(index=index, score=score, g=every)


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    clips = [
        SyntheticClip("va", "s00000", "val", 2, 3, proposals=9, phrases=3),
        SyntheticClip("vb", "s00000", "val", 1, 2, proposals=[4, 0, 3], phrases=2),
        SyntheticClip("vc", "s00000", "val", 1, 2, proposals=4, phrases=2, tagged=False),
        SyntheticClip("tr", "s00000", "train", 2, 2, proposals=4, phrases=2),
    ]
    write_synthetic_cache(tmp_path, clips, dim=DIM, seed=5)
    return tmp_path


def _dataset(root: Path, mode: str = "eval") -> FeatureDataset:
    return FeatureDataset(
        [RunLayout.at(root).shard_paths("s00000")],
        root / "clips.parquet",
        splits=["val", "test"],
        mode=mode,  # type: ignore[arg-type]
        max_regions=MAX_REGIONS,
        phrases_path=root / "phrases.parquet",
    )


def _expected(root: Path) -> pd.DataFrame:
    """Brute force from the files: best-scored MAX_REGIONS proposals, argmax of known_g."""
    frames = pq.read_table(root / "frames" / "s00000.parquet").to_pandas()
    proposals = pq.read_table(root / "proposals" / "s00000.parquet").to_pandas()
    proposals["quality"] = proposals.predicted_iou * proposals.stability_score
    phrases = pq.read_table(root / "phrases.parquet").to_pandas()
    clips = pq.read_table(root / "clips.parquet").to_pandas()
    rows = []
    for clip in clips[clips.split.isin(["val", "test"])].clip_id:
        for phrase in phrases[(phrases.clip_id == clip) & phrases.object_id.notna()].itertuples():
            annotated = frames[(frames.clip_id == clip) & (frames.role == "annotated")]
            for frame in annotated.frame_index:
                cand = proposals[(proposals.clip_id == clip) & (proposals.frame_index == frame)]
                cand = cand.sort_values("quality", ascending=False).head(MAX_REGIONS)
                if cand.empty:
                    continue
                g = [known_g(clip, phrase.phrase_id, frame, p) for p in cand.proposal_id]
                best = cand.iloc[int(np.argmax(g))]
                rows.append(
                    (
                        clip,
                        phrase.phrase_id,
                        phrase.object_id,
                        frame,
                        best.proposal_id,
                        max(g),
                        best.rle_counts,
                    )
                )
    columns = [
        "clip_id",
        "phrase_id",
        "object_id",
        "frame_index",
        "proposal_id",
        "score",
        "rle_counts",
    ]
    return pd.DataFrame(rows, columns=columns).sort_values(columns[:4]).reset_index(drop=True)


def test_predict_picks_argmax_g_and_copies_its_mask(cache: Path) -> None:
    out = cache / "predictions" / "rosa" / "s00000.parquet"
    summary = predict_rosa(
        KnownSimilarity(),
        _dataset(cache),
        cache / "proposals" / "s00000.parquet",
        out,
        meta={"method": "rosa"},
        batch_size=2,
    )
    got = storage.read_table(out, "predictions").to_pandas()
    expected = _expected(cache)
    assert len(expected) == (3 * 3) + (2 * 1)  # va: 3 phrases x 3 frames; vb: 2 x 1 frame
    assert summary.predictions == len(got) == len(expected)
    got = got.sort_values(["clip_id", "phrase_id", "object_id", "frame_index"])
    got = got.reset_index(drop=True)
    for column in ("clip_id", "phrase_id", "object_id", "frame_index", "proposal_id", "rle_counts"):
        assert got[column].tolist() == expected[column].tolist(), column
    np.testing.assert_allclose(got.score, expected.score, rtol=1e-6)
    assert (got.height == 24).all() and (got.width == 32).all()
    assert summary.untagged_phrases == 2 * 2  # clip vc's 2 phrases x 2 annotated frames
    assert summary.frames_without_regions == 1  # clip vb's annotated frame without proposal
    assert storage.read_provenance(out) == {"method": "rosa"}


def test_predict_with_the_rosa_model_matches_brute_force(cache: Path) -> None:
    torch.manual_seed(0)
    model = RosaModel(ModelConfig(feature_dim=DIM, dim=16, context_layers=1, context_heads=2))
    dataset = _dataset(cache)
    out = cache / "predictions" / "rosa" / "s00000.parquet"
    predict_rosa(model, dataset, cache / "proposals" / "s00000.parquet", out, batch_size=3)
    got = storage.read_table(out, "predictions").to_pandas()
    from nvos.rosa.batch import collate

    batch = collate([dataset[i] for i in range(len(dataset))])
    with torch.no_grad():
        emb = model(batch)
    for row in got.itertuples():
        b = batch.clip_ids.index(row.clip_id)
        t = batch.frame_index[b].tolist().index(row.frame_index)
        n = batch.phrase_id[b].tolist().index(row.phrase_id)
        real = batch.region_mask[b, t]
        g = emb.regions[b, t][real] @ emb.phrases[b, n]
        assert int(batch.proposal_id[b, t][real][g.argmax()]) == row.proposal_id
        assert row.score == pytest.approx(float(g.max()), abs=1e-5)


def test_predict_needs_eval_items(cache: Path) -> None:
    with pytest.raises(ValueError, match="mode='eval'"):
        predict_rosa(
            KnownSimilarity(),
            _dataset(cache, mode="train"),
            cache / "proposals" / "s00000.parquet",
            cache / "p.parquet",
        )


def test_predict_shard_loads_the_checkpoint(cache: Path, tmp_path: Path) -> None:
    from nvos.layout import RunLayout
    from nvos.rosa.config import resolve_variant
    from nvos.rosa.model import model_state
    from nvos.rosa.predict import predict_shard

    rosa = {
        "dim": 16,
        "context_layers": 1,
        "context_heads": 2,
        "max_regions": MAX_REGIONS,
        "variants": {"rosa": {}},
    }
    torch.manual_seed(1)
    model = RosaModel(ModelConfig(feature_dim=DIM, dim=16, context_layers=1, context_heads=2))
    checkpoint = tmp_path / "models" / "rosa" / "checkpoint.pt"
    checkpoint.parent.mkdir(parents=True)
    torch.save(model_state(model), checkpoint)
    out = cache / "predictions" / "rosa" / "s00000.parquet"
    config = resolve_variant(rosa, "rosa")
    summary = predict_shard(RunLayout.at(cache), "s00000", "rosa", config, lock_dir=tmp_path / "l")
    direct = cache / "direct.parquet"
    predict_rosa(
        model, _dataset(cache, "keyframes"), cache / "proposals" / "s00000.parquet", direct
    )
    got = storage.read_table(out, "predictions")
    # every keyframe: va 3 phrases x 5 frames; vb 2 phrases x 2 of its 3 frames (one has none)
    assert summary.predictions == got.num_rows == 3 * 5 + 2 * 2
    scores = storage.read_table(RunLayout.at(cache).scores("rosa", "s00000"), "region_scores")
    assert scores.num_rows == got.num_rows
    best = {
        (r["clip_id"], r["phrase_id"], r["frame_index"]): (
            r["proposal_ids"][int(np.argmax(r["scores"]))],
            max(r["scores"]),
        )
        for r in scores.to_pylist()
    }
    for row in got.to_pylist():
        pid, score = best[(row["clip_id"], row["phrase_id"], row["frame_index"])]
        assert row["proposal_id"] == pid and row["score"] == pytest.approx(score, abs=1e-6)
    assert got.drop_columns(["score"]).equals(
        storage.read_table(direct, "predictions").drop_columns(["score"])
    )
    record = storage.read_provenance(out)
    assert record["method"] == "rosa" and record["shard"] == "s00000"
    assert len(record["checkpoint_sha256"]) == 64


def test_keyframe_predictions_keep_the_annotated_choices_and_store_every_score(
    cache: Path,
) -> None:
    """Predicting on every keyframe adds rows on the sampled frames; the annotated frames' rows
    are those of annotated-only prediction (g of a region does not depend on other frames here),
    and the scores file holds g of each frame's MAX_REGIONS best proposals."""
    proposals = cache / "proposals" / "s00000.parquet"
    annotated_only, every = cache / "eval.parquet", cache / "keyframes.parquet"
    scores_path = cache / "scores.parquet"
    predict_rosa(KnownSimilarity(), _dataset(cache), proposals, annotated_only)
    predict_rosa(KnownSimilarity(), _dataset(cache, "keyframes"), proposals, every,
                 scores_path=scores_path)  # fmt: skip
    frames = pq.read_table(cache / "frames" / "s00000.parquet").to_pandas()
    annotated = set(zip(frames.clip_id[frames.role == "annotated"],
                        frames.frame_index[frames.role == "annotated"], strict=True))  # fmt: skip
    rows = storage.read_table(every, "predictions").to_pylist()
    on_annotated = [r for r in rows if (r["clip_id"], r["frame_index"]) in annotated]
    assert on_annotated == storage.read_table(annotated_only, "predictions").to_pylist()
    assert len(rows) > len(on_annotated)  # the sampled keyframes too
    table = pq.read_table(proposals).to_pandas()
    table["quality"] = table.predicted_iou * table.stability_score
    scored = storage.read_table(scores_path, "region_scores").to_pylist()
    assert len(scored) == len(rows)
    for r in scored:
        frame = table[(table.clip_id == r["clip_id"]) & (table.frame_index == r["frame_index"])]
        best = frame.sort_values("quality", ascending=False).head(MAX_REGIONS)
        assert sorted(r["proposal_ids"]) == sorted(best.proposal_id.tolist())
        expected = [known_g(r["clip_id"], r["phrase_id"], r["frame_index"], p)
                    for p in r["proposal_ids"]]  # fmt: skip
        np.testing.assert_allclose(r["scores"], expected, rtol=1e-6)
        assert r["object_id"] is not None  # tagged phrases only
