"""End to end with real peers: dcmtk storescu sends, the node processes, Orthanc (the PACS) receives.

No mocks: a real Orthanc, the node as a real process, dcmtk as the modality, dciodvfy as judge.
Most tests use tiny models built for the tests; test_demo_models.py runs the shipped ones.
"""

from __future__ import annotations

import io
import re
import threading
from pathlib import Path

import httpx
import pydicom
import pytest
from pydicom.dataset import Dataset
from pynetdicom import AE

from tests.support.dcmtk import dciodvfy_errors, storescu
from tests.support.node_proc import NodeProcess, node_config
from tests.support.orthanc import Orthanc
from tests.support.paths import TEST_DATA, require_shared_dicom
from tests.support.synthetic import PATIENT_ID, PATIENT_NAME, make_cr

pytestmark = pytest.mark.e2e

SC_CLASS = "1.2.840.10008.5.1.4.1.1.7"
SR_CLASSES = {"1.2.840.10008.5.1.4.1.1.88.33", "1.2.840.10008.5.1.4.1.1.88.34"}


def _uids_in(ds: Dataset) -> set[str]:
    """Every UID value anywhere in a dataset (to find references)."""
    found: set[str] = set()
    for elem in ds.iterall():
        if elem.VR == "UI" and elem.value:
            vals = (
                elem.value
                if isinstance(elem.value, list | pydicom.multival.MultiValue)
                else [elem.value]
            )
            found.update(str(v) for v in vals)
    return found


def _orthanc_results(orthanc: Orthanc) -> dict[str, list[Dataset]]:
    """Orthanc's instances that are our results, keyed by SOP class, parsed."""
    out: dict[str, list[Dataset]] = {}
    for oid in orthanc.instances():
        ds = pydicom.dcmread(io.BytesIO(orthanc.file(oid)))
        out.setdefault(str(ds.SOPClassUID), []).append(ds)
    return out


def _assert_no_patient_data(node: NodeProcess, files: list[Path]) -> None:
    """No patient name, ID or birth date of the sent files in any log line, any metrics label,
    or any failed job's exception text."""
    texts = {
        "the log": node.log_text(),
        "/metrics": httpx.get(f"{node.http_url}/metrics", timeout=10).text,
        "job errors": "\n".join(j.last_error or "" for j in node.jobs()),
    }
    for src_path in files:
        ds = pydicom.dcmread(src_path, stop_before_pixels=True)
        for keyword in ("PatientName", "PatientID", "PatientBirthDate"):
            value = str(ds.get(keyword, "") or "").strip()
            # as a value of its own (a patient ID "123456" may occur inside a UID)
            if len(value) >= 4:
                pattern = rf"(?<![\w.]){re.escape(value)}(?![\w.])"
                for where, text in texts.items():
                    assert not re.search(pattern, text), f"{keyword} of {src_path.name} in {where}"


def _start_node(
    tmp_path: Path, tiny_models: dict[str, Path], orthanc: Orthanc | None, **kw: object
) -> NodeProcess:
    pacs = (orthanc.aet, orthanc.dicom_port) if orthanc else None
    cfg = node_config(tmp_path / "node", tiny_models, pacs, **kw)  # type: ignore[arg-type]
    (tmp_path / "node").mkdir(exist_ok=True)
    return NodeProcess(tmp_path / "node", cfg).start()


@pytest.mark.parametrize("dataset", ["shipped", "shared"])
def test_real_radiographs_come_back_corrected_and_reported(
    tmp_path: Path, tiny_models: dict[str, Path], orthanc: Orthanc, dataset: str
) -> None:
    """Every real radiograph: tests/data (always), ../shared/data/cxr-dicom (every transfer syntax)."""
    files = sorted(TEST_DATA.glob("*.dcm")) if dataset == "shipped" else require_shared_dicom()
    node = _start_node(tmp_path, tiny_models, orthanc)
    try:
        storescu(files, node.dimse_port, node.ae_title)
        sources = {
            str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID): f for f in files
        }
        assert set(sources) <= node.received_uids()
        counts = node.wait_idle(timeout=600)
        # Some files are one image in several encodings with one SOP Instance UID: each new
        # version is processed, and its results (same UIDs) replace the previous ones.
        assert counts.get(("process", "done")) == len(files), (counts, node.log_text()[-3000:])
        assert counts.get(("dispatch", "done")) == 2 * len(files), counts
        assert not any(st == "failed" for (_, st) in counts)

        results = _orthanc_results(orthanc)
        scs, srs = results.get(SC_CLASS, []), [d for c in SR_CLASSES for d in results.get(c, [])]
        for uid, path in sources.items():
            src = pydicom.dcmread(path, stop_before_pixels=True)
            sc = [d for d in scs if d.SourceImageSequence[0].ReferencedSOPInstanceUID == uid]
            assert len(sc) == 1, f"{path.name}: {len(sc)} corrected SC in Orthanc"
            sr = [d for d in srs if {uid, sc[0].SOPInstanceUID} <= _uids_in(d)]
            assert len(sc) == 1, f"{path.name}: {len(sc)} corrected SC in Orthanc"
            assert len(sr) == 1, f"{path.name}: {len(sr)} SR in Orthanc"
            for d in (sc[0], sr[0]):
                assert d.StudyInstanceUID == src.StudyInstanceUID
                assert d.SeriesInstanceUID != src.SeriesInstanceUID
            assert sc[0].SourceImageSequence[0].ReferencedSOPInstanceUID == uid
            assert sc[0].ImageType[0] == "DERIVED"
            assert sc[0].Rows == src.Rows and sc[0].Columns == src.Columns

        # every object the node wrote passes dciodvfy
        written = node.result_paths()
        assert len(written) == 2 * len(sources)
        problems = {p.name: dciodvfy_errors(p) for p in written}
        assert not any(problems.values()), {k: v for k, v in problems.items() if v}

        # no patient data in the node's log, its metrics or its jobs' error texts
        _assert_no_patient_data(node, files)
        assert node.stop() == 0
    finally:
        node.kill()


def test_sigkill_mid_batch_loses_nothing(
    tmp_path: Path, tiny_models: dict[str, Path], orthanc: Orthanc
) -> None:
    data = tmp_path / "batch"
    data.mkdir()
    files = [data / f"img{i:03}.dcm" for i in range(40)]
    for i, f in enumerate(files):
        make_cr(f, 192, 160, seed=i)
    node = _start_node(tmp_path, tiny_models, orthanc)
    acknowledged: list[str] = []
    done = threading.Event()

    def send() -> None:
        ae = AE(ae_title="MODALITY")
        ae.add_requested_context("1.2.840.10008.5.1.4.1.1.1")
        try:
            assoc = ae.associate("127.0.0.1", node.dimse_port, ae_title=node.ae_title)
            for f in files:
                if not assoc.is_established:
                    break
                ds = pydicom.dcmread(f)
                status = assoc.send_c_store(ds)
                if status and int(status.Status) == 0:
                    acknowledged.append(str(ds.SOPInstanceUID))
            if assoc.is_established:
                assoc.release()
        finally:
            done.set()

    t = threading.Thread(target=send)
    t.start()
    from tests.support.ports import wait_for

    wait_for(lambda: len(acknowledged) >= 15, 120, "15 acknowledged C-STOREs")
    node.kill()
    t.join(60)
    assert 15 <= len(acknowledged) < len(files)

    node.start()  # restart on the same store and database
    received = node.received_uids()
    assert set(acknowledged) <= received
    for uid in acknowledged:  # and the bytes are there
        assert any((tmp_path / "node" / "store").rglob(f"{uid}.dcm"))
    counts = node.wait_idle(timeout=300)
    assert counts.get(("process", "done")) == len(received), counts
    assert not any(st == "failed" for (_, st) in counts), counts
    results = _orthanc_results(orthanc)
    for uid in acknowledged:
        assert (
            sum(
                d.SourceImageSequence[0].ReferencedSOPInstanceUID == uid
                for d in results.get(SC_CLASS, [])
            )
            == 1
        )
    node.stop()


def test_bad_input_is_refused_or_failed_with_a_reason_and_the_node_stays_up(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    node = _start_node(tmp_path, tiny_models, None)
    try:
        good = make_cr(tmp_path / "good.dcm", 128, 128)
        # 1. corrupt pixel data: accepted (the bytes are kept), its job fails with a reason
        bad = make_cr(tmp_path / "short.dcm", 128, 128, seed=3)
        bad.PixelData = bad.PixelData[: len(bad.PixelData) // 3]
        bad.save_as(tmp_path / "short.dcm", enforce_file_format=True)
        storescu([tmp_path / "short.dcm"], node.dimse_port, node.ae_title)
        # 2. unsupported SOP class (MR): no presentation context, nothing stored, node up
        mr = make_cr(tmp_path / "mr.dcm", 64, 64, seed=4)
        mr.SOPClassUID = mr.file_meta.MediaStorageSOPClassUID = pydicom.uid.UID(
            "1.2.840.10008.5.1.4.1.1.4"
        )
        mr.save_as(tmp_path / "mr.dcm", enforce_file_format=True)
        r = storescu([tmp_path / "mr.dcm"], node.dimse_port, node.ae_title, check=False)
        assert r.returncode != 0
        # 3. colour image in a CR wrapper: accepted, job fails with the reason
        colour = make_cr(tmp_path / "colour.dcm", 64, 64, seed=5)
        colour.PhotometricInterpretation = "RGB"
        colour.SamplesPerPixel = 3
        colour.PlanarConfiguration = 0
        colour.BitsAllocated = colour.BitsStored = 8
        colour.HighBit = 7
        colour.PixelData = bytes(64 * 64 * 3)
        colour.save_as(tmp_path / "colour.dcm", enforce_file_format=True)
        storescu([tmp_path / "colour.dcm"], node.dimse_port, node.ae_title)
        # 4. SOP Instance UID that could reach the file system: refused, node up
        ae = AE(ae_title="MODALITY")
        ae.add_requested_context("1.2.840.10008.5.1.4.1.1.1")
        assoc = ae.associate("127.0.0.1", node.dimse_port, ae_title=node.ae_title)
        assert assoc.is_established
        evil = pydicom.dcmread(tmp_path / "good.dcm")
        evil.StudyInstanceUID = "1.2.3/../../../etc"
        status = assoc.send_c_store(evil)
        assoc.release()
        assert int(status.Status) == 0xA900
        # the node is still up and accepts a valid image afterwards
        storescu([tmp_path / "good.dcm"], node.dimse_port, node.ae_title)
        node.wait_idle(timeout=120)
        jobs = {j.instance_id: j for j in node.jobs() if j.kind == "process"}
        states = sorted((j.state, (j.last_error or "")[:60]) for j in jobs.values())
        assert [s for s, _ in states].count("done") == 1, states
        failed = [e for s, e in states if s == "failed"]
        assert len(failed) == 2 and all(e.startswith("cannot process") for e in failed), states
        assert str(good.SOPInstanceUID) in node.received_uids()
        assert not list((tmp_path / "node" / "store").rglob("etc*"))
        log = node.log_text()
        assert "0xA900" in log and PATIENT_NAME not in log and PATIENT_ID not in log
        sent = [tmp_path / f"{n}.dcm" for n in ("good", "short", "mr", "colour")]
        _assert_no_patient_data(node, sent)
    finally:
        node.stop()
