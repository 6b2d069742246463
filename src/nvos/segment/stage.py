"""The segment stage's own steps (:mod:`nvos.segment.scope`): its phrases, and its output.

- :func:`segment_phrases`: ``segment/phrases.parquet``, the run's phrases (``narration``) or the
  free-text path of every narration (``free_text``: tags stripped, parsed, each parsed phrase
  matched to the tag it overlaps, :mod:`nvos.phrases.match`);
- :func:`segment_masks`: ``segment/<shard>.parquet`` (schema ``segment_masks``), the dense masks
  of the segment's method with each phrase's text, char span and source, so a user joins masks
  back to the words of the narration.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from nvos import rle, storage
from nvos.logs import Progress
from nvos.segment.writer import table_writer
from nvos.types import PathLike

__all__ = ["SegmentSummary", "segment_masks", "segment_phrases"]

logger = logging.getLogger(__name__)

PHRASE_COLUMNS = ("text", "char_start", "char_end")


def segment_phrases(
    clips_path: PathLike,
    run_phrases: PathLike,
    out_path: PathLike,
    mode: str,
    parser_config: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write the segment's phrases table (schema ``phrases``) and return its counts.

    ``narration``: the run's table as it is. ``free_text``: every tagged narration's tags
    stripped and the clean text parsed by the phrases stage's parser (``parser_config``: the
    ``phrases`` group), ``object_id`` the tag it overlaps most (None: unmatched); the untagged
    narrations keep the run's parsed phrases (the same parser).
    """
    from nvos.tags import parse_tags

    run = storage.read_table(run_phrases, "phrases")
    counts: dict[str, Any] = {"mode": mode, "phrases_in": run.num_rows}
    if mode == "narration":
        table = run
    elif mode == "free_text":
        from nvos.phrases.match import free_text_table
        from nvos.phrases.stage import build_parser

        clips = storage.read_table(clips_path, "clips", columns=["clip_id", "narration"])
        pairs = list(zip(*(clips[c].to_pylist() for c in ("clip_id", "narration")), strict=True))
        tagged = [(c, n) for c, n in pairs if parse_tags(n).phrases]
        parsed, match = free_text_table(build_parser(parser_config or {}), tagged)
        tagged_ids = {c for c, _ in tagged}
        keep = pa.array([c not in tagged_ids for c in run["clip_id"].to_pylist()])
        order = {c: i for i, (c, _) in enumerate(pairs)}
        table = pa.concat_tables([run.filter(keep), parsed])
        keys = zip(table["clip_id"].to_pylist(), table["phrase_id"].to_pylist(), strict=True)
        rank = [(order[clip_id], phrase_id) for clip_id, phrase_id in keys]
        table = table.take(sorted(range(table.num_rows), key=rank.__getitem__))  # clips' order
        counts.update(tagged_narrations=len(tagged), **asdict(match))
        logger.info(
            "free text: %d tagged narrations parsed; %d of %d objects matched by a parsed phrase; "
            "%d of %d parsed phrases match no tag (segmented, not scored)",
            len(tagged), match.matched_objects, match.objects,
            match.parsed_phrases - match.matched_phrases, match.parsed_phrases,
        )  # fmt: skip
        if match.unmatched_objects:
            logger.info("objects no parsed phrase matches, e.g. %s", match.unmatched_objects[:10])
    else:
        raise ValueError(f"segment.phrases must be narration or free_text, got {mode!r}")
    counts["phrases"] = table.num_rows
    record = storage.provenance("segment.phrases", dict(counts), run_phrases=str(run_phrases))
    storage.write_table(table, out_path, "phrases", meta=record)
    return counts


@dataclass(frozen=True)
class SegmentSummary:
    """What :func:`segment_masks` wrote for one shard."""

    shard: str
    clips: int
    phrases: int
    masks: int
    empty_masks: int
    seconds: float


def segment_masks(
    dense_path: PathLike,
    phrases_path: PathLike,
    shard: str,
    out_path: PathLike,
    meta: Mapping[str, Any] | None = None,
) -> SegmentSummary:
    """Write ``segment/<shard>.parquet``: each row group of the dense masks ``dense_path`` with
    its phrases' text, span and source from ``phrases_path`` (the segment's phrases), streamed
    (one row group in memory at a time) and atomically. A mask whose phrase is not in the
    phrases table is an error naming the clip and phrase (the two come from one scope)."""
    start = time.perf_counter()
    phrases = storage.read_table(phrases_path, "phrases").to_pylist()
    by_key = {(p["clip_id"], p["phrase_id"]): p for p in phrases}
    source = pq.ParquetFile(dense_path)
    clips: set[str] = set()
    keys: set[tuple[str, int]] = set()
    masks = empty = 0
    progress = Progress(logger, source.num_row_groups, "row groups")
    with table_writer(out_path, "segment_masks") as writer:
        for group in range(source.num_row_groups):
            table = storage.conform(
                source.read_row_group(group), storage.SCHEMAS["dense_masks"], str(dense_path)
            )
            ids = zip(table["clip_id"].to_pylist(), table["phrase_id"].to_pylist(), strict=True)
            rows = []
            for clip_id, phrase_id in ids:
                phrase = by_key.get((clip_id, phrase_id))
                if phrase is None:
                    raise ValueError(
                        f"{dense_path}: clip {clip_id!r} phrase {phrase_id} is not in "
                        f"{phrases_path}"
                    )
                rows.append(phrase)
                clips.add(clip_id)
                keys.add((clip_id, phrase_id))
            columns = {name: table[name] for name in table.column_names if name != "source"}
            for name in PHRASE_COLUMNS:
                columns[name] = pa.array([r[name] for r in rows])
            columns["phrase_source"] = pa.array([r["source"] for r in rows], pa.string())
            columns["source"] = table["source"]
            writer.write(pa.table(columns))
            masks += table.num_rows
            empty += sum(
                not rle.area(c, h, w)
                for c, h, w in zip(
                    *(table[k].to_pylist() for k in ("rle_counts", "height", "width")), strict=True
                )
            )
            progress.update()
        summary = SegmentSummary(
            shard, len(clips), len(keys), masks, empty, time.perf_counter() - start
        )
        writer.meta.update(
            storage.provenance(
                "segment",
                meta,
                shard=shard,
                clips=len(clips),
                phrases=len(keys),
                masks=masks,
                empty_masks=empty,
                dense_masks=str(dense_path),
            )  # fmt: skip
        )
    logger.info("segment: wrote %s: %s", out_path, summary)
    return summary
