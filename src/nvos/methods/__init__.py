"""Prediction methods as one family (docs/design.md, "Prediction methods").

:mod:`nvos.methods.base` says what a method is, :mod:`nvos.methods.registry` lists the members,
:mod:`nvos.methods.rows` is the one writer of their rows, and :func:`predict_method_shard` runs
one method on one shard (the workflow's prediction rules and ``nvos predict``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nvos.layout import RunLayout
from nvos.methods.base import SUPERVISION, Method, MethodInfo, ShardJob, ShardResult
from nvos.methods.registry import (
    FAMILY,
    describe_methods,
    evaluated_methods,
    member,
    method_names,
)
from nvos.types import PathLike

__all__ = [
    "FAMILY",
    "SUPERVISION",
    "Method",
    "MethodInfo",
    "describe_methods",
    "ShardJob",
    "evaluated_methods",
    "member",
    "method_names",
    "predict_method_shard",
]


def predict_method_shard(
    config: Mapping[str, Any],
    layout: RunLayout,
    method: str,
    shard: str,
    params: Mapping[str, Any] | None = None,
    lock_dir: PathLike | None = None,
) -> ShardResult:
    """Predict ``method`` on ``shard``: ``predictions/<method>/<shard>.parquet`` and its skip
    ledger ``skipped/predictions/<method>/<shard>.parquet``. ``params`` default to the member's
    :meth:`~nvos.methods.base.Method.params` of ``config`` (the rule passes its own)."""
    from nvos.skips import write_ledger

    found = member(config, method)
    job_params = found.params(config, method) if params is None else params
    summary = found.predict(ShardJob(layout, method, shard, job_params, lock_dir))
    if summary.ledger is not None:
        write_ledger(summary.ledger, layout.skipped(f"predictions/{method}", shard))
    return summary
