"""Demo frames with proposal-like masks, for the crop tests and ``benchmarks/features.py``."""

from __future__ import annotations

import re

import cv2
import numpy as np

__all__ = ["demo_regions"]


def demo_regions(clips: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray, list[str]]]:
    """Every other annotated frame of the first ``clips`` val clips the demo generator makes
    with ``seed``, each with proposal-like masks: every labelled region (objects, hands,
    counter), and each object's box, its dilation and its erosion (9×9 square).

    Returns:
        Per frame: RGB uint8 image (H, W, 3), masks (N, H, W) bool (none empty), and the clip's
        tagged phrases (the narration's ``[...]`` texts).
    """
    from nvos.demo.generate import annotated_frames, make_clip
    from nvos.demo.vocabulary import load_vocabulary

    vocab = load_vocabulary()
    kernel = np.ones((9, 9), np.uint8)
    out = []
    for index in range(clips):
        clip = make_clip(vocab, seed=seed, index=index, split="val")
        phrases = re.findall(r"\[([^\]]+)\]", clip.narration)
        for t in annotated_frames(clip.plan.n_frames)[::2]:
            labels = clip.rendered.labels[t]
            masks = [labels == k for k in np.unique(labels)]
            for k in np.unique(labels[labels > 0]):
                obj = (labels == k).astype(np.uint8)
                x, y, w, h = cv2.boundingRect(obj)
                box = np.zeros_like(obj)
                box[y : y + h, x : x + w] = 1
                masks += [box, cv2.dilate(obj, kernel), cv2.erode(obj, kernel)]
            stack = np.stack([m.astype(bool) for m in masks])
            stack = stack[stack.reshape(len(stack), -1).any(axis=1)]
            image = np.ascontiguousarray(clip.rendered.frames[t][..., ::-1])  # BGR -> RGB
            out.append((image, stack, phrases))
    return out
