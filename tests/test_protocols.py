"""Official DAVIS 2017 / VOST protocols: the official evaluators' own numbers on golden data.

``tests/data/protocols/`` (copy of ``../shared/data/protocols/`` without the JPEGs, results in
``pred/``): the CSVs the unmodified official scripts wrote, and the per-frame values they computed
(``full_precision.json``). Our protocols must give the same CSV text and the same per-frame values.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import DATA
from PIL import Image
from tables import write_clips

from nvos import rle, storage
from nvos.evaluation import evaluate_method
from nvos.evaluation.official import evaluate_folder
from nvos.evaluation.protocols import (
    PROTOCOLS,
    ProtocolError,
    decay_bins,
    get_protocol,
    last_start,
    object_count,
    statistics,
)
from nvos.export import export_davis

GOLDEN = DATA / "protocols"


def expected(name: str) -> tuple[str, str, dict]:
    folder = GOLDEN / name / "expected"
    return (
        (folder / "global_results-val.csv").read_text(),
        (folder / "per-sequence_results-val.csv").read_text(),
        json.loads((folder / "full_precision.json").read_text()),
    )


@pytest.mark.parametrize("name", ["davis", "vost"])
def test_official_csvs_are_reproduced(name: str) -> None:
    global_csv, per_sequence_csv, _ = expected(name)
    result = evaluate_folder(name, GOLDEN / name, GOLDEN / name / "pred", "val")
    assert result.global_csv() == global_csv
    assert result.per_sequence_csv() == per_sequence_csv


@pytest.mark.parametrize("name", ["davis", "vost"])
def test_per_frame_values_and_statistics_match_full_precision(name: str) -> None:
    _, _, golden = expected(name)
    result = evaluate_folder(name, GOLDEN / name, GOLDEN / name / "pred", "val")
    assert [o.key for o in result.objects] == [o["key"] for o in golden["objects"]]
    for ours, theirs in zip(result.objects, golden["objects"], strict=True):
        assert list(ours.frames) == theirs["evaluated_frames"]
        assert ours.j.tolist() == theirs["J"]["per_frame"], ours.key  # exact
        stats = ours.j_stats
        assert [stats.mean, stats.recall, stats.decay] == [
            theirs["J"][k] for k in ("M", "R", "D")
        ], ours.key
        if name == "davis":
            assert ours.f is not None and ours.f_stats is not None
            assert ours.f.tolist() == theirs["F"]["per_frame"], ours.key
            f = ours.f_stats
            assert [f.mean, f.recall, f.decay] == [theirs["F"][k] for k in ("M", "R", "D")]
        else:
            assert ours.f is None and ours.j_last is not None
            last = ours.j_last
            assert [last.mean, last.recall, last.decay] == [
                theirs["J_last"][k] for k in ("M", "R", "D")
            ], ours.key
    assert result.global_row() == golden["global"]


def test_vost_drops_labels_above_k_with_a_warning() -> None:
    result = evaluate_folder("vost", GOLDEN / "vost", GOLDEN / "vost" / "pred", "val")
    assert result.warnings == [
        "0002_peel_polygon: labels above K = 1 ignored on frames ['frame00024']"
    ]


def copy_dataset(name: str, tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / name
    shutil.copytree(GOLDEN / name, root)
    return root, root / "pred"


def test_davis_label_above_k_is_an_error_naming_the_folder(tmp_path: Path) -> None:
    root, pred = copy_dataset("davis", tmp_path)
    path = pred / "shapes-shift" / "00003.png"
    labels = np.array(Image.open(path))
    labels[0, 0] = 3  # shapes-shift has K = 2
    Image.fromarray(labels).save(path)
    with pytest.raises(ProtocolError, match=r"shapes-shift: frames \['00003'\] hold a label above"):
        evaluate_folder("davis", root, pred, "val")


def test_a_missing_result_png_is_an_error_naming_it(tmp_path: Path) -> None:
    root, pred = copy_dataset("vost", tmp_path)
    (pred / "0003_occlude_three" / "frame00018.png").unlink()
    with pytest.raises(ProtocolError, match=r"frame00018\.png: result is missing"):
        evaluate_folder("vost", root, pred, "val")


def test_first_and_last_result_frames_are_never_read(tmp_path: Path) -> None:
    root, pred = copy_dataset("davis", tmp_path)
    for sequence in (root / "Annotations" / "480p").iterdir():
        frames = sorted((pred / sequence.name).glob("*.png"))
        frames[0].unlink()
        frames[-1].unlink()
    result = evaluate_folder("davis", root, pred, "val")
    assert result.global_csv() == expected("davis")[0]


def test_rgb_results_and_too_short_sequences_are_errors(tmp_path: Path) -> None:
    root, pred = copy_dataset("davis", tmp_path)
    path = pred / "late-object" / "00004.png"
    Image.open(path).convert("RGB").save(path)
    with pytest.raises(ProtocolError, match=r"00004\.png: result must be an indexed"):
        evaluate_folder("davis", root, pred, "val")
    annotations = root / "Annotations" / "480p" / "late-object"
    for frame in sorted(annotations.glob("*.png"))[2:]:
        frame.unlink()
    with pytest.raises(ProtocolError, match=r"late-object: 2 annotation PNGs; .* at least 3"):
        evaluate_folder("davis", root, pred, "val")


def test_sets_the_official_scripts_reject_are_errors() -> None:
    with pytest.raises(ProtocolError, match=r"set 'test'.* \['train', 'val', 'test-dev'"):
        evaluate_folder("davis", GOLDEN / "davis", GOLDEN / "davis" / "pred", "test")
    with pytest.raises(ProtocolError, match="unknown protocol 'davis2017'"):
        get_protocol("davis2017")
    with pytest.raises(ProtocolError, match="no official folder layout"):
        evaluate_folder("all_frames", GOLDEN / "davis", GOLDEN / "davis" / "pred")


def test_protocol_rules() -> None:
    davis, vost, every = PROTOCOLS["davis"], PROTOCOLS["vost"], PROTOCOLS["all_frames"]
    # K is the highest label on the first frame; a lower absent label is still an object
    assert object_count(davis, [False, True, False]) == 2
    assert object_count(davis, [False, False]) == 0
    assert object_count(every, [False, True, False]) == 3
    # J_last: the last quarter of the evaluated frames (2 of 8, 7 and 6; all of 1)
    assert [8 - last_start(vost, 8), 7 - last_start(vost, 7), 6 - last_start(vost, 6)] == [2, 2, 2]
    assert last_start(vost, 1) == 0
    with pytest.raises(ProtocolError):
        last_start(davis, 8)


def test_statistics_on_hand_computed_values() -> None:
    values = np.array([1.0, 0.8, 0.6, 0.4, 0.2])  # bins [0:2], [1:3], [2:4], [3:5] (shared edges)
    assert decay_bins(5).tolist() == [0, 1, 2, 3, 4]
    stats = statistics(values)
    assert stats.mean == pytest.approx(0.6)
    assert stats.recall == pytest.approx(0.6)  # 1.0, 0.8, 0.6 are above 0.5
    assert stats.decay == pytest.approx(0.9 - 0.3)
    assert statistics(np.array([0.7])).decay == 0.0
    # the official uint8 cast wraps the bin edges of long videos: kept, so Decay stays official
    assert decay_bins(300).tolist() == [0, 75, 150, 224, 299 - 256]
    assert math.isnan(statistics(np.linspace(1, 0, 300)).decay)  # empty last bin, as official
    with pytest.raises(ValueError):
        statistics(np.array([]))


def rect(y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    mask = np.zeros((40, 60), dtype=bool)
    mask[y0:y1, x0:x1] = True
    return mask


def test_pipeline_davis_equals_official_rules_on_its_own_export(tmp_path: Path) -> None:
    """evaluate.protocol davis on the pipeline's tables = the official rules on export-davis's
    PNGs (no overlapping predictions, so the PNGs hold every predicted pixel)."""
    write_clips(tmp_path / "clips.parquet", [("c1", "val", "Put the [cup]<4> on the [tray]<2>.")])
    gt = {(f, "4"): rect(5, 15, 5 + f, 20 + f) for f in range(5)}
    gt |= {(f, "2"): rect(22, 36, 30, 55 - 2 * f) for f in range(5)}
    pred = {(f, "4"): rect(6, 15, 5 + 2 * f, 21) for f in range(5)}
    pred |= {(f, "2"): rect(24, 38, 31, 50) for f in range(1, 4)}  # frames 0 and 4: missing
    annotations = pa.table(
        {
            "clip_id": ["c1"] * len(gt),
            "frame_index": [f for f, _ in gt],
            "object_id": [o for _, o in gt],
            "instance": pa.array([0] * len(gt), pa.int32()),
            "height": pa.array([40] * len(gt), pa.int32()),
            "width": pa.array([60] * len(gt), pa.int32()),
            "rle_counts": [rle.encode(m) for m in gt.values()],
        }
    )
    pq.write_table(annotations, tmp_path / "ann.parquet")
    predictions = pa.table(
        {
            "clip_id": ["c1"] * len(pred),
            "phrase_id": pa.array([0 if o == "4" else 1 for _, o in pred], pa.int32()),
            "object_id": [o for _, o in pred],
            "frame_index": [f for f, _ in pred],
            "proposal_id": pa.array(range(len(pred)), pa.int32()),
            "score": pa.array([0.5] * len(pred), pa.float32()),
            "height": pa.array([40] * len(pred), pa.int32()),
            "width": pa.array([60] * len(pred), pa.int32()),
            "rle_counts": [rle.encode(m) for m in pred.values()],
        }
    )
    storage.write_table(predictions, tmp_path / "pred.parquet", "predictions")
    files = [tmp_path / "pred.parquet"], tmp_path / "clips.parquet", tmp_path / "ann.parquet"
    export = export_davis(*files, tmp_path / "export", with_gt=True)
    assert export.overlaps.pixels == 0
    summary = evaluate_method(
        "m", *files, "val", tmp_path / "out", seen_unseen=False, protocol="davis"
    )
    official = evaluate_folder("davis", tmp_path / "export", tmp_path / "export", "val")
    assert [o.key for o in official.objects] == ["c1_1", "c1_2"]  # cup, tray
    assert [o.frames for o in official.objects] == [("00001", "00002", "00003")] * 2
    row = official.global_row()
    assert summary["J"] == pytest.approx(row["J-Mean"], abs=1e-12)
    assert summary["F"] == pytest.approx(row["F-Mean"], abs=1e-12)
    assert summary["J&F"] == pytest.approx(row["J&F-Mean"], abs=1e-12)
    assert 0.3 < row["J-Mean"] < 0.95  # imperfect predictions: the comparison is not trivial
