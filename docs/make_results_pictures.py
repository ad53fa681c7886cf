"""Make the pictures of docs/results.md: every result object of one real radiograph, as dcmtk shows it.

    PYTHONPATH=. python docs/make_results_pictures.py [SOURCE.dcm]

Runs the real pipeline with the tiny test models (random weights: the heatmap shows the encoding,
not a finding), builds the five result objects with the default settings, then renders

* the corrected SC (first VOI window), the overlay SC and the SEG with ``dcm2pnm``, 640 px wide;
* the corrected SC under the GSPS with ``dcmp2pgm -p`` (which applies the state's VOI and
  Presentation LUT but draws no graphics), with the GSPS's own POLYLINE GraphicData drawn on top;
* the SR as ``dsrdump`` prints it (docs/images/results-sr.txt).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image, ImageDraw

from models.make_test_models import make_test_models
from node.app import load_models
from node.config import ModelSettings, ResultSettings, Settings
from node.pipeline.analyse import analyse
from node.pipeline.outputs import build_results
from node.pipeline.results.inputs import Producer

REPO = Path(__file__).resolve().parents[1]
IMAGES = REPO / "docs" / "images"
DEFAULT_SOURCE = (
    REPO.parent / "shared" / "data" / "cxr-dicom" / "WG04_RG1_CR_Philips_chest_EVRLE.dcm"
)
WIDTH = 640


def main(argv: list[str]) -> int:
    source = Path(argv[0]) if argv else DEFAULT_SOURCE
    IMAGES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        dirs = make_test_models(tmp / "models")
        models = load_models(
            Settings(
                models=ModelSettings(
                    deblur=dirs["deblur"], classify=dirs["classify"], providers="cpu"
                )
            )
        )
        ds = pydicom.dcmread(source)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            results = dict(build_results(analyse(ds, models), ResultSettings(), Producer()))
        paths = {}
        for kind, obj in results.items():
            paths[kind] = tmp / f"{kind}.dcm"
            obj.save_as(paths[kind], enforce_file_format=True)

        for kind in ("sc", "overlay", "seg"):
            out = IMAGES / f"results-{kind}.png"
            window = ["+Wi", "1"] if kind == "sc" else []
            subprocess.run(
                ["dcm2pnm", "+on", "-il", *window, "+Sxv", str(WIDTH), str(paths[kind]), str(out)],
                check=True,
            )
            print(out)

        pgm = tmp / "gsps.pgm"
        subprocess.run(
            ["dcmp2pgm", "-p", str(paths["gsps"]), str(paths["sc"]), str(pgm)], check=True
        )
        image = Image.open(pgm).convert("RGB")
        scale = WIDTH / image.width
        image = image.resize((WIDTH, round(image.height * scale)), Image.Resampling.LANCZOS)
        draw = ImageDraw.Draw(image)
        pr = pydicom.dcmread(paths["gsps"])
        for annotation in pr.GraphicAnnotationSequence:
            for g in annotation.get("GraphicObjectSequence", []):
                pts = np.asarray(g.GraphicData, dtype=np.float64).reshape(-1, 2) * scale
                draw.line([tuple(p) for p in pts], fill=(255, 255, 0), width=2)
            for t in annotation.get("TextObjectSequence", []):
                x, y = (float(v) * scale for v in t.BoundingBoxTopLeftHandCorner)
                draw.text((x, y), t.UnformattedTextValue, fill=(255, 255, 0))
        out = IMAGES / "results-gsps.png"
        image.save(out)
        print(out)

        dump = subprocess.run(
            ["dsrdump", "+Pc", str(paths["sr"])], check=True, capture_output=True, text=True
        ).stdout
        (IMAGES / "results-sr.txt").write_text(dump)
        print(IMAGES / "results-sr.txt")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
