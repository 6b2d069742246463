"""The ``nvos`` command: the pipeline's stages outside Snakemake, and dataset tools.

Stage commands read the same configuration as the workflow (``config/config.yaml`` layered with
``--config FILE ...``) and call the same entry functions (:mod:`nvos.pipeline`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from nvos import __version__
from nvos.importers.cli import add_import_parser, plain_text

Handler = Callable[[argparse.Namespace, dict[str, Any]], int]
SHARD_HELP = "the shard id, e.g. s00000 (a run's shards: the files under <run>/frames/)"


def _config(args: argparse.Namespace) -> dict[str, Any]:
    from nvos.config import load_config

    return load_config(args.config or [])


def cmd_validate(args: argparse.Namespace, config: dict[str, Any]) -> int:
    from nvos.checks import check_config
    from nvos.manifest import summary, validate_manifest

    dataset = config["dataset"]
    check_config(config)  # the config alone first: its mistakes need no manifest
    records = validate_manifest(args.manifest, dataset["splits"], dataset["folder_fps"])
    counts = summary(records)
    check_config(config, {split: n["clips"] for split, n in counts["per_split"].items()})
    print(json.dumps(counts, indent=2, default=str))
    return 0


def cmd_demo_data(args: argparse.Namespace, config: dict[str, Any]) -> int:
    from nvos.config import merge, validate_config
    from nvos.pipeline import run_demo_data

    demo = {"clips": args.clips, "seed": args.seed, "style": args.style}
    validate_config(merge(config, {"dataset": {"demo": demo}}))  # the schema's limits
    print(run_demo_data(args.out, demo))
    return 0


def cmd_dataset(args: argparse.Namespace, config: dict[str, Any]) -> int:
    from nvos.pipeline import run_dataset

    out = args.out.rstrip("/")
    summary = run_dataset(
        args.manifest,
        f"{out}/clips.parquet",
        f"{out}/annotations.parquet",
        config["dataset"],
        config["shards"],
    )
    print(summary)
    return 0


def cmd_frames(args: argparse.Namespace, config: dict[str, Any]) -> int:
    from nvos.pipeline import run_frames

    summary = run_frames(
        args.clips,
        args.annotations,
        args.shard,
        args.out,
        config["frames"],
        config["dataset"]["folder_fps"],
    )
    print(summary)
    return 0


def cmd_proposals(args: argparse.Namespace, config: dict[str, Any]) -> int:
    from nvos.pipeline import run_proposals

    lock_dir = args.lock_dir or config["gpu_lock_dir"]
    print(run_proposals(args.frames, args.out, config["proposals"], lock_dir, args.shard))
    return 0


def cmd_phrases(args: argparse.Namespace, config: dict[str, Any]) -> int:
    from nvos.pipeline import run_phrases

    print(run_phrases(args.clips, args.out, config["phrases"]))
    return 0


def cmd_features(args: argparse.Namespace, config: dict[str, Any]) -> int:
    from nvos.pipeline import run_features

    run = args.run.rstrip("/")
    summary = run_features(
        f"{run}/frames/{args.shard}.parquet",
        f"{run}/proposals/{args.shard}.parquet",
        f"{run}/phrases.parquet",
        f"{run}/clips.parquet",
        args.shard,
        f"{run}/features/{args.shard}.regions.parquet",
        f"{run}/features/{args.shard}.text.parquet",
        config["features"],
        config["gpu_lock_dir"],
    )
    print(summary)
    return 0


def cmd_sam_clip(args: argparse.Namespace, config: dict[str, Any]) -> int:
    from nvos.pipeline import run_sam_clip

    run = args.run.rstrip("/")
    summary = run_sam_clip(
        f"{run}/features/{args.shard}.regions.parquet",
        f"{run}/proposals/{args.shard}.parquet",
        f"{run}/frames/{args.shard}.parquet",
        f"{run}/phrases.parquet",
        f"{run}/clips.parquet",
        args.shard,
        f"{run}/predictions/sam_clip/{args.shard}.parquet",
        config["features"],
        config["evaluate"]["splits"],
        config["gpu_lock_dir"],
    )
    print(summary)
    return 0


def cmd_oracle(args: argparse.Namespace, config: dict[str, Any]) -> int:
    from nvos.pipeline import run_oracle

    print(run_oracle(args.clips, args.annotations, args.proposals, args.shard, args.out))
    return 0


def cmd_evaluate(args: argparse.Namespace, config: dict[str, Any]) -> int:
    from nvos.pipeline import run_evaluate

    evaluate = dict(config["evaluate"])
    summary = run_evaluate(
        args.method,
        args.predictions,
        args.clips,
        args.annotations,
        args.split,
        args.out,
        evaluate,
        workers=args.workers or int(evaluate["workers"]),
    )
    print(json.dumps({k: summary[k] for k in ("J", "F", "J&F", "J_union", "J_ins", "objects")}))
    return 0


def cmd_report(args: argparse.Namespace, config: dict[str, Any]) -> int:
    from nvos.pipeline import run_report

    run = args.run.rstrip("/")
    print(
        run_report(
            f"{run}/metrics",
            f"{run}/frames",
            f"{run}/annotations.parquet",
            f"{run}/predictions",
            f"{run}/clips.parquet",
            args.out or f"{run}/report",
            config,
        )
    )
    return 0


def cmd_export_davis(args: argparse.Namespace, config: dict[str, Any]) -> int:
    from nvos.pipeline import run_export_davis

    run = args.run.rstrip("/")
    summary = run_export_davis(
        f"{run}/predictions",
        args.method,
        f"{run}/clips.parquet",
        f"{run}/annotations.parquet",
        args.out,
        layout=args.layout,
        with_gt=args.with_gt,
        frames_dir=f"{run}/frames" if args.with_gt else None,
        splits=args.split,
    )
    print(summary)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="nvos", description=plain_text(__doc__.splitlines()[0]))
    parser.add_argument("--version", action="version", version=f"nvos {__version__}")
    parser.add_argument(
        "--config", action="append", metavar="FILE", help="config file layered on the defaults"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "validate", help="check a manifest (every bad line) and the config against it"
    )
    p.add_argument("manifest", help="the manifest to check (JSON Lines, one clip per line)")
    p.set_defaults(handler=cmd_validate)

    p = sub.add_parser("demo-data", help="generate the embedded demo dataset")
    p.add_argument("out", help="folder to write (manifest.jsonl and the clips' videos)")
    p.add_argument("--clips", type=int, default=24, help="number of clips (default %(default)s)")
    p.add_argument(
        "--seed", type=int, default=0, help="random seed of the generator (default %(default)s)"
    )
    p.add_argument(
        "--style",
        default="kitchen",
        help="look and language of the clips: kitchen or workshop (docs/demo.md; default "
        "%(default)s)",
    )
    p.set_defaults(handler=cmd_demo_data)

    p = sub.add_parser("dataset", help="manifest -> clips.parquet + annotations.parquet")
    p.add_argument("manifest", help="the manifest (JSON Lines), or a demo-data folder")
    p.add_argument(
        "--out", required=True, help="output folder (clips.parquet, annotations.parquet)"
    )
    p.set_defaults(handler=cmd_dataset)

    p = sub.add_parser("frames", help="decode and sample the frames of one shard")
    p.add_argument("clips", help="clips.parquet (from nvos dataset)")
    p.add_argument("annotations", help="annotations.parquet (from nvos dataset)")
    p.add_argument("--shard", required=True, help=SHARD_HELP)
    p.add_argument("--out", required=True, help="frames/<shard>.parquet")
    p.set_defaults(handler=cmd_frames)

    p = sub.add_parser("proposals", help="mask proposals for one shard's frames")
    p.add_argument("frames", help="frames/<shard>.parquet (from nvos frames)")
    p.add_argument("--shard", required=True, help=SHARD_HELP)
    p.add_argument("--out", required=True, help="proposals/<shard>.parquet")
    p.add_argument(
        "--lock-dir", default=None, help="the machine's per-GPU lock files (docs/devices.md)"
    )
    p.set_defaults(handler=cmd_proposals)

    p = sub.add_parser("phrases", help="object phrases of every narration -> phrases.parquet")
    p.add_argument("clips", help="clips.parquet (from nvos dataset)")
    p.add_argument("--out", required=True, help="phrases.parquet")
    p.set_defaults(handler=cmd_phrases)

    p = sub.add_parser("features", help="CLIP embeddings of one shard's regions and phrases")
    p.add_argument("run", help="results/<run> (reads frames, proposals, phrases, clips there)")
    p.add_argument("--shard", required=True, help=SHARD_HELP)
    p.set_defaults(handler=cmd_features)

    p = sub.add_parser("sam-clip", help="SAM + CLIP zero-shot baseline for one shard")
    p.add_argument("run", help="results/<run> (reads its features; writes predictions/sam_clip/)")
    p.add_argument("--shard", required=True, help=SHARD_HELP)
    p.set_defaults(handler=cmd_sam_clip)

    p = sub.add_parser("oracle", help="SAM upper bound: best-IoU proposal per object and frame")
    p.add_argument("clips", help="clips.parquet (from nvos dataset)")
    p.add_argument("annotations", help="annotations.parquet (from nvos dataset)")
    p.add_argument("proposals", help="proposals/<shard>.parquet (from nvos proposals)")
    p.add_argument("--shard", required=True, help=SHARD_HELP)
    p.add_argument("--out", required=True, help="predictions/oracle/<shard>.parquet")
    p.set_defaults(handler=cmd_oracle)

    p = sub.add_parser("evaluate", help="score one method on one split")
    p.add_argument("predictions", nargs="+", help="predictions/<method>/<shard>.parquet files")
    p.add_argument("--method", required=True, help="the method's name, as in the results table")
    p.add_argument("--split", required=True, help="the split to score (e.g. val, test)")
    p.add_argument("--clips", required=True, help="clips.parquet (from nvos dataset)")
    p.add_argument("--annotations", required=True, help="annotations.parquet (from nvos dataset)")
    p.add_argument("--out", required=True, help="folder for per_object.csv and summary.json")
    p.add_argument(
        "--workers", type=int, default=None, help="processes (default: evaluate.workers)"
    )
    p.set_defaults(handler=cmd_evaluate)

    p = sub.add_parser("report", help="results table, HTML page and overlays of a run folder")
    p.add_argument("run", help="the run folder, results/<run>")
    p.add_argument("--out", default=None, help="output folder (default: <run>/report)")
    p.set_defaults(handler=cmd_report)

    p = sub.add_parser("export-davis", help="predictions as indexed PNGs (DAVIS/VOST layout)")
    p.add_argument("run", help="the run folder, results/<run>")
    p.add_argument(
        "--method", required=True, help="the method to export (a folder under predictions/)"
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument(
        "--layout",
        choices=["davis", "vost"],
        default="davis",
        help="folder layout of the PNGs (default %(default)s)",
    )
    p.add_argument("--with-gt", action="store_true", help="also write GT, JPEGs and ImageSets")
    p.add_argument("--split", action="append", help="only these splits (repeatable)")
    p.set_defaults(handler=cmd_export_davis)
    add_import_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``nvos`` console command.

    An expected error (:class:`~nvos.errors.NvosError`, or a path that does not exist) prints
    its one message and returns 1; any other exception is a bug and keeps its traceback.
    """
    from nvos.errors import NvosError
    from nvos.logs import setup_logging

    args = build_parser().parse_args(argv)
    setup_logging()
    handler: Handler = args.handler
    try:
        return handler(args, _config(args))
    except (NvosError, FileNotFoundError) as error:  # expected: bad input, config or path
        print(f"nvos {args.command}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
