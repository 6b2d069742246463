"""Token alignment: a phrase pools exactly its own tokens of the tokenised narration."""

from __future__ import annotations

import open_clip
import pytest

from nvos.features.tokens import AlignedText, TokenAlignmentError, align_tokens, context_ids
from nvos.phrases import clean_narration


@pytest.fixture(scope="module")
def tokenizer():
    return open_clip.get_tokenizer("ViT-B-16")  # the CLIP BPE shipped with open_clip


def occurrence(text: str, phrase: str, nth: int = 0) -> tuple[int, int]:
    """Span of the ``nth`` occurrence of ``phrase`` in ``text``."""
    start = -1
    for _ in range(nth + 1):
        start = text.index(phrase, start + 1)
    return start, start + len(phrase)


def expected_positions(tokenizer, text: str, start: int, end: int) -> list[int]:
    """Positions by an independent route: tokens of the prefix, then of the phrase on its own."""
    before = len(tokenizer.encode(text[:start]))
    own = len(tokenizer.encode(text[start:end]))
    return list(range(before + 1, before + 1 + own))


def check_phrase(tokenizer, aligned: AlignedText, start: int, end: int) -> list[int]:
    positions = aligned.positions(start, end)
    assert positions == expected_positions(tokenizer, aligned.text, start, end)
    ids = tokenizer(aligned.text)[0]
    assert ids[positions].tolist() == tokenizer.encode(aligned.text[start:end])
    return positions


TEXTS = [
    "The person uses a wooden spoon to stir pasta in a pan.",
    "Next to the green ceramic cup, the person drops the knife onto the board!",
    "the person's knife... and don't forget o'clock",
    "  Mixed   CASE\twith\nnewlines and  spaces  ",
    "crème brûlée, İstanbul map, ﬁsh and 12 cups &amp; lids",
    "#C C picks the bottle",
    "",
]


@pytest.mark.parametrize("text", TEXTS)
def test_replayed_ids_equal_the_tokenizer(tokenizer, text):
    aligned = align_tokens(tokenizer, text)
    assert list(aligned.token_ids) == tokenizer.encode(text)
    assert context_ids(aligned, tokenizer).tolist() == tokenizer(text)[0].tolist()
    assert len(aligned.spans) == len(aligned.token_ids)
    for start, end in aligned.spans:
        assert 0 <= start < end <= len(text)
        assert not text[start:end].isspace()


def test_phrases_with_punctuation(tokenizer):
    text = "Next to the green ceramic cup, the person drops the knife onto the board."
    aligned = align_tokens(tokenizer, text)
    cup = check_phrase(tokenizer, aligned, *occurrence(text, "green ceramic cup"))
    board = check_phrase(tokenizer, aligned, *occurrence(text, "the board"))
    comma = tokenizer.encode(",")[0]
    period = tokenizer.encode(".")[0]
    ids = tokenizer(text)[0].tolist()
    assert ids[cup[-1] + 1] == comma  # the comma right after the phrase is not pooled
    assert ids[board[-1] + 1] == period


def test_repeated_words_get_their_own_occurrence(tokenizer):
    text = "the person puts the knife on the knife block, then the knife in the sink"
    aligned = align_tokens(tokenizer, text)
    found = [check_phrase(tokenizer, aligned, *occurrence(text, "knife", k)) for k in range(3)]
    assert len({tuple(p) for p in found}) == 3
    assert found[0] < found[1] < found[2]
    block = check_phrase(tokenizer, aligned, *occurrence(text, "knife block"))
    assert block[0] == found[1][0] and len(block) == 2


def test_apostrophes(tokenizer):
    text = "the person's knife and the knife's handle"
    aligned = align_tokens(tokenizer, text)
    person = check_phrase(tokenizer, aligned, *occurrence(text, "the person"))
    apostrophe_s = tokenizer.encode("'s")
    ids = tokenizer(text)[0].tolist()
    assert ids[person[-1] + 1 : person[-1] + 1 + len(apostrophe_s)] == apostrophe_s
    check_phrase(tokenizer, aligned, *occurrence(text, "person's knife"))
    check_phrase(tokenizer, aligned, *occurrence(text, "handle"))


def test_unicode_and_length_changing_cleaning(tokenizer):
    text = "the crème brûlée beside the İstanbul map and the ﬁsh"
    aligned = align_tokens(tokenizer, text)
    check_phrase(tokenizer, aligned, *occurrence(text, "crème brûlée"))
    check_phrase(tokenizer, aligned, *occurrence(text, "İstanbul map"))  # lower() adds a char
    check_phrase(tokenizer, aligned, *occurrence(text, "ﬁsh"))  # ligature normalised by ftfy


def test_cleaned_ego4d_narration(tokenizer):
    text = clean_narration("#C C puts the [plate]<1> on the [cutting board]<2>")
    aligned = align_tokens(tokenizer, text)
    positions = check_phrase(tokenizer, aligned, *occurrence(text, "cutting board"))
    assert len(positions) == 2


def test_long_narration_cut_at_the_context_limit(tokenizer):
    words = ["cup"] * 80
    words[74], words[75] = "knife", "spoon"
    text = " ".join(words)
    aligned = align_tokens(tokenizer, text)
    assert aligned.truncated and aligned.context_length == 77
    ids = tokenizer(text)[0].tolist()
    knife = aligned.positions(*occurrence(text, "knife"))
    assert knife == [75] and ids[75] == tokenizer.encode("knife")[0]
    assert ids[76] == tokenizer.eot_token_id
    assert aligned.positions(*occurrence(text, "spoon")) is None  # cut off: caller falls back
    assert aligned.positions(*occurrence(text, "knife spoon")) is None  # partly cut off
    assert aligned.positions(*occurrence(text, "cup")) == [1]


def test_span_without_tokens_and_bad_spans(tokenizer):
    text = "the cup ,  the pan"
    aligned = align_tokens(tokenizer, text)
    assert aligned.positions(7, 8) is None  # a space: no token
    with pytest.raises(ValueError, match="outside the text"):
        aligned.positions(5, 99)
    with pytest.raises(ValueError, match="empty"):
        aligned.positions(3, 3)


def test_rejects_other_tokenizers():
    with pytest.raises(TypeError, match="SimpleTokenizer"):
        align_tokens(object(), "a cup")


def test_mismatch_is_an_error(tokenizer, monkeypatch):
    text = "the cup"
    monkeypatch.setattr(tokenizer, "encode", lambda t: [1, 2, 3])
    with pytest.raises(TokenAlignmentError, match="differ"):
        align_tokens(tokenizer, text)
