"""Report rows of composite methods (<base>+temporal, ...) and the temporal selection section."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nvos.report.selection import read_selections, selection_html, selection_markdown
from nvos.report.table import MetricsError, method_label, order_methods


def test_composite_methods_are_labelled_from_their_base_and_follow_it() -> None:
    assert method_label("rosa+temporal") == "ROSA + temporal"
    assert method_label("rosa+temporal+flow") == "ROSA + temporal + flow"
    assert method_label("sam_clip+temporal") == "SAM + CLIP + temporal"
    assert method_label("oracle+flow") == "Oracle keyframes + flow"
    assert method_label("rosa_noctx+temporal") == "ROSA w/o phrase context + temporal"
    assert method_label("rosa+temporal", {"rosa+temporal": "mine"}) == "mine"
    methods = ["oracle+flow", "rosa_noctx", "rosa+temporal+flow", "oracle", "rosa+temporal",
               "sam_clip+temporal", "rosa", "sam_clip"]  # fmt: skip
    assert order_methods(methods) == [
        "sam_clip", "sam_clip+temporal", "rosa", "rosa+temporal", "rosa+temporal+flow",
        "rosa_noctx", "oracle", "oracle+flow",
    ]  # fmt: skip


def test_selection_section_marks_the_chosen_point(tmp_path: Path) -> None:
    grid = [
        {"link_weight": 0.0, "absent_quantile": None, "absent_score": None, "J": 0.5, "F": 0.4,
         "J&F": 0.45, "flips": 0.5, "chosen": False},
        {"link_weight": 0.1, "absent_quantile": 0.05, "absent_score": 0.1234567, "J": 0.6,
         "F": 0.5, "J&F": 0.55, "flips": 0.25, "chosen": True},
    ]  # fmt: skip
    path = tmp_path / "selection.json"
    path.write_text(json.dumps({"grid": grid}))
    selections = read_selections({"rosa+temporal": path})
    text = selection_markdown(selections)
    assert "### ROSA + temporal" in text
    rows = [line for line in text.splitlines() if line.startswith("| 0")]
    assert rows == [
        "| 0 | – | – | 50.0 | 40.0 | 45.0 | 50.0 |  |",
        "| 0.1 | 0.05 | 0.1235 | 60.0 | 50.0 | 55.0 | 25.0 | ✓ |",
    ]
    page = "".join(selection_html(selections))
    assert page.count("✓") == 1 and "ROSA + temporal" in page
    assert selection_markdown({}) == "" and list(selection_html({})) == []
    path.write_text("{}")
    with pytest.raises(MetricsError, match="no 'grid'"):
        read_selections({"rosa+temporal": path})
