"""Object phrases of a cleaned narration: its tags, or spaCy noun chunks for untagged text.

Tagged narrations keep their tagged phrases verbatim (source ``tag``). Untagged narrations are
parsed with a spaCy pipeline (``en_core_web_sm``); the object phrases (source ``parser``) are

- its noun chunks, plus every noun (``NOUN``/``PROPN``) that no chunk covers (spaCy leaves e.g.
  the object of "turn on tap" out of its chunks), extended left over its compounds;
- trimmed: leading determiners, possessives (``the person's``, ``his``), predeterminers and
  punctuation are cut, so "the red cup" gives the phrase "red cup" with the span of "red cup";
- dropped when the rest is a pronoun, a generic person (``someone``), or the camera wearer
  (a span rewritten from Ego4D's ``#C``/``C``, or "person"/"camera wearer"/"C" with a definite or
  no determiner; "a person" rewritten from ``#O`` is another, visible person and is kept).

EPIC-style imperative narrations ("take plate", "open fridge") are parsed with a subject
prefix ("I open fridge"): spaCy often tags a sentence-initial bare verb as an adjective or noun
("open fridge" -> one chunk), while "I" + base form is grammatical English and keeps the verb a
verb. A narration is imperative when its first word, lower-cased, is a verb lemma of the
pipeline's lemmatizer tables (WordNet's verb index). ``benchmarks/phrase_recall.py`` compares the
prefix strategies on the EPIC-KITCHENS-100 validation narrations.

Every phrase's span indexes the cleaned narration: ``clean[char_start:char_end] == text``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from nvos.phrases.normalise import Narration

__all__ = [
    "IMPERATIVE_STRATEGIES",
    "IMPERATIVE_OBJECT_DEPS",
    "OBJECT_DEPS",
    "Phrase",
    "PhraseParser",
    "load_spacy",
]

logger = logging.getLogger(__name__)

IMPERATIVE_STRATEGIES: dict[str, tuple[str, str]] = {
    "none": ("", ""),
    "period": ("", "."),
    "please": ("Please ", "."),
    "i": ("I ", "."),
    "you": ("You ", "."),
}
"""How an imperative narration is parsed, by strategy name: (prefix, suffix) added around it
(the suffix only when the narration does not end with punctuation)."""

OBJECT_DEPS = frozenset({"dobj", "pobj", "dative"})
"""Dependency labels of an object: a token there that spaCy tagged as a verb, adjective or adverb,
but that the lexicon knows as a noun (and not as an adverb), is taken as a mis-tagged noun."""

IMPERATIVE_OBJECT_DEPS = OBJECT_DEPS | frozenset(
    {"attr", "oprd", "acomp", "advmod", "npadvmod", "appos", "dep", "nsubj", "nsubjpass", "ROOT"}
)
"""The same in an imperative narration (its verb known to be the first word), where the small
spaCy models mis-parse the object as a modifier or as the root ("put down tong": ADJ/dobj,
"open oven": ADV/advmod, "place fork": VERB/ROOT)."""

CAMERA_WEARER = frozenset({"person", "camera wearer", "wearer", "c", "i", "me", "myself", "user"})
"""Phrase texts (lower-cased, determiner cut) that name the camera wearer."""

GENERIC_PEOPLE = frozenset(
    {"someone", "somebody", "anyone", "anybody", "everyone", "everybody", "one", "nobody"}
)
_INDEFINITE = frozenset({"a", "an", "another", "one", "some"})
_LEAD_DEPS = frozenset({"det", "poss", "predet", "case", "punct", "cc", "preconj"})
_LEAD_POS = frozenset({"DET", "PRON", "PUNCT", "PART", "CCONJ"})
_NOT_IMPERATIVE = frozenset({"i", "you", "he", "she", "it", "we", "they", "the", "a", "an"})
_NOUN_POS = frozenset({"NOUN", "PROPN"})
_MISREAD_POS = frozenset({"VERB", "ADJ", "ADV", "AUX", "X", "INTJ"})


@dataclass(frozen=True, slots=True)
class Phrase:
    """One object phrase: ``clean[char_start:char_end] == text``.

    ``object_id`` is the tag's id (``None`` for a parsed phrase); ``source`` is ``tag`` or
    ``parser``; ``words`` holds the lower-cased text and lemma of each token of a parsed phrase
    (for recall measurements; empty for tagged phrases).
    """

    text: str
    char_start: int
    char_end: int
    object_id: str | None
    source: str
    words: frozenset[str] = frozenset()


def load_spacy(model: str) -> Any:
    """Load the spaCy pipeline ``model`` with only what phrase parsing needs (no NER).

    Raises ``OSError`` naming the model when it is not installed.
    """
    import spacy

    try:
        return spacy.load(model, exclude=["ner"])
    except OSError as error:
        raise OSError(
            f"spaCy model {model!r} is not installed (pip install it, or set phrases.spacy_model "
            f"to an installed pipeline such as en_core_web_sm): {error}"
        ) from error


@dataclass(frozen=True, slots=True)
class _Lexicon:
    """Word lists of the pipeline's lemmatizer tables (WordNet's lemma index), lower-case."""

    verbs: frozenset[str]
    nouns: frozenset[str]
    adverbs: frozenset[str]

    def misread_noun(self, token: Any, verb: int) -> bool:
        """Whether ``token`` is a noun spaCy mis-tagged ("put down tong": ``tong``/ADJ/dobj).

        ``verb`` is the index of an imperative narration's verb (its first word), or -1.
        """
        deps = IMPERATIVE_OBJECT_DEPS if verb >= 0 else OBJECT_DEPS
        if token.pos_ not in _MISREAD_POS or token.i == verb:
            return False
        head = token.head
        noun_conj = token.dep_ == "conj" and (
            head.pos_ in _NOUN_POS or head.dep_ in deps and head.i != verb
        )
        if token.dep_ not in deps and not noun_conj:
            return False
        word, lemma = token.lower_, token.lemma_.lower()
        if word in self.adverbs or lemma in self.adverbs:
            return False
        return word in self.nouns or lemma in self.nouns


class PhraseParser:
    """Extract object phrases from cleaned narrations (see the module docstring).

    ``nlp`` is a spaCy ``Language`` with a tagger, parser and lemmatizer; ``imperative`` names a
    strategy of :data:`IMPERATIVE_STRATEGIES`; ``batch_size`` is passed to ``nlp.pipe``.
    """

    def __init__(self, nlp: Any, imperative: str = "i", batch_size: int = 512) -> None:
        if imperative not in IMPERATIVE_STRATEGIES:
            raise ValueError(
                f"unknown imperative strategy {imperative!r} "
                f"(one of {sorted(IMPERATIVE_STRATEGIES)})"
            )
        self.nlp = nlp
        self.imperative = imperative
        self.prefix, self.suffix = IMPERATIVE_STRATEGIES[imperative]
        self.batch_size = batch_size
        self.lexicon = _lexicon(nlp)

    @property
    def model_name(self) -> str:
        """``lang_name`` of the spaCy pipeline, e.g. ``en_core_web_sm``."""
        return f"{self.nlp.meta.get('lang', '')}_{self.nlp.meta.get('name', '')}"

    @property
    def model_version(self) -> str:
        """Version of the spaCy pipeline package."""
        return str(self.nlp.meta.get("version", ""))

    def is_imperative(self, text: str) -> bool:
        """Whether ``text`` starts with a bare verb or a gerund ("take plate", "taking plate")."""
        first = text.split(" ", 1)[0].strip(".,;:!?").lower() if text else ""
        if not first or first in _NOT_IMPERATIVE:
            return False
        return any(base in self.lexicon.verbs for base in _verb_bases(first))

    def prepare(self, text: str) -> tuple[str, int]:
        """The text spaCy parses for the cleaned ``text``, and the length of the added prefix."""
        if not self.is_imperative(text):
            return text, 0
        suffix = "" if text[-1] in ".!?;:," else self.suffix
        return self.prefix + text + suffix, len(self.prefix)

    def parse(self, narrations: Sequence[Narration]) -> list[tuple[Phrase, ...]]:
        """The phrases of each narration, in reading order (``phrase_id`` = position).

        Tagged narrations give their tags; summaries give none; the rest are parsed in batches.
        """
        result: list[tuple[Phrase, ...]] = [()] * len(narrations)
        todo: list[int] = []
        for k, narration in enumerate(narrations):
            if narration.is_summary:
                continue
            if narration.is_tagged:
                result[k] = tuple(
                    Phrase(p.text, p.char_start, p.char_end, p.object_id, "tag")
                    for p in narration.tagged
                )
            elif narration.text:
                todo.append(k)
        imperative = [self.is_imperative(narrations[k].text) for k in todo]
        prepared = [self.prepare(narrations[k].text) for k in todo]
        docs = self.nlp.pipe((text for text, _ in prepared), batch_size=self.batch_size)
        for k, verb_first, (_, offset), doc in zip(todo, imperative, prepared, docs, strict=True):
            result[k] = _doc_phrases(doc, offset, verb_first, self.lexicon, narrations[k])
        return result


def _verb_bases(word: str) -> tuple[str, ...]:
    """Candidate base forms of ``word``: itself, and for a gerund ("taking", "stirring",
    "washing") the stem, the stem + "e" and the stem without a doubled final consonant."""
    if not word.endswith("ing") or len(word) < 5:
        return (word,)
    stem = word[:-3]
    bases = [word, stem, stem + "e"]
    if len(stem) > 2 and stem[-1] == stem[-2]:
        bases.append(stem[:-1])
    return tuple(bases)


def _lexicon(nlp: Any) -> _Lexicon:
    """The pipeline's word lists (empty, with a warning, if its lemmatizer has no tables)."""
    try:
        table = nlp.get_pipe("lemmatizer").lookups.get_table("lemma_index")
        return _Lexicon(frozenset(table["verb"]), frozenset(table["noun"]), frozenset(table["adv"]))
    except (KeyError, AttributeError):
        logger.warning(
            "spaCy pipeline has no lemma index: imperatives and mis-tagged nouns are not handled"
        )
        return _Lexicon(frozenset(), frozenset(), frozenset())


def _doc_phrases(
    doc: Any, offset: int, imperative: bool, lexicon: _Lexicon, narration: Narration
) -> tuple[Phrase, ...]:
    """Object phrases of a parsed ``doc`` whose text is ``prefix + narration.text + suffix``.

    ``offset`` is the prefix length; spans are returned in ``narration.text``'s coordinates.
    ``imperative``: the narration's first word is its verb and never part of a phrase.
    """
    verb = next((t.i for t in doc if t.idx >= offset), -1) if imperative else -1
    end_char = offset + len(narration.text)
    candidates = [[c.start, c.end] for c in doc.noun_chunks]
    owner = {i: c for c in candidates for i in range(c[0], c[1])}
    for token in doc:
        if token.i in owner or token.i == verb or not offset <= token.idx < end_char:
            continue
        if token.pos_ in _NOUN_POS or lexicon.misread_noun(token, verb):
            previous = owner.get(token.i - 1)
            if previous is not None and token.i - 1 != verb and not doc[token.i - 1].is_punct:
                previous[1] = token.i + 1  # "pot lid" with "lid" misread: extend "pot"
                owner[token.i] = previous
                continue
            start = token.i
            while start > 0 and doc[start - 1].dep_ in ("compound", "amod", "nmod"):
                if doc[start - 1].head.i not in range(start, token.i + 1) or start - 1 in owner:
                    break
                start -= 1
            span = [start, token.i + 1]
            candidates.append(span)
            owner.update((i, span) for i in range(start, token.i + 1))
    phrases: list[Phrase] = []
    for start, end in sorted({(c[0], c[1]) for c in candidates}):
        phrase = _phrase(doc, start, end, offset, verb, narration)
        if phrase is not None and not any(_overlaps(phrase, p) for p in phrases):
            phrases.append(phrase)
    return tuple(phrases)


def _phrase(
    doc: Any, start: int, end: int, offset: int, verb: int, narration: Narration
) -> Phrase | None:
    """The trimmed phrase of tokens ``[start, end)``, or ``None`` when it names no object."""
    lead = start
    inside_poss: set[int] = set()
    for token in doc[start:end]:
        if token.dep_ == "poss":
            inside_poss.update(t.i for t in token.subtree)
    determiner = ""
    while lead < end and (
        doc[lead].idx < offset
        or lead == verb
        or doc[lead].dep_ in _LEAD_DEPS
        or doc[lead].pos_ in _LEAD_POS
        or lead in inside_poss
    ):
        if doc[lead].dep_ == "det" and not determiner:
            determiner = doc[lead].lower_
        lead += 1
    tail = end
    end_char = offset + len(narration.text)
    while tail > lead and (doc[tail - 1].is_punct or doc[tail - 1].idx >= end_char):
        tail -= 1
    if lead >= tail:
        return None
    root = doc[lead:tail].root
    if root.pos_ == "PRON" or root.lower_ in GENERIC_PEOPLE:
        return None
    char_start = doc[lead].idx - offset
    char_end = doc[tail - 1].idx + len(doc[tail - 1].text) - offset
    text = narration.text[char_start:char_end]
    if any(s < char_end and char_start < e for s, e in narration.wearer_spans):
        return None
    if text.lower() in CAMERA_WEARER and determiner not in _INDEFINITE:
        return None
    words = frozenset(w for t in doc[lead:tail] for w in (t.lower_, t.lemma_.lower()))
    return Phrase(text, char_start, char_end, None, "parser", words)


def _overlaps(a: Phrase, b: Phrase) -> bool:
    return a.char_start < b.char_end and b.char_start < a.char_end
