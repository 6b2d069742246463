"""Every expected mistake is one clear message naming the key, file, line or clip, and stops
before anything downstream runs (issue 15: config cross-checks, manifest checks, the ``nvos``
command and the workflow's scripts)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import yaml

from nvos.checks import config_problems
from nvos.cli import main
from nvos.config import DEFAULT_CONFIG, ConfigError, load_config, merge, read_layer, validate_config
from nvos.manifest import ManifestError, validate_manifest
from nvos.workflow import start_workflow

REPO = Path(__file__).resolve().parents[1]
SPLITS = {"train": 10, "val": 3, "test": 3}  # clips per split of a well-formed manifest


def config_with(layer: dict[str, Any]) -> dict[str, Any]:
    """The defaults with ``layer`` on top, schema-validated (defaults filled in)."""
    config = merge(read_layer(DEFAULT_CONFIG), layer)
    validate_config(config)
    return config


def test_the_defaults_and_a_well_formed_manifest_pass() -> None:
    assert config_problems(config_with({}), SPLITS) == []
    assert config_problems(config_with({}), None) == []


CONFIG_MISTAKES = {
    "unknown method": (
        {"evaluate": {"methods": ["sam_clip", "rosaa"]}},
        SPLITS,
        "evaluate.methods: unknown method 'rosaa' (known: grounded_sam, oracle, oracle+flow, rosa,",
    ),
    "decoding a method that scores no region": (
        {"temporal": {"decode": {"methods": ["sam_clip", "rosa", "oracle"]}}},
        SPLITS,
        "temporal.decode.methods: 'oracle' does not score regions (decodable: rosa, rosa_noctx,",
    ),
    "an unknown keyframe method": (
        {"temporal": {"propagate": {"methods": ["oracle", "rosa+temporal", "rosaa"]}}},
        SPLITS,
        "temporal.propagate.methods: unknown keyframe method 'rosaa' (known: grounded_sam, oracle,",
    ),
    "typo in a variant": (
        {"rosa": {"variants": {"rosa": {}, "rosa_noctx": {"use_contxt": False}}}},
        SPLITS,
        "rosa.variants.rosa_noctx.use_contxt: unknown key",
    ),
    "wrong type in a variant": (
        {"rosa": {"variants": {"rosa": {}, "rosa_big": {"dim": "large"}}}},
        SPLITS,
        "rosa.variants.rosa_big.dim: 'large' is not of type 'integer'",
    ),
    "variant breaking a cross-field rule": (
        {"rosa": {"variants": {"rosa": {}, "rosa_none": {"lambda_vna": 0.0, "lambda_rpa": 0.0}}}},
        SPLITS,
        "rosa.variants.rosa_none: rosa.lambda_vna and rosa.lambda_rpa are both 0",
    ),
    "evaluate.splits not in dataset.splits": (
        {"evaluate": {"splits": ["val", "tst"]}},
        SPLITS,
        "evaluate.splits: 'tst' is not in dataset.splits (train, val, test)",
    ),
    "evaluate.splits with no clip": (
        {"evaluate": {"splits": ["val", "test"]}},
        {"train": 10, "val": 3},
        "evaluate.splits, predict.splits: no clip of the manifest has split 'test' "
        "(its splits: train 10, val 3)",
    ),
    "predict.splits with no clip": (
        {"predict": {"splits": ["val", "test"]}, "evaluate": {"splits": ["val"]}},
        {"train": 10, "val": 3},
        "predict.splits: no clip of the manifest has split 'test'",
    ),
    "ROSA rows scored on a split not predicted": (
        {"predict": {"splits": ["val"]}},
        SPLITS,
        "predict.splits: evaluate.splits scores test for the ROSA rows (rosa, rosa_noctx, "
        "rosa_vna_only, rosa_rpa_only), which predict.splits (val) does not predict",
    ),
    "unknown CLIP model": (
        {"features": {"clip": {"model": "ViT-B-61"}}},
        SPLITS,
        "features.clip.model: unknown CLIP model 'ViT-B-61' (did you mean ViT-B-16",
    ),
    "missing CLIP checkpoint file": (
        {"features": {"clip": {"model": "ViT-B-16", "pretrained": "/nowhere/clip.pt"}}},
        SPLITS,
        "features.clip.pretrained: /nowhere/clip.pt: file not found",
    ),
    "SAM without a checkpoint": (
        {"proposals": {"backend": "sam"}},
        SPLITS,
        "proposals.sam.checkpoint: SAM needs a checkpoint file",
    ),
    "SAM checkpoint file missing": (
        {"proposals": {"backend": "sam", "sam": {"checkpoint": "/nowhere/sam_vit_h.pth"}}},
        SPLITS,
        "proposals.sam.checkpoint: /nowhere/sam_vit_h.pth: file not found",
    ),
    "validation split of one clip": (
        {},
        {"train": 10, "val": 1, "test": 3},
        "rosa.variants (rosa, rosa_noctx, rosa_vna_only, rosa_rpa_only): the 'val' split has 1 "
        "clip, too few to select a checkpoint",
    ),
    "no train split for seen/unseen": (
        {"evaluate": {"methods": ["oracle"]}},
        {"val": 3, "test": 3},
        "evaluate.train_split: no clip of the manifest has split 'train'",
    ),
    "no train split for ROSA": (
        {"evaluate": {"methods": ["rosa"], "train_split": None}},
        {"val": 3, "test": 3},
        "rosa.variants: rosa train on split 'train', but no clip of the manifest has it",
    ),
    "spaCy pipeline not installed": (
        {"phrases": {"spacy_model": "en_core_web_xx"}},
        SPLITS,
        "phrases.spacy_model: spaCy pipeline 'en_core_web_xx' is not installed",
    ),
    "overlay method not evaluated": (
        {"report": {"overlay_method": "rosa_big"}},
        SPLITS,
        "report.overlay_method: 'rosa_big' is not one of evaluate.methods",
    ),
}


@pytest.mark.parametrize("name", list(CONFIG_MISTAKES))
def test_config_mistake_is_one_line_naming_the_key(name: str) -> None:
    layer, splits, message = CONFIG_MISTAKES[name]
    problems = config_problems(config_with(layer), splits)
    assert len(problems) == 1, problems
    assert message in problems[0], problems[0]


def test_deliberate_random_sam_weights_pass() -> None:
    layer = {"proposals": {"backend": "sam", "sam": {"random_weights": True}}}
    assert config_problems(config_with(layer), SPLITS) == []
    layer["proposals"]["sam"]["checkpoint"] = "sam.pth"
    (problem,) = config_problems(config_with(layer), SPLITS)
    assert "random_weights: true contradicts proposals.sam.checkpoint 'sam.pth'" in problem


@pytest.mark.parametrize(
    ("text", "found"),
    [("", "found nothing (the file is empty)"), ("[1, 2]\n", "found list"), ("7\n", "found int")],
)
def test_empty_or_non_mapping_config_file_is_named(tmp_path: Path, text: str, found: str) -> None:
    path = tmp_path / "layer.yaml"
    path.write_text(text)
    message = f"{path}: a config file must hold a mapping of keys, {found}"
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config([path])


# ---------------------------------------------------------------------------- manifest mistakes

H, W, FPS, N_FRAMES = 24, 32, 10.0, 20


def make_video(path: Path) -> Path:
    """A tiny mp4v video whose frames are noise (so its frames have a real size in the file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (W, H))
    rng = np.random.default_rng(0)
    for _ in range(N_FRAMES):
        writer.write(rng.integers(0, 256, (H, W, 3), dtype=np.uint8))
    writer.release()
    return path


def truncate_after_index(source: Path, target: Path) -> Path:
    """``source`` rewritten with its index (moov) before the frames (mdat), as streaming mp4s
    are, then cut in the middle of the frames: its header still promises every frame."""
    data = source.read_bytes()
    boxes, at = {}, 0
    while at < len(data):
        size = int.from_bytes(data[at : at + 4], "big")
        boxes[data[at + 4 : at + 8]] = data[at : at + size]
        at += size
    moov = bytearray(boxes[b"moov"])
    stco = moov.index(b"stco") + 4  # version/flags (4 bytes), count (4), then 32-bit offsets
    count = int.from_bytes(moov[stco + 4 : stco + 8], "big")
    for k in range(count):
        where = stco + 8 + 4 * k
        offset = int.from_bytes(moov[where : where + 4], "big") + len(moov)
        moov[where : where + 4] = offset.to_bytes(4, "big")
    head = b"".join(v for k, v in boxes.items() if k not in (b"moov", b"mdat"))
    whole = head + bytes(moov) + boxes[b"mdat"]
    target.write_bytes(whole[: len(head) + len(moov) + len(boxes[b"mdat"]) // 2])
    return target


def write_manifest(folder: Path, lines: list[dict[str, Any]]) -> Path:
    path = folder / "manifest.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def clip(clip_id: str, video: str = "videos/v.mp4", split: str = "val") -> dict[str, Any]:
    return {"clip_id": clip_id, "video": video, "split": split, "narration": "take the cup"}


@pytest.mark.parametrize("clip_id", ["P01/c1", "my clip", "..", ".hidden", "a:b"])
def test_unsafe_clip_id_is_named_with_the_allowed_characters(tmp_path: Path, clip_id: str) -> None:
    make_video(tmp_path / "videos/v.mp4")
    manifest = write_manifest(tmp_path, [clip("ok-1.a"), clip(clip_id)])
    with pytest.raises(ManifestError) as caught:
        validate_manifest(manifest, ["train", "val", "test"])
    assert caught.value.problems == [
        (
            2,
            f"clip_id {clip_id!r} is not a safe file name (letters, digits, '_', '-' and '.' "
            "(not first), at most 200 characters)",
        )
    ]


def test_video_truncated_after_its_index_fails_validation(tmp_path: Path) -> None:
    whole = make_video(tmp_path / "videos/v.mp4")
    truncate_after_index(whole, tmp_path / "videos/cut.mp4")
    lines = [clip("whole"), {**clip("early", "videos/cut.mp4"), "end_sec": 0.3}]
    lines.append(clip("late", "videos/cut.mp4"))  # the whole video: its last frame is gone
    manifest = write_manifest(tmp_path, lines)
    with pytest.raises(ManifestError) as caught:
        validate_manifest(manifest, ["val"])
    ((line, reason),) = caught.value.problems
    assert line == 3
    assert reason == (
        "the video does not decode to the end of the clip window (truncated?): "
        f"{tmp_path / 'videos/cut.mp4'}: cannot decode frame {N_FRAMES - 1} of {N_FRAMES}"
    )
    assert len(validate_manifest(write_manifest(tmp_path, lines[:2]), ["val"])) == 2


# ------------------------------------------------------ the nvos command: one message, exit 1


def test_nvos_commands_print_one_message(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    make_video(tmp_path / "videos/v.mp4")
    manifest = write_manifest(tmp_path, [clip("a/b")])
    cases = [
        (
            ["dataset", str(tmp_path / "out"), "--manifest", str(manifest)],
            f"{manifest}:1: a/b: clip_id",
        ),
        (["demo-data", str(tmp_path / "demo"), "--clips", "0"], "dataset.demo.clips: 0 is less"),
        (["report", str(tmp_path / "run")], f"{tmp_path}/run/clips.parquet: no such file"),
        (
            ["export-davis", str(tmp_path / "run"), "--method", "rosa", "--out", str(tmp_path)],
            f"{tmp_path}/run/clips.parquet: no such file (run the dataset stage first)",
        ),
        (["validate", str(manifest)], "a/b: clip_id 'a/b' is not a safe file name"),
    ]
    for argv, message in cases:
        assert main(argv) == 1, argv
        err = capsys.readouterr().err
        assert f"nvos {argv[0]}: " in err and message in err, err
        assert "Traceback" not in err
    assert not (tmp_path / "out").exists() and not (tmp_path / "demo").exists()
    layer = tmp_path / "layer.yaml"
    layer.write_text(yaml.safe_dump({"evaluate": {"methods": ["rosaa"]}}))
    assert main(["--config", str(layer), "validate", str(manifest)]) == 1
    assert "evaluate.methods: unknown method 'rosaa'" in capsys.readouterr().err


# ----------------------------------------------------- the workflow: a message, then nothing ran


def run_snakemake(
    workdir: Path, layer: dict[str, Any] | str, *targets: str
) -> subprocess.CompletedProcess:
    """The Snakefile in ``workdir`` with the defaults and ``layer`` (a mapping or a file's text)."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "layer.yaml").write_text(layer if isinstance(layer, str) else yaml.safe_dump(layer))
    command = [
        sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir),
        "--cores", "1", *targets, "--configfile", str(REPO / "config/config.yaml"), "layer.yaml",
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=workdir)


def test_missing_manifest_is_named_at_workflow_start(tmp_path: Path) -> None:
    config = merge(read_layer(DEFAULT_CONFIG), {"dataset": {"manifest": str(tmp_path / "m.jsonl")}})
    with pytest.raises(SystemExit) as caught:
        start_workflow(config, REPO / "config/schema.yaml")
    assert caught.value.code == f"nvos: dataset.manifest: {tmp_path / 'm.jsonl'}: file not found"


def test_workflow_stops_at_start_with_the_config_message(tmp_path: Path) -> None:
    layer = {"evaluate": {"methods": ["sam_clip", "rosaa"]}, "proposals": {"backend": "sam"}}
    result = run_snakemake(tmp_path, layer)
    assert result.returncode == 1
    assert "nvos: invalid configuration:\n" in result.stderr
    assert "  evaluate.methods: unknown method 'rosaa'" in result.stderr
    assert "  proposals.sam.checkpoint: SAM needs a checkpoint file" in result.stderr
    assert "Traceback" not in result.stderr and "File " not in result.stderr
    assert not (tmp_path / "results").exists()  # no job ran, not even the demo generator


@pytest.mark.parametrize("text", ["", "[1, 2]\n"])
def test_empty_or_non_mapping_configfile(
    tmp_path: Path, text: str, capsys: pytest.CaptureFixture
) -> None:
    """Snakemake reads --configfile before the Snakefile: its own message (without the file's
    name, docs/errors.md), nothing run; ``nvos --config FILE validate`` names the file."""
    workdir = tmp_path / "work"
    result = run_snakemake(workdir, text, "-n")
    assert result.returncode == 1
    output = result.stdout + result.stderr  # Snakemake prints this error on stdout
    assert "Config file must be given as JSON or YAML with keys at top level." in output
    assert "Traceback" not in output
    assert not (workdir / "results").exists()
    make_video(tmp_path / "videos/v.mp4")
    manifest = write_manifest(tmp_path, [clip("a")])
    assert main(["--config", str(workdir / "layer.yaml"), "validate", str(manifest)]) == 1
    found = "nothing (the file is empty)" if not text else "list"
    assert capsys.readouterr().err == (
        f"nvos validate: {workdir / 'layer.yaml'}: a config file must hold a mapping of keys, "
        f"found {found}\n"
    )


def test_bad_manifest_is_one_message_from_the_dataset_rule(tmp_path: Path) -> None:
    whole = make_video(tmp_path / "videos/v.mp4")
    truncate_after_index(whole, tmp_path / "videos/cut.mp4")
    lines = [clip("ok", split="train"), clip("ok2", split="train")]
    lines += [clip("my clip"), clip("late", "videos/cut.mp4")]
    manifest = write_manifest(tmp_path, lines)
    layer = {
        "dataset": {"manifest": str(manifest)},
        "predict": {"splits": ["val"]},
        "evaluate": {"methods": ["oracle"], "splits": ["val"]},
    }
    result = run_snakemake(tmp_path / "work", layer)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    failed = [line for line in output.splitlines() if "dataset failed:" in line]
    assert (
        len(failed) == 1
        and f"{manifest}: manifest failed validation with 2 problem(s)" in (failed[0])
    )
    assert f"{manifest}:3: my clip: clip_id 'my clip' is not a safe file name" in output
    assert f"{manifest}:4: late: the video does not decode to the end of the clip window" in output
    run = tmp_path / "work/results/demo"
    assert sorted(p.name for p in run.iterdir()) == ["benchmarks", "logs"]  # no table, no frames
