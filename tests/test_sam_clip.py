"""The SAM + CLIP zero-shot baseline on constructed cases whose answer is known."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from nvos import storage
from nvos.baselines import check_same_model, sam_clip_predictions, select_region
from nvos.proposals.stage import read_proposals
from nvos.testing.cache_fixture import SyntheticClip, write_synthetic_cache

DIM = 8


def test_select_region_picks_the_highest_cosine():
    regions = np.array([[1, 0, 0], [0.6, 0.8, 0], [0, 0, 3]], dtype=np.float16)
    assert select_region(regions, np.array([0, 1.0, 0]))[0] == 1
    index, score = select_region(regions, np.array([0, 0, 2.0]))  # norms do not matter
    assert index == 2 and score == pytest.approx(1.0, abs=1e-3)
    assert select_region(np.array([[1.0, 0], [1.0, 0]]), np.array([1.0, 0]))[0] == 0  # tie: first
    with pytest.raises(ValueError, match="no region"):
        select_region(np.zeros((0, 3)), np.ones(3))


def one_hot(index: int) -> list[float]:
    vector = [0.0] * DIM
    vector[index % DIM] = 1.0
    return vector


@pytest.fixture
def shard(tmp_path):
    """val clip (all frames annotated, the last without proposals), test clip with sampled
    frames, a train clip and an untagged val clip; region embedding = one-hot at
    (proposal_id + frame position) % DIM."""
    clips = [
        SyntheticClip("a", split="val", sampled_frames=0, annotated_frames=4,
                      proposals=[8, 8, 8, 0], phrases=3),
        SyntheticClip("b", split="test", sampled_frames=2, annotated_frames=2, phrases=2),
        SyntheticClip("c", split="train", sampled_frames=1, annotated_frames=1, phrases=2),
        SyntheticClip("d", split="val", sampled_frames=0, annotated_frames=2, tagged=False),
    ]  # fmt: skip
    write_synthetic_cache(tmp_path, clips, dim=DIM, seed=3)
    path = tmp_path / "features" / "s00000.regions.parquet"
    table = storage.read_table(path)
    embeddings = [
        one_hot(p + f // 3)  # the fixture's frame_index is 3 * position
        for p, f in zip(
            table["proposal_id"].to_pylist(), table["frame_index"].to_pylist(), strict=True
        )
    ]
    flat = pa.array(np.array(embeddings, np.float16).ravel(), pa.float16())
    table = table.set_column(3, "embedding", pa.FixedSizeListArray.from_arrays(flat, DIM))
    meta = {"clip": {"model": "fake", "pretrained": None, "seed": 0, "image_size": 4,
                     "embed_dim": DIM, "sha256": None}}  # fmt: skip
    storage.write_table(table, path, storage.regions_schema(DIM), meta=meta)
    return tmp_path


def run(root, template="a photo of a {phrase}."):
    prompts: list[str] = []

    def encode(texts):
        prompts.extend(texts)
        # the fixture's phrases are "object k": prompt k -> one-hot k
        return np.array([one_hot(int(t.split("object ")[1][0])) for t in texts], np.float32)

    summary = sam_clip_predictions(
        root / "features" / "s00000.regions.parquet",
        root / "proposals" / "s00000.parquet",
        root / "frames" / "s00000.parquet",
        root / "phrases.parquet",
        root / "clips.parquet",
        "s00000",
        root / "predictions" / "sam_clip" / "s00000.parquet",
        encode,
        template,
        meta={"config": {"prompt": template}},
        scores_path=root / "scores" / "sam_clip" / "s00000.parquet",
    )
    return summary, prompts


def test_baseline_selects_the_known_proposal(shard):
    summary, prompts = run(shard)
    assert prompts == [f"a photo of a object {k}." for k in (0, 1, 2, 0, 1)]
    table = storage.read_table(shard / "predictions" / "sam_clip" / "s00000.parquet", "predictions")
    rows = table.to_pylist()
    frames = storage.read_table(shard / "frames" / "s00000.parquet").to_pylist()
    keyframes = {(f["clip_id"], f["frame_index"]) for f in frames}  # every frame has a role
    proposals = read_proposals(shard / "proposals" / "s00000.parquet")
    expected_keys = set()
    for clip_id, phrases in (("a", 3), ("b", 2)):
        for frame_clip, frame_index in keyframes:
            if frame_clip != clip_id or (clip_id, frame_index) not in proposals:
                continue
            for k in range(phrases):
                expected_keys.add((clip_id, k, frame_index))
    assert {(r["clip_id"], r["phrase_id"], r["frame_index"]) for r in rows} == expected_keys
    assert len(rows) == len(expected_keys) == 3 * 3 + 2 * 4  # b: 2 sampled + 2 annotated
    for r in rows:
        assert r["proposal_id"] == (r["phrase_id"] - r["frame_index"] // 3) % DIM
        assert r["score"] == pytest.approx(1.0, abs=1e-3)
        assert r["object_id"] == str(r["phrase_id"] + 1)
        stored = proposals[(r["clip_id"], r["frame_index"])]
        assert r["rle_counts"] == stored.rle_counts[r["proposal_id"]]
        assert (r["height"], r["width"]) == (stored.height, stored.width)
    # clip a's last frame has no proposal: 3 phrases without prediction, counted and listed
    assert summary.missing == 3 and summary.predictions == len(rows)
    meta = storage.read_provenance(shard / "predictions" / "sam_clip" / "s00000.parquet")
    assert sorted(meta["frames_without_regions"]) == [["a", k, 9] for k in range(3)]
    assert meta["prompt"] == "a photo of a {phrase}." and meta["splits"] == ["val", "test"]
    # every proposal's cosine: one-hot regions and prompts, so 1 for the chosen one, 0 elsewhere
    scores = storage.read_table(shard / "scores" / "sam_clip" / "s00000.parquet", "region_scores")
    chosen = {(r["clip_id"], r["phrase_id"], r["frame_index"]): r["proposal_id"] for r in rows}
    assert scores.num_rows == len(rows)
    for r in scores.to_pylist():
        stored = proposals[(r["clip_id"], r["frame_index"])]
        assert sorted(r["proposal_ids"]) == stored.proposal_id.tolist()
        expected = [float(p == chosen[(r["clip_id"], r["phrase_id"], r["frame_index"])])
                    for p in r["proposal_ids"]]  # fmt: skip
        np.testing.assert_allclose(r["scores"], expected, atol=1e-3)


def test_prompt_template_is_checked(shard):
    with pytest.raises(ValueError, match="phrase"):
        run(shard, template="a photo of a thing")
    _, prompts = run(shard, template="{phrase}")
    assert prompts[0] == "object 0"


def test_regions_of_another_model_are_rejected(shard):
    path = shard / "features" / "s00000.regions.parquet"
    same = {"model": "fake", "pretrained": None, "seed": 0, "image_size": 4, "embed_dim": DIM,
            "sha256": None, "context_length": 77}  # fmt: skip
    check_same_model(path, same)
    with pytest.raises(ValueError, match="another CLIP model"):
        check_same_model(path, {**same, "model": "ViT-B-16"})
