"""Files shipped inside the package, found with :mod:`importlib.resources` (so they are there in a
non-editable install as in the source tree):

- ``config.yaml``, ``schema.yaml``: the default configuration and its JSON schema. Their source is
  the workflow's ``config/`` folder, where Snakemake's workflow catalog expects them; in the source
  tree these two are symbolic links to it, and building a wheel copies the files' contents in.
- ``demo_vocabulary.yaml``: the demo dataset's vocabulary (:mod:`nvos.demo.vocabulary`);
- ``clip/*.json``: extra open_clip model configs (:mod:`nvos.features.clip_names`).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from nvos.errors import NvosError

__all__ = ["resource_path"]


def resource_path(name: str) -> Path:
    """The shipped file or folder ``name`` (e.g. ``"clip"``, ``"config.yaml"``) as a path on disk.

    Raises :class:`~nvos.errors.NvosError` when the package is not installed as files (e.g.
    imported from a zip archive), since Snakemake and open_clip need real paths.
    """
    path = files(__name__).joinpath(name)
    if not isinstance(path, Path):
        raise NvosError(
            f"nvos resource {name!r} is not a file on disk ({path!r}): install nvos with pip "
            "(not as a zip archive)"
        )
    return path
