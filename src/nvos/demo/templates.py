"""Narration templates of a demo style, read from the ``templates`` block of its vocabulary file.

A template is a sentence with slots: ``{A}`` the carried object, ``{B}`` the object it is put in
or on (``move`` stories only), ``{C}`` another visible object (``+C`` stories only), ``{a A}`` a
slot with its indefinite article, ``{in}`` / ``{into}`` the target's preposition ("in" / "on",
"into" / "onto"). :mod:`nvos.demo.narration` fills them.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from nvos.tags import RESERVED  # tag characters: a template must not contain them

#: Story keys (:data:`nvos.demo.plan.STORIES`, ``+C`` when another object is named).
STORY_KEYS = ("move", "move+C", "pick", "pick+C", "take", "take+C")
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
KNOWN = frozenset({"A", "B", "C", "a A", "a B", "a C", "in", "into"})


class TemplateError(ValueError):
    """A ``templates`` block that does not follow the documented structure."""


@dataclass(frozen=True)
class Templates:
    """``styles``: style name -> story key -> templates; ``tagged``: the style of val / test
    narrations (tagged phrases); ``free``: style -> weight (sum 1) of training narrations."""

    styles: dict[str, dict[str, tuple[str, ...]]]
    tagged: str
    free: dict[str, float]


def _check_template(template: Any, key: str, where: str) -> str:
    """The template if its slots fit story ``key``; else raise :class:`TemplateError`."""
    if not isinstance(template, str) or not template.strip():
        raise TemplateError(f"{where}: expected a non-empty string, got {template!r}")
    names = PLACEHOLDER.findall(template)
    unknown = [n for n in names if n not in KNOWN]
    rest = PLACEHOLDER.sub("", template)
    if unknown or "{" in rest or "}" in rest:
        raise TemplateError(f"{where}: {template!r}: unknown slot(s) {unknown or rest!r}")
    if any(c in RESERVED for c in rest):
        raise TemplateError(f"{where}: {template!r} contains a tag character of [ ] < >")
    slots = [n[-1] for n in names if n not in ("in", "into")]
    wanted = ["A"] + (["B"] if key.startswith("move") else []) + (["C"] if "+C" in key else [])
    if sorted(slots) != wanted:
        raise TemplateError(f"{where}: {template!r} must name each of {wanted} once")
    if not key.startswith("move") and len(slots) < len(names):
        raise TemplateError(f"{where}: {template!r}: {{in}} / {{into}} need a move story")
    return template


def parse_templates(data: Any, where: str) -> Templates:
    """Build and check :class:`Templates` from the parsed YAML mapping (``where`` names it)."""
    if not isinstance(data, dict) or set(data) != {"styles", "tagged", "free"}:
        raise TemplateError(f"{where}: expected a mapping with keys styles, tagged, free")
    if not isinstance(data["styles"], dict) or not data["styles"]:
        raise TemplateError(f"{where}.styles: expected a mapping of narration styles")
    styles: dict[str, dict[str, tuple[str, ...]]] = {}
    for name, story in data["styles"].items():
        if not isinstance(story, dict) or sorted(story) != sorted(STORY_KEYS):
            raise TemplateError(f"{where}.styles.{name}: expected exactly the keys {STORY_KEYS}")
        styles[str(name)] = {}
        for key in STORY_KEYS:
            if not isinstance(story[key], list) or not story[key]:
                raise TemplateError(f"{where}.styles.{name}.{key}: expected a non-empty list")
            styles[str(name)][key] = tuple(
                _check_template(t, key, f"{where}.styles.{name}.{key}[{i}]")
                for i, t in enumerate(story[key])
            )
    tagged, free = data["tagged"], data["free"]
    if tagged not in styles:
        raise TemplateError(f"{where}.tagged: {tagged!r} is not one of {list(styles)}")
    if (
        not isinstance(free, dict)
        or not free
        or any(name not in styles for name in free)
        or not all(isinstance(w, (int, float)) and w > 0 for w in free.values())
        or not math.isclose(sum(free.values()), 1.0, abs_tol=1e-6)
    ):
        raise TemplateError(
            f"{where}.free: expected style -> positive weight (summing to 1) with styles of "
            f"{list(styles)}, got {free!r}"
        )
    return Templates(styles, str(tagged), {str(k): float(v) for k, v in free.items()})
