"""Shared pytest setup: GPU tests are skipped without CUDA, never faked."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # The end-to-end runs (marked slow) first: with `make test`'s two workers (pytest-xdist,
    # whole files per worker) the short tests then fill the time beside them, not after them.
    items.sort(key=lambda item: "slow" not in item.keywords)
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:
        has_cuda = False
    if has_cuda:
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def repo() -> Path:
    """The project's root folder (Snakefile, config/)."""
    return REPO
