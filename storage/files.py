"""The file store: UID-keyed paths and durable writes (temporary file, fsync, rename, fsync dir).

Only syntactically valid DICOM UIDs become path components, so nothing a peer sends can reach
outside the store (no '..', no '/', no NUL).
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

UID_RE = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")


class InvalidUID(ValueError):
    """A value that must be a DICOM UID is not one."""


def check_uid(value: object, what: str) -> str:
    """Return ``value`` as a UID string or raise InvalidUID naming ``what`` (never the value's PHI)."""
    s = str(value).strip().rstrip("\x00") if value is not None else ""
    if not s or len(s) > 64 or not UID_RE.match(s):
        raise InvalidUID(f"{what} is not a valid DICOM UID")
    return s


class FileStore:
    """Files under one root folder: ``<root>/<study>/<series>/<sop>.dcm`` plus ``<root>/tmp``."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.tmp = self.root / "tmp"
        self.quarantine_dir = self.root / "quarantine"
        self.root.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(exist_ok=True)
        self.quarantine_dir.mkdir(exist_ok=True)

    def relpath_for(self, study_uid: str, series_uid: str, sop_uid: str) -> str:
        parts = [
            check_uid(study_uid, "Study Instance UID"),
            check_uid(series_uid, "Series Instance UID"),
            check_uid(sop_uid, "SOP Instance UID") + ".dcm",
        ]
        return "/".join(parts)

    def abspath(self, relpath: str) -> Path:
        p = (self.root / relpath).resolve()
        if self.root not in p.parents:
            raise InvalidUID("path escapes the store")
        return p

    def write_durably(self, relpath: str, chunks: list[bytes] | bytes) -> int:
        """Write bytes so that they survive a crash once this returns; return the size."""
        tmp, size = self.write_temp(chunks)
        self.place(tmp, relpath)
        return size

    def write_temp(self, chunks: list[bytes] | bytes) -> tuple[Path, int]:
        """Write bytes to a fsync'd temporary file in the store (removed at start if orphaned)."""
        tmp = self.tmp / f"{uuid.uuid4().hex}.part"
        size = 0
        with tmp.open("wb") as f:
            for chunk in [chunks] if isinstance(chunks, bytes) else chunks:
                f.write(chunk)
                size += len(chunk)
            f.flush()
            os.fsync(f.fileno())
        return tmp, size

    def place(self, tmp: Path, relpath: str) -> None:
        """Rename a file from ``write_temp`` to its place, durably (the directory is fsync'd)."""
        dest = self.abspath(relpath)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, dest)
        _fsync_dir(dest.parent)

    def move_in_durably(self, src: Path, relpath: str) -> int:
        """Move an already-written file into place (fsync'd first)."""
        dest = self.abspath(relpath)
        dest.parent.mkdir(parents=True, exist_ok=True)
        with src.open("rb") as f:
            os.fsync(f.fileno())
        os.replace(src, dest)
        _fsync_dir(dest.parent)
        return dest.stat().st_size

    def quarantine(self, data: bytes, reason: str) -> Path:
        """Keep bytes that could not be accepted, with the reason beside them."""
        name = uuid.uuid4().hex
        path = self.quarantine_dir / f"{name}.dcm"
        path.write_bytes(data)
        (self.quarantine_dir / f"{name}.reason.txt").write_text(reason + "\n", encoding="utf-8")
        os.fsync(os.open(self.quarantine_dir, os.O_RDONLY))
        return path

    def clean_orphans(self) -> int:
        """Remove temporary files left by a crash mid-write; return how many."""
        n = 0
        for p in self.tmp.glob("*.part"):
            p.unlink(missing_ok=True)
            n += 1
        return n

    def free_bytes(self) -> int:
        st = os.statvfs(self.root)
        return st.f_bavail * st.f_frsize


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
