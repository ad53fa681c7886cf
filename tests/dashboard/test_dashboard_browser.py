"""The dashboard in headless Chromium (Debian's chromium + chromedriver, driven by Selenium).

A real node process (tiny models) processes the real radiographs of tests/data and sends the
results to a real Orthanc ("pacs") and to a second Orthanc that is stopped ("archive"), so those
deliveries fail. Then, in the browser: every page loads with no console error; the study page
shows three images whose pixels are the node's own WADO-RS /rendered output of the source, the
corrected image and the overlay; the archive is started and a Retry pressed on the jobs page
re-delivers a failed job to it; the routing page's "test a file" gives the dry run's decision.

Set DASHBOARD_SCREENSHOTS_DIR=docs/images to (re)write the screenshots the README shows.
"""

from __future__ import annotations

import base64
import io
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pydicom
import pytest
from PIL import Image
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from sqlalchemy import select

from node.config import load_settings
from node.instance_index import Received
from node.route import explain
from node.sop import RESULT_SOP_CLASSES, RESULT_TRANSFER_SYNTAX
from storage import db
from storage.tables import AuditEvent, Instance, Job
from tests.browser import CHROMEDRIVER, CHROMIUM, chromium_driver
from tests.support.dcmtk import storescu
from tests.support.node_proc import NodeProcess, node_config
from tests.support.orthanc import Orthanc, start_orthanc
from tests.support.paths import TEST_DATA
from tests.support.ports import wait_for

pytestmark = pytest.mark.e2e

RESULTS = ["sc", "overlay", "sr"]


@dataclass
class World:
    node: NodeProcess
    pacs: Orthanc
    archive: Orthanc  # stopped until the retry test starts it
    files: list[Path]
    driver: WebDriver

    def rows(self, stmt):  # type: ignore[no-untyped-def]
        engine = db.make_engine(self.node.database_url)
        try:
            with db.make_sessionmaker(engine)() as s:
                return list(s.scalars(stmt))
        finally:
            engine.dispose()

    def open(self, path: str) -> None:
        self.driver.get(self.node.http_url + path)
        wait_for(
            lambda: self.driver.execute_script("return document.readyState") == "complete",
            30,
            f"{path} to load",
        )

    def console_errors(self) -> list[str]:
        return [str(e["message"]) for e in self.driver.get_log("browser") if e["level"] == "SEVERE"]

    def screenshot(self, name: str) -> None:
        folder = os.environ.get("DASHBOARD_SCREENSHOTS_DIR")
        if folder:
            self.driver.save_screenshot(str(Path(folder) / f"dashboard-{name}.png"))


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory, tiny_models: dict[str, Path]
) -> Iterator[World]:
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip(
            "chromium and chromedriver are not installed (apt-get install chromium chromium-driver)"
        )
    tmp = tmp_path_factory.mktemp("dashboard")
    pacs = start_orthanc(tmp / "pacs")
    archive = start_orthanc(tmp / "archive", aet="ARCHIVE")
    archive.stop()  # its port is free: deliveries there fail until it starts again
    cfg = node_config(tmp / "node", tiny_models, (pacs.aet, pacs.dicom_port))
    cfg["destinations"]["archive"] = {
        "type": "dimse",
        "ae_title": archive.aet,
        "host": "127.0.0.1",
        "port": archive.dicom_port,
    }
    cfg["routing"]["fallback"]["send_results_to"] = ["pacs", "archive"]
    cfg["routing"]["rules"] = [  # matches neither test file: shown, and failed, in the dry run
        {
            "name": "hands",
            "match": {"attributes": [{"tag": "BodyPartExamined", "equals": "HAND"}]},
            "process": "full",
            "send_results_to": ["pacs"],
        }
    ]
    cfg["pipelines"] = {"full": {"results": RESULTS}}
    cfg["dispatch"].update(max_attempts=2, backoff_initial_s=0.2, backoff_max_s=0.5)
    (tmp / "node").mkdir()
    node = NodeProcess(tmp / "node", cfg).start()
    files = sorted(TEST_DATA.glob("*.dcm"))
    driver = None
    try:
        storescu(files, node.dimse_port, node.ae_title)
        node.wait_idle(timeout=300)
        driver = chromium_driver(Path(tempfile.mkdtemp(dir=tmp)))
        yield World(node, pacs, archive, files, driver)
    finally:
        if driver is not None:
            driver.quit()
        node.stop()
        pacs.stop()
        archive.stop()


def _canvas_pixels(driver: WebDriver, img: object) -> np.ndarray:
    """The pixels the browser decoded for an <img>, read back through a canvas."""
    url = driver.execute_script(
        "const img = arguments[0]; const c = document.createElement('canvas');"
        "c.width = img.naturalWidth; c.height = img.naturalHeight;"
        "c.getContext('2d').drawImage(img, 0, 0); return c.toDataURL('image/png');",
        img,
    )
    data = base64.b64decode(str(url).split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(np.int16)


def _rendered(world: World, inst: Instance) -> np.ndarray:
    r = httpx.get(
        f"{world.node.http_url}/dicom-web/studies/{inst.study_instance_uid}/series/"
        f"{inst.series_instance_uid}/instances/{inst.sop_instance_uid}/rendered",
        headers={"Accept": "image/png"},
        timeout=60,
    )
    r.raise_for_status()
    return np.asarray(Image.open(io.BytesIO(r.content)).convert("RGB")).astype(np.int16)


def test_overview_shows_the_counts_models_and_disk(world: World) -> None:
    world.open("/dashboard")
    received = world.rows(select(Instance).where(Instance.origin == "received"))
    assert len(received) == len(world.files)
    d = world.driver
    count = {
        k: int(d.find_element(By.CSS_SELECTOR, f"#count-{k} .big").text)
        for k in ("received", "processed", "delivered", "failed")
    }
    jobs = world.rows(select(Job))
    assert count["received"] == len(world.files)
    assert count["processed"] == sum(j.kind == "process" and j.state == "done" for j in jobs)
    assert count["delivered"] == sum(j.kind == "dispatch" and j.state == "done" for j in jobs)
    assert count["failed"] == sum(j.state == "failed" for j in jobs) > 0
    models = d.find_element(By.ID, "models").text
    assert "CPUExecutionProvider" in models and "deblur" in models and "classify" in models
    assert "watermark 500 MB" in d.find_element(By.ID, "disk").text
    studies = d.find_element(By.ID, "studies").text
    for inst in received:
        assert inst.study_instance_uid in studies
    assert world.console_errors() == []
    world.screenshot("overview")


def test_study_page_shows_the_source_corrected_and_overlay_renderings(world: World) -> None:
    instances = world.rows(select(Instance))
    sources = [i for i in instances if i.origin == "received"]
    process = {j.instance_id: j for j in world.rows(select(Job).where(Job.kind == "process"))}
    for n, src in enumerate(sources):
        world.open(f"/dashboard/studies/{src.study_instance_uid}")
        d = world.driver
        section = d.find_element(
            By.CSS_SELECTOR, f"section.source[data-sop='{src.sop_instance_uid}']"
        )
        imgs = section.find_elements(By.CSS_SELECTOR, ".images img")

        def loaded(imgs: list[Any] = imgs) -> bool:
            script = "return arguments[0].complete && arguments[0].naturalWidth > 0"
            return all(world.driver.execute_script(script, i) for i in imgs)

        wait_for(loaded, 60, "the study page's images")
        derived = {i.result_kind: i for i in instances if i.derived_from_id == src.id}
        expected = {"source": src, "corrected": derived["sc"], "overlay": derived["overlay"]}
        assert [i.get_attribute("data-role") for i in imgs] == ["source", "corrected", "overlay"]
        shown = {}
        for img in imgs:
            role = str(img.get_attribute("data-role"))
            inst = expected[role]
            assert img.get_attribute("data-sop") == inst.sop_instance_uid
            pixels = _canvas_pixels(d, img)
            reference = _rendered(world, inst)
            assert pixels.shape == reference.shape, role
            assert np.abs(pixels - reference).mean() < 1.0, role  # the same rendering
            shown[role] = pixels
        # the overlay is the colour heatmap; the source and corrected images are grayscale
        for role in ("source", "corrected"):
            assert np.array_equal(shown[role][..., 0], shown[role][..., 1]), role
        assert not np.array_equal(shown["overlay"][..., 0], shown["overlay"][..., 2])
        detail = process[src.id].detail
        assert section.find_element(By.CSS_SELECTOR, ".finding").text == detail["finding"]
        assert float(section.find_element(By.CSS_SELECTOR, ".probability").text) == pytest.approx(
            detail["probability"]
        )
        for key in ("sharpness_before", "sharpness_after"):
            shown_value = section.find_element(By.CSS_SELECTOR, "." + key.replace("_", "-")).text
            assert float(shown_value) == pytest.approx(detail[key])
        history = section.find_element(By.CSS_SELECTOR, "table.deliveries").text
        for r in derived.values():
            assert r.sop_instance_uid in history
        assert "pacs" in history and "archive" in history and "failed" in history
        assert world.console_errors() == []
        if n == 0:
            world.screenshot("study")


def test_retry_pressed_in_the_browser_redelivers_to_orthanc(world: World) -> None:
    failed = world.rows(
        select(Job).where(Job.state == "failed", Job.destination == "archive").order_by(Job.id)
    )
    assert failed, "deliveries to the stopped archive should have failed"
    world.open("/dashboard/jobs?state=failed&destination=archive")
    world.screenshot("jobs")
    assert world.console_errors() == []
    job = failed[0]
    uid = world.rows(select(Instance.sop_instance_uid).where(Instance.id == job.instance_id))[0]
    world.archive.start()  # the peer is back
    assert world.archive.instances() == []
    world.driver.find_element(By.CSS_SELECTOR, f"button.retry[data-job='{job.id}']").click()
    wait_for(
        lambda: "queued again" in world.driver.find_element(By.ID, "message").text,
        20,
        "the retry to be acknowledged",
    )

    def delivered() -> bool:
        (state,) = world.rows(select(Job.state).where(Job.id == job.id))
        return bool(state == "done")

    wait_for(delivered, 60, f"job {job.id} to be delivered", interval=0.3)
    in_archive = {world.archive.tags(o)["SOPInstanceUID"] for o in world.archive.instances()}
    assert in_archive == {uid}  # this job, and only it (the others were not retried)
    audit = world.rows(select(AuditEvent).where(AuditEvent.event == "admin.retry"))
    assert [a.actor for a in audit] == ["dashboard"]
    assert world.console_errors() == []


def test_cancel_and_refusals(world: World) -> None:
    failed = world.rows(
        select(Job).where(Job.state == "failed", Job.destination == "archive").order_by(Job.id)
    )
    assert failed
    job = failed[-1]
    world.open("/dashboard/jobs?state=failed")
    world.driver.find_element(By.CSS_SELECTOR, f"button.cancel[data-job='{job.id}']").click()
    wait_for(
        lambda: "cancelled" in world.driver.find_element(By.ID, "message").text,
        20,
        "the cancel to be acknowledged",
    )
    assert world.rows(select(Job.state).where(Job.id == job.id)) == ["cancelled"]
    assert world.console_errors() == []
    base = world.node.http_url + "/dashboard"
    # an action without the dashboard's header (a cross-site form) is refused, nothing changes
    r = httpx.post(f"{base}/api/jobs/{job.id}/retry", timeout=10)
    assert r.status_code == 403
    assert world.rows(select(Job.state).where(Job.id == job.id)) == ["cancelled"]
    h = {"X-SharpRay-Action": "1"}
    assert httpx.post(f"{base}/api/jobs/999999/retry", headers=h, timeout=10).status_code == 409
    assert httpx.get(f"{base}/jobs?state=bogus", timeout=10).status_code == 400
    assert httpx.get(f"{base}/jobs?date=yesterday", timeout=10).status_code == 400
    assert httpx.get(f"{base}/studies/1.2.3.4", timeout=10).status_code == 404
    assert httpx.get(f"{base}/static/../config.py", timeout=10).status_code == 404


def test_routing_page_tests_a_file_with_the_dry_run(world: World) -> None:
    world.open("/dashboard/routing")
    d = world.driver
    dests = d.find_element(By.ID, "destinations").text
    assert "pacs" in dests and "archive" in dests and str(world.archive.dicom_port) in dests
    assert "sc, overlay, sr" in d.find_element(By.ID, "pipelines").text
    f = world.files[0]
    d.find_element(By.CSS_SELECTOR, "#route-test input[type=file]").send_keys(str(f))
    d.find_element(By.CSS_SELECTOR, "#route-test input[name=calling_ae]").send_keys("STORESCU")
    d.find_element(By.CSS_SELECTOR, "#route-test button").click()
    wait_for(lambda: d.find_elements(By.ID, "dry-run"), 20, "the dry run")
    settings = load_settings(world.node.folder / "config.yaml", environ={})
    header = pydicom.dcmread(f, stop_before_pixels=True)
    run = explain(settings, header, Received(source="dimse", calling_ae="STORESCU"))
    shown = d.find_element(By.CSS_SELECTOR, "#dry-run .summary").text
    assert shown == run.decision.summary()
    assert "archive" in shown and run.decision.rule == "fallback"
    checks = d.find_element(By.CSS_SELECTOR, "#dry-run table").text
    for c in run.checks:
        assert c.rule in checks
        if c.failed:
            assert c.failed in checks
    assert [c.rule for c in run.checks if not c.matched] == ["hands"]
    assert "BodyPartExamined" in d.find_element(By.CSS_SELECTOR, "pre.rule").text
    assert world.console_errors() == []
    world.screenshot("routing")
    # not a DICOM file: a clear 400
    r = httpx.post(
        world.node.http_url + "/dashboard/routing/test",
        files={"file": ("x.dcm", b"not dicom")},
        timeout=10,
    )
    assert r.status_code == 400 and "not a readable DICOM file" in r.text


def test_written_objects_are_those_the_conformance_statement_lists(world: World) -> None:
    results = world.rows(select(Instance).where(Instance.origin == "result"))
    assert {r.result_kind for r in results} == set(RESULTS)
    for r in results:
        assert r.sop_class_uid == RESULT_SOP_CLASSES[str(r.result_kind)], r.result_kind
        assert r.transfer_syntax_uid == RESULT_TRANSFER_SYNTAX, r.result_kind
