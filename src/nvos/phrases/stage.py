"""The ``phrases`` stage: ``clips.parquet`` -> ``phrases.parquet`` (one file for all clips).

One row per object phrase (schema ``phrases`` in :data:`nvos.storage.SCHEMAS`), clips in the
order of ``clips.parquet``, phrases of a clip in reading order with ``phrase_id`` 0, 1, ...
``char_start``/``char_end`` index :func:`nvos.phrases.clean_narration` of the clip's narration.
Clips with no phrase (Ego4D ``#Summary`` lines, or narrations with no object) have no row; they
are counted, logged and listed in the provenance metadata (``summary_clips``,
``zero_phrase_clips``), so nothing is dropped silently.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from nvos import storage
from nvos.logs import Progress
from nvos.phrases.normalise import Narration, NarrationError, normalise_narration
from nvos.phrases.parse import PhraseParser, load_spacy
from nvos.skips import Ledger, Skip
from nvos.tags import TagError
from nvos.types import PathLike

__all__ = ["PhrasesSummary", "build_parser", "extract_phrases", "read_shard_phrases"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PhrasesSummary:
    """What :func:`extract_phrases` wrote; ``ledger`` accounts for every clip (:mod:`nvos.skips`;
    skip reasons ``summary_narration`` and ``no_phrase``)."""

    clips: int
    phrases: int
    tagged_phrases: int
    parsed_phrases: int
    summary_clips: tuple[str, ...]
    zero_phrase_clips: tuple[str, ...]
    seconds: float
    ledger: Ledger = field(repr=False, compare=False)


def read_shard_phrases(phrases_path: PathLike, clip_ids: list[str]) -> dict[str, list[dict]]:
    """The phrases of ``clip_ids`` from ``phrases.parquet``, per clip in ``phrase_id`` order."""
    table = storage.read_table(phrases_path, "phrases")
    table = table.filter(pc.is_in(table["clip_id"], value_set=pa.array(clip_ids, pa.string())))
    grouped: dict[str, list[dict]] = {clip_id: [] for clip_id in clip_ids}
    for row in table.sort_by([("clip_id", "ascending"), ("phrase_id", "ascending")]).to_pylist():
        grouped[row["clip_id"]].append(row)
    return grouped


def build_parser(config: Mapping[str, Any]) -> PhraseParser:
    """A :class:`PhraseParser` from the ``phrases`` config group.

    Keys: ``spacy_model`` (installed spaCy pipeline), ``imperative`` (a strategy of
    :data:`nvos.phrases.parse.IMPERATIVE_STRATEGIES`), ``batch_size`` (``nlp.pipe`` batch).
    """
    return PhraseParser(
        load_spacy(str(config["spacy_model"])),
        imperative=str(config["imperative"]),
        batch_size=int(config["batch_size"]),
    )


def extract_phrases(
    clips_path: PathLike,
    out_path: PathLike,
    parser: PhraseParser,
    meta: Mapping[str, Any] | None = None,
    chunk: int = 2000,
) -> PhrasesSummary:
    """Write the object phrases of every clip of ``clips_path`` to ``out_path`` (atomically).

    Args:
        clips_path: ``clips.parquet`` (schema ``clips``).
        out_path: ``phrases.parquet`` to write.
        parser: Extracts the phrases; its spaCy model name and version go into the provenance.
        meta: Extra provenance; its ``config`` entry (the stage's config group) is stored as the
            provenance ``config``, any other entry as is.
        chunk: Narrations parsed per progress step.

    Raises ``ValueError`` naming the file and clip for a narration with a malformed tag.
    """
    start = time.perf_counter()
    clips = storage.read_table(clips_path, "clips", columns=["clip_id", "narration"])
    clip_ids = clips.column("clip_id").to_pylist()
    narrations = [
        _normalise(clips_path, c, n)
        for c, n in zip(clip_ids, clips.column("narration").to_pylist(), strict=True)
    ]
    columns: dict[str, list[Any]] = {name: [] for name in storage.SCHEMAS["phrases"].names}
    zero: list[str] = []
    progress = Progress(logger, len(narrations), "narrations")
    for first in range(0, len(narrations), chunk):
        batch = narrations[first : first + chunk]
        for clip_id, narration, phrases in zip(
            clip_ids[first : first + chunk], batch, parser.parse(batch), strict=True
        ):
            if not phrases and not narration.is_summary:
                zero.append(clip_id)
            for phrase_id, phrase in enumerate(phrases):
                columns["clip_id"].append(clip_id)
                columns["phrase_id"].append(phrase_id)
                columns["text"].append(phrase.text)
                columns["char_start"].append(phrase.char_start)
                columns["char_end"].append(phrase.char_end)
                columns["object_id"].append(phrase.object_id)
                columns["source"].append(phrase.source)
        progress.update(len(batch))
    summaries = [c for c, n in zip(clip_ids, narrations, strict=True) if n.is_summary]
    sources = columns["source"]
    skips = [Skip(c, "summary_narration", detail="#Summary line") for c in summaries]
    skips += [Skip(c, "no_phrase", detail="no object phrase in the narration") for c in zero]
    ledger = Ledger.of("phrases", "all", clip_ids, columns["clip_id"], skips)
    summary = PhrasesSummary(
        clips=len(clip_ids),
        phrases=len(sources),
        tagged_phrases=sources.count("tag"),
        parsed_phrases=sources.count("parser"),
        summary_clips=tuple(summaries),
        zero_phrase_clips=tuple(zero),
        seconds=time.perf_counter() - start,
        ledger=ledger,
    )
    extra = dict(meta or {})
    record = storage.provenance(
        "phrases",
        extra.pop("config", None),
        spacy_model=parser.model_name,
        spacy_model_version=parser.model_version,
        spacy_version=_spacy_version(),
        imperative=parser.imperative,
        clips_in=summary.clips,
        phrases=summary.phrases,
        summary_clips=list(summaries),
        zero_phrase_clips=list(zero),
        **extra,
    )
    table = pa.table(columns, schema=storage.SCHEMAS["phrases"])
    storage.write_table(table, out_path, "phrases", meta=record)
    if summaries:
        logger.info(
            "phrases: skipped %d #Summary narrations, e.g. %s", len(summaries), summaries[:5]
        )
    if zero:
        logger.warning(
            "phrases: %d of %d clips have no object phrase (listed as zero_phrase_clips), e.g. %s",
            len(zero),
            summary.clips,
            zero[:5],
        )
    logger.info(
        "phrases: %d phrases (%d tagged, %d parsed) for %d clips in %.1f s",
        summary.phrases, summary.tagged_phrases, summary.parsed_phrases, summary.clips,
        summary.seconds,
    )  # fmt: skip
    return summary


def _normalise(clips_path: PathLike, clip_id: str, narration: str) -> Narration:
    try:
        return normalise_narration(narration)
    except (TagError, NarrationError) as error:
        raise ValueError(f"{clips_path}: clip {clip_id!r}: bad narration: {error}") from error


def _spacy_version() -> str:
    import spacy

    return str(spacy.__version__)
