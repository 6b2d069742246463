"""The free-text path: parse a tagged narration as if it had no tags, and match the parsed
phrases to the tagged objects by character-span overlap.

A user's own narration has no tags; its phrases come from the parser. To score that path on
evaluation clips (whose narrations are tagged), :func:`free_text_phrases`

1. cleans the narration (:func:`nvos.phrases.normalise_narration`: tags stripped, the tagged
   phrases' spans carried into the clean text),
2. parses the clean text with the phrases stage's parser exactly as an untagged narration
   (:class:`nvos.phrases.PhraseParser`; the camera-wearer spans of the clean-up are kept),
3. matches each parsed phrase to the tagged phrase it shares the most characters with
   (:func:`match_spans`; ties: the earlier tagged phrase) and so to that phrase's object.

A parsed phrase that overlaps no tagged phrase is **unmatched** (it gets masks but no score);
an object none of whose tagged phrases is matched is **unmatched** too (it is scored as missed).
Both are counted (:class:`MatchSummary`). Spans index the same clean text throughout, so the
parsed phrases are rows of the ``phrases`` table (:func:`free_text_table`, source ``parser``,
``object_id`` the matched object).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import pyarrow as pa

from nvos import storage
from nvos.phrases.normalise import Narration, normalise_narration
from nvos.phrases.parse import Phrase, PhraseParser
from nvos.tags import TaggedPhrase

__all__ = [
    "FreeTextMatch",
    "MatchSummary",
    "MatchedPhrase",
    "free_text_phrases",
    "free_text_table",
    "match_spans",
]


@dataclass(frozen=True)
class MatchedPhrase:
    """A parsed phrase, the object of the tagged phrase it overlaps most (None: none), and the
    number of characters they share."""

    phrase: Phrase
    object_id: str | None
    overlap: int


@dataclass(frozen=True)
class FreeTextMatch:
    """One narration's free-text path: the clean ``text``, its tagged phrases, the parsed phrases
    with their matches, and the tagged objects that no parsed phrase matched (in tag order)."""

    text: str
    tagged: tuple[TaggedPhrase, ...]
    phrases: tuple[MatchedPhrase, ...]
    unmatched_objects: tuple[str, ...]

    @property
    def unmatched_phrases(self) -> tuple[Phrase, ...]:
        """The parsed phrases that overlap no tagged phrase."""
        return tuple(m.phrase for m in self.phrases if m.object_id is None)

    @property
    def objects(self) -> tuple[str, ...]:
        """The tagged objects, in order of their first phrase."""
        return tuple(dict.fromkeys(t.object_id for t in self.tagged))


def _overlap(phrase: Phrase, tag: TaggedPhrase) -> int:
    return max(0, min(phrase.char_end, tag.char_end) - max(phrase.char_start, tag.char_start))


def match_spans(
    tagged: Sequence[TaggedPhrase], parsed: Sequence[Phrase]
) -> tuple[tuple[MatchedPhrase, ...], tuple[str, ...]]:
    """Match each parsed phrase to the tagged phrase whose span it overlaps most (ties: the
    earlier tagged phrase); spans index the same text. Returns the matches (in parsed order) and
    the unmatched object ids (in tag order)."""
    matches = []
    for phrase in parsed:
        best, best_overlap = None, 0
        for tag in tagged:
            overlap = _overlap(phrase, tag)
            if overlap > best_overlap:
                best, best_overlap = tag, overlap
        matches.append(MatchedPhrase(phrase, best.object_id if best else None, best_overlap))
    found = {m.object_id for m in matches}
    unmatched = tuple(o for o in dict.fromkeys(t.object_id for t in tagged) if o not in found)
    return tuple(matches), unmatched


def free_text_phrases(parser: PhraseParser, narrations: Sequence[str]) -> list[FreeTextMatch]:
    """The free-text path of each (tagged) narration; see the module docstring.

    Raises :class:`nvos.tags.TagError` or :class:`nvos.phrases.normalise.NarrationError` for a
    narration that cannot be cleaned.
    """
    cleaned = [normalise_narration(n) for n in narrations]
    untagged = [_as_free_text(n) for n in cleaned]
    parsed = parser.parse(untagged)
    out = []
    for narration, phrases in zip(cleaned, parsed, strict=True):
        matches, unmatched = match_spans(narration.tagged, phrases)
        out.append(FreeTextMatch(narration.text, narration.tagged, matches, unmatched))
    return out


def _as_free_text(narration: Narration) -> Narration:
    """The cleaned narration without its tags (text, camera-wearer spans and summary flag kept)."""
    return replace(narration, tagged=(), is_tagged=False)


@dataclass
class MatchSummary:
    """Counts of the free-text path over many narrations (tagged objects per clip)."""

    narrations: int = 0
    objects: int = 0
    matched_objects: int = 0
    parsed_phrases: int = 0
    matched_phrases: int = 0
    objects_with_several_phrases: int = 0
    unmatched_objects: list[str] = field(default_factory=list)  # "clip_id:object_id"
    unmatched_phrases: list[str] = field(default_factory=list)  # "clip_id:phrase text"

    def add(self, clip_id: str, match: FreeTextMatch) -> None:
        """Count one narration's match."""
        self.narrations += 1
        self.objects += len(match.objects)
        self.matched_objects += len(match.objects) - len(match.unmatched_objects)
        self.parsed_phrases += len(match.phrases)
        self.matched_phrases += sum(m.object_id is not None for m in match.phrases)
        per_object: dict[str, int] = {}
        for m in match.phrases:
            if m.object_id is not None:
                per_object[m.object_id] = per_object.get(m.object_id, 0) + 1
        self.objects_with_several_phrases += sum(n > 1 for n in per_object.values())
        self.unmatched_objects += [f"{clip_id}:{o}" for o in match.unmatched_objects]
        self.unmatched_phrases += [f"{clip_id}:{p.text}" for p in match.unmatched_phrases]

    @property
    def object_recall(self) -> float:
        """Matched objects / tagged objects (1.0 with no object)."""
        return self.matched_objects / self.objects if self.objects else 1.0


def free_text_table(
    parser: PhraseParser, clips: Sequence[tuple[str, str]]
) -> tuple[pa.Table, MatchSummary]:
    """Rows of the ``phrases`` table for the free-text path of ``clips`` ((clip_id, narration)
    pairs, narrations tagged): the parsed phrases in reading order, ``object_id`` the matched
    object (None when unmatched), source ``parser``; and the counts."""
    summary = MatchSummary()
    columns: dict[str, list[Any]] = {name: [] for name in storage.SCHEMAS["phrases"].names}
    matches = free_text_phrases(parser, [narration for _, narration in clips])
    for (clip_id, _), match in zip(clips, matches, strict=True):
        summary.add(clip_id, match)
        for phrase_id, m in enumerate(match.phrases):
            columns["clip_id"].append(clip_id)
            columns["phrase_id"].append(phrase_id)
            columns["text"].append(m.phrase.text)
            columns["char_start"].append(m.phrase.char_start)
            columns["char_end"].append(m.phrase.char_end)
            columns["object_id"].append(m.object_id)
            columns["source"].append(m.phrase.source)
    return pa.table(columns, schema=storage.SCHEMAS["phrases"]), summary
