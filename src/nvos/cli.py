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

Handler = Callable[[argparse.Namespace, dict[str, Any]], int]


def _config(args: argparse.Namespace) -> dict[str, Any]:
    from nvos.config import load_config

    return load_config(args.config or [])


def cmd_validate(args: argparse.Namespace, config: dict[str, Any]) -> int:
    from nvos.manifest import ManifestError, summary, validate_manifest

    dataset = config["dataset"]
    try:
        records = validate_manifest(args.manifest, dataset["splits"], dataset["folder_fps"])
    except ManifestError as error:
        print(error, file=sys.stderr)
        return 1
    print(json.dumps(summary(records), indent=2, default=str))
    return 0


def cmd_demo_data(args: argparse.Namespace, config: dict[str, Any]) -> int:
    from nvos.pipeline import run_demo_data

    print(run_demo_data(args.out, {"clips": args.clips, "seed": args.seed}))
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

    print(run_proposals(args.frames, args.out, config["proposals"], args.lock_dir, args.shard))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="nvos", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"nvos {__version__}")
    parser.add_argument(
        "--config", action="append", metavar="FILE", help="config file layered on the defaults"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("validate", help="check a manifest; report every bad line")
    p.add_argument("manifest")
    p.set_defaults(handler=cmd_validate)

    p = sub.add_parser("demo-data", help="generate the embedded demo dataset")
    p.add_argument("out")
    p.add_argument("--clips", type=int, default=24)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(handler=cmd_demo_data)

    p = sub.add_parser("dataset", help="manifest -> clips.parquet + annotations.parquet")
    p.add_argument("manifest")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(handler=cmd_dataset)

    p = sub.add_parser("frames", help="decode and sample the frames of one shard")
    p.add_argument("clips")
    p.add_argument("annotations")
    p.add_argument("--shard", required=True)
    p.add_argument("--out", required=True, help="frames/<shard>.parquet")
    p.set_defaults(handler=cmd_frames)

    p = sub.add_parser("proposals", help="mask proposals for one shard's frames")
    p.add_argument("frames")
    p.add_argument("--shard", required=True)
    p.add_argument("--out", required=True, help="proposals/<shard>.parquet")
    p.add_argument("--lock-dir", default="results/locks", help="per-device lock files")
    p.set_defaults(handler=cmd_proposals)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``nvos`` console command."""
    from nvos.config import ConfigError
    from nvos.logs import setup_logging

    args = build_parser().parse_args(argv)
    setup_logging()
    try:
        config = _config(args)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 2
    handler: Handler = args.handler
    return handler(args, config)


if __name__ == "__main__":
    raise SystemExit(main())
