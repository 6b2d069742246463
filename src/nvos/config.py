"""The pipeline's configuration tree: YAML files layered over the defaults, validated by schema.

The Snakefile validates with ``snakemake.utils.validate`` against ``config/schema.yaml``; the
``nvos`` command line uses :func:`load_config`, which does the same outside Snakemake.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jsonschema
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = REPO_ROOT / "config" / "config.yaml"
SCHEMA = REPO_ROOT / "config" / "schema.yaml"


class ConfigError(ValueError):
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


def schema_errors(config: Mapping[str, Any], schema: str | os.PathLike[str] = SCHEMA) -> list[str]:
    """Every violation of the schema, one line each, as ``dotted.key.path: reason``."""
    with open(schema) as handle:
        validator = jsonschema.Draft202012Validator(yaml.safe_load(handle))
    lines = []
    for error in sorted(validator.iter_errors(config), key=lambda e: [str(p) for p in e.path]):
        path = ".".join(str(part) for part in error.absolute_path)
        if error.validator == "additionalProperties":
            allowed = set(error.schema.get("properties", {}))
            for key in sorted(set(error.instance) - allowed):
                lines.append(f"{path + '.' if path else ''}{key}: unknown key")
        else:
            lines.append(f"{path or '<top level>'}: {error.message}")
    return lines


def validate_config(config: dict[str, Any], schema: str | os.PathLike[str] = SCHEMA) -> None:
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


def load_config(
    files: Sequence[str | os.PathLike[str]] = (), defaults: str | os.PathLike[str] = DEFAULT_CONFIG
) -> dict[str, Any]:
    """The defaults with each of ``files`` layered on top, in order, then validated."""
    config: dict[str, Any] = {}
    for path in (defaults, *files):
        with open(path) as handle:
            layer = yaml.safe_load(handle) or {}
        if not isinstance(layer, Mapping):
            raise ConfigError(f"{path}: a config file must hold a mapping at the top level")
        config = merge(config, layer)
    validate_config(config)
    return config
