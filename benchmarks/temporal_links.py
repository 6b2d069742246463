"""Benchmark: the link modes of temporal decoding on a finished run, by the decoded val J.

For each mode (one flow step between the stored keyframes, flow chained through the video,
none) the links of the run's val clips are built into ``--out`` (the run is not touched; ``none``
is the per-frame choice: link weight 0 only; listed last), then each decoded base's settings are
selected on val over the configured grid (:func:`nvos.temporal.select.select_settings`).

    python benchmarks/temporal_links.py results/demo-small --out /tmp/links_modes

Prints one line per (mode, base): wall seconds of the links, the chosen setting, its val J and
J&F, and the per-frame choice's val J and flip rate.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from nvos.config import load_config
from nvos.layout import RunLayout
from nvos.temporal.links import LinkSettings, build_links
from nvos.temporal.select import SelectInputs, select_settings

MODES: dict[str, LinkSettings | None] = {
    "one step, medium": LinkSettings("medium", 640, None),
    "chained 2, ultrafast": LinkSettings("ultrafast", 640, 2),
    "chained 4, medium": LinkSettings("medium", 640, 4),
    "none": None,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a finished run folder (results/<run>)")
    parser.add_argument("--out", type=Path, required=True, help="folder for the links built")
    parser.add_argument("--bases", nargs="+", default=["sam_clip", "rosa"])
    args = parser.parse_args()
    run = RunLayout.at(args.run)
    decode = load_config()["temporal"]["decode"]
    shards = sorted(p.stem for p in Path(run.root, "scores", args.bases[0]).glob("*.parquet"))
    for mode, settings in MODES.items():
        folder = args.out / mode.replace(", ", "_").replace(" ", "_")
        start = time.perf_counter()
        if settings is not None:  # "none" keeps the last links: weight 0 ignores them
            links = []
            for shard in shards:
                path = folder / f"{shard}.parquet"
                source = run.frames(shard), run.proposals(shard), run.clips, shard, path
                build_links(*source, settings, ["val"])
                links.append(path)
        seconds = time.perf_counter() - start
        weights = decode["link_weight"] if settings else [0.0]
        for base in args.bases:
            inputs = SelectInputs(
                [run.scores(base, s) for s in shards], links,
                [run.proposals(s) for s in shards], [run.frames(s) for s in shards],
                run.clips, run.annotations,
            )  # fmt: skip
            chosen = select_settings(inputs, weights, decode["absent_quantile"],
                                     folder / f"{base}.json", folder / f"{base}.csv",
                                     f"{base}+temporal")  # fmt: skip
            first = chosen["grid"][0]
            print(
                f"{mode:22s} {base:9s} links {seconds:6.1f} s  chosen w={chosen['link_weight']} "
                f"q={chosen['absent_quantile']}: val J {chosen['val']['J']:.4f} J&F "
                f"{chosen['val']['J&F']:.4f}; per frame J {first['J']:.4f}, flips "
                f"{first['flips']:.3f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
