"""Logging set-up that keeps patient data out of the log.

Our own messages name UIDs, AE titles and reasons only. Libraries are less careful: pydicom and
highdicom put offending values (a patient's name, a birth date) into warnings. Records from them,
and Python warnings, pass through ``RedactLibraryValues``, which removes every quoted or
bracketed value and keeps the first line.
"""

from __future__ import annotations

import logging
import re
import sys

LIBRARY_LOGGERS = ("py.warnings", "pydicom", "highdicom", "pynetdicom")
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"|<[^<>]*>|\[[^\[\]]*\]")


def redact(text: str) -> str:
    first = text.strip().splitlines()[0] if text.strip() else ""
    return _QUOTED.sub("<value>", first)[:300]


class RedactLibraryValues(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith(LIBRARY_LOGGERS):
            record.msg = redact(record.getMessage())
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True


def setup_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s")
    )
    handler.addFilter(RedactLibraryValues())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.captureWarnings(True)
    quiet = logging.WARNING if level != "DEBUG" else logging.INFO
    for noisy in ("pynetdicom", "highdicom", "uvicorn.error"):
        logging.getLogger(noisy).setLevel(quiet)
