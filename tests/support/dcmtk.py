"""dcmtk command-line peers, used as a hospital would use them."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pydicom
import pytest

# storescu proposes only uncompressed transfer syntaxes unless told: one flag per kind.
STORESCU_TS_FLAG = {
    "1.2.840.10008.1.2": [],
    "1.2.840.10008.1.2.1": [],
    "1.2.840.10008.1.2.4.50": ["-xy"],
    "1.2.840.10008.1.2.4.51": ["-xx"],
    "1.2.840.10008.1.2.4.57": ["-xs"],
    "1.2.840.10008.1.2.4.70": ["-xs"],
    "1.2.840.10008.1.2.4.80": ["-xt"],
    "1.2.840.10008.1.2.4.81": ["-xu"],
    "1.2.840.10008.1.2.4.90": ["-xv"],
    "1.2.840.10008.1.2.4.91": ["-xw"],
    "1.2.840.10008.1.2.5": ["-xr"],
}


def require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed (apt-get install dcmtk dicom3tools)")
    return path


def transfer_syntax(path: Path) -> str:
    return str(pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID)


def storescu(
    files: list[Path],
    port: int,
    aec: str,
    aet: str = "STORESCU",
    extra: list[str] | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Send files with dcmtk storescu, grouped by transfer syntax (one run per group)."""
    require("storescu")
    groups: dict[str, list[Path]] = {}
    for f in files:
        groups.setdefault(transfer_syntax(f), []).append(f)
    env = {**os.environ, "TCP_NODELAY": "1"}
    last: subprocess.CompletedProcess[str] | None = None
    for ts, group in groups.items():
        flags = STORESCU_TS_FLAG.get(ts, [])
        cmd = [
            "storescu",
            "-aet",
            aet,
            "-aec",
            aec,
            "-R",
            *flags,
            *(extra or []),
            "127.0.0.1",
            str(port),
            *map(str, group),
        ]
        last = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
        if check and last.returncode != 0:
            raise AssertionError(f"storescu failed ({last.returncode}): {last.stderr[-2000:]}")
    assert last is not None
    return last


def dciodvfy_errors(path: Path) -> list[str]:
    """The error lines dciodvfy reports for one file."""
    require("dciodvfy")
    r = subprocess.run(["dciodvfy", "-new", str(path)], capture_output=True, text=True, timeout=120)
    return [ln for ln in (r.stdout + r.stderr).splitlines() if ln.startswith("Error")]
