"""The pipeline's configuration tree: YAML files layered over the defaults, validated by schema.

The Snakefile validates with ``snakemake.utils.validate`` against ``config/schema.yaml``; the
``nvos`` command line uses :func:`load_config`, which does the same outside Snakemake, with the
copies of ``config/config.yaml`` and ``config/schema.yaml`` the package ships
(:mod:`nvos.resources`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

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
    """A configuration that does not validate; the message names the key's path."""


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


def validate_config(config: dict[str, Any], schema: PathLike = SCHEMA) -> None:
    """Validate (and fill defaults into) ``config`` in place; raise :class:`ConfigError`.

    The message lists every problem with its key's dotted path (``frames.per_clip: ...``).
    Defaults are filled by ``snakemake.utils.validate``, as in the Snakefile.
    """
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    problems = schema_errors(config, schema)
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))
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
