"""Pixels for WADO-RS: uncompressed frames, rendered PNG/JPEG, and transcoding to uncompressed.

Everything here reads a stored file and returns bytes; errors are ``RenderError`` (HTTP 400 for
a bad request parameter, 406/422 for an instance that cannot be shown as asked).
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.encaps import get_frame
from pydicom.pixels.processing import apply_modality_lut, apply_voi_lut
from pydicom.pixels.utils import pixel_array
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian

UNCOMPRESSED = (ExplicitVRLittleEndian, ImplicitVRLittleEndian)
# Refuse to decode more than this many pixels per frame (the node's memory).
MAX_PIXELS = 64 * 1024 * 1024
MAX_VIEWPORT = 8192


class RenderError(ValueError):
    """Cannot produce what was asked; ``status`` is the HTTP status to answer."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def read(path: Path) -> Dataset:
    try:
        return pydicom.dcmread(path)
    except Exception as e:
        raise RenderError(f"the stored file cannot be read ({type(e).__name__})", 500) from e


def frame_count(ds: Dataset) -> int:
    try:
        return max(1, int(ds.get("NumberOfFrames", 1) or 1))
    except (TypeError, ValueError):
        return 1


def parse_frame_list(text: str) -> list[int]:
    """'1,3,5' -> [1, 3, 5]; 1-based; 400 on anything else."""
    if not re.fullmatch(r"\s*\d{1,9}(\s*,\s*\d{1,9})*\s*", text):
        raise RenderError("frames must be a comma-separated list of frame numbers (1-based)")
    numbers = [int(x) for x in text.split(",")]
    if any(n < 1 for n in numbers):
        raise RenderError("frame numbers start at 1")
    return numbers


def _check_size(ds: Dataset) -> None:
    if "PixelData" not in ds:
        raise RenderError("the instance has no pixel data", 404)
    try:
        rows, cols = int(ds.Rows), int(ds.Columns)
    except (AttributeError, TypeError, ValueError) as e:
        raise RenderError("the instance has no usable Rows/Columns", 422) from e
    if rows * cols > MAX_PIXELS:
        raise RenderError(f"a frame of {rows}x{cols} pixels is over this server's limit", 422)


def _decode(ds: Dataset, index: int) -> np.ndarray:
    _check_size(ds)
    try:
        if frame_count(ds) > 1:
            return np.asarray(pixel_array(ds, index=index))
        return np.asarray(ds.pixel_array)
    except Exception as e:
        raise RenderError(f"the pixel data cannot be decoded ({type(e).__name__})", 422) from e


def frame_bytes(ds: Dataset, number: int) -> bytes:
    """Frame ``number`` (1-based), uncompressed little-endian, as PS3.18 8.7.3.3.2 describes."""
    n = frame_count(ds)
    if number > n:
        raise RenderError(f"frame {number} does not exist (the instance has {n})", 404)
    meta = getattr(ds, "file_meta", None)
    ts = meta.get("TransferSyntaxUID") if meta is not None else None
    bits = int(ds.get("BitsAllocated", 16) or 16)
    if ts in UNCOMPRESSED and bits % 8 == 0:
        # native little-endian: the stored bytes of the frame, exactly
        _check_size(ds)
        spp = int(ds.get("SamplesPerPixel", 1) or 1)
        length = int(ds.Rows) * int(ds.Columns) * spp * bits // 8
        data = bytes(ds.PixelData)
        chunk = data[(number - 1) * length : number * length]
        if len(chunk) == length:
            return chunk
    arr = _decode(ds, number - 1)
    return np.ascontiguousarray(arr.astype(arr.dtype.newbyteorder("<"), copy=False)).tobytes()


def stored_frame(ds: Dataset, number: int) -> bytes | None:
    """Frame ``number`` (1-based) as stored, for an encapsulated (compressed) transfer syntax:
    the codec's bytes, undecoded (PS3.18 8.7.3.3.1); None for a native (uncompressed) one."""
    meta = getattr(ds, "file_meta", None)
    ts = UID(str(meta.get("TransferSyntaxUID", ""))) if meta is not None else None
    if ts is None or not ts.is_compressed or "PixelData" not in ds:
        return None
    n = frame_count(ds)
    if number > n:
        raise RenderError(f"frame {number} does not exist (the instance has {n})", 404)
    try:
        return bytes(get_frame(ds.PixelData, number - 1, number_of_frames=n))
    except (ValueError, KeyError) as e:
        raise RenderError(f"the stored frame {number} cannot be read ({e})", 500) from None


def to_uncompressed(ds: Dataset, ts: str) -> bytes:
    """The instance re-encoded in Explicit or Implicit VR Little Endian (pixel data decoded)."""
    if ts not in UNCOMPRESSED:
        raise RenderError(f"cannot transcode to {ts}", 406)
    current = ds.file_meta.get("TransferSyntaxUID")
    try:
        if current is not None and current.is_compressed:
            _check_size(ds)
            ds.decompress()
        ds.file_meta.TransferSyntaxUID = UID(ts)
        buf = io.BytesIO()
        ds.save_as(
            buf,
            implicit_vr=(ts == ImplicitVRLittleEndian),
            little_endian=True,
            enforce_file_format=True,
        )
    except RenderError:
        raise
    except Exception as e:
        raise RenderError(f"cannot transcode the instance ({type(e).__name__})", 406) from e
    return buf.getvalue()


@dataclass(frozen=True)
class Window:
    center: float
    width: float
    function: str  # linear | linear_exact | sigmoid


def parse_window(text: str | None) -> Window | None:
    """PS3.18 8.3.5.1.4: ``window=center,width,function``."""
    if text is None or not text.strip():
        return None
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 3:
        raise RenderError("window must be center,width,function")
    try:
        center, width = float(parts[0]), float(parts[1])
    except ValueError:
        raise RenderError("window center and width must be numbers") from None
    if not (np.isfinite(center) and np.isfinite(width)) or width < 1:
        raise RenderError("window width must be a number of at least 1")
    function = parts[2].lower().replace("-", "_")
    if function not in ("linear", "linear_exact", "sigmoid"):
        raise RenderError("window function must be linear, linear-exact or sigmoid")
    return Window(center, width, function)


def parse_viewport(text: str | None) -> tuple[int, int] | None:
    """``viewport=vw,vh`` (the source-region form is not supported)."""
    if text is None or not text.strip():
        return None
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 2:
        raise RenderError("viewport must be vw,vh (source regions are not supported)")
    try:
        w, h = int(parts[0]), int(parts[1])
    except ValueError:
        raise RenderError("viewport width and height must be integers") from None
    if not (1 <= w <= MAX_VIEWPORT and 1 <= h <= MAX_VIEWPORT):
        raise RenderError(f"viewport must be between 1 and {MAX_VIEWPORT} pixels each way")
    return w, h


def _apply_window(values: np.ndarray, w: Window) -> np.ndarray:
    """Values -> [0, 1] through the window (PS3.3 C.11.2.1.2)."""
    c, width = w.center, w.width
    if w.function == "sigmoid":
        return 1.0 / (1.0 + np.exp(-4.0 * (values - c) / width))
    if w.function == "linear_exact":
        return np.clip((values - (c - width / 2)) / width, 0.0, 1.0)
    if width <= 1:
        return (values > c - 0.5).astype(np.float64)
    return np.clip((values - (c - 0.5)) / (width - 1) + 0.5, 0.0, 1.0)


def _grey_to_unit(ds: Dataset, arr: np.ndarray, window: Window | None) -> np.ndarray:
    values = np.asarray(apply_modality_lut(arr, ds), dtype=np.float64)
    unit: np.ndarray | None = None
    if window is not None:
        unit = _apply_window(values, window)
    elif "WindowCenter" in ds or "VOILUTSequence" in ds:
        try:
            shown = np.asarray(apply_voi_lut(values, ds, index=0), dtype=np.float64)
            lo, hi = float(shown.min()), float(shown.max())
            unit = (shown - lo) / max(hi - lo, 1e-9)
        except Exception:
            unit = None  # a malformed window: fall back to the data's own range
    if unit is None:
        p_lo, p_hi = np.percentile(values[:: max(1, values.shape[0] // 512)], [0.5, 99.5])
        unit = np.clip((values - p_lo) / max(float(p_hi - p_lo), 1e-9), 0.0, 1.0)
    if str(ds.get("PhotometricInterpretation", "")).strip() == "MONOCHROME1":
        unit = 1.0 - unit
    return unit


def render(
    ds: Dataset,
    frame: int,
    media_type: str,
    window: Window | None,
    viewport: tuple[int, int] | None,
    quality: int,
) -> bytes:
    """One frame as image/png or image/jpeg, 8 bits, windowed (grey) or as is (colour)."""
    n = frame_count(ds)
    if frame > n:
        raise RenderError(f"frame {frame} does not exist (the instance has {n})", 404)
    arr = _decode(ds, frame - 1)
    spp = int(ds.get("SamplesPerPixel", 1) or 1)
    if spp == 1 and arr.ndim == 2:
        unit = _grey_to_unit(ds, arr, window)
        img = Image.fromarray(np.rint(np.clip(unit, 0, 1) * 255).astype(np.uint8), mode="L")
    elif spp == 3 and arr.ndim == 3:
        rgb = arr.astype(np.float64)
        top = float(2 ** int(ds.get("BitsStored", 8) or 8) - 1)
        img = Image.fromarray(np.rint(np.clip(rgb / top, 0, 1) * 255).astype(np.uint8), "RGB")
    else:
        raise RenderError("only greyscale and RGB images can be rendered", 422)
    if viewport is not None:
        img.thumbnail(viewport, Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    if media_type == "image/png":
        img.save(buf, format="PNG", compress_level=1)  # speed over size: a viewer waits
    else:
        img.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()
