"""The segment stage as a scope of the run (nvos.segment.scope, RunLayout.scoped)."""

from __future__ import annotations

import pytest

from nvos.config import load_config, merge
from nvos.layout import RunLayout
from nvos.methods import method_names
from nvos.segment.scope import (
    free_text_method,
    segment_chain,
    segment_config,
    segment_layout,
    segment_problems,
    segment_shared,
    selection_methods,
)


def config_with(**segment: object) -> dict:
    config = load_config()
    config["segment"] = merge(config["segment"], segment)
    return config


def test_chain_and_derived_config_hold_only_the_methods_steps() -> None:
    assert segment_chain("rosa+temporal+flow") == ["rosa", "rosa+temporal", "rosa+temporal+flow"]
    config = config_with(method="sam_clip+temporal+flow", splits=None)
    derived = segment_config(config)
    assert derived["predict"]["splits"] == derived["evaluate"]["splits"] == ["train", "val", "test"]
    assert derived["predict"]["phrases"] == "all" and config["predict"]["phrases"] == "tagged"
    assert derived["temporal"]["decode"]["methods"] == ["sam_clip"]
    assert derived["temporal"]["propagate"]["methods"] == ["sam_clip+temporal"]
    names = {n for found in method_names(derived).values() for n in found}
    assert set(segment_chain("sam_clip+temporal+flow")) <= names
    assert selection_methods(config) == ["sam_clip+temporal"]  # chosen on this run's val
    assert selection_methods(config_with(selection="/runs/a/selection.json")) == []
    model = segment_config(config_with(method="rosa+flow", model="/runs/a/checkpoint.pt"))
    assert model["predict"]["checkpoint"] == "/runs/a/checkpoint.pt"


def test_problems_name_the_key() -> None:
    assert segment_problems(config_with(method="rosa+temporal+flow")) == []
    (problem,) = segment_problems(config_with(method="rosa+temporal"))
    assert problem.startswith("segment.method: 'rosa+temporal' does not end with +flow")
    (problem,) = segment_problems(config_with(method="oracle+flow"))
    assert "starts from 'oracle'" in problem
    (problem,) = segment_problems(config_with(method="nothing+flow"))
    assert "step 'nothing' of 'nothing+flow' is not a method" in problem
    (problem,) = segment_problems(config_with(method="rosa+flow", splits=["holdout"]))
    assert "segment.splits: ['holdout'] are not in dataset.splits" in problem


def test_the_scope_shares_the_runs_phrases_and_links_only_when_they_are_the_same() -> None:
    run = RunLayout("results/r")
    own = segment_layout(config_with(phrases="free_text", splits=None), run)
    assert own.shared == frozenset()
    assert own.phrases == "results/r/segment/phrases.parquet"
    assert own.text("s00000") == "results/r/segment/features/s00000.text.parquet"
    assert own.links("s00000") == "results/r/segment/links/s00000.parquet"
    assert own.regions("s00000") == run.regions("s00000")  # never the scope's
    assert own.predictions("m", "s00000") == "results/r/segment/predictions/m/s00000.parquet"
    shared = segment_layout(config_with(phrases="narration", splits=["test"]), run)
    assert (
        shared.shared
        == {"phrases", "links"}
        == segment_shared(config_with(phrases="narration", splits=["val"]))
    )
    assert (shared.phrases, shared.text("s00000")) == (run.phrases, run.text("s00000"))
    assert shared.feature_cache("s00000", "text") == run.feature_cache("s00000", "text")
    assert shared.links("s00000") == run.links("s00000")
    assert shared.masks("m", "s00000") == "results/r/segment/masks/m/s00000.parquet"
    with pytest.raises(ValueError, match="not \\['frames'\\]"):
        run.scoped("segment", ["frames"])


def test_the_free_text_method_exists_only_with_free_text_phrases() -> None:
    assert free_text_method(config_with(phrases="narration")) is None
    method = free_text_method(config_with(method="rosa+temporal+flow", phrases="free_text"))
    assert method == "rosa+temporal+flow+free_text"
    config = config_with(method="rosa+temporal+flow", phrases="free_text")
    assert method_names(config)["free_text"] == [method]
