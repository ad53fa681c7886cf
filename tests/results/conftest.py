"""Helpers for validating DICOM result objects with external tools (dicom3tools, dcmtk).

``run_dciodvfy`` / ``dciodvfy_errors`` are plain functions so that other test folders can import
them (``from tests.results.conftest import dciodvfy_errors``) or copy the idea.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest


def tool_or_skip(name: str) -> str:
    """The path of an external tool, or skip the calling test when it is not installed."""
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (Debian: dicom3tools / dcmtk)")
    return path


def run_dciodvfy(path: Path) -> list[str]:
    """All lines dciodvfy prints for ``path`` (it writes its findings to stderr)."""
    exe = tool_or_skip("dciodvfy")
    proc = subprocess.run([exe, str(path)], capture_output=True, text=True, timeout=120)
    return [line.strip() for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]


def dciodvfy_errors(path: Path) -> set[str]:
    """The distinct dciodvfy lines that contain "Error"."""
    return {line for line in run_dciodvfy(path) if "Error" in line}


def read_pnm(path: Path) -> np.ndarray:
    """Read a binary PGM (P5) as written by dcm2pnm, 8 or 16 bits per sample."""
    data = path.read_bytes()
    fields: list[bytes] = []
    pos = 0
    while len(fields) < 4:
        while data[pos : pos + 1].isspace():
            pos += 1
        if data[pos : pos + 1] == b"#":
            pos = data.index(b"\n", pos) + 1
            continue
        end = pos
        while not data[end : end + 1].isspace():
            end += 1
        fields.append(data[pos:end])
        pos = end
    pos += 1  # the single whitespace after maxval
    if fields[0] != b"P5":
        raise ValueError(f"{path} is not a binary PGM ({fields[0]!r})")
    width, height, maxval = int(fields[1]), int(fields[2]), int(fields[3])
    dtype = np.dtype(">u2") if maxval > 255 else np.dtype(np.uint8)
    return np.frombuffer(data, dtype=dtype, count=width * height, offset=pos).reshape(height, width)
