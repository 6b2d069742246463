"""The free-text path scored: the segment's masks of parsed phrases as the tags they match.

A user's narration has no tags; its phrases come from the parser. With ``segment.phrases:
free_text`` the segment stage strips the tags of the evaluated clips, parses the clean text and
matches each parsed phrase to the tag it overlaps (:mod:`nvos.phrases.match`). The method
``<segment.method>+free_text`` turns the segment's predictions on the annotated frames into rows
the evaluation scores like any method's: each tagged object takes the masks of the **first**
parsed phrase (reading order) that matches it, under the object's first tagged phrase id (an
object is scored once, with its first phrase, as in the tagged protocol). An object that no parsed
phrase matches has no rows and scores as missed; parsed phrases that match no tag, and later
phrases of an object, are segmented but not scored; all of them are counted.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from nvos import storage
from nvos.methods.rows import PredictionRows
from nvos.skips import Ledger, Skip
from nvos.types import PathLike

__all__ = ["FreeTextSummary", "free_text_predictions"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FreeTextSummary:
    """Counts of one shard's free-text rows; ``ledger`` accounts for every clip."""

    clips: int
    objects: int
    matched_objects: int
    later_phrases: int
    unmatched_phrases: int
    predictions: int
    seconds: float
    ledger: Ledger | None = field(default=None, repr=False, compare=False)


def _phrases_by_clip(path: PathLike, clip_ids: Sequence[str]) -> dict[str, list[dict]]:
    from nvos.phrases.stage import read_shard_phrases

    return read_shard_phrases(path, list(clip_ids))


def free_text_predictions(
    clips_path: PathLike,
    tag_phrases: PathLike,
    segment_phrases: PathLike,
    segment_predictions: PathLike,
    shard: str,
    splits: Sequence[str],
    out_path: PathLike,
    method: str,
) -> FreeTextSummary:
    """Write ``out_path`` (schema ``predictions``): for each clip of ``splits`` in ``shard`` and
    each tagged object (``tag_phrases``, the run's phrases), the rows of ``segment_predictions``
    of its first matching parsed phrase (``segment_phrases``) under the object's first tagged
    phrase id (module docstring)."""
    from nvos.dataset import read_shard_clips

    start = time.perf_counter()
    clips = read_shard_clips(clips_path, shard)
    clip_ids = clips["clip_id"].to_pylist()
    scored = [c for c, s in zip(clip_ids, clips["split"].to_pylist(), strict=True) if s in splits]
    tags, parsed = _phrases_by_clip(tag_phrases, scored), _phrases_by_clip(segment_phrases, scored)
    table = storage.read_table(segment_predictions, "predictions")
    table = table.filter(pc.is_in(table["clip_id"], value_set=pa.array(scored, pa.string())))
    rows_of: dict[tuple[str, int], list[dict]] = {}
    for row in table.to_pylist():
        rows_of.setdefault((row["clip_id"], row["phrase_id"]), []).append(row)
    written = PredictionRows()
    skips = [
        Skip(c, "split_not_predicted", detail=f"split {s}")
        for c, s in zip(clip_ids, clips["split"].to_pylist(), strict=True)
        if s not in splits
    ]
    objects = matched = later = unmatched = 0
    for clip_id in scored:
        first_tag: dict[str, int] = {}
        for row in tags[clip_id]:
            if row["object_id"] is not None:
                first_tag.setdefault(row["object_id"], row["phrase_id"])
        if not first_tag:
            skips.append(Skip(clip_id, "no_tagged_object"))
            continue
        chosen: dict[str, int] = {}
        for row in parsed[clip_id]:  # reading order
            object_id = row["object_id"]
            if object_id is None or object_id not in first_tag:
                unmatched += 1
            elif object_id in chosen:
                later += 1
            else:
                chosen[object_id] = row["phrase_id"]
        objects += len(first_tag)
        matched += len(chosen)
        if not chosen:
            skips.append(Skip(clip_id, "no_matched_phrase", detail=f"{len(first_tag)} objects"))
            continue
        for object_id, phrase_id in chosen.items():
            for row in rows_of.get((clip_id, phrase_id), []):
                written.add(clip_id, first_tag[object_id], object_id, row["frame_index"],
                            row["proposal_id"], row["score"], row["height"], row["width"],
                            row["rle_counts"])  # fmt: skip
    record = storage.provenance(
        "predict.free_text", {"splits": list(splits)}, method=method, shard=shard,
        segment_predictions=str(segment_predictions), objects=objects, matched_objects=matched,
        later_phrases=later, unmatched_phrases=unmatched,
    )  # fmt: skip
    out = written.write(out_path, record)
    ledger = Ledger.of(f"predictions/{method}", shard, clip_ids, written.clip_ids, skips)
    summary = FreeTextSummary(
        len(scored), objects, matched, later, unmatched, out.num_rows,
        time.perf_counter() - start, ledger,
    )  # fmt: skip
    logger.info(
        "free text: %d of %d tagged objects matched by a parsed phrase; %d later phrases and %d "
        "unmatched phrases not scored; %d rows -> %s",
        matched, objects, later, unmatched, out.num_rows, out_path,
    )  # fmt: skip
    return summary
