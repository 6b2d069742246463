"""Which accelerators a job uses: per-device lock file claims, or the scheduler's choice.

Snakemake counts GPUs (``resources: gpu=N``) but does not say which ones a job gets, so each GPU
job claims its devices itself (DESIGN §6; ``docs/devices.md`` describes every setting). The rule
implemented by :func:`claim_devices` (and :func:`claim_device`, one device):

1. ``prefer_cuda=False`` or no CUDA device → the CPU (a WARNING when CUDA was wanted).
2. The *visible* devices are ``cuda:0..n-1`` of the process. Each has a machine-wide id that names
   its lock file ``<lock_dir>/gpu<id>.lock``: the physical index ``i`` without
   ``CUDA_VISIBLE_DEVICES``; with it, entry ``i`` of the variable, or entry ``i`` of
   ``SLURM_STEP_GPUS``/``SLURM_JOB_GPUS`` inside a SLURM job (SLURM may renumber the visible
   devices from 0 in each job's cgroup; its lists hold the physical indices).
3. ``CUDA_VISIBLE_DEVICES`` lists exactly one device (a scheduler such as SLURM gave the job its
   GPU) → that device, without a lock, unless ``NVOS_LOCK_VISIBLE_DEVICES=1`` asks to lock it.
4. Otherwise the job takes exclusive non-blocking ``flock``\\ s on the lock files of the first
   ``count`` free visible devices; all or nothing: a job that cannot get ``count`` devices holds
   none and polls (with one log message) until they are free, up to ``timeout_s``. The locks are
   released when the context exits, and by the operating system when the process dies.

The lock folder is per machine, not per run, so two runs of the workflow on one machine exclude
each other: the ``lock_dir`` argument, else ``$NVOS_GPU_LOCK_DIR``, else
``<tmp>/nvos-gpu-locks``. The log names each claimed device's visible index, its machine-wide id
and, inside a SLURM job, the job.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import re
import socket
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from nvos.types import PathLike

logger = logging.getLogger(__name__)

__all__ = [
    "LOCK_DIR_ENV",
    "LOCK_VISIBLE_ENV",
    "Claim",
    "claim_device",
    "claim_devices",
    "lock_path",
    "resolve_lock_dir",
    "visible_ids",
]

#: Environment variable that forces a lock on a single visible device.
LOCK_VISIBLE_ENV = "NVOS_LOCK_VISIBLE_DEVICES"
#: Environment variable naming the machine's lock folder (when no lock_dir is given).
LOCK_DIR_ENV = "NVOS_GPU_LOCK_DIR"


def resolve_lock_dir(lock_dir: PathLike | None, environ: Mapping[str, str] | None = None) -> Path:
    """``lock_dir``, else ``$NVOS_GPU_LOCK_DIR``, else ``<tmp>/nvos-gpu-locks`` (tempfile)."""
    env = os.environ if environ is None else environ
    if lock_dir is not None and str(lock_dir):
        return Path(lock_dir)
    if env.get(LOCK_DIR_ENV):
        return Path(env[LOCK_DIR_ENV])
    return Path(tempfile.gettempdir()) / "nvos-gpu-locks"


def lock_path(lock_dir: PathLike, device_id: int | str) -> Path:
    """The lock file of the device with machine-wide id ``device_id``: ``<lock_dir>/gpu<id>.lock``
    (characters other than letters, digits, ``.``, ``_`` and ``-`` become ``_``)."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", str(device_id))
    return Path(lock_dir) / f"gpu{safe}.lock"


def _slurm_gpus(env: Mapping[str, str]) -> tuple[str, list[str]] | None:
    """(variable name, ids) of SLURM's list of the job's (or step's) physical GPUs, if any."""
    if "SLURM_JOB_ID" not in env:
        return None
    for name in ("SLURM_STEP_GPUS", "SLURM_JOB_GPUS"):
        if env.get(name):
            return name, [p.strip() for p in env[name].split(",") if p.strip()]
    return None


def visible_ids(count: int, environ: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """(CUDA_VISIBLE_DEVICES entries, machine-wide ids) of visible devices ``0..count-1``.

    The entries are what a child process's ``CUDA_VISIBLE_DEVICES`` lists to see those devices;
    the machine-wide ids name the lock files (rule 2 of the module docstring).
    """
    visible = environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        entries = [str(i) for i in range(count)]
    else:
        entries = [p.strip() for p in visible.split(",") if p.strip()][:count]
    physical = list(entries)
    slurm = _slurm_gpus(environ)
    if visible is not None and slurm is not None and len(slurm[1]) == len(entries):
        physical = slurm[1]
    return entries, physical


def _scheduler_note(env: Mapping[str, str]) -> str:
    """Who set CUDA_VISIBLE_DEVICES: ``"SLURM job 12, SLURM_STEP_GPUS=1"`` inside a SLURM job,
    ``"the environment"`` elsewhere."""
    job = env.get("SLURM_JOB_ID")
    if job is None:
        return "the environment"
    slurm = _slurm_gpus(env)
    if slurm is not None:
        return f"SLURM job {job}, {slurm[0]}={env[slurm[0]]}"
    return f"SLURM job {job}"


@dataclass(frozen=True)
class Claim:
    """Devices held by a job: ``devices[i]`` is ``cuda:<visible index>`` (or the CPU),
    ``visible[i]`` its CUDA_VISIBLE_DEVICES entry and ``physical[i]`` its machine-wide id."""

    devices: tuple[torch.device, ...]
    visible: tuple[str, ...] = ()
    physical: tuple[str, ...] = ()

    @property
    def device(self) -> torch.device:
        """The first (or only) device."""
        return self.devices[0]

    def child_visible_devices(self) -> str:
        """``CUDA_VISIBLE_DEVICES`` for a child process that should see exactly these devices
        (as its ``cuda:0..n-1``)."""
        return ",".join(self.visible)


def _try_lock(path: Path) -> int | None:
    """An open descriptor holding an exclusive flock on ``path``, or None if another holds it."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        writable = True
    except PermissionError:  # created by another user without group/other write: flock anyway
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError as exc:
            raise OSError(
                exc.errno,
                f"cannot open device lock file {path}: {exc.strerror}; set {LOCK_DIR_ENV} "
                "(or the config's gpu_lock_dir) to a folder every user of the GPUs can write",
            ) from exc
        writable = False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return None
        raise OSError(exc.errno, f"cannot lock device file {path}: {exc.strerror}") from exc
    if writable:
        with contextlib.suppress(OSError):  # let other users' jobs lock it too
            os.fchmod(fd, 0o666)
        # Record the holder for people inspecting the folder; the lock itself is the flock.
        os.ftruncate(fd, 0)
        holder = f"pid={os.getpid()} host={socket.gethostname()} since={time.time():.0f}\n"
        os.write(fd, holder.encode())
    return fd


def _release(fds: list[int]) -> None:
    for fd in fds:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _make_lock_dir(lock_dir: Path) -> None:
    """Create the machine's lock folder, writable by every user (sticky, like /tmp)."""
    if lock_dir.is_dir():
        return
    lock_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        os.chmod(lock_dir, 0o1777)


def _claim_free(
    lock_dir: Path, ids: list[str], count: int, timeout_s: float, poll_s: float
) -> tuple[list[int], list[int]]:
    """(visible indices, lock descriptors) of the first ``count`` free devices, all or none;
    polls while fewer are free."""
    _make_lock_dir(lock_dir)
    start = time.monotonic()
    announced = False
    while True:
        indices: list[int] = []
        fds: list[int] = []
        for index, device_id in enumerate(ids):
            fd = _try_lock(lock_path(lock_dir, device_id))
            if fd is not None:
                indices.append(index)
                fds.append(fd)
                if len(fds) == count:
                    if announced:
                        waited = time.monotonic() - start
                        logger.info("devices freed after waiting %.1f s", waited)
                    return indices, fds
        _release(fds)  # all or nothing: never hold some devices while waiting for others
        waited = time.monotonic() - start
        if count == 1:
            what = f"all {len(ids)} GPU(s) stayed claimed by other jobs"
        else:
            what = f"fewer than {count} of the {len(ids)} GPU(s) were free of other jobs' claims"
        where = f"GPU ids {','.join(ids)}, lock files {lock_dir}/gpu*.lock"
        if waited >= timeout_s:
            raise TimeoutError(
                f"{what} for {waited:.0f} s ({where}); give fewer jobs GPUs (snakemake "
                f"--resources gpu=N with N <= {len(ids)}) or raise the timeout"
            )
        if not announced:
            logger.warning("%s (%s): waiting up to %.0f s", what, where, timeout_s)
            announced = True
        time.sleep(poll_s)


@contextlib.contextmanager
def claim_devices(
    lock_dir: PathLike | None,
    count: int = 1,
    prefer_cuda: bool = True,
    n_devices: int | None = None,
    timeout_s: float = 24 * 3600.0,
    poll_s: float = 2.0,
    environ: Mapping[str, str] | None = None,
) -> Iterator[Claim]:
    """Claim ``count`` devices for the duration of the ``with`` block (rules in the module
    docstring); fewer (with a WARNING) when fewer are visible.

    Args:
        lock_dir: Folder of the per-device lock files, shared by every job of the machine
            (created if missing); None = :func:`resolve_lock_dir`'s default.
        count: Devices wanted (``rosa.train.gpus`` for multi-GPU training).
        prefer_cuda: False → CPU without looking at GPUs.
        n_devices: Number of visible devices; None = ``torch.cuda.device_count()``. Tests pass a
            number to fake devices (the yielded ``cuda:<i>`` are then never used).
        timeout_s: How long to wait for free devices before raising TimeoutError.
        poll_s: Seconds between attempts while too few devices are free.
        environ: Environment to read (default ``os.environ``).
    """
    env = os.environ if environ is None else environ
    if not prefer_cuda:
        logger.info("device: cpu (CUDA not requested)")
        yield Claim((torch.device("cpu"),))
        return
    available = torch.cuda.device_count() if n_devices is None else int(n_devices)
    visible = env.get("CUDA_VISIBLE_DEVICES")
    if available <= 0:
        where = "" if visible is None else f" although CUDA_VISIBLE_DEVICES={visible} "
        where += "" if visible is None else f"(assigned by {_scheduler_note(env)})"
        logger.warning("no CUDA device available%s: running on the CPU (much slower)", where)
        yield Claim((torch.device("cpu"),))
        return
    entries, physical = visible_ids(available, env)
    if count > len(entries):
        logger.warning(
            "%d GPU(s) wanted but %d visible: using %d", count, len(entries), len(entries)
        )
        count = len(entries)
    forced = env.get(LOCK_VISIBLE_ENV, "") in ("1", "true", "yes")
    if visible is not None and len(entries) == 1 and not forced:
        logger.info(
            "device: cuda:0 = the only visible GPU (CUDA_VISIBLE_DEVICES=%s, physical %s, "
            "assigned by %s; no lock)",
            visible,
            physical[0],
            _scheduler_note(env),
        )
        yield Claim((torch.device("cuda", 0),), (entries[0],), (physical[0],))
        return
    folder = resolve_lock_dir(lock_dir, env)
    indices, fds = _claim_free(folder, physical, max(count, 1), timeout_s, poll_s)
    claim = Claim(
        tuple(torch.device("cuda", i) for i in indices),
        tuple(entries[i] for i in indices),
        tuple(physical[i] for i in indices),
    )
    for i in indices:
        logger.info(
            "device: cuda:%d = CUDA_VISIBLE_DEVICES entry %s, physical GPU %s (claimed %s%s)",
            i,
            entries[i] if visible is not None else "- (unset)",
            physical[i],
            lock_path(folder, physical[i]),
            "" if "SLURM_JOB_ID" not in env else f"; {_scheduler_note(env)}",
        )
    try:
        yield claim
    finally:
        _release(fds)
        logger.info("released %s", ", ".join(str(d) for d in claim.devices))


@contextlib.contextmanager
def claim_device(
    lock_dir: PathLike | None,
    prefer_cuda: bool = True,
    n_devices: int | None = None,
    timeout_s: float = 24 * 3600.0,
    poll_s: float = 2.0,
    environ: Mapping[str, str] | None = None,
) -> Iterator[torch.device]:
    """One device for the ``with`` block (:func:`claim_devices` with ``count=1``).

    Yields:
        ``torch.device("cuda", i)`` (``.index`` is the visible index) or ``torch.device("cpu")``.
    """
    with claim_devices(lock_dir, 1, prefer_cuda, n_devices, timeout_s, poll_s, environ) as claim:
        yield claim.device
