"""Benchmark: the feature cache's region path vs open_clip's own preprocessing, region by region.

Ours (what ``nvos.features.stage`` runs, ``features.crop.mode: fast``): per frame, the frame is
normalised on the device, the masked crops of all its proposals are cut and resized in batches
(:func:`nvos.features.regions.masked_crops`) and the image tower encodes ``--batch`` crops per
forward (:func:`nvos.features.stage.encode_regions`).

Reference (``features.crop.mode: reference``, the plain loop every CLIP user writes): per region,
the masked window on a canvas of CLIP's mean colour, open_clip's own eval transform (PIL resize,
bicubic, centre crop, to tensor, normalise; :func:`nvos.features.reference.reference_crops`) and
one region per forward.

Same model (random weights from one seed: weights do not change the work), same frames and masks
(masks are given decoded to both). Prints regions per second of both, the ratio, the speed of the
crops alone, the pixel difference of the two paths' crops in grey levels (0..255 steps), and the
mean cosine between their embeddings of the same regions. ``--scene noise`` (default): random
pixels (the worst case for resampling) and random ellipses; ``--scene demo``: demo frames with
proposal-like masks (:func:`nvos.testing.demo_regions.demo_regions`).

    python benchmarks/features.py                                  # GPU: ViT-B-16 at 224 px
    python benchmarks/features.py --device cpu --frames 2 --proposals 8
    python benchmarks/features.py --device cpu --model nvos-tiny-vit --scene demo --frames 12
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from nvos.features.clip_model import ClipEncoder, load_clip
from nvos.features.reference import eval_transform, reference_crops
from nvos.features.regions import CropPolicy
from nvos.features.stage import crop_policy, encode_regions, region_crops


def synthetic_regions(
    frames: int, proposals: int, height: int, width: int, seed: int
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per frame: RGB uint8 image (H, W, 3), masks (N, H, W) bool, boxes (N, 4) xywh."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width]
    out = []
    for _ in range(frames):
        image = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
        masks = np.zeros((proposals, height, width), bool)
        for k in range(proposals):
            cy, cx = rng.uniform(0, height), rng.uniform(0, width)
            ry, rx = rng.uniform(4, height / 3), rng.uniform(4, width / 3)
            masks[k] = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
            if not masks[k].any():
                masks[k, int(min(cy, height - 1)), int(min(cx, width - 1))] = True
        out.append((image, masks, boxes_of(masks)))
    return out


def boxes_of(masks: np.ndarray) -> np.ndarray:
    """(N, 4) float32 xywh boxes of non-empty masks (N, H, W)."""
    boxes = []
    for mask in masks:
        ys, xs = np.nonzero(mask)
        boxes.append([xs.min(), ys.min(), xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min()])
    return np.array(boxes, np.float32)


def demo_scene(frames: int, seed: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``frames`` demo frames (two per clip) with proposal-like masks and their boxes."""
    from nvos.testing.demo_regions import demo_regions

    scene = demo_regions((frames + 1) // 2, seed)[:frames]
    return [(image, masks, boxes_of(masks)) for image, masks, _ in scene]


def ours(encoder: ClipEncoder, data, policy: CropPolicy, batch: int) -> np.ndarray:
    """The stage's path: batched crops on the device, ``batch`` crops per forward."""
    pending: list[torch.Tensor] = []
    count = 0
    out = []
    for image, masks, boxes in data:
        crops = region_crops(image, masks, boxes, policy, encoder.device)
        pending.append(crops)
        count += len(crops)
        while count >= batch:
            all_crops = torch.cat(pending)
            out.append(encode_regions(encoder, all_crops[:batch]))
            pending, count = [all_crops[batch:]], len(all_crops) - batch
    if count:
        out.append(encode_regions(encoder, torch.cat(pending)))
    return np.concatenate(out)


def reference(encoder: ClipEncoder, data, policy: CropPolicy) -> np.ndarray:
    """The plain loop: open_clip's transform on each masked window, one region per forward."""
    transform = eval_transform(policy)
    out = []
    for image, masks, boxes in data:
        for mask, box in zip(masks, boxes, strict=True):
            pixels = reference_crops(image, mask[None], box[None], policy, transform)
            out.append(encode_regions(encoder, pixels.to(encoder.device)))
    return np.concatenate(out)


def crop_difference(data, policy: CropPolicy, device: torch.device) -> dict[str, float]:
    """Crops alone: both paths' regions per second, and their difference in grey levels."""
    transform = eval_transform(policy)
    regions = sum(len(masks) for _, masks, _ in data)
    fast, fast_s = timed(lambda: [region_crops(*d, policy, device) for d in data], device)
    slow, slow_s = timed(lambda: [reference_crops(*d, policy, transform) for d in data], device)
    std = torch.tensor(policy.std).view(1, 3, 1, 1)
    grey = torch.cat([(a.cpu() - b).abs() * std * 255 for a, b in zip(fast, slow, strict=True)])
    sample = grey.flatten()[:: max(1, grey.numel() // 4_000_000)]
    return {
        "fast": regions / fast_s,
        "reference": regions / slow_s,
        "mean": float(grey.mean()),
        "p99": float(torch.quantile(sample, 0.99)),
        "max": float(grey.max()),
    }


def timed(fn, device: torch.device) -> tuple[np.ndarray, float]:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    result = fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--model", default="ViT-B-16")
    parser.add_argument("--image-size", type=int, default=None, help="override the input size")
    parser.add_argument("--scene", choices=("noise", "demo"), default="noise")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--proposals", type=int, default=40, help="regions per frame (noise)")
    parser.add_argument("--frame-size", type=int, nargs=2, default=(480, 640), metavar=("H", "W"),
                        help="noise scene only (demo frames are 240x320)")  # fmt: skip
    parser.add_argument("--batch", type=int, default=128, help="crops per forward (ours)")
    parser.add_argument("--margin", type=float, default=0.1)
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast for both methods")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    device = torch.device(args.device)
    encoder = load_clip(
        args.model, None, device, args.seed, image_size=args.image_size, autocast_bf16=args.bf16
    )
    policy = crop_policy({"crop": {"margin": args.margin}}, encoder)
    if args.scene == "noise":
        data = synthetic_regions(args.frames, args.proposals, *args.frame_size, seed=args.seed)
        scene = f"noise {args.frame_size[0]}x{args.frame_size[1]}"
    else:
        data = demo_scene(args.frames, args.seed)
        scene = "demo 240x320"
    regions = sum(len(masks) for _, masks, _ in data)
    warm = data[:1]
    ours(encoder, warm, policy, args.batch)
    reference(encoder, [(warm[0][0], warm[0][1][:2], warm[0][2][:2])], policy)

    ours_emb, ours_s = timed(lambda: ours(encoder, data, policy, args.batch), device)
    ref_emb, ref_s = timed(lambda: reference(encoder, data, policy), device)
    cosines = np.sum(ours_emb.astype(np.float32) * ref_emb.astype(np.float32), 1)
    crops = crop_difference(data, policy, device)
    threads = torch.get_num_threads()
    print(
        f"device {device} ({threads} CPU threads), model {args.model} at {encoder.image_size} px"
        f"{' bf16' if args.bf16 else ' fp32'}, {regions} regions ({len(data)} {scene} frames), "
        f"batch {args.batch}"
    )
    print(f"ours (batched crops on device): {regions / ours_s:9.1f} regions/s ({ours_s:.2f} s)")
    print(f"reference (PIL + open_clip transform, one at a time): {regions / ref_s:9.1f} regions/s "
          f"({ref_s:.2f} s)")  # fmt: skip
    print(f"crops alone: ours {crops['fast']:.1f} regions/s, reference {crops['reference']:.1f} "
          f"regions/s")  # fmt: skip
    print(f"crop pixels, ours vs reference: mean |diff| {crops['mean']:.3f} grey levels, 99th "
          f"percentile {crops['p99']:.3f}, max {crops['max']:.1f}")  # fmt: skip
    print(f"ratio ours/reference: {ref_s / ours_s:.1f}x; mean cosine between them: "
          f"{float(cosines.mean()):.4f} (min {float(cosines.min()):.4f})")  # fmt: skip


if __name__ == "__main__":
    main()
