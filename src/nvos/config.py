"""The pipeline's configuration tree: YAML files layered over the defaults, validated by schema.

The Snakefile validates with ``snakemake.utils.validate`` against ``config/schema.yaml``; the
``nvos`` command line uses :func:`load_config`, which does the same outside Snakemake, with the
copies of ``config/config.yaml`` and ``config/schema.yaml`` the package ships
(:mod:`nvos.resources`).

The schema is the one source of every default and limit. A config group becomes its typed
dataclass with :func:`typed`: the group is checked against its part of the schema (an unknown key
or a wrong type names its dotted key path), missing keys take the schema's defaults, and nested
dataclass fields are built the same way. Such a dataclass names its group in ``GROUP`` and calls
:func:`check_limits` in ``__post_init__``, so one built in code (tests, benchmarks) is held to
the same limits; only rules between fields stay in the dataclass.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import typing
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Protocol, TypeVar

import jsonschema
import yaml

from nvos.errors import NvosError
from nvos.resources import resource_path
from nvos.types import PathLike

DEFAULT_CONFIG = resource_path("config.yaml")
"""The default configuration shipped with the package (its source: ``config/config.yaml``)."""
SCHEMA = resource_path("schema.yaml")
"""The configuration's JSON schema shipped with the package (its source: ``config/schema.yaml``)."""


class ConfigError(NvosError, ValueError):
    """A configuration that does not validate; the message names the key's path.

    ``problems``: the schema's ``dotted.key.path: reason`` lines when it comes from
    :func:`invalid`, else empty.
    """

    def __init__(self, message: str, problems: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.problems = list(problems)


def invalid(problems: Sequence[str]) -> ConfigError:
    """The error listing ``problems`` (``dotted.key.path: reason`` lines)."""
    return ConfigError("invalid configuration:\n  " + "\n  ".join(problems), problems)


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge ``override`` into a copy of ``base`` (mappings merge, other values replace)."""
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def load_schema(schema: PathLike = SCHEMA) -> dict[str, Any]:
    """The JSON schema of the configuration (``config/schema.yaml``) as a mapping."""
    with open(schema) as handle:
        return yaml.safe_load(handle)


@functools.cache
def _shipped_schema() -> dict[str, Any]:
    return load_schema(SCHEMA)


def group_schema(group: Sequence[str]) -> dict[str, Any]:
    """The part of the shipped schema that describes config group ``group`` (a key path, e.g.
    ``("proposals", "classical")``). Treat it as read-only: it is loaded once per process."""
    node = _shipped_schema()
    for key in group:
        node = node["properties"][key]
    return node


def instance_errors(
    instance: Any, schema: Mapping[str, Any], prefix: Sequence[str] = ()
) -> list[str]:
    """Every violation of ``schema`` by ``instance``, one line each, as ``dotted.key.path: reason``
    (the path starts with ``prefix``, e.g. ``("rosa", "variants", "rosa_noctx")``)."""
    validator = jsonschema.Draft202012Validator(schema)
    lines = []
    for error in sorted(validator.iter_errors(instance), key=lambda e: [str(p) for p in e.path]):
        parts = [*prefix, *(str(part) for part in error.absolute_path)]
        if error.validator == "additionalProperties":
            allowed = set(error.schema.get("properties", {}))
            for key in sorted(set(error.instance) - allowed):
                lines.append(f"{'.'.join([*parts, key])}: unknown key")
        else:
            lines.append(f"{'.'.join(parts) or '<top level>'}: {error.message}")
    return lines


def schema_errors(config: Mapping[str, Any], schema: PathLike = SCHEMA) -> list[str]:
    """Every violation of the schema, one line each, as ``dotted.key.path: reason``."""
    return instance_errors(config, load_schema(schema))


def with_defaults(values: Mapping[str, Any], schema: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``values`` with the ``default`` of every key of ``schema`` it lacks, at every
    depth (a missing object takes its default, e.g. ``{}``, and then its own keys' defaults)."""
    filled = copy.deepcopy(dict(values))
    for key, prop in schema.get("properties", {}).items():
        if key not in filled and "default" in prop:
            filled[key] = copy.deepcopy(prop["default"])
        if isinstance(filled.get(key), Mapping) and "properties" in prop:
            filled[key] = with_defaults(filled[key], prop)
    return filled


class Typed(Protocol):
    """A dataclass that holds one config group (the key path ``GROUP`` of the schema)."""

    GROUP: ClassVar[tuple[str, ...]]
    __dataclass_fields__: ClassVar[dict[str, Any]]


T = TypeVar("T", bound=Typed)


def group_values(
    values: Mapping[str, Any] | None, group: Sequence[str], where: Sequence[str] = ()
) -> dict[str, Any]:
    """The config group ``values`` (``None``: empty) checked against the schema of ``group``,
    with its defaults filled in.

    Every problem is listed in one :class:`ConfigError`, each under its dotted key path, which
    starts with ``where`` (default: ``group``; e.g. ``("rosa", "variants", "rosa_noctx")`` for a
    variant's overrides).
    """
    schema = group_schema(group)
    problems = instance_errors(dict(values or {}), schema, tuple(where) or tuple(group))
    if problems:
        raise invalid(problems)
    return with_defaults(values or {}, schema)


def typed(values: Mapping[str, Any] | None, kind: type[T], where: Sequence[str] = ()) -> T:
    """The dataclass ``kind`` filled from the config group ``values`` (:func:`group_values` of
    ``kind.GROUP``). A field whose type is itself a :class:`Typed` dataclass is built from its
    sub-mapping; keys of the group that are no field of ``kind`` (read by other code, e.g.
    ``rosa.variants``) are left out."""
    return _build(group_values(values, kind.GROUP, where), kind)


_field_types = functools.cache(typing.get_type_hints)  # a dataclass's fields' types, once


def _build(values: Mapping[str, Any], kind: type[T]) -> T:
    hints = _field_types(kind)
    kwargs = {}
    for field in dataclasses.fields(kind):  # type: ignore[arg-type]
        if field.name in values:
            value = values[field.name]
            if dataclasses.is_dataclass(hints[field.name]):
                value = _build(value, hints[field.name])
            kwargs[field.name] = value
    return kind(**kwargs)


def check_limits(instance: Typed) -> None:
    """Raise :class:`ConfigError` unless every field of the dataclass ``instance`` is within the
    limits the schema sets for its group (tuples are checked as arrays)."""
    values = plain(dataclasses.asdict(instance))  # type: ignore[call-overload]
    problems = instance_errors(values, group_schema(instance.GROUP), instance.GROUP)
    if problems:
        raise invalid(problems)


def plain(value: Any) -> Any:
    """``value`` with every mapping a dict with string keys and every sequence a list: what the
    schema's ``object``/``array`` types and YAML expect (Snakemake's config types are neither)."""
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    return value


def validate_config(config: dict[str, Any], schema: PathLike = SCHEMA) -> None:
    """Validate (and fill defaults into) ``config`` in place; raise :class:`ConfigError`.

    The message lists every problem with its key's dotted path (``frames.per_clip: ...``).
    Defaults are filled by ``snakemake.utils.validate``, as in the Snakefile.
    """
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    problems = schema_errors(config, schema)
    if problems:
        raise invalid(problems)
    try:
        validate(config, str(schema))
    except WorkflowError as error:
        raise ConfigError(str(error)) from error


def read_layer(path: PathLike) -> dict[str, Any]:
    """One config file: a YAML mapping; a missing, unreadable, empty or non-mapping file is a
    :class:`ConfigError` naming it."""
    try:
        with open(path) as handle:
            layer = yaml.safe_load(handle)
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the config file ({error.strerror})") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(layer, Mapping):
        found = "nothing (the file is empty)" if layer is None else type(layer).__name__
        raise ConfigError(f"{path}: a config file must hold a mapping of keys, found {found}")
    return dict(layer)


def load_config(
    files: Sequence[PathLike] = (), defaults: PathLike = DEFAULT_CONFIG
) -> dict[str, Any]:
    """The defaults with each of ``files`` layered on top, in order, then validated."""
    config: dict[str, Any] = {}
    for path in (defaults, *files):
        config = merge(config, read_layer(path))
    validate_config(config)
    return config
