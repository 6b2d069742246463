"""CLIP feature cache: embeddings, the stage's tables, their provenance (crops: test_crops.py)."""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa
import pytest
import torch
import torch.nn.functional as F
from test_crops import smooth_image

from nvos import rle, storage
from nvos.features.clip_model import ClipEncoder, load_clip
from nvos.features.regions import CropPolicy
from nvos.features.stage import crop_policy, encode_regions, extract_features, region_crops
from nvos.features.text import PhraseSpan, embed_narrations, encode_texts, token_features
from nvos.features.tokens import align_tokens
from nvos.frames import encode_jpeg
from nvos.phrases import clean_narration


@pytest.fixture(scope="module")
def encoder() -> ClipEncoder:
    return load_clip("nvos-tiny-vit", None, "cpu", seed=0)


def box_of(mask: np.ndarray) -> torch.Tensor:
    code = rle.encode(mask)
    return torch.tensor([rle.bbox(code, *mask.shape)], dtype=torch.float32)


# --- embeddings ------------------------------------------------------------------------------


def test_region_embeddings_are_unit_float16(encoder):
    crops = torch.randn(5, 3, encoder.image_size, encoder.image_size)
    embeddings = encode_regions(encoder, crops)
    assert embeddings.dtype == np.float16 and embeddings.shape == (5, encoder.embed_dim)
    np.testing.assert_allclose(np.linalg.norm(embeddings.astype(np.float32), axis=1), 1, atol=2e-3)


def test_token_features_match_encode_text(encoder):
    texts = ["a photo of a cup.", "the person picks up the green knife"]
    ids = encoder.tokenizer(texts)
    features = token_features(encoder, ids)
    with torch.no_grad():
        reference = encoder.model.encode_text(ids)
    eot = ids.argmax(dim=-1)
    torch.testing.assert_close(features[torch.arange(2), eot], reference, atol=1e-5, rtol=1e-4)
    np.testing.assert_allclose(
        encode_texts(encoder, texts).numpy(), F.normalize(reference, dim=-1).numpy(), atol=1e-5
    )


def test_phrase_context_pools_its_own_tokens(encoder):
    text = "the person puts the cup on the cup holder"
    spans = [PhraseSpan(s, s + 3, "cup") for s in (text.index("cup"), text.rindex("cup"))]
    spans.append(PhraseSpan(text.index("the cup"), text.index("the cup") + 7, "the cup"))
    [result], summary = embed_narrations(encoder, [text], [spans])
    features = token_features(encoder, encoder.tokenizer([text]))[0]
    prefix = [len(encoder.tokenizer.encode(text[: s.char_start])) + 1 for s in spans]
    for k, (span, first) in enumerate(zip(spans, prefix, strict=True)):
        own = len(encoder.tokenizer.encode(span.text))
        expected = F.normalize(features[first : first + own].mean(0), dim=-1)
        torch.testing.assert_close(result.context[k], expected, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(result.context[0], result.context[1])  # two occurrences differ
    torch.testing.assert_close(result.plain[0], result.plain[1])  # same text alone
    torch.testing.assert_close(result.plain, encode_texts(encoder, [s.text for s in spans]))
    torch.testing.assert_close(result.narration, encode_texts(encoder, [text])[0])
    assert summary.phrases == 3 and not summary.fallback_phrases


def test_cut_off_phrase_falls_back_to_plain(encoder):
    text = " ".join(["cup"] * 80 + ["knife"])
    span = PhraseSpan(text.index("knife"), len(text), "knife")
    [result], summary = embed_narrations(encoder, [text], [[span]])
    assert result.fallback == (True,) and summary.truncated_narrations == 1
    assert summary.fallback_phrases == ["0:0:knife"]
    torch.testing.assert_close(result.context, result.plain)


def test_phrase_span_must_hold_its_text(encoder):
    with pytest.raises(ValueError, match="does not match"):
        embed_narrations(encoder, ["the cup"], [[PhraseSpan(0, 3, "cup")]], names=["clipA"])


# --- model loading and provenance ------------------------------------------------------------


def test_describe_records_model_and_weights(encoder, tmp_path):
    described = encoder.describe()
    assert described["model"] == "nvos-tiny-vit" and described["pretrained"] is None
    assert described["seed"] == 0 and described["image_size"] == encoder.image_size
    other = load_clip("nvos-tiny-vit", None, "cpu", seed=1)
    assert other.describe() != described  # a changed seed is a changed model
    resized = load_clip("nvos-tiny-vit", None, "cpu", seed=0, image_size=64)
    assert resized.image_size == 64 and resized.describe()["image_size"] == 64

    checkpoint = tmp_path / "tiny.pt"
    torch.save(other.model.state_dict(), checkpoint)
    loaded = load_clip("nvos-tiny-vit", checkpoint, "cpu")
    assert loaded.describe()["sha256"] == hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    assert loaded.describe()["pretrained"] == str(checkpoint.resolve())
    ids = encoder.tokenizer(["a cup"])
    with torch.no_grad():
        torch.testing.assert_close(loaded.model.encode_text(ids), other.model.encode_text(ids))


def test_unknown_model_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown open_clip model"):
        load_clip("no-such-model", None, "cpu")


# --- the stage -------------------------------------------------------------------------------


def write_shard(root, height=48, width=64):
    """A one-shard dataset: 2 clips, 2 frames each, 3 proposals per frame (one empty)."""
    narrations = {
        "c0": "#C C puts the [plate]<1> on the [cutting board]<2>",
        "c1": "The person picks up the knife, then the knife again.",
    }
    clips = {name: [] for name in storage.SCHEMAS["clips"].names}
    for clip_id, narration in narrations.items():
        for name, value in zip(
            clips,
            [clip_id, "v.mp4", 0.0, 1.0, 10.0, "val", narration, "s00000"],
            strict=True,
        ):
            clips[name].append(value)
    storage.write_table(pa.table(clips), root / "clips.parquet", "clips")
    phrases = []
    for clip_id, narration in narrations.items():
        text = clean_narration(narration)
        words = ["plate", "cutting board"] if clip_id == "c0" else ["knife", "knife"]
        start = -1
        for k, word in enumerate(words):
            start = text.index(word, start + 1)
            object_id = str(k + 1) if clip_id == "c0" else None
            phrases.append((clip_id, k, word, start, start + len(word), object_id, "tag"))
    names = storage.SCHEMAS["phrases"].names
    table = pa.table({n: [p[i] for p in phrases] for i, n in enumerate(names)})
    storage.write_table(table, root / "phrases.parquet", "phrases")
    frames = {name: [] for name in storage.SCHEMAS["frames"].names}
    proposals = {name: [] for name in storage.SCHEMAS["proposals"].names}
    for c, clip_id in enumerate(narrations):
        for f in range(2):
            image = smooth_image(height, width, seed=10 * c + f)
            row = [
                clip_id,
                f,
                f / 10,
                height,
                width,
                "annotated",
                encode_jpeg(image[..., ::-1], 95),
            ]
            for name, value in zip(frames, row, strict=True):
                frames[name].append(value)
            masks = np.zeros((3, height, width), bool)
            masks[0, 5:20, 8:30] = True
            masks[1, 30:, 40:] = True  # touches the border
            for p, mask in enumerate(masks):
                code = rle.encode(mask)
                values = [clip_id, f, p, height, width, code, list(rle.bbox(code, height, width)),
                          int(mask.sum()), 0.9, 0.9]  # fmt: skip
                for name, value in zip(proposals, values, strict=True):
                    proposals[name].append(value)
    storage.write_table(pa.table(frames), root / "frames" / "s00000.parquet", "frames")
    storage.write_table(pa.table(proposals), root / "proposals" / "s00000.parquet", "proposals")


def test_stage_writes_both_tables(encoder, tmp_path):
    write_shard(tmp_path)
    config = {"clip": {"model": "nvos-tiny-vit", "pretrained": None}, "crop": {"margin": 0.1}}
    regions_out = tmp_path / "features" / "s00000.regions.parquet"
    text_out = tmp_path / "features" / "s00000.text.parquet"
    policy = crop_policy(config, encoder)
    assert policy == CropPolicy(0.1, encoder.image_size, encoder.mean, encoder.std, "bicubic")
    summary = extract_features(
        tmp_path / "frames" / "s00000.parquet",
        tmp_path / "proposals" / "s00000.parquet",
        tmp_path / "phrases.parquet",
        tmp_path / "clips.parquet",
        "s00000",
        regions_out,
        text_out,
        encoder,
        policy,
        batch_regions=3,  # batches cross frame boundaries
        config=config,
    )
    assert summary.frames == 4 and summary.regions == 8 and summary.regions_empty == 4
    dim = encoder.embed_dim
    regions = storage.read_table(regions_out, storage.regions_schema(dim))
    assert regions["proposal_id"].to_pylist() == [0, 1] * 4
    assert regions["frame_index"].to_pylist() == [0, 0, 1, 1] * 2
    matrix = np.array(regions["embedding"].to_pylist(), dtype=np.float32)
    np.testing.assert_allclose(np.linalg.norm(matrix, axis=1), 1, atol=2e-3)
    # the stored embedding of a region is the tower's output for its crop
    image = smooth_image(48, 64, seed=0)
    mask = np.zeros((48, 64), bool)
    mask[5:20, 8:30] = True
    crop = region_crops(image, mask[None], box_of(mask).numpy(), policy, "cpu")
    direct = encode_regions(encoder, crop)[0].astype(np.float32)
    assert float(direct @ matrix[0]) > 0.99  # the JPEG round trip changes pixels slightly

    meta = storage.read_provenance(regions_out)
    assert meta["clip"] == encoder.describe() and meta["crop"] == policy.describe()
    assert meta["input_size"] == encoder.image_size and meta["config"] == config
    assert sorted(meta["empty_regions"]) == sorted([c, f, 2] for c in ("c0", "c1") for f in (0, 1))

    text = storage.read_table(text_out, storage.text_schema(dim))
    assert text["clip_id"].to_pylist() == ["c0"] * 3 + ["c1"] * 3
    assert text["phrase_id"].to_pylist() == [-1, 0, 1] * 2
    context = np.array(text["embedding_context"].to_pylist(), dtype=np.float32)
    plain = np.array(text["embedding_plain"].to_pylist(), dtype=np.float32)
    np.testing.assert_allclose(context[[0, 3]], plain[[0, 3]])  # the narration rows
    narration = clean_narration("#C C puts the [plate]<1> on the [cutting board]<2>")
    expected = encode_texts(encoder, [narration, "plate"]).numpy()
    np.testing.assert_allclose(context[0], expected[0], atol=2e-3)
    np.testing.assert_allclose(plain[1], expected[1], atol=2e-3)
    assert not np.allclose(context[4], context[5], atol=1e-2)  # "knife" twice, in context
    np.testing.assert_allclose(plain[4], plain[5])
    text_meta = storage.read_provenance(text_out)
    assert text_meta["clip"] == encoder.describe() and text_meta["phrases"] == 4
    assert align_tokens(encoder.tokenizer, narration).text == narration


def test_reference_mode_gives_the_fast_embeddings(encoder, tmp_path):
    """features.crop.mode: reference (open_clip's transform per region) writes the same rows
    and, within PIL's uint8 rounding, the same embeddings as the batched crops."""
    write_shard(tmp_path)
    tables = {}
    for mode in ("fast", "reference"):
        out = tmp_path / mode
        extract_features(
            tmp_path / "frames" / "s00000.parquet",
            tmp_path / "proposals" / "s00000.parquet",
            tmp_path / "phrases.parquet",
            tmp_path / "clips.parquet",
            "s00000",
            out / "regions.parquet",
            out / "text.parquet",
            encoder,
            crop_policy({"crop": {"mode": mode}}, encoder),
        )
        tables[mode] = storage.read_table(out / "regions.parquet")
        assert storage.read_provenance(out / "regions.parquet")["crop"]["mode"] == mode
    fast, reference = (np.array(tables[m]["embedding"].to_pylist(), np.float32) for m in tables)
    assert tables["fast"].drop(["embedding"]).equals(tables["reference"].drop(["embedding"]))
    assert np.sum(fast * reference, axis=1).min() > 0.999


def test_stage_rejects_proposals_of_unknown_frames(encoder, tmp_path):
    write_shard(tmp_path)
    table = storage.read_table(tmp_path / "proposals" / "s00000.parquet")
    frames = storage.read_table(tmp_path / "frames" / "s00000.parquet")
    storage.write_table(frames.slice(0, 3), tmp_path / "frames" / "s00000.parquet", "frames")
    storage.write_table(table, tmp_path / "proposals" / "s00000.parquet", "proposals")
    with pytest.raises(ValueError, match="not in"):
        extract_features(
            tmp_path / "frames" / "s00000.parquet",
            tmp_path / "proposals" / "s00000.parquet",
            tmp_path / "phrases.parquet",
            tmp_path / "clips.parquet",
            "s00000",
            tmp_path / "r.parquet",
            tmp_path / "t.parquet",
            encoder,
            crop_policy({}, encoder),
        )
    assert not (tmp_path / "r.parquet").exists()
