"""What a radiologist sees: the node's results in OHIF v3, in headless Chromium.

As a hospital would run it: dcmtk's storescu sends a pediatric chest radiograph with pneumonia
(tests/data) to a real node process with its bundled models; the node processes it and delivers
the results by STOW-RS to a DICOMweb destination that is the node itself (what the node made is
stored, never processed again: ``routing.ignore_own_results``). The node serves OHIF v3 (the npm package
``@ohif/app``, fetched by scripts/setup-tests.sh) at /viewer against its own /dicom-web. In the
browser:

* the study opens with no console error and the corrected image is drawn;
* the SR opens: OHIF hydrates its measurement groups and draws them; the finding's text
  ("AI finding: Pneumonia PRESENT ...") and the hot regions' labels are in the viewport;
* the BINARY heatmap SEG opens over the image (a labelmap is drawn).

Set VIEWER_SCREENSHOTS_DIR=docs/images to (re)write the screenshots docs/results.md shows.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from sqlalchemy import select

from node.config import Settings
from storage import db
from storage.tables import Instance
from tests.browser import CHROMEDRIVER, CHROMIUM, chromium_driver
from tests.support.dcmtk import storescu
from tests.support.node_proc import REPO, NodeProcess, node_config
from tests.support.paths import TEST_DATA
from tests.support.ports import wait_for

pytestmark = pytest.mark.e2e

OHIF_DIST = Path(os.environ.get("SHARPRAY_OHIF_DIST", REPO / ".cache/ohif/package/dist"))
SOURCE = TEST_DATA / "dx_pediatric_chest_pneumonia.dcm"
# console messages OHIF 3.13 logs on every page, whatever the server: not ours to fix
KNOWN_NOISE = ("favicon", "sw.js", "service worker", "ServiceWorker", "manifest.json")


@dataclass
class Viewer:
    node: NodeProcess
    driver: WebDriver
    study: str
    series: dict[str, str]  # modality of the result kind -> Series Instance UID

    def open(self, series: str | None = None) -> None:
        url = f"{self.node.http_url}/viewer?StudyInstanceUIDs={self.study}"
        if series is not None:
            url += f"&initialSeriesInstanceUID={series}"
        self.driver.get_log("browser")  # drop what earlier pages logged
        self.driver.get(url)
        wait_for(self._drawn, 120, "OHIF to draw a viewport", interval=0.5)

    def _drawn(self) -> bool:
        return bool(
            self.driver.execute_script(
                "const c = document.querySelector('.cornerstone-viewport-element canvas');"
                "return c !== null && c.width > 0;"
            )
        )

    def svg_text(self) -> str:
        return str(
            self.driver.execute_script(
                "return Array.from(document.querySelectorAll('svg text'))"
                ".map(t => t.textContent).join('\\n');"
            )
        )

    def console_errors(self) -> list[str]:
        return [
            str(e["message"])
            for e in self.driver.get_log("browser")
            if e["level"] == "SEVERE" and not any(n in str(e["message"]) for n in KNOWN_NOISE)
        ]

    def screenshot(self, name: str) -> None:
        folder = os.environ.get("VIEWER_SCREENSHOTS_DIR")
        if folder:
            self.driver.save_screenshot(str(Path(folder) / f"ohif-{name}.png"))


@pytest.fixture(scope="module")
def viewer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Viewer]:
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("chromium and chromedriver are not installed (scripts/setup-tests.sh)")
    if not (OHIF_DIST / "index.html").is_file():
        pytest.skip(f"OHIF is not installed at {OHIF_DIST} (scripts/setup-tests.sh: npm @ohif/app)")
    tmp = tmp_path_factory.mktemp("viewer")
    bundled = Settings().models
    cfg = node_config(tmp / "node", {"deblur": Path(), "classify": Path()}, None)
    cfg["models"] = {"deblur": None, "classify": str(bundled.classify), "providers": "cpu"}
    cfg["scope"] = {"enabled": True}
    cfg["dicomweb"] = {"viewer_dir": str(OHIF_DIST)}
    cfg["destinations"] = {"self": {"type": "dicomweb", "url": "http://127.0.0.1:1/dicom-web"}}
    node = NodeProcess(tmp / "node", cfg)
    cfg["destinations"]["self"]["url"] = f"{node.http_url}/dicom-web"
    cfg["pipelines"] = {"full_with_seg": {"results": ["sc", "seg", "sr"]}}
    # what the node made comes back by STOW-RS: stored and served, not processed again
    # (routing.ignore_own_results, on by default)
    cfg["routing"] = {
        "rules": [],
        "fallback": {"name": "chest", "process": "full_with_seg", "send_results_to": ["self"]},
    }
    (tmp / "node").mkdir()
    node.start()
    driver = None
    try:
        storescu([SOURCE], node.dimse_port, node.ae_title)
        node.wait_idle(timeout=300)
        engine = db.make_engine(node.database_url)
        try:
            with db.make_sessionmaker(engine)() as s:
                rows = list(s.scalars(select(Instance)))
        finally:
            engine.dispose()
        source = pydicom.dcmread(SOURCE, stop_before_pixels=True)
        series = {
            str(row.modality): row.series_instance_uid
            for row in rows
            if row.series_instance_uid != source.SeriesInstanceUID
        }
        driver = chromium_driver(
            Path(tempfile.mkdtemp(dir=tmp)), "1600,1000", "--enable-unsafe-swiftshader"
        )
        study = str(source.StudyInstanceUID)
        yield Viewer(node, driver, study, series)
    finally:
        if driver is not None:
            driver.quit()
        node.stop()


def test_the_node_delivered_its_results_to_its_own_dicomweb(viewer: Viewer) -> None:
    assert set(viewer.series) == {"DX", "SEG", "SR"}  # the corrected SC keeps Modality DX


def test_the_dashboard_links_the_study_to_the_viewer(viewer: Viewer) -> None:
    viewer.driver.get(f"{viewer.node.http_url}/dashboard/studies/{viewer.study}")
    link = viewer.driver.find_element(By.CSS_SELECTOR, "a.open-viewer")
    assert link.get_attribute("href").endswith(f"/viewer?StudyInstanceUIDs={viewer.study}")


def test_study_opens_with_the_corrected_image_and_no_console_error(viewer: Viewer) -> None:
    viewer.open()
    labels = viewer.driver.find_elements(By.CSS_SELECTOR, '[data-cy="series-description-label"]')
    descriptions = " | ".join(e.text for e in labels)
    assert "AI result" in descriptions or "corrected" in descriptions.lower(), descriptions
    assert viewer.console_errors() == []
    viewer.screenshot("study")


def test_sr_shows_the_finding_and_outlines_on_the_image(viewer: Viewer) -> None:
    viewer.open(viewer.series["SR"])

    def labelled() -> str | None:
        text = viewer.svg_text()
        return text if "AI finding: Pneumonia PRESENT" in text else None

    try:
        text = wait_for(labelled, 60, "the SR's finding text in the viewport", interval=0.5)
    except TimeoutError:
        viewer.screenshot("sr-failed")
        raise AssertionError(
            f"viewport text: {viewer.svg_text()!r}; {viewer.console_errors()}"
        ) from None
    assert "evidence region 1" in text
    outlines = viewer.driver.execute_script(
        "return document.querySelectorAll('svg polyline, svg path').length"
    )
    assert int(outlines) >= 2  # the whole image (finding) and at least one hot region
    assert viewer.console_errors() == []
    viewer.screenshot("sr")


def _yellow_fraction(viewer: Viewer) -> float:
    """Share of the screen that is the SEG's display colour (yellow), over the grey image."""
    rgb = np.asarray(Image.open(io.BytesIO(viewer.driver.get_screenshot_as_png())).convert("RGB"))
    r, g, b = (rgb[..., i].astype(int) for i in range(3))
    return float(((r - b > 80) & (g - b > 80) & (abs(r - g) < 60)).mean())


def test_seg_is_overlaid_on_the_image(viewer: Viewer) -> None:
    viewer.open()
    plain = _yellow_fraction(viewer)  # the study without the SEG: no yellow to speak of
    assert plain < 0.005
    viewer.open(viewer.series["SEG"])

    def overlaid() -> float | None:
        for button in viewer.driver.find_elements(By.XPATH, "//button[normalize-space()='Yes']"):
            button.click()  # "Do you want to open this Segmentation?"
        fraction = _yellow_fraction(viewer)
        return fraction if fraction > 0.02 else None

    try:
        fraction = wait_for(overlaid, 60, "the SEG drawn over the image", interval=1.0)
    except TimeoutError:
        viewer.screenshot("seg-failed")
        raise AssertionError(f"no segment shown; console: {viewer.console_errors()}") from None
    assert fraction > 0.02
    assert viewer.console_errors() == []
    viewer.screenshot("seg")
