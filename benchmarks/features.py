"""Benchmark: the feature cache's region path vs a plain one-region-at-a-time loop.

Ours (what ``nvos.features.stage`` runs): per frame, the frame is normalised on the device, the
masked crops of all its proposals are cut and resized in one ``roi_align`` batch
(:func:`nvos.features.regions.masked_crops`) and the image tower encodes ``--batch`` crops per
forward (:func:`nvos.features.stage.encode_regions`).

Reference (the plain loop): per region, mask the frame on the CPU (outside pixels set to CLIP's
mean colour), crop the square window with PIL, preprocess with open_clip's own eval transform
(resize, centre crop, to tensor, normalise) and encode that one region.

Same model (random weights from one seed: weights do not change the work), same frames and masks
(masks are given decoded to both). Prints regions per second of both, the ratio, and the mean
cosine between the two methods' embeddings of the same regions (they differ by the resampling
filter only).

    python benchmarks/features.py                                  # GPU: ViT-B-16 at 224 px
    python benchmarks/features.py --device cpu --frames 2 --proposals 8
    python benchmarks/features.py --device cpu --model nvos-tiny-vit --frames 4
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from PIL import Image

from nvos.features.clip_model import ClipEncoder, load_clip
from nvos.features.regions import CropPolicy, crop_windows, masked_crops, normalise_frame
from nvos.features.stage import encode_regions


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
        boxes = []
        for mask in masks:
            ys, xs = np.nonzero(mask)
            boxes.append([xs.min(), ys.min(), xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min()])
        out.append((image, masks, np.array(boxes, np.float32)))
    return out


def ours(encoder: ClipEncoder, data, policy: CropPolicy, batch: int) -> np.ndarray:
    """The stage's path: batched crops on the device, ``batch`` crops per forward."""
    pending: list[torch.Tensor] = []
    count = 0
    out = []
    for image, masks, boxes in data:
        frame = normalise_frame(image, encoder.mean, encoder.std, encoder.device)
        crops = masked_crops(frame, torch.from_numpy(masks), torch.from_numpy(boxes), policy)
        pending.append(crops)
        count += len(crops)
        while count >= batch:
            all_crops = torch.cat(pending)
            out.append(encode_regions(encoder, all_crops[:batch]))
            pending, count = [all_crops[batch:]], len(all_crops) - batch
    if count:
        out.append(encode_regions(encoder, torch.cat(pending)))
    return np.concatenate(out)


def reference(encoder: ClipEncoder, data, policy: CropPolicy, preprocess) -> np.ndarray:
    """The plain loop: PIL crop + open_clip's transform + one region per forward."""
    mean_colour = np.round(np.array(encoder.mean) * 255).astype(np.uint8)
    out = []
    for image, masks, boxes in data:
        windows = crop_windows(torch.from_numpy(boxes), policy.margin).numpy()
        for mask, window in zip(masks, windows, strict=True):
            masked = np.where(mask[..., None], image, mean_colour)
            crop = Image.fromarray(masked).crop(tuple(int(round(v)) for v in window))
            pixels = preprocess(crop).unsqueeze(0).to(encoder.device)
            out.append(encode_regions(encoder, pixels))
    return np.concatenate(out)


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
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--proposals", type=int, default=40, help="regions per frame")
    parser.add_argument("--frame-size", type=int, nargs=2, default=(480, 640), metavar=("H", "W"))
    parser.add_argument("--batch", type=int, default=128, help="crops per forward (ours)")
    parser.add_argument("--margin", type=float, default=0.1)
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast for both methods")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import open_clip

    device = torch.device(args.device)
    encoder = load_clip(
        args.model, None, device, args.seed, image_size=args.image_size, autocast_bf16=args.bf16
    )
    preprocess = open_clip.image_transform(
        open_clip.get_model_preprocess_cfg(encoder.model)["size"],
        is_train=False,
        mean=encoder.mean,
        std=encoder.std,
    )
    policy = CropPolicy(args.margin, encoder.image_size)
    data = synthetic_regions(args.frames, args.proposals, *args.frame_size, seed=args.seed)
    regions = args.frames * args.proposals
    warm = data[:1]
    ours(encoder, warm, policy, args.batch)
    reference(encoder, [(warm[0][0], warm[0][1][:2], warm[0][2][:2])], policy, preprocess)

    ours_emb, ours_s = timed(lambda: ours(encoder, data, policy, args.batch), device)
    ref_emb, ref_s = timed(lambda: reference(encoder, data, policy, preprocess), device)
    cosine = float(np.mean(np.sum(ours_emb.astype(np.float32) * ref_emb.astype(np.float32), 1)))
    threads = torch.get_num_threads()
    print(
        f"device {device} ({threads} CPU threads), model {args.model} at {encoder.image_size} px"
        f"{' bf16' if args.bf16 else ' fp32'}, {regions} regions ({args.frames} frames of "
        f"{args.frame_size[0]}x{args.frame_size[1]}, {args.proposals} proposals), "
        f"batch {args.batch}"
    )
    print(f"ours (batched crops on device): {regions / ours_s:9.1f} regions/s ({ours_s:.2f} s)")
    print(f"reference (PIL + open_clip transform, one at a time): {regions / ref_s:9.1f} regions/s "
          f"({ref_s:.2f} s)")  # fmt: skip
    print(f"ratio ours/reference: {ref_s / ours_s:.1f}x; mean cosine between them: {cosine:.3f}")


if __name__ == "__main__":
    main()
