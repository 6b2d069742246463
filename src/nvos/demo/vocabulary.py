"""Vocabulary of the demo dataset: nouns (shape, size), colours, materials, skin tones, counters
and narration templates.

One file per demo style (:data:`STYLES`: ``demo_vocabulary.yaml`` is the kitchen style,
``demo_workshop.yaml`` the workshop style), in :mod:`nvos.resources`. Later stages use it to check
phrase grounding (which noun / colour a phrase names and how that object looks).
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from nvos.demo.shapes import SHAPE_BUILDERS
from nvos.demo.templates import TemplateError, Templates, parse_templates
from nvos.resources import resource_path
from nvos.types import PathLike

#: Demo styles -> their vocabulary files in :mod:`nvos.resources` (docs/demo.md).
STYLES = {"kitchen": "demo_vocabulary.yaml", "workshop": "demo_workshop.yaml"}
DEFAULT_STYLE = "kitchen"
DEFAULT_VOCABULARY_PATH = resource_path(STYLES[DEFAULT_STYLE])

SHAPES = frozenset(SHAPE_BUILDERS)
TEXTURES = frozenset({"gloss", "speckle", "grain", "brushed", "pores", "skin"}) | frozenset(
    {"ribbed", "enamel", "weave", "satin", "hammered", "polished"}
)
COUNTER_TEXTURES = frozenset({"wood", "tiles", "stone", "mat", "concrete", "pegboard", "tread"})

RGB = tuple[int, int, int]


class VocabularyError(ValueError):
    """A vocabulary file that does not follow the documented structure."""


@dataclass(frozen=True)
class Material:
    """A material: its texture pattern and, for wood / metal, its intrinsic colour."""

    name: str
    texture: str
    colour: RGB | None


@dataclass(frozen=True)
class Noun:
    """An object category of the demo with its distinctive shape."""

    name: str
    shape: str
    size: float
    colours: tuple[str, ...]
    materials: tuple[str, ...]
    receptacle: str | None
    carriable: bool
    attributes: bool
    handle: str | None


@dataclass(frozen=True)
class Counter:
    """A counter-top look: texture kind and base RGB."""

    name: str
    texture: str
    colour: RGB


@dataclass(frozen=True)
class ObjectSpec:
    """One object instance: a noun with a colour (None = the material's colour) and a material."""

    noun: str
    colour: str | None
    material: str


@dataclass(frozen=True)
class Vocabulary:
    """Everything the demo generator draws from; iteration orders are the file's orders."""

    colours: dict[str, RGB]
    materials: dict[str, Material]
    nouns: dict[str, Noun]
    skin_tones: tuple[RGB, ...]
    counters: dict[str, Counter]
    templates: Templates

    def rgb(self, spec: ObjectSpec) -> RGB:
        """The body colour of an object (RGB): its material's colour, else its colour word's."""
        material = self.materials[spec.material]
        if material.colour is not None:
            return material.colour
        if spec.colour is None:
            raise VocabularyError(f"object {spec} has neither a colour nor a coloured material")
        return self.colours[spec.colour]

    def attribute_words(self, spec: ObjectSpec) -> tuple[str | None, str | None]:
        """(colour word, material word) a phrase may use for the object; None where not allowed."""
        noun = self.nouns[spec.noun]
        if not noun.attributes:
            return None, None
        coloured_material = self.materials[spec.material].colour is not None
        colour = None if coloured_material else spec.colour
        return colour, spec.material

    def nearest_colour(self, rgb: np.ndarray | tuple[float, float, float]) -> str:
        """The colour word whose look is closest to a mean RGB (3,), brightness-tolerant.

        Achromatic colours (saturation < 0.25) compare by value, chromatic ones by hue, so
        shading and lighting (which scale brightness) do not change the answer.
        """
        h, s, v = colorsys.rgb_to_hsv(*(float(c) / 255.0 for c in rgb))
        best, best_score = "", float("inf")
        for name, ref in self.colours.items():
            rh, rs, rv = colorsys.rgb_to_hsv(*(c / 255.0 for c in ref))
            if (rs < 0.25) != (s < 0.25):
                continue
            if s < 0.25:
                score = abs(rv - v)
            else:
                dh = abs(rh - h)
                score = min(dh, 1.0 - dh) + 0.1 * abs(rs - s)
            if score < best_score:
                best, best_score = name, score
        return best


def _rgb(value: Any, where: str) -> RGB:
    if (
        not isinstance(value, list)
        or len(value) != 3
        or not all(isinstance(c, int) and 0 <= c <= 255 for c in value)
    ):
        raise VocabularyError(f"{where}: expected [r, g, b] ints in 0..255, got {value!r}")
    return (value[0], value[1], value[2])


def parse_vocabulary(data: dict[str, Any], source: str = "<vocabulary>") -> Vocabulary:
    """Build and check a :class:`Vocabulary` from the parsed YAML mapping."""
    try:
        colours = {str(k): _rgb(v, f"{source}: colours.{k}") for k, v in data["colours"].items()}
        materials = {
            str(k): Material(
                str(k),
                str(v["texture"]),
                _rgb(v["colour"], f"{source}: materials.{k}.colour") if v.get("colour") else None,
            )
            for k, v in data["materials"].items()
        }
        nouns = {
            str(k): Noun(
                name=str(k),
                shape=str(v["shape"]),
                size=float(v["size"]),
                colours=tuple(str(c) for c in v.get("colours") or ()),
                materials=tuple(str(m) for m in v["materials"]),
                receptacle=v.get("receptacle"),
                carriable=bool(v.get("carriable", True)),
                attributes=bool(v.get("attributes", True)),
                handle=v.get("handle"),
            )
            for k, v in data["nouns"].items()
        }
        skin = tuple(
            _rgb(v, f"{source}: skin_tones[{i}]") for i, v in enumerate(data["skin_tones"])
        )
        counters = {
            str(k): Counter(str(k), str(v["texture"]), _rgb(v["colour"], f"{source}: counters.{k}"))
            for k, v in data["counters"].items()
        }
    except (KeyError, TypeError, AttributeError) as error:
        raise VocabularyError(f"{source}: missing or malformed entry: {error!r}") from error
    for m in materials.values():
        if m.texture not in TEXTURES:
            raise VocabularyError(f"{source}: material {m.name}: unknown texture {m.texture!r}")
    for c in counters.values():
        if c.texture not in COUNTER_TEXTURES:
            raise VocabularyError(f"{source}: counter {c.name}: unknown texture {c.texture!r}")
    for n in nouns.values():
        where = f"{source}: noun {n.name!r}"
        if n.shape not in SHAPES:
            raise VocabularyError(f"{where}: unknown shape {n.shape!r}")
        if not n.materials or any(m not in materials for m in n.materials):
            raise VocabularyError(f"{where}: materials {n.materials} must be known and non-empty")
        if any(c not in colours for c in n.colours) or (n.handle and n.handle not in colours):
            raise VocabularyError(f"{where}: unknown colour in {n.colours} / handle {n.handle}")
        if not n.colours and any(materials[m].colour is None for m in n.materials):
            raise VocabularyError(f"{where}: no colours, so every material needs its own colour")
        if n.receptacle not in (None, "in", "on"):
            raise VocabularyError(f"{where}: receptacle must be in, on or null")
    if not skin or not counters or len(nouns) < 6:
        raise VocabularyError(f"{source}: needs skin tones, counters and at least 6 nouns")
    try:
        templates = parse_templates(data.get("templates"), f"{source}: templates")
    except TemplateError as error:
        raise VocabularyError(str(error)) from error
    return Vocabulary(colours, materials, nouns, skin, counters, templates)


def style_path(style: str) -> Path:
    """The shipped vocabulary file of a demo style (:data:`STYLES`)."""
    if style not in STYLES:
        raise VocabularyError(f"unknown demo style {style!r} (known: {', '.join(STYLES)})")
    return resource_path(STYLES[style])


def load_vocabulary(path: PathLike | None = None) -> Vocabulary:
    """Load a demo vocabulary file (default: the kitchen style's, :data:`DEFAULT_VOCABULARY_PATH`;
    :func:`style_path` gives each style's)."""
    source = Path(path) if path is not None else DEFAULT_VOCABULARY_PATH
    if not source.is_file():
        raise VocabularyError(f"{source}: demo vocabulary file not found")
    with open(source) as handle:
        data = yaml.safe_load(handle)
    if not isinstance(data, dict):
        raise VocabularyError(f"{source}: expected a mapping at the top level")
    return parse_vocabulary(data, str(source))
