"""Device out-of-memory handling for batched work: a batch size that halves and stays halved.

:class:`AdaptiveBatch` runs ``run(start, stop)`` over ``range(n_items)`` in batches of its current
size. When a batch fails with an allocator out-of-memory error (:func:`is_oom`:
``torch.cuda.OutOfMemoryError``, and the ``RuntimeError``\\ s of cuBLAS/cuDNN/CUDA that report a
failed allocation), the batch is retried at half its size and that size is kept for every later
batch and every later call on the same object (one WARNING per reduction), so a job that ran out
of memory once does not fail again on each call. The device cache is emptied after leaving the
exception handler, once the traceback (which holds the failed batch's tensors) is gone. A batch of
one that runs out of memory re-raises.
"""

from __future__ import annotations

import gc
import logging
import sys
from collections.abc import Callable, Iterator
from typing import TypeVar

T = TypeVar("T")

logger = logging.getLogger(__name__)

__all__ = ["OOM_MARKERS", "AdaptiveBatch", "free_device_memory", "is_oom"]

#: Substrings (compared lower-case) of the messages of allocator failures raised as RuntimeError.
OOM_MARKERS = ("out of memory", "cublas_status_alloc_failed", "cudnn_status_alloc_failed")


def is_oom(exc: BaseException) -> bool:
    """Whether ``exc`` reports a device allocation failure (retrying smaller may succeed).

    torch is not imported here (CPU-only stages such as the classical proposals never load it):
    an error raised by torch means torch is already in ``sys.modules``.
    """
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    if isinstance(exc, RuntimeError):
        message = str(exc).lower()
        return any(marker in message for marker in OOM_MARKERS)
    return False


def free_device_memory() -> None:
    """Collect garbage and return the CUDA caching allocator's free blocks (no-op without CUDA)."""
    gc.collect()
    torch = sys.modules.get("torch")  # nothing to free if torch was never loaded
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


class AdaptiveBatch:
    """A batch size that halves on out-of-memory errors and keeps the reduction.

    Args:
        size: The configured (largest) batch size, ≥ 1.
        what: Name of the work in log messages, e.g. ``"image-encoder"``.
    """

    def __init__(self, size: int, what: str) -> None:
        self.size = max(1, int(size))
        self.what = what
        self.reductions = 0

    def run(self, run: Callable[[int, int], T], n_items: int) -> Iterator[tuple[int, int, T]]:
        """Yield ``(start, stop, run(start, stop))`` over ``range(n_items)`` in batches of at most
        :attr:`size` items (retrying a batch that ran out of memory at half its size)."""
        start = 0
        while start < n_items:
            stop = min(start + self.size, n_items)
            failed = False
            try:
                result = run(start, stop)
            except RuntimeError as exc:
                if not is_oom(exc):
                    raise
                if stop - start <= 1:
                    logger.error("out of device memory on a %s batch of 1: giving up", self.what)
                    raise
                failed = True
            if failed:  # outside the handler: the traceback and the batch's tensors are gone
                self._reduce(stop - start)
                free_device_memory()
                continue
            yield start, stop, result
            start = stop

    def _reduce(self, failed: int) -> None:
        size = max(1, failed // 2)
        self.size = min(self.size, size)
        self.reductions += 1
        logger.warning(
            "out of device memory on a %s batch of %d: retrying at %d, and using at most %d "
            "for the rest of the job",
            self.what,
            failed,
            size,
            self.size,
        )
