"""CUDA tests (``@pytest.mark.gpu``: skipped without CUDA, run by the GPU check script).

Tolerances fit CUDA: kernels round differently from the CPU's (TF32 convolutions, bf16 autocast,
other reduction orders), so CUDA results are compared with the CPU's closely, not exactly. Where
a test needs bit-exactness on CUDA (a resumed training against an uninterrupted one) it runs in
deterministic mode (:func:`deterministic`): ``torch.use_deterministic_algorithms(True)`` (which
makes the backward of ``torch.gather`` in ``rosa/losses.py`` deterministic),
``CUBLAS_WORKSPACE_CONFIG=:4096:8`` (set below at import, before any cuBLAS handle exists) and
the math kernel of scaled-dot-product attention (memory-efficient and flash attention backward
passes accumulate in a nondeterministic order). Outside that mode CUDA training is not bit-exact
from run to run, only close.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
from collections.abc import Iterator
from pathlib import Path

os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from test_rosa_train import BASE as TRAIN_BASE  # noqa: E402
from test_rosa_train import data  # noqa: E402
from torch.nn.attention import SDPBackend, sdpa_kernel  # noqa: E402

from nvos.devices import claim_device  # noqa: E402
from nvos.rosa.checkpoint import rng_state, set_rng_state  # noqa: E402
from nvos.rosa.config import RosaConfig  # noqa: E402
from nvos.rosa.model import load_model  # noqa: E402
from nvos.rosa.stage import run_torchrun, torchrun_command  # noqa: E402
from nvos.rosa.train import train_rosa  # noqa: E402
from nvos.testing.cache_fixture import synthetic_clips, write_synthetic_cache  # noqa: E402

pytestmark = pytest.mark.gpu

CPU = torch.device("cpu")
CUDA = torch.device("cuda", 0)
# The CPU tests' synthetic data and model (tests/test_rosa_train.py), with bf16 off unless asked.
BASE = {**TRAIN_BASE, "train": {**TRAIN_BASE["train"], "bf16": False}}


def config(**train: object) -> RosaConfig:
    return RosaConfig.from_mapping({**BASE, "train": {**BASE["train"], **train}})


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return [{k: v for k, v in r.items() if k != "clips_per_s"} for r in csv.DictReader(handle)]


@contextlib.contextmanager
def deterministic() -> Iterator[None]:
    """Bit-exact CUDA kernels for the block (see the module docstring)."""
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        with sdpa_kernel(SDPBackend.MATH):
            yield
    finally:
        torch.use_deterministic_algorithms(previous)


def test_bf16_training_steps_on_cuda(tmp_path: Path) -> None:
    train, val = data()
    summary = train_rosa(train, val, tmp_path, config(bf16=True), device=CUDA)
    assert summary.steps == 8 and math.isfinite(summary.final_loss)
    losses = [float(r["loss"]) for r in rows(summary.log)]
    assert all(math.isfinite(x) for x in losses)
    model = load_model(summary.checkpoint, "cuda")
    assert next(model.parameters()).dtype == torch.float32  # autocast: weights stay fp32


def test_fp32_cuda_training_is_close_to_the_cpu(tmp_path: Path) -> None:
    train, val = data()
    cpu = rows(train_rosa(train, val, tmp_path / "cpu", config(), device=CPU).log)
    gpu = rows(train_rosa(train, val, tmp_path / "gpu", config(), device=CUDA).log)
    for a, b in zip(gpu, cpu, strict=True):
        for key in ("loss", "vna", "rpa"):
            assert float(a[key]) == pytest.approx(float(b[key]), rel=2e-3, abs=2e-3), key


def test_deterministic_cuda_resume_gives_the_same_curve(tmp_path: Path) -> None:
    train, val = data()
    with deterministic():
        full = train_rosa(train, val, tmp_path / "full", config(), device=CUDA)
        train_rosa(train, val, tmp_path / "part", config(), device=CUDA, stop_after=3)
        resumed = train_rosa(train, val, tmp_path / "part", config(), device=CUDA)
    assert resumed.resumed_from == 2
    assert rows(resumed.log) == rows(full.log)
    state = torch.load(tmp_path / "part/last.pt", weights_only=False)
    assert isinstance(state["rng"][0]["cuda"], torch.Tensor)  # only this device's generator


def test_cuda_generator_state_goes_to_the_claimed_device() -> None:
    """A state saved on one device restores onto another (a resumed job may claim another)."""
    last = torch.cuda.device_count() - 1
    torch.cuda.manual_seed_all(7)
    state = rng_state(CUDA)
    expected = torch.rand(4, device=CUDA)
    set_rng_state(state, torch.device("cuda", last))
    assert torch.equal(torch.rand(4, device=torch.device("cuda", last)).cpu(), expected.cpu())


def test_claimed_device_exists(tmp_path: Path) -> None:
    with claim_device(tmp_path, environ={}) as device:
        assert device.type == "cuda" and device.index < torch.cuda.device_count()
        assert torch.ones(1, device=device).device == device


def test_masked_crops_on_cuda_match_the_cpu() -> None:
    from nvos.features.regions import CropPolicy, masked_crops

    rng = np.random.default_rng(0)
    frame = torch.from_numpy(rng.normal(size=(1, 3, 60, 80)).astype(np.float32))
    masks = torch.zeros(3, 60, 80, dtype=torch.bool)
    masks[0, 5:30, 10:50] = True
    masks[1, 40:60, 60:80] = True
    masks[2, 0:2, 0:3] = True
    boxes = torch.tensor([[10, 5, 40, 25], [60, 40, 20, 20], [0, 0, 3, 2]], dtype=torch.float32)
    policy = CropPolicy(margin=0.1, size=32, mean=(0.5, 0.4, 0.3), std=(0.25, 0.2, 0.3))
    cpu = masked_crops(frame, masks, boxes, policy)
    gpu = masked_crops(frame.to(CUDA), masks.to(CUDA), boxes.to(CUDA), policy).cpu()
    torch.testing.assert_close(gpu, cpu, rtol=1e-4, atol=1e-4)


def test_sam_batched_matches_stock_on_cuda() -> None:
    from segment_anything import SamAutomaticMaskGenerator

    from nvos.proposals.sam import SamBackend, SamSettings, build_sam

    torch.manual_seed(0)
    model = build_sam("tiny")
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.Linear | torch.nn.Conv2d | torch.nn.ConvTranspose2d):
                module.weight.mul_(6.0)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)
    image[20:60, 30:90] = (200, 40, 40)
    settings = SamSettings(points_per_side=8, points_per_batch=16, frames_per_batch=2)
    ours = SamBackend(model, settings, CUDA, "tiny").generate([image, image])
    records = SamAutomaticMaskGenerator(model.to(CUDA), **settings.generator_kwargs()).generate(
        image
    )
    assert len(ours[0]) == len(ours[1])
    # CUDA kernels round differently in batches: a mask whose score sits on a threshold can
    # flip, so counts may differ by one and masks match by IoU.
    assert abs(len(ours[0]) - len(records)) <= 1
    theirs = np.stack([r["segmentation"] for r in records]) if records else None
    if theirs is not None and len(ours[0]):
        flat_o = ours[0].masks.reshape(len(ours[0]), -1).astype(np.float64)
        flat_r = theirs.reshape(len(theirs), -1).astype(np.float64)
        inter = flat_o @ flat_r.T
        union = flat_o.sum(1)[:, None] + flat_r.sum(1)[None, :] - inter
        best = (inter / np.maximum(union, 1)).max(axis=1)
        assert float(np.median(best)) >= 0.98


def test_nccl_two_processes(tmp_path: Path) -> None:
    if torch.cuda.device_count() < 2:
        pytest.skip("needs two CUDA devices (NCCL across processes)")
    clips = synthetic_clips(
        12, 6, splits=("train", "train", "val"), sampled_frames=3, annotated_frames=1, proposals=4
    )
    shards = write_synthetic_cache(tmp_path, clips, dim=8)
    rosa = {
        "dim": 16,
        "context_layers": 0,
        "frames_per_clip": 2,
        "max_regions": 4,
        "train": {"batch_size": 4, "steps": 3, "warmup_steps": 1, "val_every": 3, "gpus": 2},
        "variants": {"rosa": {}},
    }
    out = tmp_path / "models/rosa"
    spec = tmp_path / "train_args.json"
    args = {
        "run_dir": str(tmp_path),
        "shards": shards,
        "rosa": rosa,
        "variant": "rosa",
        "device": "cuda",
    }
    spec.write_text(json.dumps(args))
    run_torchrun(torchrun_command(spec, 2), {**os.environ, "CUDA_VISIBLE_DEVICES": "0,1"})
    saved = torch.load(out / "checkpoint.pt", weights_only=False)
    assert saved["steps"] == 3
    assert len(torch.load(out / "last.pt", weights_only=False)["rng"]) == 2
