"""Type aliases shared by the package's modules."""

from __future__ import annotations

import os

PathLike = str | os.PathLike[str]
"""A file or folder path: a string or any ``os.PathLike`` (``pathlib.Path``)."""
