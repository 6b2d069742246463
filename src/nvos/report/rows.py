"""Which rows the results tables have, how they are labelled and in which order.

Each method's label and supervision come from its member of the method family
(:func:`nvos.methods.describe_methods`; ``report.labels`` overrides a label). Rows are grouped as
the paper does (:data:`GROUPS`): methods trained with labelled regions (GroundedSAM, SAM 3,
imported mask-supervised methods), then methods without them (SAM + CLIP, ROSA and its ablations,
imported narration-supervised methods), methods no member describes, and the oracle last; within
a group, in the family's order and each member's own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nvos.methods import FAMILY, SUPERVISION, describe_methods
from nvos.methods.base import root_method

MISSING = "–"
"""What a table prints where there is no value."""

GROUPS: tuple[tuple[str, tuple[str | None, ...]], ...] = (
    ("Trained with labelled regions", ("mask",)),
    ("Without labelled regions", ("narration", "none")),
    ("Other methods", (None,)),
    ("Upper bound", ("oracle",)),
)
"""Row groups in print order: (title, the supervisions in it; None = no family member)."""


@dataclass(frozen=True)
class RowInfo:
    """How a method appears in the tables: its ``label``, its ``supervision`` (a key of
    :data:`nvos.methods.SUPERVISION`; None when no family member provides the method) and its
    ``rank`` within its group (the member's place in the family, the method's among its names)."""

    label: str
    supervision: str | None = None
    rank: tuple[int, ...] = (len(FAMILY), 0, 0)

    @property
    def group(self) -> int:
        """Index of its group in :data:`GROUPS`."""
        return next(i for i, (_, kinds) in enumerate(GROUPS) if self.supervision in kinds)

    @property
    def supervision_text(self) -> str:
        """The supervision column's text."""
        return SUPERVISION.get(self.supervision or "", MISSING)


def row_infos(
    config: Mapping[str, Any], methods: Sequence[str], labels: Mapping[str, str] | None = None
) -> dict[str, RowInfo]:
    """Each of ``methods`` -> its :class:`RowInfo` from its family member under ``config``;
    ``labels`` (``report.labels``) override the members' labels."""
    described = describe_methods(config, methods)
    infos = {}
    for method in methods:
        if method in described:
            info, rank = described[method]
            row = RowInfo(info.label, info.supervision, rank)
        else:
            row = RowInfo(method)
        infos[method] = RowInfo((labels or {}).get(method, row.label), row.supervision, row.rank)
    return infos


def order_methods(methods: Sequence[str], infos: Mapping[str, RowInfo] | None = None) -> list[str]:
    """``methods`` (deduplicated) in the table's row order: by group, then rank, then name."""

    def key(method: str) -> tuple[int, tuple[int, ...], str]:
        info = (infos or {}).get(method) or RowInfo(method)
        return (info.group, info.rank, method)

    return sorted(set(methods), key=key)


def method_label(method: str, infos: Mapping[str, RowInfo] | None = None) -> str:
    """The row label of a method (its name when ``infos`` does not describe it)."""
    info = (infos or {}).get(method)
    return info.label if info is not None else method


def is_oracle(method: str) -> bool:
    """Whether ``method`` is the oracle or composed on it (``oracle+flow``): an upper bound."""
    return root_method(method) == "oracle"
