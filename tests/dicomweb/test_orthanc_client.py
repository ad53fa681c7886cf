"""Orthanc, configured with the node as a DICOMweb server ("DicomWeb": {"Servers": ...}), queries
it, retrieves studies from it (WADO-RS), and stores into it (STOW-RS)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx

from tests.dicomweb.conftest import RunningNode, header, real_files, stow, synthetic, uids
from tests.support.orthanc import start_orthanc


def test_orthanc_queries_retrieves_and_stores_through_the_node(
    tmp_path: Path, node: RunningNode
) -> None:
    files = real_files()
    sent = {str(header(f.read_bytes()).SOPInstanceUID): f.read_bytes() for f in files}
    assert stow(node.url, [f.read_bytes() for f in files]).status_code == 200
    orthanc = start_orthanc(
        tmp_path / "orthanc", dicomweb_servers={"sharpray": [node.dicomweb + "/"]}
    )
    try:
        assert httpx.get(orthanc.url + "/dicom-web/servers").json() == ["sharpray"]
        server = orthanc.url + "/dicom-web/servers/sharpray"

        # QIDO-RS through Orthanc: the same studies as asking the node directly
        ours = httpx.get(node.dicomweb + "/studies").json()
        r = httpx.post(server + "/get", json={"Uri": "/studies"}, timeout=60)
        assert r.status_code == 200, r.text
        assert uids(r.json(), "0020000D") == uids(ours, "0020000D")
        r = httpx.post(
            server + "/qido",
            json={"Uri": "/studies", "Arguments": {"PatientName": "Compressed*"}},
            timeout=60,
        )
        assert r.status_code == 200, r.text
        expected = uids(
            httpx.get(node.dicomweb + "/studies", params={"PatientName": "Compressed*"}).json(),
            "0020000D",
        )
        assert expected and {s["0020000D"]["Value"] for s in r.json()} == expected

        # WADO-RS through Orthanc: every study comes over, byte for byte
        studies = sorted(uids(ours, "0020000D"))
        r = httpx.post(
            server + "/retrieve",
            json={"Resources": [{"Study": s} for s in studies]},
            timeout=300,
        )
        assert r.status_code == 200, r.text
        assert int(r.json()["ReceivedInstancesCount"]) == len(sent)
        got = {}
        for oid in orthanc.instances():
            data = orthanc.file(oid)
            got[str(header(data).SOPInstanceUID)] = data
        assert set(got) == set(sent)
        for uid, data in got.items():
            assert hashlib.sha256(data).digest() == hashlib.sha256(sent[uid]).digest(), uid

        # STOW-RS from Orthanc (chunked, a 73-character boundary) into the node
        (extra,) = synthetic(tmp_path, 1)
        oid = httpx.post(orthanc.url + "/instances", content=extra).json()["ID"]
        r = httpx.post(server + "/stow", json={"Resources": [oid]}, timeout=60)
        assert r.status_code == 200, r.text
        sop = str(header(extra).SOPInstanceUID)
        found = httpx.get(node.dicomweb + "/instances", params={"SOPInstanceUID": sop}).json()
        assert uids(found, "00080018") == {sop}
    finally:
        orthanc.stop()
