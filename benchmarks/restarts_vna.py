"""Analysis: does the validation VNA that picks a ROSA restart predict its val J? (docs/demo.md)

A variant trained with ``rosa.train.restarts`` > 1 keeps the restart with the lowest validation
VNA (no labels). This predicts every restart's checkpoint (``models/<variant>/restart_<r>/``) on
the val split with the pipeline's own code, in a temporary folder that links the run's inputs,
scores it, and prints per restart its best validation VNA and val J, the kept one marked.

    python benchmarks/restarts_vna.py results/demo --variants rosa rosa_noctx

Reads the run (its ``report/config.yaml`` for the settings); writes nothing in it.
"""

from __future__ import annotations

import argparse
import csv
import os
import tempfile
from pathlib import Path

import yaml

from nvos.layout import RunLayout
from nvos.pipeline import run_evaluate, run_shards
from nvos.rosa.config import resolve_variant
from nvos.rosa.predict import predict_shard

LINKED = ("clips.parquet", "annotations.parquet", "phrases.parquet", "features", "proposals",
          "frames")  # fmt: skip


def restart_val_j(run: RunLayout, variant: str, split: str, tmp: Path) -> list[dict]:
    """One row per restart of ``variant``: restart, seed, best_val_vna, chosen, J (on ``split``)."""
    config = yaml.safe_load(Path(run.report_file("config.yaml")).read_text())
    rosa = resolve_variant(config["rosa"], variant)
    shards = run_shards(run)
    with open(Path(run.model_dir(variant)) / "restarts.csv", newline="") as handle:
        restarts = list(csv.DictReader(handle))
    root = tmp / variant
    for name in LINKED:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(Path(run.root, name).resolve(), root / name)
    layout = RunLayout(str(root))
    for row in restarts:
        name = f"r{row['restart']}"
        Path(layout.model_dir(name)).mkdir(parents=True)
        source = Path(run.model_dir(variant), f"restart_{row['restart']}", "checkpoint.pt")
        os.symlink(source.resolve(), layout.checkpoint(name))
        for shard in shards:
            predict_shard(layout, shard, name, rosa, splits=[split])
        summary = run_evaluate(
            name, layout.method_predictions(name, shards), layout.clips, layout.annotations,
            split, layout.metrics_dir(name, split), dict(config["evaluate"], seen_unseen=False),
        )  # fmt: skip
        row["J"] = summary["J"]
    return restarts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="a finished run folder, e.g. results/demo")
    parser.add_argument("--variants", nargs="+", default=["rosa"])
    parser.add_argument("--split", default="val")
    args = parser.parse_args()
    run = RunLayout.at(args.run)
    with tempfile.TemporaryDirectory() as tmp:
        for variant in args.variants:
            for row in restart_val_j(run, variant, args.split, Path(tmp)):
                mark = " (kept)" if row["chosen"] == "True" else ""
                print(
                    f"{variant} restart {row['restart']} (seed {row['seed']}): best validation "
                    f"VNA {float(row['best_val_vna']):.4f}, {args.split} J "
                    f"{100 * row['J']:.1f}{mark}"
                )


if __name__ == "__main__":
    main()
