"""WADO-RS as stored: frames in the stored (compressed) transfer syntax when the client accepts it
(``transfer-syntax=*`` or the stored UID), uncompressed otherwise; instance metadata gives Pixel
Data by reference (BulkDataURI), as OHIF and other viewers expect (PS3.18 8.7.3, F.2.6)."""

from __future__ import annotations

import io

import httpx
import numpy as np
import pydicom
from PIL import Image
from pydicom.encaps import get_frame

from tests.dicomweb.conftest import RunningNode, stow
from tests.support.paths import TEST_DATA

JPEG = TEST_DATA / "sc_chest_jpeg_baseline.dcm"  # stored as JPEG Baseline (1.2.840.10008.1.2.4.50)


def _parts(response: httpx.Response) -> list[tuple[str, bytes]]:
    boundary = response.headers["content-type"].split("boundary=")[1].strip('"')
    out = []
    for chunk in response.content.split(b"--" + boundary.encode())[1:-1]:
        head, _, body = chunk.partition(b"\r\n\r\n")
        ctype = next(
            line.split(b":", 1)[1].strip().decode()
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-type")
        )
        out.append((ctype, body[:-2]))  # the CRLF before the next boundary
    return out


def test_frames_as_stored_when_accepted_else_uncompressed(node: RunningNode) -> None:
    data = JPEG.read_bytes()
    assert stow(node.url, [data]).status_code == 200
    ds = pydicom.dcmread(JPEG)
    url = (
        f"{node.dicomweb}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}/frames/1"
    )
    stored = bytes(get_frame(ds.PixelData, 0, number_of_frames=1))

    # what OHIF asks: any transfer syntax, so the stored JPEG bytes come back (not 1 MB decoded)
    r = httpx.get(
        url,
        headers={"Accept": "multipart/related; type=application/octet-stream; transfer-syntax=*"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    ((ctype, body),) = _parts(r)
    assert ctype == "application/octet-stream; transfer-syntax=1.2.840.10008.1.2.4.50"
    assert body == stored
    decoded = np.asarray(Image.open(io.BytesIO(body)))
    assert decoded.shape == (ds.Rows, ds.Columns)

    # the stored syntax named explicitly: the same
    r = httpx.get(
        url,
        headers={
            "Accept": 'multipart/related; type="application/octet-stream"; '
            "transfer-syntax=1.2.840.10008.1.2.4.50"
        },
        timeout=30,
    )
    assert _parts(r)[0][1] == stored

    # no transfer syntax named: Explicit VR Little Endian, decoded (PS3.18 default)
    r = httpx.get(
        url,
        headers={"Accept": 'multipart/related; type="application/octet-stream"'},
        timeout=30,
    )
    ((ctype, body),) = _parts(r)
    assert ctype == "application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1"
    assert len(body) == ds.Rows * ds.Columns  # 8-bit samples
    np.testing.assert_array_equal(
        np.frombuffer(body, np.uint8).reshape(ds.Rows, ds.Columns), ds.pixel_array
    )


def test_metadata_gives_pixel_data_by_reference(node: RunningNode) -> None:
    assert stow(node.url, [JPEG.read_bytes()]).status_code == 200
    ds = pydicom.dcmread(JPEG, stop_before_pixels=True)
    base = f"{node.dicomweb}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
    r = httpx.get(
        f"{base}/instances/{ds.SOPInstanceUID}/metadata",
        headers={"Accept": "application/dicom+json"},
        timeout=30,
    )
    assert r.status_code == 200
    (meta,) = r.json()
    pixel = meta["7FE00010"]
    assert pixel["vr"] == "OB" and "InlineBinary" not in pixel
    uri = pixel["BulkDataURI"]
    assert uri == f"{base}/instances/{ds.SOPInstanceUID}/frames/1"
    got = httpx.get(
        uri,
        headers={"Accept": "multipart/related; type=application/octet-stream; transfer-syntax=*"},
        timeout=30,
    )
    assert got.status_code == 200 and len(_parts(got)) == 1
