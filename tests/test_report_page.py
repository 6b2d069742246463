"""The report as published: the run's facts, plurals, no empty sections, outlines, Unicode text."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import tables
import yaml
from PIL import ImageFont
from test_export import CLIPS, world  # noqa: F401  (fixture)
from test_report import SCORES, build, run, summary_for, write_metrics  # noqa: F401  (fixture)

from nvos import __version__
from nvos.report.chart import ANGLE, CHAR_WIDTH, bar_chart_svg
from nvos.report.facts import git_commit, random_weights
from nvos.report.fonts import _has_glyph, font_chain, font_files, font_runs
from nvos.report.overlays import LEGEND_ROW, LegendEntry, render_overlay
from nvos.report.table import counts_line, format_score, load_summaries, plural, split_tables

REAL = {
    "proposals": {"backend": "sam", "sam": {"model_type": "vit_h", "checkpoint": "sam_h.pth"}},
    "features": {"clip": {"model": "ViT-B-16", "pretrained": "openai"}},
}


def facts_of(page: str) -> dict[str, str]:
    """The header's (name -> value) rows of index.html."""
    table = re.search(r'<table class="facts"><tbody>(.*?)</tbody></table>', page).group(1)
    return dict(re.findall(r"<tr><th>(.*?)</th><td>(.*?)</td></tr>", table))


def test_header_states_the_run_facts(run: dict[str, Path]) -> None:  # noqa: F811
    build(run)
    out = run["report"]
    page, table = (out / "index.html").read_text(), (out / "table.md").read_text()
    facts = facts_of(page)
    assert list(facts) == ["Run", "Clips", "Methods", "Encoders", "Config", "Code", "Date"]
    assert facts["Run"] == "tiny"
    assert facts["Clips"] == "3 clips: val 1, test 1, train 1"
    assert facts["Methods"] == (  # the config name follows a label that does not contain it
        "SAM + CLIP (zero-shot) (sam_clip), ROSA, ROSA w/o phrase context (rosa_noctx), "
        "SAM upper bound (oracle)"
    )
    assert facts["Encoders"] == (
        "proposals: classical (weight-free superpixels); CLIP: nvos-tiny-vit (random weights)"
    )
    config_bytes = (out / "config.yaml").read_bytes()
    assert yaml.safe_load(config_bytes)["run"] == "tiny"
    digest = hashlib.sha256(config_bytes).hexdigest()
    assert facts["Config"] == f"sha256 {digest[:12]} (config.yaml)"
    assert facts["Code"] == f"nvos {__version__}, commit {git_commit()}"
    assert facts["Date"] == "2024-06-17 09:30 UTC"
    assert '<p class="warning"><strong>Random weights: CLIP nvos-tiny-vit' in page
    assert f"- **Config**: sha256 {digest[:12]} (config.yaml)" in table
    assert "> **Random weights: CLIP nvos-tiny-vit is randomly initialised" in table

    build(run, {"run": "real", **REAL})
    page = (out / "index.html").read_text()
    assert "Random weights" not in page and 'class="warning"' not in page
    assert facts_of(page)["Encoders"] == "proposals: SAM vit_h (sam_h.pth); CLIP: ViT-B-16 (openai)"
    assert hashlib.sha256((out / "config.yaml").read_bytes()).hexdigest() != digest


def test_random_weights_are_named() -> None:
    assert random_weights(REAL) == []
    sam_random = {**REAL, "proposals": {"backend": "sam", "sam": {"checkpoint": None}}}
    assert random_weights(sam_random) == [
        "SAM is randomly initialised (proposals.sam.checkpoint: null)"
    ]
    clip_random = {**REAL, "features": {"clip": {"model": "RN50", "pretrained": None}}}
    assert random_weights(clip_random) == [
        "CLIP RN50 is randomly initialised (features.clip.pretrained: null)"
    ]


@pytest.mark.skipif(shutil.which("git") is None, reason="needs the git command")
def test_git_commit(tmp_path: Path) -> None:
    assert git_commit(tmp_path) == "unknown"  # not a checkout

    def git(*args: str) -> str:
        command = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t", *args]
        return subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip()

    git("init", "-q")
    (tmp_path / "a.txt").write_text("one")
    git("add", "a.txt")
    git("commit", "-qm", "one")
    commit = git("rev-parse", "HEAD")
    assert git_commit(tmp_path) == commit[:12]
    (tmp_path / "a.txt").write_text("two")
    assert git_commit(tmp_path) == f"{commit[:12]} (uncommitted changes)"


def test_overlays_say_which_method_and_why(run: dict[str, Path]) -> None:  # noqa: F811
    summary = build(run, overlay_clips=4, overlay_frames=3)
    page = (run["report"] / "index.html").read_text()
    best = format_score(summary_for(SCORES["rosa"]["val"])["J&F"])
    sentence = (
        f"The overlays show ROSA (rosa): it has the best J&amp;F on val ({best}) of the 1 method "
        "with predictions, the oracle left out (report.overlay_method: null). 1 clip of the "
        "1 annotated clip with tagged objects and predictions, chosen by the smallest SHA-1"
    )
    assert sentence in page
    assert summary.overlay_reason.startswith("it has the best J&F on val")
    build(run, overlay_method="rosa", overlay_frames=1)
    page = (run["report"] / "index.html").read_text()
    assert "The overlays show ROSA (rosa): it is set by report.overlay_method." in page
    assert "up to 1 evenly spaced annotated frame each" in page


def test_no_empty_sections(run: dict[str, Path], tmp_path: Path) -> None:  # noqa: F811
    build(run, overlay_clips=0)
    page = (run["report"] / "index.html").read_text()
    assert "Qualitative results" not in page and "Skipped clips" not in page
    headings = re.findall(r"<h3>(.*?)</h3>", page)
    assert "val: unseen" in headings and "val: exhaustive / unknown" in headings
    assert not any("seen / unknown" in h for h in headings)  # 0 objects for every method
    # a split where no method has a score keeps its table but draws no empty chart
    empty = {**summary_for(0.5), **{c: None for c in ("J", "F", "J&F", "J_union", "J_ins")}}
    empty.update(objects=0, frames=0, breakdowns={})
    path = run["metrics"] / "rosa" / "extra" / "summary.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(empty))
    build(run, overlay_clips=0)
    page = (run["report"] / "index.html").read_text()
    assert "<h2>Split extra</h2>" in page and page.count("<svg") == 2  # val and test only
    assert "0 objects, 0 scored object-frames." in page


def test_counts_use_plurals(tmp_path: Path) -> None:
    assert [plural(n, "clip") for n in (0, 1, 2)] == ["0 clips", "1 clip", "2 clips"]
    assert plural(1, "chosen clip has", "chosen clips have") == "1 chosen clip has"
    path = tmp_path / "rosa" / "val" / "summary.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({**summary_for(0.5), "objects": 1, "frames": 1}))
    (table,) = split_tables(load_summaries(tables.summaries_in(tmp_path)))
    assert counts_line(table) == "1 object, 1 scored object-frame."


def test_predicted_masks_are_outlined() -> None:
    image = np.full((20, 30, 3), 100, np.uint8)
    mask = np.zeros((20, 30), bool)
    mask[5:10, 5:10] = True
    out = render_overlay(image, [mask], np.zeros((20, 30), bool), [LegendEntry("cup", (255, 0, 0))])
    for y, x in [(5, 5), (5, 7), (9, 9), (7, 5)]:  # the mask's border: the solid colour
        np.testing.assert_array_equal(out[y, x], [255, 0, 0])
    np.testing.assert_array_equal(out[7, 7], [178, 50, 50])  # the interior: the blend
    np.testing.assert_array_equal(out[4, 4], [100, 100, 100])  # outside: untouched


def legend_band(text: str) -> np.ndarray:
    image = np.zeros((10, 200, 3), np.uint8)
    out = render_overlay(image, [None], np.zeros((10, 200), bool), [LegendEntry(text, (0, 0, 255))])
    return out[10 : 10 + LEGEND_ROW]


def test_legend_draws_unicode_not_question_marks() -> None:
    for text, ascii_text in [("crème brûlée", "cr?me br?l?e"), ("切る玉ねぎ", "?????")]:
        band = legend_band(text)
        assert (band[:, 22:] > 128).any()  # some text was drawn
        assert not np.array_equal(band, legend_band(ascii_text)), text
    cut = legend_band("a very long phrase " * 10)  # cut with '…' instead of leaving the image
    assert (cut[:, 22:] > 128).any()


def test_font_fallback_picks_a_font_with_the_glyph() -> None:
    fallback = ImageFont.load_default(12)
    assert font_runs("ab", 12, (fallback,)) == [("ab", fallback)]
    if not font_files():
        pytest.skip("no system TrueType font found (e.g. install fonts-dejavu-core)")
    system = ImageFont.truetype(str(font_files()[0]), 12)
    letters = [c for c in "éΩжñ" if _has_glyph(system, c) and not _has_glyph(fallback, c)]
    if not letters:
        pytest.skip(f"{font_files()[0]} has no letter Pillow's own font lacks")
    runs = font_runs(f"ab{letters[0]}c", 12, (fallback, system))
    assert runs == [("ab", fallback), (letters[0], system), ("c", fallback)]
    assert font_chain(12)[-1].getname() == fallback.getname()  # Pillow's font always ends it


def test_chart_leaves_room_for_long_labels() -> None:
    labels = ["SAM upper bound (oracle)", "x", "ROSA w/o phrase context and more words"]
    svg = bar_chart_svg("val", [(label, {"J": 0.5}) for label in labels])
    root = ET.fromstring(svg)
    width, height = float(root.get("width")), float(root.get("height"))
    cos, sin = np.cos(np.radians(ANGLE)), np.sin(np.radians(ANGLE))
    texts = {t.text: t for t in root.iter("{http://www.w3.org/2000/svg}text")}
    for label in labels:  # anchored at its end, the label runs down-left from (x, y)
        x, y = float(texts[label].get("x")), float(texts[label].get("y"))
        extent = len(label) * CHAR_WIDTH
        assert x - extent * cos >= 0 and y + extent * sin <= height, label
        assert x <= width
    assert "score ×100" in texts  # the y axis says what it shows
    few = ET.fromstring(bar_chart_svg("val", [("A", {"J": 0.5})]))
    legend_end = max(float(t.get("x")) for t in few.iter("{http://www.w3.org/2000/svg}text"))
    assert legend_end + len("J_ins") * CHAR_WIDTH <= float(few.get("width"))


def test_unicode_narration_reaches_the_page(run: dict[str, Path]) -> None:  # noqa: F811
    clips = [(c, s, n.replace("red cup", "crème cup")) for c, s, n in CLIPS]
    tables.write_clips(run["clips"], clips)
    build(run, overlay_clips=1)
    page = (run["report"] / "index.html").read_text(encoding="utf-8")
    assert "crème cup</li>" in page and '<meta charset="utf-8">' in page
