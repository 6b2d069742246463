"""Real-SLURM integration test of profiles/slurm (not collected by pytest: it needs root + apt).

    sudo .venv/bin/python tests/slurm/integration.py [--workdir DIR] [--keep]

Steps (each failure ends the run with exit status 1 and the reason; SLURM daemons are stopped in
every case, also on Ctrl-C or SIGTERM):

1. ``tests/slurm/slurm-local.sh start``: installs munge + SLURM (+ MariaDB/slurmdbd for ``sacct``)
   from Debian's packages and starts a one-node cluster, partition ``debug``, 2 fake GPUs (gres).
2. Writes a test profile: ``profiles/slurm/config.yaml`` with only the cluster-specific values
   replaced (:func:`adapt_profile`), and runs the demo DAG of ``tests/slurm/demo.yaml`` in a scratch
   folder with ``snakemake --profile`` (targets ``all`` and ``segment``: the report and the segment
   stage, every clip's masks); at the same time runs the same DAG locally
   (``--profile profiles/local``) in another folder.
3. Checks the SLURM run (:func:`check_slurm_run`): every job of the DAG either ran locally (a
   ``localrules`` rule) or was submitted through ``sbatch``; grouped rules were submitted once
   per group; ``sacct`` reports every submitted job COMPLETED with exit code 0:0; the GPU rules
   (and only they) were submitted with ``--gpus``, got ``gres/gpu`` in ``sacct``'s AllocTRES, and
   their logs show the CUDA_VISIBLE_DEVICES that SLURM set for their job step; GPU jobs that ran
   at the same time had different devices.
4. Compares the outputs of both runs (:func:`compare_runs`).
5. Runs one job with ``slurm-status-command: squeue`` and a ``sacct`` that fails the way it does
   on a cluster without accounting, to check the profile's no-accounting status mode.
6. ``tests/slurm/slurm-local.sh stop``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import yaml

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
SLURM_LOCAL = HERE / "slurm-local.sh"
DEMO_LAYER = HERE / "demo.yaml"
TARGETS = ("all", "segment")  # the report's DAG and the segment stage (its own GPU rules)
PROFILE = REPO / "profiles" / "slurm" / "config.yaml"
LOCAL_PROFILE = REPO / "profiles" / "local"
RUN_SUBDIR = Path("results") / "demo"  # results_dir/run of config.yaml (demo.yaml keeps both)

#: The rules that must get a GPU from SLURM (DESIGN §3: the rules declaring ``resources: gpu``).
GPU_RULES = {
    "proposals_shard", "features_shard", "sam_clip_shard", "train", "predict_shard",
    "grounded_sam_shard", "sam3_shard", "segment_text_shard", "segment_predict_shard",
    "segment_sam_clip_shard", "segment_grounded_sam_shard", "segment_sam3_shard",
}  # fmt: skip
#: Values the test cluster needs instead of the profile's cluster-specific ones (see adapt_profile).
TEST_PARTITION = "debug"
TEST_MEM_MB = "1500 * attempt"
TEST_TOP_LEVEL = {
    "jobs": 4,
    "cores": 2,  # the test node's CPUs: also the size limit of a group job
    "latency-wait": 5,
    "slurm-init-seconds-before-status-checks": 5,
}
#: Output folders not compared between the runs: per-job logs, timings and GPU lock files.
UNCOMPARED_DIRS = ("logs", "benchmarks", "locks")
#: Keys / columns holding wall-clock measurements (differ between any two runs).
TIMING_NAME = re.compile(r"seconds|_per_s$")
#: The report header's build date (report/table.md, report/index.html): when the run finished.
REPORT_DATE = re.compile(rb"\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC")
#: Provenance keys holding file hashes (the hashed files themselves are compared).
HASH_NAME = re.compile(r"_sha256$")

SUBMITTED = re.compile(r"^Job (\S+) has been submitted with SLURM jobid (\d+) \(log: (.+)\)\.$")
SBATCH_CALL = re.compile(r"^sbatch call: (sbatch .*)$")
RUN_ID = re.compile(r"SLURM run ID: (\S+)")
LOCAL_JOB = re.compile(r"^localrule (\w+):$")
DEVICE_LINE = re.compile(  # the CPU fallback's line and the one-visible-GPU line of nvos.devices
    r"CUDA_VISIBLE_DEVICES=(?P<visible>[^\s,)]+)(?:, physical \S+,| \() ?assigned by SLURM job "
    r"(?P<job>\d+), SLURM_(?:STEP|JOB)_GPUS=(?P<gpus>[\d,]+)(?:\)|; no lock\))"
)
USED_DEVICE = re.compile(r"device: cuda:0 = the only visible GPU|running on the CPU")


class IntegrationError(RuntimeError):
    """A step of the integration test failed; the message says which and why."""


@dataclass
class Submission:
    """One ``sbatch`` of the SLURM run: its job id, Snakemake jobs and submit command."""

    slurm_id: int
    target_jobs: list[str]  # "rule:wildcards" of every Snakemake job it runs
    call: str  # the sbatch command line (with --wrap)

    @property
    def rules(self) -> set[str]:
        """Names of the rules this submission runs."""
        return {job.split(":", 1)[0] for job in self.target_jobs}


START = time.monotonic()


def log(message: str) -> None:
    """Progress line on stdout, with the time since the start."""
    print(f"[{time.monotonic() - START:6.1f} s] {message}", flush=True)


# ------------------------------------------------------------------------------------- SLURM
def slurm_local(action: str, log_path: Path) -> None:
    """Run ``slurm-local.sh ACTION``; its output goes to ``log_path`` (and its tail on failure)."""
    with open(log_path, "a") as out:
        result = subprocess.run(
            ["bash", str(SLURM_LOCAL), action], stdout=out, stderr=subprocess.STDOUT
        )
    if result.returncode != 0:
        tail = "".join(log_path.read_text().splitlines(keepends=True)[-15:])
        raise IntegrationError(f"slurm-local.sh {action} failed (rc {result.returncode}):\n{tail}")


@dataclass
class SacctRow:
    """One line of ``sacct -X`` for a job."""

    state: str
    exit_code: str
    start: str
    end: str
    alloc_tres: str
    comment: str
    name: str


def sacct(run_id: str) -> dict[int, SacctRow]:
    """``sacct -X`` rows of every job named ``run_id`` (the plugin names jobs by run id)."""
    fields = "JobID,State,ExitCode,Start,End,AllocTRES,Comment,JobName"
    result = subprocess.run(
        ["sacct", "-X", "-P", "-n", f"--format={fields}", "--name", run_id, "-S", "now-1days"],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise IntegrationError(f"sacct failed: {result.stderr.strip()}")
    rows: dict[int, SacctRow] = {}
    for line in result.stdout.splitlines():
        job_id, *rest = line.split("|")
        rows[int(job_id)] = SacctRow(*rest)
    return rows


# ------------------------------------------------------------------------------------ profile
def adapt_profile(profile: dict[str, Any]) -> dict[str, Any]:
    """The shipped SLURM profile with only the values that depend on the cluster replaced.

    Placeholder partitions (``CHANGE_ME...``) become ``debug``; ``slurm_account`` is dropped (the
    test cluster has no accounts); ``cpus_per_gpu`` becomes 1 and every ``mem_mb`` becomes
    ``1500 * attempt`` (the node has 2 CPUs and ~20 GB); ``jobs``, ``cores`` (the node's CPUs, which
    also bounds group jobs), ``latency-wait`` and the first status check are set for a one-node
    cluster. Everything else (executor, GPU requests, runtimes, retries, groups, status command)
    is the shipped profile's.
    """
    adapted = json.loads(json.dumps(profile))
    resource_sets = [adapted.get("default-resources", {})]
    resource_sets += list(adapted.get("set-resources", {}).values())
    for resources in resource_sets:
        partition = str(resources.get("slurm_partition", ""))
        if partition.startswith("CHANGE_ME"):
            resources["slurm_partition"] = TEST_PARTITION
        resources.pop("slurm_account", None)
        if "cpus_per_gpu" in resources:
            resources["cpus_per_gpu"] = 1
        if "mem_mb" in resources:
            resources["mem_mb"] = TEST_MEM_MB
    adapted.update(TEST_TOP_LEVEL)
    return adapted


def write_profile(profile: dict[str, Any], folder: Path) -> Path:
    """Write ``profile`` as ``folder/config.yaml``; returns ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    return folder


# ---------------------------------------------------------------------------------- snakemake
def snakemake_command(workdir: Path, *args: str) -> list[str]:
    """The command running the project's Snakefile in ``workdir`` with the test config layer."""
    return [
        sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir),
        *args, "--configfile", str(REPO / "config" / "config.yaml"), str(DEMO_LAYER),
    ]  # fmt: skip


def job_environment(extra_path: Path | None = None) -> dict[str, str]:
    """The environment of a Snakemake run: no CUDA_VISIBLE_DEVICES (so any value a job sees was
    set by SLURM), the virtualenv first in PATH, optionally ``extra_path`` before it."""
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    paths = [str(Path(sys.executable).parent), env.get("PATH", "/usr/bin:/bin")]
    if extra_path is not None:
        paths.insert(0, str(extra_path))
    env["PATH"] = os.pathsep.join(paths)
    return env


def start(command: list[str], log_path: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start ``command`` in the background with stdout+stderr to ``log_path``."""
    with open(log_path, "w") as out:  # the child keeps its own descriptor
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO)


def finish(process: subprocess.Popen[bytes], log_path: Path, what: str, timeout_s: float) -> str:
    """Wait for ``process``; its log text, or IntegrationError with the log's tail."""
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired as error:
        process.terminate()
        process.wait(timeout=60)
        message = f"{what} did not finish in {timeout_s:.0f} s (log: {log_path})"
        raise IntegrationError(message) from error
    text = log_path.read_text()
    if process.returncode != 0:
        tail = "\n".join(text.splitlines()[-40:])
        raise IntegrationError(f"{what} failed (rc {process.returncode}, log {log_path}):\n{tail}")
    return text


def planned_jobs(log_text: str) -> Counter[str]:
    """Rule -> number of jobs, from the 'Job stats' table Snakemake prints before running."""
    lines = log_text.splitlines()
    try:
        first = lines.index("Job stats:")
    except ValueError as error:
        raise IntegrationError("no 'Job stats:' table in the Snakemake log") from error
    jobs: Counter[str] = Counter()
    for line in lines[first + 3 :]:
        match = re.fullmatch(r"(\w+)\s+(\d+)", line.strip())
        if not match:
            break
        if match.group(1) != "total":
            jobs[match.group(1)] = int(match.group(2))
    return jobs


def submissions(log_text: str) -> list[Submission]:
    """Every sbatch of the run, from the plugin's verbose log: a line 'sbatch call: ...', later
    'Job N has been submitted with SLURM jobid M (log: PATH)'. A group job's call is found by its
    group id (``--local-groupid``, the N of its line), any other by its log path (unique per rule
    and wildcards; a retry's call comes after the first submission's line)."""
    calls: dict[str, list[str]] = {}  # group id or --output template -> sbatch calls, in order
    found: list[Submission] = []
    for line in log_text.splitlines():
        call = SBATCH_CALL.match(line)
        if call:
            text = call.group(1)
            group = re.search(r"--local-groupid '([^']+)'", text)
            output = re.search(r"--output (\S+)", text)
            if output is None:
                raise IntegrationError(f"sbatch call without --output: {line[:200]}")
            key = group.group(1) if group else output.group(1).strip("'")
            calls.setdefault(key, []).append(text)
            continue
        submitted = SUBMITTED.match(line)
        if submitted:
            job, slurm_id, path = submitted.group(1), int(submitted.group(2)), submitted.group(3)
            template = path.replace(f"/{slurm_id}.log", "/%j.log")
            pending = calls.get(job) or calls.get(template)
            if not pending:
                raise IntegrationError(f"no 'sbatch call' logged for SLURM job {slurm_id}")
            text = pending.pop(0)
            targets = re.search(r"--target-jobs ((?:'[^']*' ?)+)", text)
            if targets is None:
                raise IntegrationError(f"sbatch call of job {slurm_id} has no --target-jobs")
            found.append(Submission(slurm_id, re.findall(r"'([^']*)'", targets.group(1)), text))
    return found


# ----------------------------------------------------------------------------------- checks
def check_slurm_run(
    log_text: str, run_dir: Path, profile: dict[str, Any]
) -> tuple[list[str], list[str]]:
    """(problems, evidence lines) of the SLURM run: see the module docstring, step 3."""
    problems: list[str] = []
    evidence: list[str] = []
    run_id_match = RUN_ID.search(log_text)
    if run_id_match is None:
        return ["no 'SLURM run ID' in the Snakemake log: was the slurm executor used?"], evidence
    run_id = run_id_match.group(1)
    planned = planned_jobs(log_text)
    local = Counter(m.group(1) for line in log_text.splitlines() if (m := LOCAL_JOB.match(line)))
    subs = submissions(log_text)
    submitted = Counter(job.split(":", 1)[0] for sub in subs for job in sub.target_jobs)
    evidence.append(f"planned jobs {dict(planned)}")
    evidence.append(f"local jobs (localrules) {dict(local)}")
    evidence.append(f"{len(subs)} sbatch submissions for {sum(submitted.values())} jobs")

    # every job of the DAG either ran locally or went through sbatch, exactly once
    for rule in sorted(set(planned) | set(local) | set(submitted)):
        if local[rule] + submitted[rule] != planned[rule]:
            problems.append(
                f"rule {rule}: {planned[rule]} planned, {local[rule]} local + "
                f"{submitted[rule]} submitted"
            )
    duplicates = [
        job for job, n in Counter(j for s in subs for j in s.target_jobs).items() if n > 1
    ]
    if duplicates:
        problems.append(f"jobs submitted more than once (retried?): {duplicates}")
    gpu_local = GPU_RULES & set(local)
    if gpu_local:
        problems.append(f"GPU rules ran locally, not on SLURM: {sorted(gpu_local)}")

    # grouped rules: one submission per `group-components` jobs
    groups: dict[str, str] = profile.get("groups", {})
    components: dict[str, int] = profile.get("group-components", {})
    for rule, group in groups.items():
        if not submitted[rule]:
            continue
        n_subs = sum(1 for sub in subs if rule in sub.rules)
        expected = math.ceil(submitted[rule] / int(components.get(group, 1)))
        evidence.append(f"group {group}: {submitted[rule]} {rule} jobs in {n_subs} sbatch")
        if n_subs != expected:
            problems.append(
                f"rule {rule} (group {group}): {submitted[rule]} jobs went in {n_subs} "
                f"submissions, expected {expected}"
            )

    # sacct: every submission COMPLETED, and nothing else was submitted under this run id
    rows = sacct(run_id)
    ids = {sub.slurm_id for sub in subs}
    if set(rows) != ids:
        problems.append(
            f"sacct jobs of run {run_id} {sorted(rows)} != submissions in the log {sorted(ids)}"
        )
    for sub in subs:
        row = rows.get(sub.slurm_id)
        what = f"SLURM job {sub.slurm_id} ({', '.join(sub.target_jobs)})"
        if row is None:
            problems.append(f"{what}: not in sacct")
            continue
        evidence.append(
            f"sacct {sub.slurm_id}|{row.state}|{row.exit_code}|{row.alloc_tres}|{row.comment}"
        )
        if row.state != "COMPLETED" or row.exit_code != "0:0":
            problems.append(f"{what}: sacct State={row.state} ExitCode={row.exit_code}")
        wants_gpu = bool(sub.rules & GPU_RULES)
        has_gpu_flag = re.search(r"--gpus=(\w+:)?\d+", sub.call) is not None
        if wants_gpu != has_gpu_flag:
            problems.append(f"{what}: GPU rule {wants_gpu} but sbatch --gpus given {has_gpu_flag}")
        if wants_gpu and "gres/gpu=" not in row.alloc_tres:
            problems.append(f"{what}: no gres/gpu in sacct AllocTRES={row.alloc_tres}")
        if wants_gpu and "--cpus-per-gpu=" not in sub.call:
            problems.append(f"{what}: sbatch call without --cpus-per-gpu (profile cpus_per_gpu)")
        if f"-p {TEST_PARTITION}" not in sub.call:
            problems.append(f"{what}: sbatch call without -p {TEST_PARTITION}")

    problems += check_gpu_logs(subs, rows, run_dir, evidence)
    return problems, evidence


def check_gpu_logs(
    subs: list[Submission], rows: dict[int, SacctRow], run_dir: Path, evidence: list[str]
) -> list[str]:
    """Each GPU job's log names the device SLURM set for it, and concurrent jobs used different
    ones; no CPU job's log has such a line."""
    problems: list[str] = []
    seen: dict[int, str] = {}  # SLURM job id -> CUDA_VISIBLE_DEVICES it logged
    logs = [*(run_dir / "logs").rglob("*.log"), *run_dir.glob("*/logs/**/*.log")]  # + scopes'
    for path in sorted(logs):
        for line in path.read_text().splitlines():
            match = DEVICE_LINE.search(line)
            if match is None:
                continue
            job, visible, gpus = int(match["job"]), match["visible"], match["gpus"]
            evidence.append(f"{path.relative_to(run_dir)}: {line.split(': ', 1)[-1]}")
            if visible != gpus:
                problems.append(f"{path}: CUDA_VISIBLE_DEVICES={visible} but SLURM gave {gpus}")
            if USED_DEVICE.search(line) is None:
                problems.append(f"{path}: device line does not say which device was used")
            if job in seen and seen[job] != visible:
                problems.append(f"SLURM job {job} logged two devices {seen[job]}, {visible}")
            seen[job] = visible
    gpu_ids = {sub.slurm_id for sub in subs if sub.rules & GPU_RULES}
    if set(seen) != gpu_ids:
        problems.append(
            f"device lines from SLURM jobs {sorted(seen)}, GPU jobs submitted {sorted(gpu_ids)}"
        )
    overlapping = 0
    ordered = sorted(gpu_ids & set(seen))
    for i, a in enumerate(ordered):
        for b in ordered[i + 1 :]:
            ra, rb = rows.get(a), rows.get(b)
            if ra is None or rb is None or not (ra.start < rb.end and rb.start < ra.end):
                continue
            overlapping += 1
            if seen[a] == seen[b]:
                problems.append(f"SLURM jobs {a} and {b} ran at the same time on GPU {seen[a]}")
    evidence.append(f"{overlapping} pairs of GPU jobs ran at the same time on different GPUs")
    return problems


# ---------------------------------------------------------------------------------- compare
def _normalise(value: str, roots: tuple[str, ...]) -> str:
    """``value`` with either run's root folder replaced by ``<run>``."""
    for root in roots:
        value = value.replace(root, "<run>")
    return value


def _table_problems(a: pa.Table, b: pa.Table, roots: tuple[str, ...], name: str) -> list[str]:
    """Differences between two tables, absolute paths of the two runs made equal."""

    def clean(table: pa.Table) -> pa.Table:
        columns = [
            pa.array([_normalise(v, roots) if v is not None else None for v in col.to_pylist()])
            if pa.types.is_string(col.type)
            else col
            for col in table.columns
        ]
        return pa.table(columns, names=table.column_names)

    if a.schema.remove_metadata() != b.schema.remove_metadata():
        return [f"{name}: schemas differ"]
    if not clean(a).equals(clean(b)):
        return [f"{name}: rows differ"]
    return []


def _drop_keys(value: Any, pattern: re.Pattern[str]) -> Any:
    """A JSON value without the keys (at any depth) whose name matches ``pattern``."""
    if isinstance(value, dict):
        return {k: _drop_keys(v, pattern) for k, v in value.items() if not pattern.search(k)}
    if isinstance(value, list):
        return [_drop_keys(v, pattern) for v in value]
    return value


def _provenance(table: pa.Table, roots: tuple[str, ...]) -> Any:
    """A Parquet table's provenance record, paths normalised and ``*_sha256`` keys dropped."""
    raw = (table.schema.metadata or {}).get(b"nvos", b"{}").decode()
    return _drop_keys(json.loads(_normalise(raw, roots)), HASH_NAME)


def _same_object(a: Any, b: Any) -> bool:
    """Deep equality of two loaded checkpoints (tensors and arrays by dtype and value), timing
    keys (a training log's throughput) ignored."""
    import numpy as np
    import torch

    if torch.is_tensor(a) or torch.is_tensor(b):
        same_type = torch.is_tensor(a) and torch.is_tensor(b) and a.dtype == b.dtype
        return same_type and torch.equal(a, b)
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        return a.dtype == b.dtype and np.array_equal(a, b)
    if isinstance(a, dict) and isinstance(b, dict):
        keys = [k for k in a if not (isinstance(k, str) and TIMING_NAME.search(k))]
        return a.keys() == b.keys() and all(_same_object(a[k], b[k]) for k in keys)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same_object(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _files(root: Path) -> set[Path]:
    """Output files under ``root``, relative, without the uncompared folders (the run's, and a
    scope's such as ``segment/logs/``)."""
    return {
        p.relative_to(root)
        for p in root.rglob("*")
        if p.is_file() and not set(p.relative_to(root).parts[:2]) & set(UNCOMPARED_DIRS)
    }


def compare_runs(a: Path, b: Path, workdirs: tuple[Path, Path]) -> tuple[list[str], int]:
    """(differences, number of files compared) between the outputs of two runs of the DAG.

    Compared: the set of files; Parquet tables by schema, rows and provenance record; Arrow
    feature caches by schema and rows (their metadata records the source files' mtimes); JSON
    and CSV files without timing keys/columns (``*seconds*``, ``*_per_s``); ``.pt`` checkpoints
    by their loaded content without timing keys (the zip archive inside names the temporary file
    it was written to);
    the report's pages without their build date; everything else (overlays, demo videos,
    manifest) byte for byte. Absolute paths of
    the two work folders count as equal, and provenance ``*_sha256`` keys are not compared (the
    hashed files are). Not compared: ``logs/``, ``benchmarks/``, ``locks/`` (timings, hostnames,
    process ids), also a scope's (``segment/logs/``).
    """
    roots = tuple(str(w) for w in workdirs)
    problems: list[str] = []
    files_a, files_b = _files(a), _files(b)
    for name in sorted(files_a ^ files_b):
        problems.append(f"{name}: only in {'SLURM' if name in files_a else 'local'} run")
    for name in sorted(files_a & files_b):
        fa, fb = a / name, b / name
        if name.suffix == ".parquet":
            ta, tb = pq.read_table(fa), pq.read_table(fb)
            problems += _table_problems(ta, tb, roots, str(name))
            if _provenance(ta, roots) != _provenance(tb, roots):
                problems.append(f"{name}: provenance records differ")
        elif fa.read_bytes() == fb.read_bytes():
            continue
        elif name.suffix == ".arrow":
            ta = ipc.open_file(fa).read_all()
            tb = ipc.open_file(fb).read_all()
            problems += _table_problems(ta, tb, roots, str(name))
        elif name.suffix == ".json":
            ja, jb = (_drop_keys(json.loads(f.read_text()), TIMING_NAME) for f in (fa, fb))
            if ja != jb:
                problems.append(f"{name}: differs (timing keys ignored)")
        elif name.suffix == ".csv":
            ca, cb = (pacsv.read_csv(f) for f in (fa, fb))
            keep = [c for c in ca.column_names if not TIMING_NAME.search(c)]
            if ca.column_names != cb.column_names or not ca.select(keep).equals(cb.select(keep)):
                problems.append(f"{name}: differs (timing columns ignored)")
        elif name.parts[-2:-1] == ("report",) and name.suffix in (".md", ".html"):
            if REPORT_DATE.sub(b"", fa.read_bytes()) != REPORT_DATE.sub(b"", fb.read_bytes()):
                problems.append(f"{name}: differs (the report's build date ignored)")
        elif name.suffix == ".pt":
            import torch

            loaded = [torch.load(f, map_location="cpu", weights_only=False) for f in (fa, fb)]
            if not _same_object(*loaded):
                problems.append(f"{name}: checkpoint content differs")
        else:
            problems.append(f"{name}: bytes differ")
    return problems, len(files_a & files_b)


# -------------------------------------------------------------------------- squeue status mode
def check_squeue_mode(base_profile: dict[str, Any], scratch: Path, timeout_s: float) -> str:
    """Run one job with ``slurm-status-command: squeue`` while ``sacct`` fails the way it does
    without accounting ("Slurm accounting storage is disabled", rc 1); returns evidence."""
    profile = dict(base_profile, **{"slurm-status-command": "squeue"})
    profile_dir = write_profile(profile, scratch / "profile-squeue")
    fake_bin = scratch / "no-accounting-bin"
    fake_bin.mkdir(exist_ok=True)
    fake_sacct = fake_bin / "sacct"
    fake_sacct.write_text(
        "#!/bin/sh\necho 'sacct: error: Slurm accounting storage is disabled' >&2\nexit 1\n"
    )
    fake_sacct.chmod(0o755)
    workdir = scratch / "squeue-run"
    log_path = scratch / "snakemake-squeue.log"
    # `dataset` is the first submitted job (`demo_data` before it is a local rule)
    command = snakemake_command(workdir, "--profile", str(profile_dir), "--verbose", "dataset")
    text = finish(
        start(command, log_path, job_environment(fake_bin)), log_path, "squeue run", timeout_s
    )
    if "Falling back to 'sacct'" in text:
        raise IntegrationError("squeue run: the plugin fell back to sacct (MinJobAge too low?)")
    n_jobs = len(submissions(text))
    if n_jobs != 1:
        raise IntegrationError(f"squeue run: {n_jobs} submissions, expected 1 (dataset)")
    return f"status via squeue, sacct disabled: {n_jobs} job submitted and seen finished"


# ------------------------------------------------------------------------------------- main
def _raise_on_sigterm(signum: int, frame: object) -> None:
    """Turn SIGTERM into an exception, so that the daemons are stopped on the way out."""
    raise IntegrationError(f"stopped by signal {signum}")


def run(scratch: Path, timeout_s: float) -> list[str]:
    """Steps 1-5 of the module docstring inside ``scratch``; the problems found (empty = pass)."""
    slurm_log = scratch / "slurm-local.log"
    log(f"starting SLURM (tests/slurm/slurm-local.sh start, log {slurm_log})")
    slurm_local("start", slurm_log)
    log("SLURM is up")

    profile = adapt_profile(yaml.safe_load(PROFILE.read_text()))
    profile_dir = write_profile(profile, scratch / "profile")
    slurm_dir, local_dir = scratch / "slurm-run", scratch / "local-run"
    slurm_log_path, local_log_path = (
        scratch / "snakemake-slurm.log",
        scratch / "snakemake-local.log",
    )
    log(f"snakemake --profile {profile_dir} in {slurm_dir} (log {slurm_log_path})")
    slurm_proc = start(
        snakemake_command(slurm_dir, *TARGETS, "--profile", str(profile_dir), "--verbose"),
        slurm_log_path,
        job_environment(),
    )
    log(f"snakemake --profile {LOCAL_PROFILE} in {local_dir} (log {local_log_path})")
    local_proc = start(
        snakemake_command(local_dir, *TARGETS, "--profile", str(LOCAL_PROFILE)),
        local_log_path,
        job_environment(),
    )
    try:
        finish(local_proc, local_log_path, "local run", timeout_s)
        log("local run done")
        slurm_text = finish(slurm_proc, slurm_log_path, "SLURM run", timeout_s)
        log("SLURM run done")
    finally:
        for proc in (slurm_proc, local_proc):
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=60)

    problems, evidence = check_slurm_run(slurm_text, slurm_dir / RUN_SUBDIR, profile)
    for line in evidence:
        print(f"  {line}")
    differences, n_compared = compare_runs(
        slurm_dir / RUN_SUBDIR, local_dir / RUN_SUBDIR, (slurm_dir, local_dir)
    )
    log(
        f"compared {n_compared} output files of the SLURM and local runs: {len(differences)} differ"
    )
    problems += [f"SLURM vs local output: {d}" for d in differences]

    log("status mode without accounting: slurm-status-command squeue")
    print(f"  {check_squeue_mode(profile, scratch, timeout_s)}")
    return problems


def main(argv: list[str] | None = None) -> int:
    """Run the integration test; exit status 0 when every check passed."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, help="scratch folder (default: a new one in /tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder on success")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per Snakemake run")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("FAILED: must run as root (installs SLURM from apt, starts daemons)", file=sys.stderr)
        return 1
    scratch = args.workdir or Path(tempfile.mkdtemp(prefix="nvos-slurm-it-"))
    scratch.mkdir(parents=True, exist_ok=True)
    scratch = scratch.resolve()
    signal.signal(signal.SIGTERM, _raise_on_sigterm)
    problems: list[str] = []
    try:
        problems = run(scratch, args.timeout)
    except (IntegrationError, KeyboardInterrupt) as error:
        problems = [str(error) or "interrupted"]
    finally:
        log("stopping SLURM (tests/slurm/slurm-local.sh stop)")
        try:
            slurm_local("stop", scratch / "slurm-local.log")
        except IntegrationError as error:
            problems.append(str(error))
    if problems:
        print(f"FAILED: {len(problems)} problem(s); files kept in {scratch}", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    if not args.keep and args.workdir is None:
        shutil.rmtree(scratch)
    log(f"PASSED{f' (files in {scratch})' if args.keep or args.workdir else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
