"""STOW-RS with bad input: each failure gets its PS3.18 status and a reason, and the good parts
of the same request are stored (and queued for processing, as after C-STORE)."""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pydicom
from pydicom.uid import generate_uid
from sqlalchemy import select

from storage.tables import Job
from tests.dicomweb.conftest import (
    NO_MODELS,
    RunningNode,
    encode,
    header,
    real_files,
    receiver_config,
    stow,
    synthetic,
    uids,
)
from tests.support.node_proc import NodeProcess
from tests.support.synthetic import make_cr

MR_CLASS = "1.2.840.10008.5.1.4.1.1.4"
BOUNDARY = "sharpray-test-boundary"
MULTIPART = f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'


def _failures(body: dict) -> list[tuple[str | None, int]]:  # type: ignore[type-arg]
    items = body.get("00081198", {}).get("Value", [])
    return [
        (i.get("00081155", {}).get("Value", [None])[0], i["00081197"]["Value"][0]) for i in items
    ]


def _stored(body: dict) -> set[str]:  # type: ignore[type-arg]
    return {i["00081155"]["Value"][0] for i in body.get("00081199", {}).get("Value", [])}


def _jobs(node: RunningNode) -> list[Job]:
    with node.node.sessions() as s:
        return list(s.scalars(select(Job).where(Job.kind == "process")))


def test_corrupt_non_dicom_and_unsupported_parts_fail_alone(
    tmp_path: Path, node: RunningNode
) -> None:
    good = synthetic(tmp_path, 2)
    real = real_files()[0].read_bytes()
    truncated = real[: len(real) // 2]
    mr_ds = pydicom.dcmread(io.BytesIO(good[0]))
    mr_ds.SOPClassUID = mr_ds.file_meta.MediaStorageSOPClassUID = MR_CLASS
    mr_ds.SOPInstanceUID = mr_ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    r = stow(
        node.url,
        [
            ("application/dicom", good[0]),
            ("application/dicom", truncated),
            ("text/plain", b"this is a note, not an image"),
            ("application/dicom", b"DICM" + bytes(range(256)) * 4),
            ("application/dicom", encode(mr_ds)),
            ("application/dicom; transfer-syntax=1.2.840.10008.1.2.1", good[1]),
        ],
    )
    assert r.status_code == 202, r.text
    assert r.headers["content-type"].startswith("application/dicom+json")
    body = r.json()
    good_uids = {str(header(g).SOPInstanceUID) for g in good}
    assert _stored(body) == good_uids
    truncated_uid = str(header(real).SOPInstanceUID)
    assert _failures(body) == [
        (truncated_uid, 0xC000),  # identified, but its Pixel Data is cut short
        (None, 0xC000),  # text/plain
        (None, 0xC000),  # not parseable
        (str(mr_ds.SOPInstanceUID), 0x0122),  # SOP class not accepted
    ]
    warnings = r.headers.get_list("warning")
    assert len(warnings) == 4 and all(w.startswith('299 sharpray "part ') for w in warnings)
    assert "truncated" in warnings[0] or "ends" in warnings[0]
    assert "text/plain" in warnings[1]
    assert "SOP class" in warnings[3]
    # the good ones are stored, searchable, retrievable and queued for processing
    found = node.client().search_for_instances()
    assert uids(found, "00080018") == good_uids
    assert {j.instance_id for j in _jobs(node)} and len(_jobs(node)) == 2
    # the refused ones left nothing behind
    assert not list((node.settings.storage.folder / "tmp").glob("stow-*"))


def test_nothing_stored_is_409_and_study_mismatch_is_a900(
    tmp_path: Path, node: RunningNode
) -> None:
    r = stow(node.url, [("application/dicom", b"not dicom at all")])
    assert r.status_code == 409
    assert _failures(r.json()) == [(None, 0xC000)]
    (part,) = synthetic(tmp_path, 1)
    other_study = generate_uid()
    r = stow(node.url, [part], study=other_study)
    assert r.status_code == 409
    assert _failures(r.json()) == [(str(header(part).SOPInstanceUID), 0xA900)]
    assert "Study Instance UID" in r.headers["warning"]
    # the right study in the path: stored, and RetrieveURL names the study
    study = str(header(part).StudyInstanceUID)
    r = stow(node.url, [part], study=study)
    assert r.status_code == 200
    assert r.json()["00081190"]["Value"] == [f"{node.dicomweb}/studies/{study}"]
    assert stow(node.url, [part], study="1.2.x").status_code == 400


def test_request_media_types(tmp_path: Path, node: RunningNode) -> None:
    (part,) = synthetic(tmp_path, 1)
    url = node.dicomweb + "/studies"
    r = httpx.post(url, content=part, headers={"Content-Type": "application/dicom"})
    assert r.status_code == 415 and "multipart/related" in r.json()["detail"]
    r = httpx.post(
        url,
        content=b"{}",
        headers={"Content-Type": 'multipart/related; type="application/dicom+json"; boundary=b'},
    )
    assert r.status_code == 415
    r = httpx.post(url, content=part, headers={"Content-Type": "multipart/related"})
    assert r.status_code == 400 and "boundary" in r.json()["detail"]
    unterminated = f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode() + part
    r = httpx.post(url, content=unterminated, headers={"Content-Type": MULTIPART})
    assert r.status_code == 400 and "closing boundary" in r.json()["detail"]
    assert httpx.post(url, content=b"", headers={"Content-Type": MULTIPART}).status_code == 400
    assert node.client().search_for_instances() == []


def test_over_size_body_and_over_size_instance(
    tmp_path: Path, make_node: Callable[..., RunningNode]
) -> None:
    node = make_node(dicomweb={"max_body_bytes": 600_000, "max_instance_bytes": 300_000})
    small = synthetic(tmp_path, 2)  # ~8 KB each
    (big,) = synthetic(tmp_path, 1, rows=512, cols=512)  # ~512 KB: over the instance limit
    small_uids = [str(header(s).SOPInstanceUID) for s in small]

    # one part over max_instance_bytes: that part fails with 0xA700, the others are stored
    r = stow(node.url, [small[0], big, small[1]])
    assert r.status_code == 202, r.text
    assert _stored(r.json()) == set(small_uids)
    assert _failures(r.json()) == [(None, 0xA700)]
    assert "max_instance_bytes" in r.headers["warning"]

    # a body whose Content-Length is over max_body_bytes: 413 before anything is read
    (other,) = synthetic(tmp_path, 1)
    r = stow(node.url, [other, big, big])
    assert r.status_code == 413
    assert "max_body_bytes" in r.headers["warning"] and "nothing was stored" in r.headers["warning"]
    assert str(header(other).SOPInstanceUID) not in uids(
        node.client().search_for_instances(), "00080018"
    )

    # a chunked body (no Content-Length) crossing the limit: what came before it is stored
    def chunks() -> Iterator[bytes]:
        yield f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode() + other
        for _ in range(4):
            yield f"\r\n--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode()
            for i in range(0, len(big), 65536):
                yield big[i : i + 65536]
        yield f"\r\n--{BOUNDARY}--\r\n".encode()

    r = httpx.post(
        node.dicomweb + "/studies", content=chunks(), headers={"Content-Type": MULTIPART}
    )
    assert r.status_code == 413
    assert _stored(r.json()) == {str(header(other).SOPInstanceUID)}
    assert "parts after the limit were not read" in r.headers["warning"]
    assert str(header(other).SOPInstanceUID) in uids(
        node.client().search_for_instances(), "00080018"
    )


def _rss_peak_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_a_200_mb_upload_streams_through_bounded_memory(tmp_path: Path) -> None:
    folder = tmp_path / "node"
    folder.mkdir()
    cfg = receiver_config(folder)
    cfg["models"].update({k: str(v) for k, v in NO_MODELS.items()})
    proc = NodeProcess(folder, cfg).start(roles=["receiver"])
    try:
        assert proc.proc is not None
        template = make_cr(tmp_path / "big.dcm", 2048, 2048, bits=12)  # 8 MiB of pixels
        study = generate_uid()
        n = 25
        sent: list[str] = []

        def body() -> Iterator[bytes]:
            for _ in range(n):
                template.StudyInstanceUID = study
                template.SOPInstanceUID = template.file_meta.MediaStorageSOPInstanceUID = (
                    generate_uid()
                )
                sent.append(str(template.SOPInstanceUID))
                data = encode(template)
                yield f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode()
                for i in range(0, len(data), 1 << 20):
                    yield data[i : i + (1 << 20)]
                yield b"\r\n"
            yield f"--{BOUNDARY}--\r\n".encode()

        before = _rss_peak_kb(proc.proc.pid)
        t0 = time.perf_counter()
        r = httpx.post(
            f"{proc.http_url}/dicom-web/studies",
            content=body(),
            headers={"Content-Type": MULTIPART},
            timeout=300,
        )
        elapsed = time.perf_counter() - t0
        after = _rss_peak_kb(proc.proc.pid)
        assert r.status_code == 200, r.text
        assert _stored(r.json()) == set(sent)
        total_mb = n * len(encode(template)) / 1e6
        growth_mb = (after - before) / 1024
        print(f"\n{total_mb:.0f} MB in {elapsed:.1f} s; node peak RSS grew {growth_mb:.0f} MB")
        assert total_mb > 200
        assert growth_mb < 80, f"the node's peak memory grew {growth_mb:.0f} MB"
        found = httpx.get(
            f"{proc.http_url}/dicom-web/studies/{study}/instances", params={"limit": 100}
        ).json()
        assert uids(found, "00080018") == set(sent)
    finally:
        proc.stop()
