"""The benchmarks in smoke mode (tiny sizes, one run), so that they cannot rot.

Runs ``python -m bench --smoke`` as a user would, against the real peers (dcmtk, Orthanc, the node
as a process, PostgreSQL where it runs), and checks that the report has every section with sane,
positive figures. Not a performance test: no figure is compared with a target here.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.dcmtk import require
from tests.support.orthanc import orthanc_available

REPO = Path(__file__).resolve().parents[2]


def _positive(x: Any) -> bool:
    return isinstance(x, int | float) and not math.isnan(x) and x > 0


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    require("storescu")
    require("storescp")
    if not orthanc_available():
        pytest.skip("Orthanc is not installed")
    out = tmp_path_factory.mktemp("bench-out")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHARPRAY_")}
    env["PYTHONPATH"] = str(REPO)
    r = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--out", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-4000:]
    report = json.loads((out / "report.json").read_text())
    return report, out


def test_report_has_every_section_and_no_failure(smoke: tuple[dict[str, Any], Path]) -> None:
    report, out = smoke
    assert report["mode"] == "smoke"
    for section in ("ingest", "inference", "e2e", "workers", "dicomweb", "gpu"):
        assert section in report, section
        assert "error" not in report[section], report[section].get("error")
    m = report["machine"]
    assert m["cores"] >= 1 and m["cpu"]
    assert len(report["load"]["start"]) == 3 and len(report["load"]["end"]) == 3
    hw = report["hardware"]
    assert _positive(hw["matmul"]["peak_gflops"])
    assert _positive(hw["disk_fsync"]["mb_s"])
    table = (out / "table.md").read_text()
    assert "## C-STORE ingest" in table and "## Inference" in table and "## End to end" in table
    assert "load.png" in report["plots"] and (out / "load.png").stat().st_size > 1000
    assert (out / "ingest.png").stat().st_size > 1000


def test_ingest_figures_are_sane(smoke: tuple[dict[str, Any], Path]) -> None:
    ingest = smoke[0]["ingest"]
    cases = {c["case"]: c for c in ingest["cases"]}
    for name in ("storescp", "orthanc", "sharpray_sqlite", "scu_sharpray_dispatch"):
        c = cases[name]
        assert c["all_received"], c  # every image arrived at the receiver
        assert _positive(c["img_s"]) and _positive(c["mb_s"]), c
    assert _positive(cases["sharpray_sqlite"]["receiver_cpu_s_per_img"])
    prof = ingest["profile"][0]
    assert _positive(prof["whole_ingest_ms"]) and _positive(prof["fsync_ms"]), prof
    assert _positive(prof["sequential_img_s"]) and _positive(prof["two_threads_img_s"]), prof
    ratios = ingest["ratios"]["large"]
    assert _positive(ratios["sharpray_over_storescp"]) and _positive(
        ratios["sharpray_over_orthanc"]
    )


def test_inference_counts_flops_and_compares_engines(smoke: tuple[dict[str, Any], Path]) -> None:
    inf = smoke[0]["inference"]
    engines = {(c["task"], c["engine"]) for c in inf["cases"]}
    assert engines == {("deblur", "ort"), ("deblur", "ort_int8"), ("deblur", "torch"),
                       ("classify", "ort"), ("classify", "torch")}  # fmt: skip
    assert {c["precision"] for c in inf["cases"] if c["engine"] == "ort_int8"} == {"int8"}
    for c in inf["cases"]:
        assert _positive(c["ms_median"]) and _positive(c["peak_rss_mb"]), c
        assert _positive(c["gflop_executed"]) and _positive(c["achieved_gflops"]), c
        assert 0 < c["fraction_of_peak"] < 5, c
    assert {s["task"] for s in inf["speedups"]} == {"deblur", "classify"}
    assert {s["task"] for s in inf["speedups_int8"]} == {"deblur"}


def test_end_to_end_delivers_everything_to_orthanc(smoke: tuple[dict[str, Any], Path]) -> None:
    e2e = smoke[0]["e2e"]
    lat = e2e["latency"]
    assert lat["in_orthanc"] == lat["expected_in_orthanc"] > 0
    assert _positive(lat["sr_p95_s"]) and lat["sr_p50_s"] <= lat["sr_p95_s"]
    pp = e2e["pipeline_profile"]  # the worker's own time on one radiograph
    assert _positive(pp["run_image_ms"]), pp
    assert "sr" in lat["results"] and pp["results"] == lat["results"] and pp["top_functions"], pp
    for level in e2e["load"]:
        assert level["orthanc_total"] == level["orthanc_expected_total"]
        assert _positive(level["throughput_img_s"]) and _positive(level["sr_p95_s"])
        assert level["queue_depth"] and level["max_process_queued"] >= 0


def test_workers_and_dicomweb(smoke: tuple[dict[str, Any], Path]) -> None:
    report = smoke[0]
    workers = report["workers"]
    if "skipped" not in workers:
        for level in workers["levels"]:
            assert level["done"] == level["jobs"] and _positive(level["jobs_s"]), level
            assert sum(level["jobs_per_worker"]) == level["jobs"]
    web = report["dicomweb"]
    ops = {(c["server"], c["op"]) for c in web["cases"]}
    assert {("orthanc", "stow"), ("orthanc", "wado")} <= ops
    for c in web["cases"]:
        assert c["failed"] == 0 and _positive(c["img_s"]), c


def test_gpu_section_skips_cleanly_without_a_gpu(smoke: tuple[dict[str, Any], Path]) -> None:
    gpu = smoke[0]["gpu"]
    if smoke[0]["machine"]["gpu"] is None:
        assert "skipped" in gpu and gpu["skipped"]
    else:
        assert "cases" in gpu or "skipped" in gpu


def test_gpu_code_path_reports_a_cpu_fallback(tmp_path: Path) -> None:
    """Where no GPU answers, the GPU section's own code still runs (ONNX Runtime falls back to
    the CPU when asked for CUDA) and every case says that it fell back, so the code cannot rot on
    CPU-only CI and a silent fallback on a GPU host shows in the report."""
    from unittest import mock

    from bench import gpu
    from bench.common import Sizes

    with (
        mock.patch.object(gpu, "availability", return_value=(True, "pretend")),
        mock.patch.object(gpu, "gpu_name", return_value=None),
    ):
        report = gpu.run(Sizes.for_mode(True), tmp_path, 100.0)
    assert report["parity"] and all(p["parity_holds"] for p in report["parity"])
    assert report["cases"], report
    for c in report["cases"]:
        assert c["provider"] in ("cuda", "tensorrt") and _positive(c["ms_median"])
        if c["providers_used"][0] == "CPUExecutionProvider":
            assert c["fell_back_to_cpu"] is True


def test_process_many_files_in_one_call(smoke: tuple[dict[str, Any], Path]) -> None:
    proc = smoke[0]["process"]
    assert proc["n"] == 2 and proc["summary"]["processed"] == 2, proc
    assert proc["exit_one_call"] == 0 and proc["exit_codes_per_file"] == [0], proc
    assert _positive(proc["one_call_s"]) and _positive(proc["process_per_file_s"]), proc
    assert "sharpray process" in (smoke[1] / "table.md").read_text()
