"""GPU assignment under Snakemake (issue 8.3): with ``--resources gpu=N`` and N fake devices,
concurrent GPU jobs hold distinct devices through :func:`nvos.devices.claim_device` (all N listed
in ``CUDA_VISIBLE_DEVICES``, as when it is exported in the shell) and never wait
on each other's lock, also after one job is killed with SIGKILL while it holds a device.

Each job of a small Snakefile claims a device exactly as the pipeline's GPU rules do (lock files
in one folder; ``n_devices`` fakes N CUDA devices on a CPU machine, the claimed index is only
recorded), records when it asked, got and gave back its device and whether it had to wait, and
holds it for a moment. One job holds its device until the test kills it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow

DEVICES = 3
JOBS = 7
HOLD_S = 2.0

SNAKEFILE = """
rule all:
    input:
        expand("done/{i}.txt", i=range(config["jobs"])),

rule gpu_job:
    output:
        "done/{i}.txt",
    params:
        python=config["python"],
        job=config["job"],
        devices=config["devices"],
        hold=config["hold"],
    resources:
        gpu=1,
    shell:
        "{params.python} {params.job} {wildcards.i} {params.devices} {params.hold} {output}"
"""

JOB = """
import json, logging, os, sys, time
from pathlib import Path

from nvos.devices import claim_device

index, devices, hold, out = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
warnings = []


class Recorder(logging.Handler):
    def emit(self, record):
        if record.levelno >= logging.WARNING:
            warnings.append(record.getMessage())


log = logging.getLogger("nvos.devices")
log.addHandler(Recorder())
log.setLevel(logging.INFO)
records = Path("records")
records.mkdir(exist_ok=True)


def write(name, record):
    tmp = records / f".{name}.tmp"
    tmp.write_text(json.dumps(record))
    os.replace(tmp, records / name)


asked = time.time()
# Several devices listed in CUDA_VISIBLE_DEVICES (exported in the shell): claimed among them.
visible = {"CUDA_VISIBLE_DEVICES": ",".join(str(i) for i in range(devices))}
with claim_device(
    Path("locks"), n_devices=devices, timeout_s=60, poll_s=0.05, environ=visible
) as dev:
    record = {"job": index, "pid": os.getpid(), "device": dev.index, "asked": asked,
              "claimed": time.time(), "waited": bool(warnings)}
    write(f"{index}.claimed.json", record)
    victim = False
    if dev.index == 0:  # the first job on device 0 holds it until the test kills it
        try:
            os.close(os.open("victim", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            victim = True
        except FileExistsError:
            pass
    time.sleep(600 if victim else hold)
    record["released"] = time.time()
write(f"{index}.json", record)
Path(out).parent.mkdir(exist_ok=True)
Path(out).write_text("done\\n")
"""


def run_snakemake(workdir: Path) -> subprocess.Popen:
    config = {
        "jobs": JOBS,
        "devices": DEVICES,
        "hold": HOLD_S,
        "python": sys.executable,
        "job": str(workdir / "job.py"),
    }
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    command = [
        sys.executable, "-m", "snakemake", "-s", str(workdir / "Snakefile"), "-d", str(workdir),
        "--cores", str(DEVICES), "--resources", f"gpu={DEVICES}", "--keep-going",
        "--configfile", str(workdir / "config.yaml"),
    ]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def read_records(records: Path, suffix: str) -> list[dict]:
    """The job records ``<job><suffix>`` written so far."""
    found = []
    for path in records.glob(f"*{suffix}"):
        if path.name.removesuffix(suffix).isdigit():
            found.append(json.loads(path.read_text()))
    return found


def overlap(a: dict, b: dict) -> bool:
    return a["claimed"] < b["released"] and b["claimed"] < a["released"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict], dict, dict]:
    """(records of the first run, the killed job's record, its record in the rerun)."""
    workdir = tmp_path_factory.mktemp("gpus")
    (workdir / "Snakefile").write_text(SNAKEFILE)
    (workdir / "job.py").write_text(JOB)
    records = workdir / "records"
    process = run_snakemake(workdir)

    def held() -> list[dict]:
        released = {r["job"] for r in read_records(records, ".json")}
        return [r for r in read_records(records, ".claimed.json") if r["job"] not in released]

    # Kill the job holding device 0 (it holds it until killed) while every device is held.
    deadline = time.monotonic() + 300
    while not ((workdir / "victim").exists() and len(held()) == DEVICES):
        assert process.poll() is None, process.communicate()[0][-3000:]
        assert time.monotonic() < deadline, "the devices were never all held at once"
        time.sleep(0.02)
    victim = next(r for r in held() if r["device"] == 0)
    victim["released"] = time.time()  # the kernel drops its flock when the process dies
    os.kill(victim["pid"], signal.SIGKILL)
    output = process.communicate(timeout=600)[0]
    assert process.returncode != 0, "the killed job should have failed the first run"
    first = read_records(records, ".json")
    assert len(first) == JOBS - 1, output[-3000:]
    rerun = run_snakemake(workdir)
    output = rerun.communicate(timeout=600)[0]
    assert rerun.returncode == 0, output[-3000:]
    done = sorted(p.name for p in (workdir / "done").iterdir())
    assert done == sorted(f"{i}.txt" for i in range(JOBS))
    again = json.loads((records / f"{victim['job']}.json").read_text())
    return first, victim, again


def test_concurrent_jobs_hold_distinct_devices_and_never_wait(runs: tuple) -> None:
    first, victim, again = runs
    held = [*first, victim]
    for record in [*held, again]:
        assert 0 <= record["device"] < DEVICES
        assert not record["waited"], f"job {record['job']} waited for a device: {record}"
    for i, a in enumerate(held):
        for b in held[i + 1 :]:
            if overlap(a, b):
                assert a["device"] != b["device"], f"jobs {a['job']} and {b['job']} share a device"
    busiest = max(sum(r["claimed"] <= a["claimed"] < r["released"] for r in held) for a in held)
    assert busiest == DEVICES


def test_sigkilled_job_frees_its_device(runs: tuple) -> None:
    """Devices are claimed lowest index first: once the killed job's device 0 is free, the next
    claim takes it (without waiting)."""
    first, victim, _ = runs
    assert victim["device"] == 0
    later = [r for r in first if r["claimed"] > victim["released"]]
    assert later, "no job started after the kill"
    assert any(r["device"] == 0 for r in later), f"device 0 was never claimed again: {later}"
