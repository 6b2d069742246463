"""The project's expected errors: bad input, bad config, a missing file.

Every such error derives from :class:`NvosError`, and its message alone tells the user what is
wrong and where (the file, line, clip or config key). The ``nvos`` command and the workflow's
scripts (:func:`nvos.logs.stage_log`) print that message as it is and exit non-zero; any other
exception is a bug and keeps its traceback.
"""

from __future__ import annotations


class NvosError(Exception):
    """An expected error; the message names the file, line, clip or key, and what is wrong."""
