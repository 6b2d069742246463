"""The demo's second style (workshop): deterministic, exact masks, other words and looks than the
kitchen style, and a clear message for a bad style or a bad template."""

from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from test_demo import decode_all

from nvos import rle
from nvos.cli import main
from nvos.demo import (
    DEFAULT_STYLE,
    HAND_LABEL,
    STYLES,
    DemoClip,
    Vocabulary,
    VocabularyError,
    generate_demo,
    load_vocabulary,
    make_clip,
    split_counts,
    style_path,
)
from nvos.demo.vocabulary import parse_vocabulary
from nvos.manifest import validate_manifest
from nvos.tags import has_reserved, parse_tags
from nvos.video import frame_window, probe

REPO = Path(__file__).resolve().parents[1]
N_CLIPS = 8
SEED = 4  # its val / test clips name colours (seed 3 names none)
#: Words both styles' templates may share: grammar, not vocabulary.
FUNCTION_WORDS = {"the", "a", "an", "it", "to", "of", "and", "in", "on", "by", "from", "with"}


@pytest.fixture(scope="module")
def workshop() -> Vocabulary:
    return load_vocabulary(style_path("workshop"))


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_demo(tmp_path_factory.mktemp("workshop"), N_CLIPS, SEED, style="workshop")


@pytest.fixture(scope="module")
def records(demo: Path) -> list[dict]:
    return [json.loads(line) for line in demo.read_text().splitlines()]


def template_words(vocab: Vocabulary) -> set[str]:
    """Lower-case words of every narration template of a vocabulary, slots removed."""
    words: set[str] = set()
    for stories in vocab.templates.styles.values():
        for templates in stories.values():
            for template in templates:
                words |= set(re.findall(r"[a-z#]+", re.sub(r"\{[^}]*\}", " ", template).lower()))
    return words


def test_same_seed_same_bytes_and_frames_whatever_the_workers(demo: Path, tmp_path: Path) -> None:
    again = generate_demo(tmp_path / "again", N_CLIPS, SEED, workers=2, style="workshop")
    assert again.read_bytes() == demo.read_bytes()
    videos = sorted((demo.parent / "videos").glob("*.mp4"))
    assert [p.name for p in videos] == sorted(p.name for p in (again.parent / "videos").iterdir())
    for path in videos:
        assert np.array_equal(decode_all(path), decode_all(again.parent / "videos" / path.name))


def test_manifest_splits_and_tags(demo: Path, records: list[dict]) -> None:
    assert len(validate_manifest(demo, splits=["train", "val", "test"])) == N_CLIPS
    splits = [r["split"] for r in records]
    assert {s: splits.count(s) for s in ("train", "val", "test")} == split_counts(N_CLIPS)
    for record in records:
        if record["split"] == "train":
            assert not has_reserved(record["narration"]) and record["annotations"] == []
        else:
            tagged = parse_tags(record["narration"]).object_ids
            assert 1 <= len(tagged) <= 3 and len(record["annotations"]) == 4
            assert all(set(a["objects"]) == tagged for a in record["annotations"])


def test_masks_match_rendered_and_decoded_frames(
    demo: Path, records: list[dict], workshop: Vocabulary
) -> None:
    coloured = 0
    for index, record in enumerate(records):
        if record["split"] == "train":
            continue
        clip = make_clip(workshop, SEED, index, record["split"])
        assert clip.narration == record["narration"]
        info = probe(str(demo.parent / record["video"]))
        start = frame_window(info, record["start_sec"], record["end_sec"]).start
        video = decode_all(demo.parent / record["video"])
        phrases = {p.object_id: p.text for p in parse_tags(record["narration"]).phrases}
        for annotation in record["annotations"]:
            local = annotation["frame_index"] - start
            decoded = video[annotation["frame_index"]]
            assert np.abs(decoded.astype(int) - clip.rendered.frames[local]).mean() < 8
            for oid, obj in annotation["objects"].items():
                mask = rle.decode(obj["counts"], *obj["size"])
                assert np.array_equal(mask, clip.rendered.labels[local] == int(oid))
                assert not (mask & (clip.rendered.labels[local] == HAND_LABEL)).any()
                core = cv2.erode(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
                near = cv2.dilate(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
                held = (near & (clip.rendered.labels[local] == HAND_LABEL)).any()
                words = [w for w in phrases[oid].split() if w in workshop.colours]
                # the colour word names a tool's grip: what the pixels show unless a hand holds it
                if core.sum() >= 30 and words and not held:
                    mean_rgb = decoded[core][:, ::-1].mean(axis=0)
                    assert workshop.nearest_colour(mean_rgb) == words[0], (record["clip_id"], oid)
                    coloured += 1
    assert coloured >= 5  # 10 with this seed


def test_the_two_styles_share_no_vocabulary_or_templates(workshop: Vocabulary) -> None:
    kitchen = load_vocabulary(style_path("kitchen"))
    assert load_vocabulary() == kitchen  # the default file is the kitchen style's
    for field in ("nouns", "colours", "materials", "counters"):
        assert not set(getattr(kitchen, field)) & set(getattr(workshop, field)), field
    for looks in (
        lambda v: {n.shape for n in v.nouns.values()},
        lambda v: {m.texture for m in v.materials.values()},
        lambda v: {c.texture for c in v.counters.values()},
        lambda v: {tuple(c) for c in v.colours.values()},
    ):
        assert not looks(kitchen) & looks(workshop)
    strings = [
        {t for stories in v.templates.styles.values() for ts in stories.values() for t in ts}
        for v in (kitchen, workshop)
    ]
    assert not strings[0] & strings[1]
    assert template_words(kitchen) & template_words(workshop) <= FUNCTION_WORDS


def test_narrations_use_only_their_own_style_words(
    records: list[dict], workshop: Vocabulary
) -> None:
    kitchen = load_vocabulary(style_path("kitchen"))
    foreign = set(kitchen.nouns) | set(kitchen.colours) | set(kitchen.materials)
    own = set(workshop.nouns)
    for record in records:
        words = set(re.findall(r"[a-z]+", record["narration"].lower()))
        assert not words & foreign, record["narration"]
        assert words & own, record["narration"]
    same_seed = make_clip(kitchen, SEED, 0, "val").narration
    assert same_seed != make_clip(workshop, SEED, 0, "val").narration


@pytest.mark.parametrize("style", sorted(STYLES))
def test_each_style_has_distinct_looks(style: str) -> None:
    vocab = load_vocabulary(style_path(style))
    for name, rgb in vocab.colours.items():
        assert vocab.nearest_colour(rgb) == name
        assert vocab.nearest_colour(tuple(0.75 * c for c in rgb)) == name  # shading-tolerant
    assert len({n.shape for n in vocab.nouns.values()}) == len(vocab.nouns)


def test_workshop_objects_move_and_leave_the_frame(workshop: Vocabulary) -> None:
    kinds: dict[str, DemoClip] = {}
    for index in range(30):
        clip = make_clip(workshop, SEED, index, "val")
        kinds.setdefault(clip.plan.story.kind, clip)
    take = kinds["take"]
    actor = int(take.plan.story.actor)
    assert (take.rendered.labels[0] == actor).sum() > 30
    assert (take.rendered.labels[-1] == actor).sum() == 0
    move = kinds["move"]
    target = move.plan.object(move.plan.story.target)
    assert workshop.nouns[target.spec.noun].receptacle in ("in", "on")


def test_schema_names_exactly_the_styles() -> None:
    schema = yaml.safe_load((REPO / "config" / "schema.yaml").read_text())
    style = schema["properties"]["dataset"]["properties"]["demo"]["properties"]["style"]
    assert style["enum"] == list(STYLES) and style["default"] == DEFAULT_STYLE


def test_unknown_style_is_one_clear_message(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(VocabularyError, match="unknown demo style 'garage'.*kitchen, workshop"):
        generate_demo(tmp_path, 4, 0, style="garage")
    assert main(["demo-data", str(tmp_path / "out"), "--style", "garage"]) == 1
    err = capsys.readouterr().err
    assert "nvos demo-data: " in err and "dataset.demo.style: 'garage' is not one of" in err
    assert "Traceback" not in err and not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("key", "template", "message"),
    [
        ("move", "The worker sets the {A} down.", r"move\[0\].*must name each of \['A', 'B'\]"),
        ("pick", "The worker grabs the {A} and the {D}.", r"pick\[0\].*unknown slot"),
        ("pick", "The worker grabs the [{A}].", r"pick\[0\].*tag character"),
        ("take", "The worker takes the {A} {into} the bin.", r"take\[0\].*need a move story"),
    ],
)
def test_bad_template_names_the_file_and_key(key: str, template: str, message: str) -> None:
    data = yaml.safe_load(style_path("workshop").read_text())
    data["templates"]["styles"]["report"][key] = [template]
    with pytest.raises(VocabularyError, match=rf"mine\.yaml: templates\.styles\.report\.{message}"):
        parse_vocabulary(data, "mine.yaml")
    data = yaml.safe_load(style_path("workshop").read_text())
    data["templates"]["free"] = {"report": 0.5, "log": 0.25}
    with pytest.raises(VocabularyError, match=r"mine\.yaml: templates\.free: .*summing to 1"):
        parse_vocabulary(data, "mine.yaml")
