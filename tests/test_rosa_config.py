"""ROSA's config: variants, key checks, and no torch at import (the rule files load it)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from nvos.config import ConfigError
from nvos.rosa.config import RosaConfig, resolve_variant

REPO = Path(__file__).resolve().parents[1]
BASE = {"dim": 32, "context_layers": 1, "context_heads": 4, "train": {"batch_size": 8, "steps": 8}}


def loads_torch(modules: list[str]) -> bool:
    """Whether importing ``modules`` in a fresh interpreter imports torch."""
    imports = "; ".join(f"import {m}" for m in modules)
    result = subprocess.run(
        [sys.executable, "-c", f"import sys; {imports}; print('torch' in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip() == "True"


def test_config_does_not_import_torch() -> None:
    assert not loads_torch(["nvos.rosa.config"])
    assert loads_torch(["nvos.rosa.model"])  # the check itself sees torch when it is imported


def test_rule_files_import_no_torch() -> None:
    """Building the DAG (``snakemake -n``) imports only what the Snakefile and rules import."""
    modules = set()
    for path in [REPO / "Snakefile", *sorted((REPO / "workflow/rules").glob("*.smk"))]:
        modules |= set(re.findall(r"^(?:from|import) (nvos[\w.]*)", path.read_text(), re.M))
    assert "nvos.rosa.config" in modules
    assert not loads_torch(sorted(modules))


def test_cpu_stages_import_no_torch() -> None:
    """Jobs of the CPU stages start in ~1 s instead of ~4 s: they never load torch (many such
    jobs run per workflow, e.g. one per shard and one per method and split)."""
    cpu_stages = [
        "nvos.frames",
        "nvos.proposals.stage",
        "nvos.proposals.classical",
        "nvos.oracle",
        "nvos.evaluation.stage",
        "nvos.dataset",
        "nvos.skips",
        "nvos.report.build",
        "nvos.phrases.stage",
    ]
    assert not loads_torch(cpu_stages)


def test_variants_merge_overrides_and_reject_unknown_keys() -> None:
    rosa = {
        **BASE,
        "variants": {
            "rosa": {},
            "rosa_noctx": {"use_context": False},
            "rosa_vna_only": {"lambda_rpa": 0.0, "train": {"lr": 0.5}},
        },
    }
    assert resolve_variant(rosa, "rosa").use_context is True
    assert resolve_variant(rosa, "rosa_noctx").use_context is False
    vna_only = resolve_variant(rosa, "rosa_vna_only")
    assert vna_only.lambda_rpa == 0.0 and vna_only.train.lr == 0.5
    assert vna_only.train.batch_size == 8
    with pytest.raises(ValueError, match="no variant"):
        resolve_variant(rosa, "missing")
    with pytest.raises(ConfigError, match=r"rosa\.dimm: unknown key"):
        RosaConfig.from_mapping({"dimm": 3})
    with pytest.raises(ConfigError, match=r"rosa\.train\.batchsize: unknown key"):
        RosaConfig.from_mapping({"train": {"batchsize": 3}})
    bad = {**rosa, "variants": {"v": {"train": {"lr": -1}}}}
    with pytest.raises(ConfigError, match=r"rosa\.variants\.v\.train\.lr: -1 is less than"):
        resolve_variant(bad, "v")
    with pytest.raises(ValueError, match="both 0"):
        RosaConfig.from_mapping({"lambda_vna": 0.0, "lambda_rpa": 0.0})
    with pytest.raises(ValueError, match="divisible"):
        RosaConfig.from_mapping({"train": {"batch_size": 9, "gpus": 2}})


def test_resolved_variant_depends_only_on_that_variant() -> None:
    """The train and predict rules' params: the resolved variant, unchanged when another variant
    changes, and rebuilt exactly from its dict (the torchrun spec, the scripts)."""
    rosa = {**BASE, "variants": {"rosa": {}, "rosa_noctx": {"use_context": False}}}
    params_noctx = resolve_variant(rosa, "rosa_noctx").to_dict()
    assert "variants" not in params_noctx and params_noctx["use_context"] is False
    assert RosaConfig.from_mapping(params_noctx) == resolve_variant(rosa, "rosa_noctx")
    changed = {**rosa, "variants": {"rosa": {"dim": 8}, "rosa_noctx": {"use_context": False}}}
    assert resolve_variant(changed, "rosa_noctx").to_dict() == params_noctx


def test_model_config_takes_every_model_key_of_the_group() -> None:
    config = RosaConfig.from_mapping(
        {
            "dim": 48,
            "context_layers": 3,
            "context_heads": 6,
            "dropout": 0.2,
            "use_context": False,
            "tau": 0.2,
            "learn_tau": True,
            "input_norm": "whiten",
            "context_dropout": 0.3,
        }
    )
    model = config.model_config(feature_dim=24)
    assert (model.feature_dim, model.dim, model.context_layers, model.context_heads) == (
        24,
        48,
        3,
        6,
    )
    assert (model.dropout, model.use_context, model.tau, model.learn_tau) == (0.2, False, 0.2, True)
    assert (model.input_norm, model.context_dropout) == ("whiten", 0.3)
