"""End-to-end: the Snakemake DAG on a small demo in a temporary folder."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from nvos import skips, storage

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
FREE_TEXT_ROW = "rosa+temporal+flow+free_text"
# 10 clips: train 6, val 2, test 2; the smallest demo whose val split can select a checkpoint
# (nvos.checks: VNA needs at least 2 clips). 2 shards of 5 clips.
SMALL_DEMO = {
    "dataset": {"demo": {"clips": 10, "seed": 3}},
    "shards": {"clips_per_shard": 5},
    "frames": {"per_clip": 2, "max_side": 160},
    "proposals": {"max_per_frame": 8, "classical": {"scales": [100, 400]}},
    "rosa": {
        "dim": 32,
        "train": {"batch_size": 2, "epochs": 2, "warmup_steps": 1},
        "variants": {"rosa": {}},  # the variants' machinery: test_rosa_sweep, test_rules
    },
    "evaluate": {
        # (the SAM + CLIP row runs through the workflow in test_import_workflow)
        "methods": ["rosa", "rosa+temporal", "oracle", "oracle+flow", FREE_TEXT_ROW]
    },
    "temporal": {"propagate": {"methods": ["oracle"]}},
    # the segment stage: ROSA decoded and propagated on every clip, the narrations as free text
    "segment": {"method": "rosa+temporal+flow", "phrases": "free_text"},
}


def snakemake_command(workdir: Path, *args: str, config: dict | None = None) -> list[str]:
    """The command running the project's Snakefile in ``workdir`` with the defaults + ``config``
    layered on (written to ``workdir/layer.yaml``)."""
    workdir.mkdir(parents=True, exist_ok=True)
    layer = workdir / "layer.yaml"
    layer.write_text(yaml.safe_dump(config or SMALL_DEMO))
    return [
        sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir),
        "--cores", "2", *args, "--configfile", str(REPO / "config/config.yaml"), str(layer),
    ]  # fmt: skip


#: The workflow tests compare numbers exactly: their jobs run on the CPU also where CUDA exists.
CPU_ONLY = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}


def snakemake(workdir: Path, *args: str, config: dict | None = None) -> subprocess.CompletedProcess:
    """Run the project's Snakefile in ``workdir`` (see :func:`snakemake_command`) to the end,
    on the CPU (:data:`CPU_ONLY`)."""
    command = snakemake_command(workdir, *args, config=config)
    return subprocess.run(command, capture_output=True, text=True, timeout=900, env=CPU_ONLY)


def planned_jobs(result: subprocess.CompletedProcess) -> dict[str, int]:
    """Rule -> job count from a dry run's 'Job stats' table."""
    jobs: dict[str, int] = {}
    for line in result.stdout.splitlines():
        match = re.fullmatch(r"(\w+)\s+(\d+)", line.strip())
        if match and match.group(1) != "total":
            jobs[match.group(1)] = int(match.group(2))
    return jobs


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = tmp_path_factory.mktemp("demo_run")
    first = snakemake(workdir, "frames")
    assert first.returncode == 0, first.stderr[-3000:]
    assert not (workdir / "results/demo/proposals").exists()  # a stage target stops there
    done = snakemake(workdir, "all", "segment")
    assert done.returncode == 0, done.stderr[-3000:]
    return workdir / "results" / "demo"


def test_demo_dag_writes_every_stage(demo_run: Path) -> None:
    clips = storage.read_table(demo_run / "clips.parquet", "clips")
    assert clips.num_rows == 10
    assert sorted(set(clips["shard"].to_pylist())) == ["s00000", "s00001"]
    assert storage.read_table(demo_run / "annotations.parquet", "annotations").num_rows > 0
    for shard in ("s00000", "s00001"):
        frames = storage.read_table(demo_run / f"frames/{shard}.parquet", "frames")
        assert frames.num_rows >= 2 * 2
        proposals = storage.read_table(demo_run / f"proposals/{shard}.parquet", "proposals")
        assert proposals.num_rows > 0
        assert storage.read_provenance(demo_run / f"proposals/{shard}.parquet")["shard"] == shard
        for stage in ("frames", "proposals"):
            assert (demo_run / f"logs/{stage}/{shard}.log").stat().st_size > 0
            assert (demo_run / f"benchmarks/{stage}/{shard}.tsv").exists()
    assert "done dataset" in (demo_run / "logs/dataset.log").read_text()
    table = (demo_run / "report/table.md").read_text()
    for row in ("SAM upper bound (oracle)", "ROSA"):
        assert f"| {row} |" in table, table
    assert (demo_run / "models/rosa/train_log.csv").read_text().startswith("step,")
    # The default rosa.train.restarts (3): each trained in its folder, the chosen one copied.
    with open(demo_run / "models/rosa/restarts.csv") as handle:
        restarts = list(csv.DictReader(handle))
    assert [r["restart"] for r in restarts] == ["0", "1", "2"]
    (chosen,) = [r for r in restarts if r["chosen"] == "True"]
    saved = torch.load(demo_run / "models/rosa/checkpoint.pt", weights_only=False)
    assert saved["restart"] == int(chosen["restart"])
    log = (demo_run / "models/rosa" / chosen["log"]).read_text()
    assert (demo_run / "models/rosa/train_log.csv").read_text() == log
    summary = json.loads((demo_run / "metrics/oracle/val/summary.json").read_text())
    assert summary["objects"] > 0 and 0.0 < summary["J"] <= 1.0
    assert (demo_run / "report/index.html").exists()
    # oracle keyframes propagated with flow: dense masks, a row, a video per overlay clip
    assert "| Oracle keyframes + flow |" in table
    sources = set()
    for shard in ("s00000", "s00001"):
        dense = storage.read_table(demo_run / f"masks/oracle+flow/{shard}.parquet", "dense_masks")
        sources |= set(dense["source"].to_pylist())
    assert sources == {"keyframe", "propagated"}
    overlays = demo_run / "report/overlays"
    videos = sorted(overlays.glob("*.mp4"))
    assert videos and all(list(overlays.glob(f"{v.stem}_*.jpg")) for v in videos)
    assert f'href="overlays/{videos[0].name}"' in (demo_run / "report/index.html").read_text()


def test_every_stage_reconciles_its_clips(demo_run: Path) -> None:
    rows = {row["stage"]: row for row in skips.read_reconciliation(demo_run / "reconciliation.csv")}
    methods = SMALL_DEMO["evaluate"]["methods"]
    stages = ["frames", "proposals", "phrases", "features", *(f"predictions/{m}" for m in methods)]
    assert list(rows) == stages
    for row in rows.values():
        assert row["clips_in"] == row["clips_out"] + row["clips_skipped"], row
    assert rows["frames"]["clips_in"] == rows["phrases"]["clips_in"] == 10
    assert rows["frames"]["jobs"] == 2 and rows["phrases"]["jobs"] == 1
    for method in ("rosa", "rosa+temporal"):  # 6 train clips each
        assert "split_not_predicted=6" in rows[f"predictions/{method}"]["reasons"]
    assert "no_tagged_object=6" in rows["predictions/oracle"]["reasons"]  # untagged train clips
    assert "no_keyframes=6" in rows["predictions/oracle+flow"]["reasons"]
    with open(demo_run / "skipped.csv", newline="") as handle:
        skipped = list(csv.DictReader(handle))
    for stage, row in rows.items():
        listed = [r for r in skipped if r["stage"] == stage and r["frame_index"] == ""]
        assert len(listed) == row["clips_skipped"] and all(r["reason"] for r in listed)
    log = (demo_run / "logs/skips.log").read_text()
    assert "predictions/oracle (2 jobs): clips in 10 = out" in log
    assert (demo_run / "benchmarks/skips.tsv").exists()
    table = (demo_run / "report/table.md").read_text()
    assert "## Skipped clips" in table and "| predictions/oracle | 2 | 10 |" in table
    # the decoded method: settings chosen on val, a row and its grid in the report
    selection = json.loads((demo_run / "temporal/rosa+temporal/selection.json").read_text())
    assert selection["split"] == "val" and len(selection["grid"]) == 6 * 4
    assert "| ROSA + temporal |" in table and "### ROSA + temporal" in table


def test_segment_stage_masks_every_phrase_of_every_clip_on_every_frame(demo_run: Path) -> None:
    from nvos.phrases import clean_narration

    clips = storage.read_table(demo_run / "clips.parquet", "clips").to_pylist()
    narrations = {c["clip_id"]: clean_narration(c["narration"]) for c in clips}
    phrases = storage.read_table(demo_run / "segment/phrases.parquet", "phrases").to_pylist()
    assert {p["source"] for p in phrases} == {"parser"}  # free text: the tags are gone
    assert {p["clip_id"] for p in phrases} == set(narrations)  # every clip, training included
    rows = [
        row
        for shard in ("s00000", "s00001")
        for row in storage.read_table(demo_run / f"segment/{shard}.parquet", "segment_masks")
        .drop_columns(["rle_counts"])
        .to_pylist()
    ]
    frames: dict[tuple[str, int], set[int]] = {}
    for row in rows:
        frames.setdefault((row["clip_id"], row["phrase_id"]), set()).add(row["frame_index"])
        assert narrations[row["clip_id"]][row["char_start"] : row["char_end"]] == row["text"]
    assert set(frames) == {(p["clip_id"], p["phrase_id"]) for p in phrases}
    assert {row["source"] for row in rows} == {"keyframe", "propagated"}
    annotated: dict[str, set[int]] = {}
    for a in storage.read_table(demo_run / "annotations.parquet", "annotations").to_pylist():
        annotated.setdefault(a["clip_id"], set()).add(a["frame_index"])
    for (clip_id, _), found in frames.items():  # every frame of the clip's window
        assert sorted(found) == list(range(min(found), max(found) + 1))
        assert annotated.get(clip_id, set()) <= found
    reconciled = skips.read_reconciliation(demo_run / "segment/reconciliation.csv")
    final = {r["stage"]: r for r in reconciled}["predictions/rosa+temporal+flow"]
    assert (final["clips_in"], final["clips_out"]) == (10, 10)
    # the free-text path scored beside the tagged protocol (val and test clips only)
    table = (demo_run / "report/table.md").read_text()
    assert "| ROSA + temporal + flow + free text | narrations only |" in table
    records = [
        storage.read_provenance(demo_run / f"predictions/{FREE_TEXT_ROW}/{shard}.parquet")
        for shard in ("s00000", "s00001")
    ]
    assert sum(r["objects"] for r in records) >= sum(r["matched_objects"] for r in records) > 0


def test_nvos_segment_runs_a_demo_video_with_the_trained_model(
    demo_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One command, one video: the workflow's segment stage on a one-clip run (docs/segment.md)."""
    from pycocotools import mask as mask_utils

    from nvos.tags import strip_tags

    lines = (demo_run / "demo_data/manifest.jsonl").read_text().splitlines()
    clip = next(json.loads(x) for x in lines if json.loads(x)["split"] == "test")
    video = demo_run / "demo_data" / clip["video"]
    narration = strip_tags(clip["narration"])
    model = demo_run / "models/rosa/checkpoint.pt"
    small = tmp_path / "small.yaml"  # the demo run's frames and proposals (features: the model's)
    small.write_text(yaml.safe_dump({k: SMALL_DEMO[k] for k in ("frames", "proposals")}))
    command = [
        sys.executable, "-m", "nvos.cli", "--config", str(small), "segment", str(video),
        "--narration", narration, "--start", str(clip["start_sec"]),
        "--end", str(clip["start_sec"] + 1.0), "--model", str(model),
        "--out", str(tmp_path / "out"),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, env=CPU_ONLY)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "with rosa+temporal+flow" in done.stdout  # the model's run chose its decoder on val
    name = video.stem
    masks = tmp_path / f"out/results/{name}/segment/s00000.parquet"
    assert str(masks) in done.stdout
    table = storage.read_table(masks, "segment_masks").to_pylist()
    frames = {}
    for row in table:
        assert narration[row["char_start"] : row["char_end"]] == row["text"]
        frames.setdefault(row["phrase_id"], set()).add(row["frame_index"])
    assert len(frames) >= 2 and len({frozenset(f) for f in frames.values()}) == 1
    # the overlay video has a frame per masked frame; the JSON's RLE are the table's masks
    import cv2

    capture = cv2.VideoCapture(str(tmp_path / f"out/{name}.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == len(next(iter(frames.values())))
    export = json.loads((tmp_path / f"out/{name}.ytvis.json").read_text())
    track = export["annotations"][0]
    stored = {(r["frame_index"]): r for r in table if r["phrase_id"] == track["phrase_id"]}
    video_row = export["videos"][0]
    for index, rle in zip(video_row["frame_indices"], track["segmentations"], strict=True):
        if rle is not None:
            row = stored[index]
            expected = rle_decode(row)
            assert (mask_utils.decode(rle) == expected).all()
    # the checkpoint records its features: a config asking for other ones is refused at once
    from nvos.cli import main

    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump({"features": {"clip": {"model": "ViT-B-16"}}}))
    assert main(["--config", str(other), *command[5:-1], str(tmp_path / "out2")]) == 1
    assert "was trained on features.clip" in capsys.readouterr().err
    assert not (tmp_path / "out2/results").exists()


def rle_decode(row: dict) -> object:
    from nvos import rle

    return rle.decode(row["rle_counts"], row["height"], row["width"])


def test_rerun_has_nothing_to_do_and_config_change_reruns_dependents(demo_run: Path) -> None:
    workdir = demo_run.parents[1]
    assert planned_jobs(snakemake(workdir, "-n")) == {}
    changed = json.loads(json.dumps(SMALL_DEMO))
    changed["frames"]["max_side"] = 128
    jobs = planned_jobs(snakemake(workdir, "-n", config=changed))
    assert jobs.get("frames_shard") == 2 and jobs.get("proposals_shard") == 2
    assert "dataset" not in jobs and "demo_data" not in jobs
    changed = json.loads(json.dumps(SMALL_DEMO))
    changed["proposals"]["max_per_frame"] = 4
    jobs = planned_jobs(snakemake(workdir, "-n", config=changed))
    assert jobs.get("proposals_shard") == 2 and "frames_shard" not in jobs


def test_invalid_config_stops_with_the_key_path(tmp_path: Path) -> None:
    bad = json.loads(json.dumps(SMALL_DEMO))
    bad["frames"]["per_clip"] = "six"
    bad["frames"]["colour"] = True
    result = snakemake(tmp_path, "-n", config=bad)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "frames.per_clip: 'six' is not of type 'integer'" in output
    assert "frames.colour: unknown key" in output


def test_bad_manifest_stops_the_dataset_rule(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text(
        '{"clip_id": "a", "video": "missing.mp4", "split": "val", "narration": "take cup"}\n'
        "{not json\n"
    )
    config = {  # the one readable split (val) is all the start checks can see
        "run": "bad",
        "dataset": {"manifest": str(manifest)},
        "predict": {"splits": ["val"]},
        "evaluate": {"methods": ["oracle"], "splits": ["val"], "train_split": None},
    }
    result = snakemake(tmp_path, "dataset", config=config)
    assert result.returncode != 0
    log = (tmp_path / "results/bad/logs/dataset.log").read_text()
    assert f"{manifest}:1" in log and "missing.mp4" in log
    assert f"{manifest}:2" in log
    assert not (tmp_path / "results/bad/clips.parquet").exists()


def test_sam_backend_runs_the_proposals_stage(demo_run: Path, tmp_path: Path) -> None:
    """The same stage entry as the rule, with the SAM backend (tiny random model, CPU)."""
    from nvos.config import load_config
    from nvos.pipeline import run_proposals

    proposals = load_config()["proposals"]
    proposals["backend"] = "sam"
    proposals["sam"].update(
        model_type="tiny",
        random_weights=True,
        points_per_side=4,
        pred_iou_thresh=0.0,
        stability_score_thresh=0.0,
    )
    out = tmp_path / "s00000.parquet"
    summary = run_proposals(
        demo_run / "frames/s00000.parquet", out, proposals, tmp_path / "locks", "s00000"
    )
    table = storage.read_table(out, "proposals")
    assert summary.frames > 0 and table.num_rows == summary.proposals
    record = storage.read_provenance(out)
    assert record["backend"]["backend"] == "sam" and record["backend"]["model_type"] == "tiny"
    assert record["config"]["backend"] == "sam" and record["shard"] == "s00000"


def test_imported_predictions_are_inputs_never_recomputed(demo_run: Path) -> None:
    """Last in this file: it adds an imported method to the demo run and its report."""
    from nvos.layout import RunLayout
    from nvos.pipeline import run_import_predictions

    workdir = demo_run.parents[1]
    config = json.loads(json.dumps(SMALL_DEMO))
    config["evaluate"]["imported"] = {"ext": {"supervision": "mask", "display": "External"}}
    config["evaluate"]["methods"].append("ext")
    missing = snakemake(workdir, "evaluate", config=config)
    assert missing.returncode != 0
    log = (demo_run / "logs/predict/ext/s00000.log").read_text()
    assert "are not in the run folder; import them first: nvos import-predictions" in log
    # the oracle's predictions under another name: the workflow takes the files as they are
    layout = RunLayout(str(demo_run))
    run_import_predictions(layout, config, "ext", "parquet", demo_run / "predictions/oracle")
    jobs = planned_jobs(snakemake(workdir, "-n", "evaluate", config=config))
    assert jobs == {"evaluate": 1, "evaluate_method": 2}  # ext on val and test, nothing else
    done = snakemake(workdir, "report", config=config)
    assert done.returncode == 0, done.stderr[-3000:]
    for split in ("val", "test"):
        ext, oracle = (
            json.loads((demo_run / f"metrics/{m}/{split}/summary.json").read_text())
            for m in ("ext", "oracle")
        )
        assert {k: ext[k] for k in ("J", "F", "J_ins", "frames")} == {
            k: oracle[k] for k in ("J", "F", "J_ins", "frames")
        }
    table = (demo_run / "report/table.md").read_text()
    assert "| **Trained with labelled regions** |" in table
    assert "| External | labelled regions |" in table
