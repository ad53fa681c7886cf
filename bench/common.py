"""What every benchmark section shares: statistics, the machine, its compute and disk ceilings."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import os
import platform
import resource
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent

Json = dict[str, Any]

SHARED_MACHINE_NOTE = (
    "Figures from a virtual machine whose neighbours (and the disk) are shared: absolute numbers "
    "vary between runs (2-4x on a loaded day); ratios measured in the same run, and the fastest "
    "runs, are the figures to compare. The load average before each section is in the report."
)


@dataclass(frozen=True)
class Sizes:
    """How much each section does: ``smoke`` (CI, well under a minute) or a bounded full run."""

    smoke: bool
    runs: int  # repetitions of each ingest / DICOMweb case (median reported)
    large_n: int  # large images for ingest (issue: 200 of 2048x2048x16)
    large_px: int
    small_n: int  # small images for ingest (issue: 1,000)
    small_px: int
    infer_configs: tuple[str, ...]  # RRDBNet configurations benchmarked
    infer_sizes: tuple[int, ...]  # square input sizes (512 tile, 2048 radiograph)
    infer_runs: int
    heavy: bool  # also the full-size ESRGAN on a whole 2048x2048 radiograph (minutes on a CPU)
    latency_images: int  # one sender, one image at a time, demo models, 2048x2048
    latency_px: int
    load_senders: tuple[int, ...]
    load_images_per_sender: int
    load_px: int
    worker_counts: tuple[int, ...]
    worker_jobs: int
    worker_px: int
    web_n: int
    web_px: int

    @staticmethod
    def for_mode(smoke: bool, heavy: bool = False) -> Sizes:
        if smoke:
            return Sizes(
                smoke=True,
                runs=1,
                large_n=4,
                large_px=256,
                small_n=6,
                small_px=64,
                infer_configs=("tiny",),
                infer_sizes=(64,),
                infer_runs=1,
                heavy=False,
                latency_images=1,
                latency_px=128,
                load_senders=(2,),
                load_images_per_sender=2,
                load_px=128,
                worker_counts=(2,),
                worker_jobs=6,
                worker_px=64,
                web_n=3,
                web_px=128,
            )
        return Sizes(
            smoke=False,
            runs=3,
            large_n=100,
            large_px=2048,
            small_n=500,
            small_px=512,
            infer_configs=("light", "esrgan"),
            infer_sizes=(512, 2048),
            infer_runs=3,
            heavy=heavy,
            latency_images=5,
            latency_px=2048,
            load_senders=(1, 2, 4),
            load_images_per_sender=6,
            load_px=1024,
            worker_counts=(1, 2, 3),
            worker_jobs=60,
            worker_px=256,
            web_n=40,
            web_px=2048,
        )


def median(xs: Sequence[float]) -> float:
    return float(statistics.median(xs)) if xs else float("nan")


def percentile(xs: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), linear interpolation; NaN for no data."""
    return float(np.percentile(np.asarray(xs, dtype=np.float64), q)) if xs else float("nan")


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _tool_version(cmd: list[str]) -> str | None:
    if shutil.which(cmd[0]) is None and not Path(cmd[0]).exists():
        return None
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = (r.stdout + r.stderr).strip().splitlines()
    return lines[0].strip() if lines else None


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> list[str]:
    """The SIMD features that decide convolution speed (AVX2, AVX-512, VNNI, AMX)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                keep = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx_tile")
                return [f for f in keep if f in flags]
    except OSError:
        pass
    return []


def memory_gib() -> float:
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return round(pages / 2**30, 1)


def git_commit() -> str | None:
    try:
        r = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return r.stdout.strip() or None


def gpu_name() -> str | None:
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        r = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return r.stdout.strip().splitlines()[0] if r.returncode == 0 and r.stdout.strip() else None


def machine() -> Json:
    return {
        "cpu": cpu_model(),
        "cpu_flags": cpu_flags(),
        "cores": os.cpu_count(),
        "memory_gib": memory_gib(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "gpu": gpu_name(),
        "commit": git_commit(),
        "versions": {
            "onnxruntime": _version("onnxruntime") or _version("onnxruntime-gpu"),
            "torch": _version("torch"),
            "numpy": _version("numpy"),
            "pydicom": _version("pydicom"),
            "pynetdicom": _version("pynetdicom"),
            "dcmtk": _tool_version(["storescu", "--version"]),
            "orthanc": _tool_version(["/usr/sbin/Orthanc", "--version"]),
        },
        "note": SHARED_MACHINE_NOTE,
    }


def best_of(fn: Callable[[], object], repeat: int) -> float:
    """The fastest of ``repeat`` timed calls (seconds): the ceiling, not the typical."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def matmul_peak(n: int = 2048, repeat: int = 5) -> Json:
    """float32 matrix-multiply GFLOP/s with numpy (BLAS) and torch, all cores: the CPU's ceiling."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    flop = 2.0 * n**3
    a @ b  # warm up (thread pool, pages)
    out: Json = {"n": n, "numpy_gflops": round(flop / best_of(lambda: a @ b, repeat) / 1e9, 1)}
    try:
        import torch

        torch.set_num_threads(os.cpu_count() or 1)
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        torch.mm(ta, tb)
        out["torch_gflops"] = round(flop / best_of(lambda: torch.mm(ta, tb), repeat) / 1e9, 1)
    except ImportError:
        out["torch_gflops"] = None
    out["peak_gflops"] = max(v for k, v in out.items() if k.endswith("_gflops") and v)
    return out


def disk_fsync(folder: Path, file_mb: int = 8, count: int = 8) -> Json:
    """Write ``count`` files of ``file_mb`` MB with fsync after each (as a durable ingest does):
    the disk's own limit for an SCP that syncs before it acknowledges."""
    folder.mkdir(parents=True, exist_ok=True)
    block = os.urandom(file_mb * 2**20)
    t0 = time.perf_counter()
    for i in range(count):
        p = folder / f"fsync-{i}.bin"
        with p.open("wb") as f:
            f.write(block)
            f.flush()
            os.fsync(f.fileno())
    seconds = time.perf_counter() - t0
    # small synced writes: the latency of one fsync (what a tiny image pays)
    small = []
    for i in range(20):
        p = folder / f"small-{i}.bin"
        t1 = time.perf_counter()
        with p.open("wb") as f:
            f.write(block[:4096])
            f.flush()
            os.fsync(f.fileno())
        small.append(time.perf_counter() - t1)
    shutil.rmtree(folder, ignore_errors=True)
    mb = file_mb * count * 2**20 / 1e6
    return {
        "file_mb": file_mb,
        "files": count,
        "mb_s": round(mb / seconds, 1),
        "files_per_s": round(count / seconds, 1),
        "small_fsync_ms_median": round(median(small) * 1000, 2),
    }


def peak_rss_mb() -> float:
    """This process's peak resident set size so far (MB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
