"""Report rows of composite methods (<base>+temporal, ...) and the temporal selection section."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nvos.config import load_schema, with_defaults
from nvos.report.rows import method_label, order_methods, row_infos
from nvos.report.selection import read_selections, selection_html, selection_markdown
from nvos.report.table import MetricsError


def test_composite_methods_are_labelled_from_their_base_and_follow_it() -> None:
    config = with_defaults(
        {"rosa": {"variants": {"rosa": {}, "rosa_noctx": {"use_context": False}}},
         "temporal": {"decode": {"methods": ["sam_clip", "rosa", "rosa_noctx"]},
                      "propagate": {"methods": ["rosa+temporal", "oracle"]}}},
        load_schema(),
    )  # fmt: skip
    methods = ["oracle+flow", "rosa_noctx", "rosa+temporal+flow", "oracle", "rosa+temporal",
               "sam_clip+temporal", "rosa", "sam_clip", "rosa_noctx+temporal"]  # fmt: skip
    infos = row_infos(config, methods, {"rosa_noctx+temporal": "mine"})
    labels = {m: method_label(m, infos) for m in methods}
    assert labels["rosa+temporal"] == "ROSA + temporal"
    assert labels["rosa+temporal+flow"] == "ROSA + temporal + flow"
    assert labels["sam_clip+temporal"] == "SAM + CLIP + temporal"
    assert labels["oracle+flow"] == "Oracle keyframes + flow"
    assert labels["rosa_noctx+temporal"] == "mine"
    assert infos["oracle+flow"].supervision == "oracle"
    assert infos["rosa+temporal+flow"].supervision == "narration"
    assert order_methods(methods, infos) == [
        "sam_clip", "sam_clip+temporal", "rosa", "rosa+temporal", "rosa+temporal+flow",
        "rosa_noctx", "rosa_noctx+temporal", "oracle", "oracle+flow",
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
    infos = row_infos(with_defaults({}, load_schema()), ["rosa+temporal"])
    text = selection_markdown(selections, infos)
    assert "### ROSA + temporal" in text
    rows = [line for line in text.splitlines() if line.startswith("| 0")]
    assert rows == [
        "| 0 | – | – | 50.0 | 40.0 | 45.0 | 50.0 |  |",
        "| 0.1 | 0.05 | 0.1235 | 60.0 | 50.0 | 55.0 | 25.0 | ✓ |",
    ]
    page = "".join(selection_html(selections, infos))
    assert page.count("✓") == 1 and "ROSA + temporal" in page
    assert selection_markdown({}) == "" and list(selection_html({})) == []
    path.write_text("{}")
    with pytest.raises(MetricsError, match="no 'grid'"):
        read_selections({"rosa+temporal": path})
