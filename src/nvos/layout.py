"""The folder of one run, ``<results_dir>/<run>/``: every path in it, defined once.

The workflow's rules (``workflow/rules/common.smk``), the library and the ``nvos`` command all
take their paths from :class:`RunLayout`. A method's argument may be a Snakemake wildcard
(``layout.frames("{shard}")``), so the rules' patterns come from the same definitions.

    <run>/demo_data/manifest.jsonl          generated demo (no dataset.manifest)
    <run>/clips.parquet, annotations.parquet, phrases.parquet
    <run>/frames/<shard>.parquet, proposals/<shard>.parquet
    <run>/features/<shard>.{regions,text}.parquet, features/cache/<shard>.{regions,text}.arrow
    <run>/models/<variant>/checkpoint.pt, train_log.csv
    <run>/predictions/<method>/<shard>.parquet, masks/<method>/<shard>.parquet (dense masks)
    <run>/sweep/{selection.json,sweep.csv}    a rosa.sweep's choice on val
    <run>/scores/<method>/<shard>.parquet, links/<shard>.parquet
    <run>/temporal/<method>/{selection.json,grid.csv}
    <run>/seen.json, metrics/<method>/<split>/{per_object.csv,summary.json}
    <run>/skipped/<stage>[/<method>]/<shard>.parquet, skipped.csv, reconciliation.csv
    <run>/report/{table.md,index.html,config.yaml,overlays/,videos/}
    <run>/logs/..., benchmarks/...
    <run>/segment/<shard>.parquet             the segment stage's masks (every phrase, every frame)
    <run>/segment/{phrases.parquet,features/,links/,predictions/,scores/,masks/,skipped/,logs/,...}
                                              its scope: the run's methods on its clips and phrases

This module imports nothing heavy: the Snakefile loads it to build the DAG.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from nvos.types import PathLike

__all__ = ["DEMO_MANIFEST_NAME", "SEGMENT_SCOPE", "RunLayout", "ShardPaths"]

CacheKind = Literal["regions", "text"]

DEMO_MANIFEST_NAME = "manifest.jsonl"

SEGMENT_SCOPE = "segment"
"""The scope (:attr:`RunLayout.scope`) of the segment stage (:mod:`nvos.segment.scope`)."""


@dataclass(frozen=True)
class ShardPaths:
    """The per-shard files ROSA reads, and the Arrow IPC caches made from them."""

    shard: str
    regions: Path
    text: Path
    proposals: Path
    frames: Path
    regions_cache: Path
    text_cache: Path

    def cache(self, kind: CacheKind) -> Path:
        """The cache file of ``kind`` (``regions`` or ``text``)."""
        return self.regions_cache if kind == "regions" else self.text_cache


@dataclass(frozen=True)
class RunLayout:
    """Every path of one run folder, as strings (what Snakemake and the stages take).

    ``root`` is ``<results_dir>/<run>`` (:meth:`of`); each method joins its part onto it. Arguments
    may be wildcards such as ``"{shard}"``.

    ``scope`` (empty: the run itself) is a sub-folder of the run holding a **scope's own** phrases,
    text features, links, predictions, scores, dense masks, skip ledgers, logs and benchmarks,
    while it shares everything else (clips, frames, proposals, region features, models, the
    decoder's selections) with the run: the ``segment`` stage is the run's methods again, on other
    splits and phrases, in ``<run>/segment/`` (:meth:`scoped`, :mod:`nvos.segment.scope`).
    ``shared`` names the scope's parts taken from the run when they would be the same files:
    ``phrases`` (the phrases table and its text features), ``links``.
    """

    root: str
    scope: str = ""
    shared: frozenset[str] = frozenset()

    @classmethod
    def of(cls, config: Mapping[str, Any]) -> RunLayout:
        """The layout of the run a (validated) config describes: ``<results_dir>/<run>``."""
        return cls(f"{config['results_dir']}/{config['run']}")

    @classmethod
    def at(cls, run_dir: PathLike) -> RunLayout:
        """The layout of an existing run folder (``results/<run>``, a trailing ``/`` allowed)."""
        return cls(str(run_dir).rstrip("/") or "/")

    def scoped(self, scope: str, shared: Iterable[str] = ()) -> RunLayout:
        """The layout of scope ``scope`` of this run (``<run>/<scope>/`` for its own files; the
        parts in ``shared``, ``phrases`` or ``links``, are the run's)."""
        unknown = set(shared) - {"phrases", "links"}
        if unknown:
            raise ValueError(f"a scope shares only phrases and links, not {sorted(unknown)}")
        return RunLayout(self.root, scope, frozenset(shared))

    def _join(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def _own(self, *parts: str) -> str:
        """A file of the scope (the run's own when unscoped)."""
        return "/".join([self.root, *([self.scope] if self.scope else []), *parts])

    def _part(self, part: str, *parts: str) -> str:
        """A file of the scope's ``part`` (``phrases``, ``links``): the run's when shared."""
        return self._join(*parts) if part in self.shared else self._own(*parts)

    # -- dataset -------------------------------------------------------------------------------

    @property
    def demo_data(self) -> str:
        """Folder of the generated demo dataset (its manifest: :data:`DEMO_MANIFEST_NAME`)."""
        return self._join("demo_data")

    @property
    def clips(self) -> str:
        return self._join("clips.parquet")

    @property
    def annotations(self) -> str:
        return self._join("annotations.parquet")

    @property
    def phrases(self) -> str:
        return self._part("phrases", "phrases.parquet")

    # -- per-shard stages ----------------------------------------------------------------------

    def frames(self, shard: str) -> str:
        return self._join("frames", f"{shard}.parquet")

    def proposals(self, shard: str) -> str:
        return self._join("proposals", f"{shard}.parquet")

    def regions(self, shard: str) -> str:
        """CLIP embeddings of the shard's proposals."""
        return self._join("features", f"{shard}.regions.parquet")

    def text(self, shard: str) -> str:
        """CLIP embeddings of the shard's phrases."""
        return self._part("phrases", "features", f"{shard}.text.parquet")

    def feature_cache(self, shard: str, kind: CacheKind) -> str:
        """ROSA's memory-mapped Arrow IPC cache of the shard's regions or text
        (:mod:`nvos.rosa.feature_cache`)."""
        name = f"{shard}.{kind}.arrow"
        if kind == "text":
            return self._part("phrases", "features", "cache", name)
        return self._join("features", "cache", name)

    def shard_paths(self, shard: str) -> ShardPaths:
        """The files ROSA reads for ``shard``."""
        return ShardPaths(
            shard=shard,
            regions=Path(self.regions(shard)),
            text=Path(self.text(shard)),
            proposals=Path(self.proposals(shard)),
            frames=Path(self.frames(shard)),
            regions_cache=Path(self.feature_cache(shard, "regions")),
            text_cache=Path(self.feature_cache(shard, "text")),
        )

    # -- models and predictions ----------------------------------------------------------------

    def model_dir(self, variant: str) -> str:
        return self._join("models", variant)

    def checkpoint(self, variant: str) -> str:
        return self._join("models", variant, "checkpoint.pt")

    def train_log(self, variant: str) -> str:
        return self._join("models", variant, "train_log.csv")

    def predictions(self, method: str, shard: str) -> str:
        return self._own("predictions", method, f"{shard}.parquet")

    def masks(self, method: str, shard: str) -> str:
        """Dense masks of a propagated method on every frame (schema ``dense_masks``)."""
        return self._own("masks", method, f"{shard}.parquet")

    def method_predictions(self, method: str, shards: Sequence[str]) -> list[str]:
        """``predictions/<method>/<shard>.parquet`` of every shard, in shard order."""
        return [self.predictions(method, shard) for shard in shards]

    @property
    def sweep_selection(self) -> str:
        """The setting of ``rosa.sweep`` chosen on val (:mod:`nvos.rosa.sweep`)."""
        return self._join("sweep", "selection.json")

    @property
    def sweep_table(self) -> str:
        """Every setting of ``rosa.sweep`` with its val scores, the chosen one marked."""
        return self._join("sweep", "sweep.csv")

    def scores(self, method: str, shard: str) -> str:
        """Every proposal's score of a region-scoring method (schema ``region_scores``)."""
        return self._own("scores", method, f"{shard}.parquet")

    def links(self, shard: str) -> str:
        """The link term between consecutive keyframes of each clip (schema ``links``)."""
        return self._part("links", "links", f"{shard}.parquet")

    def temporal_selection(self, method: str) -> str:
        """The decoder settings of a ``<base>+temporal`` method, chosen on val."""
        return self._join("temporal", method, "selection.json")

    def temporal_grid(self, method: str) -> str:
        """Val J, F, J&F of every grid point of the selection (CSV)."""
        return self._join("temporal", method, "grid.csv")

    # -- evaluation and report -----------------------------------------------------------------

    @property
    def seen_vocabulary(self) -> str:
        """``seen.json``: the training vocabulary and the head nouns of the tagged phrases
        (:mod:`nvos.evaluation.seen`), made once for every evaluation job."""
        return self._join("seen.json")

    def metrics_dir(self, method: str, split: str) -> str:
        return self._join("metrics", method, split)

    def per_object(self, method: str, split: str) -> str:
        return self._join("metrics", method, split, "per_object.csv")

    def summary(self, method: str, split: str) -> str:
        return self._join("metrics", method, split, "summary.json")

    @property
    def report_dir(self) -> str:
        return self._join("report")

    def report_file(self, name: str) -> str:
        """``report/<name>`` (``table.md``, ``index.html``, ``config.yaml``, ``overlays``,
        ``videos``)."""
        return self._join("report", name)

    # -- the segment stage ----------------------------------------------------------------------

    def segment_masks(self, shard: str) -> str:
        """``segment/<shard>.parquet``: every phrase's mask on every frame of the shard's clips
        with the phrase's text and span (schema ``segment_masks``)."""
        return self._join(SEGMENT_SCOPE, f"{shard}.parquet")

    # -- skips, logs, benchmarks ---------------------------------------------------------------

    def skipped(self, stage: str, shard: str | None = None) -> str:
        """A job's skip ledger: ``skipped/<stage>/<shard>.parquet`` (``skipped/<stage>.parquet``
        for a whole-run stage); ``stage`` may be ``predictions/<method>``."""
        if shard is None:
            return self._own("skipped", f"{stage}.parquet")
        return self._own("skipped", stage, f"{shard}.parquet")

    def skip_ledgers(self, shards: Sequence[str], methods: Sequence[str]) -> list[str]:
        """Every job's skip ledger of a run with ``shards`` whose ``methods`` are predicted, in
        stage order (the ``skips`` rule's inputs)."""
        return [
            *(self.skipped("frames", s) for s in shards),
            *(self.skipped("proposals", s) for s in shards),
            self.skipped("phrases"),
            *(self.skipped("features", s) for s in shards),
            *(self.skipped(f"predictions/{m}", s) for m in methods for s in shards),
        ]

    @property
    def skipped_csv(self) -> str:
        return self._own("skipped.csv")

    @property
    def reconciliation(self) -> str:
        return self._own("reconciliation.csv")

    def log(self, *parts: str) -> str:
        """``logs/<parts...>.log`` of a job."""
        return self._own("logs", *parts[:-1], f"{parts[-1]}.log")

    def benchmark(self, *parts: str) -> str:
        """``benchmarks/<parts...>.tsv`` of a job."""
        return self._own("benchmarks", *parts[:-1], f"{parts[-1]}.tsv")
