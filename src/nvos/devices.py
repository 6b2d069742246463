"""Which accelerator a job uses: a per-device lock file claim, or the scheduler's choice.

Snakemake counts GPUs (``resources: gpu=1``) but does not say which one a job gets, so each GPU
job claims one itself (DESIGN §6). The rule implemented by :func:`claim_device`:

1. ``prefer_cuda=False`` → CPU.
2. ``CUDA_VISIBLE_DEVICES`` is set in the job's environment (a scheduler such as SLURM gave the
   job its devices) → the scheduler's assignment is respected: the job uses ``cuda:0`` of what is
   visible and takes no lock. Set ``NVOS_LOCK_VISIBLE_DEVICES=1`` to claim among the visible
   devices through locks anyway (a workstation where the variable is exported in the shell).
3. Otherwise the job tries, in order, an exclusive non-blocking ``flock`` on
   ``<lock_dir>/gpu<i>.lock`` for each device ``i``; the first free one is claimed. A job that
   holds no lock never waits on another's: it only waits (polling, with a log message) when every
   device is held, up to ``timeout_s``. The lock is released when the context exits, and by the
   operating system when the process dies (crash, SIGKILL), so a device never stays claimed.
4. No CUDA device → CPU, with a WARNING in the log.

Inside a SLURM job the log line also names the job and the devices SLURM gave it
(``SLURM_JOB_ID``, ``SLURM_STEP_GPUS``), so a job's log shows which device it was assigned and used.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TypeVar

import torch

T = TypeVar("T")

logger = logging.getLogger(__name__)

__all__ = ["LOCK_VISIBLE_ENV", "claim_device", "lock_path"]

#: Environment variable that forces lock-based claims even when CUDA_VISIBLE_DEVICES is set.
LOCK_VISIBLE_ENV = "NVOS_LOCK_VISIBLE_DEVICES"


def lock_path(lock_dir: Path, index: int) -> Path:
    """The lock file of device ``index``: ``<lock_dir>/gpu<index>.lock``."""
    return Path(lock_dir) / f"gpu{index}.lock"


def _try_lock(path: Path) -> int | None:
    """An open descriptor holding an exclusive flock on ``path``, or None if another holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return None
        raise OSError(exc.errno, f"cannot lock device file {path}: {exc.strerror}") from exc
    # Record the holder for people inspecting the folder; the lock itself is the flock.
    os.ftruncate(fd, 0)
    holder = f"pid={os.getpid()} host={socket.gethostname()} since={time.time():.0f}\n"
    os.write(fd, holder.encode())
    return fd


def _claim_free_index(
    lock_dir: Path, n_devices: int, timeout_s: float, poll_s: float
) -> tuple[int, int]:
    """(device index, lock descriptor) of the first free device; polls while all are held."""
    lock_dir.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    announced = False
    while True:
        for index in range(n_devices):
            fd = _try_lock(lock_path(lock_dir, index))
            if fd is not None:
                if announced:
                    waited = time.monotonic() - start
                    logger.info("device %d freed after waiting %.1f s", index, waited)
                return index, fd
        waited = time.monotonic() - start
        if waited >= timeout_s:
            raise TimeoutError(
                f"all {n_devices} GPU(s) stayed claimed by other jobs for {waited:.0f} s "
                f"(lock files {lock_dir}/gpu*.lock); give fewer jobs GPUs "
                f"(snakemake --resources gpu=N with N <= {n_devices}) or raise the timeout"
            )
        if not announced:
            logger.warning(
                "all %d GPU(s) are claimed by other jobs (lock files %s/gpu*.lock); "
                "waiting up to %.0f s for one to be released",
                n_devices,
                lock_dir,
                timeout_s,
            )
            announced = True
        time.sleep(poll_s)


def _scheduler_note(env: Mapping[str, str]) -> str:
    """Who set CUDA_VISIBLE_DEVICES: ``"SLURM job 12, SLURM_STEP_GPUS=1"`` inside a SLURM job
    (the step's GPUs, else the job's), ``"the environment"`` elsewhere."""
    job = env.get("SLURM_JOB_ID")
    if job is None:
        return "the environment"
    for name in ("SLURM_STEP_GPUS", "SLURM_JOB_GPUS"):
        if name in env:
            return f"SLURM job {job}, {name}={env[name]}"
    return f"SLURM job {job}"


@contextlib.contextmanager
def claim_device(
    lock_dir: Path,
    prefer_cuda: bool = True,
    n_devices: int | None = None,
    timeout_s: float = 24 * 3600.0,
    poll_s: float = 2.0,
    environ: Mapping[str, str] | None = None,
) -> Iterator[torch.device]:
    """Claim one device for the duration of the ``with`` block (rules in the module docstring).

    Args:
        lock_dir: Folder of the per-device lock files, shared by all jobs of the machine
            (created if missing), e.g. ``results/<run>/.gpu_locks``.
        prefer_cuda: False → CPU without looking at GPUs.
        n_devices: Number of devices to choose among; None = ``torch.cuda.device_count()``.
            Tests pass a number to fake devices (the yielded ``cuda:<i>`` is then never used).
        timeout_s: How long to wait when every device is claimed before raising TimeoutError.
        poll_s: Seconds between attempts while every device is claimed.
        environ: Environment to read (default ``os.environ``).

    Yields:
        ``torch.device("cuda", i)`` (``.index`` is the claimed index) or ``torch.device("cpu")``.
    """
    env = os.environ if environ is None else environ
    if not prefer_cuda:
        logger.info("device: cpu (CUDA not requested)")
        yield torch.device("cpu")
        return
    count = torch.cuda.device_count() if n_devices is None else int(n_devices)
    visible = env.get("CUDA_VISIBLE_DEVICES")
    if count <= 0:
        if visible is not None:
            logger.warning(
                "no CUDA device available although CUDA_VISIBLE_DEVICES=%s (assigned by %s): "
                "running on the CPU (much slower)",
                visible,
                _scheduler_note(env),
            )
        else:
            logger.warning("no CUDA device available: running on the CPU (much slower)")
        yield torch.device("cpu")
        return
    if visible is not None and env.get(LOCK_VISIBLE_ENV, "") not in ("1", "true", "yes"):
        logger.info(
            "device: cuda:0 of CUDA_VISIBLE_DEVICES=%s (assigned by %s, no lock)",
            visible,
            _scheduler_note(env),
        )
        yield torch.device("cuda", 0)
        return
    lock_dir = Path(lock_dir)
    index, fd = _claim_free_index(lock_dir, count, timeout_s, poll_s)
    logger.info("device: cuda:%d (claimed %s)", index, lock_path(lock_dir, index))
    try:
        yield torch.device("cuda", index)
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
        logger.info("released cuda:%d", index)


def run_with_oom_retry(
    run: Callable[[int, int], T], n_items: int, batch_size: int, what: str
) -> Iterator[tuple[int, int, T]]:
    """Yield ``(start, stop, run(start, stop))`` over ``range(n_items)`` in batches.

    A ``torch.cuda.OutOfMemoryError`` retries the same batch at half its size (and later batches
    keep the smaller size); at size 1 the error is raised.
    """
    start, size = 0, max(1, int(batch_size))
    while start < n_items:
        stop = min(start + size, n_items)
        try:
            result = run(start, stop)
        except torch.cuda.OutOfMemoryError:
            if stop - start <= 1:
                logger.error("out of device memory on a %s batch of 1: giving up", what)
                raise
            size = max(1, (stop - start) // 2)
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            logger.warning(
                "out of device memory on a %s batch of %d: retrying at %d",
                what,
                stop - start,
                size,
            )
            continue
        yield start, stop, result
        start = stop
