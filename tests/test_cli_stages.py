"""Every stage command of ``nvos`` on one tiny run folder (6 demo clips, one shard): each writes
the files of its stage in the run layout, as the workflow's rule would."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from nvos import storage
from nvos.cli import main
from nvos.layout import RunLayout

SHARD = "s00000"
TINY = {
    "dataset": {"demo": {"clips": 6, "seed": 3}},
    "shards": {"clips_per_shard": 8},
    "frames": {"per_clip": 1, "max_side": 96},
    "proposals": {"max_per_frame": 4},
    "rosa": {
        "dim": 16,
        "context_layers": 0,
        "max_regions": 4,
        "train": {"batch_size": 2, "epochs": 1, "warmup_steps": 0, "restarts": 1},
        "variants": {"rosa": {}},
    },
    "evaluate": {"methods": ["sam_clip", "rosa", "oracle"], "splits": ["val", "test"]},
    "report": {"overlay_clips": 1, "overlay_frames": 1},
}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """The run folder after every stage command, in workflow order, and each command's output."""
    root = tmp_path_factory.mktemp("cli_run")
    layer = root / "tiny.yaml"
    layer.write_text(yaml.safe_dump({**TINY, "gpu_lock_dir": str(root / "locks")}))
    layout = RunLayout.at(root / "results" / "tiny")
    commands = {
        "demo-data": ["demo-data", layout.demo_data],
        "dataset": ["dataset", layout.root],
        "frames": ["frames", layout.root, "--shard", SHARD],
        "proposals": ["proposals", layout.root, "--shard", SHARD],
        "phrases": ["phrases", layout.root],
        "features": ["features", layout.root, "--shard", SHARD],
        "train": ["train", layout.root, "--variant", "rosa"],
        "predict": [
            *(
                ["predict", layout.root, "--shard", SHARD, "--method", m]
                for m in TINY["evaluate"]["methods"]
            )
        ],
        "evaluate": [
            ["evaluate", layout.root, "--method", m, "--split", s]
            for m in TINY["evaluate"]["methods"]
            for s in ("val", "test")
        ],
        "skips": ["skips", layout.root],
        "report": ["report", layout.root],
        "export-davis": ["export-davis", layout.root, "--method", "rosa", "--out", str(root / "d")],
    }
    codes = {}
    for name, argvs in commands.items():
        argvs = argvs if isinstance(argvs[0], list) else [argvs]
        codes[name] = [main(["--config", str(layer), *argv]) for argv in argvs]
    return {"layout": layout, "codes": codes, "root": root}


def ok(run: dict[str, object], command: str) -> RunLayout:
    assert set(run["codes"][command]) == {0}, run["codes"]
    return run["layout"]


def test_demo_data(run: dict[str, object]) -> None:
    layout = ok(run, "demo-data")
    lines = (Path(layout.demo_data) / "manifest.jsonl").read_text().splitlines()
    assert len(lines) == TINY["dataset"]["demo"]["clips"]  # the config's count, not a default


def test_dataset(run: dict[str, object]) -> None:
    layout = ok(run, "dataset")
    clips = storage.read_table(layout.clips, "clips")
    assert clips.num_rows == 6 and set(clips["shard"].to_pylist()) == {SHARD}
    assert Path(layout.annotations).is_file()


def test_frames(run: dict[str, object]) -> None:
    layout = ok(run, "frames")
    assert storage.read_table(layout.frames(SHARD), "frames").num_rows > 0
    assert Path(layout.skipped("frames", SHARD)).is_file()


def test_proposals(run: dict[str, object]) -> None:
    layout = ok(run, "proposals")
    assert storage.read_table(layout.proposals(SHARD), "proposals").num_rows > 0
    assert Path(layout.skipped("proposals", SHARD)).is_file()


def test_phrases(run: dict[str, object]) -> None:
    layout = ok(run, "phrases")
    assert storage.read_table(layout.phrases, "phrases").num_rows > 0
    assert Path(layout.skipped("phrases")).is_file()


def test_features(run: dict[str, object]) -> None:
    layout = ok(run, "features")
    for path in (layout.regions(SHARD), layout.text(SHARD), layout.skipped("features", SHARD)):
        assert Path(path).is_file(), path
    for kind in ("regions", "text"):  # ROSA's cache: made by the features stage
        assert Path(layout.feature_cache(SHARD, kind)).is_file()


def test_train(run: dict[str, object]) -> None:
    layout = ok(run, "train")
    assert Path(layout.checkpoint("rosa")).is_file() and Path(layout.train_log("rosa")).is_file()


def test_predict(run: dict[str, object]) -> None:
    layout = ok(run, "predict")
    for method in TINY["evaluate"]["methods"]:
        table = storage.read_table(layout.predictions(method, SHARD), "predictions")
        assert table.num_rows > 0, method
        assert Path(layout.skipped(f"predictions/{method}", SHARD)).is_file()
    assert storage.read_provenance(layout.predictions("rosa", SHARD))["method"] == "rosa"


def test_evaluate(run: dict[str, object]) -> None:
    layout = ok(run, "evaluate")
    summary = json.loads(Path(layout.summary("oracle", "val")).read_text())
    assert summary["objects"] > 0 and 0 < summary["J"] <= 1
    assert Path(layout.per_object("rosa", "test")).is_file()


def test_skips(run: dict[str, object]) -> None:
    layout = ok(run, "skips")
    assert Path(layout.skipped_csv).is_file()
    stages = [row.split(",")[0] for row in Path(layout.reconciliation).read_text().splitlines()]
    assert "predictions/rosa" in stages and "frames" in stages


def test_report(run: dict[str, object]) -> None:
    layout = ok(run, "report")
    table = Path(layout.report_file("table.md")).read_text()
    assert "ROSA" in table and "Skipped clips" in table  # the skip reconciliation is shown


def test_export_davis(run: dict[str, object]) -> None:
    ok(run, "export-davis")
    assert list((run["root"] / "d").rglob("*.png"))


def test_predict_names_an_unknown_method(
    run: dict[str, object], capsys: pytest.CaptureFixture
) -> None:
    layout = run["layout"]
    assert main(["predict", layout.root, "--shard", SHARD, "--method", "rosaa"]) == 1
    assert "nvos predict: --method: unknown method 'rosaa'" in capsys.readouterr().err
