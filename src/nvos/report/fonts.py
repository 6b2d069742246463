"""Unicode text in the overlay legends: TrueType fonts with per-character fallback (Pillow).

OpenCV's Hershey fonts are ASCII only; narrations are not ("café", "crème", "切る"). The legend is
drawn with a chain of TrueType fonts: matplotlib's DejaVu Sans when matplotlib is installed, the
system's fonts of :data:`FONT_FILES` (DejaVu Sans, Noto Sans, Noto Sans CJK, ...) in that order,
and last Pillow's own embedded font (always there). Each character is drawn with the first font
of the chain that has a glyph for it; a character no font has is drawn as the first font's
"missing glyph" box, as browsers do, never replaced by '?'.
"""

from __future__ import annotations

import functools
import logging
import os
import unicodedata
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

logger = logging.getLogger(__name__)

FONT_FILES: tuple[str, ...] = (
    "DejaVuSans.ttf",
    "NotoSans-Regular.ttf",
    "LiberationSans-Regular.ttf",
    "NotoSansCJK-Regular.ttc",
    "NotoSansCJKsc-Regular.otf",
    "NotoSansCJK-VF.ttc",
    "DroidSansFallbackFull.ttf",
    "wqy-microhei.ttc",
    "NotoSansArabic-Regular.ttf",
    "NotoSansDevanagari-Regular.ttf",
    "NotoSansThai-Regular.ttf",
    "NotoSansHebrew-Regular.ttf",
)
"""Font files looked for, in the order of the fallback chain."""

FONT_DIRS: tuple[str, ...] = (
    "/usr/share/fonts",
    "/usr/local/share/fonts",
    "~/.local/share/fonts",
    "~/.fonts",
)
"""Folders searched (recursively) for :data:`FONT_FILES`, after matplotlib's own fonts."""

_NO_GLYPH = "\U0010ffff"  # a noncharacter: no font maps it, so it renders as the "missing" glyph


def _font_dirs() -> list[Path]:
    dirs = []
    try:
        import matplotlib  # optional: only its bundled fonts are used

        dirs.append(Path(matplotlib.get_data_path()) / "fonts" / "ttf")
    except ImportError:
        pass
    return dirs + [Path(os.path.expanduser(d)) for d in FONT_DIRS]


@functools.lru_cache(maxsize=1)
def font_files() -> tuple[Path, ...]:
    """The :data:`FONT_FILES` found on this machine, in chain order (first copy of each)."""
    found: dict[str, Path] = {}
    wanted = set(FONT_FILES)
    for folder in _font_dirs():
        if not folder.is_dir():
            continue
        for root, _, names in os.walk(folder):
            for name in sorted(wanted.intersection(names) - set(found)):
                found[name] = Path(root) / name
    return tuple(found[name] for name in FONT_FILES if name in found)


@functools.lru_cache(maxsize=8)
def font_chain(size: int) -> tuple[ImageFont.FreeTypeFont, ...]:
    """The fallback chain at ``size`` pixels: the system fonts found, then Pillow's own font."""
    if not font_files():
        logger.warning(
            "report: none of %s found under %s; legends use Pillow's own font, which has no "
            "accented or non-Latin letters (install fonts-dejavu-core, or matplotlib)",
            ", ".join(FONT_FILES[:2]),
            ", ".join(FONT_DIRS),
        )
    fonts = []
    for path in font_files():
        try:
            fonts.append(ImageFont.truetype(str(path), size))
        except OSError:  # an unreadable or broken font file: use the next one
            continue
    fonts.append(ImageFont.load_default(size))  # type: ignore[arg-type]
    return tuple(f for f in fonts if isinstance(f, ImageFont.FreeTypeFont))


@functools.lru_cache(maxsize=4096)
def _has_glyph(font: ImageFont.FreeTypeFont, char: str) -> bool:
    """True when ``font`` draws ``char`` with its own glyph, not its "missing glyph" box."""
    if char.isspace():
        return True
    mask, missing = font.getmask(char), font.getmask(_NO_GLYPH)
    return mask.size != missing.size or bytes(mask) != bytes(missing)


def font_runs(
    text: str, size: int, chain: tuple[ImageFont.FreeTypeFont, ...] | None = None
) -> list[tuple[str, ImageFont.FreeTypeFont]]:
    """``text`` cut into runs of characters drawn with the same font of ``chain`` (default:
    :func:`font_chain`): each character's first font with a glyph for it, else ``chain[0]``.

    Combining marks stay with the run of the character before them."""
    chain = chain or font_chain(size)
    runs: list[tuple[str, ImageFont.FreeTypeFont]] = []
    for char in text:
        if runs and unicodedata.combining(char):
            runs[-1] = (runs[-1][0] + char, runs[-1][1])
            continue
        font = next((f for f in chain if _has_glyph(f, char)), chain[0])
        if runs and runs[-1][1] is font:
            runs[-1] = (runs[-1][0] + char, font)
        else:
            runs.append((char, font))
    return runs


def text_width(text: str, size: int) -> float:
    """Width in pixels of ``text`` drawn by :func:`draw_text` at ``size``."""
    return sum(font.getlength(run) for run, font in font_runs(text, size))


def fit_text(text: str, size: int, width: float) -> str:
    """``text``, cut and ended with '…' when wider than ``width`` pixels."""
    if text_width(text, size) <= width:
        return text
    while text and text_width(text + "…", size) > width:
        text = text[:-1]
    return text.rstrip() + "…"


def draw_text(
    image: np.ndarray, text: str, origin: tuple[int, int], size: int, colour: tuple[int, int, int]
) -> np.ndarray:
    """``image`` (H, W, 3) RGB uint8 with ``text`` drawn from ``origin`` = (x, baseline y)."""
    canvas = Image.fromarray(image)
    draw = ImageDraw.Draw(canvas)
    x, y = float(origin[0]), float(origin[1])
    for run, font in font_runs(text, size):
        draw.text((x, y), run, font=font, fill=colour, anchor="ls")
        x += font.getlength(run)
    return np.asarray(canvas).copy()
