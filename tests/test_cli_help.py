"""``nvos --help`` at every level: each argument explained, no raw docstring markup."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator

import pytest

from nvos.cli import build_parser, main
from nvos.importers.cli import FORMATS, plain_text

#: reStructuredText / Markdown that a terminal shows raw: ``literal``, `code`, :role:, **bold**,
#: and citations of documents by their short names ("REFERENCE §3") instead of their files.
RAW_MARKUP = re.compile(r"`|:[a-z]+:`|\*\*|\b(?:DESIGN|REFERENCE) §")


def all_parsers(
    parser: argparse.ArgumentParser, name: str = "nvos"
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """``(command line, parser)`` for ``parser`` and every subcommand under it, depth first."""
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from all_parsers(sub, f"{name} {sub_name}")


def test_the_walk_reaches_every_command() -> None:
    names = [name for name, _ in all_parsers(build_parser())]
    assert "nvos validate" in names and "nvos export-davis" in names
    assert [n for n in names if n.startswith("nvos import ")] == [
        f"nvos import {f}" for f in FORMATS
    ]
    assert "nvos import-predictions" in names
    assert len(names) == 1 + 17 + len(FORMATS)  # nvos, its 17 commands, one per import format


def test_every_argument_and_command_has_help() -> None:
    missing = []
    for name, parser in all_parsers(build_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            if isinstance(action, argparse._SubParsersAction):  # each command's line in the list
                missing += [f"{name} {a.dest}" for a in action._choices_actions if not a.help]
            elif not (action.help or "").strip():
                missing.append(f"{name} {'/'.join(action.option_strings) or action.dest}")
    assert missing == []


def test_no_help_output_shows_raw_markup() -> None:
    found = {}
    for name, parser in all_parsers(build_parser()):
        lines = [line for line in parser.format_help().splitlines() if RAW_MARKUP.search(line)]
        if lines:
            found[name] = lines
    assert found == {}


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_import_help_prints_the_importer_documentation(
    fmt: str, capsys: pytest.CaptureFixture
) -> None:
    with pytest.raises(SystemExit) as done:
        main(["import", fmt, "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert f"usage: nvos import {fmt}" in out and "--out OUT" in out
    assert len(out.splitlines()) > 20  # the module docstring, as plain text
    assert not RAW_MARKUP.search(out)


def test_plain_text_removes_roles_literals_and_bold() -> None:
    doc = (
        "**Inputs** (REFERENCE §3, DESIGN §4): ``--root`` holds ``JPEGImages/<seq>/*.jpg``;\n"
        "errors are :class:`~nvos.importers.common.ImportFormatError` (:mod:`nvos.rle`)."
    )
    assert plain_text(doc) == (
        "Inputs (docs/reference.md §3, docs/design.md §4): --root holds JPEGImages/<seq>/*.jpg;\n"
        "errors are ImportFormatError (nvos.rle)."
    )
