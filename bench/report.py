"""The report's targets, its markdown table and its plots (matplotlib, PNG)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from bench.common import Json


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, int | float) and not math.isnan(float(x)) else None


def targets(report: Json) -> list[Json]:
    """The issue's targets, each with the value measured in this run and whether it is met."""
    out: list[Json] = []

    def add(name: str, value: Any, op: str, target: float, note: str = "") -> None:
        v = _num(value)
        met = None if v is None else (v >= target if op == ">=" else v < target)
        out.append({"name": name, "value": v, "op": op, "target": target, "met": met, "note": note})

    ingest = report.get("ingest", {})
    for ds, r in (ingest.get("ratios") or {}).items():
        if ds != "large":
            continue
        scp = next(
            (c for c in ingest.get("cases", []) if c["case"] == "storescp" and c["dataset"] == ds),
            None,
        )
        limit = (ingest.get("disk_limit_img_s") or {}).get(ds)
        note = ""
        if scp and limit and scp["img_s"]:
            note = (
                f"storescp does not fsync; the disk's fsync limit is {limit} img/s "
                f"= {limit / scp['img_s']:.2f}x storescp"
            )
        add("ingest large: SharpRay / Orthanc img/s", r.get("sharpray_over_orthanc"), ">=", 2.0)
        add(
            "ingest large: SharpRay / storescp img/s",
            r.get("sharpray_over_storescp"),
            ">=",
            0.6,
            note,
        )
    for s in report.get("inference", {}).get("speedups", []):
        if s["task"] == "deblur":
            best = s.get("speedup_best")
            note = f"fastest runs: {best}x" if best is not None else ""
            add(f"ORT / torch eager, {s['model']} {s['size']}px", s["speedup"], ">=", 1.5, note)
    for s in report.get("inference", {}).get("speedups_int8", []):
        if s["task"] == "deblur":
            note = (
                f"fastest runs: {s.get('speedup_best')}x; int8 ONNX (models.quantize) vs fp32 torch"
            )
            add(
                f"ORT int8 / torch eager, {s['model']} {s['size']}px",
                s["speedup"],
                ">=",
                1.5,
                note,
            )
    lat = report.get("e2e", {}).get("latency", {})
    if lat:
        note = "" if lat.get("px", 0) >= 2048 else f"measured at {lat.get('px')}px, not 2048"
        add("e2e CPU demo models: SR p95 (s)", lat.get("sr_p95_s"), "<", 30.0, note)
    lat8 = report.get("e2e", {}).get("latency_int8", {})
    if lat8:
        add(
            "e2e CPU demo models, deblur int8: SR p95 (s)",
            lat8.get("sr_p95_s"),
            "<",
            30.0,
            "models/weights/deblur-demo-int8 (quality gate in its manifest)",
        )
    glat = report.get("gpu_e2e", {})
    if glat and "skipped" not in glat:
        add("e2e GPU ESRGAN: SR p95 (s)", glat.get("sr_p95_s"), "<", 1.0)
    return out


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 10 else f"{v:,.1f}"
    return str(v)


def _why(section: Json) -> str:
    if "error" in section:
        return f"FAILED: {section['error']}"
    return f"skipped: {section.get('skipped')}"


def _table(headers: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in rows]
    return lines + [""]


def markdown(report: Json) -> str:
    m = report["machine"]
    hw = report.get("hardware", {})
    lines = [
        f"# SharpRay benchmark ({report['mode']}), {report['started']}",
        "",
        f"Machine: {m['cpu']} ({m['cores']} cores, {', '.join(m['cpu_flags'])}), "
        f"{m['memory_gib']} GiB, GPU: {m['gpu'] or 'none'}; commit {m['commit']}. "
        f"Load average at start {report['load']['start']}, at end {report['load']['end']}.",
        "",
        f"> {m['note']}",
        "",
    ]
    mm, disk = hw.get("matmul", {}), hw.get("disk_fsync", {})
    if mm:
        lines += [
            f"Matrix-multiply peak (float32, {mm['n']}²): numpy {mm['numpy_gflops']} GFLOP/s, "
            f"torch {mm.get('torch_gflops')} GFLOP/s. Disk with fsync per {disk.get('file_mb')} MB "
            f"file: {disk.get('mb_s')} MB/s; one small fsync {disk.get('small_fsync_ms_median')} ms.",
            "",
        ]
    t = report.get("targets", [])
    if t:
        lines += ["## Targets", ""]
        lines += _table(
            ["target", "measured", "goal", "met", "note"],
            [[x["name"], x["value"], f"{x['op']} {x['target']}", x["met"], x["note"]] for x in t],
        )
    ing = report.get("ingest", {})
    if "cases" in ing:
        lines += ["## C-STORE ingest and send (dcmtk storescu / storescp as the peers)", ""]
        lines += _table(
            ["case", "receiver", "sender", "set", "files", "MB", "img/s", "MB/s", "rcv CPU s/img"],
            [
                [
                    c["case"],
                    c["receiver"],
                    c["sender"],
                    c["dataset"],
                    c["files"],
                    c["mb"],
                    c["img_s"],
                    c["mb_s"],
                    c["receiver_cpu_s_per_img"] or None,
                ]
                for c in ing["cases"]
            ],
        )
        for ds, lim in (ing.get("disk_limit_img_s") or {}).items():
            lines.append(f"- {ds}: the disk's fsync bandwidth allows {lim} img/s.")
        if ing.get("pynetdicom_races"):
            lines.append(
                f"- pynetdicom's reactor race hit {ing['pynetdicom_races']} time(s) in the "
                "one-association sends (each file re-sent on a new association)."
            )
        lines.append("")
        prof = ing.get("profile") or []
        if prof:
            lines += [
                "Where one SharpRay ingest spends its time (in-process, SQLite; self time per "
                "image from cProfile, ms):",
                "",
            ]
            cols = ["write_ms", "fsync_ms", "sha256_ms", "database_ms", "pydicom_ms", "other_ms"]
            lines += _table(
                [
                    "set",
                    "MB",
                    "whole",
                    *[c[:-3] for c in cols],
                    "1 thread img/s",
                    "2 threads img/s",
                ],  # fmt: skip
                [
                    [p["dataset"], p["mb_per_image"], p["whole_ingest_ms"]]
                    + [p.get(c) for c in cols]
                    + [p["sequential_img_s"], p["two_threads_img_s"]]
                    for p in prof
                ],
            )
    elif ing:
        lines += ["## C-STORE ingest", "", _why(ing), ""]
    inf = report.get("inference", {})
    if "cases" in inf:
        lines += ["## Inference (CPU)", ""]
        lines += _table(
            [
                "model",
                "size",
                "engine",
                "ms",
                "ms min",
                "peak RSS MB",
                "GFLOP",
                "GFLOP/s",
                "of peak",
                "of peak just before",
            ],  # fmt: skip
            [
                [
                    f"{c['task']} {c['model']}",
                    f"{c['size']}²"
                    + (f" ({c['tiles']} tiles of {c.get('tile')})" if c["tiled"] else ""),
                    c["engine"],
                    c["ms_median"],
                    min(c["ms_runs"]),
                    c["peak_rss_mb"],
                    c["gflop_executed"],
                    c["achieved_gflops"],
                    c["fraction_of_peak"],
                    c.get("fraction_of_peak_just_before"),
                ]
                for c in inf["cases"]
            ],
        )
        for s in inf.get("skipped", []):
            est = s.get("estimated_s")
            lines.append(f"- {s['model']} {s['size']}²: not run ({s['reason']}); estimate {est} s")
        lines.append("")
    e2e = report.get("e2e", {})
    if "latency" in e2e:
        lat = e2e["latency"]
        lines += [
            "## End to end (storescu -> SharpRay -> Orthanc)",
            "",
            f"Latency, one sender, one {lat['px']}² radiograph at a time, {lat['models']}, "
            f"results {'+'.join(lat.get('results', []))}: "
            f"SR p50 {lat['sr_p50_s']} s, p95 {lat['sr_p95_s']} s (all results p95 "
            f"{lat['all_results_p95_s']} s) over {lat['images']} images; "
            f"{lat['in_orthanc']}/{lat['expected_in_orthanc']} objects in Orthanc.",
            "",
        ]
        lat8 = e2e.get("latency_int8")
        if lat8:
            lines += [
                f"The same with the int8 deblur model ({lat8['models']}): SR p50 "
                f"{lat8['sr_p50_s']} s, p95 {lat8['sr_p95_s']} s over {lat8['images']} images; "
                f"{lat8['in_orthanc']}/{lat8['expected_in_orthanc']} objects in Orthanc.",
                "",
            ]
        lines += [
            f"Load ({e2e['load_models']}):",
            "",
        ]
        lines += _table(
            ["senders", "images", "px", "throughput img/s", "SR p50 s", "SR p95 s", "max queued"],
            [
                [
                    lv["senders"],
                    lv["images"],
                    lv["px"],
                    lv["throughput_img_s"],
                    lv["sr_p50_s"],
                    lv["sr_p95_s"],
                    lv["max_process_queued"],
                ]
                for lv in e2e["load"]
            ],
        )
        pp = e2e.get("pipeline_profile")
        if pp:
            lines += [
                f"Worker, one {pp['px']}² radiograph in-process with the {pp['models']} models: "
                f"read {pp['read_ms']} ms, run_image (gate, correction, classification, "
                f"{'+'.join(pp['results'])}) {pp['run_image_ms']} ms, encode "
                f"{pp['encode_ms']} ms ({pp['result_mb']} MB of results). Costliest functions:",
                "",
            ]
            lines += _table(
                ["function", "calls", "self s", "cumulative s"],
                [[f["function"], f["calls"], f["self_s"], f["cum_s"]] for f in pp["top_functions"]],
            )
    elif e2e:
        lines += ["## End to end", "", _why(e2e), ""]
    w = report.get("workers", {})
    if "levels" in w:
        lines += [f"## Worker processes on one PostgreSQL queue ({w['models']}, {w['px']}²)", ""]
        lines += _table(
            ["workers", "jobs", "jobs/s", "speed-up", "jobs per worker"],
            [
                [lv["workers"], lv["jobs"], lv["jobs_s"], lv["speedup_vs_1"], lv["jobs_per_worker"]]
                for lv in w["levels"]
            ],
        )
    elif w:
        lines += ["## Worker processes", "", _why(w), ""]
    web = report.get("dicomweb", {})
    if "cases" in web:
        d = web["dataset"]
        lines += [f"## DICOMweb ({d['files']} x {d['rows']}², batches of {web['batch']})", ""]
        lines += _table(
            ["server", "op", "img/s", "MB/s", "failed"],
            [[c["server"], c["op"], c["img_s"], c["mb_s"], c["failed"]] for c in web["cases"]],
        )
        if web.get("sharpray_skipped"):
            lines += [f"SharpRay: {web['sharpray_skipped']}", ""]
    elif web:
        lines += ["## DICOMweb", "", _why(web), ""]
    gpu = report.get("gpu", {})
    lines += ["## GPU", ""]
    if "cases" in gpu:
        lines += [f"Card: {gpu['card']}", ""]
        lines += _table(
            [
                "model",
                "size",
                "engine",
                "provider",
                "precision",
                "ms",
                "GPU MB",
                "fell back to CPU",
            ],
            [
                [
                    c["model"],
                    c["size"],
                    c["engine"],
                    c["provider"],
                    c["precision"],
                    c["ms_median"],
                    c["gpu_peak_mb"],
                    c.get("fell_back_to_cpu"),
                ]
                for c in gpu["cases"]
            ],
        )
    else:
        lines += [_why(gpu) if gpu else "not run", ""]
    proc = report.get("process")
    lines += ["", "## `sharpray process` on many files", ""]
    if proc and "error" not in proc:
        lines += _table(
            ["inputs", "images", "one call s/image", "one process per file s/image", "ratio"],
            [
                [
                    proc["inputs"],
                    proc["n"],
                    proc["one_call_s_per_image"],
                    proc["process_per_file_s_per_image"],
                    proc["speedup"],
                ]
            ],
        )
        lines += ["", f"Summary line of the one call: {proc['summary']}", ""]
    else:
        lines += [_why(proc) if proc else "not run", ""]
    lines.append(f"Total time {report.get('duration_s')} s.")
    return "\n".join(lines) + "\n"


def plots(report: Json, out: Path) -> list[Path]:
    """PNG plots: throughput and latency against load, queue depth over time, worker scaling,
    ingest rates. Returns the files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written: list[Path] = []
    e2e = report.get("e2e", {})
    w = report.get("workers", {})
    if "load" in e2e:
        levels = e2e["load"]
        fig, axes = plt.subplots(1, 4 if "levels" in w else 3, figsize=(18, 4.2))
        n = [lv["senders"] for lv in levels]
        axes[0].plot(n, [lv["throughput_img_s"] for lv in levels], "o-")
        axes[0].set(xlabel="concurrent senders", ylabel="radiographs/s delivered", ylim=(0, None))
        axes[0].set_title("Sustained throughput")
        axes[0].set_xticks(n)
        axes[1].plot(n, [lv["sr_p50_s"] for lv in levels], "o-", label="p50")
        axes[1].plot(n, [lv["sr_p95_s"] for lv in levels], "s--", label="p95")
        axes[1].set(
            xlabel="concurrent senders", ylabel="s, ingest to SR in Orthanc", ylim=(0, None)
        )
        axes[1].set_title("Latency under load")
        axes[1].set_xticks(n)
        axes[1].legend()
        for lv in levels:
            qd = lv["queue_depth"]
            axes[2].plot(
                [s["t"] for s in qd],
                [s["process_queued"] + s["process_running"] for s in qd],
                label=f"{lv['senders']} sender(s)",
            )
        axes[2].set(xlabel="s since the senders started", ylabel="process jobs queued+running")
        axes[2].set_title("Queue depth over time")
        axes[2].legend()
        if "levels" in w:
            k = [lv["workers"] for lv in w["levels"]]
            axes[3].plot(k, [lv["jobs_s"] or 0 for lv in w["levels"]], "o-")
            axes[3].set(xlabel="worker processes", ylabel="jobs/s", ylim=(0, None))
            axes[3].set_xticks(k)
            axes[3].set_title("Workers on one PostgreSQL queue")
        fig.suptitle(f"SharpRay load ({e2e.get('load_models', '')}), {report['machine']['cpu']}")
        fig.tight_layout()
        p = out / "load.png"
        fig.savefig(p, dpi=90)
        plt.close(fig)
        written.append(p)
    ing = report.get("ingest", {})
    if "cases" in ing:
        sets = sorted({c["dataset"] for c in ing["cases"]})
        fig, axes = plt.subplots(1, len(sets), figsize=(7 * len(sets), 4.2), squeeze=False)
        for ax, ds in zip(axes[0], sets, strict=True):
            cs = [c for c in ing["cases"] if c["dataset"] == ds]
            ax.barh([c["case"] for c in cs], [c["img_s"] for c in cs])
            ax.set(xlabel="images/s", title=f"C-STORE, set '{ds}'")
        fig.tight_layout()
        p = out / "ingest.png"
        fig.savefig(p, dpi=90)
        plt.close(fig)
        written.append(p)
    return written
