"""Tests of the embedded demo dataset generator (nvos.demo)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from nvos import rle
from nvos.demo import (
    HAND_LABEL,
    VocabularyError,
    generate_demo,
    load_vocabulary,
    make_clip,
    split_counts,
)
from nvos.demo import generate as generate_module
from nvos.demo.narration import PHRASE_FORMS, object_phrase
from nvos.demo.plan import HEIGHT, WIDTH, plan_clip
from nvos.demo.vocabulary import ObjectSpec, parse_vocabulary
from nvos.frames import sample_frame_indices
from nvos.manifest import validate_manifest
from nvos.tags import has_reserved, parse_tags
from nvos.video import frame_window, probe

REPO = Path(__file__).resolve().parents[1]

N_CLIPS = 8
SEED = 3
KEYS = {"clip_id", "video", "start_sec", "end_sec", "split", "narration", "annotations"}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_demo(tmp_path_factory.mktemp("demo_a"), N_CLIPS, SEED)


@pytest.fixture(scope="module")
def records(demo: Path) -> list[dict]:
    return [json.loads(line) for line in demo.read_text().splitlines()]


def decode_all(path: Path) -> np.ndarray:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        frames.append(image)
    capture.release()
    return np.stack(frames)


def test_same_seed_same_bytes_and_frames(demo: Path, tmp_path: Path) -> None:
    """Also with videos rendered by two processes (the demo_data rule uses every core)."""
    again = generate_demo(tmp_path / "again", N_CLIPS, SEED, workers=2)
    assert again.read_bytes() == demo.read_bytes()
    videos = sorted((demo.parent / "videos").glob("*.mp4"))
    assert [p.name for p in videos] == sorted(p.name for p in (again.parent / "videos").iterdir())
    for path in videos:
        assert np.array_equal(decode_all(path), decode_all(again.parent / "videos" / path.name))


def test_different_seed_differs(demo: Path, tmp_path: Path) -> None:
    other = generate_demo(tmp_path / "other", N_CLIPS, SEED + 1)
    assert other.read_bytes() != demo.read_bytes()
    first = decode_all(demo.parent / "videos" / "demo_v000.mp4")
    second = decode_all(other.parent / "videos" / "demo_v000.mp4")
    n = min(len(first), len(second))
    assert np.abs(first[:n].astype(int) - second[:n]).mean() > 10


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 8, 24, 25, 280])
def test_split_counts(n: int) -> None:
    counts = split_counts(n)
    assert sum(counts.values()) == n
    if n >= 4:
        assert counts["val"] == counts["test"] == max(1, round(0.15 * n))
        assert counts["train"] >= n // 2
        assert min(counts.values()) >= 1
    assert split_counts(280) == {"train": 196, "val": 42, "test": 42}


def test_annotated_frames_are_frames_the_frames_stage_samples() -> None:
    """With the default frames.per_clip (6), annotating costs no extra frame."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    per_clip = config["frames"]["per_clip"]
    assert per_clip == generate_module.ANNOTATION_SEGMENTS
    for n_frames in range(33, 40):
        annotated = generate_module.annotated_frames(n_frames)
        assert (
            len(annotated) == 4
            and annotated[0] < n_frames // 6
            and annotated[-1] >= 5 * n_frames // 6
        )
        window = range(100, 100 + n_frames)
        chosen = sample_frame_indices(window, [100 + i for i in annotated], per_clip)
        assert len(chosen) == per_clip
        assert sorted(i - 100 for i, role in chosen if role == "annotated") == annotated


def test_phrases_mostly_name_the_colour() -> None:
    vocab = load_vocabulary()
    rng = np.random.default_rng(0)
    counts = {"noun": 0, "colour": 0, "material": 0, "colour material": 0}
    cup = ObjectSpec("cup", "red", "plastic")
    for _ in range(2000):
        words = object_phrase(vocab, cup, rng).split()
        assert words[-1] == "cup"
        form = {1: "noun", 3: "colour material"}.get(len(words))
        if form is None:
            form = "colour" if words[0] == "red" else "material"
        counts[form] += 1
    shares = {k: v / 2000 for k, v in counts.items()}
    for form, weight in PHRASE_FORMS.items():
        assert shares[form] == pytest.approx(weight, abs=0.04), form
    knife = ObjectSpec("knife", None, "metal")  # no attribute words: the noun only
    assert {object_phrase(vocab, knife, rng) for _ in range(20)} == {"knife"}
    spoon = ObjectSpec("spoon", None, "wooden")  # intrinsic colour: noun or material
    assert {object_phrase(vocab, spoon, rng) for _ in range(50)} == {"spoon", "wooden spoon"}


def test_manifest_lines_and_splits(demo: Path, records: list[dict]) -> None:
    assert len(records) == N_CLIPS
    for record in records:
        assert set(record) == KEYS
        assert (demo.parent / record["video"]).is_file()
        assert not Path(record["video"]).is_absolute()
    assert len({r["clip_id"] for r in records}) == N_CLIPS
    splits = [r["split"] for r in records]
    assert {s: splits.count(s) for s in ("train", "val", "test")} == split_counts(N_CLIPS)
    by_video: dict[str, list[dict]] = {}
    for record in records:
        by_video.setdefault(record["video"], []).append(record)
    shared = [clips for clips in by_video.values() if len(clips) > 1]
    assert shared, "some clips must share a video"
    for clips in shared:  # windows of one video do not overlap and stay in one split
        assert len({c["split"] for c in clips}) == 1
        for a, b in zip(clips[:-1], clips[1:], strict=True):
            assert a["end_sec"] <= b["start_sec"]


def test_tags_and_masks_agree(records: list[dict]) -> None:
    for record in records:
        if record["split"] == "train":
            assert not has_reserved(record["narration"])
            assert record["annotations"] == []
            continue
        tagged = parse_tags(record["narration"])
        assert 1 <= len(tagged.object_ids) <= 3
        assert len(record["annotations"]) >= 3
        for annotation in record["annotations"]:
            assert set(annotation["objects"]) == tagged.object_ids
            for mask in annotation["objects"].values():
                assert rle.check_json_rle(mask)[:2] == (HEIGHT, WIDTH)


def test_frame_indices_inside_windows(demo: Path, records: list[dict]) -> None:
    for record in records:
        info = probe(str(demo.parent / record["video"]))
        assert (info.width, info.height) == (WIDTH, HEIGHT)
        window = frame_window(info, record["start_sec"], record["end_sec"])
        assert window.stop <= info.frame_count
        assert 30 <= len(window) <= 40
        for annotation in record["annotations"]:
            assert annotation["frame_index"] in window


def test_masks_match_rendered_and_decoded_frames(demo: Path, records: list[dict]) -> None:
    vocab = load_vocabulary()
    coloured = 0
    for index, record in enumerate(records):
        if record["split"] == "train":
            continue
        clip = make_clip(vocab, SEED, index, record["split"])
        info = probe(str(demo.parent / record["video"]))
        start = frame_window(info, record["start_sec"], record["end_sec"]).start
        video = decode_all(demo.parent / record["video"])
        phrases = {p.object_id: p.text for p in parse_tags(record["narration"]).phrases}
        for annotation in record["annotations"]:
            local = annotation["frame_index"] - start
            decoded = video[annotation["frame_index"]]
            rendered = clip.rendered.frames[local]
            assert np.abs(decoded.astype(int) - rendered).mean() < 8
            for oid, obj in annotation["objects"].items():
                mask = rle.decode(obj["counts"], *obj["size"])
                # exactly the visible object pixels: hands and objects on top are removed
                assert np.array_equal(mask, clip.rendered.labels[local] == int(oid))
                assert not (mask & (clip.rendered.labels[local] == HAND_LABEL)).any()
                core = cv2.erode(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
                words = [w for w in phrases[oid].split() if w in vocab.colours]
                if core.sum() >= 30 and words:
                    mean_rgb = decoded[core][:, ::-1].mean(axis=0)
                    assert vocab.nearest_colour(mean_rgb) == words[0], (record["clip_id"], oid)
                    coloured += 1
    assert coloured >= 1


def test_demo_validates(demo: Path) -> None:
    records = validate_manifest(demo, splits=["train", "val", "test"])
    assert len(records) == N_CLIPS


def test_objects_move_and_leave_the_frame() -> None:
    vocab = load_vocabulary()
    kinds = {}
    for index in range(40):
        rng = np.random.default_rng([SEED, index])
        plan = plan_clip(vocab, rng, int(rng.integers(33, 40)))
        kinds.setdefault(plan.story.kind, index)
    assert set(kinds) == {"move", "pick", "take"}
    take = make_clip(vocab, SEED, kinds["take"], "val")
    actor = int(take.plan.story.actor)
    assert (take.rendered.labels[0] == actor).sum() > 50
    assert (take.rendered.labels[-1] == actor).sum() == 0  # carried out of the frame
    move = make_clip(vocab, SEED, kinds["move"], "val")
    obj = move.plan.object(move.plan.story.actor)
    assert np.linalg.norm(obj.centre[-1] - obj.centre[0]) > 20
    assert obj.scale.max() > 1.1  # lifted towards the camera
    assert (move.rendered.labels == HAND_LABEL).any()


def test_vocabulary_looks_are_distinct() -> None:
    vocab = load_vocabulary()
    for name, rgb in vocab.colours.items():
        assert vocab.nearest_colour(rgb) == name
        assert vocab.nearest_colour(tuple(0.75 * c for c in rgb)) == name  # shading-tolerant
    assert len({n.shape for n in vocab.nouns.values()}) == len(vocab.nouns)


def test_bad_vocabulary_names_the_noun() -> None:
    data = {
        "colours": {"red": [200, 0, 0]},
        "materials": {"plastic": {"texture": "gloss"}},
        "nouns": {
            "cup": {"shape": "teapot", "size": 10, "colours": ["red"], "materials": ["plastic"]}
        },
        "skin_tones": [[200, 150, 120]],
        "counters": {"oak": {"texture": "wood", "colour": [190, 150, 100]}},
    }
    with pytest.raises(VocabularyError, match="noun 'cup'.*teapot"):
        parse_vocabulary(data, "test.yaml")


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="at least 1 clip"):
        split_counts(0)
    with pytest.raises(ValueError, match="seed"):
        generate_demo(Path("unused"), 4, -1)


def test_interrupted_run_leaves_no_manifest(tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "demo"
    out.mkdir()
    (out / "manifest.jsonl").write_text("old\n")

    def broken(path: Path, frames: np.ndarray) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(generate_module, "write_video", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        generate_demo(out, 4, 0)
    assert sorted(p.name for p in out.iterdir()) == []


def test_clips_hold_three_to_five_objects_and_often_name_a_third() -> None:
    vocab = load_vocabulary()
    sizes, with_context = set(), 0
    for index in range(60):
        rng = np.random.default_rng([SEED, index])
        plan = plan_clip(vocab, rng, 36)
        sizes.add(len(plan.objects))
        with_context += plan.story.context is not None
        named = {plan.story.actor, plan.story.target, plan.story.context} - {None}
        assert named <= {o.object_id for o in plan.objects}
    assert sizes == {3, 4, 5}
    assert 0.3 < with_context / 60 < 0.8  # CONTEXT_MENTION, when another object is in view
