"""The evaluate stage (DESIGN §8): J, F, J_union, J_ins per object, split means, breakdowns."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tables import write_clips

from nvos import rle, storage
from nvos.evaluation import (
    DuplicatePredictionError,
    ResolutionError,
    evaluate_method,
    tagged_objects,
    to_gt_size,
)
from nvos.evaluation.seen import DEFAULT_SPACY_MODEL
from nvos.metrics import boundary_f, jaccard

H, W = 40, 60


def box(y0: int, y1: int, x0: int, x1: int, shape: tuple[int, int] = (H, W)) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[y0:y1, x0:x1] = True
    return mask


EMPTY = np.zeros((H, W), dtype=bool)


def annotations_table(rows: list[tuple[str, int, str, int, np.ndarray]]) -> pa.Table:
    """rows: (clip_id, frame_index, object_id, instance, mask (H, W))."""
    return pa.table(
        {
            "clip_id": [r[0] for r in rows],
            "frame_index": [r[1] for r in rows],
            "object_id": [r[2] for r in rows],
            "instance": pa.array([r[3] for r in rows], pa.int32()),
            "height": pa.array([r[4].shape[0] for r in rows], pa.int32()),
            "width": pa.array([r[4].shape[1] for r in rows], pa.int32()),
            "rle_counts": [rle.encode(r[4]) for r in rows],
        }
    )


def write_predictions(path: Path, rows: list[tuple[str, int, str | None, int, np.ndarray]]) -> None:
    """rows: (clip_id, phrase_id, object_id, frame_index, mask)."""
    table = pa.table(
        {
            "clip_id": [r[0] for r in rows],
            "phrase_id": pa.array([r[1] for r in rows], pa.int32()),
            "object_id": pa.array([r[2] for r in rows], pa.string()),
            "frame_index": [r[3] for r in rows],
            "proposal_id": pa.array([0] * len(rows), pa.int32()),
            "score": pa.array([1.0] * len(rows), pa.float32()),
            "height": pa.array([r[4].shape[0] for r in rows], pa.int32()),
            "width": pa.array([r[4].shape[1] for r in rows], pa.int32()),
            "rle_counts": [rle.encode(r[4]) for r in rows],
        }
    )
    storage.write_table(table, path, "predictions")


def read_csv(path: Path) -> dict[tuple[str, str], dict[str, str]]:
    with open(path, newline="") as handle:
        return {(r["clip_id"], r["object_id"]): r for r in csv.DictReader(handle)}


def evaluate(tmp: Path, split: str = "val", **kwargs) -> dict:
    kwargs.setdefault("seen_unseen", False)
    paths = kwargs.pop("paths", [tmp / "pred.parquet"])
    return evaluate_method(
        "m", paths, tmp / "clips.parquet", tmp / "ann.parquet", split, tmp / "out", **kwargs
    )


# ---------------------------------------------------------------------------------------------
# Aggregation: per-object mean over frames, then mean over objects


CUP, BOWL, PAN = box(5, 15, 5, 15), box(20, 30, 10, 30), box(0, 10, 40, 50)


@pytest.fixture
def aggregation_case(tmp_path: Path) -> Path:
    """Objects with 4, 4 and 1 frames: object- and frame-weighted means differ."""
    write_clips(
        tmp_path / "clips.parquet",
        [
            ("ca", "val", "Put the [cup]<1> in the [bowl]<2>."),
            ("cb", "val", "Wash the [pan]<5>."),
            ("ct", "train", "The person washes the knife."),
        ],
    )
    ann = [("ca", f, "1", 0, CUP) for f in (0, 1, 2, 3)]
    ann += [("ca", f, "2", 0, BOWL) for f in (0, 1, 2)]  # the bowl is absent at frame 3
    ann += [("cb", 7, "5", 0, PAN)]
    pq.write_table(annotations_table(ann), tmp_path / "ann.parquet")
    half_bowl = box(20, 30, 10, 20)  # J = 100 / 200
    preds = [("ca", 0, "1", f, CUP) for f in (0, 1, 2, 3)]
    preds += [("ca", 1, "2", 0, half_bowl), ("ca", 1, "2", 1, BOWL)]  # frames 2, 3 missing
    preds += [("cb", 0, "5", 7, box(30, 40, 0, 10))]  # disjoint: J = 0
    write_predictions(tmp_path / "pred.parquet", preds)
    return tmp_path


def test_split_mean_is_over_objects_of_per_object_means(aggregation_case: Path) -> None:
    summary = evaluate(aggregation_case)
    # cup 1.0 (4 frames); bowl (0.5 + 1 + 0 [missing, present] + 1 [missing, absent]) / 4;
    # pan 0.0 (1 frame). Frame-weighted would be (4 + 2.5 + 0) / 9 = 0.722.
    j_bowl = (0.5 + 1.0 + 0.0 + 1.0) / 4
    assert summary["J"] == pytest.approx((1.0 + j_bowl + 0.0) / 3)
    f_bowl = np.mean(
        [
            boundary_f(BOWL, box(20, 30, 10, 20)),
            1.0,  # exact
            0.0,  # missing, object present: no predicted boundary
            1.0,  # missing, object absent: both empty
        ]
    )
    f_pan = boundary_f(PAN, box(30, 40, 0, 10))
    assert 0 < f_bowl < 1
    assert summary["F"] == pytest.approx((1.0 + f_bowl + f_pan) / 3)
    assert summary["J&F"] == pytest.approx((summary["J"] + summary["F"]) / 2)
    assert summary["J_union"] == summary["J"]
    assert (summary["objects"], summary["frames"], summary["missing_frames"]) == (3, 9, 2)
    assert summary["clips"] == {"clips": 2, "scored": 2, "untagged": 0, "without_annotations": 0}

    rows = read_csv(aggregation_case / "out" / "per_object.csv")
    assert set(rows) == {("ca", "1"), ("ca", "2"), ("cb", "5")}
    bowl = rows[("ca", "2")]
    assert (bowl["phrase"], bowl["phrase_id"], bowl["frames"]) == ("bowl", "1", "4")
    assert float(bowl["J"]) == pytest.approx(j_bowl)
    assert float(bowl["F"]) == pytest.approx(f_bowl)
    assert bowl["missing_frames"] == "2"
    assert rows[("cb", "5")]["frames"] == "1"
    on_disk = json.loads((aggregation_case / "out" / "summary.json").read_text())
    assert on_disk["J"] == summary["J"]
    assert on_disk["breakdowns_skipped"]["exhaustive"]


def test_parallel_workers_give_the_same_numbers(aggregation_case: Path) -> None:
    serial = evaluate(aggregation_case)
    parallel = evaluate(aggregation_case, workers=2)
    for key in ("J", "F", "J_union", "J_ins", "objects", "frames", "missing_frames"):
        assert parallel[key] == serial[key]


def test_empty_split_writes_an_empty_evaluation(aggregation_case: Path) -> None:
    summary = evaluate(aggregation_case, split="test")
    assert summary["objects"] == 0 and summary["J"] is None
    assert summary["predictions"]["unscored"]["other_split"] == 7
    lines = (aggregation_case / "out" / "per_object.csv").read_text().splitlines()
    assert len(lines) == 1  # the header


# ---------------------------------------------------------------------------------------------
# J_ins, resolution, bookkeeping of unscored rows


def test_j_ins_with_instance_lists_and_connected_components(tmp_path: Path) -> None:
    left, right = box(0, 10, 0, 10), box(0, 10, 20, 30)
    write_clips(tmp_path / "clips.parquet", [("c", "val", "the [onion]<4> and [carrot]<6>")])
    ann = [
        ("c", 0, "4", 0, left),  # two listed instances
        ("c", 0, "4", 1, right),
        ("c", 0, "6", 0, left | right),  # one RLE with two connected components
    ]
    pq.write_table(annotations_table(ann), tmp_path / "ann.parquet")
    write_predictions(tmp_path / "pred.parquet", [("c", 0, "4", 0, left), ("c", 1, "6", 0, right)])
    summary = evaluate(tmp_path)
    rows = read_csv(tmp_path / "out" / "per_object.csv")
    for object_id in ("4", "6"):
        assert float(rows[("c", object_id)]["J_union"]) == pytest.approx(0.5)
        assert float(rows[("c", object_id)]["J"]) == pytest.approx(0.5)
        assert float(rows[("c", object_id)]["J_ins"]) == 1.0
    assert summary["J_ins"] == 1.0
    assert summary["J_union"] == pytest.approx(0.5)


def test_prediction_at_lower_resolution_is_resized_nearest(tmp_path: Path) -> None:
    gt = box(10, 31, 10, 30)
    low = box(5, 15, 5, 15, (H // 2, W // 2))
    write_clips(tmp_path / "clips.parquet", [("c", "val", "the [cup]<1>")])
    pq.write_table(annotations_table([("c", 0, "1", 0, gt)]), tmp_path / "ann.parquet")
    write_predictions(tmp_path / "pred.parquet", [("c", 0, "1", 0, low)])
    summary = evaluate(tmp_path)
    upsampled = low.repeat(2, axis=0).repeat(2, axis=1)  # nearest x2 = pixel repetition
    assert np.array_equal(to_gt_size(low, H, W), upsampled)
    assert summary["J"] == pytest.approx(400 / 420)
    assert summary["F"] == pytest.approx(boundary_f(gt, upsampled))


def test_prediction_of_another_aspect_ratio_is_an_error(tmp_path: Path) -> None:
    write_clips(tmp_path / "clips.parquet", [("c", "val", "the [cup]<1>")])
    pq.write_table(annotations_table([("c", 3, "1", 0, CUP)]), tmp_path / "ann.parquet")
    write_predictions(tmp_path / "pred.parquet", [("c", 0, "1", 3, box(0, 5, 0, 5, (40, 40)))])
    with pytest.raises(ResolutionError, match="clip 'c' phrase 0 frame 3"):
        evaluate(tmp_path)


def test_unscored_predictions_are_counted_by_reason(tmp_path: Path) -> None:
    write_clips(
        tmp_path / "clips.parquet",
        [("c", "val", "the [pan]<3> and [it]<3>, the [lid]<8>"), ("d", "test", "a [cup]<1>")],
    )
    ann = [("c", 0, "3", 0, CUP), ("c", 0, "8", 0, PAN), ("d", 0, "1", 0, CUP)]
    pq.write_table(annotations_table(ann), tmp_path / "ann.parquet")
    write_predictions(
        tmp_path / "pred.parquet",
        [
            ("c", 0, "3", 0, CUP),  # scored
            ("c", 2, None, 0, PAN),  # scored (object_id not given)
            ("c", 1, "3", 0, EMPTY),  # second phrase of object 3: not scored
            ("c", 5, "3", 0, CUP),  # no phrase 5
            ("c", 2, "3", 0 + 1, PAN),  # frame 1 is not annotated... and object mismatch first
            ("c", 0, "3", 9, CUP),  # frame 9 not annotated
            ("zz", 0, "1", 0, CUP),  # unknown clip
            ("d", 0, "1", 0, CUP),  # other split
        ],
    )
    summary = evaluate(tmp_path)
    counts = summary["predictions"]
    assert counts["rows"] == 8
    assert counts["scored"] == 2
    assert counts["unscored"] == {
        "unknown_clip": 1,
        "other_split": 1,
        "unknown_phrase": 1,
        "object_mismatch": 1,
        "not_first_phrase": 1,
        "protocol_frame": 0,
        "protocol_object": 0,
    }
    assert counts["keyframe_only"] == 1  # frame 9: expected of keyframe methods, counted apart
    total = counts["scored"] + counts["keyframe_only"] + sum(counts["unscored"].values())
    assert counts["rows"] == total
    assert counts["examples"]["unknown_clip"] == ["clip 'zz'"]
    assert summary["J"] == 1.0  # the first phrase's predictions, not the second's empty mask


def test_duplicate_predictions_are_an_error_naming_them(tmp_path: Path) -> None:
    write_clips(tmp_path / "clips.parquet", [("c", "val", "the [cup]<1>")])
    pq.write_table(annotations_table([("c", 0, "1", 0, CUP)]), tmp_path / "ann.parquet")
    write_predictions(tmp_path / "a.parquet", [("c", 0, "1", 0, CUP)])
    write_predictions(tmp_path / "b.parquet", [("c", 0, "1", 0, EMPTY)])
    paths = [tmp_path / "a.parquet", tmp_path / "b.parquet"]
    with pytest.raises(DuplicatePredictionError, match=r"clip 'c' phrase 0 frame 0 \(.*a.parquet"):
        evaluate(tmp_path, paths=paths)
    assert not (tmp_path / "out" / "summary.json").exists()


def test_tagged_objects_keep_the_first_phrase() -> None:
    objects = tagged_objects("Lift the [pan]<3> off the [hob]<1>, then rinse [it]<3>.")
    assert [(o.object_id, o.phrase_ids, o.phrase) for o in objects] == [
        ("3", (0, 2), "pan"),
        ("1", (1,), "hob"),
    ]
    with pytest.raises(ValueError, match="clip 'x'"):
        tagged_objects("the [pan<3>", "x")


# ---------------------------------------------------------------------------------------------
# Breakdowns


def test_seen_unseen_by_head_noun_of_the_training_narrations(tmp_path: Path) -> None:
    write_clips(
        tmp_path / "clips.parquet",
        [
            ("t", "train", "#C C washes the knives in the sink"),
            (
                "v",
                "val",
                "Cut the [carrot]<1> with the [small knife]<2> and the [wooden spatula]<3>",
            ),
        ],
    )
    ann = [("v", 0, "1", 0, CUP), ("v", 0, "2", 0, PAN), ("v", 0, "3", 0, BOWL)]
    pq.write_table(annotations_table(ann), tmp_path / "ann.parquet")
    write_predictions(
        tmp_path / "pred.parquet", [("v", 0, "1", 0, CUP), ("v", 1, "2", 0, PAN)]
    )  # spatula: missing
    summary = evaluate(tmp_path, seen_unseen=True)
    rows = read_csv(tmp_path / "out" / "per_object.csv")
    assert [rows[("v", o)]["head_noun"] for o in "123"] == ["carrot", "knife", "spatula"]
    assert [rows[("v", o)]["seen"] for o in "123"] == ["false", "true", "false"]
    seen = summary["breakdowns"]["seen"]
    assert (seen["seen"]["objects"], seen["unseen"]["objects"]) == (1, 2)
    assert seen["seen"]["J"] == 1.0
    assert seen["unseen"]["J"] == pytest.approx(0.5)  # carrot 1.0, spatula missing 0.0


def test_seen_vocabulary_file_gives_the_same_breakdown(tmp_path: Path) -> None:
    """The run's seen.json (rule seen_vocabulary) replaces tagging in every evaluation job."""
    from nvos.evaluation.seen import read_seen_vocabulary, write_seen_vocabulary

    write_clips(
        tmp_path / "clips.parquet",
        [
            ("t", "train", "#C C washes the knives in the sink"),
            ("v", "val", "Cut the [carrot]<1> with the [small knife]<2>"),
        ],
    )
    pq.write_table(
        annotations_table([("v", 0, "1", 0, CUP), ("v", 0, "2", 0, PAN)]), tmp_path / "ann.parquet"
    )
    write_predictions(tmp_path / "pred.parquet", [("v", 0, "1", 0, CUP)])
    seen_path = tmp_path / "seen.json"
    write_seen_vocabulary(tmp_path / "clips.parquet", "train", DEFAULT_SPACY_MODEL, seen_path)
    stored = read_seen_vocabulary(seen_path)
    assert stored.heads == {"carrot": "carrot", "small knife": "knife"}
    assert {"knife", "sink", "wash"} <= stored.vocabulary and stored.train_narrations == 1
    tagged = evaluate(tmp_path, seen_unseen=True)
    tagged_csv = (tmp_path / "out" / "per_object.csv").read_text()
    read = evaluate(tmp_path, seen_unseen=True, seen_path=seen_path)
    assert (tmp_path / "out" / "per_object.csv").read_text() == tagged_csv
    assert read["breakdowns"]["seen"] == tagged["breakdowns"]["seen"]


def test_seen_unseen_skipped_without_training_clips(aggregation_case: Path) -> None:
    clips = pq.read_table(aggregation_case / "clips.parquet")
    pq.write_table(clips.slice(0, 2), aggregation_case / "clips.parquet")  # drop "ct" (train)
    summary = evaluate(aggregation_case, seen_unseen=True)
    assert "seen" not in summary["breakdowns"]
    assert "no clip of the training split" in summary["breakdowns_skipped"]["seen"]


def test_exhaustive_breakdown_from_an_annotation_column(aggregation_case: Path) -> None:
    table = pq.read_table(aggregation_case / "ann.parquet")
    flags = [row["object_id"] != "5" for row in table.to_pylist()]  # the pan is not exhaustive
    pq.write_table(
        table.append_column("exhaustive", pa.array(flags)), aggregation_case / "ann.parquet"
    )
    summary = evaluate(aggregation_case)
    groups = summary["breakdowns"]["exhaustive"]
    assert (groups["exhaustive"]["objects"], groups["non_exhaustive"]["objects"]) == (2, 1)
    assert groups["non_exhaustive"]["J"] == 0.0
    rows = read_csv(aggregation_case / "out" / "per_object.csv")
    assert rows[("cb", "5")]["exhaustive"] == "false"
    assert rows[("ca", "1")]["exhaustive"] == "true"
    assert "exhaustive" not in summary["breakdowns_skipped"]


def test_exhaustive_breakdown_from_a_clip_column(tmp_path: Path) -> None:
    write_clips(
        tmp_path / "clips.parquet",
        [("a", "val", "a [cup]<1>"), ("b", "val", "a [pan]<1>")],
        exhaustive=[True, None],
    )
    ann = [("a", 0, "1", 0, CUP), ("b", 0, "1", 0, PAN)]
    pq.write_table(annotations_table(ann), tmp_path / "ann.parquet")
    write_predictions(tmp_path / "pred.parquet", [("a", 0, "1", 0, CUP)])
    summary = evaluate(tmp_path)
    groups = summary["breakdowns"]["exhaustive"]
    assert groups["exhaustive"]["objects"] == 1 and groups["exhaustive"]["J"] == 1.0
    assert groups["unknown"]["objects"] == 1
    assert groups["non_exhaustive"]["objects"] == 0


# ---------------------------------------------------------------------------------------------
# End to end on a real demo run: proposals (classical backend) -> oracle -> evaluate


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 demo clips (2 train, 1 val, 1 test), one shard; frames at half the video's size."""
    from nvos import pipeline
    from nvos.config import load_config

    config = load_config()
    root = tmp_path_factory.mktemp("demo_run")
    manifest = pipeline.run_demo_data(root / "demo", {"clips": 4, "seed": 0})
    pipeline.run_dataset(
        manifest,
        root / "clips.parquet",
        root / "ann.parquet",
        config["dataset"],
        {"clips_per_shard": 4},
    )
    frames = dict(config["frames"], per_clip=0, max_side=160)  # videos are 320x240
    pipeline.run_frames(
        root / "clips.parquet",
        root / "ann.parquet",
        "s00000",
        root / "frames.parquet",
        frames,
        30.0,
    )
    pipeline.run_proposals(
        root / "frames.parquet",
        root / "props.parquet",
        config["proposals"],
        root / "locks",
        "s00000",
    )
    return root


def test_oracle_then_evaluate_on_the_demo(demo_run: Path) -> None:
    from nvos.oracle import build_oracle
    from nvos.proposals.stage import read_proposals

    oracle_path = demo_run / "oracle.parquet"
    summary = build_oracle(
        demo_run / "clips.parquet",
        demo_run / "ann.parquet",
        demo_run / "props.parquet",
        "s00000",
        oracle_path,
    )
    assert summary.clips_untagged == 2 and summary.frames_without_proposals == ()
    proposals = read_proposals(demo_run / "props.parquet")
    annotations = pq.read_table(demo_run / "ann.parquet").to_pylist()
    gt = {(a["clip_id"], a["frame_index"], a["object_id"]): a for a in annotations}
    oracle_rows = storage.read_table(oracle_path, "predictions").to_pylist()
    assert oracle_rows and len(oracle_rows) == summary.rows
    first_choice = []
    for row in oracle_rows:
        a = gt[(row["clip_id"], row["frame_index"], row["object_id"])]
        truth = rle.decode(a["rle_counts"], a["height"], a["width"])
        frame = proposals[(row["clip_id"], row["frame_index"])]
        assert (frame.height * 2, frame.width * 2) == truth.shape  # resolution mismatch
        # independent check: J of every proposal upsampled by pixel repetition
        ious = [jaccard(truth, m.repeat(2, axis=0).repeat(2, axis=1)) for m in frame.masks()]
        assert row["score"] == pytest.approx(max(ious))
        assert row["proposal_id"] == int(np.argmax(ious))
        first_choice.append({**row, "proposal_id": 0, "rle_counts": frame.rle_counts[0]})
    baseline_path = demo_run / "first.parquet"
    storage.write_table(pa.Table.from_pylist(first_choice), baseline_path, "predictions")

    oracle_j, first_j, objects = [], [], []
    for split in ("val", "test"):
        out = demo_run / "metrics" / split
        result = evaluate_method(
            "oracle",
            [oracle_path],
            demo_run / "clips.parquet",
            demo_run / "ann.parquet",
            split,
            out,
        )
        baseline = evaluate_method(
            "first",
            [baseline_path],
            demo_run / "clips.parquet",
            demo_run / "ann.parquet",
            split,
            demo_run / "first" / split,
            seen_unseen=False,
        )
        assert result["objects"] > 0 and result["missing_frames"] == 0
        assert result["predictions"]["unscored"]["other_split"] > 0
        assert "seen" in result["breakdowns"]
        # the oracle's stored score is the evaluation's J of that frame: per-object means agree
        rows = read_csv(out / "per_object.csv")
        for (clip_id, object_id), row in rows.items():
            scores = [
                r["score"]
                for r in oracle_rows
                if (r["clip_id"], r["object_id"]) == (clip_id, object_id)
                and r["phrase_id"] == int(row["phrase_id"])
            ]
            assert float(row["J"]) == pytest.approx(np.mean(scores), abs=1e-6)
        assert result["J"] >= baseline["J"]  # an upper bound of any proposal choice
        oracle_j.append(result["J"])
        first_j.append(baseline["J"])
        objects.append(result["objects"])
    # measured: mean oracle J over the 4 val + test objects of this demo (classical proposals at
    # half resolution) is about 0.58, the top-ranked proposal's about 0.15
    mean_oracle = np.average(oracle_j, weights=objects)
    assert mean_oracle > 0.5
    assert mean_oracle > np.average(first_j, weights=objects) + 0.1


def test_region_scores_equal_the_metrics_instance_scores() -> None:
    """The count-based J / J_ins of the evaluation equal nvos.metrics.instance_scores."""
    from nvos.evaluation.score import region_scores
    from nvos.evaluation.truth import ObjectFrameTruth
    from nvos.metrics import connected_instances, instance_scores

    rng = np.random.default_rng(0)
    checked = 0
    for trial in range(60):
        blobs = [rng.random((H, W)) < p for p in (0.0, 0.02, 0.3)]
        pieces = [box(*sorted(rng.integers(0, H, 2)), *sorted(rng.integers(0, W, 2))) for _ in "ab"]
        instances = [pieces[0] | blobs[trial % 3], pieces[1]]
        pred = [EMPTY, pieces[0], rng.random((H, W)) < 0.2, instances[0] | instances[1]][trial % 4]
        listed = instances if trial % 2 else [instances[0] | instances[1]]
        truth = ObjectFrameTruth.decode([rle.encode(m) for m in listed], H, W)
        if len(listed) == 1:
            expected = instance_scores(pred, connected_instances(listed[0]))
        else:
            expected = instance_scores(pred, listed)
        assert region_scores(truth, np.ascontiguousarray(pred)) == pytest.approx(expected, abs=0)
        checked += 1
    absent = ObjectFrameTruth.decode([], H, W)
    assert region_scores(absent, EMPTY) == (1.0, 1.0)
    assert region_scores(absent, pieces[0] | ~pieces[0]) == (0.0, 0.0)
    assert checked == 60


# ---------------------------------------------------------------------------------------------
# Protocols (evaluate.protocol): the official DAVIS / VOST frames and objects


@pytest.fixture
def protocol_case(tmp_path: Path) -> Path:
    """Six annotated frames (0..5) per clip, one clip with two; objects absent on frame 0."""
    write_clips(
        tmp_path / "clips.parquet",
        [
            ("cv", "val", "Put the [cup]<1> in the [bowl]<2> near the [pan]<3>."),
            ("cw", "val", "Cut with the [knife]<1> on the [board]<2>."),
            ("cs", "val", "Lift the [cup]<1>."),
        ],
    )
    frames = range(6)
    ann = [("cv", f, "1", 0, CUP) for f in frames]
    ann += [("cv", f, "2", 0, EMPTY if f == 0 else BOWL) for f in frames]  # label 2 < K = 3
    ann += [("cv", f, "3", 0, PAN) for f in frames]
    ann += [("cw", f, "2", 0, EMPTY if f == 0 else BOWL) for f in frames]  # label 2 > K = 1
    ann += [("cw", f, "1", 0, PAN) for f in frames]
    ann += [("cs", f, "1", 0, CUP) for f in (0, 1)]
    pq.write_table(annotations_table(ann), tmp_path / "ann.parquet")
    half_cup = box(5, 15, 5, 10)  # J = 0.5
    cup = {0: PAN, 1: CUP, 2: CUP, 3: CUP, 4: half_cup, 5: PAN}  # wrong on the dropped frames
    preds = [("cv", 0, "1", f, cup[f]) for f in frames]  # the bowl is never predicted
    preds += [("cv", 2, "3", f, PAN) for f in frames]
    preds += [("cw", 1, "2", f, BOWL) for f in range(1, 6)]  # the board, beyond K
    preds += [("cw", 0, "1", f, PAN) for f in frames]
    preds += [("cs", 0, "1", f, CUP) for f in (0, 1)]
    write_predictions(tmp_path / "pred.parquet", preds)
    return tmp_path


def test_davis_protocol_drops_ends_and_objects_beyond_first_frame_k(protocol_case: Path) -> None:
    summary = evaluate(protocol_case, protocol="davis")
    rows = read_csv(protocol_case / "out" / "per_object.csv")
    # cup 0.875 (frames 1-4), bowl 0 (never predicted), pan 1, knife 1; no board, nothing of cs
    assert sorted(rows) == [("cv", "1"), ("cv", "2"), ("cv", "3"), ("cw", "1")]
    assert float(rows[("cv", "1")]["J"]) == 0.875
    assert {r["frames"] for r in rows.values()} == {"4"}
    assert summary["J"] == pytest.approx((0.875 + 0.0 + 1.0 + 1.0) / 4)
    assert summary["protocol"] == {
        "protocol": "davis",
        "clips_too_short": 1,
        "frames_dropped": 2 * 3 + 2 * 1,
        "objects_dropped": 1,
        "examples": ["clip 'cw': 1 objects beyond K = 1", "clip 'cs': 2 annotated frames"],
    }
    counts = summary["predictions"]
    assert counts["unscored"]["protocol_frame"] == 2 + 2 + 2 + 2  # cup, pan, knife ends; cs
    assert counts["unscored"]["protocol_object"] == 5  # the board
    assert counts["scored"] == 12
    assert counts["rows"] == counts["scored"] + sum(counts["unscored"].values())


def test_vost_protocol_adds_j_last_over_the_last_quarter(protocol_case: Path) -> None:
    summary = evaluate(protocol_case, protocol="vost")
    assert summary["J"] == pytest.approx((0.875 + 0.0 + 1.0 + 1.0) / 4)
    # 4 evaluated frames, J_last on the last (floor(0.75 * 4) = 3): cup 0.5, bowl 0, pan 1, knife 1
    assert summary["protocol"]["J_last"] == pytest.approx(2.5 / 4)


def test_all_frames_protocol_is_every_annotated_frame(protocol_case: Path) -> None:
    summary = evaluate(protocol_case)
    assert summary["objects"] == 6 and summary["frames"] == 6 * 5 + 2
    assert summary["protocol"]["clips_too_short"] == summary["protocol"]["objects_dropped"] == 0
    assert "J_last" not in summary["protocol"]
    with pytest.raises(ValueError, match="unknown protocol 'official'"):
        evaluate(protocol_case, protocol="official")
