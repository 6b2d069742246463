"""Incremental JSON reading with the standard library only, for files too large to load.

:class:`JsonStream` walks a JSON text held in a file object chunk by chunk: ``members()`` yields
an object's keys one at a time (the caller then reads or skips each value), ``items()`` an array's
elements, ``value()`` decodes one whole value, ``skip()`` consumes one element by element. Only
the current chunk and the value being decoded are in memory. Errors are
:class:`~nvos.importers.common.ImportFormatError` naming ``file:line:column`` and telling a
truncated file from invalid JSON.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from nvos.importers.common import ImportFormatError

CHUNK_CHARS = 1 << 20
"""Characters read from the file at a time."""

MAX_TOKEN_CHARS = 1 << 20
"""A decode error further than this from the end of the buffer is a syntax error, not a value cut
by the buffer's end (no single JSON token of these files is anywhere near this long)."""

NUMBER_LOOKAHEAD = 3
"""A value decoded this close to the buffer's end is decoded again with more text: a number cut
as "1" | "e+5" stops before "e+" (the longest ending that may still continue a number)."""

_WHITESPACE = re.compile(r"[ \t\n\r]*")
_KINDS = {"{": "an object", "[": "an array", '"': "a string", "t": "true", "f": "false"}


def _kind(char: str) -> str:
    """What a JSON value starting with ``char`` is, for messages."""
    if char in _KINDS:
        return _KINDS[char]
    return "null" if char == "n" else "a number" if char in "-0123456789" else repr(char)


class JsonStream:
    """Reads one JSON document incrementally: containers member by member, values whole.

    Containers are walked with :meth:`members` (an object: yields each key; the caller then
    consumes the value) and :meth:`items` (an array: yields each element, decoded); :meth:`value`
    decodes the next value with ``json.JSONDecoder.raw_decode``. Memory holds the read buffer
    (about :data:`CHUNK_CHARS`) plus the largest value decoded at once. Every error is an
    :class:`ImportFormatError` ``"<file>:<line>:<column>: ..."``.
    """

    def __init__(self, handle: TextIO, name: str, chunk_chars: int = CHUNK_CHARS) -> None:
        self.name = name
        self._handle = handle
        self._chunk = chunk_chars
        self._decoder = json.JSONDecoder()
        self._buf = ""
        self._pos = 0  # next unread index of _buf
        self._eof = False
        self._offset = 0  # characters dropped before _buf[0]
        self._counted = 0  # index of _buf up to which lines are counted
        self._line = 1  # line number at _buf[_counted]
        self._line_start = 0  # absolute offset of the first character of that line

    # -- positions ---------------------------------------------------------------------------
    def _count_lines(self, upto: int) -> None:
        """Move the line counter forward to buffer index ``upto`` (>= the counted index)."""
        newlines = self._buf.count("\n", self._counted, upto)
        if newlines:
            self._line += newlines
            self._line_start = self._offset + self._buf.rfind("\n", self._counted, upto) + 1
        self._counted = upto

    def _where(self, at: int | None = None) -> str:
        """``"<file>:<line>:<column>"`` of buffer index ``at`` (default: the read position)."""
        self._count_lines(self._pos)
        at = self._pos if at is None else at
        newlines = self._buf.count("\n", self._pos, at)
        line, start = self._line, self._line_start
        if newlines:
            line += newlines
            start = self._offset + self._buf.rfind("\n", self._pos, at) + 1
        return f"{self.name}:{line}:{self._offset + at - start + 1}"

    @property
    def line(self) -> int:
        """The line number of the read position (1-based)."""
        self._count_lines(self._pos)
        return self._line

    def _error(self, message: str, at: int | None = None) -> ImportFormatError:
        return ImportFormatError(f"{self._where(at)}: {message}")

    # -- reading -----------------------------------------------------------------------------
    def _read_more(self, at_least: int = 0) -> bool:
        """Append at least one chunk, dropping the consumed text; False at the end of the file.

        Buffer indices held by the caller stay valid only when it returns False.
        """
        if self._eof:
            return False
        try:
            chunk = self._handle.read(max(self._chunk, at_least))
        except UnicodeDecodeError as error:
            raise self._error(f"the file is not UTF-8 text ({error.reason})") from None
        if not chunk:
            self._eof = True
            return False
        self._count_lines(self._pos)
        self._offset += self._pos
        self._buf = self._buf[self._pos :] + chunk
        self._counted -= self._pos
        self._pos = 0
        return True

    def peek(self) -> str:
        """The next non-whitespace character (not consumed), or ``""`` at the end of the file."""
        while True:
            match = _WHITESPACE.match(self._buf, self._pos)
            assert match is not None  # the pattern matches the empty string
            self._pos = match.end()
            if self._pos < len(self._buf):
                return self._buf[self._pos]
            if not self._read_more():
                return ""

    def _expect(self, chars: str, context: str) -> str:
        """Consume one of ``chars`` (after whitespace) or raise naming ``context``."""
        char = self.peek()
        if not char:
            raise self._error(f"truncated JSON: the file ends {context}")
        if char not in chars:
            wanted = " or ".join(repr(c) for c in chars)
            raise self._error(f"invalid JSON: expected {wanted} {context}, got {char!r}")
        self._pos += 1
        return char

    def value(self) -> Any:
        """Decode and consume the next JSON value."""
        if not self.peek():
            raise self._error("truncated JSON: the file ends where a value was expected")
        while True:
            try:
                value, end = self._decoder.raw_decode(self._buf, self._pos)
            except json.JSONDecodeError as error:
                cut = len(self._buf) - error.pos <= MAX_TOKEN_CHARS
                if cut and self._read_more(len(self._buf) - self._pos):
                    continue  # maybe cut by the buffer's end: decode again with more text
                truncated = self._eof and (
                    error.pos >= len(self._buf.rstrip()) or error.msg.startswith("Unterminated")
                )
                if truncated:
                    raise self._error(
                        "truncated JSON: the file ends inside a value", error.pos
                    ) from None
                raise self._error(f"invalid JSON: {error.msg}", error.pos) from None
            if len(self._buf) - end < NUMBER_LOOKAHEAD and self._read_more():
                continue  # a number may go on in the next chunk ("12" | "3", "1" | ".5"): again
            self._pos = end
            return value

    def members(self, context: str) -> Iterator[str]:
        """Walk the object at the read position: yield each key; consume its value before next."""
        char = self.peek()
        if char != "{":
            what = _kind(char) if char else "nothing (empty file)"
            raise self._error(f"{context} must be a JSON object, got {what}")
        self._pos += 1
        if self.peek() == "}":
            self._pos += 1
            return
        while True:
            if self.peek() != '"':
                self._expect('"', f"(an object key) in {context}")
            key = self.value()
            self._expect(":", f"after the key {key!r}")
            yield key
            if self._expect(",}", f"after the value of {key!r}") == "}":
                return

    def items(self, context: str) -> Iterator[Any]:
        """Walk the array at the read position, yielding each element decoded."""
        char = self.peek()
        if char != "[":
            what = _kind(char) if char else "nothing"
            raise self._error(f"{context} must be a JSON array, got {what}")
        self._pos += 1
        if self.peek() == "]":
            self._pos += 1
            return
        while True:
            yield self.value()
            if self._expect(",]", f"after an element of {context}") == "]":
                return

    def skip(self, context: str) -> None:
        """Consume the next value; containers element by element (bounded memory)."""
        char = self.peek()
        if char == "{":
            for key in self.members(context):
                self.skip(f"{context}.{key}")
        elif char == "[":
            for _ in self.items(context):
                pass
        else:
            self.value()

    def end(self) -> None:
        """Check that nothing but whitespace follows the top-level value."""
        if self.peek():
            raise self._error("invalid JSON: unexpected data after the top-level value")


def open_json(path: Path) -> TextIO:
    """Open a JSON file as UTF-8 text (raises FileNotFoundError naming it)."""
    return open(path, encoding="utf-8", newline="")
