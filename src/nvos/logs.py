"""Logging for stage runs: one log file per job, progress lines, and why a job failed."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Iterator

from nvos.errors import NvosError
from nvos.types import PathLike

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class ProjectOrWarning(logging.Filter):
    """Pass the project's records (loggers ``nvos`` and ``nvos.*``) at any level and everyone
    else's from WARNING up: third-party progress chatter stays out of job logs (open_clip logs
    about ten ``INFO root:`` lines per model it builds), their warnings and errors do not."""

    def filter(self, record: logging.LogRecord) -> bool:
        project = record.name == "nvos" or record.name.startswith("nvos.")
        return project or record.levelno >= logging.WARNING


def setup_logging(log_path: PathLike | None = None, level: int = logging.INFO) -> None:
    """Send the ``nvos`` loggers to ``log_path`` (appending) and to stderr, with other
    libraries' records below WARNING left out (:class:`ProjectOrWarning`)."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path is not None:
        os.makedirs(os.path.dirname(os.path.abspath(log_path)), exist_ok=True)
        handlers.append(logging.FileHandler(log_path, mode="a"))
    for handler in handlers:
        handler.addFilter(ProjectOrWarning())
    logging.basicConfig(level=level, format=FORMAT, handlers=handlers, force=True)


@contextlib.contextmanager
def stage_log(log_path: PathLike | None, stage: str) -> Iterator[logging.Logger]:
    """Log a workflow script's start, end and duration to ``log_path`` (and stderr).

    An expected error (:class:`~nvos.errors.NvosError`: bad input, bad config) is logged as its
    one message, without a traceback, and the script exits with status 1; any other exception is
    a bug: its traceback is logged and it propagates.
    """
    setup_logging(log_path)
    logger = logging.getLogger(f"nvos.{stage}")
    start = time.perf_counter()
    logger.info("start %s", stage)
    try:
        yield logger
    except NvosError as error:
        logger.error("%s failed: %s", stage, error)
        raise SystemExit(1) from None
    except BaseException:
        logger.exception("%s failed after %.1f s", stage, time.perf_counter() - start)
        raise
    logger.info("done %s in %.1f s", stage, time.perf_counter() - start)


class Progress:
    """Periodic progress lines for long loops (``every`` seconds at most), for the rule's log."""

    def __init__(self, logger: logging.Logger, total: int, unit: str, every: float = 10.0) -> None:
        self.logger, self.total, self.unit, self.every = logger, total, unit, every
        self.done = 0
        self.start = self.last = time.perf_counter()

    def update(self, n: int = 1) -> None:
        """Count ``n`` more items; log a line if ``every`` seconds passed or the loop finished."""
        self.done += n
        now = time.perf_counter()
        if now - self.last >= self.every or self.done >= self.total:
            rate = self.done / max(now - self.start, 1e-9)
            self.logger.info(
                "%d/%d %s (%.1f %s/s)", self.done, self.total, self.unit, rate, self.unit
            )
            self.last = now
