"""What a prediction method is: turns one shard's inputs into ``predictions`` rows.

A method (a member of the family, :mod:`nvos.methods.registry`) declares, for a config, the method
names it provides (one row each in the report: ``sam_clip``, ``oracle``, each ROSA variant), how
the report labels each and what it was trained with (:class:`MethodInfo`), the files a shard job
reads (the rule's inputs, from :class:`nvos.layout.RunLayout`), the config its predictions depend
on (the rule's params) and how to predict a shard. The workflow makes one
Snakemake rule per member from these (``workflow/rules/methods.smk``); the ``nvos predict``
command calls the same :func:`nvos.methods.predict_method_shard`.

Imports nothing heavy: the Snakefile loads the family to build the DAG; a member imports its
library code inside :meth:`Method.predict`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from nvos.layout import RunLayout
from nvos.skips import Ledger
from nvos.types import PathLike

__all__ = [
    "STEP",
    "SUPERVISION",
    "Method",
    "MethodInfo",
    "ShardJob",
    "ShardResult",
    "extra_outputs",
    "gpus",
    "root_method",
]

STEP = "+"
"""Separator of a composite method's steps: ``<base>+temporal``, ``<keyframe method>+flow``."""


def root_method(method: str) -> str:
    """The method a composite method starts from (``rosa+temporal+flow`` -> ``rosa``)."""
    return method.split(STEP, 1)[0]


SUPERVISION: dict[str, str] = {
    "mask": "labelled regions",
    "narration": "narrations only",
    "none": "none (zero-shot)",
    "oracle": "test ground truth",
}
"""What a method learned from (key) and how the report's supervision column says it (value):
``mask``, trained with labelled regions (boxes or masks: GroundedSAM, SAM 3, imported
mask-supervised methods); ``narration``, trained without spatial labels (ROSA); ``none``,
zero-shot (SAM + CLIP); ``oracle``, chooses with the test ground truth (the upper bound)."""


@dataclass(frozen=True)
class MethodInfo:
    """How the report names one method: its row ``label`` and its ``supervision`` (a key of
    :data:`SUPERVISION`); ``short``, its name inside a composite method's label ("SAM + CLIP" in
    "SAM + CLIP + temporal"; None: the label)."""

    label: str
    supervision: str
    short: str | None = None

    def then(self, step: str) -> MethodInfo:
        """The info of this method followed by ``step`` (``rosa`` -> ``rosa+temporal``: "ROSA +
        temporal"), trained with the same supervision."""
        return MethodInfo(f"{self.short or self.label} + {step}", self.supervision)

    def __post_init__(self) -> None:
        if self.supervision not in SUPERVISION:
            raise ValueError(
                f"supervision {self.supervision!r} is not one of {sorted(SUPERVISION)}"
            )


@dataclass(frozen=True)
class ShardJob:
    """One prediction job: method ``method`` on shard ``shard`` of the run ``layout``.

    ``params`` is what :meth:`Method.params` returned for ``method``; ``lock_dir`` the machine's
    GPU locks (:mod:`nvos.devices`). The job writes ``layout.predictions(method, shard)``.
    """

    layout: RunLayout
    method: str
    shard: str
    params: Mapping[str, Any]
    lock_dir: PathLike | None = None

    @property
    def out(self) -> str:
        """The predictions file this job writes."""
        return self.layout.predictions(self.method, self.shard)

    @property
    def scores_out(self) -> str:
        """The scores file this job writes when its member scores regions."""
        return self.layout.scores(self.method, self.shard)


class ShardResult(Protocol):
    """What a method's :meth:`Method.predict` returns: a summary whose ``ledger`` accounts for
    every clip of the shard (predicted, or skipped with a reason; :mod:`nvos.skips`)."""

    @property
    def ledger(self) -> Ledger | None: ...


class Method(Protocol):
    """A member of the family of prediction methods.

    Attributes:
        name: the member's name (``sam_clip``, ``oracle``, ``rosa``).
        rule: the Snakemake rule of its per-shard jobs (``sam_clip_shard``).
        target: the Snakemake rule collecting all its predictions (``sam_clip``).
        gpu: GPUs one shard job claims (0: CPU only; the rule's ``gpu`` resource).
        scores_regions: whether a job also writes every proposal's score on every keyframe,
            ``scores/<method>/<shard>.parquet`` (schema ``region_scores``, an output of its rule):
            what the temporal decoder (:mod:`nvos.methods.temporal`) decodes.
        doc, target_doc: one line describing each rule (``snakemake -l``).
    """

    name: str
    rule: str
    target: str
    gpu: int
    scores_regions: bool
    doc: str
    target_doc: str

    def names(self, config: Mapping[str, Any]) -> list[str]:
        """The method names (report rows) this member provides under ``config``."""
        ...

    def inputs(
        self, config: Mapping[str, Any], layout: RunLayout, method: str, shard: str
    ) -> dict[str, str]:
        """Every file a job of ``method`` on ``shard`` reads, by name (arguments may be
        wildcards such as ``"{shard}"``)."""
        ...

    def params(self, config: Mapping[str, Any], method: str) -> dict[str, Any]:
        """The part of ``config`` the predictions of ``method`` depend on (resolved once here)."""
        ...

    def describe(self, config: Mapping[str, Any], method: str) -> MethodInfo:
        """The report's label and supervision of ``method`` (one of :meth:`names`)."""
        ...

    def predict(self, job: ShardJob) -> ShardResult:
        """Write ``job.out`` (through :class:`nvos.methods.rows.PredictionRows`) and return the
        summary with its ledger."""
        ...


def gpus(member: Method, config: Mapping[str, Any]) -> int:
    """GPUs one job of ``member`` claims under ``config``: its ``gpus(config)`` when it has one
    (a member whose need depends on the config, e.g. a propagation backend), else ``gpu``."""
    own = getattr(member, "gpus", None)
    return int(own(config)) if own is not None else member.gpu


def extra_outputs(member: Method, layout: RunLayout, method: str, shard: str) -> dict[str, str]:
    """Files a job of ``member`` writes besides its predictions and skip ledger, by name:
    ``scores`` (every proposal's score, the decoder's input) when it scores regions, and its own
    ``outputs(layout, method, shard)`` when it has one (e.g. dense masks)."""
    files = {"scores": layout.scores(method, shard)} if member.scores_regions else {}
    own = getattr(member, "outputs", None)
    return {**files, **(dict(own(layout, method, shard)) if own is not None else {})}
