"""The report: the paper's table from summaries, the HTML page, the charts and the overlays."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from html.parser import HTMLParser
from pathlib import Path

import cv2
import numpy as np
import pytest
import tables
from test_export import PR_H, PR_W, PREDICTIONS, world  # noqa: F401  (fixture)

from nvos.methods import FAMILY
from nvos.report import ReportSummary, build_report, format_score, order_methods
from nvos.report.build import ReportInputs
from nvos.report.chart import bar_chart_svg
from nvos.report.overlays import (
    LEGEND_ROW,
    LegendEntry,
    render_overlay,
    select_clips,
    select_frames,
)
from nvos.report.rows import RowInfo, row_infos
from nvos.report.table import (
    COLUMNS,
    MetricsError,
    load_summaries,
    markdown_report,
    split_tables,
)

NOW = datetime(2024, 6, 17, 9, 30, tzinfo=timezone.utc)
DEMO_ENCODERS = {
    "proposals": {"backend": "classical"},
    "features": {"clip": {"model": "nvos-tiny-vit", "pretrained": None}},
    "rosa": {"variants": {"rosa": {}, "rosa_noctx": {"use_context": False}}},
}
FAMILY_CONFIG = {  # what the family members read: the ROSA variants and the imported methods
    "rosa": {"variants": {"rosa": {}, "rosa_noctx": {}, "rosa_vna_only": {}}},
    "evaluate": {
        "imported": {
            "ext_masks": {"supervision": "mask", "display": "External (masks)"},
            "ext_weak": {"supervision": "narration"},
        }
    },
}
SCORES = {  # method -> split -> J (the other columns derive from it)
    "oracle": {"val": 0.81234, "test": 0.7},
    "rosa": {"val": 0.41255, "test": 0.3},
    "rosa_noctx": {"val": 0.38},
    "sam_clip": {"val": 0.2, "test": 0.19995},
}


def leaf(j: float | None, objects: int) -> dict:
    return {"J": j, "F": j, "J&F": j, "J_union": j, "J_ins": j, "objects": objects}


def summary_for(j: float, objects: int = 2, missing: int = 0) -> dict:
    return {
        "J": j,
        "F": j + 0.01,
        "J&F": j + 0.005,
        "J_union": j,
        "J_ins": j - 0.1,
        "objects": objects,
        "frames": 3,
        "missing_frames": missing,
        "breakdowns": {  # the shape nvos.evaluation writes: kind -> group -> aggregate
            "seen": {"seen": leaf(j, 1), "unseen": leaf(j / 2, 1), "unknown": leaf(None, 0)},
            "exhaustive": {"exhaustive": leaf(j, 2), "unknown": leaf(j, 1)},
        },
    }


def write_metrics(root: Path, scores: dict[str, dict[str, float]]) -> None:
    for method, per_split in scores.items():
        for split, j in per_split.items():
            path = root / method / split / "summary.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(summary_for(j, missing=1 if method == "rosa" else 0)))


def write_frames(path: Path) -> None:
    rows = [("clip_a", 3, "sampled"), ("clip_a", 10, "annotated"), ("clip_a", 20, "annotated")]
    rows += [("clip_b", 5, "annotated")]
    tables.write_frames(path, [(c, f, r, 40 + f) for c, f, r in rows], PR_H, PR_W)


@pytest.fixture
def run(world: dict[str, Path], tmp_path: Path) -> dict[str, Path]:  # noqa: F811
    paths = dict(world)
    paths["metrics"] = tmp_path / "metrics"
    paths["frames"] = tmp_path / "frames"
    paths["predictions_dir"] = world["predictions"].parent.parent
    paths["report"] = tmp_path / "report"
    write_metrics(paths["metrics"], SCORES)
    write_frames(paths["frames"] / "s00000.parquet")
    return paths


def build(run: dict[str, Path], run_config: dict | None = None, **report) -> ReportSummary:
    """Build the report of ``run`` with ``run_config`` (default: the demo's encoders) and the
    ``report`` group ``report``."""
    config = dict(run_config or {"run": "tiny", **DEMO_ENCODERS})
    config["report"] = report
    predictions_dir = run["predictions_dir"]
    inputs = ReportInputs(
        summaries=tables.summaries_in(run["metrics"]),
        predictions={p.name: sorted(p.glob("*.parquet")) for p in predictions_dir.iterdir()},
        frames=sorted(run["frames"].glob("*.parquet")),
        clips=run["clips"],
        annotations=run["annotations"],
    )
    return build_report(inputs, run["report"], config, now=NOW)


class RefCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.refs += [value for name, value in attrs if name in ("src", "href") and value]


def test_format_score_rounds_half_up() -> None:
    assert format_score(0.12345) == "12.3"
    assert format_score(0.12355) == "12.4"
    assert format_score(0.0665) == "6.7"
    assert format_score(1.0) == "100.0"
    assert format_score(0.0) == "0.0"
    assert format_score(None) == "–"
    assert format_score(math.nan) == "–"


def test_method_order_groups_rows_by_supervision() -> None:
    methods = ["oracle", "rosa_vna_only", "zeta", "rosa", "sam_clip", "ext_weak", "rosa_noctx",
               "ext_masks", "rosa"]  # fmt: skip
    infos = row_infos(FAMILY_CONFIG, methods)
    assert order_methods(methods, infos) == [
        "ext_masks",  # trained with labelled regions
        "sam_clip",  # without: the family's order, a member's names in its order
        "rosa",
        "rosa_noctx",
        "rosa_vna_only",
        "ext_weak",
        "zeta",  # no member describes it
        "oracle",  # the upper bound, last
    ]
    imported = next(i for i, m in enumerate(FAMILY) if m.name == "imported")
    assert infos["ext_masks"] == RowInfo("External (masks)", "mask", (imported, 0, 0))
    assert infos["ext_weak"].label == "ext_weak" and infos["zeta"].supervision is None
    assert infos["sam_clip"].supervision_text == "none (zero-shot)"
    assert row_infos(FAMILY_CONFIG, ["rosa"], {"rosa": "Ours"})["rosa"].label == "Ours"


def table_rows(markdown: str, split: str) -> list[list[str]]:
    """The method rows of the split's main table in table.md (cells after the supervision
    column), without the group title rows."""
    lines = markdown.splitlines()
    start = lines.index(f"## {split}")
    start = next(i for i in range(start, len(lines)) if lines[i].startswith("| Method |"))
    assert lines[start].endswith(" | ".join(COLUMNS) + " |")
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if not cells[0].startswith("**"):
            rows.append([cells[0], *cells[2:]])
    return rows


def test_markdown_table_layout(tmp_path: Path) -> None:
    write_metrics(tmp_path, SCORES)
    summaries = load_summaries(tables.summaries_in(tmp_path))
    infos = row_infos(FAMILY_CONFIG, list(SCORES), {"rosa_noctx": "ROSA, no context"})
    split_rows = split_tables(summaries, infos)
    assert [t.split for t in split_rows] == ["val", "test"]
    markdown = markdown_report(split_rows)
    val = table_rows(markdown, "val")
    assert [row[0] for row in val] == [
        "SAM + CLIP (zero-shot)",
        "ROSA",
        "ROSA, no context",
        "SAM upper bound (oracle)",
    ]
    for row, method in zip(val, ["sam_clip", "rosa", "rosa_noctx", "oracle"], strict=True):
        expected = summary_for(SCORES[method]["val"])
        assert row[1:] == [format_score(expected[c]) for c in COLUMNS]
    assert val[1][1:3] == ["41.3", "42.3"]  # 0.41255 -> 41.3 (half up), F = J + 0.01
    test = table_rows(markdown, "test")
    assert test[2] == ["ROSA, no context"] + ["–"] * len(COLUMNS)  # no metrics on test
    assert test[0][1] == "20.0"  # 0.19995 -> 20.0
    assert "2 objects, 3 scored object-frames." in markdown
    assert "rosa 1" in markdown  # missing predictions are reported per method
    assert "### val: seen" in markdown and "### val: unseen" in markdown
    assert "### val: exhaustive / unknown" in markdown  # 'unknown' in two kinds: full names
    assert "seen / unknown" not in markdown  # no object of any method in it: no empty section
    unseen = markdown.split("### val: unseen")[1].splitlines()[4]
    assert unseen.split("|")[2].strip() == format_score(SCORES["sam_clip"]["val"] / 2)


def test_malformed_summary_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "rosa" / "val" / "summary.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"J": 0.5, "F": "high"}))
    with pytest.raises(MetricsError, match=r"rosa/val/summary.json.*missing keys"):
        load_summaries(tables.summaries_in(tmp_path))
    path.write_text(json.dumps({**summary_for(0.5), "F": "high"}))
    with pytest.raises(MetricsError, match="'F' must be a number"):
        load_summaries(tables.summaries_in(tmp_path))


def test_bar_chart_is_valid_svg() -> None:
    svg = bar_chart_svg("val", [("A", {"J": 0.5, "F": None}), ("B", {"J": 1.0, "F": 0.25})])
    root = ET.fromstring(svg)
    bars = [r for r in root.iter("{http://www.w3.org/2000/svg}rect") if r.find("*") is not None]
    assert len(bars) == 3  # the missing F of A draws no bar
    heights = sorted(float(r.get("height")) for r in bars)
    assert heights[2] == pytest.approx(4 * heights[0])


def test_render_overlay_blends_and_outlines() -> None:
    image = np.full((20, 30, 3), 100, np.uint8)
    mask = np.zeros((20, 30), bool)
    mask[5:10, 5:10] = True
    gt = np.zeros((20, 30), bool)
    gt[4:16, 12:26] = True
    legend = [LegendEntry("red cup", (255, 0, 0)), LegendEntry("pan", (0, 255, 0))]
    out = render_overlay(image, [mask, None], gt, legend, alpha=0.5)
    assert out.shape == (20 + LEGEND_ROW * 3 + 4, 30, 3)
    np.testing.assert_array_equal(out[7, 7], [178, 50, 50])  # (100 + 255) / 2, 100 / 2
    np.testing.assert_array_equal(out[0, 0], [100, 100, 100])
    assert (out[4, 12:26] == 255).all()  # the GT outline is white
    assert (out[10, 18] == 100).all()  # the GT interior is untouched


def test_select_clips_and_frames_are_deterministic() -> None:
    clips = [f"c{i}" for i in range(20)]
    chosen = select_clips(clips, 5)
    assert len(chosen) == 5 and chosen == select_clips(list(reversed(clips)), 5)
    assert select_clips(clips, 50) == select_clips(clips, 20)
    assert select_frames([5, 1, 9, 3, 7], 3) == [1, 5, 9]
    assert select_frames([4, 2], 3) == [2, 4]


def test_build_report(run: dict[str, Path]) -> None:
    summary = build(run, overlay_clips=4, overlay_frames=3)
    out = run["report"]
    # oracle excluded, rosa has the best J&F on val but sam_clip/rosa_noctx lack predictions
    assert summary.overlay_method == "rosa"
    assert summary.splits == ["val", "test"]
    assert summary.methods == ["sam_clip", "rosa", "rosa_noctx", "oracle"]
    table = (out / "table.md").read_text()
    assert [r[0] for r in table_rows(table, "val")][-1] == "SAM upper bound (oracle)"

    # overlays: clip_a (2 annotated frames); clip_b has no prediction of rosa, clip_train no GT
    overlays = sorted(p.name for p in (out / "overlays").glob("*.jpg"))
    assert overlays == ["clip_a_10.jpg", "clip_a_20.jpg"]
    assert sorted(Path(p).name for p in summary.overlays) == overlays
    image = cv2.imread(str(out / "overlays" / "clip_a_10.jpg"))
    assert image.shape == (PR_H + LEGEND_ROW * 3 + 4, PR_W, 3)  # 2 phrases + GT line
    assert summary.frames_without_prediction == 1  # clip_a frame 20 has no pan

    page = (out / "index.html").read_text()
    parser = RefCollector()
    parser.feed(page)
    assert sorted(parser.refs) == sorted(
        ["table.md", "config.yaml", *(f"overlays/{n}" for n in overlays)]
    )
    for ref in parser.refs:
        assert (out / ref).is_file(), ref
    assert page.count("<svg") == 2  # one chart per split
    assert "clip_a (val)" in page and "clip_b" not in page
    assert "red cup" in page and "SAM upper bound (oracle)" in page

    # a rerun with fewer clips removes the overlays it no longer shows
    again = build(run, overlay_clips=1, overlay_frames=1, overlay_method="rosa")
    remaining = sorted(p.name for p in (out / "overlays").glob("*.jpg"))
    assert len(remaining) == 1 and again.stale_overlays_removed == 1
    parser = RefCollector()
    parser.feed((out / "index.html").read_text())
    assert all((out / ref).is_file() for ref in parser.refs)


def test_build_report_errors(run: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(MetricsError, match="overlay_method 'sam_clip'"):
        build(run, overlay_method="sam_clip")
    empty = tmp_path / "empty_metrics"
    empty.mkdir()
    run["metrics"] = empty
    with pytest.raises(MetricsError, match="no <method>/<split>/summary.json"):
        build(run)
