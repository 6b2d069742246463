"""Tagged narrations: ``[phrase]<object_id>`` marks an object phrase and the object it refers to.

Evaluation narrations tag each object phrase (DESIGN §4)::

    "The person uses a [wooden spoon]<5> to stir [pasta]<2> in a [pan]<3>."

:func:`parse_tags` returns the clean text (tags stripped) and one :class:`TaggedPhrase` per tag,
with character spans into the CLEAN text. The characters ``[ ] < >`` are reserved: outside a
well-formed tag any of them is an error, so a typo never silently becomes part of the text.
The same object id may tag several phrases (e.g. "[the pan]<3> ... [it]<3>"): every phrase is kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

OBJECT_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]+")
"""What an object id may contain (one or more letters, digits, ``_`` or ``-``)."""

RESERVED = frozenset("[]<>")


class TagError(ValueError):
    """A malformed ``[phrase]<id>`` tag; ``column`` is 1-based in the narration as written."""

    def __init__(self, column: int, reason: str) -> None:
        super().__init__(f"column {column}: {reason}")
        self.column = column
        self.reason = reason


@dataclass(frozen=True, slots=True)
class TaggedPhrase:
    """One tagged object phrase: ``clean_text[char_start:char_end] == text``."""

    text: str
    char_start: int
    char_end: int
    object_id: str


@dataclass(frozen=True, slots=True)
class TaggedNarration:
    """A narration with its tags stripped (``text``) and its tagged phrases in reading order."""

    text: str
    phrases: tuple[TaggedPhrase, ...]

    @property
    def object_ids(self) -> frozenset[str]:
        """The distinct object ids tagged in the narration."""
        return frozenset(p.object_id for p in self.phrases)


def has_reserved(narration: str) -> bool:
    """Whether the narration contains any of the reserved tag characters ``[ ] < >``."""
    return any(c in narration for c in RESERVED)


def parse_tags(narration: str) -> TaggedNarration:
    """Strip ``[phrase]<object_id>`` tags; return the clean text and the tagged phrases.

    Phrase spans are trimmed of surrounding whitespace (``"[ pan ]<3>"`` spans ``"pan"``).
    Raises :class:`TagError` (with the 1-based column in ``narration``) for: unbalanced brackets,
    nested brackets, an empty phrase, a ``[phrase]`` not directly followed by ``<id>``, an ``<id>``
    not directly after ``]``, an unclosed ``<``, and an empty or invalid id.
    An untagged narration is returned unchanged with no phrases.
    """
    if not has_reserved(narration):
        return TaggedNarration(narration, ())
    clean: list[str] = []
    length = 0  # len("".join(clean)), kept incrementally
    phrases: list[TaggedPhrase] = []
    i = 0
    n = len(narration)
    while i < n:
        c = narration[i]
        if c == "[":
            open_col = i + 1
            j = i + 1
            while j < n and narration[j] not in RESERVED:
                j += 1
            if j == n:
                raise TagError(open_col, "'[' is never closed by ']'")
            if narration[j] == "[":
                raise TagError(j + 1, f"nested '[' inside the phrase opened at column {open_col}")
            if narration[j] != "]":
                raise TagError(
                    j + 1, f"'{narration[j]}' inside the phrase opened at column {open_col}"
                )
            body = narration[i + 1 : j]
            if not body.strip():
                raise TagError(open_col, "empty phrase '[]'")
            object_id, after = _read_id(narration, j + 1, open_col)
            lead = len(body) - len(body.lstrip())
            text = body.strip()
            start = length + lead
            phrases.append(TaggedPhrase(text, start, start + len(text), object_id))
            clean.append(body)
            length += len(body)
            i = after
        elif c == "]":
            raise TagError(i + 1, "']' without a matching '['")
        elif c == "<":
            raise TagError(i + 1, "'<id>' must follow a '[phrase]' directly (no space)")
        elif c == ">":
            raise TagError(i + 1, "'>' without a matching '<'")
        else:
            j = i + 1
            while j < n and narration[j] not in RESERVED:
                j += 1
            clean.append(narration[i:j])
            length += j - i
            i = j
    return TaggedNarration("".join(clean), tuple(phrases))


def _read_id(narration: str, at: int, open_col: int) -> tuple[str, int]:
    """Read ``<id>`` starting at index ``at`` (just after ``]``); return (id, index after ``>``)."""
    n = len(narration)
    if at >= n or narration[at] != "<":
        raise TagError(
            at + 1, f"the phrase opened at column {open_col} is not followed by '<object_id>'"
        )
    close = narration.find(">", at + 1)
    if close < 0:
        raise TagError(at + 1, "'<' is never closed by '>'")
    object_id = narration[at + 1 : close]
    if not object_id:
        raise TagError(at + 1, "empty object id '<>'")
    if not OBJECT_ID_PATTERN.fullmatch(object_id):
        raise TagError(
            at + 1,
            f"invalid object id {object_id!r} (allowed: letters, digits, '_' and '-')",
        )
    return object_id, close + 1


def strip_tags(narration: str) -> str:
    """The narration with its tags removed (raises :class:`TagError` when malformed).

    Not used by the pipeline yet: it is the free-text input of the end-to-end evaluation planned in
    issue 19 (strip the tags, parse the phrases, segment), kept next to :func:`parse_tags`, whose
    ``text`` it is.
    """
    return parse_tags(narration).text
