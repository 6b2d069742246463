"""Token alignment: which CLIP text tokens of a narration belong to a phrase's character span.

A phrase's *context* embedding (DESIGN §7) is the mean of the text transformer's outputs at the
phrase's own tokens in the whole narration, so every phrase needs the positions of its tokens in
the tokenised narration. open_clip's :class:`~open_clip.tokenizer.SimpleTokenizer` gives ids but no
character offsets, so :func:`align_tokens` replays its steps with offsets:

1. cleaning (``tokenizer.clean_fn``: ftfy, HTML unescaping, whitespace collapsing, lower-casing) is
   applied to each whitespace-separated chunk of the text on its own, and the cleaned chunks,
   joined by one space, must equal the cleaning of the whole text. A chunk whose cleaning keeps
   its length maps character to character; one whose length changes (e.g. ``"İ".lower()`` is two
   characters, or an HTML entity) maps each of its characters to the whole chunk;
2. the tokenizer's own pre-tokenisation regex (``tokenizer.pat``) splits the cleaned text into
   words, each with its span;
3. each word is byte-encoded and BPE-split with the tokenizer's own ``bpe``; every resulting token
   carries the span of its word in the original text.

The ids are then checked to equal ``tokenizer.encode(text)`` and the tokenizer's own
``tokenizer(text)`` tensor exactly; any difference raises :class:`TokenAlignmentError`.

Positions count from the start-of-text token (position 0), as in the ``(context_length,)`` id
tensor the text tower reads. A narration longer than ``context_length - 2`` content tokens is
truncated by the tokenizer (its last kept position becomes the end-of-text token): a phrase with
any token beyond the cut has no positions (:meth:`AlignedText.positions` returns None) and its
caller falls back to the phrase's plain encoding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["AlignedText", "TokenAlignmentError", "align_tokens", "check_tokenizer", "context_ids"]


class TokenAlignmentError(ValueError):
    """A text whose tokens cannot be given character spans that reproduce the tokenizer exactly."""


@dataclass(frozen=True)
class AlignedText:
    """The tokens of ``text`` with the character span of each, before truncation.

    Attributes:
        text: The text that was tokenised (character spans index it).
        token_ids: (T,) content token ids (no start/end-of-text), as ``tokenizer.encode(text)``.
        spans: T ``(char_start, char_end)`` spans in ``text``: the word each token comes from.
        context_length: The tokenizer's context length (77 for CLIP).
    """

    text: str
    token_ids: tuple[int, ...]
    spans: tuple[tuple[int, int], ...]
    context_length: int

    @property
    def truncated(self) -> bool:
        """Whether the tokenizer cuts the text off (more than ``context_length - 2`` tokens)."""
        return len(self.token_ids) + 2 > self.context_length

    def token_indices(self, char_start: int, char_end: int) -> list[int]:
        """Indices into :attr:`token_ids` of the tokens that overlap the span."""
        if not 0 <= char_start < char_end <= len(self.text):
            raise ValueError(
                f"span [{char_start}, {char_end}) is empty or outside the text of "
                f"length {len(self.text)}: {self.text!r}"
            )
        return [
            index
            for index, (start, end) in enumerate(self.spans)
            if start < char_end and end > char_start
        ]

    def positions(self, char_start: int, char_end: int) -> list[int] | None:
        """Positions in the ``(context_length,)`` id tensor of the span's tokens (sot = 0).

        Returns None when any of them is cut off by the context limit, or when the span has no
        token at all (e.g. only punctuation that the tokenizer's cleaning removes).
        """
        indices = self.token_indices(char_start, char_end)
        if not indices:
            return None
        last_kept = len(self.token_ids) - 1 if not self.truncated else self.context_length - 3
        if indices[-1] > last_kept:
            return None
        return [index + 1 for index in indices]


def check_tokenizer(tokenizer: Any) -> None:
    """Raise TypeError unless ``tokenizer`` is open_clip's ``SimpleTokenizer`` (no reduction)."""
    from open_clip.tokenizer import SimpleTokenizer

    if not isinstance(tokenizer, SimpleTokenizer):
        raise TypeError(
            f"token alignment needs open_clip's SimpleTokenizer (CLIP BPE), got "
            f"{type(tokenizer).__name__}; choose an open_clip model with the CLIP tokenizer"
        )
    if tokenizer.reduction_fn is not None:
        raise TypeError("token alignment does not support a tokenizer with a reduction_mask")


def align_tokens(tokenizer: Any, text: str) -> AlignedText:
    """Tokenise ``text`` like ``tokenizer(text)`` and give every token its character span.

    Args:
        tokenizer: open_clip ``SimpleTokenizer`` (see :func:`check_tokenizer`).
        text: The cleaned narration (the text phrase spans index).

    Returns:
        The aligned tokens (see :class:`AlignedText`).

    Raises:
        TokenAlignmentError: Cleaning chunk by chunk differs from cleaning the whole text, or the
            replayed ids differ from the tokenizer's.
    """
    check_tokenizer(tokenizer)
    cleaned, char_spans = _clean_with_spans(tokenizer, text)
    ids: list[int] = []
    spans: list[tuple[int, int]] = []
    for match in tokenizer.pat.finditer(cleaned):
        word = "".join(tokenizer.byte_encoder[b] for b in match.group().encode("utf-8"))
        span = (char_spans[match.start()][0], char_spans[match.end() - 1][1])
        for piece in tokenizer.bpe(word).split(" "):
            ids.append(tokenizer.encoder[piece])
            spans.append(span)
    expected = tokenizer.encode(text)
    if ids != expected:
        raise TokenAlignmentError(
            f"replayed token ids differ from the tokenizer's for {text!r}: {ids} != {expected}"
        )
    context_length = int(tokenizer.context_length)
    reference = tokenizer(text)[0].tolist()
    replayed = _as_context(ids, tokenizer.sot_token_id, tokenizer.eot_token_id, context_length)
    if replayed != reference:
        raise TokenAlignmentError(f"replayed token tensor differs from tokenizer({text!r})")
    return AlignedText(text, tuple(ids), tuple(spans), context_length)


def _as_context(ids: list[int], sot: int, eot: int, context_length: int) -> list[int]:
    """The ``(context_length,)`` id list the tokenizer makes: sot, ids, eot, cut and zero-padded."""
    tokens = [sot, *ids, eot]
    if len(tokens) > context_length:
        tokens = tokens[:context_length]
        tokens[-1] = eot
    return tokens + [0] * (context_length - len(tokens))


def _clean_with_spans(tokenizer: Any, text: str) -> tuple[str, list[tuple[int, int]]]:
    """``tokenizer.clean_fn(text)`` and, for each of its characters, a span of ``text``."""
    pieces: list[str] = []
    char_spans: list[tuple[int, int]] = []
    for start, end in _chunks(text):
        chunk = tokenizer.clean_fn(text[start:end])
        if not chunk:
            continue
        if pieces:
            pieces.append(" ")
            char_spans.append((start, start))  # the joining space belongs to no word
        pieces.append(chunk)
        if len(chunk) == end - start:
            char_spans.extend((start + i, start + i + 1) for i in range(len(chunk)))
        else:
            char_spans.extend([(start, end)] * len(chunk))
    cleaned = "".join(pieces)
    whole = tokenizer.clean_fn(text)
    if cleaned != whole:
        raise TokenAlignmentError(
            f"cleaning {text!r} word by word gives {cleaned!r}, not {whole!r} as a whole"
        )
    return cleaned, char_spans


def _chunks(text: str) -> list[tuple[int, int]]:
    """(start, end) of the maximal runs of non-whitespace characters (``str.isspace``)."""
    chunks: list[tuple[int, int]] = []
    start: int | None = None
    for i, char in enumerate(text):
        if char.isspace():
            if start is not None:
                chunks.append((start, i))
                start = None
        elif start is None:
            start = i
    if start is not None:
        chunks.append((start, len(text)))
    return chunks


def context_ids(aligned: AlignedText, tokenizer: Any) -> torch.Tensor:
    """(context_length,) int64 id tensor of ``aligned`` (what ``tokenizer(text)[0]`` returns)."""
    ids = _as_context(
        list(aligned.token_ids),
        tokenizer.sot_token_id,
        tokenizer.eot_token_id,
        aligned.context_length,
    )
    return torch.tensor(ids, dtype=torch.long)
