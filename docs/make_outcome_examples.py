"""Make the three outcome examples of docs/results.md with the node's default (bundled) models,
through ``node.pipeline.run.run_image`` exactly as the node runs them:

* a **normal** image: a NORMAL child's radiograph of Kermany's official *test* split, wrapped as
  a pediatric frontal chest DX (PatientAge 004Y, CHEST, AP): finding absent, so no heatmap
  and no overlay; the SR says "absent" with the probability;
* a **present** finding: a PNEUMONIA image of the same split, wrapped the same way: overlay SC
  and SR with the hot regions;
* an **out-of-scope** image: the canine thorax DX of ``tests/data``: no diagnosis, no heatmap;
  the SR says "not analysed" with the coded reasons.

Writes ``docs/images/outcome-{normal,present,out-of-scope}-sr.txt`` (``dsrdump``) and
``docs/images/outcome-{normal,present,out-of-scope}-{sc,overlay}.png`` (``dcm2pnm``, 512 px)::

    PYTHONPATH=. python docs/make_outcome_examples.py

Which Kermany images: the first NORMAL and the first PNEUMONIA of the test split (labels.csv
order) that the shipped model reads as its label (an example of each outcome, not a selection
of the model's best); the script prints every probability it saw.
"""

from __future__ import annotations

import csv
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from node.app import load_models
from node.config import Settings
from node.pipeline.results.inputs import Producer
from node.pipeline.run import Plan, run_image

REPO = Path(__file__).resolve().parents[1]
IMAGES = REPO / "docs" / "images"
KERMANY = REPO.parent / "shared" / "data" / "kermany-full"
DX_FOR_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.1"


def pediatric_dx(png: Path) -> Dataset:
    """A Kermany PNG as a 4-year-old's frontal chest DX (12 bits, MONOCHROME2, 0.9 mm)."""
    gray = np.asarray(Image.open(png).convert("L"), dtype=np.float32) / 255.0
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = DX_FOR_PRESENTATION
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = DX_FOR_PRESENTATION
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientName, ds.PatientID, ds.PatientAge, ds.PatientSex = "EXAMPLE^CHILD", "EX1", "004Y", "O"
    ds.StudyDate, ds.StudyTime, ds.AccessionNumber, ds.ReferringPhysicianName = (
        "20261201",
        "120000",
        "",
        "",
    )
    ds.StudyID, ds.SeriesNumber, ds.InstanceNumber = "1", 1, 1
    ds.Modality, ds.BodyPartExamined, ds.ViewPosition = "DX", "CHEST", "AP"
    ds.PresentationIntentType, ds.ImageType = "FOR PRESENTATION", ["ORIGINAL", "PRIMARY"]
    ds.ImagerPixelSpacing = [0.9, 0.9]
    ds.Rows, ds.Columns = gray.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = np.rint(gray * 4095).astype(np.uint16).tobytes()
    return ds


def main() -> int:
    settings = Settings()  # the node's defaults: bundled models, intended use checked
    models = load_models(settings)
    plan = Plan.for_pipeline(settings, "full")
    producer = Producer()
    rows = list(csv.DictReader((KERMANY / "labels.csv").open(newline="", encoding="utf-8")))
    test = [r for r in rows if r["split"] == "test"]
    cases: dict[str, Dataset] = {}
    for label, name in (("NORMAL", "normal"), ("PNEUMONIA", "present")):
        for r in (r for r in test if r["label"] == label):
            ds = pediatric_dx(KERMANY / r["path"])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                out = run_image(ds, models, plan, producer)
            p = {f.label: round(f.probability, 3) for f in out.analysis.findings}
            present = [f.label for f in out.analysis.findings if f.is_finding and f.present]
            print(f"{r['path']}: {p} present={present}")
            if bool(present) == (label == "PNEUMONIA"):
                cases[name] = ds
                break
    cases["out-of-scope"] = pydicom.dcmread(REPO / "tests" / "data" / "dx_canine_thorax.dcm")
    IMAGES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for name, ds in cases.items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                out = run_image(ds, models, plan, producer)
            kinds = [k for k, _ in out.results]
            print(
                f"{name}: {kinds}; scope {out.analysis.scope.summary() if out.analysis.scope else '-'}"
            )
            for kind, obj in out.results:
                path = tmp / f"{name}-{kind}.dcm"
                obj.save_as(path, enforce_file_format=True)
                if kind == "sr":
                    dump = subprocess.run(
                        ["dsrdump", "+Pc", str(path)], check=True, capture_output=True, text=True
                    ).stdout
                    (IMAGES / f"outcome-{name}-sr.txt").write_text(dump)
                elif kind in ("sc", "overlay"):
                    png = IMAGES / f"outcome-{name}-{kind}.png"
                    subprocess.run(
                        ["dcm2pnm", "+on", "-il", "+Sxv", "512", str(path), str(png)], check=True
                    )
            for stale in (IMAGES / f"outcome-{name}-overlay.png",):
                if "overlay" not in kinds:
                    stale.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
