"""Benchmark: segment an hour-long narrated video in bounded memory (nvos.segment.stream).

A synthetic 854x480 video at 30 fps (camera panning over a texture, 3 textured objects moving
over it; frames generated on the fly, or with ``--mp4`` first written to a compact mp4 in /tmp and
decoded while timing) with one narration every ``--every`` seconds whose windows of ``--window``
seconds overlap (Ego4D style: 900 narrations per hour at the defaults). The narrations are free
text; their phrases come from the phrases stage's spaCy parser. The whole video is segmented in one
pass by :func:`nvos.segment.stream.segment_stream`: classical proposals and random tiny CLIP
(``nvos-tiny-vit``) region features on a keyframe every ``--key-every`` frames, zero-shot prompt
scores, exact temporal decoding, DIS flow propagation to every frame, dense masks written to
Parquet row group by row group (renamed into place at the end).

    python benchmarks/segment_long.py --minutes 1      # a quick run (about 1-2 minutes of CPU)
    python benchmarks/segment_long.py                  # the whole hour (about an hour of CPU)

Prints frames/s, peak RSS (target < 3 GB; the resident size is also sampled as the video goes,
to show that it does not grow with the video's length), and the seconds of each phase.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: benchmarks.*

from benchmarks.propagate import FPS, HEIGHT, WIDTH, SyntheticVideo  # noqa: E402

SENTENCES = (
    "take {a} from the counter",
    "The person puts {a} next to {b}.",
    "#C C moves {a} towards {b}",
    "pick up {a}",
    "The person slides {a} across the table.",
    "put {a} on {b}",
)
OBJECTS = ("red box", "blue cup", "green plate", "wooden board", "yellow bowl", "knife")


def narration(i: int) -> str:
    """The i-th synthetic narration (free text)."""
    a, b = OBJECTS[i % len(OBJECTS)], OBJECTS[(i * 7 + 3) % len(OBJECTS)]
    return SENTENCES[i % len(SENTENCES)].format(a=f"the {a}", b=f"the {b}")


def rss_mib() -> float:
    """The current resident set size in MiB (/proc/self/statm)."""
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def frames(n_frames: int, mp4: str | None, samples: list[tuple[int, float]]) -> Iterator:
    """Frames 0..n_frames-1 (generated, or decoded from ``mp4``); samples the RSS 8 times."""
    every = max(1, n_frames // 8)
    if mp4 is None:
        video = SyntheticVideo()
        source: Iterator = ((t, video.frame(t)) for t in range(n_frames))
    else:
        from nvos import video as nvos_video
        from nvos.temporal.propagate import video_frame_source

        source = video_frame_source(nvos_video.probe(mp4), HEIGHT, WIDTH)(range(n_frames))
    for index, image in source:
        if index % every == every - 1:
            samples.append((index + 1, rss_mib()))
        yield index, image


def write_mp4(path: str, n_frames: int) -> None:
    """The synthetic video as an mp4 (mp4v) at ``path``."""
    video = SyntheticVideo()
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), FPS, (WIDTH, HEIGHT))
    for t in range(n_frames):
        writer.write(cv2.cvtColor(video.frame(t), cv2.COLOR_RGB2BGR))
    writer.release()


def windows(n_frames: int, args: argparse.Namespace) -> list:
    """The narration windows of the video (clip rows as in the clips table), phrases parsed from
    the free-text narrations."""
    from nvos.config import load_config
    from nvos.phrases.normalise import normalise_narration
    from nvos.phrases.stage import build_parser
    from nvos.segment.stream import clip_windows
    from nvos.video import VideoInfo

    starts = np.arange(0.0, n_frames / FPS - args.window + 1e-9, args.every)
    clips = [
        {"clip_id": f"n{i:05d}", "start_sec": float(s), "end_sec": float(s) + args.window}
        for i, s in enumerate(starts)
    ]
    parser = build_parser(load_config([])["phrases"])
    parsed = parser.parse([normalise_narration(narration(i)) for i in range(len(clips))])
    phrases = {
        clip["clip_id"]: [
            {"phrase_id": k, "text": p.text, "object_id": None} for k, p in enumerate(found)
        ]
        for clip, found in zip(clips, parsed, strict=True)
    }
    info = VideoInfo("synthetic", HEIGHT, WIDTH, n_frames, FPS, is_folder=False)
    return clip_windows(info, clips, phrases)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=60.0, help="video length")
    parser.add_argument("--every", type=float, default=4.0, help="seconds between narrations")
    parser.add_argument("--window", type=float, default=6.0, help="seconds per narration window")
    parser.add_argument("--key-every", type=int, default=30, help="frames between keyframes")
    parser.add_argument("--fps", type=float, default=None, help="dense output rate (all frames)")
    parser.add_argument("--preset", default="ultrafast", help="DIS preset")
    parser.add_argument("--flow-max-side", type=int, default=640)
    parser.add_argument("--threads", type=int, default=2, help="OpenCV threads")
    parser.add_argument(
        "--torch-threads", type=int, default=1,
        help="torch threads (1: on a shared machine more threads spin, 9x the CPU of one)",
    )  # fmt: skip
    parser.add_argument("--mp4", action="store_true", help="decode the frames from an mp4")
    parser.add_argument("--out", default=None, help="output folder (default: a temporary one)")
    args = parser.parse_args()

    import torch

    from nvos import storage
    from nvos.features.clip_model import load_clip
    from nvos.proposals.classical import ClassicalBackend
    from nvos.segment.stream import StreamSettings, segment_stream
    from nvos.segment.writer import table_writer
    from nvos.segment.zero_shot import ZeroShotScorer
    from nvos.temporal.flow import FlowSettings

    torch.set_num_threads(args.torch_threads)
    cv2.setNumThreads(args.threads)
    n_frames = int(round(args.minutes * 60 * FPS))
    with tempfile.TemporaryDirectory(prefix="segment_long_") as tmp:
        out = Path(args.out or tmp)
        mp4 = None
        if args.mp4:
            mp4 = str(Path(tmp) / "synthetic.mp4")
            write_mp4(mp4, n_frames)
            print(f"wrote {mp4}: {os.path.getsize(mp4) / 2**20:.0f} MiB (not timed)")
        items = windows(n_frames, args)
        scorer = ZeroShotScorer(ClassicalBackend(), load_clip("nvos-tiny-vit", None))
        settings = StreamSettings(
            key_every=args.key_every, video_fps=FPS, fps=args.fps,
            flow=FlowSettings(args.preset, args.flow_max_side),
        )  # fmt: skip
        load = os.getloadavg()
        print(
            f"segment_long: {args.minutes:g} min of {WIDTH}x{HEIGHT} at {FPS:g} fps "
            f"({n_frames} frames), {len(items)} narrations ({args.window:g} s windows every "
            f"{args.every:g} s, {sum(len(w.texts) for w in items)} phrases), keyframe every "
            f"{args.key_every} frames, DIS {args.preset} at {args.flow_max_side} px, "
            f"{args.threads} OpenCV / {args.torch_threads} torch threads, {os.cpu_count()} CPUs, "
            f"load {load[0]:.1f} {load[1]:.1f}"
        )
        samples: list[tuple[int, float]] = [(0, rss_mib())]
        path = out / "dense_masks.parquet"
        started = time.perf_counter()
        meta = storage.provenance("benchmark.segment_long", vars(args))
        with table_writer(path, "dense_masks", meta) as writer:
            summary = segment_stream(frames(n_frames, mp4, samples), items, scorer, settings,
                                     writer)  # fmt: skip
            writer.meta["summary"] = {"rows": summary.rows, "keyframes": summary.keyframes}
        seconds = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"{summary.frames_read} frames in {seconds:.0f} s: {summary.frames_read / seconds:.1f}"
            f" frames/s ({summary.dense_frames / seconds:.1f} dense narration-frames/s, "
            f"{summary.rows} mask rows, {os.path.getsize(path) / 2**20:.0f} MiB parquet); "
            f"peak RSS {peak:.0f} MiB (target < 3072: {'met' if peak < 3072 else 'NOT met'}); "
            f"largest frame buffer {summary.max_buffered_frames} frames"
        )
        print("RSS as the video goes (frame: MiB): "
              + ", ".join(f"{f}: {m:.0f}" for f, m in samples))  # fmt: skip
        cpu = sum(summary.cpu_seconds.values())
        print("time (wall s / CPU s, share of CPU): " + ", ".join(
            f"{phase} {summary.seconds[phase]:.0f}/{s:.0f} ({100 * s / cpu:.0f}%)"
            for phase, s in sorted(summary.cpu_seconds.items(), key=lambda kv: -kv[1])
        ) + f"; {summary.keyframes} keyframes, {summary.regions} regions, "
            f"{summary.absent_keyframe_masks} absent keyframe masks")  # fmt: skip
        hours = 3600 * FPS / (summary.frames_read / seconds) / 3600
        print(
            f"extrapolated: one hour of video in {hours:.2f} h wall at this rate, "
            f"{3600 * FPS * cpu / summary.frames_read / 3600:.2f} CPU-hours"
        )


if __name__ == "__main__":
    main()
