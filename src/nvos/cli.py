"""The ``nvos`` command: the pipeline's stages outside Snakemake, and dataset tools.

Stage commands read the same configuration as the workflow (``config/config.yaml`` layered with
``--config FILE ...``), take the run folder (``results/<run>``, its paths from
:class:`nvos.layout.RunLayout`) and call the same entry functions as the workflow's scripts.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from nvos import __version__
from nvos.config import ConfigError
from nvos.importers.cli import add_import_parser, plain_text
from nvos.layout import RunLayout

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

    options = {"clips": args.clips, "seed": args.seed, "style": args.style}
    given = {k: v for k, v in options.items() if v is not None}
    config = merge(config, {"dataset": {"demo": given}})
    validate_config(config)  # the schema's limits
    print(run_demo_data(args.out, config["dataset"]["demo"]))
    return 0


def _layout(args: argparse.Namespace) -> RunLayout:
    return RunLayout.at(args.run)


def cmd_dataset(args: argparse.Namespace, config: dict[str, Any]) -> int:
    from nvos.pipeline import run_dataset

    layout = _layout(args)
    manifest = args.manifest or config["dataset"]["manifest"] or layout.demo_data
    print(run_dataset(manifest, layout.clips, layout.annotations, config["dataset"],
                      config["shards"]))  # fmt: skip
    return 0


def cmd_frames(args: argparse.Namespace, config: dict[str, Any]) -> int:
    from nvos.pipeline import run_frames

    layout, shard = _layout(args), args.shard
    summary = run_frames(
        layout.clips,
        layout.annotations,
        shard,
        layout.frames(shard),
        config["frames"],
        config["dataset"]["folder_fps"],
        skipped_out=layout.skipped("frames", shard),
    )
    print(summary)
    return 0


def cmd_proposals(args: argparse.Namespace, config: dict[str, Any]) -> int:
    from nvos.pipeline import run_proposals

    layout, shard = _layout(args), args.shard
    summary = run_proposals(
        layout.frames(shard),
        layout.proposals(shard),
        config["proposals"],
        config["gpu_lock_dir"],
        shard,
        skipped_out=layout.skipped("proposals", shard),
    )
    print(summary)
    return 0


def cmd_phrases(args: argparse.Namespace, config: dict[str, Any]) -> int:
    from nvos.pipeline import run_phrases

    layout = _layout(args)
    summary = run_phrases(
        layout.clips, layout.phrases, config["phrases"], skipped_out=layout.skipped("phrases")
    )
    print(summary)
    return 0


def cmd_features(args: argparse.Namespace, config: dict[str, Any]) -> int:
    from nvos.features.clip_names import features_params
    from nvos.pipeline import run_features

    features = features_params(config)
    print(run_features(_layout(args), args.shard, features, config["gpu_lock_dir"]))
    return 0


def cmd_train(args: argparse.Namespace, config: dict[str, Any]) -> int:
    from nvos.pipeline import run_shards
    from nvos.rosa.config import resolve_variant
    from nvos.rosa.stage import train_variant

    layout = _layout(args)
    variant = resolve_variant(config["rosa"], args.variant)  # a ConfigError names the variant
    shards = run_shards(layout)
    print(train_variant(layout, shards, args.variant, variant, config["gpu_lock_dir"]))
    return 0


def cmd_predict(args: argparse.Namespace, config: dict[str, Any]) -> int:
    from nvos.methods import member, predict_method_shard

    try:
        member(config, args.method)
    except KeyError as error:
        raise ConfigError(f"--method: {error.args[0]}") from None
    layout = _layout(args)
    print(predict_method_shard(config, layout, args.method, args.shard,
                               lock_dir=config["gpu_lock_dir"]))  # fmt: skip
    return 0


def cmd_evaluate(args: argparse.Namespace, config: dict[str, Any]) -> int:
    from nvos.pipeline import run_evaluate, run_shards

    layout, method, split = _layout(args), args.method, args.split
    evaluate = dict(config["evaluate"])
    summary = run_evaluate(
        method,
        layout.method_predictions(method, run_shards(layout)),
        layout.clips,
        layout.annotations,
        split,
        layout.metrics_dir(method, split),
        evaluate,
        workers=args.workers or int(evaluate["workers"]),
    )
    print(json.dumps({k: summary[k] for k in ("J", "F", "J&F", "J_union", "J_ins", "objects")}))
    return 0


def cmd_skips(args: argparse.Namespace, config: dict[str, Any]) -> int:
    from nvos.methods import evaluated_methods
    from nvos.pipeline import run_shards, run_skips

    layout = _layout(args)
    ledgers = layout.skip_ledgers(run_shards(layout), evaluated_methods(config))
    rows = run_skips(ledgers, layout.skipped_csv, layout.reconciliation)
    print(f"{len(rows)} stages reconciled -> {layout.reconciliation}")
    return 0


def cmd_report(args: argparse.Namespace, config: dict[str, Any]) -> int:
    from nvos.pipeline import run_report, run_shards

    layout = _layout(args)
    evaluate = config["evaluate"]
    print(run_report(layout, evaluate["methods"], evaluate["splits"], run_shards(layout), config))
    return 0


def cmd_export_davis(args: argparse.Namespace, config: dict[str, Any]) -> int:
    from nvos.pipeline import run_export_davis

    summary = run_export_davis(
        _layout(args), args.method, args.out, args.layout, args.with_gt, args.split
    )
    print(summary)
    return 0


def cmd_export(args: argparse.Namespace, config: dict[str, Any]) -> int:
    from pathlib import Path

    from nvos import storage
    from nvos.exports.formats import export_masks
    from nvos.exports.source import HeadNouns
    from nvos.phrases import load_spacy

    layout = _layout(args)
    paths: list[str] = []
    for given in args.masks:
        folder = Path(given)  # a folder: its shard files (RUN/segment also holds phrases.parquet)
        found = [given]
        if folder.is_dir():
            found = [str(p) for p in sorted(folder.glob("s[0-9][0-9][0-9][0-9][0-9].parquet"))]
        if not found:
            raise FileNotFoundError(f"--masks {given}: a folder without shard files (s00000...)")
        paths += found
    nlp = None if args.no_spacy else load_spacy(str(config["phrases"]["spacy_model"]))
    meta = storage.provenance("export", {"format": args.format, "masks": paths,
                                         "splits": args.split, "run": layout.root})  # fmt: skip
    phrases = args.phrases or layout.phrases
    counts = export_masks(args.format, paths, phrases, args.out, layout.clips, args.split,
                          HeadNouns(nlp), meta)  # fmt: skip
    print(json.dumps(dataclasses.asdict(counts)))
    return 0


def cmd_segment(args: argparse.Namespace, config: dict[str, Any]) -> int:
    from nvos.segment.video import segment_video

    done = segment_video(
        args.video, args.narration, args.out, args.start, args.end, args.model,
        args.config or [], args.cores,
    )  # fmt: skip
    print(f"segmented {done.phrases} phrases on {done.frames} frames with {done.method}")
    print(f"masks (segment_masks table): {done.masks}")
    print(f"overlay video:               {done.video}")
    print(f"YouTube-VIS JSON:            {done.json}")
    print(f"run folder (logs, provenance): {done.run}")
    return 0


def cmd_import_predictions(args: argparse.Namespace, config: dict[str, Any]) -> int:
    from nvos.pipeline import run_import_predictions

    summary = run_import_predictions(
        _layout(args), config, args.method, args.format, args.source, args.ids
    )
    print(summary)
    return 0


RUN_HELP = "the run folder, results/<run> (every path in it: docs/design.md, section 3)"


def _stage(
    sub: Any, name: str, handler: Handler, help: str, shard: bool = False
) -> argparse.ArgumentParser:
    """A stage command: the run folder, and the shard for a per-shard stage."""
    p = sub.add_parser(name, help=help)
    p.add_argument("run", help=RUN_HELP)
    if shard:
        p.add_argument("--shard", required=True, help=SHARD_HELP)
    p.set_defaults(handler=handler)
    return p


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
    p.add_argument("--clips", type=int, default=None, help="clips (default: dataset.demo.clips)")
    p.add_argument("--seed", type=int, default=None, help="seed (default: dataset.demo.seed)")
    p.add_argument(
        "--style",
        default=None,
        help="look and language of the clips: kitchen or workshop (docs/demo.md; default: "
        "dataset.demo.style)",
    )
    p.set_defaults(handler=cmd_demo_data)

    p = _stage(sub, "dataset", cmd_dataset, "manifest -> clips.parquet + annotations.parquet")
    p.add_argument(
        "--manifest", default=None,
        help="the manifest (default: dataset.manifest, else the run's demo_data/ folder)",
    )  # fmt: skip
    _stage(sub, "frames", cmd_frames, "decode and sample the frames of one shard", shard=True)
    _stage(sub, "proposals", cmd_proposals, "mask proposals for one shard's frames", shard=True)
    _stage(sub, "phrases", cmd_phrases, "object phrases of every narration -> phrases.parquet")
    _stage(sub, "features", cmd_features, "CLIP embeddings of one shard's regions and phrases "
           "(and ROSA's feature cache)", shard=True)  # fmt: skip
    p = _stage(sub, "train", cmd_train, "train one ROSA variant on every shard of the run")
    p.add_argument("--variant", required=True, help="the variant (a key of rosa.variants)")
    p = _stage(sub, "predict", cmd_predict, "one method's predictions for one shard", shard=True)
    p.add_argument(
        "--method",
        required=True,
        help="sam_clip, oracle, grounded_sam, sam3 or a ROSA variant (trained first)",
    )
    p = _stage(sub, "evaluate", cmd_evaluate, "score one method on one split")
    p.add_argument("--method", required=True, help="the method's name, as in the results table")
    p.add_argument("--split", required=True, help="the split to score (e.g. val, test)")
    p.add_argument(
        "--workers", type=int, default=None, help="processes (default: evaluate.workers)"
    )
    _stage(sub, "skips", cmd_skips, "every stage's skips -> skipped.csv + reconciliation.csv")
    _stage(sub, "report", cmd_report, "results table, HTML page and overlays of a run folder")

    p = _stage(sub, "export-davis", cmd_export_davis, "predictions as indexed PNGs (DAVIS/VOST)")
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
    p = _stage(sub, "export", cmd_export, "masks as YouTube-VIS or COCO JSON, or DAVIS PNGs")
    p.add_argument(
        "--masks", nargs="+", required=True, metavar="PATH",
        help="dense_masks or predictions tables: files, or folders of them (e.g. "
        "RUN/predictions/sam_clip)",
    )  # fmt: skip
    p.add_argument(
        "--format", required=True, choices=["ytvis", "coco", "davis"],
        help="ytvis or coco: one JSON file; davis: a folder of palette PNGs (docs/segment.md)",
    )  # fmt: skip
    p.add_argument("--out", required=True, help="the JSON file (ytvis, coco) or folder (davis)")
    p.add_argument("--split", action="append", help="only clips of these splits (repeatable)")
    p.add_argument(
        "--phrases", default=None,
        help="the phrases table the masks' phrase ids refer to (default: RUN/phrases.parquet; "
        "the segment stage's free text: RUN/segment/phrases.parquet)",
    )  # fmt: skip
    p.add_argument(
        "--no-spacy", action="store_true",
        help="categories from the last word before a preposition, not from the spaCy parse",
    )  # fmt: skip
    p = _stage(
        sub, "import-predictions", cmd_import_predictions,
        "another method's masks -> predictions/<method>/ of the run (docs/evaluation.md)",
    )  # fmt: skip
    p.add_argument("source", help="the masks: a folder (davis), a JSON file (coco-rle), a "
                   "predictions file or folder (parquet)")  # fmt: skip
    p.add_argument(
        "--method", required=True, help="its name, a key of evaluate.imported (its report row)"
    )
    p.add_argument(
        "--format", required=True, choices=["davis", "coco-rle", "parquet"],
        help="davis: indexed PNG folders; coco-rle: a JSON list or JSON Lines of RLE masks; "
        "parquet: files of the predictions schema (docs/evaluation.md)",
    )  # fmt: skip
    p.add_argument(
        "--ids", default=None, help="davis: the label/frame mapping (default: "
        "<source>/object_ids.json if present, else the labels export-davis writes)",
    )  # fmt: skip
    p = sub.add_parser(
        "segment",
        help="every phrase of a narration on every frame of one video (docs/segment.md)",
    )
    p.add_argument("video", help="the video file (or a folder of frames)")
    p.add_argument("--narration", required=True, help='the narration, e.g. "I cut the onion"')
    p.add_argument("--start", type=float, default=None, help="start of the clip (s; default 0)")
    p.add_argument("--end", type=float, default=None, help="end of the clip (s; default: the end)")
    p.add_argument(
        "--model", default=None,
        help="a trained ROSA checkpoint, RUN/models/<variant>/checkpoint.pt (default: zero-shot "
        "SAM + CLIP)",
    )  # fmt: skip
    p.add_argument("--out", required=True, help="folder for the run, the masks, MP4 and JSON")
    p.add_argument("--cores", type=int, default=2, help="Snakemake's --cores (default 2)")
    p.set_defaults(handler=cmd_segment)
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
