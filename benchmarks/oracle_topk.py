"""Analysis: what limits ROSA against the oracle in a finished run (docs/demo.md).

For each ``k``, the oracle restricted to the ``k`` best proposals of each frame (ROSA sees
``rosa.max_regions`` of them, best predicted IoU x stability first: ``proposal_id < k``), built and
scored with the pipeline's own code (:func:`nvos.oracle.build_oracle`, the ``evaluate`` stage) in
a temporary folder. Then, per method (e.g. ``rosa``): how often its chosen proposal is the
oracle's (the best-IoU one among all proposals), and how often the oracle's is among the top ``k``.

    python benchmarks/oracle_topk.py results/demo --k 5 10 20 --methods rosa sam_clip

Prints one line per (k, split) and per (method, split). Reads the run; writes nothing in it.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq

from nvos import storage
from nvos.config import load_config
from nvos.layout import RunLayout
from nvos.oracle import build_oracle
from nvos.pipeline import run_evaluate, run_shards


def oracle_at_k(layout: RunLayout, shards: Sequence[str], k: int, split: str, tmp: Path) -> dict:
    """The summary of the oracle over the ``k`` best proposals per frame on ``split``."""
    predictions = []
    for shard in shards:
        table = pq.read_table(layout.proposals(shard))
        kept = tmp / f"k{k}" / f"{shard}.proposals.parquet"
        kept.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table.filter(pc.less(table["proposal_id"], k)), kept)
        out = tmp / f"k{k}" / f"{shard}.parquet"
        if not out.exists():
            build_oracle(layout.clips, layout.annotations, kept, shard, out)
        predictions.append(out)
    evaluate = dict(load_config()["evaluate"], seen_unseen=False)
    return run_evaluate(
        "oracle", predictions, layout.clips, layout.annotations, split, tmp / f"k{k}" / split,
        evaluate,
    )  # fmt: skip


def picks(layout: RunLayout, shards: Sequence[str], method: str, k: int) -> dict[str, float]:
    """Over the (clip, object, frame) rows both have: the share where ``method`` chose the
    oracle's proposal, and the share where the oracle's proposal is among the top ``k``."""
    key = ["clip_id", "object_id", "frame_index"]
    same = in_top = rows = 0
    for shard in shards:
        cols = [*key, "proposal_id"]
        ours = storage.read_table(layout.predictions(method, shard), "predictions", columns=cols)
        best = storage.read_table(layout.predictions("oracle", shard), "predictions", columns=cols)
        joined = ours.join(best.rename_columns([*key, "best_id"]), key, join_type="inner")
        chosen, best_id = joined["proposal_id"].to_numpy(), joined["best_id"].to_numpy()
        same += int((chosen == best_id).sum())
        in_top += int((best_id < k).sum())
        rows += joined.num_rows
    return {"rows": rows, "chose_best": same / max(rows, 1), "best_in_top_k": in_top / max(rows, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="a finished run folder, e.g. results/demo")
    parser.add_argument("--k", type=int, nargs="+", default=[5, 10, 20, 1000])
    parser.add_argument("--splits", nargs="+", default=["val", "test"])
    parser.add_argument("--methods", nargs="*", default=["rosa"])
    parser.add_argument("--max-regions", type=int, default=10, help="k of the pick shares")
    args = parser.parse_args()
    layout = RunLayout.at(args.run)
    shards = run_shards(layout)
    with tempfile.TemporaryDirectory() as tmp:
        for k in args.k:
            for split in args.splits:
                s = oracle_at_k(layout, shards, k, split, Path(tmp))
                print(f"oracle top-{k} {split}: J {100 * s['J']:.1f} J&F {100 * s['J&F']:.1f}")
    for method in args.methods:
        p = picks(layout, shards, method, args.max_regions)
        print(
            f"{method}: chose the oracle's proposal {100 * p['chose_best']:.1f}% of "
            f"{p['rows']} object-frames; the oracle's proposal is in the top "
            f"{args.max_regions} {100 * p['best_in_top_k']:.1f}%"
        )


if __name__ == "__main__":
    main()
