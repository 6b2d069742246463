"""Phrase recall on EPIC-KITCHENS-100 narrations: how many annotated nouns the phrases cover.

EPIC's ``all_nouns`` column is a Python-literal list of the narration's nouns written
``head:modifier...`` (``'pan:frying'`` is "frying pan", ``'liquid:washing:up'`` is "washing up
liquid"). An annotated noun is **covered** when its head word (the part before the first ``:``,
lower-cased) equals the lower-cased text or lemma of a token inside one of the phrases extracted
from the narration. A miss is put in one category:

- ``absent``: the head word is no token (text or lemma) of the narration at all (EPIC's noun is
  a spelling correction, a synonym or a class name: narration "tupperware", noun ``container``);
- ``not_phrase:<POS>``: the word is in the narration but in no phrase; ``<POS>`` is spaCy's tag of
  that token (``VERB`` = an object mis-read as a verb, ``ADJ`` ...).

Benchmark code, not part of the pipeline: used by ``benchmarks/phrase_recall.py`` and by
``tests/test_phrases.py`` (as ``benchmarks.epic_recall``).
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from nvos.importers.epic import parse_all_nouns
from nvos.phrases.normalise import normalise_narration
from nvos.phrases.parse import Phrase, PhraseParser

__all__ = ["EpicNarration", "NounMiss", "RecallReport", "epic_head", "phrase_recall", "read_epic"]


@dataclass(frozen=True, slots=True)
class EpicNarration:
    """One EPIC-100 narration row: its id, raw narration and annotated nouns."""

    narration_id: str
    narration: str
    nouns: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class NounMiss:
    """An annotated noun no phrase covers, with the phrases that were extracted."""

    narration_id: str
    narration: str
    noun: str
    category: str
    phrases: tuple[str, ...]


@dataclass(frozen=True)
class RecallReport:
    """Covered / total annotated nouns, and every miss."""

    total: int
    covered: int
    narrations: int
    misses: list[NounMiss] = field(default_factory=list)

    @property
    def recall(self) -> float:
        """Share of annotated nouns whose head word an extracted phrase covers."""
        return self.covered / self.total if self.total else 1.0

    def categories(self) -> Counter[str]:
        """Number of misses per category."""
        return Counter(m.category for m in self.misses)


def epic_head(noun: str) -> str:
    """The head word of an EPIC noun: ``'pan:frying'`` -> ``'pan'``."""
    return noun.split(":", 1)[0].strip().lower()


def read_epic(path: str | os.PathLike[str]) -> list[EpicNarration]:
    """Read the ``narration_id``, ``narration`` and ``all_nouns`` columns of an EPIC-100 CSV.

    Raises ``ValueError`` naming the file and row for a missing column or an unreadable list.
    """
    rows: list[EpicNarration] = []
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        needed = {"narration_id", "narration", "all_nouns"}
        missing = needed - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: missing columns {sorted(missing)}")
        for line, row in enumerate(reader, start=2):
            try:
                nouns = parse_all_nouns(row["all_nouns"])
            except ValueError as error:
                raise ValueError(f"{path}:{line}: {error}") from None
            rows.append(EpicNarration(row["narration_id"], row["narration"], nouns))
    return rows


def phrase_recall(parser: PhraseParser, rows: Sequence[EpicNarration]) -> RecallReport:
    """Extract the phrases of every row's narration and count the covered annotated nouns."""
    narrations = [normalise_narration(r.narration) for r in rows]
    phrases = parser.parse(narrations)
    total = covered = 0
    misses: list[NounMiss] = []
    docs = None
    for k, (row, found) in enumerate(zip(rows, phrases, strict=True)):
        words = frozenset().union(*(p.words for p in found))
        for noun in row.nouns:
            total += 1
            if epic_head(noun) in words:
                covered += 1
                continue
            if docs is None:  # tag the narrations once, only when something is missed
                texts = (parser.prepare(n.text)[0] for n in narrations)
                docs = list(parser.nlp.pipe(texts, batch_size=parser.batch_size))
            misses.append(_miss(row, noun, docs[k], found))
    return RecallReport(total, covered, len(rows), misses)


def _miss(row: EpicNarration, noun: str, doc: object, found: tuple[Phrase, ...]) -> NounMiss:
    head = epic_head(noun)
    category = "absent"
    for token in doc:  # type: ignore[attr-defined]
        if head in (token.lower_, token.lemma_.lower()):
            category = f"not_phrase:{token.pos_}"
            break
    return NounMiss(row.narration_id, row.narration, noun, category, tuple(p.text for p in found))
