"""Kill and resume at the workflow level (issue 8.5): SIGKILL a running proposals job, then the
whole Snakemake process group during training; rerunning completes with the outputs of an
uninterrupted run (proposals bit for bit, training the same loss curve and weights)."""

from __future__ import annotations

import copy
import csv
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from test_workflow import CPU_ONLY, SMALL_DEMO, planned_jobs, snakemake, snakemake_command

pytestmark = pytest.mark.slow

TARGET = "results/demo/models/rosa/checkpoint.pt"
RUN = Path("results/demo")
CONFIG = copy.deepcopy(SMALL_DEMO)
CONFIG["shards"]["clips_per_shard"] = 10  # one shard: fewer jobs, same kills
CONFIG["rosa"]["train"].update(  # 6 train clips, batch 2: 3 steps an epoch, 300 steps
    epochs=100, checkpoint_every=5, log_every=5, val_every=50, restarts=1
)
CONFIG["rosa"]["variants"] = {"rosa": {}}
CONFIG["evaluate"]["methods"] = ["rosa"]
VOLATILE_LOG_COLUMNS = {"clips_per_s"}  # wall-clock throughput


def wait_for(condition: Callable[[], bool], process: subprocess.Popen, what: str) -> None:
    """Poll ``condition`` every 10 ms until it holds; fail if ``process`` ends first."""
    deadline = time.monotonic() + 600
    while not condition():
        if process.poll() is not None:
            out = process.stdout.read() if process.stdout else ""
            pytest.fail(f"snakemake ended (rc {process.returncode}) before {what}:\n{out[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.01)


def descendants(pid: int) -> list[int]:
    """Process ids of every descendant of ``pid`` (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def holds_open(pid: int, path: Path) -> bool:
    """Whether process ``pid`` has ``path`` open (a job's process holds its log file)."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == str(path):
                return True
        except OSError:
            continue
    return False


def start(workdir: Path, *args: str) -> subprocess.Popen:
    """Snakemake in its own process group (so the test can kill the whole group)."""
    command = snakemake_command(workdir, *args, config=CONFIG)
    return subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        env=CPU_ONLY,
    )


def log_columns(path: Path) -> list[dict[str, str]]:
    """The rows of a train_log.csv without the wall-clock columns."""
    with open(path, newline="") as handle:
        return [
            {k: v for k, v in row.items() if k not in VOLATILE_LOG_COLUMNS}
            for row in csv.DictReader(handle)
        ]


def tables(folder: Path) -> dict[str, bytes]:
    """File name -> bytes of the stage's Parquet outputs (hidden temporary files excluded)."""
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.parquet"))}


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted run to the trained checkpoint."""
    workdir = tmp_path_factory.mktemp("uninterrupted")
    result = snakemake(workdir, TARGET, config=CONFIG)
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir / RUN


@pytest.fixture(scope="module")
def killed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """The same run, killed twice and resumed; returns what was seen after each kill."""
    workdir = tmp_path_factory.mktemp("killed")
    run = workdir / RUN
    seen: dict[str, object] = {"run": run}

    # 1. SIGKILL the proposals job of shard s00000 while it runs (Snakemake itself survives).
    log = run / "logs/proposals/s00000.log"
    process = start(workdir, TARGET)
    wait_for(lambda: log.exists() and "start proposals" in log.read_text(), process, "proposals")
    jobs = [pid for pid in descendants(process.pid) if holds_open(pid, log)]
    assert jobs, "found no process of the running proposals job"
    for pid in jobs:
        os.kill(pid, signal.SIGKILL)
    out, _ = process.communicate(timeout=600)
    seen["first_rc"] = process.returncode
    folder = run / "proposals"
    seen["proposals_after_kill"] = (
        sorted(p.name for p in folder.iterdir()) if folder.exists() else []
    )
    seen["first_output"] = out

    # 2. Rerun; SIGKILL the whole process group once training has written last.pt.
    process = start(workdir, TARGET)
    last = run / "models/rosa/last.pt"
    wait_for(last.exists, process, "last.pt")
    os.killpg(process.pid, signal.SIGKILL)
    process.communicate(timeout=60)
    seen["checkpoint_after_kill"] = (run / "models/rosa/checkpoint.pt").exists()
    seen["train_log_after_kill"] = (run / "models/rosa/train_log.csv").exists()
    state = torch.load(last, weights_only=False)  # what the rerun resumes from
    seen["resumed_step"], seen["log_at_kill"] = int(state["step"]), state["log"]

    # 3. A killed Snakemake leaves its lock: unlock, then rerun (as profiles/local does).
    unlock = snakemake(workdir, "--unlock", config=CONFIG)
    assert unlock.returncode == 0, unlock.stderr[-3000:]
    seen["planned"] = planned_jobs(
        snakemake(workdir, TARGET, "-n", "--rerun-incomplete", config=CONFIG)
    )
    final = snakemake(workdir, TARGET, "--rerun-incomplete", config=CONFIG)
    assert final.returncode == 0, final.stderr[-3000:]
    seen["train_log"] = (run / "logs/train/rosa.log").read_text()
    return seen


def test_killed_proposals_job_leaves_no_finished_looking_file(killed: dict) -> None:
    assert killed["first_rc"] != 0
    assert "Error in rule proposals_shard" in killed["first_output"], killed["first_output"][-2000:]
    assert "s00000.parquet" not in killed["proposals_after_kill"]
    # A temporary file of the killed job, if any, is hidden: '.s00000.parquet.<random>.tmp'.
    for name in killed["proposals_after_kill"]:
        assert name.startswith(".") and name.endswith(".tmp"), name


def test_killed_training_is_rerun_and_resumes(killed: dict) -> None:
    # Neither declared output looks finished after the kill (the log rows wait in last.pt).
    assert not killed["checkpoint_after_kill"] and not killed["train_log_after_kill"]
    assert killed["planned"].get("train") == 1
    assert 0 < killed["resumed_step"] < 300
    assert "resumed from results/demo/models/rosa/last.pt" in killed["train_log"]


def test_resumed_outputs_equal_an_uninterrupted_run(reference: Path, killed: dict) -> None:
    run: Path = killed["run"]
    for stage in ("frames", "proposals", "features", "skipped/proposals"):
        ours, theirs = tables(run / stage), tables(reference / stage)
        assert sorted(ours) == sorted(theirs)
        different = [name for name in ours if ours[name] != theirs[name]]
        assert not different, f"{stage}: files differ from the uninterrupted run: {different}"
    curve = log_columns(run / "models/rosa/train_log.csv")
    assert curve == log_columns(reference / "models/rosa/train_log.csv")
    at_kill = [
        {k: "" if row.get(k) is None else str(row[k]) for k in curve[0]}
        for row in killed["log_at_kill"]
    ]
    assert at_kill and curve[: len(at_kill)] == at_kill
    ours = torch.load(run / "models/rosa/checkpoint.pt", weights_only=False)
    theirs = torch.load(reference / "models/rosa/checkpoint.pt", weights_only=False)
    assert ours["model"].keys() == theirs["model"].keys()
    for name, tensor in ours["model"].items():
        assert torch.equal(tensor, theirs["model"][name]), name
    # Checkpoints are saved without their temporary file's name: equal content, equal bytes.
    checkpoint = "models/rosa/checkpoint.pt"
    assert (run / checkpoint).read_bytes() == (reference / checkpoint).read_bytes()
