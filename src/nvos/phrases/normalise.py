"""Narration clean-up: tags stripped, Ego4D markers rewritten, whitespace collapsed.

:func:`clean_narration` is the single source of truth for the text that the phrase parser reads
and that the text encoder sees: every ``char_start``/``char_end`` in ``phrases.parquet`` indexes
``clean_narration(narration)`` of the clip's narration in ``clips.parquet``.

Rules, applied to the whitespace-separated words of the tag-stripped narration (DESIGN §4,
REFERENCE §5 for Ego4D's conventions):

- words are re-joined with one space (leading/trailing/repeated whitespace removed);
- ``#Summary`` (any case) as the first word marks a summary line: the marker is removed and the
  narration yields no phrases (:attr:`Narration.is_summary`);
- ``#unsure`` (any case) is removed; punctuation written after it joins the previous word;
- ``#C`` (the camera wearer) and the ``C`` after it become ``the person``; a standalone ``C`` (also
  ``C's``, ``C,``) in an Ego4D-style narration (one with any ``#`` marker, or whose first word is
  ``C``) becomes ``the person`` and its
  span is recorded as a camera-wearer span (:attr:`Narration.wearer_spans`);
- ``#O`` (another person) with an optional determiner, an optional person noun (``man``,
  ``woman``, ...) and an optional one-letter label (``#O man X``) becomes ``a man`` (or
  ``a person`` without a noun);
- any other word starting with ``#`` loses its ``#`` characters;
- a rewritten first word is capitalised (``#C C picks a knife`` -> ``The person picks a knife``).

Tagged narrations (``[phrase]<id>``, :mod:`nvos.tags`) get the same rules after their tags are
stripped; their phrase spans are carried through the rewrite.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from nvos.tags import TaggedPhrase, parse_tags

__all__ = [
    "Narration",
    "NarrationError",
    "PERSON_NOUNS",
    "clean_narration",
    "normalise_narration",
]

PERSON_NOUNS = frozenset(
    "person man woman lady boy girl child kid baby guy people men women friend".split()
)
"""Nouns that may follow Ego4D's ``#O`` marker (``#O man X picks a cup``)."""

_DETERMINERS = frozenset({"a", "an", "the"})
_WORD = re.compile(r"\S+")
_C_WORD = re.compile(r"C(?=$|[^\w])")  # "C", "C's", "C,", "C."
_LABEL = re.compile(r"[A-Z](?=$|[^\w])")  # a one-letter person label: "X", "Y,", "B's"
_TRAILING = re.compile(r"[^\w]*$")


class NarrationError(ValueError):
    """A narration that cannot be cleaned (e.g. a tag that covers only a removed marker)."""


@dataclass(frozen=True, slots=True)
class Narration:
    """A cleaned narration.

    ``text`` is :func:`clean_narration`'s result; ``tagged`` holds the tagged phrases with spans
    into ``text`` (empty for an untagged narration); ``wearer_spans`` are ``(start, end)`` spans
    of ``text`` that name the camera wearer (rewritten ``#C``/``C``); ``is_summary`` marks an
    Ego4D ``#Summary`` line, which yields no phrases.
    """

    text: str
    tagged: tuple[TaggedPhrase, ...]
    wearer_spans: tuple[tuple[int, int], ...]
    is_summary: bool
    is_tagged: bool


@dataclass(slots=True)
class _Builder:
    """Accumulates the clean text and, per clean character, its index in the source (-1 = new)."""

    parts: list[str]
    origin: list[int]

    @property
    def length(self) -> int:
        return len(self.origin)

    def copy(self, source: str, start: int, end: int, space: bool = True) -> None:
        if self.origin and space:
            self.insert(" ")
        self.parts.append(source[start:end])
        self.origin.extend(range(start, end))

    def insert(self, text: str) -> None:
        self.parts.append(text)
        self.origin.extend([-1] * len(text))

    def word(self, text: str) -> tuple[int, int]:
        """Append a new word (space-separated); return its span in the clean text."""
        if self.origin:
            self.insert(" ")
        start = self.length
        self.insert(text)
        return start, self.length

    def text(self) -> str:
        return "".join(self.parts)


def _person_replacement(words: list[re.Match[str]], i: int) -> tuple[str, int]:
    """Rewrite of ``#O`` at ``words[i]``: (replacement text, index of the next unused word)."""
    j = i + 1

    def low(k: int) -> str:
        return words[k].group().lower() if k < len(words) else ""

    noun = "person"
    suffix = ""
    if low(j) in _DETERMINERS and _TRAILING.sub("", low(j + 1)) in PERSON_NOUNS:
        j += 1
    if _TRAILING.sub("", low(j)) in PERSON_NOUNS:
        word = words[j].group()
        noun = _TRAILING.sub("", word).lower()
        suffix = word[len(noun) :]
        j += 1
        if not suffix and j < len(words) and _LABEL.match(words[j].group()):
            suffix = words[j].group()[1:]
            j += 1
    elif j < len(words) and _LABEL.match(words[j].group()) and words[j].group()[0] != "C":
        suffix = words[j].group()[1:]
        j += 1
    return f"a {noun}{suffix}", j


def normalise_narration(raw: str) -> Narration:
    """Clean ``raw`` (tags stripped, Ego4D markers rewritten); see the module docstring.

    Raises :class:`nvos.tags.TagError` for a malformed tag and :class:`NarrationError` when a
    tagged phrase would be empty after the clean-up.
    """
    parsed = parse_tags(raw)
    source = parsed.text
    words = list(_WORD.finditer(source))
    ego4d = "#" in source or (bool(words) and words[0].group() == "C")
    out = _Builder([], [])
    wearer: list[tuple[int, int]] = []
    is_summary = bool(words) and words[0].group().lower().rstrip(":") == "#summary"
    capitalise = False
    i = 1 if is_summary else 0
    while i < len(words):
        word = words[i].group()
        low = word.lower()
        first = out.length == 0
        if low.startswith("#unsure"):
            rest = word[len("#unsure") :]
            if rest:  # punctuation after the marker stays attached to the previous word
                out.copy(source, words[i].end() - len(rest), words[i].end(), space=False)
            i += 1
        elif low == "#c":
            i += 1  # "#C C picks ...": the marker and the following "C" name the wearer
            suffix = ""
            if i < len(words) and _C_WORD.match(words[i].group().upper()):
                suffix = words[i].group()[1:]
                i += 1
            wearer.append(out.word("the person"))
            out.insert(suffix)
            capitalise |= first
        elif low == "#o":
            text, i = _person_replacement(words, i)
            out.word(text)
            capitalise |= first
        elif ego4d and _C_WORD.match(word):
            start, _ = out.word("the person")
            wearer.append((start, start + len("the person")))
            if len(word) > 1:
                out.insert(word[1:])
            capitalise |= first
            i += 1
        elif word.startswith("#"):
            stripped = word.lstrip("#")
            if stripped:
                out.copy(source, words[i].end() - len(stripped), words[i].end())
            i += 1
        else:
            out.copy(source, words[i].start(), words[i].end())
            i += 1
    text = out.text()
    if capitalise and text:
        text = text[0].upper() + text[1:]
    tagged = tuple(_remap(p, out.origin, text, raw) for p in parsed.phrases)
    return Narration(text, tagged, tuple(wearer), is_summary, bool(parsed.phrases))


def _remap(phrase: TaggedPhrase, origin: list[int], text: str, raw: str) -> TaggedPhrase:
    """The tagged phrase with its span moved from the tag-stripped text into the clean text."""
    inside = [k for k, o in enumerate(origin) if phrase.char_start <= o < phrase.char_end]
    if not inside:
        raise NarrationError(
            f"tagged phrase {phrase.text!r} (object {phrase.object_id}) is empty after clean-up "
            f"of narration {raw!r}"
        )
    start, end = inside[0], inside[-1] + 1
    return TaggedPhrase(text[start:end], start, end, phrase.object_id)


def clean_narration(raw: str) -> str:
    """The cleaned narration that phrase spans index and the text encoder reads.

    Deterministic; see the module docstring for the rules. ``"#C C picks a knife"`` ->
    ``"The person picks a knife"``; ``"take [plate]<1>"`` -> ``"take plate"``.
    """
    return normalise_narration(raw).text
