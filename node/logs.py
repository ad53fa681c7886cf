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


# What a quoted part may show because it is never patient data: DICOM keywords (PatientName is
# the attribute's name, not its value), tags, UIDs (4+ components: not a 1970.01.01 date), hex
# codes and VR names.
_CODE = re.compile(
    r"^(?:\(?[0-9A-Fa-f]{4},\s?[0-9A-Fa-f]{4}\)?|[0-9]+(?:\.[0-9]+){3,}|0x[0-9A-Fa-f]{1,8})$"
)
_VRS = frozenset(
    "AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL UN UR "
    "US UT UV".split()
)


def _keep_safe(m: re.Match[str]) -> str:
    from pydicom.datadict import keyword_dict

    inner = m.group(0)[1:-1].strip()
    if inner in _VRS or inner in keyword_dict or _CODE.match(inner):
        return m.group(0)
    return "<value>"


def redact(text: str) -> str:
    first = text.strip().splitlines()[0] if text.strip() else ""
    return _QUOTED.sub(_keep_safe, first)[:300]


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
    for noisy in ("pynetdicom", "highdicom", "uvicorn.error", "alembic"):
        logging.getLogger(noisy).setLevel(quiet)
