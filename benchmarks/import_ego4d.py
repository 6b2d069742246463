"""Benchmark: the Ego4D importer on a synthetic narration.json of about 1.5M narrations.

Writes (streaming) a ``narration.json`` in the real layout (REFERENCE §5: one object keyed by
video_uid, two passes, ``#C``/``#O``/``#unsure``/``#Summary`` texts), an ``ego4d.json`` with each
video's fps and frame count, and one tiny real mp4 linked under every ``<video_uid>.mp4`` (the
import only checks that the file exists when ``ego4d.json`` gives the timing). Then measures, each
in its own process so peak RSS is its own:

- ``nvos``: :func:`nvos.importers.ego4d.import_ego4d` into a manifest (streamed, bounded memory);
- ``reference``: ``json.load`` of the whole file and a loop over its narrations (what most
  loaders do), no manifest written.

    python benchmarks/import_ego4d.py --narrations 1500000 --videos 5000

Prints wall time, peak RSS (``resource.getrusage``) and narrations per second of each, and the
ratios. ``--skip-reference`` leaves the ``json.load`` run out (it needs several GB of memory).
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

FPS = 30.0
VERBS = ["picks", "puts", "opens", "closes", "holds", "cuts", "washes", "stirs", "moves", "drops"]
OBJECTS = ["a cup", "the knife", "a plate", "the drawer", "a bag of clothes", "the tap", "a pan"]
PLACES = ["from the table", "on the counter", "in the sink", "with the left hand", ""]

NVOS_RUN = """
import json, resource, sys, time
from nvos.importers.common import open_manifest
from nvos.importers.ego4d import import_ego4d
narrations, videos, metadata, out = sys.argv[1:5]
start = time.perf_counter()
with open_manifest(out, "ego4d") as writer:
    import_ego4d(narrations, videos, writer, metadata=metadata)
wall = time.perf_counter() - start
s = writer.summary
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss_kb": usage.ru_maxrss,
                  "items": s.clips + sum(s.skipped.values()), "clips": s.clips,
                  "skipped": dict(s.skipped)}))
"""

REFERENCE_RUN = """
import json, resource, sys, time
start = time.perf_counter()
with open(sys.argv[1]) as handle:
    data = json.load(handle)
items = clips = 0
for uid, entry in data.items():
    for key, value in entry.items():
        if key.startswith("narration_pass_"):
            items += len(value.get("summaries", []))
            for narration in value["narrations"]:
                items += 1
                text = narration["narration_text"]
                clips += "#unsure" not in text.lower() and not text.startswith("#Summary")
wall = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss_kb": usage.ru_maxrss,
                  "items": items, "clips": clips}))
"""


def narration_text(rng: random.Random) -> str:
    """A narration in Ego4D's conventions (about 2% #unsure, 1% #Summary lines)."""
    roll = rng.random()
    if roll < 0.01:
        return "#Summary C cooks a meal in the kitchen"
    subject = "#O man X" if roll < 0.1 else "#C C"
    text = f"{subject} {rng.choice(VERBS)} {rng.choice(OBJECTS)} {rng.choice(PLACES)}".strip()
    return text + " #unsure" if roll > 0.98 else text


def uid(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def generate(folder: Path, narrations: int, videos: int, seed: int = 0) -> tuple[Path, Path, Path]:
    """Write narration.json, ego4d.json and the linked videos; return their paths."""
    rng = random.Random(seed)
    video_dir = folder / "full_scale"
    video_dir.mkdir()
    tiny = folder / "tiny.mp4"
    writer = cv2.VideoWriter(str(tiny), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (32, 24))
    for i in range(30):
        writer.write(np.full((24, 32, 3), i, np.uint8))
    writer.release()
    per_pass = narrations // (2 * videos)
    meta = []
    path = folder / "narration.json"
    with open(path, "w") as handle:
        handle.write("{")
        for v in range(videos):
            video_uid = uid(rng)
            duration = per_pass * 2.5 + 10.0  # a narration every ~2.5 s
            meta.append(
                {
                    "video_uid": video_uid,
                    "duration_sec": duration,
                    "video_metadata": {"fps": FPS, "num_frames": int(duration * FPS)},
                }
            )
            (video_dir / f"{video_uid}.mp4").symlink_to(tiny.resolve())
            entry = {"status": "complete"}
            for p in (1, 2):
                times = sorted(rng.uniform(0, duration) for _ in range(per_pass))
                entry[f"narration_pass_{p}"] = {
                    "narrations": [
                        {
                            "timestamp_sec": t,
                            "timestamp_frame": int(t * FPS),
                            "narration_text": narration_text(rng),
                            "annotation_uid": uid(rng),
                        }
                        for t in times
                    ],
                    "summaries": [
                        {
                            "summary_text": "#Summary C cooks a meal",
                            "start_sec": 0.0,
                            "end_sec": duration,
                            "start_frame": 0,
                            "end_frame": int(duration * FPS),
                        }
                    ],
                }
            handle.write(("," if v else "") + json.dumps(video_uid) + ":" + json.dumps(entry))
        handle.write("}")
    metadata = folder / "ego4d.json"
    metadata.write_text(json.dumps({"version": "v2", "videos": meta, "clips": []}))
    return path, video_dir, metadata


def measure(code: str, *args: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", code, *args], check=True, capture_output=True, text=True
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--narrations", type=int, default=1_500_000)
    parser.add_argument("--videos", type=int, default=5_000)
    parser.add_argument("--workdir", default=None, help="default: a temporary folder")
    parser.add_argument("--skip-reference", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        folder = Path(tmp)
        start = time.perf_counter()
        narrations, videos, metadata = generate(folder, args.narrations, args.videos)
        size = narrations.stat().st_size
        print(
            f"generated {narrations.name}: {size / 2**20:.0f} MiB, {args.videos} videos, "
            f"in {time.perf_counter() - start:.1f} s"
        )
        out = folder / "manifest.jsonl"
        ours = measure(NVOS_RUN, str(narrations), str(videos), str(metadata), str(out))
        manifest_mib = out.stat().st_size / 2**20
        print(
            f"nvos      : {ours['items']} items ({ours['clips']} clips) "
            f"in {ours['wall']:.1f} s (CPU {ours['cpu']:.1f} s), "
            f"{ours['items'] / ours['wall']:,.0f} narrations/s, "
            f"peak RSS {ours['rss_kb'] / 1024:.0f} MiB, manifest {manifest_mib:.0f} MiB"
        )
        print(f"            skipped: {ours['skipped']}")
        if not args.skip_reference:
            ref = measure(REFERENCE_RUN, str(narrations))
            print(
                f"reference : json.load + loop over {ref['items']} items "
                f"in {ref['wall']:.1f} s (CPU {ref['cpu']:.1f} s), "
                f"{ref['items'] / ref['wall']:,.0f} narrations/s, "
                f"peak RSS {ref['rss_kb'] / 1024:.0f} MiB (no manifest written)"
            )
            print(
                f"nvos / reference: wall time x{ours['wall'] / ref['wall']:.2f}, "
                f"peak RSS x{ours['rss_kb'] / ref['rss_kb']:.2f}"
            )


if __name__ == "__main__":
    main()
