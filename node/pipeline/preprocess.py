"""Pixels in, model inputs out: decode, orient (bright = dense), normalise; and the way back.

Two intensity mappings, as a model's manifest asks:
- ``stored_range``: linear over the image's own stored-value range, MONOCHROME1 inverted. It is
  exactly invertible, so the corrected image returns to the source's stored values and keeps
  windowing like the original (the generator uses it).
- ``voi_window``: through the modality LUT and the image's VOI window, as a viewer shows it
  (the classifier, trained on displayed radiographs, uses it).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.pixels.processing import apply_modality_lut, apply_voi_lut
from skimage.transform import resize

# Beyond this many pixels an image is refused rather than risking the node's memory.
MAX_PIXELS = 64 * 1024 * 1024


class UnsupportedImage(ValueError):
    """The instance cannot be processed; the message says why (no patient data)."""


@dataclass(frozen=True)
class Radiograph:
    ds: Dataset
    stored: np.ndarray  # (rows, cols) stored values as decoded
    photometric: str
    bits_stored: int
    signed: bool
    lo: float  # stored-value range of the stored_range mapping: the declared bit range
    hi: float

    @property
    def inverted(self) -> bool:
        return self.photometric == "MONOCHROME1"


def read_dataset(source: Path | bytes) -> Dataset:
    try:
        if isinstance(source, bytes):
            return pydicom.dcmread(io.BytesIO(source))
        return pydicom.dcmread(source)
    except Exception as e:
        raise UnsupportedImage(f"cannot read the DICOM file ({type(e).__name__})") from e


def decode(ds: Dataset) -> Radiograph:
    """Decode a single-frame grayscale radiograph, or raise UnsupportedImage."""
    try:
        return _decode(ds)
    except UnsupportedImage:
        raise
    except (ValueError, TypeError, KeyError, NotImplementedError, OverflowError) as e:
        # a value with the wrong VR or length (e.g. Rows that is not a number): a reason, not a bug
        raise UnsupportedImage(f"malformed image attribute ({type(e).__name__})") from e


def _decode(ds: Dataset) -> Radiograph:
    if "PixelData" not in ds:
        raise UnsupportedImage("the instance has no pixel data")
    photometric = str(ds.get("PhotometricInterpretation", "")).strip()
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise UnsupportedImage(
            f"photometric interpretation {photometric or 'missing'} is not grayscale"
        )
    if int(ds.get("SamplesPerPixel", 1) or 1) != 1:
        raise UnsupportedImage("more than one sample per pixel")
    if int(ds.get("NumberOfFrames", 1) or 1) != 1:
        raise UnsupportedImage("multi-frame images are not processed")
    rows, cols = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
    if rows < 16 or cols < 16:
        raise UnsupportedImage(f"image of {rows}x{cols} pixels is too small")
    if rows * cols > MAX_PIXELS:
        raise UnsupportedImage(f"image of {rows}x{cols} pixels exceeds the size limit")
    bits_stored = int(ds.get("BitsStored", ds.get("BitsAllocated", 8)) or 8)
    try:
        arr = ds.pixel_array
    except Exception as e:
        raise UnsupportedImage(
            f"pixel data cannot be decoded ({type(e).__name__}: {_short(e)})"
        ) from e
    if arr.ndim != 2 or arr.shape != (rows, cols):
        raise UnsupportedImage(
            f"decoded pixel array has shape {arr.shape}, expected {(rows, cols)}"
        )
    signed = int(ds.get("PixelRepresentation", 0) or 0) == 1
    lo, hi = stored_bit_range(bits_stored, signed, float(arr.min()), float(arr.max()))
    return Radiograph(
        ds=ds,
        stored=arr,
        photometric=photometric,
        bits_stored=bits_stored,
        signed=signed,
        lo=lo,
        hi=hi,
    )


def stored_bit_range(
    bits_stored: int, signed: bool, data_min: float, data_max: float
) -> tuple[float, float]:
    """The stored-value range the unit mapping uses: the range Bits Stored declares.

    Not the image's own minimum and maximum: motion blur pulls those in (a blurred frame of a
    12-bit detector spans 526–4095 where the sharp one spans 0–4095), and a correction that maps
    the blurred frame by its own extremes would deconvolve in another exposure scale than the one
    the blur happened in. The declared range is the same for the sharp and the blurred frame.
    Values outside it (a header that under-declares) widen it to the data's extremes.
    """
    bits = min(max(int(bits_stored), 1), 32)
    lo, hi = (-(2.0 ** (bits - 1)), 2.0 ** (bits - 1) - 1) if signed else (0.0, 2.0**bits - 1)
    return min(lo, data_min), max(hi, data_max)


def header_pixel_spacing_mm(
    ds: Dataset,
    keywords: tuple[str, ...] = ("ImagerPixelSpacing", "PixelSpacing"),
    valid: tuple[float, float] = (0.0, float("inf")),
) -> float | None:
    """The first of ``keywords`` holding two spacing values inside ``valid`` (mm, the lower bound
    excluded when it is 0): their mean; None when no attribute is usable."""
    lo, hi = valid
    for keyword in keywords:
        value = ds.get(keyword)
        try:
            if value is None or isinstance(value, str) or len(value) != 2:
                continue
            row, col = (float(v) for v in value)
        except (TypeError, ValueError):
            continue
        if all((lo < v if lo == 0 else lo <= v) and v <= hi for v in (row, col)):
            return (row + col) / 2.0
    return None


def _short(e: Exception) -> str:
    return str(e).splitlines()[0][:200] if str(e) else ""


def to_unit_stored_range(r: Radiograph) -> np.ndarray:
    """Stored values -> float32 [0, 1], bright = dense; exactly invertible by ``from_unit``."""
    x = (r.stored.astype(np.float32) - r.lo) / (r.hi - r.lo)
    return (1.0 - x) if r.inverted else x


def from_unit_stored_range(r: Radiograph, unit: np.ndarray) -> np.ndarray:
    """Float [0, 1] (bright = dense) -> stored values in the source's dtype and bit range."""
    x = np.clip(unit, 0.0, 1.0)
    if r.inverted:
        x = 1.0 - x
    values = np.rint(x * (r.hi - r.lo) + r.lo)
    if r.signed:
        vmin, vmax = -(2 ** (r.bits_stored - 1)), 2 ** (r.bits_stored - 1) - 1
    else:
        vmin, vmax = 0, 2**r.bits_stored - 1
    out: np.ndarray = np.clip(values, vmin, vmax).astype(r.stored.dtype)
    return out


def to_unit_voi(r: Radiograph) -> np.ndarray:
    """Stored values -> float32 [0, 1] as displayed (modality LUT, VOI window), bright = dense."""
    ds = r.ds
    modality = apply_modality_lut(r.stored, ds)
    if "WindowCenter" in ds or "VOILUTSequence" in ds:
        try:
            shown = np.asarray(apply_voi_lut(modality, ds, index=0), dtype=np.float64)
            lo, hi = float(shown.min()), float(shown.max())
        except Exception:
            shown, lo, hi = _percentile_window(modality)
    else:
        shown, lo, hi = _percentile_window(modality)
    x = ((shown - lo) / max(hi - lo, 1e-6)).astype(np.float32)
    x = np.clip(x, 0.0, 1.0)
    out: np.ndarray = (1.0 - x) if r.inverted else x
    return out


def _percentile_window(values: np.ndarray) -> tuple[np.ndarray, float, float]:
    v = np.asarray(values, dtype=np.float64)
    lo, hi = np.percentile(
        v[:: max(1, v.shape[0] // 512), :: max(1, v.shape[1] // 512)], [0.5, 99.5]
    )
    return np.clip(v, lo, hi), float(lo), float(hi if hi > lo else lo + 1)


def to_model_input(unit: np.ndarray, mean: float, std: float, size: int | None) -> np.ndarray:
    """[H, W] in [0, 1] -> [1, 1, S, S] (or [1, 1, H, W]) float32, normalised."""
    x = unit
    if size is not None and x.shape != (size, size):
        x = resize(x, (size, size), order=1, anti_aliasing=True, preserve_range=True)
    x = (np.asarray(x, dtype=np.float32) - mean) / std
    return x[None, None, :, :].astype(np.float32)
