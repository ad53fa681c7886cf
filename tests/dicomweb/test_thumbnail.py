"""WADO-RS thumbnails (PS3.18 §10.4.1.1.5): of an instance, of a series and of a study, small
JPEGs of the first image, for the study browsers of viewers (OHIF asks for them)."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
from PIL import Image

from tests.dicomweb.conftest import RunningNode, header, stow, synthetic


def test_thumbnails_of_instance_series_and_study(node: RunningNode, tmp_path: Path) -> None:
    parts = synthetic(tmp_path, 2, rows=512, cols=384)
    assert stow(node.url, parts).status_code == 200
    ds = header(parts[0])
    study, series, sop = ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID
    base = f"{node.dicomweb}/studies/{study}"
    for path in (
        "/thumbnail",
        f"/series/{series}/thumbnail",
        f"/series/{series}/instances/{sop}/thumbnail",
    ):
        r = httpx.get(base + path, headers={"Accept": "image/jpeg"}, timeout=30)
        assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg", (path, r.text)
        w, h = Image.open(io.BytesIO(r.content)).size
        assert max(w, h) == 128 and abs(w / h - 384 / 512) < 0.02, (path, w, h)
    big = httpx.get(base + "/thumbnail", params={"viewport": "256,256"}, timeout=30)
    assert max(Image.open(io.BytesIO(big.content)).size) == 256
    assert httpx.get(f"{node.dicomweb}/studies/1.2.3.999/thumbnail", timeout=30).status_code == 404
