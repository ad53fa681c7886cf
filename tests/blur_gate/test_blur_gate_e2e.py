"""End to end: a sharp and a blurred real radiograph sent; the QA Orthanc gets a notice for each
with the right decision; only the blurred one gets a corrected series; both get the report SR.

Real peers only: dcmtk storescu as the modality, the node as a real process (tiny models),
one Orthanc as the PACS and another as the X-ray room's QA destination.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from sqlalchemy import select

from node.pipeline.blur_gate import BANNER_RGB
from storage import db
from storage.tables import AuditEvent, Job
from tests.blur_gate.radiographs import blurred, mhh_test_images, write_cr
from tests.support.dcmtk import dciodvfy_errors, storescu
from tests.support.node_proc import NodeProcess, node_config
from tests.support.orthanc import Orthanc, start_orthanc
from tests.support.ports import wait_for

pytestmark = pytest.mark.e2e

SC_CLASS = "1.2.840.10008.5.1.4.1.1.7"
SR_CLASS = "1.2.840.10008.5.1.4.1.1.88.34"  # Comprehensive 3D SR


@pytest.fixture
def pacs(tmp_path: Path) -> Iterator[Orthanc]:
    o = start_orthanc(tmp_path / "pacs", aet="PACS")
    try:
        yield o
    finally:
        o.stop()


@pytest.fixture
def qa(tmp_path: Path) -> Iterator[Orthanc]:
    o = start_orthanc(tmp_path / "qa", aet="QA")
    try:
        yield o
    finally:
        o.stop()


def _datasets(orthanc: Orthanc) -> list[Dataset]:
    return [pydicom.dcmread(io.BytesIO(orthanc.file(i))) for i in orthanc.instances()]


def _codes(ds: Dataset) -> set[str]:
    """Every code value in the SR content tree."""
    out: set[str] = set()
    for elem in ds.iterall():
        if elem.keyword == "CodeValue":
            out.add(str(elem.value))
    return out


def _referenced(ds: Dataset) -> set[str]:
    return {
        str(r.ReferencedSOPInstanceUID)
        for s in ds.CurrentRequestedProcedureEvidenceSequence
        for se in s.ReferencedSeriesSequence
        for r in se.ReferencedSOPSequence
    }


def test_sharp_and_blurred_get_notice_and_only_blurred_is_corrected(
    tmp_path: Path, tiny_models: dict[str, Path], pacs: Orthanc, qa: Orthanc
) -> None:
    img = mhh_test_images(1)[0]
    study = generate_uid()
    sharp = write_cr(tmp_path / "sharp.dcm", img, study_uid=study)
    blur = write_cr(tmp_path / "blurred.dcm", blurred(img, 10), study_uid=study)
    folder = tmp_path / "node"
    folder.mkdir()
    cfg = node_config(
        folder,
        tiny_models,
        (pacs.aet, pacs.dicom_port),
        destinations={
            "qa": {"type": "dimse", "ae_title": qa.aet, "host": "127.0.0.1", "port": qa.dicom_port}
        },
        pipelines={"gated": {"results": ["sc", "sr"], "correct": "when_blurred"}},
        routing={
            "rules": [],
            "fallback": {"name": "fallback", "process": "gated", "send_results_to": ["pacs"]},
        },
        blur_gate={"notify_to": ["qa"], "notice_sc": True},
    )
    node = NodeProcess(folder, cfg).start()
    try:
        storescu([tmp_path / "sharp.dcm", tmp_path / "blurred.dcm"], node.dimse_port, "SHARPRAY")
        counts = node.wait_idle(timeout=300)
        assert not any(st == "failed" for (_, st) in counts), (counts, node.log_text()[-3000:])

        # The QA destination: per image one notice SR with the right decision and one colour SC
        # with its banner, and nothing else.
        got = wait_for(
            lambda: n if len(n := _datasets(qa)) >= 4 else None, 60, "four notices at QA"
        )
        assert len(got) == 4
        by_source: dict[str, set[str]] = {}
        banners: dict[str, tuple[int, ...]] = {}
        for n in got:
            assert "not a diagnosis" in n.SeriesDescription
            if n.SOPClassUID == SR_CLASS:
                (ref,) = _referenced(n)
                by_source[ref] = _codes(n)
            else:
                assert n.SOPClassUID == SC_CLASS and n.PhotometricInterpretation == "RGB"
                ref = str(n.SourceImageSequence[0].ReferencedSOPInstanceUID)
                banners[ref] = tuple(int(v) for v in n.pixel_array[1, -2])
        assert "SR-BLUR-SHARP" in by_source[sharp.SOPInstanceUID]
        assert by_source[blur.SOPInstanceUID] & {"SR-BLUR-BLURRED", "SR-BLUR-SEVERE"}
        assert banners[sharp.SOPInstanceUID] == BANNER_RGB["sharp"]
        assert banners[blur.SOPInstanceUID] in (BANNER_RGB["blurred"], BANNER_RGB["severe"])

        # The PACS: a corrected SC only for the blurred image; a report SR for both, saying
        # which image was classified.
        results = _datasets(pacs)
        scs = [d for d in results if d.SOPClassUID == SC_CLASS]
        srs = [d for d in results if d.SOPClassUID == SR_CLASS]
        assert [str(d.SourceImageSequence[0].ReferencedSOPInstanceUID) for d in scs] == [
            blur.SOPInstanceUID
        ]
        assert len(srs) == 2
        for sr in srs:
            refs = _referenced(sr)
            codes = _codes(sr)
            if sharp.SOPInstanceUID in refs:
                assert {"SR-CLS-ORIGINAL", "SR-BLUR-SHARP"} <= codes
            else:
                assert blur.SOPInstanceUID in refs and scs[0].SOPInstanceUID in refs
                assert "SR-CLS-CORRECTED" in codes
                assert codes & {"SR-BLUR-BLURRED", "SR-BLUR-SEVERE"}

        written = node.result_paths()
        assert len(written) == 7  # 2 notice SRs, 2 notice SCs, 1 corrected SC, 2 report SRs
        problems = {p.name: dciodvfy_errors(p) for p in written}
        assert not any(problems.values()), problems
        metrics = httpx.get(f"{node.http_url}/metrics", timeout=10).text
        assert 'sharpray_blur_score_count{decision="sharp"} 1.0' in metrics
        page = httpx.get(f"{node.http_url}/dashboard/studies/{study}", timeout=30)
        assert page.status_code == 200, page.text[:500]
        assert '<dd class="blur-gate">sharp (motion 0.0 mm)' in page.text
        assert '<dd class="classified">original</dd>' in page.text
        assert '<dd class="classified">corrected</dd>' in page.text
        assert node.stop() == 0
    finally:
        node.kill()


def test_notice_returns_to_the_sending_modality_and_is_audited(
    tmp_path: Path, tiny_models: dict[str, Path], qa: Orthanc
) -> None:
    """``notify_to: [sender]``: the notice goes back to the modality's own SCP (here an Orthanc
    standing in for the X-ray room's console); the audit log and the job say score and decision."""
    img = mhh_test_images(1)[0]
    blur = write_cr(tmp_path / "blurred.dcm", blurred(img, 12))
    folder = tmp_path / "node"
    folder.mkdir()
    cfg = node_config(
        folder,
        tiny_models,
        None,
        destinations={
            "sender": {"type": "return_to_sender", "ports": {"XRAYROOM": qa.dicom_port}},
        },
        pipelines={"gated": {"results": ["sr"], "correct": "never"}},
        routing={"rules": [], "fallback": {"name": "fallback", "process": "gated"}},
        blur_gate={"notify_to": ["sender"]},
    )
    node = NodeProcess(folder, cfg).start()
    try:
        storescu([tmp_path / "blurred.dcm"], node.dimse_port, "SHARPRAY", aet="XRAYROOM")
        counts = node.wait_idle(timeout=300)
        assert not any(st == "failed" for (_, st) in counts), (counts, node.log_text()[-3000:])
        (notice,) = wait_for(lambda: _datasets(qa) or None, 60, "the notice at the modality")
        assert notice.SOPClassUID == SR_CLASS
        assert _referenced(notice) == {blur.SOPInstanceUID}
        assert _codes(notice) & {"SR-BLUR-BLURRED", "SR-BLUR-SEVERE"}

        engine = db.make_engine(node.database_url)
        try:
            with engine.connect() as c:
                events = list(
                    c.execute(
                        select(AuditEvent.outcome, AuditEvent.detail).where(
                            AuditEvent.event == "blur.assessed",
                            AuditEvent.instance_uid == blur.SOPInstanceUID,
                        )
                    )
                )
                details = [
                    d for (d,) in c.execute(select(Job.detail).where(Job.kind == "process")) if d
                ]
        finally:
            engine.dispose()
        assert len(events) == 1 and events[0][0] in ("blurred", "severe")
        assert "notice -> sender" in str(events[0][1])
        (detail,) = details
        assert detail["blur"]["decision"] == events[0][0]
        assert detail["classified"] == "original"  # correct: never
        assert node.stop() == 0
    finally:
        node.kill()


def test_blurred_radiograph_comes_back_sharper_from_the_default_correction(
    tmp_path: Path, tiny_models: dict[str, Path], pacs: Orthanc
) -> None:
    """The node as installed corrects with the blind Wiener deconvolution (``models.deblur:
    null``): a real radiograph blurred by 5 mm of motion, sent by storescu, comes back to the PACS
    as an SC measurably closer to the sharp original; the sharp original comes back unchanged."""
    from skimage.metrics import peak_signal_noise_ratio

    from models.blur import NoiseSpec, linear_kernel, simulate_motion_blur

    img = mhh_test_images(2)[1]
    rng = np.random.default_rng(3)
    moved = simulate_motion_blur(img, linear_kernel(8.0, 35.0), rng, noise=NoiseSpec(2e4))
    study = generate_uid()
    for name, pixels in (("blurred", moved), ("sharp", img)):
        write_cr(tmp_path / f"{name}.dcm", pixels, study_uid=study)
        ds = pydicom.dcmread(tmp_path / f"{name}.dcm")
        ds.ImagerPixelSpacing = [0.6, 0.6]  # the MHH PNGs' scale: 8 px = 4.8 mm
        ds.save_as(tmp_path / f"{name}.dcm", enforce_file_format=True)
    sources = {
        pydicom.dcmread(tmp_path / f"{n}.dcm").SOPInstanceUID: n for n in ("blurred", "sharp")
    }
    folder = tmp_path / "node"
    folder.mkdir()
    cfg = node_config(folder, tiny_models, (pacs.aet, pacs.dicom_port))
    cfg["models"]["deblur"] = None  # the default: blind Wiener deconvolution
    node = NodeProcess(folder, cfg).start()
    try:
        storescu([tmp_path / "blurred.dcm", tmp_path / "sharp.dcm"], node.dimse_port, "SHARPRAY")
        node.wait_idle(timeout=300)
        scs = wait_for(
            lambda: (
                s
                if len(s := [d for d in _datasets(pacs) if d.SOPClassUID == SC_CLASS]) >= 2
                else None
            ),
            60,
            "two SCs at the PACS",
        )
        by_source = {
            sources[str(d.SourceImageSequence[0].ReferencedSOPInstanceUID)]: d for d in scs
        }
        corrected = by_source["blurred"].pixel_array.astype(np.float64) / 4095
        before = peak_signal_noise_ratio(img, np.clip(moved, 0, 1), data_range=1.0)
        after = peak_signal_noise_ratio(img, corrected, data_range=1.0)
        assert after > before + 1.0, (before, after)
        assert "Wiener deconvolution" in by_source["blurred"].DerivationDescription
        unchanged = by_source["sharp"].pixel_array.astype(np.float64) / 4095
        assert peak_signal_noise_ratio(img, unchanged, data_range=1.0) >= 45
        assert node.stop() == 0
    finally:
        node.kill()
