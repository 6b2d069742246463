"""Tagged narrations: clean text, phrase spans, and every malformed-tag error with its column."""

from __future__ import annotations

import pytest

from nvos.tags import TagError, TaggedPhrase, parse_tags, strip_tags


def test_example_from_the_design() -> None:
    parsed = parse_tags("The person uses a [wooden spoon]<5> to stir [pasta]<2> in a [pan]<3>.")
    assert parsed.text == "The person uses a wooden spoon to stir pasta in a pan."
    assert [(p.text, p.object_id) for p in parsed.phrases] == [
        ("wooden spoon", "5"),
        ("pasta", "2"),
        ("pan", "3"),
    ]
    for phrase in parsed.phrases:
        assert parsed.text[phrase.char_start : phrase.char_end] == phrase.text
    assert parsed.phrases[0] == TaggedPhrase("wooden spoon", 18, 30, "5")
    assert parsed.object_ids == {"5", "2", "3"}


def test_untagged_narration_is_unchanged() -> None:
    parsed = parse_tags("#C C picks a cup from the table")
    assert parsed.text == "#C C picks a cup from the table"
    assert parsed.phrases == ()


def test_phrase_at_the_start_and_end_and_adjacent_tags() -> None:
    parsed = parse_tags("[knife]<k-1>[board]<b_2>")
    assert parsed.text == "knifeboard"
    assert [(p.char_start, p.char_end, p.object_id) for p in parsed.phrases] == [
        (0, 5, "k-1"),
        (5, 10, "b_2"),
    ]


def test_same_object_id_on_several_phrases_keeps_both() -> None:
    parsed = parse_tags("take [the pan]<3> and put [it]<3> down")
    assert [p.text for p in parsed.phrases] == ["the pan", "it"]
    assert parsed.object_ids == {"3"}


def test_spaces_inside_brackets_are_trimmed_from_the_span() -> None:
    parsed = parse_tags("a [ red cup ]<1>!")
    assert parsed.text == "a  red cup !"
    (phrase,) = parsed.phrases
    assert phrase.text == "red cup"
    assert parsed.text[phrase.char_start : phrase.char_end] == "red cup"


def test_unicode_text_spans() -> None:
    parsed = parse_tags("coupe le [pâté]<e1> fin")
    (phrase,) = parsed.phrases
    assert parsed.text[phrase.char_start : phrase.char_end] == "pâté"


def test_strip_tags() -> None:
    assert strip_tags("stir [pasta]<2>.") == "stir pasta."


@pytest.mark.parametrize(
    ("narration", "column", "reason"),
    [
        ("stir [pasta<2> now", 12, "'<' inside the phrase"),
        ("stir [pasta", 6, "never closed by ']'"),
        ("stir pasta]<2>", 11, "']' without a matching '['"),
        ("stir [pasta] now", 13, "not followed by '<object_id>'"),
        ("stir [pasta]", 13, "not followed by '<object_id>'"),
        ("stir [pasta] <2>", 13, "not followed by '<object_id>'"),
        ("stir <2> pasta", 6, "must follow a '[phrase]' directly"),
        ("stir [pasta]<2> > 3", 17, "'>' without a matching '<'"),
        ("stir []<2>", 6, "empty phrase"),
        ("stir [  ]<2>", 6, "empty phrase"),
        ("stir [a [b]<1>]<2>", 9, "nested '['"),
        ("stir [pasta]<>", 13, "empty object id"),
        ("stir [pasta]<2 3>", 13, "invalid object id '2 3'"),
        ("stir [pasta]<2.5>", 13, "invalid object id '2.5'"),
        ("stir [pasta]<2", 13, "'<' is never closed by '>'"),
    ],
)
def test_malformed_tags(narration: str, column: int, reason: str) -> None:
    with pytest.raises(TagError) as info:
        parse_tags(narration)
    assert info.value.column == column
    assert reason in info.value.reason
    assert str(info.value).startswith(f"column {column}: ")
    assert isinstance(info.value, ValueError)
