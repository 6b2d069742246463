"""The report page in a real browser (headless Chromium): layout measured, screenshot taken.

Skipped when no ``chromium`` (or ``chromium-browser`` / ``google-chrome``) is on PATH; on Debian
``apt-get install chromium``. docs/report.md has the same check as a command.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import tables
from test_export import CLIPS, world  # noqa: F401  (fixture)
from test_report import build, run  # noqa: F401  (fixture)

BROWSER = next(
    (b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None
)
pytestmark = pytest.mark.skipif(
    BROWSER is None, reason="no chromium on PATH (Debian: apt-get install chromium)"
)

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
]

PROBE = """<script>
window.addEventListener("load", () => {
  const problems = [];
  for (const svg of document.querySelectorAll("svg")) {
    const box = svg.getBoundingClientRect();
    for (const text of svg.querySelectorAll("text")) {
      const r = text.getBoundingClientRect();
      if (r.left < box.left - 0.5 || r.right > box.right + 0.5 ||
          r.top < box.top - 0.5 || r.bottom > box.bottom + 0.5) {
        problems.push("cut off: " + text.textContent);
      }
    }
  }
  for (const img of document.images) {
    if (!img.complete || img.naturalWidth === 0) problems.push("not loaded: " + img.src);
  }
  if (document.documentElement.scrollWidth > window.innerWidth) problems.push("page too wide");
  const out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify({problems: problems, images: document.images.length,
                                    svgs: document.querySelectorAll("svg").length});
  document.body.appendChild(out);
});
</script>"""


def browser(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BROWSER), *FLAGS, *args], capture_output=True, text=True, timeout=120
    )


def test_report_renders_in_chromium(run: dict[str, Path], tmp_path: Path) -> None:  # noqa: F811
    clips = [(c, s, n.replace("red cup", "crème cup")) for c, s, n in CLIPS]
    tables.write_clips(run["clips"], clips)
    build(run, overlay_clips=2, overlay_frames=2)
    out = run["report"]
    page = (out / "index.html").read_text(encoding="utf-8")
    probe = out / "probe.html"
    probe.write_text(page.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    dumped = browser("--virtual-time-budget=5000", "--window-size=1280,900", "--dump-dom",
                     probe.as_uri())  # fmt: skip
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    match = re.search(r'<pre id="probe">(.*?)</pre>', dumped.stdout, re.S)
    assert match, dumped.stdout[-2000:]
    result = json.loads(match.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert result["problems"] == []
    assert result["svgs"] == 2 and result["images"] == 2

    screenshot = tmp_path / "report.png"
    page_uri = (out / "index.html").as_uri()
    shot = browser(f"--screenshot={screenshot}", "--window-size=1280,2400", page_uri)
    assert shot.returncode == 0 and screenshot.stat().st_size > 10_000, shot.stderr[-2000:]
