"""The family of prediction methods: one line per member.

Adding a method is one module (a class with the :class:`nvos.methods.base.Method` members) and
one line in :data:`FAMILY` (docs/design.md, "Prediction methods").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from nvos.methods.base import STEP, Method, MethodInfo, root_method
from nvos.methods.free_text import FreeText
from nvos.methods.imported import Imported
from nvos.methods.oracle import Oracle
from nvos.methods.prompted import GroundedSamMethod, Sam3Method
from nvos.methods.propagated import Propagated
from nvos.methods.rosa import Rosa
from nvos.methods.rosa_chosen import RosaChosen
from nvos.methods.sam_clip import SamClip
from nvos.methods.temporal import Temporal

__all__ = ["FAMILY", "describe_methods", "evaluated_methods", "member", "method_names"]

FAMILY: tuple[Method, ...] = (
    SamClip(),
    Rosa(),
    RosaChosen(),
    Oracle(),
    GroundedSamMethod(),
    Sam3Method(),
    Temporal(),
    Propagated(),
    FreeText(),
    Imported(),
)


def method_names(config: Mapping[str, Any]) -> dict[str, list[str]]:
    """Member name -> the method names it provides under ``config`` (family order)."""
    return {m.name: m.names(config) for m in FAMILY}


def member(config: Mapping[str, Any], method: str) -> Method:
    """The member providing ``method`` (the first, should two; :mod:`nvos.checks` reports
    that). Raises KeyError naming the known methods."""
    for candidate in FAMILY:
        if method in candidate.names(config):
            return candidate
    known = [n for names in method_names(config).values() for n in names]
    raise KeyError(f"unknown method {method!r} (known: {', '.join(known)})")


def evaluated_methods(config: Mapping[str, Any]) -> list[str]:
    """The methods whose predictions a full run makes and scores: ``evaluate.methods`` when
    ``evaluate.splits`` is set, else none (every one is a family method: :mod:`nvos.checks`)."""
    return list(config["evaluate"]["methods"]) if config["evaluate"]["splits"] else []


def describe_methods(
    config: Mapping[str, Any], methods: Sequence[str]
) -> dict[str, tuple[MethodInfo, tuple[int, int]]]:
    """Each of ``methods`` -> its member's :class:`~nvos.methods.base.MethodInfo` and its rank
    (the member's place in :data:`FAMILY`, the method's place in the member's names; a composite
    method ``rosa+temporal`` ranks right after its root ``rosa``, fewer steps first). A method
    that no member provides under ``config`` is left out (the report lists it as "other")."""
    found: dict[str, tuple[MethodInfo, tuple[int, ...]]] = {}
    roots = {root_method(m) for m in methods}
    for index, candidate in enumerate(FAMILY):
        names = candidate.names(config)
        for method in [*methods, *roots]:
            if method in names and method not in found:
                info = candidate.describe(config, method)
                found[method] = (info, (index, names.index(method), 0))
    for method in methods:
        root = root_method(method)
        if method in found and root != method and root in found:
            found[method] = (found[method][0], (*found[root][1][:2], method.count(STEP)))
    return {m: found[m] for m in methods if m in found}
