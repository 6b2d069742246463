"""Phrase and narration embeddings from the frozen CLIP text tower (DESIGN §7, phrase encoder).

For a narration (the cleaned text phrase spans index) with phrases ``(char_start, char_end, text)``:

- **narration** embedding: CLIP's standard ``encode_text`` of the narration (the end-of-text
  token's output), L2-normalised;
- **context** embedding of a phrase: the mean of the text transformer's final outputs (after
  ``ln_final`` and ``text_projection``, like CLIP's end-of-text feature but per token) at the
  phrase's own token positions in the narration (:mod:`nvos.features.tokens`), L2-normalised;
- **plain** embedding of a phrase: ``encode_text`` of the phrase text alone, L2-normalised.

A phrase whose tokens are cut off by the 77-token limit (or that has no token) gets its plain
embedding as context embedding; :class:`TextSummary` counts those fallbacks.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from nvos.features.clip_model import ClipEncoder
from nvos.features.tokens import TokenAlignmentError, align_tokens, context_ids

__all__ = [
    "NarrationEmbeddings",
    "PhraseSpan",
    "TextSummary",
    "embed_narrations",
    "encode_texts",
    "token_features",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PhraseSpan:
    """A phrase of a narration: ``narration[char_start:char_end] == text``."""

    char_start: int
    char_end: int
    text: str


@dataclass(frozen=True)
class NarrationEmbeddings:
    """Embeddings of one narration and its P phrases (float32, L2-normalised, on the CPU).

    Attributes:
        narration: (D,) the narration's ``encode_text`` embedding.
        context: (P, D) phrase embeddings pooled from the narration's tokens.
        plain: (P, D) phrase embeddings of each phrase encoded alone.
        fallback: P flags: True where ``context`` is the plain embedding (tokens cut off).
    """

    narration: torch.Tensor
    context: torch.Tensor
    plain: torch.Tensor
    fallback: tuple[bool, ...]


@dataclass
class TextSummary:
    """Counts of one :func:`embed_narrations` call (for the log and the provenance)."""

    narrations: int = 0
    phrases: int = 0
    truncated_narrations: int = 0
    fallback_phrases: list[str] = field(default_factory=list)


@torch.no_grad()
def token_features(encoder: ClipEncoder, ids: torch.Tensor) -> torch.Tensor:
    """Final per-token outputs of the text tower: (B, L) int64 ids → (B, L, D) float32.

    The same computation as open_clip's ``CLIP.encode_text`` before its pooling (token and
    position embeddings, causal transformer, ``ln_final``), with ``text_projection`` applied to
    every token instead of the pooled one. Not normalised.
    """
    model = encoder.model
    ids = ids.to(encoder.device)
    with encoder.autocast():
        cast_dtype = model.transformer.get_cast_dtype()
        x = model.token_embedding(ids).to(cast_dtype)
        x = x + model.positional_embedding.to(cast_dtype)
        x = model.transformer(x, attn_mask=model.attn_mask)
        x = model.ln_final(x)
        projection = model.text_projection
        if projection is not None:
            x = projection(x) if isinstance(projection, torch.nn.Linear) else x @ projection
    return x.float()


def _pooled(encoder: ClipEncoder, features: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """The model's own text pooling (end-of-text token for CLIP) of ``features`` (B, L, D)."""
    from open_clip.transformer import text_global_pool

    model = encoder.model
    eos = getattr(model, "text_eos_id", None)
    pooled = text_global_pool(features, ids.to(features.device), model.text_pool_type, eos)
    if pooled.ndim != 2:
        raise TypeError(f"unsupported text pooling {model.text_pool_type!r}")
    return pooled


@torch.no_grad()
def encode_texts(encoder: ClipEncoder, texts: Sequence[str], batch_size: int = 64) -> torch.Tensor:
    """(N, D) float32 L2-normalised standard CLIP text embeddings of ``texts`` (on the CPU)."""
    out = []
    for start in range(0, len(texts), batch_size):
        ids = encoder.tokenizer(list(texts[start : start + batch_size]))
        out.append(F.normalize(_pooled(encoder, token_features(encoder, ids), ids), dim=-1).cpu())
    if not out:
        return torch.zeros((0, encoder.embed_dim))
    return torch.cat(out)


@torch.no_grad()
def embed_narrations(
    encoder: ClipEncoder,
    narrations: Sequence[str],
    phrases: Sequence[Sequence[PhraseSpan]],
    batch_size: int = 64,
    names: Sequence[str] | None = None,
) -> tuple[list[NarrationEmbeddings], TextSummary]:
    """Narration, context and plain phrase embeddings of each narration (see module docstring).

    Args:
        encoder: The frozen CLIP model.
        narrations: The cleaned narrations.
        phrases: For each narration, its phrases (spans index the narration).
        batch_size: Texts per text-tower forward.
        names: A name per narration (e.g. its clip id) for messages; default the index.

    Raises:
        ValueError: A phrase whose span does not hold its text.
    """
    if len(phrases) != len(narrations):
        raise ValueError(f"{len(narrations)} narrations but {len(phrases)} phrase lists")
    labels = list(names) if names is not None else [str(i) for i in range(len(narrations))]
    summary = TextSummary(narrations=len(narrations))
    all_phrases = [p for spans in phrases for p in spans]
    summary.phrases = len(all_phrases)
    plain = encode_texts(encoder, [p.text for p in all_phrases], batch_size)
    results: list[NarrationEmbeddings] = []
    offset = 0
    for start in range(0, len(narrations), batch_size):
        chunk = range(start, min(start + batch_size, len(narrations)))
        aligned = []
        for i in chunk:
            for span in phrases[i]:
                if narrations[i][span.char_start : span.char_end] != span.text:
                    raise ValueError(
                        f"{labels[i]}: phrase {span.text!r} does not match characters "
                        f"[{span.char_start}, {span.char_end}) of the narration {narrations[i]!r}"
                    )
            try:
                aligned.append(align_tokens(encoder.tokenizer, narrations[i]))
            except TokenAlignmentError as error:
                logger.warning("%s: %s; its phrases use their plain encoding", labels[i], error)
                aligned.append(None)
        ids = torch.stack(
            [
                context_ids(a, encoder.tokenizer)
                if a is not None
                else encoder.tokenizer([narrations[i]])[0]
                for a, i in zip(aligned, chunk, strict=True)
            ]
        )
        features = token_features(encoder, ids)
        pooled = F.normalize(_pooled(encoder, features, ids), dim=-1).cpu()
        for row, (i, text_tokens) in enumerate(zip(chunk, aligned, strict=True)):
            count = len(phrases[i])
            own_plain = plain[offset : offset + count]
            offset += count
            if text_tokens is not None and text_tokens.truncated:
                summary.truncated_narrations += 1
            context = own_plain.clone()
            fallback = []
            for k, span in enumerate(phrases[i]):
                positions = (
                    None
                    if text_tokens is None
                    else text_tokens.positions(span.char_start, span.char_end)
                )
                if positions is None:
                    fallback.append(True)
                    summary.fallback_phrases.append(f"{labels[i]}:{k}:{span.text}")
                    continue
                mean = features[row, positions].mean(dim=0)
                context[k] = F.normalize(mean, dim=-1).cpu()
                fallback.append(False)
            results.append(NarrationEmbeddings(pooled[row], context, own_plain, tuple(fallback)))
    if summary.fallback_phrases:
        logger.warning(
            "%d of %d phrases fall back to their plain encoding (cut off by the %d-token limit "
            "or no token), e.g. %s",
            len(summary.fallback_phrases),
            summary.phrases,
            encoder.tokenizer.context_length,
            summary.fallback_phrases[:5],
        )
    return results, summary
