"""The workflow's rules: each one described in ``snakemake -l``, each job with a log and a
benchmark file."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from nvos.config import load_config
from nvos.methods import FAMILY, method_names
from nvos.segment.scope import segment_chain, segment_config

REPO = Path(__file__).resolve().parents[1]
RULE_FILES = [REPO / "Snakefile", *sorted((REPO / "workflow/rules").glob("*.smk"))]

#: Rules without a job of their own, so without a log or a benchmark: aggregate targets that only
#: list the files of every shard (or method and split) so that ``snakemake <stage>`` runs a stage.
AGGREGATES = {
    "all": "the default target",
    "frames": "target of frames_shard over all shards",
    "proposals": "target of proposals_shard over all shards",
    "features": "target of features_shard over all shards",
    "sam_clip": "target of sam_clip_shard over all shards",
    "predict": "target of predict_shard over all variants and shards",
    "oracle": "target of oracle_shard over all shards",
    "grounded_sam": "target of grounded_sam_shard over all shards",
    "sam3": "target of sam3_shard over all shards",
    "temporal": "target of temporal_shard over all decoded methods and shards",
    "links": "target of links_shard over all shards",
    "propagate": "target of propagate_shard over all propagated methods and shards",
    "imported": "target of imported_shard over all imported methods and shards",
    "evaluate": "target of evaluate_method over all methods and splits",
    "rosa_chosen": "target of rosa_chosen_shard over all shards",
    "free_text": "target of free_text_shard over all shards",
    "segment": "target of segment_shard over all shards",
}

#: Directives that make a rule run a job.
JOB = re.compile(r"^    (?:script|shell|run|notebook|wrapper):", re.M)


def rule_bodies() -> dict[str, str]:
    """Rule name -> the text of its body (the indented lines under ``rule <name>:``). The rules
    of the prediction methods are made per member of the family in a loop
    (``workflow/rules/methods.smk``: ``rule:`` with ``name:``): each member's job rule and target
    rule get the loop's first two bodies, dedented, and each member with a step of the default
    config's ``segment.method`` its ``segment_<rule>`` the third (the segment stage's scope)."""
    bodies = {}
    for path in RULE_FILES:
        for match in re.finditer(r"^rule (\w+):\n((?:[ \t]+.*\n|\n)*)", path.read_text(), re.M):
            assert match.group(1) not in bodies, f"rule {match.group(1)} defined twice"
            bodies[match.group(1)] = match.group(2)
        # rules defined under an `if` (the segment stage's own inputs), dedented
        for match in re.finditer(
            r"^    rule (\w+):\n((?:        .*\n|\n)*)", path.read_text(), re.M
        ):
            assert match.group(1) not in bodies, f"rule {match.group(1)} defined twice"
            bodies[match.group(1)] = re.sub(r"^    ", "", match.group(2), flags=re.M)
    methods = (REPO / "workflow/rules/methods.smk").read_text()
    job, target, scoped = [
        re.sub(r"^    ", "", body, flags=re.M)
        for body in re.findall(r"^    rule:\n((?:        .*\n|\n)*)", methods, re.M)
    ]
    config = load_config()
    steps = segment_chain(config["segment"]["method"])
    in_scope = {
        member for member, names in method_names(segment_config(config)).items()
        if set(names) & set(steps)
    }  # fmt: skip
    for member in FAMILY:
        rules = [(member.rule, job), (member.target, target)]
        rules += [(f"segment_{member.rule}", scoped)] if member.name in in_scope else []
        for name, body in rules:
            assert name not in bodies, f"rule {name} defined twice"
            bodies[name] = body
    return bodies


def has_directive(body: str, name: str) -> bool:
    return re.search(rf"^    {name}:", body, re.M) is not None


def test_snakemake_lists_every_rule_with_a_description(tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(REPO / "Snakefile"),
        "-d",
        str(tmp_path),
    ]
    result = subprocess.run([*command, "-l"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    listed = dict(
        re.fullmatch(r"(\w+)(?: \((.*)\))?", line).groups()  # type: ignore[union-attr]
        for line in result.stdout.splitlines()
    )
    assert set(listed) == set(rule_bodies())  # every rule the files define, and no other
    assert [name for name, description in listed.items() if not (description or "").strip()] == []
    assert listed["dataset"].startswith("Validate the manifest")
    assert not (tmp_path / "results").exists()  # listing runs no job


def test_every_rule_with_a_job_has_a_log_and_a_benchmark() -> None:
    bodies = rule_bodies()
    lacking = [
        f"{name}: {directive}"
        for name, body in bodies.items()
        if name not in AGGREGATES
        for directive in ("log", "benchmark")
        if not has_directive(body, directive)
    ]
    assert lacking == []
    jobs = {name for name, body in bodies.items() if JOB.search(body)}
    assert jobs == set(bodies) - set(AGGREGATES)  # an exemption is only for a rule without a job
    assert {"dataset", "train", "report", "skips"} <= jobs  # the parse sees the job rules
