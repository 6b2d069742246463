"""rosa.sweep (nvos.rosa.sweep): the grid as variants, the choice on val only, the rosa row copied
from the chosen setting, and the workflow's jobs (a dry run: no job is run)."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest
import yaml

from nvos import skips, storage
from nvos.checks import config_problems
from nvos.config import ConfigError, load_config
from nvos.layout import RunLayout
from nvos.methods import method_names, predict_method_shard
from nvos.methods.rows import PredictionRows, ScoreRows
from nvos.rosa.config import resolve_variant
from nvos.rosa.sweep import (
    Candidate,
    choose,
    read_sweep_table,
    select_sweep,
    selection_inputs,
    sweep_points,
)

REPO = Path(__file__).resolve().parents[1]
SWEEP = {"lr": [0.001, 0.01], "max_regions": [5, 10]}


def swept_config(sweep: dict | None = None) -> dict:
    """The default config with ``rosa.sweep`` set."""
    config = load_config()
    config["rosa"]["sweep"] = copy.deepcopy(SWEEP if sweep is None else sweep)
    return config


def test_the_grid_becomes_variants_named_by_their_settings() -> None:
    rosa = swept_config()["rosa"]
    points = sweep_points(rosa)
    assert list(points.values()) == [
        {"lr": 0.001, "max_regions": 5},
        {"lr": 0.001, "max_regions": 10},
        {"lr": 0.01, "max_regions": 5},
        {"lr": 0.01, "max_regions": 10},
    ]
    assert all(re.fullmatch(r"rosa-sw-[0-9a-f]{8}", name) for name in points)
    # A grown grid keeps the names (and so the trained models) of the settings it had.
    grown = swept_config({"lr": [0.001, 0.01, 0.03], "max_regions": [5, 10]})["rosa"]
    assert set(points) < set(sweep_points(grown))
    # A point is the rosa variant (the base group and its overrides) with the point's values.
    rosa["variants"]["rosa"] = {"dim": 64}
    name = next(n for n, p in sweep_points(rosa).items() if p == {"lr": 0.01, "max_regions": 10})
    resolved = resolve_variant(rosa, name)
    assert (resolved.train.lr, resolved.max_regions, resolved.dim) == (0.01, 10, 64)
    assert resolved.train.epochs == rosa["train"]["epochs"]  # the rest as the group says
    assert sweep_points({**rosa, "sweep": {}}) == {}  # empty = off


def test_the_rosa_row_is_the_chosen_point_and_the_others_are_trained() -> None:
    config = swept_config()
    names = method_names(config)
    assert names["rosa_chosen"] == ["rosa"]
    assert "rosa" not in names["rosa"]  # not trained itself
    assert names["rosa"] == [
        "rosa_noctx",
        "rosa_vna_only",
        "rosa_rpa_only",
        *sweep_points(config["rosa"]),
    ]
    plain = load_config()
    assert method_names(plain)["rosa_chosen"] == []
    assert "rosa" in method_names(plain)["rosa"]
    assert config_problems(config) == []


@pytest.mark.parametrize(
    ("sweep", "message"),
    [
        ({"learning_rate": [0.1]}, "rosa.sweep.learning_rate: not a key of rosa or rosa.train"),
        ({"lr": []}, "rosa.sweep.lr: a non-empty list"),
        ({"variants": [{}]}, "rosa.sweep.variants: not a key"),
    ],
)
def test_a_bad_sweep_names_its_key(sweep: dict, message: str) -> None:
    problems = config_problems(swept_config(sweep))
    assert any(p.startswith(message) for p in problems), problems


def test_a_swept_value_outside_the_schema_names_the_point() -> None:
    problems = config_problems(swept_config({"max_regions": [0]}))
    assert any(p.startswith("rosa.sweep.rosa-sw-") and "max_regions" in p for p in problems)
    no_rosa = swept_config()
    del no_rosa["rosa"]["variants"]["rosa"]
    with pytest.raises(ConfigError, match="rosa.variants lacks"):
        sweep_points(no_rosa["rosa"])


def test_selection_reads_only_val_files() -> None:
    config = swept_config()
    layout = RunLayout("results/x")
    inputs = selection_inputs(config, layout)
    paths = [p for files in inputs.values() for p in files]
    assert len(inputs["summaries"]) == len(inputs["train_logs"]) == 4
    assert all("/metrics/" not in p or p.endswith("/val/summary.json") for p in inputs["summaries"])
    assert not any("/test/" in p or "annotations" in p for p in paths)
    config["evaluate"]["splits"] = ["test"]  # val not scored: the validation VNA chooses
    assert list(selection_inputs(config, layout)) == ["train_logs"]


def candidate(name: str, jf: float | None, vna: float | None) -> Candidate:
    return Candidate(name, "", jf, None if jf is None else jf - 0.1, vna)


def test_choose_by_val_jf_then_validation_vna() -> None:
    a, b, c = candidate("a", 0.3, 2.0), candidate("b", 0.5, 3.0), candidate("c", 0.5, 1.0)
    assert choose([a, b, c], "val_jf") == (c, "val_jf")  # tie on J&F: the lower VNA
    assert choose([a, b, c], "val_vna") == (c, "val_vna")
    assert choose([a, b], "val_vna") == (a, "val_vna")
    no_masks = [candidate("a", None, 2.0), candidate("b", None, 1.5)]  # val without masks
    assert choose(no_masks, "val_jf") == (no_masks[1], "val_vna")
    unmeasured = [candidate("a", None, None), candidate("b", None, None)]
    assert choose(unmeasured, "val_vna")[0].variant == "a"  # nothing measured: the first


def write_run(root: Path, poison_test: bool) -> tuple[dict, list[str], list[str]]:
    """Train logs and val summaries of a 3-point sweep; with ``poison_test``, test summaries and
    annotations that would choose otherwise (and cannot even be parsed)."""
    layout = RunLayout(str(root))
    points = {"rosa-sw-a": {"lr": 0.1}, "rosa-sw-b": {"lr": 0.01}, "rosa-sw-c": {"lr": 0.001}}
    val_jf, val_vna = [0.2, 0.4, 0.3], [[2.0, 1.5], [1.9, 1.7], [1.0, 1.2]]
    logs, summaries = [], []
    for (name, _), jf, vna in zip(points.items(), val_jf, val_vna, strict=True):
        log = Path(layout.train_log(name))
        log.parent.mkdir(parents=True)
        rows = "".join(f"{s},0,1,1,1,0.1,1,{v}\n" for s, v in zip((5, 10), vna, strict=True))
        log.write_text("step,epoch,loss,vna,rpa,lr,clips_per_s,val_vna\n0,0,1,1,1,0.1,1,\n" + rows)
        summary = Path(layout.summary(name, "val"))
        summary.parent.mkdir(parents=True)
        summary.write_text(json.dumps({"split": "val", "J&F": jf, "J": jf - 0.05}))
        logs.append(str(log))
        summaries.append(str(summary))
        if poison_test:
            test = Path(layout.summary(name, "test"))
            test.parent.mkdir(parents=True)
            test.write_text('{"split": "test", "J&F": 0.99' if name == "rosa-sw-a" else "{")
    if poison_test:
        Path(layout.annotations).write_text("not parquet")
    return points, logs, summaries


@pytest.mark.parametrize("poison_test", [False, True])
def test_select_sweep_never_reads_test(tmp_path: Path, poison_test: bool) -> None:
    points, logs, summaries = write_run(tmp_path, poison_test)
    out = tmp_path / "sweep"
    selection = select_sweep(points, "val_jf", logs, summaries, out / "s.json", out / "t.csv")
    assert selection["chosen"] == "rosa-sw-b"  # the best val J&F (test would say rosa-sw-a)
    assert selection["settings"] == {"lr": 0.01} and selection["basis"] == "val_jf"
    assert not any("/test/" in p or "annotations" in p for p in selection["read"])
    rows = read_sweep_table(out / "t.csv")
    assert [(r["variant"], r["chosen"]) for r in rows] == [
        ("rosa-sw-a", "False"), ("rosa-sw-b", "True"), ("rosa-sw-c", "False"),
    ]  # fmt: skip
    assert [float(r["val_vna"]) for r in rows] == [1.5, 1.7, 1.0]  # the lowest of each log
    by_vna = select_sweep(points, "val_vna", logs, None, out / "v.json", out / "v.csv")
    assert by_vna["chosen"] == "rosa-sw-c" and by_vna["basis"] == "val_vna"
    test_summary = RunLayout(str(tmp_path)).summary("rosa-sw-a", "test")
    Path(test_summary).parent.mkdir(parents=True, exist_ok=True)
    Path(test_summary).write_text(json.dumps({"split": "test", "J&F": 0.9}))
    with pytest.raises(ValueError, match="only 'val' chooses"):
        select_sweep(points, "val_jf", logs, [test_summary, *summaries[1:]], out / "x", out / "y")


def test_the_rosa_row_copies_the_chosen_predictions(tmp_path: Path) -> None:
    config = swept_config({"lr": [0.001, 0.01]})
    layout = RunLayout(str(tmp_path))
    clips = {"clip_id": ["c0", "c1", "c2"], "split": ["val", "test", "train"]}
    clips.update({k: ["x"] * 3 for k in ("video", "narration")}, shard=["s00000"] * 3)
    clips.update({k: [0.0] * 3 for k in ("start_sec", "end_sec", "fps")})
    storage.write_table(pa.table(clips), layout.clips, "clips")
    points = sweep_points(config["rosa"])
    for i, name in enumerate(points):
        rows = PredictionRows()
        for clip in ("c0", "c1"):
            rows.add(clip, 0, "1", 3, i, 0.5 + i, 4, 4, b"4")
        rows.write(layout.predictions(name, "s00000"), {"variant": name})
        scores = ScoreRows()
        scores.add("c0", 0, "1", 3, [0, 1], [0.5, 0.5 + i])
        scores.write(layout.scores(name, "s00000"), {"variant": name})
        skipped = [skips.Skip("c2", "split_not_predicted", detail="split train")]
        ledger = skips.Ledger.of(
            f"predictions/{name}", "s00000", ["c0", "c1", "c2"], ["c0", "c1"], skipped
        )
        skips.write_ledger(ledger, layout.skipped(f"predictions/{name}", "s00000"))
    chosen = list(points)[1]
    Path(layout.sweep_selection).parent.mkdir(parents=True)
    Path(layout.sweep_selection).write_text(json.dumps({"chosen": chosen, "label": "lr=0.01"}))
    result = predict_method_shard(config, layout, "rosa", "s00000")
    copied = storage.read_table(layout.predictions("rosa", "s00000"), "predictions")
    assert copied.equals(storage.read_table(layout.predictions(chosen, "s00000"), "predictions"))
    assert copied["proposal_id"].to_pylist() == [1, 1]
    copied_scores = storage.read_table(layout.scores("rosa", "s00000"), "region_scores")
    assert copied_scores["scores"].to_pylist() == [[0.5, 1.5]]  # the chosen point's
    provenance = storage.read_provenance(layout.predictions("rosa", "s00000"))
    assert provenance["sweep"]["chosen"] == chosen and provenance["method"] == "rosa"
    assert result.ledger.counts() == {
        "clips_in": 3, "clips_out": 2, "clips_skipped": 1, "frames_skipped": 0,
    }  # fmt: skip
    assert result.ledger.stage == "predictions/rosa"


def test_the_workflow_plans_the_sweep_and_scores_test_only_for_the_rows(tmp_path: Path) -> None:
    layer = {
        "dataset": {"demo": {"clips": 10}},
        "shards": {"clips_per_shard": 5},
        "rosa": {"variants": {"rosa": {}, "rosa_noctx": {"use_context": False}}, "sweep": SWEEP},
        "evaluate": {"methods": ["rosa", "rosa_noctx", "oracle"]},
    }
    (tmp_path / "layer.yaml").write_text(yaml.safe_dump(layer))
    command = [
        sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(tmp_path),
        "-n", "--cores", "1", "--configfile", str(REPO / "config/config.yaml"),
        str(tmp_path / "layer.yaml"),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = re.findall(r"^rule (\w+):\n((?:    .*\n)*)", result.stdout, re.M)
    (select,) = [body for rule, body in jobs if rule == "select_sweep"]
    inputs = re.search(r"input: (.*)", select).group(1).split(", ")  # type: ignore[union-attr]
    assert len(inputs) == 8 and not any("/test/" in p or "annotations" in p for p in inputs)
    scored = sorted(re.search(r"wildcards: method=(.*), split=(\w+)", b).groups() for r, b in jobs
                    if r == "evaluate_method")  # type: ignore[union-attr]  # fmt: skip
    swept = [(m, s) for m, s in scored if m.startswith("rosa-sw-")]
    assert len(swept) == 4 and {s for _, s in swept} == {"val"}  # no sweep point on test
    assert ("rosa", "test") in scored and ("rosa_noctx", "test") in scored
    trained = [b for r, b in jobs if r == "train"]
    assert len(trained) == 5 and not any("variant=rosa," in b for b in trained)
    assert len([r for r, _ in jobs if r == "rosa_chosen_shard"]) == 2
