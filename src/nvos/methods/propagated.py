"""Dense propagation as methods: ``<keyframe method>+<backend>`` (:mod:`nvos.temporal.dense`).

For each keyframe method of ``temporal.propagate.methods`` (any method of the family, e.g.
``rosa``, ``oracle`` or a temporally decoded ``rosa+temporal``) this member provides the method
``<keyframe method>+<backend>`` (``temporal.propagate.backend``: ``flow``, ``none`` or ``sam2``).
Its job reads the keyframe method's predictions (its rows are the keyframes), propagates them to
every frame of each clip and writes ``masks/<method>/<shard>.parquet`` and the predictions on the
annotated frames. Only the ``sam2`` backend claims a GPU.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from nvos.layout import RunLayout
from nvos.methods.base import STEP, MethodInfo, ShardJob, ShardResult

"""Joins a keyframe method and what was done to it: ``rosa+temporal``, ``rosa+temporal+flow``."""


def propagate_group(config: Mapping[str, Any]) -> Mapping[str, Any]:
    """The ``temporal.propagate`` group of a validated config (empty when absent)."""
    return (config.get("temporal") or {}).get("propagate") or {}


def propagated_names(config: Mapping[str, Any]) -> dict[str, str]:
    """Each propagated method -> its keyframe method, under ``config``."""
    group = propagate_group(config)
    backend = group.get("backend", "flow")
    return {f"{m}{STEP}{backend}": m for m in group.get("methods", [])}


class Propagated:
    """A keyframe method's masks carried to every frame by a propagation backend."""

    name = "propagated"
    rule = "propagate_shard"
    target = "propagate"
    gpu = 0  # the rule's GPUs come from gpus(config): 1 for backend sam2
    scores_regions = False  # its masks are no proposals: nothing for the temporal decoder
    doc = "Dense masks of one shard: a keyframe method's masks propagated to every frame."
    target_doc = "Target: the dense masks and predictions of every propagated method."

    def names(self, config: Mapping[str, Any]) -> list[str]:
        return list(propagated_names(config))

    def describe(self, config: Mapping[str, Any], method: str) -> MethodInfo:
        """The keyframe method's label and supervision, then "+ <backend>"."""
        from nvos.methods.registry import member

        keyframes = self.keyframe_method(config, method)
        info = member(config, keyframes).describe(config, keyframes)
        return info.then(method.rsplit(STEP, 1)[1])

    def gpus(self, config: Mapping[str, Any]) -> int:
        """GPUs a job claims: 1 for the ``sam2`` backend, else none."""
        return 1 if propagate_group(config).get("backend") == "sam2" else 0

    def outputs(self, layout: RunLayout, method: str, shard: str) -> dict[str, str]:
        """Files a job writes besides its predictions: the dense masks."""
        return {"masks": layout.masks(method, shard)}

    def inputs(
        self, config: Mapping[str, Any], layout: RunLayout, method: str, shard: str
    ) -> dict[str, Any]:
        inputs = {
            "clips": layout.clips,
            "annotations": layout.annotations,
            "keyframes": layout.predictions(self.keyframe_method(config, method), shard),
        }
        group = propagate_group(config)
        checkpoint = group.get("sam2", {}).get("checkpoint")
        if group.get("backend") == "sam2" and checkpoint:
            inputs["checkpoint"] = checkpoint
        return inputs

    def keyframe_method(self, config: Mapping[str, Any], method: str) -> str:
        """The keyframe method of ``method`` (KeyError when ``method`` is not one of ours)."""
        return propagated_names(config)[method]

    def params(self, config: Mapping[str, Any], method: str) -> dict[str, Any]:
        """The keyframe method, ``temporal.propagate`` with only the chosen backend's settings
        (``backend_settings``), and the frame rate of frame folders."""
        from nvos.config import plain

        group = plain(dict(propagate_group(config)))
        settings = {k: v for k, v in group.items() if k not in ("flow", "sam2", "methods")}
        return {
            "keyframe_method": self.keyframe_method(config, method),
            "propagate": {**settings, "backend_settings": group.get(group["backend"], {})},
            "folder_fps": config["dataset"]["folder_fps"],
        }

    def predict(self, job: ShardJob) -> ShardResult:
        from nvos.config import typed
        from nvos.temporal.dense import PropagateSettings, propagate_shard

        group, layout, shard = job.params["propagate"], job.layout, job.shard
        settings = typed({k: group[k] for k in ("fps", "leave_one_out")}, PropagateSettings)
        with _backend(group, job.lock_dir) as propagator:
            return propagate_shard(
                layout.clips,
                layout.annotations,
                layout.predictions(job.params["keyframe_method"], shard),
                shard,
                propagator,
                settings,
                layout.masks(job.method, shard),
                job.out,
                job.method,
                folder_fps=float(job.params["folder_fps"]),
                meta={"keyframe_method": job.params["keyframe_method"]},
            )


@contextmanager
def _backend(group: Mapping[str, Any], lock_dir: Any) -> Iterator[Any]:
    """The propagation backend of ``group``; ``sam2`` on a claimed device (:mod:`nvos.devices`)."""
    from nvos.temporal.backends import make_propagator

    settings = dict(group["backend_settings"])
    if group["backend"] != "sam2":
        yield make_propagator(group["backend"], settings)
        return
    from nvos.devices import claim_device

    with claim_device(lock_dir) as device:
        yield make_propagator("sam2", {**settings, "device": str(device)})
