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
    """Read a binary PGM (P5, grey) or PPM (P6, RGB) as written by dcm2pnm/dcmp2pgm, 8 or 16 bits
    per sample: (rows, cols) or (rows, cols, 3)."""
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
    if fields[0] not in (b"P5", b"P6"):
        raise ValueError(f"{path} is not a binary PGM/PPM ({fields[0]!r})")
    samples = 3 if fields[0] == b"P6" else 1
    width, height, maxval = int(fields[1]), int(fields[2]), int(fields[3])
    dtype = np.dtype(">u2") if maxval > 255 else np.dtype(np.uint8)
    a = np.frombuffer(data, dtype=dtype, count=width * height * samples, offset=pos)
    return a.reshape(height, width, samples) if samples == 3 else a.reshape(height, width)


def standin_heatmap(rows: int, cols: int) -> np.ndarray:
    """A heatmap with two hot blobs (one at 0.8 of the other's peak), scaled to [0, 1]."""
    y, x = np.mgrid[0:rows, 0:cols].astype(np.float32)
    y /= rows
    x /= cols
    heat = np.exp(-(((x - 0.3) / 0.12) ** 2 + ((y - 0.35) / 0.12) ** 2)) + 0.8 * np.exp(
        -(((x - 0.75) / 0.1) ** 2 + ((y - 0.7) / 0.1) ** 2)
    )
    out: np.ndarray = (heat / heat.max()).astype(np.float32)
    return out


def render(exe: str, path: Path, out: Path, *args: str) -> np.ndarray:
    """Render ``path`` with dcm2pnm/dcmp2pgm (first VOI window where it has one) and read it."""
    subprocess.run([exe, *args, str(path), str(out)], check=True, timeout=120, capture_output=True)
    return read_pnm(out)
