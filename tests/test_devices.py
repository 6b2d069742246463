"""Lock-based device claims across processes, with fake devices (no GPU needed)."""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from nvos.devices import (
    LOCK_DIR_ENV,
    LOCK_VISIBLE_ENV,
    claim_device,
    claim_devices,
    lock_path,
    resolve_lock_dir,
    visible_ids,
)

CTX = mp.get_context("fork")
NO_SCHEDULER: dict[str, str] = {}  # an environment without CUDA_VISIBLE_DEVICES


class Release:
    """A release signal as a file: unlike an mp.Event it survives a SIGKILLed waiter."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def set(self) -> None:
        self.path.touch()

    def wait(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not self.path.exists() and time.monotonic() < deadline:
            time.sleep(0.02)


class Results:
    """What each child claimed, one file per child.

    A shared mp.Queue is not used: a child SIGKILLed while its feeder thread holds the queue's
    lock would block every later child.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir()
        self.seen: set[Path] = set()

    def put(self, item: tuple[int, str]) -> None:
        tmp = self.folder / f".{item[0]}"
        tmp.write_text(item[1])
        tmp.rename(self.folder / str(item[0]))

    def get(self, timeout: float) -> tuple[int, str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            new = sorted(
                p for p in self.folder.iterdir() if p not in self.seen and p.name[0] != "."
            )
            if new:
                self.seen.add(new[0])
                return int(new[0].name), new[0].read_text()
            time.sleep(0.02)
        raise TimeoutError(f"no child reported within {timeout} s")


def _holder(
    lock_dir: str | None,
    n_devices: int,
    environ: dict[str, str],
    out: Results,
    release: Release,
    timeout_s: float,
) -> None:
    """Child process: claim a device, report it, hold it until ``release`` is set."""
    try:
        with claim_device(
            lock_dir, n_devices=n_devices, timeout_s=timeout_s, poll_s=0.02, environ=environ
        ) as device:
            out.put((os.getpid(), str(device)))
            release.wait(60)
    except TimeoutError as exc:
        out.put((os.getpid(), f"timeout: {exc}"))


def _start(
    lock_dir: Path | None,
    n_devices: int,
    environ: dict[str, str],
    out: Results,
    release: Release,
    timeout_s: float = 10.0,
) -> Any:
    proc = CTX.Process(
        target=_holder,
        args=(lock_dir and str(lock_dir), n_devices, environ, out, release, timeout_s),
    )
    proc.start()
    return proc


def _stop(procs: list[Any], release: Release) -> None:
    release.set()
    for proc in procs:
        proc.join(10)
        if proc.is_alive():
            proc.kill()
            proc.join()


def test_concurrent_claims_get_distinct_devices_and_extra_job_waits(tmp_path: Path) -> None:
    out, release = Results(tmp_path / "results"), Release(tmp_path / "release")
    procs = [_start(tmp_path, 3, NO_SCHEDULER, out, release) for _ in range(3)]
    try:
        claimed = sorted(out.get(timeout=60)[1] for _ in procs)
        assert claimed == ["cuda:0", "cuda:1", "cuda:2"]
        # A fourth job finds every device held: it waits, then times out with a clear message.
        extra = _start(tmp_path, 3, NO_SCHEDULER, out, release, timeout_s=0.3)
        _, result = out.get(timeout=60)
        assert result.startswith("timeout: all 3 GPU(s) stayed claimed")
        extra.join(10)
    finally:
        _stop(procs, release)


def test_sigkilled_holder_frees_its_device(tmp_path: Path) -> None:
    out, release = Results(tmp_path / "results"), Release(tmp_path / "release")
    procs = [_start(tmp_path, 2, NO_SCHEDULER, out, release) for _ in range(2)]
    try:
        held = dict(out.get(timeout=60) for _ in procs)
        victim = next(pid for pid, dev in held.items() if dev == "cuda:1")
        os.kill(victim, signal.SIGKILL)
        # The new job is started after the kill; its claim must get the freed device.
        newcomer = _start(tmp_path, 2, NO_SCHEDULER, out, release)
        procs.append(newcomer)
        pid, device = out.get(timeout=60)
        assert pid == newcomer.pid
        assert device == "cuda:1"
    finally:
        _stop(procs, release)


def test_waiting_job_gets_device_when_holder_exits(tmp_path: Path) -> None:
    out = Results(tmp_path / "results")
    release_first, release_rest = Release(tmp_path / "first"), Release(tmp_path / "rest")
    first = _start(tmp_path, 1, NO_SCHEDULER, out, release_first)
    procs = [first]
    try:
        assert out.get(timeout=60)[1] == "cuda:0"
        waiter = _start(tmp_path, 1, NO_SCHEDULER, out, release_rest, timeout_s=20)
        procs.append(waiter)
        release_first.set()
        pid, device = out.get(timeout=60)
        assert (pid, device) == (waiter.pid, "cuda:0")
    finally:
        release_first.set()
        _stop(procs, release_rest)


def test_claim_released_on_exit_in_process(tmp_path: Path) -> None:
    with claim_device(tmp_path, n_devices=2, environ=NO_SCHEDULER) as dev:
        assert dev == torch.device("cuda", 0)
        with claim_device(tmp_path, n_devices=2, environ=NO_SCHEDULER) as dev2:
            assert dev2 == torch.device("cuda", 1)
    with claim_device(tmp_path, n_devices=2, environ=NO_SCHEDULER) as dev3:
        assert dev3.index == 0
    assert "pid=" in lock_path(tmp_path, 0).read_text()


def test_cuda_visible_devices_respected_without_lock(tmp_path: Path) -> None:
    out, release = Results(tmp_path / "results"), Release(tmp_path / "release")
    # Another job holds the only device's lock ...
    procs = [_start(tmp_path, 1, NO_SCHEDULER, out, release)]
    try:
        assert out.get(timeout=60)[1] == "cuda:0"
        # ... yet a job whose scheduler set CUDA_VISIBLE_DEVICES gets cuda:0 at once, no lock.
        sched_dir = tmp_path / "sched"
        with claim_device(
            sched_dir, n_devices=1, timeout_s=0.1, environ={"CUDA_VISIBLE_DEVICES": "0"}
        ) as dev:
            assert dev == torch.device("cuda", 0)
        assert not sched_dir.exists()
        # With the override, the same job claims through the locks (and here must wait).
        env = {"CUDA_VISIBLE_DEVICES": "0", LOCK_VISIBLE_ENV: "1"}
        with pytest.raises(TimeoutError, match="stayed claimed"):
            with claim_device(tmp_path, n_devices=1, timeout_s=0.1, poll_s=0.02, environ=env):
                pass
    finally:
        _stop(procs, release)


def test_no_cuda_falls_back_to_cpu_with_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="nvos.devices"):
        with claim_device(tmp_path, n_devices=0, environ=NO_SCHEDULER) as dev:
            assert dev == torch.device("cpu")
    assert any("no CUDA device" in r.getMessage() for r in caplog.records)
    with claim_device(tmp_path, prefer_cuda=False, n_devices=4, environ=NO_SCHEDULER) as dev:
        assert dev.type == "cpu"
    assert not lock_path(tmp_path, 0).exists()


# ------------------------------------------------------------- CUDA_VISIBLE_DEVICES and SLURM


def test_several_visible_devices_two_runs_get_distinct_devices(tmp_path: Path) -> None:
    """CUDA_VISIBLE_DEVICES=0,1,2,3 exported, two runs of the workflow (no lock_dir given: the
    machine's folder) each with two concurrent GPU jobs: four distinct devices, a fifth job
    waits. (Before, every such job got cuda:0 without a lock.)"""
    out, release = Results(tmp_path / "results"), Release(tmp_path / "release")
    machine = {"CUDA_VISIBLE_DEVICES": "0,1,2,3", LOCK_DIR_ENV: str(tmp_path / "machine")}
    procs = [_start(None, 4, machine, out, release) for _run in ("a", "b") for _job in (0, 1)]
    try:
        claimed = sorted(out.get(timeout=60)[1] for _ in procs)
        assert claimed == ["cuda:0", "cuda:1", "cuda:2", "cuda:3"]
        assert sorted(p.name for p in (tmp_path / "machine").iterdir()) == [
            f"gpu{i}.lock" for i in range(4)
        ]
        extra = _start(None, 4, machine, out, release, timeout_s=0.3)
        assert out.get(timeout=60)[1].startswith("timeout: all 4 GPU(s) stayed claimed")
        extra.join(10)
    finally:
        _stop(procs, release)


def test_visible_entries_name_the_physical_devices(tmp_path: Path) -> None:
    """A job seeing GPUs 2,3 as cuda:0,1 and a job seeing all GPUs lock the same files."""
    with claim_device(tmp_path, n_devices=4, environ=NO_SCHEDULER) as a:
        with claim_device(tmp_path, n_devices=4, environ=NO_SCHEDULER) as b:
            with claim_device(tmp_path, n_devices=4, environ=NO_SCHEDULER) as c:
                assert [a.index, b.index, c.index] == [0, 1, 2]
                env = {"CUDA_VISIBLE_DEVICES": "2,3"}
                with claim_device(tmp_path, n_devices=2, environ=env, timeout_s=1) as d:
                    assert d == torch.device("cuda", 1)  # visible 1 = GPU 3; GPU 2 is c's
    assert visible_ids(2, {"CUDA_VISIBLE_DEVICES": "GPU-ab:12, 5,"}) == (["GPU-ab:12", "5"],) * 2
    assert lock_path(tmp_path, "GPU-ab:12").name == "gpuGPU-ab_12.lock"


def test_slurm_jobs_renumbered_from_zero_lock_their_physical_gpus(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Two SLURM allocations on one node each see CUDA_VISIBLE_DEVICES=0,1 (cgroups renumber);
    SLURM_JOB_GPUS holds the physical ids, so they do not exclude each other."""
    job = {"CUDA_VISIBLE_DEVICES": "0,1", "SLURM_JOB_ID": "11", "SLURM_JOB_GPUS": "4,5"}
    other = {"CUDA_VISIBLE_DEVICES": "0,1", "SLURM_JOB_ID": "12", "SLURM_JOB_GPUS": "6,7"}
    with caplog.at_level(logging.INFO, logger="nvos.devices"):
        with claim_devices(tmp_path, 2, n_devices=2, environ=job, timeout_s=0.1) as mine:
            with claim_devices(tmp_path, 2, n_devices=2, environ=other, timeout_s=0.1) as theirs:
                assert mine.physical == ("4", "5") and theirs.physical == ("6", "7")
                assert [str(d) for d in theirs.devices] == ["cuda:0", "cuda:1"]
                assert theirs.child_visible_devices() == "0,1"
    assert any("cuda:1 = CUDA_VISIBLE_DEVICES entry 1, physical GPU 5" in r.getMessage()
               for r in caplog.records)  # fmt: skip
    # One visible device (the usual SLURM job): used without a lock.
    one = {"CUDA_VISIBLE_DEVICES": "0", "SLURM_JOB_ID": "13", "SLURM_STEP_GPUS": "4"}
    with claim_devices(tmp_path / "unused", 1, n_devices=1, environ=one) as claim:
        assert claim.devices == (torch.device("cuda", 0),) and claim.physical == ("4",)
    assert not (tmp_path / "unused").exists()


def test_several_devices_are_claimed_all_or_nothing(tmp_path: Path) -> None:
    with claim_device(tmp_path, n_devices=3, environ=NO_SCHEDULER) as held:
        assert held.index == 0
        with claim_devices(tmp_path, 2, n_devices=3, environ=NO_SCHEDULER) as two:
            assert [d.index for d in two.devices] == [1, 2]
            assert two.child_visible_devices() == "1,2"
        with claim_device(tmp_path, n_devices=3, environ=NO_SCHEDULER) as one:
            assert one.index == 1
            # Only GPU 2 is free: a claim of two waits holding nothing, then gives up.
            with pytest.raises(TimeoutError, match="fewer than 2 of the 3 GPU"):
                with claim_devices(
                    tmp_path, 2, n_devices=3, timeout_s=0.1, poll_s=0.02, environ=NO_SCHEDULER
                ):
                    pass
            with claim_device(tmp_path, n_devices=3, timeout_s=0.1, environ=NO_SCHEDULER) as last:
                assert last.index == 2
    # More wanted than visible: all that are visible, with a warning.
    with claim_devices(tmp_path, 4, n_devices=2, environ=NO_SCHEDULER) as claim:
        assert len(claim.devices) == 2


def test_lock_folder_is_per_machine_unless_given(tmp_path: Path) -> None:
    assert resolve_lock_dir(tmp_path / "given", {LOCK_DIR_ENV: "/x"}) == tmp_path / "given"
    assert resolve_lock_dir(None, {LOCK_DIR_ENV: "/x"}) == Path("/x")
    assert resolve_lock_dir(None, {}).name == "nvos-gpu-locks"
