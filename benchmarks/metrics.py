"""Speed of nvos.metrics J and F against the full-frame DAVIS reference, on real object masks.

Masks: the non-trivial 480x854 (GT, prediction) pairs of ``tests/data/davis_pairs.npz`` (real
OSVOS masks: temporal pairs, erosions, dilations, shifts, wrong objects), and the same pairs
nearest-upsampled to 1080x1920. For each pair both implementations run ``--repeats`` times,
interleaved; the per-pair median is taken, then the median over pairs. Prints one line per metric
and resolution, e.g.

    F 480p: reference 3.81 ms, ours 0.55 ms, ratio 6.9x, values identical: True

Run: ``.venv/bin/python benchmarks/metrics.py``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reference_davis import reference_boundary_f, reference_jaccard  # noqa: E402

from nvos.metrics import boundary_f, jaccard  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "davis_pairs.npz"
KINDS = ("temporal", "erode", "dilate", "shift", "wrong-object")

Metric = Callable[[np.ndarray, np.ndarray], float]


def load_pairs(path: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """Non-empty 480x854 (GT, prediction) boolean mask pairs (480, 854) from the golden file."""
    data = np.load(path)
    pairs = []
    for i in range(int(data["n"])):
        height, width = (int(v) for v in data["shapes"][i])
        desc = str(data["desc"][i])
        if (height, width) != (480, 854) or not desc.startswith(KINDS) or data["has_void"][i]:
            continue
        masks = [
            np.unpackbits(data[f"{key}_{i:02d}"], count=height * width)
            .reshape(height, width)
            .astype(bool)
            for key in ("gt", "pred")
        ]
        pairs.append((masks[0], masks[1]))
    return pairs


def upsample(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour resize of a boolean mask to (height, width)."""
    resized = cv2.resize(mask.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST)
    return resized.astype(bool)


def _seconds(fn: Metric, gt: np.ndarray, pred: np.ndarray) -> tuple[float, float]:
    start = time.perf_counter()
    value = fn(gt, pred)
    return time.perf_counter() - start, value


def compare(
    name: str,
    reference: Metric,
    ours: Metric,
    pairs: list[tuple[np.ndarray, np.ndarray]],
    repeats: int,
) -> str:
    """Time both implementations on every pair; one summary line."""
    ref_medians, our_medians = [], []
    identical = True
    for gt, pred in pairs:
        ref_times, our_times = [], []
        for _ in range(repeats):
            t_ref, v_ref = _seconds(reference, gt, pred)
            t_our, v_our = _seconds(ours, gt, pred)
            ref_times.append(t_ref)
            our_times.append(t_our)
            identical &= v_ref == v_our
        ref_medians.append(statistics.median(ref_times))
        our_medians.append(statistics.median(our_times))
    ref_ms = statistics.median(ref_medians) * 1e3
    our_ms = statistics.median(our_medians) * 1e3
    return (
        f"{name}: reference {ref_ms:.2f} ms, ours {our_ms:.2f} ms, "
        f"ratio {ref_ms / our_ms:.1f}x, values identical: {identical}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="davis_pairs.npz")
    parser.add_argument("--repeats", type=int, default=7, help="runs per pair (median)")
    args = parser.parse_args(argv)

    pairs_480 = load_pairs(args.data)
    pairs_1080 = [(upsample(g, 1080, 1920), upsample(p, 1080, 1920)) for g, p in pairs_480]
    print(f"{len(pairs_480)} real mask pairs, {args.repeats} repeats each, median of medians")
    for label, pairs in (("480p", pairs_480), ("1080p", pairs_1080)):
        print(compare(f"F {label}", reference_boundary_f, boundary_f, pairs, args.repeats))
        print(compare(f"J {label}", reference_jaccard, jaccard, pairs, args.repeats))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
