"""Out-of-memory handling that learns (nvos.oom), and SAM's bounded upload queue (fake OOMs)."""

from __future__ import annotations

import logging
import weakref
from typing import Any

import numpy as np
import pytest
import torch

from nvos import oom
from nvos.oom import AdaptiveBatch, is_oom
from nvos.proposals.sam import SamBackend, SamSettings, build_sam

CPU = torch.device("cpu")


def test_allocator_errors_of_other_types_are_recognised() -> None:
    assert is_oom(torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert is_oom(RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling cublasCreate"))
    assert is_oom(RuntimeError("cuDNN error: CUDNN_STATUS_ALLOC_FAILED"))
    assert is_oom(RuntimeError("CUDA error: out of memory"))
    assert not is_oom(RuntimeError("CUDA error: an illegal memory access was encountered"))
    assert not is_oom(ValueError("out of memory"))


def test_one_reduction_for_the_whole_job_not_one_per_call(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The first call fails at 16 (a cuBLAS allocation failure) and 8; every later call runs at 4
    at once, and the reduction is logged once per halving, not again."""
    sizes: list[int] = []

    def run(start: int, stop: int) -> int:
        sizes.append(stop - start)
        if stop - start > 4:
            raise RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling cublasCreate")
        return stop - start

    sizer = AdaptiveBatch(16, "test")
    with caplog.at_level(logging.WARNING, logger="nvos.oom"):
        first = [n for _, _, n in sizer.run(run, 16)]
        later = [[n for _, _, n in sizer.run(run, 16)] for _ in range(3)]
    assert sizes[:2] == [16, 8] and first == [4, 4, 4, 4]
    assert later == [[4, 4, 4, 4]] * 3 and max(sizes[2:]) == 4
    assert sizer.size == 4 and sizer.reductions == 2
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2 and "for the rest of the job" in warnings[0]


def test_other_errors_are_not_retried() -> None:
    def run(start: int, stop: int) -> None:
        raise RuntimeError("shape mismatch")

    with pytest.raises(RuntimeError, match="shape mismatch"):
        list(AdaptiveBatch(8, "test").run(run, 8))


def test_failed_batch_is_unreachable_when_memory_is_freed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The device cache is emptied after the handler: the failed batch's tensor (held by the
    traceback until then) can be given back."""
    refs: list[weakref.ref[torch.Tensor]] = []
    alive_when_freed: list[bool] = []
    monkeypatch.setattr(
        oom, "free_device_memory", lambda: alive_when_freed.append(refs[0]() is not None)
    )

    def run(start: int, stop: int) -> int:
        batch = torch.zeros(stop - start, 4)
        if stop - start > 2:
            refs.append(weakref.ref(batch))
            raise torch.cuda.OutOfMemoryError("simulated")
        return stop - start

    assert [n for _, _, n in AdaptiveBatch(4, "test").run(run, 4)] == [2, 2]
    assert alive_when_freed == [False]


def _tiny_backend(frames_per_batch: int) -> SamBackend:
    torch.manual_seed(0)
    settings = SamSettings(
        points_per_side=2,
        points_per_batch=4,
        frames_per_batch=frames_per_batch,
        pred_iou_thresh=0.0,
        stability_score_thresh=0.0,
    )
    return SamBackend(build_sam("tiny"), settings, CPU, "tiny")


def _frames(n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, (48, 64, 3), dtype=np.uint8) for _ in range(n)]


def test_sam_keeps_the_reduced_encoder_batch_across_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    backend = _tiny_backend(frames_per_batch=4)
    sizes: list[int] = []
    original = backend.model.image_encoder.forward

    def encoder(x: torch.Tensor) -> torch.Tensor:
        sizes.append(x.shape[0])
        if x.shape[0] > 2:
            raise torch.cuda.OutOfMemoryError("simulated")
        return original(x)

    monkeypatch.setattr(backend.model.image_encoder, "forward", encoder)
    for _ in range(3):
        assert len(backend.generate(_frames(4))) == 4
    assert sizes == [4, 2, 2, 2, 2, 2, 2]  # one failure in the whole job


def test_sam_queues_at_most_one_batch_of_uploads_ahead(monkeypatch: pytest.MonkeyPatch) -> None:
    backend = _tiny_backend(frames_per_batch=2)
    prepared: list[int] = []
    encoded: list[int] = []
    ahead: list[int] = []
    original_prepare = backend._prepare
    original_encoder = backend.model.image_encoder.forward

    def prepare(*args: Any) -> torch.Tensor:
        prepared.append(1)
        ahead.append(len(prepared) - len(encoded))
        return original_prepare(*args)

    def encoder(x: torch.Tensor) -> torch.Tensor:
        encoded.extend([1] * x.shape[0])
        return original_encoder(x)

    monkeypatch.setattr(backend, "_prepare", prepare)
    monkeypatch.setattr(backend.model.image_encoder, "forward", encoder)
    assert len(backend.generate(_frames(10))) == 10
    assert len(prepared) == 10 and len(encoded) == 10
    assert max(ahead) <= 4  # the batch being encoded (2) and the next one (2)
