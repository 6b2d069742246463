"""nvos import-predictions: the three formats, their errors, and the round trip through export."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from test_export import (
    GT_H,
    GT_W,
    PR_H,
    PR_W,
    box,
    write_annotations,
    write_clips,
    write_predictions,
)

from nvos.cli import main
from nvos.evaluation.stage import evaluate_method
from nvos.export import export_davis
from nvos.imports import PredictionImportError
from nvos.layout import RunLayout
from nvos.methods import describe_methods, member
from nvos.methods.base import ShardJob
from nvos.methods.imported import ImportedPredictionsMissing
from nvos.pipeline import run_import_predictions
from nvos.skips import gather

SHARD = "s00000"
IMPORTED = {"ext": {"supervision": "mask", "display": "External (masks)"}}
CONFIG = {"evaluate": {"imported": IMPORTED}}
# no two objects overlap on a frame, so the PNGs hold every pixel of every prediction
PREDICTIONS = [  # (clip, phrase_id, object_id, frame, score, mask at half size)
    ("clip_a", 0, "2", 10, 0.9, box(PR_H, PR_W, 10, 18, 15, 28)),
    ("clip_a", 1, "1", 10, 0.4, box(PR_H, PR_W, 2, 9, 2, 12)),
    ("clip_a", 1, "1", 20, 0.5, box(PR_H, PR_W, 3, 11, 3, 13)),
    ("clip_b", 0, "7", 5, 0.7, box(PR_H, PR_W, 4, 16, 6, 24)),
]
SCORES = ("J", "F", "J&F", "J_union", "J_ins", "objects", "frames", "missing_frames")


@pytest.fixture
def run(tmp_path: Path) -> RunLayout:
    layout = RunLayout(str(tmp_path / "run"))
    Path(layout.root).mkdir()
    write_clips(Path(layout.clips))
    write_annotations(Path(layout.annotations))
    write_predictions(Path(layout.predictions("rosa", SHARD)), PREDICTIONS)
    return layout


def scores(layout: RunLayout, method: str, split: str) -> tuple[dict, str]:
    out = Path(layout.metrics_dir(method, split))
    summary = evaluate_method(
        method, [layout.predictions(method, SHARD)], layout.clips, layout.annotations, split,
        out, seen_unseen=False,
    )  # fmt: skip
    return {k: summary[k] for k in SCORES}, (out / "per_object.csv").read_text()


def assert_same_metrics(layout: RunLayout, imported: str) -> None:
    for split in ("val", "test"):
        assert scores(layout, imported, split) == scores(layout, "rosa", split)


def test_davis_round_trip_gives_identical_metrics(run: RunLayout, tmp_path: Path) -> None:
    out = tmp_path / "export"
    export_davis([run.predictions("rosa", SHARD)], run.clips, run.annotations, out, with_gt=True)
    summary = run_import_predictions(run, CONFIG, "ext", "davis", out)
    assert summary.masks == len(PREDICTIONS)
    assert summary.skipped["ground_truth_folders"] == 2  # Annotations, ImageSets (no frames)
    assert summary.skipped["empty_object_frames"] == 1  # the pan on clip_a frame 20
    assert summary.skipped["clips_no_tagged_object"] == 1  # clip_train
    assert_same_metrics(run, "ext")
    # the ledger accounts for every clip of the shard
    rows = gather([run.skipped("predictions/ext", SHARD)], *(tmp_path / n for n in "ab"))
    assert rows[0]["clips_in"] == 3 and rows[0]["clips_out"] == 2


def test_davis_without_mapping_uses_the_export_labels(run: RunLayout, tmp_path: Path) -> None:
    out = tmp_path / "export"
    export_davis([run.predictions("rosa", SHARD)], run.clips, run.annotations, out)
    (out / "object_ids.json").rename(tmp_path / "ids.json")
    for png in out.rglob("*.png"):  # file names are frame indices: 00010 -> 10
        assert png.stem.isdigit()
    run_import_predictions(run, CONFIG, "ext", "davis", out)
    assert_same_metrics(run, "ext")
    # a mapping that swaps the labels moves the masks to the other object
    ids = json.loads((tmp_path / "ids.json").read_text())
    ids["sequences"]["clip_a"]["labels"] = {"1": "1", "2": "2"}
    (tmp_path / "ids.json").write_text(json.dumps(ids))
    run_import_predictions(run, CONFIG, "ext", "davis", out, ids=tmp_path / "ids.json")
    assert scores(run, "ext", "val") != scores(run, "rosa", "val")


def coco_rle(mask: np.ndarray) -> dict:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": list(rle["size"]), "counts": rle["counts"].decode()}


def coco_entries() -> list[dict]:
    return [
        {"clip_id": clip, "object_id": object_id, "frame_index": frame,
         "segmentation": coco_rle(mask), "score": score}
        for clip, _, object_id, frame, score, mask in PREDICTIONS
    ]  # fmt: skip


def test_coco_rle_and_parquet_give_identical_metrics(run: RunLayout, tmp_path: Path) -> None:
    path = tmp_path / "masks.json"
    path.write_text(json.dumps(coco_entries()))
    run_import_predictions(run, CONFIG, "ext", "coco-rle", path)
    assert_same_metrics(run, "ext")
    run_import_predictions(run, CONFIG, "ext", "parquet", Path(run.predictions("rosa", SHARD)))
    assert_same_metrics(run, "ext")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"clip_id": "clip_z"}, r"masks.jsonl:2: unknown clip 'clip_z'"),
        ({"object_id": "9"}, r"masks.jsonl:2: clip 'clip_a': unknown object '9'"),
        ({"frame_index": 11}, r"masks.jsonl:2: clip 'clip_a': frame 11 is not an annotated"),
        ({"segmentation": coco_rle(np.zeros((20, 20)))}, r"wrong size: .*masks.jsonl:2.* 20x20"),
        ({"frame_index": 20}, r"masks.jsonl:3: a second mask .* \(the first: .*masks.jsonl:2\)"),
        ({"score": "high"}, r"masks.jsonl:2: score must be a number"),
        ({"segmentation": {"size": [4, 4]}}, r"masks.jsonl:2: segmentation: an RLE must be"),
    ],
)
def test_coco_rle_errors_name_file_and_line(
    run: RunLayout, tmp_path: Path, change: dict, message: str
) -> None:
    entries = coco_entries()
    entries[1] = {**entries[1], **change}  # line 2: clip_a's cup on frame 10
    path = tmp_path / "masks.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in entries))
    with pytest.raises(PredictionImportError, match=message):
        run_import_predictions(run, CONFIG, "ext", "coco-rle", path)
    assert not Path(run.predictions("ext", SHARD)).exists()  # nothing written


def test_davis_errors_name_the_file(run: RunLayout, tmp_path: Path) -> None:
    out = tmp_path / "export"
    export_davis([run.predictions("rosa", SHARD)], run.clips, run.annotations, out)
    png = out / "clip_b" / "00005.png"
    values = np.zeros((GT_H, GT_W), np.uint8)
    values[:2, :2] = 3  # clip_b has one object
    from PIL import Image

    Image.fromarray(values).save(png)
    with pytest.raises(PredictionImportError, match=r"clip_b/00005.png: label 3 is not an object"):
        run_import_predictions(run, CONFIG, "ext", "davis", out)
    Image.fromarray(np.zeros((GT_H, GT_W, 3), np.uint8)).save(png)
    with pytest.raises(PredictionImportError, match=r"00005.png: not an indexed PNG \(mode RGB\)"):
        run_import_predictions(run, CONFIG, "ext", "davis", out)
    png.unlink()
    (out / "clip_q").mkdir()
    with pytest.raises(PredictionImportError, match=r"export/clip_q: unknown clip 'clip_q'"):
        run_import_predictions(run, CONFIG, "ext", "davis", out)


def test_the_method_must_be_configured(run: RunLayout, tmp_path: Path, capsys) -> None:
    with pytest.raises(PredictionImportError, match=r"--method 'other': not a key of evaluate"):
        run_import_predictions(run, CONFIG, "other", "parquet", tmp_path)
    config = tmp_path / "imported.yaml"
    config.write_text(json.dumps({"evaluate": {"imported": IMPORTED}}))
    argv = ["--config", str(config), "import-predictions", run.root, str(tmp_path / "none.json"),
            "--method", "ext", "--format", "coco-rle"]  # fmt: skip
    assert main(argv) == 1
    assert "none.json: no such file or folder" in capsys.readouterr().err


def test_imported_member_describes_and_never_recomputes(run: RunLayout) -> None:
    imported = {**IMPORTED, "weak": {"supervision": "narration"}}
    config = {"evaluate": {"imported": imported}, "rosa": {"variants": {"rosa": {}}}}
    imported = member(config, "weak")
    infos = describe_methods(config, ["weak", "ext", "nobody"])
    assert infos["ext"][0].label == "External (masks)" and infos["ext"][0].supervision == "mask"
    assert infos["weak"][0].label == "weak" and infos["weak"][0].supervision == "narration"
    assert "nobody" not in infos
    assert imported.inputs(config, run, "weak", SHARD) == {}
    match = "nvos import-predictions .* --method weak"
    with pytest.raises(ImportedPredictionsMissing, match=match):
        imported.predict(ShardJob(run, "weak", SHARD, {}))


def test_config_checks_imported_names() -> None:
    from nvos.checks import config_problems
    from nvos.config import ConfigError, load_config, merge, validate_config

    config = merge(load_config(), {"evaluate": {"imported": {"oracle": {"supervision": "mask"}}}})
    assert "evaluate.imported.oracle: an imported method cannot be named like the computed " \
        "method 'oracle'" in config_problems(config)  # fmt: skip
    bad = merge(load_config(), {"evaluate": {"imported": {"a b": {"supervision": "boxes"}}}})
    with pytest.raises(ConfigError, match="evaluate.imported") as error:
        validate_config(bad)
    assert "'boxes' is not one of" in str(error.value)
    assert "does not match" in str(error.value)


def test_every_family_member_describes_its_methods() -> None:
    from nvos.config import load_config
    from nvos.methods import FAMILY, SUPERVISION, MethodInfo

    config = load_config()
    config["evaluate"]["imported"] = IMPORTED
    for candidate in FAMILY:
        for method in candidate.names(config):
            info = candidate.describe(config, method)
            assert isinstance(info, MethodInfo) and info.label, method
            assert info.supervision in SUPERVISION, method
