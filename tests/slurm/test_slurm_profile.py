"""Fast checks of profiles/slurm and of the integration driver's parsing and comparison logic.

The real-SLURM run itself (tests/slurm/integration.py) needs root and apt and is run separately.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import re
import sys
from pathlib import Path
from types import ModuleType

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def _load_driver() -> ModuleType:
    spec = importlib.util.spec_from_file_location("slurm_integration", HERE / "integration.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


it = _load_driver()


def shipped_profile() -> dict:
    return yaml.safe_load((REPO / "profiles/slurm/config.yaml").read_text())


def rules_declaring_gpu() -> set[str]:
    """Rules whose `resources:` declare `gpu=` in workflow/rules/*.smk, and the per-shard rules
    that workflow/rules/methods.smk makes for the prediction methods that claim a GPU, in the run
    and in the segment stage's scope (segment_<rule>: any of them may be segment.method's step)."""
    from nvos.methods import FAMILY

    found: set[str] = {member.rule for member in FAMILY if member.gpu}
    found |= {f"segment_{member.rule}" for member in FAMILY if member.gpu}
    for path in (REPO / "workflow/rules").glob("*.smk"):
        for block in re.split(r"\n(?=(?:    )?rule \w)", path.read_text()):  # also under an `if`
            name = re.match(r"(?:    )?rule (\w+):", block)
            if name and re.search(r"^\s+gpu=", block, re.MULTILINE):
                found.add(name.group(1))
    return found


def test_profile_covers_every_gpu_rule_with_attempt_scaled_requests() -> None:
    profile = shipped_profile()
    assert rules_declaring_gpu() == it.GPU_RULES
    for rule in it.GPU_RULES:
        resources = profile["set-resources"][rule]
        assert int(resources["cpus_per_gpu"]) >= 1, rule
        assert "attempt" in resources["mem_mb"] and "attempt" in resources["runtime"], rule
        assert resources["slurm_partition"].startswith("CHANGE_ME"), rule
        assert "gpu_model" not in resources, f"{rule}: gpu_model is optional (commented out)"
    defaults = profile["default-resources"]
    assert "gpu_model" not in defaults and "gpu" not in defaults  # would give CPU rules a GPU
    assert profile["executor"] == "slurm" and int(profile["retries"]) >= 1


def test_grouped_rules_are_cpu_only_and_bundle_several_jobs() -> None:
    profile = shipped_profile()
    groups, components = profile["groups"], profile["group-components"]
    assert {"frames_shard", "oracle_shard"} <= set(groups)
    assert not set(groups) & it.GPU_RULES
    assert all(int(components[group]) > 1 for group in groups.values())


def test_adapt_profile_changes_only_cluster_values() -> None:
    shipped = shipped_profile()
    adapted = it.adapt_profile(shipped)
    assert "CHANGE_ME" not in json.dumps(adapted)
    for key in ("executor", "retries", "groups", "group-components", "slurm-keep-successful-logs"):
        assert adapted[key] == shipped[key]
    for rule, resources in adapted["set-resources"].items():
        assert resources["runtime"] == shipped["set-resources"][rule]["runtime"]
        assert resources["mem_mb"] == it.TEST_MEM_MB
    assert shipped["set-resources"]["train"]["cpus_per_gpu"] != 1  # the input is not modified


def _group_call(group: str, jobs: list[str]) -> str:
    targets = " ".join(f"'{job}'" for job in jobs)
    return (
        "sbatch call: sbatch --parsable --output "
        '/w/.snakemake/slurm_logs/group_frames_batch_frames_shard/%j.log -p debug --wrap="'
        f"python -m snakemake --target-jobs {targets} --local-groupid '{group}' --cores all\""
    )


def test_submissions_pair_sbatch_calls_with_job_ids() -> None:
    log = "\n".join(
        [
            "sbatch call: sbatch --parsable --output "
            "/w/.snakemake/slurm_logs/rule_train/rosa/%j.log -p debug --gpus=1 "
            "--wrap=\"python -m snakemake --target-jobs 'train:variant=rosa' --cores all\"",
            _group_call("g-1", ["frames_shard:shard=s00001", "frames_shard:shard=s00000"]),
            _group_call("g-2", ["frames_shard:shard=s00002"]),
            # two group jobs share a log folder; their lines come in another order than the calls
            "Job g-2 has been submitted with SLURM jobid 12 "
            "(log: /w/.snakemake/slurm_logs/group_frames_batch_frames_shard/12.log).",
            "Job g-1 has been submitted with SLURM jobid 13 "
            "(log: /w/.snakemake/slurm_logs/group_frames_batch_frames_shard/13.log).",
            "Job 7 has been submitted with SLURM jobid 11 "
            "(log: /w/.snakemake/slurm_logs/rule_train/rosa/11.log).",
        ]
    )
    found = {sub.slurm_id: sub for sub in it.submissions(log)}
    assert found[11].target_jobs == ["train:variant=rosa"] and "--gpus=1" in found[11].call
    assert found[12].target_jobs == ["frames_shard:shard=s00002"]
    assert found[13].rules == {"frames_shard"} and len(found[13].target_jobs) == 2
    with pytest.raises(it.IntegrationError, match="no 'sbatch call'"):
        it.submissions("Job 1 has been submitted with SLURM jobid 5 (log: /x/5.log).")


def _write_run(root: Path, video: str, score: float, seconds: float) -> Path:
    run = root / "results" / "demo"
    (run / "metrics").mkdir(parents=True)
    (run / "logs").mkdir()
    table = pa.table({"video": [str(root / video)], "score": [score]})
    pq.write_table(
        table.replace_schema_metadata({"nvos": json.dumps({"run": str(root)})}), run / "t.parquet"
    )
    (run / "metrics" / "summary.json").write_text(json.dumps({"j": 0.5, "seconds": seconds}))
    (run / "train_log.csv").write_text(f"step,loss,clips_per_s\n1,0.25,{seconds}\n")
    (run / "logs" / "x.log").write_text(f"took {seconds}")
    return run


def test_compare_runs_ignores_paths_and_timings_but_not_content(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    run_a = _write_run(a, "v.mp4", 0.9, seconds=1.0)
    run_b = _write_run(b, "v.mp4", 0.9, seconds=7.0)
    assert it.compare_runs(run_a, run_b, (a, b)) == ([], 3)
    c = tmp_path / "c"
    run_c = _write_run(c, "w.mp4", 0.8, seconds=1.0)
    (run_c / "extra.md").write_text("x")
    problems, _ = it.compare_runs(run_a, run_c, (a, c))
    assert "t.parquet: rows differ" in problems
    assert "extra.md: only in local run" in problems
    for run, text in ((run_a, "host a"), (run_b, "host b")):  # a scope's logs: not compared
        (run / "segment/logs").mkdir(parents=True)
        (run / "segment/logs/x.log").write_text(text)
    assert it.compare_runs(run_a, run_b, (a, b)) == ([], 3)


@pytest.mark.parametrize("n_devices", [0, 2])  # no CUDA (this machine) / CUDA visible
def test_device_log_line_names_the_slurm_assignment(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, n_devices: int
) -> None:
    from nvos.devices import claim_device

    env = {"CUDA_VISIBLE_DEVICES": "1", "SLURM_JOB_ID": "42", "SLURM_STEP_GPUS": "1"}
    with caplog.at_level(logging.INFO, logger="nvos.devices"):
        with claim_device(tmp_path, n_devices=n_devices, environ=env) as device:
            assert device.type == ("cpu" if n_devices == 0 else "cuda")
    messages = [r.getMessage() for r in caplog.records]
    matches = [m for m in map(it.DEVICE_LINE.search, messages) if m]
    assert [(m["visible"], m["job"], m["gpus"]) for m in matches] == [("1", "42", "1")]
    assert any(it.USED_DEVICE.search(message) for message in messages)
    assert not list(tmp_path.iterdir())  # the scheduler's device: no lock file taken
