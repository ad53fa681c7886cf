"""``python -m bench``: run the benchmarks, write report.json, table.md and PNG plots.

    python -m bench --out bench/out            # bounded full run (tens of minutes on 2 cores)
    python -m bench --out /tmp/b --smoke       # tiny sizes, one run (CI, well under a minute)
    python -m bench --only ingest --only e2e   # some sections
    python -m bench --heavy                    # also ESRGAN on a whole 2048² radiograph

Sections: env, ingest, inference, e2e, workers, dicomweb, gpu (see bench/__init__.py).
A section that fails records {"error": ...} and the others still run; the exit status is 1 then.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from bench import report as report_mod
from bench.common import Json, Sizes, disk_fsync, loadavg, machine, matmul_peak, now_iso

log = logging.getLogger("bench")

SECTIONS = ("ingest", "inference", "e2e", "process", "workers", "dicomweb", "gpu")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("bench/out"), help="report folder")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, one run (CI)")
    ap.add_argument("--heavy", action="store_true", help="also ESRGAN on a whole 2048² image")
    ap.add_argument("--only", action="append", choices=SECTIONS, help="run only these sections")
    ap.add_argument("--skip", action="append", choices=SECTIONS, default=[], help="skip these")
    ap.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temp dir)")
    ap.add_argument("--keep-work", action="store_true", help="keep the scratch folder")
    return ap


def _section(report: Json, name: str, fn: Callable[[], Json]) -> None:
    log.info("section %s ...", name)
    t0 = time.perf_counter()
    load0 = loadavg()
    try:
        result = fn()
    except Exception as e:
        log.error("section %s failed: %s", name, e)
        result = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()[-4000:]}
    result["seconds"] = round(time.perf_counter() - t0, 1)
    result["load_before"] = load0
    report[name] = result
    log.info("section %s done in %.1f s", name, result["seconds"])


def run(args: argparse.Namespace) -> Json:
    from models.make_test_models import make_test_models

    sizes = Sizes.for_mode(args.smoke, args.heavy)
    wanted = [s for s in (args.only or SECTIONS) if s not in args.skip]
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    work = args.work or Path(tempfile.mkdtemp(prefix="sharpray-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    report: Json = {
        "schema": 1,
        "mode": "smoke" if args.smoke else "full",
        "started": now_iso(),
        "sections": wanted,
        "sizes": sizes.__dict__ | {"infer_configs": list(sizes.infer_configs)},
        "machine": machine(),
        "load": {"start": loadavg()},
    }
    try:
        mm = matmul_peak(512 if args.smoke else 2048, 2 if args.smoke else 5)
        disk = disk_fsync(
            work / "fsync", file_mb=1 if args.smoke else 8, count=4 if args.smoke else 8
        )
        report["hardware"] = {"matmul": mm, "disk_fsync": disk}
        peak = float(mm["peak_gflops"])
        tiny = make_test_models(work / "tiny-models")

        if "ingest" in wanted:

            def ingest() -> Json:
                from bench import ingest as ingest_mod
                from bench.data import make_set

                sets = [make_set(work / "set-large", "large", sizes.large_n, sizes.large_px)]
                if not sizes.smoke:
                    sets.append(
                        make_set(work / "set-small", "small", sizes.small_n, sizes.small_px)
                    )
                r = ingest_mod.run(sizes, work / "ingest", sets, tiny)
                r["datasets"] = [s.describe() for s in sets]
                r["disk_limit_img_s"] = {
                    s.name: ingest_mod.disk_limit_img_s(float(disk["mb_s"]), s) for s in sets
                }
                for s in sets:
                    shutil.rmtree(s.folder, ignore_errors=True)
                return r

            _section(report, "ingest", ingest)
        if "inference" in wanted:
            from bench import inference

            _section(report, "inference", lambda: inference.run(sizes, work / "models", peak))
        if "e2e" in wanted:

            def e2e() -> Json:
                from bench import e2e as e2e_mod
                from bench import inference

                demo_int8: dict[str, Path] | None = None
                if sizes.smoke:
                    demo, label = tiny, "tiny test models (smoke)"
                else:
                    demo, label = inference.demo_models(work / "models")
                    int8 = demo["deblur"].parent / "deblur-demo-int8"
                    if (int8 / "manifest.json").exists():
                        demo_int8 = {**demo, "deblur": int8}
                from bench.pipeline_profile import profile

                r = e2e_mod.run(sizes, work / "e2e", demo, label, tiny, demo_int8)
                try:  # a failure here must not lose the end-to-end figures
                    r["pipeline_profile"] = profile(tiny, sizes.latency_px, work / "profile")
                except Exception as e:
                    r["pipeline_profile_error"] = f"{type(e).__name__}: {e}"
                return r

            _section(report, "e2e", e2e)
        if "process" in wanted:
            from bench import process_many

            if sizes.smoke:
                _section(
                    report,
                    "process",
                    lambda: process_many.run(work / "process", 2, 256, tiny, shared=False),
                )
            else:
                _section(report, "process", lambda: process_many.run(work / "process"))
        if "workers" in wanted:
            from bench import workers

            _section(report, "workers", lambda: workers.run(sizes, work / "workers", tiny))
        if "dicomweb" in wanted:

            def web() -> Json:
                from bench import dicomweb
                from bench.data import make_set

                ds = make_set(work / "set-web", "web", sizes.web_n, sizes.web_px, seed=7)
                return dicomweb.run(sizes, work / "dicomweb", ds, tiny)

            _section(report, "dicomweb", web)
        if "gpu" in wanted:
            from bench import gpu

            _section(report, "gpu", lambda: gpu.run(sizes, work / "models", peak))
            if "cases" in report["gpu"]:

                def gpu_e2e() -> Json:
                    from bench import inference

                    demo, _ = inference.demo_models(work / "models")
                    return gpu.e2e(sizes, work / "e2e-gpu", demo["classify"])

                _section(report, "gpu_e2e", gpu_e2e)
    finally:
        if not args.keep_work and args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    report["load"]["end"] = loadavg()
    report["finished"] = now_iso()
    report["duration_s"] = round(time.perf_counter() - t0, 1)
    report["targets"] = report_mod.targets(report)
    (out / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / "table.md").write_text(report_mod.markdown(report))
    report["plots"] = [p.name for p in report_mod.plots(report, out)]
    (out / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    return report


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for noisy in ("httpx", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # pynetdicom logs every refused connection while a receiver starts (we poll with C-ECHO)
    logging.getLogger("pynetdicom").setLevel(logging.CRITICAL)
    report = run(args)
    print((args.out / "table.md").read_text())
    failed = [s for s in SECTIONS if isinstance(report.get(s), dict) and "error" in report[s]]
    if failed:
        print(f"sections failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0
