"""The report's tables in the paper's layout: supervision groups and column, the protocol of
each table, the VOST-style table, and the overlapping predictions."""

from __future__ import annotations

import json
from pathlib import Path

import tables
from test_report import FAMILY_CONFIG, summary_for

from nvos.report.rows import row_infos
from nvos.report.table import (
    COLUMNS,
    VOST_COLUMNS,
    load_summaries,
    markdown_table,
    split_tables,
)


def write(root: Path, method: str, summary: dict) -> None:
    path = root / method / "val" / "summary.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary))


def markdown(root: Path) -> str:
    metrics = load_summaries(tables.summaries_in(root))
    methods = sorted({m for per_split in metrics.values() for m in per_split})
    (table,) = split_tables(metrics, row_infos(FAMILY_CONFIG, methods))
    return markdown_table(table)


def body(text: str) -> list[list[str]]:
    """Every row of the main table (group titles included), as cells."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| Method | Supervision"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def test_rows_are_grouped_by_supervision_with_the_oracle_last(tmp_path: Path) -> None:
    for method, j in [("oracle", 0.9), ("rosa", 0.4), ("sam_clip", 0.2), ("ext_masks", 0.5),
                      ("ext_weak", 0.3)]:  # fmt: skip
        write(tmp_path, method, summary_for(j))
    rows = body(markdown(tmp_path))
    assert [row[:2] for row in rows] == [
        ["**Trained with labelled regions**", ""],
        ["External (masks)", "labelled regions"],
        ["**Without labelled regions**", ""],
        ["SAM + CLIP (zero-shot)", "none (zero-shot)"],
        ["ROSA", "narrations only"],
        ["ext_weak", "narrations only"],
        ["**Upper bound**", ""],
        ["SAM upper bound (oracle)", "test ground truth"],
    ]
    assert rows[1][2] == "50.0" and rows[5][2] == "30.0"


def test_each_table_names_its_protocol(tmp_path: Path) -> None:
    davis = summary_for(0.4) | {"protocol": {"protocol": "davis", "frames_dropped": 4}}
    write(tmp_path, "rosa", davis)
    text = markdown(tmp_path)
    assert "Protocol: davis (DAVIS 2017 semi-supervised: the first and last annotated" in text
    assert body(text)[0] == ["**Without labelled regions**", "", *[""] * len(COLUMNS)]
    write(tmp_path, "oracle", summary_for(0.8))  # an old summary: no protocol entry
    assert "Protocols differ between methods (stale metrics?): rosa davis, oracle all_frames" in (
        markdown(tmp_path)
    )


def test_the_vost_protocol_gives_the_vost_table(tmp_path: Path) -> None:
    for method, j, last in [("rosa", 0.4, 0.25), ("oracle", 0.8, 0.7)]:
        vost = summary_for(j) | {"protocol": {"protocol": "vost", "J_last": last}}
        write(tmp_path, method, vost)
    text = markdown(tmp_path)
    assert "| Method | Supervision | " + " | ".join(VOST_COLUMNS) + " |" in text
    assert VOST_COLUMNS == ("J", "J_tr", "J_union", "J_ins")
    rows = [row for row in body(text) if not row[0].startswith("**")]
    assert rows[0] == ["ROSA", "narrations only", "40.0", "25.0", "40.0", "30.0"]
    assert rows[1][3] == "70.0"
    assert "J_tr is J over the last quarter" in text
    assert "### val: seen" in text and "| Method | J | J_union | J_ins | objects |" in text


def test_overlapping_predictions_are_reported_per_method(tmp_path: Path) -> None:
    overlaps = {"pixels": 120, "object_frames": 38, "lost_object_frames": 5, "examples": []}
    write(tmp_path, "rosa", summary_for(0.4) | {"overlaps": overlaps})
    write(tmp_path, "oracle", summary_for(0.8) | {"overlaps": {"object_frames": 0}})
    text = markdown(tmp_path)
    assert "Overlapping predictions (pixels two objects claim" in text
    assert "rosa 38 object-frames (5 losing all)" in text and "oracle 0" not in text
    write(tmp_path, "rosa", summary_for(0.4))
    assert "Overlapping predictions" not in markdown(tmp_path)
