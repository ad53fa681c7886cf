"""The real pipeline (tiny test models) on real radiographs of every kind, then its result objects.

Sources cover MONOCHROME1 and MONOCHROME2, 8/10/12/15 bits stored, a signed synthetic image, and
JPEG baseline, RLE and JPEG 2000 encodings. For each: ``analyse`` (deblur, classify, Grad-CAM)
with models loaded by ``node.app.load_models``, ``build_results`` with the default settings, then

* the SR, decoded with highdicom, holds what the pipeline computed: each class's code and
  probability, the classifier's name, version and Device UID from its manifest, the hot regions of
  the heatmap it produced, the blur measures before and after;
* the corrected SC has the source's orientation and intensity order (compared with the source's
  own pixels, and as dcm2pnm renders it);
* every object passes dciodvfy without error.
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

from models.manifest import ModelManifest, load_manifest
from node.app import load_models
from node.config import ModelSettings, ResultSettings, ScopeSettings, Settings
from node.pipeline.analyse import Models, analyse
from node.pipeline.outputs import build_results
from node.pipeline.results.inputs import Analysis, Producer
from node.pipeline.results.regions import HotRegion, hot_regions
from node.pipeline.results.sc import voi_to_unit
from tests.support.paths import CXR_DICOM
from tests.support.sr_content import measurement_groups, ohif_ready

from .conftest import dciodvfy_errors, render, tool_or_skip
from .test_result_objects import make_synthetic

# one source of each kind (the full set of shared files is covered by test_result_objects.py)
REAL = {
    "Fujifilm_DX_canine_thorax_EVRLE": "MONOCHROME1, 8 bits, uncompressed",
    "SIIM_NIH_CR_chest_SC_JPEGbaseline": "MONOCHROME2, 8 bits, JPEG baseline (lossy)",
    "WG04_RG2_CR_Fuji_hip_RLE": "MONOCHROME2, 10 bits, RLE",
    "Canon_DX_chest_PA_J2KR": "MONOCHROME1, 12 bits, JPEG 2000",
    "WG04_RG1_CR_Philips_chest_J2KR": "MONOCHROME1, 15 bits, JPEG 2000",
}
PRODUCER = Producer(institution="SharpRay Test Hospital")
SETTINGS = ResultSettings()


@dataclass
class Run:
    name: str
    src_path: Path
    src: pydicom.Dataset
    analysis: Analysis
    regions: list[HotRegion]
    paths: dict[str, Path]


@pytest.fixture(scope="module")
def models(tiny_models: dict[str, Path]) -> Models:
    settings = Settings(
        models=ModelSettings(
            deblur=tiny_models["deblur"], classify=tiny_models["classify"], providers="cpu"
        ),
        # the result objects of every kind of radiograph (intended use: tests/node/test_scope.py)
        scope=ScopeSettings(enabled=False),
    )
    return load_models(settings)


@pytest.fixture(scope="module")
def manifests(tiny_models: dict[str, Path]) -> dict[str, ModelManifest]:
    return {task: load_manifest(folder)[0] for task, folder in tiny_models.items()}


_PARAMS = [pytest.param(name, id=name) for name in REAL] + [
    pytest.param("synthetic-signed", id="synthetic-signed-12bit")
]


@pytest.fixture(scope="module", params=_PARAMS)
def run(
    request: pytest.FixtureRequest, models: Models, tmp_path_factory: pytest.TempPathFactory
) -> Run:
    name = str(request.param)
    out = tmp_path_factory.mktemp(name)
    if name.startswith("synthetic"):
        src_path = make_synthetic("signed", out / "signed.dcm")
    else:
        src_path = CXR_DICOM / f"{name}.dcm"
        if not src_path.exists():
            pytest.skip(f"real radiograph {src_path} is not available")
    src = pydicom.dcmread(src_path)
    analysis = analyse(src, models)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        results = build_results(analysis, SETTINGS, PRODUCER)
    paths = {}
    for kind, ds in results:
        paths[kind] = out / f"{kind}.dcm"
        ds.save_as(paths[kind], enforce_file_format=True)
    assert analysis.heatmap is not None
    regions = hot_regions(
        analysis.heatmap, SETTINGS.region_threshold, max_regions=SETTINGS.max_regions
    )
    return Run(name, src_path, src, analysis, regions, paths)


def test_every_object_passes_dciodvfy_without_error(run: Run) -> None:
    assert set(run.paths) == {"sc", "overlay", "gsps", "seg", "sr"}
    problems = {kind: dciodvfy_errors(path) for kind, path in run.paths.items()}
    assert not any(problems.values()), {k: sorted(v) for k, v in problems.items() if v}


def test_sr_holds_the_diagnosis_probabilities_models_and_regions_the_pipeline_computed(
    run: Run, manifests: dict[str, ModelManifest]
) -> None:
    clf, deblur = manifests["classify"], manifests["deblur"]
    doc = hd.sr.srread(run.paths["sr"])
    report = doc.content
    assert isinstance(report, hd.sr.MeasurementReport)
    # the observer is the classifier, identified by its manifest's Device UID
    observer = report.get_observer_contexts()[0]
    attrs = observer.observer_identifying_attributes
    assert attrs.uid == clf.device_uid
    assert clf.version in attrs.name
    # one group per finding class, with the probability the pipeline computed
    sr_ds = pydicom.dcmread(run.paths["sr"])
    groups = measurement_groups(sr_ds)
    assert len(run.analysis.findings) == len(clf.labels)
    for finding in run.analysis.findings:
        mine = [g for g in groups if g.identifier.startswith("AI finding")]
        matching = [g for g in mine if g.finding == finding.code.value]
        if not finding.is_finding:
            assert matching == []  # "normal" is the absence of every finding
            continue
        (group,) = matching
        (prob,) = group.nums
        assert prob.value == pytest.approx(finding.probability, abs=1e-12)
        assert group.evaluations == {
            finding.code.value: "52101004" if finding.present else "272519000"
        }
        # TID 4019 Algorithm Identification: 111001 Algorithm Name, 111003 Algorithm Version
        assert (group.texts["111001"], group.texts["111003"]) == (clf.name, clf.version)
    # the regions are the heatmap's hot regions, on the corrected SC
    sc = pydicom.dcmread(run.paths["sc"], stop_before_pixels=True)
    rois = [g for g in groups if "evidence region" in g.identifier]
    assert len(rois) == len(run.regions) >= 1
    explained = run.analysis.explained_finding
    for g, region in zip(rois, run.regions, strict=True):
        assert g.finding == explained.code.value
        (drawn,) = [n for n in g.nums if n.region is not None]
        np.testing.assert_allclose(drawn.region, np.ravel(region.outline), atol=1e-3)
        assert drawn.region_image == sc.SOPInstanceUID
    # image quality before and after correction
    (quality,) = [g for g in groups if g.finding == "111101"]
    values = {n.concept: n.value for n in quality.nums}
    assert values["SR-BLUR-SRC"] == pytest.approx(run.analysis.sharpness_before, abs=1e-12)
    assert values["SR-BLUR-COR"] == pytest.approx(run.analysis.sharpness_after, abs=1e-12)
    assert ohif_ready(sr_ds) == []
    # both models as IHE AIR "Processing Algorithm" equipment, with versions and Device UIDs
    sr = pydicom.dcmread(run.paths["sr"], stop_before_pixels=True)
    algorithms = {
        i.DeviceUID: i.SoftwareVersions
        for i in sr.ContributingEquipmentSequence
        if i.PurposeOfReferenceCodeSequence[0].CodeValue == "Newcode1"
    }
    assert algorithms == {clf.device_uid: clf.version, deblur.device_uid: deblur.version}


def test_seg_and_gsps_carry_the_pipelines_heatmap(run: Run) -> None:
    heat = run.analysis.heatmap
    assert heat is not None
    sc = pydicom.dcmread(run.paths["sc"], stop_before_pixels=True)
    seg = pydicom.dcmread(run.paths["seg"])
    ref = seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence[0]
    assert ref.ReferencedSOPInstanceUID == sc.SOPInstanceUID
    # the hot part, at the level the GSPS and SR outline (results.region_threshold)
    np.testing.assert_array_equal(seg.pixel_array, heat >= 0.5)
    pr = pydicom.dcmread(run.paths["gsps"])
    drawn = [
        np.asarray(g.GraphicData, dtype=np.float32).reshape(-1, 2)
        for a in pr.GraphicAnnotationSequence
        if a.GraphicLayer == "AI_HOT_REGIONS"
        for g in a.GraphicObjectSequence
    ]
    assert len(drawn) == len(run.regions)
    for points, region in zip(drawn, run.regions, strict=True):
        np.testing.assert_allclose(points, region.outline, atol=1e-3)


def _r(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel().astype(np.float64), b.ravel().astype(np.float64))[0, 1])


def test_corrected_image_keeps_the_sources_orientation_and_intensity_order(run: Run) -> None:
    src = run.src
    sc = pydicom.dcmread(run.paths["sc"])
    assert sc.PhotometricInterpretation == src.PhotometricInterpretation
    assert (sc.Rows, sc.Columns, sc.BitsStored) == (src.Rows, src.Columns, src.BitsStored)
    # modality values (signed sources are stored shifted, with the intercept taking it back)
    ours = apply_modality_lut(sc.pixel_array, sc)[::4, ::4]
    theirs = apply_modality_lut(src.pixel_array, src)[::4, ::4]
    r = _r(ours, theirs)
    assert r > 0.95, f"corrected vs source: r={r:.3f} (inverted or scrambled intensities?)"
    flips = {
        "upside down": _r(ours, theirs[::-1]),
        "mirrored": _r(ours, theirs[:, ::-1]),
        "rotated": _r(ours, theirs[::-1, ::-1]),
    }
    for what, rf in flips.items():
        assert r > rf + 0.01, f"corrected image matches the source {what} as well ({rf:.3f})"


def test_dcm2pnm_shows_the_corrected_image_like_the_source(run: Run) -> None:
    """dcm2pnm's picture of the SC (its first window, its photometric interpretation) looks like
    the source under the source's own VOI, bright = dense in both."""
    exe = tool_or_skip("dcm2pnm")
    shown = render(exe, run.paths["sc"], run.paths["sc"].with_suffix(".pgm"), "+Wi", "1")
    src = run.src
    sc = pydicom.dcmread(run.paths["sc"], stop_before_pixels=True)
    voi = src if ("WindowCenter" in src or "VOILUTSequence" in src) else sc
    expected = voi_to_unit(apply_modality_lut(src.pixel_array, src), voi)
    if src.PhotometricInterpretation == "MONOCHROME1":
        expected = 1.0 - expected
    r = _r(shown[::4, ::4], expected[::4, ::4])
    assert r > 0.9, f"rendered SC vs the source as displayed: r={r:.3f}"


def test_dsrdump_prints_the_tree_of_the_pipelines_report(run: Run) -> None:
    exe = tool_or_skip("dsrdump")
    proc = subprocess.run(
        [exe, "+Pc", str(run.paths["sr"])], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0 and not proc.stderr.strip(), proc.stderr
    for finding in run.analysis.findings:
        if finding.is_finding:
            assert f"({finding.code.value},{finding.code.scheme}," in proc.stdout
    # the regions, and the whole image for each finding's probability and for the motion
    findings = sum(f.is_finding for f in run.analysis.findings)
    assert proc.stdout.count("(POLYLINE,") == len(run.regions) + findings + 1
