"""Config groups as typed dataclasses: the schema is the one source of defaults and limits."""

from __future__ import annotations

import dataclasses

import pytest

from nvos.config import (
    ConfigError,
    Typed,
    check_limits,
    group_schema,
    load_schema,
    typed,
    validate_config,
    with_defaults,
)
from nvos.proposals.classical import ClassicalConfig
from nvos.proposals.sam import SamSettings
from nvos.report.build import ReportConfig
from nvos.rosa.config import RosaConfig, TrainConfig
from nvos.temporal.dense import PropagateSettings
from nvos.temporal.links import LinkSettings

#: Every dataclass that holds a config group.
TYPED: list[type[Typed]] = [
    ClassicalConfig,
    SamSettings,
    RosaConfig,
    TrainConfig,
    ReportConfig,
    LinkSettings,
    PropagateSettings,
]
#: Those that code builds without a config (tests, benchmarks), so keep defaults.
DEFAULTED = [kind for kind in TYPED if kind is not ReportConfig]


def _name(kind: type) -> str:
    return kind.__name__


@pytest.mark.parametrize("kind", TYPED, ids=_name)
def test_every_field_is_a_schema_key_with_a_default(kind: type[Typed]) -> None:
    properties = group_schema(kind.GROUP)["properties"]
    for field in dataclasses.fields(kind):  # type: ignore[arg-type]
        assert field.name in properties, f"{kind.__name__}.{field.name} is not in the schema"
        assert "default" in properties[field.name], f"{field.name} has no schema default"


@pytest.mark.parametrize("kind", DEFAULTED, ids=_name)
def test_defaults_written_in_code_equal_the_schema(kind: type[Typed]) -> None:
    """Dataclasses built in code (tests, benchmarks) keep defaults: they must be the schema's."""
    assert kind() == typed({}, kind)


def test_defaults_filled_as_snakemake_fills_them() -> None:
    """:func:`with_defaults` on the whole schema gives what ``snakemake.utils.validate`` gives."""
    config: dict = {"rosa": {"train": {"lr": 0.5}}}
    filled = with_defaults(config, load_schema())
    validate_config(config)  # fills in place with snakemake's validator
    assert filled == config
    assert filled["rosa"]["train"]["lr"] == 0.5 and filled["rosa"]["train"]["epochs"] == 30


def test_values_override_defaults_and_nested_groups_are_typed() -> None:
    rosa = typed({"dim": 64, "train": {"steps": 7}, "variants": {"x": {}}}, RosaConfig)
    assert rosa.dim == 64 and rosa.context_layers == RosaConfig().context_layers
    assert isinstance(rosa.train, TrainConfig) and rosa.train.steps == 7
    classical = typed({"scales": [100, 200]}, ClassicalConfig)
    assert classical.scales == (100.0, 200.0)
    report = typed(None, ReportConfig)
    assert report.labels == {} and report.methods is None


def test_every_problem_is_named_by_its_key_path() -> None:
    with pytest.raises(ConfigError) as caught:
        typed({"dimm": 3, "tau": "warm", "train": {"batchsize": 3}}, RosaConfig)
    assert caught.value.problems == [
        "rosa.dimm: unknown key",
        "rosa.tau: 'warm' is not of type 'number'",
        "rosa.train.batchsize: unknown key",
    ]
    with pytest.raises(ConfigError, match=r"rosa\.variants\.v\.dim: 2 is less than"):
        typed({"dim": 2}, RosaConfig, where=("rosa", "variants", "v"))


def test_dataclasses_built_in_code_are_held_to_the_schema_limits() -> None:
    with pytest.raises(ConfigError, match=r"classical\.scales: \[\] should be non-empty"):
        ClassicalConfig(scales=())
    with pytest.raises(ConfigError, match=r"rosa\.train\.gpus: 0 is less than the minimum of 1"):
        TrainConfig(gpus=0)
    with pytest.raises(ConfigError, match=r"rosa\.input_norm: 'zca' is not one of"):
        RosaConfig(input_norm="zca")
    check_limits(SamSettings(points_per_side=1))  # the boundary itself is allowed
