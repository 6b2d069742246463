"""Job logs (nvos.logs): the project's lines and every warning, no third-party INFO chatter."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from nvos.features.clip_model import load_clip
from nvos.logs import stage_log


class Records(logging.Handler):
    """Every record that reaches the root logger's handlers, unfiltered."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def restore_root_logger() -> Iterator[None]:
    """stage_log replaces the root logger's handlers: put the previous ones back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in root.handlers:
        handler.close()
    root.handlers[:], root.level = handlers, level


def test_features_job_log_has_no_third_party_info(
    tmp_path: Path, restore_root_logger: None
) -> None:
    log_path = tmp_path / "logs/features/s00000.log"
    seen = Records()
    with stage_log(log_path, "features") as log:
        logging.getLogger().addHandler(seen)
        load_clip("nvos-tiny-vit", None, "cpu", seed=0)  # what the features job does first
        log.info("project line")
        logging.getLogger("nvos.features.stage").debug("below the level: not logged")
        logging.getLogger("some.library").warning("third-party warning")
        logging.getLogger("some.library").error("third-party error")
    # open_clip does log INFO lines through the root logger: the filter is what keeps them out.
    assert any(r.name == "root" and r.levelno == logging.INFO for r in seen.records)
    lines = log_path.read_text().splitlines()
    assert [line for line in lines if " INFO root:" in line] == []
    assert [line for line in lines if re.search(r" INFO (?!nvos[.:])", line)] == []
    text = "\n".join(lines)
    assert "INFO nvos.features: start features" in text
    assert "INFO nvos.features: project line" in text
    assert re.search(r"INFO nvos\.features: done features in \d+\.\d s", text)
    assert "RANDOM weights" in text  # the project's own warning on random CLIP weights
    assert " WARNING root: " in text  # open_clip's warning (random weights) is kept
    assert "WARNING some.library: third-party warning" in text
    assert "ERROR some.library: third-party error" in text
    assert "below the level" not in text
