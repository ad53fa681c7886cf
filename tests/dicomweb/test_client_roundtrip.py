"""dicomweb-client against the node as a real process: store, search, retrieve every real
radiograph, and get back exactly the bytes that were sent."""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest
from dicomweb_client import DICOMwebClient
from PIL import Image

from tests.dicomweb.conftest import NO_MODELS, real_files, receiver_config, uids
from tests.support.node_proc import NodeProcess

LOSSLESS_OR_NATIVE = {
    "1.2.840.10008.1.2",
    "1.2.840.10008.1.2.1",
    "1.2.840.10008.1.2.4.70",
    "1.2.840.10008.1.2.4.80",
    "1.2.840.10008.1.2.4.90",
    "1.2.840.10008.1.2.5",
}


@pytest.fixture
def node_process(tmp_path: Path) -> NodeProcess:
    folder = tmp_path / "node"
    folder.mkdir()
    cfg = receiver_config(folder)
    cfg["models"].update({k: str(v) for k, v in NO_MODELS.items()})
    proc = NodeProcess(folder, cfg).start(roles=["receiver"])
    yield proc
    proc.stop()


def _raw_retrieve(client: DICOMwebClient, study: str, series: str, sop: str) -> bytes:
    url = f"{client.base_url}/studies/{study}/series/{series}/instances/{sop}"
    accept = 'multipart/related; type="application/dicom"; transfer-syntax=*'
    response = client._session.get(url, headers={"Accept": accept})  # noqa: SLF001
    response.raise_for_status()
    # the client's own multipart decoder: the parts' bytes, untouched
    parts = list(client._decode_multipart_message(response, stream=False))  # noqa: SLF001
    assert len(parts) == 1
    return parts[0]


def test_every_real_radiograph_round_trips_identical_bytes(node_process: NodeProcess) -> None:
    files = real_files()
    client = DICOMwebClient(url=node_process.http_url + "/dicom-web")
    store_url = f"{client.base_url}/studies"
    sent = 0
    t0 = time.perf_counter()
    # One at a time: some files are one image in several encodings with one SOP Instance UID,
    # so each new version replaces the previous one (as with C-STORE).
    for f in files:
        raw = f.read_bytes()
        ds = pydicom.dcmread(f)
        study, series, sop = ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID

        # the file's own bytes, through the client's multipart encoder
        result = client._http_post_multipart_application_dicom(store_url, [raw])  # noqa: SLF001
        assert [str(i.ReferencedSOPInstanceUID) for i in result.ReferencedSOPSequence] == [sop]
        assert "FailedSOPSequence" not in result
        assert _raw_retrieve(client, study, series, sop) == raw, f.name
        sent += len(raw)

        # search at each level finds it, with what it was stored with
        found = client.search_for_instances(search_filters={"SOPInstanceUID": sop})
        assert uids(found, "00080018") == {sop}
        assert found[0]["00083002"]["Value"] == [str(ds.file_meta.TransferSyntaxUID)]
        assert uids(
            client.search_for_studies(search_filters={"StudyInstanceUID": study}), "0020000D"
        ) == {study}
        assert uids(client.search_for_series(study), "0020000E") >= {series}

        # the public store API (the client re-encodes the dataset) and retrieval as a dataset
        client.store_instances([ds])
        got = client.retrieve_instance(
            study, series, sop, media_types=(("application/dicom", "*"),)
        )
        assert got.SOPInstanceUID == sop
        assert got.file_meta.TransferSyntaxUID == ds.file_meta.TransferSyntaxUID
        buf = io.BytesIO()
        pydicom.dcmwrite(buf, ds)
        assert _raw_retrieve(client, study, series, sop) == buf.getvalue()

        # metadata, and a rendered image a browser can show
        meta = client.retrieve_instance_metadata(study, series, sop)
        assert meta["00080018"]["Value"] == [sop]
        # Pixel Data by reference, never inline
        assert set(meta["7FE00010"]) == {"vr", "BulkDataURI"}
        assert meta["7FE00010"]["BulkDataURI"].endswith(f"/instances/{sop}/frames/1")
        png = client.retrieve_instance_rendered(
            study, series, sop, media_types=("image/png",), params={"viewport": "512,512"}
        )
        img = Image.open(io.BytesIO(png))
        assert img.format == "PNG" and max(img.size) == min(512, max(ds.Columns, ds.Rows))
        assert abs(img.size[0] / img.size[1] - ds.Columns / ds.Rows) < 0.02  # aspect kept
        assert np.asarray(img).std() > 5  # an image, not a flat field

        # uncompressed frame = the decoded pixels, for the lossless encodings
        if str(ds.file_meta.TransferSyntaxUID) in LOSSLESS_OR_NATIVE:
            (frame,) = client.retrieve_instance_frames(
                study,
                series,
                sop,
                [1],
                media_types=(("application/octet-stream", "1.2.840.10008.1.2.1"),),
            )
            expected = ds.pixel_array.astype(ds.pixel_array.dtype.newbyteorder("<")).tobytes()
            assert frame == expected, f.name
    elapsed = time.perf_counter() - t0
    print(
        f"\n{len(files)} files, {sent / 1e6:.1f} MB: store+search+retrieve+render in {elapsed:.1f} s"
    )
    log = node_process.log_text()
    assert "Traceback" not in log
