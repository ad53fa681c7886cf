"""Malformed inputs, one builder per case the security issue lists (files made in the test run).

Each case says what the node must answer: refused at the DIMSE edge (a C-STORE status, or no
presentation context at all), refused by STOW-RS (a failure reason), or accepted and its
processing job failed with a reason (the bytes are kept, listed by ``sharpray jobs --failed``).
``sharpray process`` must exit non-zero on every one of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pydicom
from pydicom.encaps import encapsulate
from pydicom.uid import UID, JPEG2000Lossless

from tests.support.synthetic import make_cr

MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4"
BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"
UNKNOWN_TS = "1.2.826.0.1.3680043.10.999.1"

ACCEPTED = 0x0000
DOES_NOT_MATCH = 0xA900
CANNOT_UNDERSTAND = 0xC000
NO_CONTEXT = -1  # the association offers no presentation context for it


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[Path], Path]
    dimse: int  # C-STORE status, or NO_CONTEXT
    stow: int | None  # STOW-RS failure reason; None = stored
    job_error: str | None = None  # accepted: its processing job fails with this in the reason


def _good(folder: Path, name: str, rows: int = 64, cols: int = 64) -> tuple[Path, pydicom.Dataset]:
    path = folder / f"{name}.dcm"
    ds = make_cr(path, rows, cols, seed=len(name))
    return path, ds


def truncated(folder: Path) -> Path:
    path, _ = _good(folder, "truncated")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 3000])  # cut inside the Pixel Data
    return path


def short_pixels(folder: Path) -> Path:
    path, ds = _good(folder, "short_pixels")
    ds.PixelData = ds.PixelData[: len(ds.PixelData) // 3]  # shorter than Rows x Columns
    ds.save_as(path, enforce_file_format=True)
    return path


def _patch(path: Path, old: bytes, new: bytes) -> Path:
    data = path.read_bytes()
    assert data.count(old) >= 1, old
    path.write_bytes(data.replace(old, new, 1))
    return path


def wrong_vr(folder: Path) -> Path:
    path, _ = _good(folder, "wrong_vr")
    # Rows (0028,0010) written as DS instead of US: two bytes that are not a decimal string
    return _patch(path, b"\x28\x00\x10\x00US\x02\x00", b"\x28\x00\x10\x00DS\x02\x00")


def wrong_length(folder: Path) -> Path:
    path, _ = _good(folder, "wrong_length")
    # Patient Name claims 0xFFFF bytes: every element after it is read out of step
    data = path.read_bytes()
    i = data.index(b"\x10\x00\x10\x00PN")
    path.write_bytes(data[: i + 6] + b"\xff\xff" + data[i + 8 :])
    return path


def missing_uid(folder: Path) -> Path:
    path, ds = _good(folder, "missing_uid")
    del ds.SOPInstanceUID  # the file meta still names it, the dataset does not
    ds.save_as(path, enforce_file_format=True)
    return path


def missing_pixels(folder: Path) -> Path:
    path, ds = _good(folder, "missing_pixels")
    for keyword in ("PixelData", "Rows", "Columns"):
        delattr(ds, keyword)
    ds.save_as(path, enforce_file_format=True)
    return path


def unknown_ts(folder: Path) -> Path:
    path, ds = _good(folder, "unknown_ts")
    ds.file_meta.TransferSyntaxUID = UID(UNKNOWN_TS)  # the body stays Explicit VR Little Endian
    ds.save_as(path, enforce_file_format=True, implicit_vr=False, little_endian=True)
    return path


def colour(folder: Path) -> Path:
    path, ds = _good(folder, "colour")
    ds.PhotometricInterpretation = "RGB"
    ds.SamplesPerPixel = 3
    ds.PlanarConfiguration = 0
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelData = bytes(64 * 64 * 3)
    ds.save_as(path, enforce_file_format=True)
    return path


def multi_frame(folder: Path) -> Path:
    path, ds = _good(folder, "multi_frame")
    ds.NumberOfFrames = 2
    ds.PixelData = ds.PixelData * 2
    ds.save_as(path, enforce_file_format=True)
    return path


def non_image_sop(folder: Path) -> Path:
    path, ds = _good(folder, "non_image_sop")
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = UID(BASIC_TEXT_SR)
    for keyword in ("PixelData", "Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit"):
        delattr(ds, keyword)
    ds.save_as(path, enforce_file_format=True)
    return path


def mr_image(folder: Path) -> Path:
    path, ds = _good(folder, "mr_image")
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = UID(MR_IMAGE)
    ds.save_as(path, enforce_file_format=True)
    return path


def zero_size(folder: Path) -> Path:
    path, ds = _good(folder, "zero_size")
    ds.Rows = ds.Columns = 0
    ds.PixelData = b""
    ds.save_as(path, enforce_file_format=True)
    return path


def huge(folder: Path) -> Path:
    path, ds = _good(folder, "huge")
    ds.Rows = ds.Columns = 60000  # 3.6 gigapixels claimed, 8 KiB sent
    ds.save_as(path, enforce_file_format=True)
    return path


def bad_j2k(folder: Path) -> Path:
    path, ds = _good(folder, "bad_j2k")
    ds.file_meta.TransferSyntaxUID = JPEG2000Lossless
    ds.PixelData = encapsulate([b"\xff\x4f\xff\x51" + bytes(range(256)) * 4])  # SOC, SIZ, junk
    ds["PixelData"].VR = "OB"
    ds.save_as(path, enforce_file_format=True)
    return path


def traversal_study(folder: Path) -> Path:
    path, ds = _good(folder, "traversal_study")
    ds.StudyInstanceUID = "1.2.3/../../../etc"
    ds.save_as(path, enforce_file_format=True)
    return path


def traversal_sop(folder: Path) -> Path:
    path, ds = _good(folder, "traversal_sop")
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = UID("../../../../tmp/evil")
    ds.save_as(path, enforce_file_format=True)
    return path


CASES: list[Case] = [
    Case("truncated", truncated, CANNOT_UNDERSTAND, CANNOT_UNDERSTAND),
    Case("short_pixels", short_pixels, ACCEPTED, None, "pixel data cannot be decoded"),
    Case("wrong_vr", wrong_vr, ACCEPTED, None, "malformed image attribute"),
    Case("wrong_length", wrong_length, DOES_NOT_MATCH, DOES_NOT_MATCH),
    Case("missing_uid", missing_uid, DOES_NOT_MATCH, DOES_NOT_MATCH),
    Case("missing_pixels", missing_pixels, ACCEPTED, None, "no pixel data"),
    Case("unknown_ts", unknown_ts, NO_CONTEXT, 0xC122),
    Case("colour", colour, ACCEPTED, None, "not grayscale"),
    Case("multi_frame", multi_frame, ACCEPTED, None, "multi-frame"),
    Case("non_image_sop", non_image_sop, NO_CONTEXT, 0x0122),
    Case("mr_image", mr_image, NO_CONTEXT, 0x0122),
    Case("zero_size", zero_size, ACCEPTED, None, "too small"),
    Case("huge", huge, ACCEPTED, None, "exceeds the size limit"),
    Case("bad_j2k", bad_j2k, ACCEPTED, None, "pixel data cannot be decoded"),
    Case("traversal_study", traversal_study, DOES_NOT_MATCH, DOES_NOT_MATCH),
    Case("traversal_sop", traversal_sop, DOES_NOT_MATCH, DOES_NOT_MATCH),
]


def sop_uid_of(path: Path) -> str:
    """The SOP Instance UID a C-STORE request names (from the file meta)."""
    meta = pydicom.filereader.read_file_meta_info(path)
    return str(meta.MediaStorageSOPInstanceUID)
