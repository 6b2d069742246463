"""The dense propagation backends by name: ``none``, ``flow`` and ``sam2`` (optional package)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from nvos.temporal.flow import FlowSettings
from nvos.temporal.propagate import FlowPropagator, NonePropagator, Propagator

BACKENDS = ("none", "flow", "sam2")


def make_propagator(backend: str, settings: Mapping[str, Any] | None = None) -> Propagator:
    """The backend named ``backend`` with its settings (flow: preset, max_side; sam2: config,
    checkpoint, device, offload_state_to_cpu, see
    :func:`nvos.temporal.sam2_backend.make_sam2_propagator`)."""
    settings = dict(settings or {})
    if backend not in BACKENDS:
        raise ValueError(f"unknown propagation backend {backend!r} (known: {list(BACKENDS)})")
    if backend == "sam2":
        from nvos.temporal.sam2_backend import make_sam2_propagator  # torch and sam2: on demand

        takes: Callable[..., Any] = make_sam2_propagator
    else:
        takes = FlowSettings if backend == "flow" else NonePropagator
    known = sorted(inspect.signature(takes).parameters)
    unknown = sorted(set(settings) - set(known))
    if unknown:
        raise ValueError(
            f"propagation backend {backend!r}: unknown settings {unknown} (known: {known})"
        )
    if backend == "sam2":
        return make_sam2_propagator(**settings)
    if backend == "flow":
        return FlowPropagator(FlowSettings(**settings))
    return NonePropagator()
