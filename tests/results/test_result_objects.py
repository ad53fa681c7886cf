"""The corrected SC and the AI result SR, built from every real radiograph and from synthetic ones.

For each source the "corrected" image is a mild unsharp mask of the decoded stored values, clipped
to the source's stored range in the source's dtype. The SC and SR are saved and checked with
dciodvfy (no error beyond those dciodvfy reports for the source itself: some source headers carry
errors that are deliberately copied, e.g. the Canon DX's 56-character Accession Number), pydicom,
highdicom, dsrdump and dcm2pnm.
"""

from __future__ import annotations

import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
from pydicom.pixels import apply_modality_lut
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

from models.manifest import CodedConcept
from node.pipeline.results.common import NOT_FOR_DIAGNOSTIC_USE
from node.pipeline.results.inputs import Analysis, Finding, ModelInfo, Producer
from node.pipeline.results.sc import build_corrected_sc
from node.pipeline.results.sr import build_report_sr

from .conftest import dciodvfy_errors, read_pnm, tool_or_skip

DATA_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "cxr-dicom"
SOURCES = sorted(DATA_DIR.glob("*.dcm")) if DATA_DIR.is_dir() else []

PNEUMONIA = CodedConcept(value="233604007", scheme="SCT", meaning="Pneumonia")
NO_FINDING = CodedConcept(value="260413007", scheme="SCT", meaning="None")
P_PNEUMONIA = 0.8125  # exactly representable: dsrdump prints it as "0.8125"

DEBLUR = ModelInfo(
    name="sharpray-deblur-rrdb",
    version="0.3.0",
    device_uid="2.25.240121773189912359208212395726003475151",
    demonstration_only=True,
    description="RRDB generator trained on synthetic motion blur",
)
CLASSIFIER = ModelInfo(
    name="sharpray-cxr-pneumonia",
    version="0.2.1",
    device_uid="2.25.101938271616120993742188213209837412119",
    demonstration_only=True,
)
PRODUCER = Producer(institution="SharpRay Test Hospital")


def _box_blur(a: np.ndarray, r: int) -> np.ndarray:
    k = 2 * r + 1
    p = np.pad(a.astype(np.float64), r, mode="edge")
    c = np.vstack([np.zeros((1, p.shape[1])), np.cumsum(p, axis=0)])
    p = (c[k:] - c[:-k]) / k
    c = np.hstack([np.zeros((p.shape[0], 1)), np.cumsum(p, axis=1)])
    return np.asarray((c[:, k:] - c[:, :-k]) / k)


def corrected_from(src: pydicom.Dataset) -> np.ndarray:
    """A stand-in for the deblurring model: unsharp mask, in the source's stored domain."""
    pix = src.pixel_array
    bits = int(src.BitsStored)
    if int(src.get("PixelRepresentation", 0)) == 1:
        lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    else:
        lo, hi = 0, (1 << bits) - 1
    sharp = pix + 0.6 * (pix - _box_blur(pix, 2))
    return np.clip(np.rint(sharp), lo, hi).astype(pix.dtype)


@dataclass
class Built:
    name: str
    src_path: Path
    src: pydicom.Dataset
    corrected: np.ndarray
    analysis: Analysis
    sc_path: Path
    sr_path: Path


def build_all(src_path: Path, out_dir: Path) -> Built:
    src = pydicom.dcmread(src_path)
    corrected = corrected_from(src)
    analysis = Analysis(
        source=src,
        corrected=corrected,
        deblur_model=DEBLUR,
        classifier_model=CLASSIFIER,
        findings=[
            Finding("pneumonia", PNEUMONIA, P_PNEUMONIA, True),
            Finding("no finding", NO_FINDING, 1.0 - P_PNEUMONIA, False),
        ],
        sharpness_before=0.4375,
        sharpness_after=0.3125,
    )
    with warnings.catch_warnings():
        # highdicom warns about the sources' one-component person names (no caret)
        warnings.simplefilter("ignore", UserWarning)
        sc = build_corrected_sc(analysis, PRODUCER, generate_uid(), 9001)
        sr = build_report_sr(analysis, PRODUCER, sc, generate_uid(), 9002)
    stem = src_path.stem
    sc_path, sr_path = out_dir / f"{stem}_sc.dcm", out_dir / f"{stem}_sr.dcm"
    sc.save_as(sc_path, enforce_file_format=True)
    sr.save_as(sr_path, enforce_file_format=True)
    return Built(stem, src_path, src, corrected, analysis, sc_path, sr_path)


def make_synthetic(kind: str, path: Path) -> Path:
    """A small CR: "mono1" (MONOCHROME1, 12 bits, window) or "signed" (signed 12-bit MONOCHROME2
    with a rescale intercept and no window, so the SC must shift values and compute a window)."""
    from tests.support.synthetic import make_cr

    ds = make_cr(path, 256, 224, bits=12, photometric="MONOCHROME1", seed=3)
    if kind == "signed":
        values = ds.pixel_array.astype(np.int32)
        ds.PhotometricInterpretation = "MONOCHROME2"
        signed = ((1 << 12) - 1 - values - 2048).astype(np.int16)
        ds.PixelRepresentation = 1
        ds.PixelData = signed.tobytes()
        ds.RescaleIntercept = "1024"
        ds.RescaleSlope = "1"
        ds.RescaleType = "US"
        del ds.WindowCenter
        del ds.WindowWidth
        ds.save_as(path, enforce_file_format=True)
    return path


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("results")


_PARAMS = [pytest.param(("file", p), id=p.stem) for p in SOURCES] or [
    pytest.param(
        ("file", None),
        id="shared-data",
        marks=pytest.mark.skip(reason=f"real radiographs not available: {DATA_DIR} is absent"),
    )
]
_PARAMS += [pytest.param(("synthetic", k), id=f"synthetic-{k}") for k in ("mono1", "signed")]


@pytest.fixture(scope="module", params=_PARAMS)
def built(request: pytest.FixtureRequest, out_dir: Path) -> Built:
    kind, what = request.param
    if kind == "synthetic":
        src_path = make_synthetic(what, out_dir / f"synthetic_{what}.dcm")
    else:
        src_path = what
    return build_all(src_path, out_dir)


def test_dciodvfy_reports_no_new_error(built: Built) -> None:
    baseline = dciodvfy_errors(built.src_path)
    for path in (built.sc_path, built.sr_path):
        new = dciodvfy_errors(path) - baseline
        assert not new, f"{path.name}: dciodvfy errors not in the source:\n" + "\n".join(
            sorted(new)
        )


def test_sc_reads_back_and_references_source(built: Built) -> None:
    sc = pydicom.dcmread(built.sc_path)
    src = built.src
    assert sc.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert sc.SOPClassUID == SecondaryCaptureImageStorage
    assert sc.StudyInstanceUID == src.StudyInstanceUID
    assert sc.PatientID == src.PatientID
    ref = sc.SourceImageSequence[0]
    assert ref.ReferencedSOPInstanceUID == src.SOPInstanceUID
    assert ref.ReferencedSOPClassUID == src.SOPClassUID
    assert ref.PurposeOfReferenceCodeSequence[0].CodeValue == "121322"
    assert (sc.Rows, sc.Columns) == (src.Rows, src.Columns)
    assert (sc.BitsAllocated, sc.BitsStored, sc.HighBit) == (
        src.BitsAllocated,
        src.BitsStored,
        src.HighBit,
    )
    assert sc.PhotometricInterpretation == src.PhotometricInterpretation
    assert list(sc.ImageType) == ["DERIVED", "SECONDARY"]
    assert sc.ConversionType == "WSD"
    assert sc.BurnedInAnnotation == "NO"
    assert NOT_FOR_DIAGNOSTIC_USE in sc.SeriesDescription
    assert DEBLUR.version in sc.SeriesDescription
    assert DEBLUR.name in sc.DerivationDescription
    algo = [
        item
        for item in sc.ContributingEquipmentSequence
        if item.PurposeOfReferenceCodeSequence[0].CodeMeaning == "Processing Algorithm"
    ]
    assert len(algo) == 1
    assert algo[0].DeviceUID == DEBLUR.device_uid
    assert algo[0].ManufacturerModelName == DEBLUR.name
    assert algo[0].SoftwareVersions == DEBLUR.version
    if "WindowCenter" in src:
        assert sc.WindowCenter == src.WindowCenter
        assert sc.WindowWidth == src.WindowWidth
    else:
        assert "WindowCenter" in sc and float(sc.WindowWidth) >= 1
    was_lossy = src.get("LossyImageCompression") == "01" or src.file_meta.TransferSyntaxUID in (
        "1.2.840.10008.1.2.4.50",
        "1.2.840.10008.1.2.4.51",
    )
    if was_lossy:
        assert sc.LossyImageCompression == "01"
    # Pixels: identical stored values (same orientation for MONOCHROME1) and the same modality
    # values after the rescale (signed sources are shifted into the unsigned range).
    if int(src.get("PixelRepresentation", 0)) == 0:
        assert np.array_equal(sc.pixel_array, built.corrected)
    else:
        assert sc.PixelRepresentation == 0
    np.testing.assert_allclose(
        apply_modality_lut(sc.pixel_array, sc), apply_modality_lut(built.corrected, src)
    )
    # highdicom reads it as an image
    image = hd.imread(built.sc_path)
    assert image.SOPInstanceUID == sc.SOPInstanceUID


def test_sc_keeps_monochrome1(built: Built) -> None:
    if built.src.PhotometricInterpretation != "MONOCHROME1":
        pytest.skip("source is not MONOCHROME1")
    sc = pydicom.dcmread(built.sc_path)
    assert sc.PhotometricInterpretation == "MONOCHROME1"
    assert np.array_equal(sc.pixel_array, built.corrected)


def _windowed(values: np.ndarray, center: float, width: float) -> np.ndarray:
    """PS3.3 C.11.2.1.2.1 linear VOI function, to [0, 1]."""
    x = (values - (center - 0.5)) / (width - 1) + 0.5
    return np.asarray(np.clip(x, 0.0, 1.0))


def test_dcm2pnm_renders_sc_like_corrected(built: Built) -> None:
    exe = tool_or_skip("dcm2pnm")
    sc = pydicom.dcmread(built.sc_path, stop_before_pixels=True)
    out = built.sc_path.with_suffix(".pgm")
    subprocess.run([exe, "+Wi", "1", str(built.sc_path), str(out)], check=True, timeout=120)
    rendered = read_pnm(out).astype(np.float64)
    assert rendered.shape == built.corrected.shape
    centers, widths = sc.WindowCenter, sc.WindowWidth
    center = float(centers[0] if isinstance(centers, pydicom.multival.MultiValue) else centers)
    width = float(widths[0] if isinstance(widths, pydicom.multival.MultiValue) else widths)
    expected = _windowed(apply_modality_lut(built.corrected, built.src), center, width)
    if sc.PhotometricInterpretation == "MONOCHROME1":
        expected = 1.0 - expected
    r = float(np.corrcoef(rendered.ravel(), expected.ravel())[0, 1])
    assert r > 0.9, f"rendered SC correlates {r:.3f} with the windowed corrected image"


def test_sr_reads_back_and_references_source_and_sc(built: Built) -> None:
    sr = pydicom.dcmread(built.sr_path)
    sc = pydicom.dcmread(built.sc_path, stop_before_pixels=True)
    assert sr.StudyInstanceUID == built.src.StudyInstanceUID
    assert sr.CompletionFlag == "COMPLETE"
    assert sr.VerificationFlag == "UNVERIFIED"
    assert NOT_FOR_DIAGNOSTIC_USE in sr.SeriesDescription
    evidence = {
        inst.ReferencedSOPInstanceUID
        for study in sr.CurrentRequestedProcedureEvidenceSequence
        for series in study.ReferencedSeriesSequence
        for inst in series.ReferencedSOPSequence
    }
    assert {built.src.SOPInstanceUID, sc.SOPInstanceUID} <= evidence
    purposes = {
        item.PurposeOfReferenceCodeSequence[0].CodeMeaning: item
        for item in sr.ContributingEquipmentSequence
        if item.PurposeOfReferenceCodeSequence[0].CodeMeaning != "Processing Algorithm"
    }
    assert "Processing Equipment" in purposes
    device_uids = {
        item.get("DeviceUID")
        for item in sr.ContributingEquipmentSequence
        if item.PurposeOfReferenceCodeSequence[0].CodeMeaning == "Processing Algorithm"
    }
    assert device_uids == {CLASSIFIER.device_uid, DEBLUR.device_uid}

    doc = hd.sr.srread(built.sr_path)
    assert isinstance(doc, hd.sr.Comprehensive3DSR)
    report = doc.content
    assert isinstance(report, hd.sr.MeasurementReport)
    groups = report.get_image_measurement_groups(
        finding_type=hd.sr.CodedConcept("233604007", "SCT", "Pneumonia")
    )
    assert len(groups) == 1
    (measurement,) = groups[0].get_measurements()
    assert measurement.value == pytest.approx(P_PNEUMONIA)
    (evaluation,) = groups[0].get_qualitative_evaluations()
    assert evaluation.value.value == "52101004"  # Present
    assert groups[0].source_images[0].referenced_sop_instance_uid == built.src.SOPInstanceUID
    (none_group,) = report.get_image_measurement_groups(
        finding_type=hd.sr.CodedConcept("260413007", "SCT", "None")
    )
    (none_eval,) = none_group.get_qualitative_evaluations()
    assert none_eval.value.value == "272519000"  # Absent


def test_dsrdump_shows_finding_and_probability(built: Built) -> None:
    exe = tool_or_skip("dsrdump")
    proc = subprocess.run(
        [exe, "+Pc", str(built.sr_path)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert '(233604007,SCT,"Pneumonia")=(52101004,SCT,"Present")' in text
    assert f'(122157,DCM,"Probability")="{P_PNEUMONIA}"' in text
    assert "SR-BLUR-SRC" in text and "SR-BLUR-COR" in text
    assert "Verification Flag   : UNVERIFIED" in text


def test_source_dataset_is_not_modified(built: Built) -> None:
    again = pydicom.dcmread(built.src_path)
    for elem in again:
        if elem.tag == 0x7FE00010:
            continue
        assert built.src[elem.tag].value == elem.value, elem.keyword
