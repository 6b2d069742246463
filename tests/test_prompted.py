"""GroundedSAM and SAM 3 (nvos.prompted) against the libraries' own documented inference paths,
on tiny randomly initialised models built from the libraries' classes; the shard loop on a
synthetic shard; loading a saved checkpoint folder."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image
from segment_anything import SamPredictor
from test_mistakes import SPLITS, config_with

from nvos import rle, storage
from nvos.checks import config_problems
from nvos.config import ConfigError, load_config, merge
from nvos.frames import encode_jpeg
from nvos.prompted.base import PhraseMask
from nvos.prompted.grounded_sam import GroundedSam
from nvos.prompted.hub import seeded
from nvos.prompted.predict import predict_prompted_shard
from nvos.prompted.sam3 import Sam3Segmenter, choose_instances
from nvos.report.facts import random_weights
from nvos.testing.cache_fixture import SyntheticClip, write_synthetic_cache

CPU = torch.device("cpu")
PHRASES = ["red cup", "wooden spoon"]
SAM_RANDOM = {"model_type": "tiny", "checkpoint": None, "random_weights": True, "image_size": None}
GROUNDED = {"detector": None, "random_weights": True, "box_threshold": 0.0, "seed": 0}
SAM3 = {"model": None, "random_weights": True, "score_threshold": 0.0, "mask_threshold": 0.5,
        "union_threshold": None, "seed": 0}  # fmt: skip


def images() -> list[np.ndarray]:
    """Two RGB frames of different sizes: smooth colour fields with a bright square."""
    out = []
    for seed, (height, width) in enumerate([(72, 96), (90, 60)]):
        rng = np.random.default_rng(seed)
        image = np.stack(np.meshgrid(np.linspace(0, 200, width), np.linspace(30, 160, height)), -1)
        image = np.concatenate([image, rng.uniform(0, 255, (height, width, 1))], -1)
        image[height // 4 : height // 2, width // 3 : width // 2] = (250, 240, 20)
        out.append(image.astype(np.uint8))
    return out


IMAGES = images()


@pytest.fixture(scope="module")
def grounded() -> GroundedSam:
    return GroundedSam.from_config(GROUNDED, SAM_RANDOM, CPU)


@pytest.fixture(scope="module")
def sam3() -> Sam3Segmenter:
    return Sam3Segmenter.from_config(SAM3, CPU)


# ------------------------------------------------------------------ GroundedSAM


def reference_grounded(
    model: Any, processor: Any, sam: Any, image: np.ndarray, phrase: str, threshold: float
) -> tuple[np.ndarray, float]:
    """Grounding DINO + SAM as the libraries document them, for one phrase on one image."""
    inputs = processor(images=Image.fromarray(image), text=[[phrase]], return_tensors="pt")
    with torch.no_grad():
        outputs = model(**inputs)
    results = processor.post_process_grounded_object_detection(
        outputs, inputs.input_ids, threshold=threshold, target_sizes=[image.shape[:2]]
    )[0]
    if len(results["scores"]) == 0:
        return np.zeros(image.shape[:2], bool), 0.0
    best = int(results["scores"].argmax())
    predictor = SamPredictor(sam)
    predictor.set_image(image)
    masks, _, _ = predictor.predict(box=results["boxes"][best].numpy(), multimask_output=False)
    return masks[0], float(results["scores"][best])


def test_grounded_sam_equals_the_documented_path(grounded: GroundedSam) -> None:
    model, processor, sam = grounded.detector, grounded.processor, grounded.predictor.model
    pairs = [(i, p) for i in range(len(IMAGES)) for p in PHRASES]
    # Threshold 0: each phrase's best box and SAM's mask for it; the best box above a threshold
    # t is that box when its score is above t, else there is none.
    reference = {pair: reference_grounded(model, processor, sam, IMAGES[pair[0]], pair[1], 0.0)
                 for pair in pairs}  # fmt: skip
    threshold = float(np.median([score for _, score in reference.values()]))
    segmenter = GroundedSam(model, processor, sam, CPU, threshold)
    found = 0
    for i, image in enumerate(IMAGES):
        for phrase, got in zip(PHRASES, segmenter.segment(image, PHRASES), strict=True):
            mask, score = reference[(i, phrase)]
            if score <= threshold:
                mask, score = np.zeros(image.shape[:2], bool), 0.0
            assert got.mask.shape == image.shape[:2] and got.mask.dtype == bool
            assert np.array_equal(got.mask, mask) and got.score == score
            found += score > 0
    assert 0 < found < len(pairs)  # both branches compared
    assert any(mask.any() for mask, _ in reference.values())


# ------------------------------------------------------------------ SAM 3


def reference_sam3(
    model: Any, processor: Any, image: np.ndarray, phrase: str, threshold: float
) -> dict[str, torch.Tensor]:
    """SAM 3 as transformers documents it: processor, model, post_process_instance_segmentation."""
    inputs = processor(images=Image.fromarray(image), text=phrase, return_tensors="pt")
    with torch.no_grad():
        outputs = model(**inputs)
    return processor.post_process_instance_segmentation(
        outputs, threshold=threshold, mask_threshold=0.5,
        target_sizes=inputs.get("original_sizes").tolist(),
    )[0]  # fmt: skip


@pytest.fixture(scope="module")
def sam3_reference(sam3: Sam3Segmenter) -> dict[tuple[int, str], dict[str, torch.Tensor]]:
    """The documented path's instances (threshold 0) of each (image, phrase)."""
    return {(i, p): reference_sam3(sam3.model, sam3.processor, image, p, 0.0)
            for i, image in enumerate(IMAGES) for p in PHRASES}  # fmt: skip


@pytest.mark.parametrize("union", [False, True])
def test_sam3_equals_the_documented_path(
    sam3: Sam3Segmenter, sam3_reference: dict[tuple[int, str], Any], union: bool
) -> None:
    # Best: at the median of each phrase's best score (some phrases find an instance, some
    # none); union: at the median of all scores (phrases with several instances to unite).
    scores = [found["scores"] for found in sam3_reference.values()]
    pool = torch.cat(scores) if union else torch.stack([s.max() for s in scores])
    threshold = float(pool.median())
    segmenter = Sam3Segmenter(
        sam3.model, sam3.processor, CPU, score_threshold=threshold, mask_threshold=0.5,
        union_threshold=threshold if union else None,
    )  # fmt: skip
    kinds = set()
    for i, image in enumerate(IMAGES):
        for phrase, got in zip(PHRASES, segmenter.segment(image, PHRASES), strict=True):
            found = sam3_reference[(i, phrase)]
            keep = found["scores"] > threshold  # what post-processing at the threshold keeps
            scores, masks = found["scores"][keep], found["masks"][keep]
            if len(scores) == 0:
                expected = np.zeros(image.shape[:2], bool)
            elif union:
                expected = masks.any(dim=0).numpy()
            else:
                expected = masks[int(scores.argmax())].numpy()
            assert got.mask.shape == image.shape[:2]
            assert np.array_equal(got.mask, expected)
            assert got.score == (float(scores.max()) if len(scores) else 0.0)
            kinds.add(len(scores) > 1 if len(scores) else None)
    assert True in kinds if union else {None, False} <= kinds or {None, True} <= kinds


def test_choose_instances_best_union_or_empty() -> None:
    masks = torch.zeros((3, 4, 5), dtype=torch.bool)
    masks[0, 0, :2] = masks[1, 1, :] = masks[2, 3, 4] = True
    scores = torch.tensor([0.6, 0.9, 0.3])
    best = choose_instances(masks, scores, 0.5, None, (4, 5))
    assert np.array_equal(best.mask, masks[1].numpy()) and best.score == pytest.approx(0.9)
    union = choose_instances(masks, scores, 0.5, 0.5, (4, 5))  # the 0.3 instance left out
    assert np.array_equal(union.mask, (masks[0] | masks[1]).numpy())
    none = choose_instances(masks, scores, 0.95, None, (4, 5))
    assert none.score == 0.0 and not none.mask.any() and none.mask.shape == (4, 5)
    assert not choose_instances(masks[:0], scores[:0], 0.0, 0.0, (4, 5)).mask.any()


# ------------------------------------------------------------------ checkpoints and config


def test_saved_checkpoint_folders_load_offline_with_their_hashes(
    tmp_path: Path, sam3: Sam3Segmenter
) -> None:
    folder = tmp_path / "sam3"
    sam3.model.save_pretrained(folder)
    sam3.processor.save_pretrained(folder)
    loaded = Sam3Segmenter.from_config({**SAM3, "model": str(folder), "random_weights": False}, CPU)
    digests = loaded.describe()["model_sha256"]
    assert list(digests) == ["model.safetensors"]
    assert digests["model.safetensors"] == storage.file_sha256(folder / "model.safetensors")
    image = IMAGES[0]
    for a, b in zip(loaded.segment(image, PHRASES), sam3.segment(image, PHRASES), strict=True):
        assert np.array_equal(a.mask, b.mask) and a.score == b.score


def test_saved_grounding_dino_loads_offline_with_its_hash(
    tmp_path: Path, grounded: GroundedSam
) -> None:
    folder = tmp_path / "grounding-dino"
    grounded.detector.save_pretrained(folder)
    grounded.processor.save_pretrained(folder)
    layer = {**GROUNDED, "detector": str(folder), "random_weights": False}
    loaded = GroundedSam.from_config(layer, SAM_RANDOM, CPU)
    described = loaded.describe()
    assert described["detector"] == str(folder.resolve())
    assert described["detector_sha256"] == {
        "model.safetensors": storage.file_sha256(folder / "model.safetensors")
    }
    image = IMAGES[1]

    def boxes(source: GroundedSam) -> list[Any]:
        pixels = source.processor.image_processor(
            images=Image.fromarray(image), return_tensors="pt"
        )
        return [source.best_box(dict(pixels), phrase, image.shape[:2]) for phrase in PHRASES]

    # box_threshold 0: every phrase has a best box; the saved weights give the same ones
    for (box, score), (box_b, score_b) in zip(boxes(loaded), boxes(grounded), strict=True):
        assert np.array_equal(box, box_b) and score == score_b


def test_missing_or_contradictory_weights_are_named() -> None:
    with pytest.raises(ConfigError, match=r"sam3\.model: a local checkpoint folder is needed"):
        Sam3Segmenter.from_config({**SAM3, "random_weights": False}, CPU)
    with pytest.raises(ConfigError, match=r"grounded_sam\.random_weights: true contradicts"):
        GroundedSam.from_config({**GROUNDED, "detector": "/somewhere"}, SAM_RANDOM, CPU)
    no_sam = {**SAM_RANDOM, "random_weights": False}
    with pytest.raises(ConfigError, match=r"proposals\.sam\.checkpoint: SAM needs a checkpoint"):
        GroundedSam.from_config(GROUNDED, no_sam, CPU)


# ------------------------------------------------------------------ the shard loop


class Recorder:
    """A segmenter that marks the first k pixels of row k for phrase k (none for 'object 1')."""

    def __init__(self) -> None:
        self.calls: list[tuple[tuple[int, ...], tuple[str, ...]]] = []

    def segment(self, image: np.ndarray, phrases: Sequence[str]) -> list[PhraseMask]:
        self.calls.append((image.shape, tuple(phrases)))
        out = []
        for k, phrase in enumerate(phrases):
            mask = np.zeros(image.shape[:2], bool)
            if phrase != "object 1":
                mask[k, : k + 1] = True
            out.append(PhraseMask(mask, 0.5 + k))
        return out

    def describe(self) -> dict[str, Any]:
        return {"segmenter": "recorder"}


def test_shard_loop_predicts_every_tagged_phrase_on_every_annotated_frame(tmp_path: Path) -> None:
    clips = [
        SyntheticClip("a", split="val", sampled_frames=2, annotated_frames=3, phrases=2),
        SyntheticClip("b", split="train", phrases=2),
        SyntheticClip("c", split="test", phrases=2, tagged=False),
    ]
    (shard,) = write_synthetic_cache(tmp_path, clips)
    frames_path = tmp_path / f"frames/{shard}.parquet"
    frames = pq.read_table(frames_path)  # the synthetic frames' JPEGs are placeholders
    jpeg = encode_jpeg(np.full((24, 32, 3), 90, np.uint8), 90)
    frames = frames.set_column(frames.schema.get_field_index("jpeg"), "jpeg",
                               pa.array([jpeg] * frames.num_rows, pa.binary()))  # fmt: skip
    storage.write_table(frames, frames_path, "frames")
    out = tmp_path / "predictions/x/s00000.parquet"
    recorder = Recorder()
    summary = predict_prompted_shard(
        recorder, "x", tmp_path / "clips.parquet", tmp_path / "phrases.parquet",
        tmp_path / f"frames/{shard}.parquet", shard, out, splits=["val", "test"],
        config={"threshold": 1},
    )  # fmt: skip
    assert recorder.calls == [((24, 32, 3), ("object 0", "object 1"))] * 3
    table = storage.read_table(out, "predictions").to_pylist()
    annotated = sorted(r["frame_index"] for r in frames.to_pylist() if r["clip_id"] == "a" and
                       r["role"] == "annotated")  # fmt: skip
    assert sorted({r["frame_index"] for r in table}) == annotated
    assert [(r["clip_id"], r["phrase_id"]) for r in table] == [("a", 0), ("a", 1)] * 3
    for row in table:
        mask = rle.decode(row["rle_counts"], row["height"], row["width"])
        assert mask.sum() == (1 if row["phrase_id"] == 0 else 0)
        assert row["proposal_id"] == -1 and row["score"] == 0.5 + row["phrase_id"]
    assert summary.predictions == 6 and summary.empty == 3 and summary.frames == 3
    reasons = {s.clip_id: s.reason for s in summary.ledger.skips}
    assert reasons == {"b": "split_not_predicted", "c": "no_tagged_phrase"}
    meta = storage.read_provenance(out)
    assert meta["stage"] == "predict.x" and meta["segmenter"] == {"segmenter": "recorder"}
    assert meta["config"] == {"threshold": 1} and meta["empty_masks"] == 3


def test_seeded_random_weights_are_reproducible() -> None:
    with seeded(5):
        first = torch.rand(3)
    with seeded(5):
        assert torch.equal(first, torch.rand(3))


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        ({"proposals": {"sam": {"random_weights": True}}},
         "grounded_sam.detector: a local checkpoint folder is needed"),
        ({"grounded_sam": {"random_weights": True}},
         "proposals.sam.checkpoint: SAM needs a checkpoint file"),
        ({"sam3": {"model": "/nowhere/sam3"}},
         "sam3.model: /nowhere/sam3: not a checkpoint folder (no config.json)"),
    ],
)  # fmt: skip
def test_config_check_names_the_missing_weights_of_an_evaluated_row(
    layer: dict[str, Any], message: str
) -> None:
    methods = ["sam3"] if "sam3" in layer else ["grounded_sam"]
    problems = config_problems(config_with({**layer, "evaluate": {"methods": methods}}), SPLITS)
    assert len(problems) == 1 and message in problems[0], problems
    assert config_problems(config_with(layer), SPLITS) == []  # not evaluated: not checked


def test_the_report_names_random_weights_of_an_evaluated_row() -> None:
    config = config_with({"evaluate": {"methods": ["grounded_sam", "sam3"]}})
    notes = [n for n in random_weights(config) if not n.startswith("CLIP")]
    assert notes == [
        "grounded_sam is randomly initialised (grounded_sam.detector: null, "
        "proposals.sam.checkpoint: null)",
        "sam3 is randomly initialised (sam3.model: null)",
    ]
    real = merge(config, {"sam3": {"model": "/sam3"}, "grounded_sam": {"detector": "/gd"},
                          "proposals": {"sam": {"checkpoint": "/sam.pth"}}})  # fmt: skip
    assert [n for n in random_weights(real) if not n.startswith("CLIP")] == []
    assert [n for n in random_weights(config_with({})) if not n.startswith("CLIP")] == []


@pytest.mark.parametrize(
    ("example", "keys"),
    [
        ("grounded_sam.yaml", {"proposals.sam.checkpoint", "grounded_sam.detector"}),
        ("sam3.yaml", {"proposals.sam.checkpoint", "sam3.model"}),
    ],
)
def test_real_weight_examples_validate_and_name_their_placeholders(
    tmp_path: Path, example: str, keys: set[str]
) -> None:
    examples = Path(__file__).resolve().parents[1] / "config" / "examples"
    config = load_config([examples / "visor_nvos.yaml", examples / example])
    method = example.removesuffix(".yaml")
    assert method in config["evaluate"]["methods"] and "rosa" in config["evaluate"]["methods"]
    problems = config_problems(config)
    assert {problem.split(":")[0] for problem in problems} == keys, problems
    folder = tmp_path / "checkpoint"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (tmp_path / "sam.pth").write_bytes(b"")
    group = {"grounded_sam": {"detector": str(folder)}, "sam3": {"model": str(folder)}}[method]
    real = merge(config, {"proposals": {"sam": {"checkpoint": str(tmp_path / "sam.pth")}}})
    assert config_problems(merge(real, {method: group})) == []


@pytest.mark.gpu
def test_the_models_run_on_cuda_close_to_the_cpu(
    grounded: GroundedSam, sam3: Sam3Segmenter
) -> None:
    """The tiny models on CUDA: outputs close to the CPU's (kernels round differently, so the
    random models' near-tied boxes and instances are compared as raw outputs, not choices)."""
    cuda = torch.device("cuda", 0)
    image = IMAGES[0]
    gdino = GroundedSam.from_config(GROUNDED, SAM_RANDOM, cuda)
    inputs = grounded.processor(images=Image.fromarray(image), text=[["cup"]], return_tensors="pt")
    s3 = Sam3Segmenter.from_config(SAM3, cuda)
    s3_inputs = sam3.processor(images=Image.fromarray(image), text="cup", return_tensors="pt")
    with torch.no_grad():
        for cpu_model, gpu_model, batch, names in (
            (grounded.detector, gdino.detector, inputs, ("logits", "pred_boxes")),
            (sam3.model, s3.model, s3_inputs, ("pred_logits", "pred_boxes", "pred_masks")),
        ):
            on_cpu, on_gpu = cpu_model(**batch), gpu_model(**batch.to(cuda))
            for name in names:
                torch.testing.assert_close(
                    getattr(on_gpu, name).cpu(), getattr(on_cpu, name), atol=2e-3, rtol=2e-3
                )
    box = np.array([10.0, 12.0, 60.0, 50.0])  # one SAM box prompt on both devices
    grounded.predictor.set_image(image)
    gdino.predictor.set_image(image)
    cpu_mask = grounded.predictor.predict(box=box, multimask_output=False)[0]
    gpu_mask = gdino.predictor.predict(box=box, multimask_output=False)[0]
    assert np.count_nonzero(cpu_mask != gpu_mask) <= 0.01 * cpu_mask.size
