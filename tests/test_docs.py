"""The documentation holds together: every cited design or reference section exists in the
repository, relative links resolve, the README stays short, and config/README.md covers the schema.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]

#: Folders never scanned: tool state, environments and run outputs.
SKIP_DIRS = {".git", ".venv", "results", ".snakemake", "__pycache__", ".pytest_cache"}
SKIP_DIRS |= {".ruff_cache", "build", "dist", "node_modules"}
TEXT_SUFFIXES = {".py", ".md", ".smk", ".yaml", ".yml", ".rst", ".toml", ".txt", ".sh", ".cfg"}
TEXT_NAMES = {"Snakefile", "Makefile"}

#: "DESIGN §3", "DESIGN §3–§4", "REFERENCE §1.3, §2", "REFERENCE §2 and §3".
SECTION = r"§\d+(?:\.\d+)*"
CITATION = re.compile(rf"\b(DESIGN|REFERENCE) ({SECTION}(?:\s*(?:,|–|-|and)\s*{SECTION})*)")
CITED_DOCS = {"DESIGN": REPO / "docs" / "design.md", "REFERENCE": REPO / "docs" / "reference.md"}
NUMBERED_HEADING = re.compile(r"^#{1,6}\s+(\d+(?:\.\d+)*)\.?\s")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
INLINE_CODE = re.compile(r"`[^`\n]*`")


def repo_text_files() -> list[Path]:
    """Every text file of the checkout that code or docs live in (no outputs, no environments)."""
    files = []
    for path in REPO.rglob("*"):
        rel = path.relative_to(REPO)
        if any(part in SKIP_DIRS or part.endswith(".egg-info") for part in rel.parts):
            continue
        if path.is_file() and (path.suffix in TEXT_SUFFIXES or path.name in TEXT_NAMES):
            files.append(path)
    return files


def citations(text: str) -> list[tuple[str, str]]:
    """(document, section) for every "DESIGN §n" / "REFERENCE §n" in ``text``, lists expanded."""
    found = []
    for match in CITATION.finditer(text):
        found += [(match.group(1), s) for s in re.findall(r"§(\d+(?:\.\d+)*)", match.group(2))]
    return found


def prose_lines(markdown: str) -> list[str]:
    """The lines of ``markdown`` outside fenced code blocks."""
    lines, fenced = [], False
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def numbered_sections(markdown: str) -> set[str]:
    """Section numbers of headings such as ``## 7. ROSA`` or ``### 1.2 F``."""
    return {m.group(1) for line in prose_lines(markdown) if (m := NUMBERED_HEADING.match(line))}


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = INLINE_CODE.sub(lambda m: m.group(0)[1:-1], heading.strip().lstrip("#").strip())
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    return {slug(line) for line in prose_lines(markdown) if line.startswith("#")}


def broken_links(doc: Path) -> list[str]:
    """Relative links of ``doc`` whose file, or whose ``#anchor`` in a markdown file, is missing."""
    broken = []
    for line in prose_lines(doc.read_text(encoding="utf-8")):
        for target in LINK.findall(INLINE_CODE.sub("", line)):
            if re.match(r"[a-z]+:", target):  # https:, mailto:
                continue
            file_part, _, anchor = target.partition("#")
            path = (doc.parent / file_part).resolve() if file_part else doc
            if not path.exists():
                broken.append(f"{target} (no file {path})")
            elif anchor and path.suffix == ".md":
                if anchor not in anchors(path.read_text(encoding="utf-8")):
                    broken.append(f"{target} (no heading #{anchor} in {path.name})")
    return broken


def user_docs() -> list[Path]:
    """The pages a user reads: both READMEs and everything under docs/."""
    docs = sorted((REPO / "docs").glob("*.md"))
    return [REPO / "README.md", REPO / "config" / "README.md", *docs]


# ------------------------------------------------------------------ the helpers themselves


def test_citations_expand_lists_and_ranges() -> None:
    text = "see DESIGN §3–§4, REFERENCE §1.3, §2 and DESIGN §8: done; REFERENCE §5 and §6."
    assert citations(text) == [
        ("DESIGN", "3"),
        ("DESIGN", "4"),
        ("REFERENCE", "1.3"),
        ("REFERENCE", "2"),
        ("DESIGN", "8"),
        ("REFERENCE", "5"),
        ("REFERENCE", "6"),
    ]


def test_numbered_sections_skip_code_blocks() -> None:
    text = "# Title\n## 1. What\n### 1.2 F (boundary)\n```\n## 9. not a heading\n```\n## Notes\n"
    assert numbered_sections(text) == {"1", "1.2"}


def test_broken_links_are_found(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Other\n## The SAM + CLIP baseline\n")
    doc = tmp_path / "doc.md"
    doc.write_text(
        "# Doc\n[ok](other.md#the-sam--clip-baseline) [self](#doc) [web](https://x.org)\n"
        "`[code](nowhere.md)` [gone](missing.md) [bad anchor](other.md#nope)\n"
    )
    assert broken_links(doc) == [
        f"missing.md (no file {tmp_path / 'missing.md'})",
        "other.md#nope (no heading #nope in other.md)",
    ]


# ------------------------------------------------------------------ the repository's docs


def test_every_cited_section_exists() -> None:
    sections = {name: numbered_sections(doc.read_text()) for name, doc in CITED_DOCS.items()}
    missing = [
        f"{path.relative_to(REPO)}: {name} §{number}"
        for path in repo_text_files()
        for name, number in citations(path.read_text(encoding="utf-8", errors="replace"))
        if number not in sections[name]
    ]
    assert sections["DESIGN"] and sections["REFERENCE"]
    assert not missing, "cited sections missing from docs/design.md or docs/reference.md:\n" + (
        "\n".join(missing)
    )


def test_no_citation_of_documents_outside_the_repository() -> None:
    outside = re.compile(r"\b(?:DESIGN|REFERENCE)\.md\b")
    offenders = [
        str(path.relative_to(REPO))
        for path in repo_text_files()
        if outside.search(path.read_text(encoding="utf-8", errors="replace"))
    ]
    assert not offenders, f"cite docs/design.md or docs/reference.md instead: {offenders}"


def test_readme_is_short_with_contents() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 200
    assert "## Contents" in readme


@pytest.mark.parametrize("doc", user_docs(), ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve(doc: Path) -> None:
    assert not broken_links(doc)


def test_config_readme_names_every_group_and_key() -> None:
    schema = yaml.safe_load((REPO / "config" / "schema.yaml").read_text(encoding="utf-8"))
    text = (REPO / "config" / "README.md").read_text(encoding="utf-8")
    names = []
    for group, spec in schema["properties"].items():
        names.append(group)
        names += [f"{group}.{key}" for key in spec.get("properties", {})]
    missing = [name for name in names if f"`{name}`" not in text]
    assert not missing, f"config/README.md does not mention: {missing}"
