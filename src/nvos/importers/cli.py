"""``nvos import <format> ... --out MANIFEST``: one subcommand per importer module."""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from typing import Any

from nvos.importers.common import ImportFormatError, open_manifest

FORMATS: dict[str, str] = {
    "visor": "VISOR sparse annotation JSONs + frames + a tagged narration table",
    "vost": "VOST JPEGImages/Annotations/ImageSets + a narration table",
    "ego4d": "Ego4D narration.json + canonical videos -> training clips",
    "epic": "EPIC-KITCHENS-100 narration CSV + videos or frame folders",
}


# Docstring markup -> plain text: :role:`~a.b.C` -> C, :role:`a.b` -> a.b, ``x`` -> x, **x** -> x,
# and "REFERENCE §3" -> "docs/reference.md §3" (the documents the citations name).
MARKUP = [
    (re.compile(r"\b(DESIGN|REFERENCE) §"), lambda m: f"docs/{m.group(1).lower()}.md §"),
    (re.compile(r":[a-z]+:`~(?:[\w.]+\.)?(\w+)`"), r"\1"),
    (re.compile(r":[a-z]+:`([^`]+)`"), r"\1"),
    (re.compile(r"``(.+?)``", re.DOTALL), r"\1"),
    (re.compile(r"\*\*(.+?)\*\*", re.DOTALL), r"\1"),
]


def plain_text(docstring: str) -> str:
    """A module docstring as ``--help`` shows it: its reStructuredText roles, literals and bold
    markers removed, its citations as file names (the text and its line breaks kept)."""
    for pattern, replacement in MARKUP:
        docstring = pattern.sub(replacement, docstring)
    return docstring


def add_import_parser(sub: Any) -> None:
    """Add ``import`` with one sub-subcommand per format to the ``nvos`` subparsers ``sub``."""
    parser = sub.add_parser("import", help="convert a real dataset's files into a manifest")
    formats = parser.add_subparsers(dest="format", required=True)
    for name, help_text in FORMATS.items():
        module = importlib.import_module(f"nvos.importers.{name}")
        p = formats.add_parser(
            name,
            help=help_text,
            description=plain_text(module.__doc__ or ""),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(p)
        p.add_argument("--out", required=True, help="the manifest to write (JSON Lines)")
        p.set_defaults(handler=cmd_import)


def cmd_import(args: argparse.Namespace, config: dict[str, Any]) -> int:
    """Run the chosen importer; print its summary; exit 1 on a format error."""
    module = importlib.import_module(f"nvos.importers.{args.format}")
    try:
        with open_manifest(args.out, args.format) as writer:
            module.run(args, writer)
    except (ImportFormatError, FileNotFoundError) as error:
        print(f"nvos import {args.format}: {error}", file=sys.stderr)
        return 1
    print(writer.summary.text())
    return 0
