"""Result objects through a real PACS: the node's C-STORE SCU sends them to Orthanc, DICOMweb
(QIDO-RS, WADO-RS) brings them back.

For a real MONOCHROME1 radiograph and a synthetic CR: the source and the five result objects
(corrected SC, heatmap overlay SC, GSPS, SEG, SR) from the real pipeline with the tiny models are
sent with ``node.dispatch.dimse.send_file`` (each file's own SOP class and transfer syntax), after
dcmtk storescu stored the source as a modality would. QIDO-RS
finds all of them in the source's study, and WADO-RS (any transfer syntax, i.e. as stored)
returns datasets identical to the files sent. Then the node as a real process sends what each
routing rule's pipeline selects.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest

from node.app import load_models
from node.config import DimseDestination, ModelSettings, ResultSettings, ScopeSettings, Settings
from node.dispatch.dimse import send_file
from node.pipeline.analyse import analyse
from node.pipeline.outputs import build_results
from node.pipeline.results.inputs import Producer
from tests.support.dcmtk import storescu
from tests.support.node_proc import NodeProcess, node_config
from tests.support.orthanc import Orthanc, start_orthanc
from tests.support.paths import CXR_DICOM
from tests.support.synthetic import make_cr

dicomweb_client = pytest.importorskip("dicomweb_client")

# Derived images keep a CR/DX source's modality (node.pipeline.results.sc.SOURCE_MODALITIES).
MODALITY = {"sc": "OT", "overlay": "OT", "gsps": "PR", "seg": "SEG", "sr": "SR"}


def _modality(kind: str, source_modality: str) -> str:
    if kind in ("sc", "overlay") and source_modality in ("CR", "DX"):
        return source_modality
    return MODALITY[kind]


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Orthanc]:
    o = start_orthanc(tmp_path_factory.mktemp("orthanc"))
    try:
        yield o
    finally:
        o.stop()


def _sources(folder: Path) -> list[Path]:
    synthetic = folder / "synthetic-cr.dcm"
    make_cr(synthetic, 200, 176, bits=12, photometric="MONOCHROME1", seed=7)
    real = CXR_DICOM / "Fujifilm_DX_canine_thorax_EVRLE.dcm"
    return [synthetic] + ([real] if real.exists() else [])


def test_results_land_in_the_source_study_and_come_back_identical(
    orthanc: Orthanc, tiny_models: dict[str, Path], tmp_path: Path
) -> None:
    settings = Settings(
        models=ModelSettings(
            deblur=tiny_models["deblur"], classify=tiny_models["classify"], providers="cpu"
        ),
        scope=ScopeSettings(enabled=False),  # the dog thorax's objects, whatever its scope
    )
    models = load_models(settings)
    dest = DimseDestination(ae_title=orthanc.aet, host="127.0.0.1", port=orthanc.dicom_port)
    web = dicomweb_client.DICOMwebClient(url=f"{orthanc.url}/dicom-web")
    for src_path in _sources(tmp_path):
        src = pydicom.dcmread(src_path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            results = build_results(analyse(src, models), ResultSettings(), Producer())
        assert [k for k, _ in results] == ["sc", "overlay", "gsps", "seg", "sr"]
        storescu([src_path], orthanc.dicom_port, orthanc.aet)  # the modality sends the source
        sent: dict[str, Path] = {}
        for kind, ds in results:
            path = tmp_path / f"{src_path.stem}-{kind}.dcm"
            ds.save_as(path, enforce_file_format=True)
            send_file(dest, path, "SHARPRAY", 30, 0)
            sent[kind] = path

        # QIDO-RS: the source's study holds the source series and one series per result
        study = str(src.StudyInstanceUID)
        found = {
            s["0020000E"]["Value"][0]: s["00080060"]["Value"][0]
            for s in web.search_for_series(study_instance_uid=study)
        }
        expected = {str(src.SeriesInstanceUID): str(src.Modality)}
        for kind, path in sent.items():
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            expected[str(ds.SeriesInstanceUID)] = _modality(kind, str(src.Modality))
        assert found == expected, src_path.name

        # WADO-RS, as stored: the very datasets that were sent
        for kind, path in sent.items():
            original = pydicom.dcmread(path)
            back = web.retrieve_instance(
                study_instance_uid=study,
                series_instance_uid=str(original.SeriesInstanceUID),
                sop_instance_uid=str(original.SOPInstanceUID),
                media_types=(("application/dicom", "*"),),
            )
            assert back.file_meta.TransferSyntaxUID == original.file_meta.TransferSyntaxUID
            differing = [
                e.keyword or str(e.tag)
                for e in original
                if e.tag not in back or back[e.tag].value != e.value
            ]
            extra = [e.keyword or str(e.tag) for e in back if e.tag not in original]
            assert not differing and not extra, (kind, differing, extra)
            assert back.PixelData == original.PixelData if "PixelData" in original else True


def test_node_sends_what_each_rules_pipeline_selects(
    orthanc: Orthanc, tiny_models: dict[str, Path], tmp_path: Path
) -> None:
    """The node as a real process: the fallback pipeline builds all five objects; a rule for a
    PACS that cannot store SEG builds them without the SEG. Orthanc gets exactly those."""
    folder = tmp_path / "node"
    folder.mkdir()
    cfg = node_config(
        folder,
        tiny_models,
        None,
        destinations={
            "pacs": {
                "type": "dimse",
                "ae_title": orthanc.aet,
                "host": "127.0.0.1",
                "port": orthanc.dicom_port,
            }
        },
        pipelines={
            "all": {"results": ["sc", "overlay", "gsps", "seg", "sr"]},
            "no-seg": {"results": ["sc", "overlay", "gsps", "sr"]},
        },
        routing={
            "rules": [
                {
                    "name": "old-pacs",
                    "match": {"calling_ae": "OLD_ROOM"},
                    "process": "no-seg",
                    "send_results_to": ["pacs"],
                }
            ],
            "fallback": {"name": "rest", "process": "all", "send_results_to": ["pacs"]},
        },
    )
    node = NodeProcess(folder, cfg).start()
    try:
        a = make_cr(tmp_path / "a.dcm", 160, 144, photometric="MONOCHROME1", seed=11)
        b = make_cr(tmp_path / "b.dcm", 160, 144, seed=12)
        storescu([tmp_path / "a.dcm"], node.dimse_port, node.ae_title, aet="NEW_ROOM")
        storescu([tmp_path / "b.dcm"], node.dimse_port, node.ae_title, aet="OLD_ROOM")
        counts = node.wait_idle(timeout=180)
        assert not any(st == "failed" for (_, st) in counts), (counts, node.log_text()[-3000:])
        assert counts.get(("dispatch", "done")) == 5 + 4, counts
        web = dicomweb_client.DICOMwebClient(url=f"{orthanc.url}/dicom-web")
        for src, modalities in (
            (a, ["CR", "CR", "PR", "SEG", "SR"]),
            (b, ["CR", "CR", "PR", "SR"]),
        ):
            series = web.search_for_series(study_instance_uid=str(src.StudyInstanceUID))
            found = sorted(s["00080060"]["Value"][0] for s in series)
            assert found == sorted(modalities), found
        assert node.stop() == 0
    finally:
        node.kill()
