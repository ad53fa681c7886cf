"""Inference: ONNX Runtime vs PyTorch eager on the same weights, FLOPs and fraction of peak.

Models: the deblurring generator (RRDBNet) in its shipped "light" configuration (the demo model)
and the full-size ESRGAN configuration, and the demo classifier (EfficientNet-B3 with its CAM
output). Seeded random weights: the speed of a convolution does not depend on the values, and the
same state dict feeds both engines (exported with models.export, whose parity check must pass).

Sizes: a 512x512 tile and a whole 2048x2048 radiograph, run as the node runs it (512 tiles with
32 px overlap, blended). FLOPs are counted by torch's FlopCounterMode on the meta device (no
compute): "useful" for the frame, "executed" including the tiles' overlap. Each measurement runs
in a child process (bench.infer_child) so its peak RSS is its own.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

from bench.common import REPO, Json, Sizes, median

log = logging.getLogger(__name__)

TILE, OVERLAP = 512, 32
# 2048 = 3 x 704 - 2 x 32: three tiles per axis cover a 2048 frame with the minimum overlap, so
# 9 tiles run 1.06x the frame's pixels where 25 tiles of 512 run 1.56x (models.deblur_tile)
TILE_2048 = 704
INT8_ONNX = "model.int8.onnx"  # beside model.onnx in each benchmark deblur folder
CLASSIFIER: tuple[str, int] = ("efficientnet_b3", 224)  # the shipped classifier's input size
SMOKE_CLASSIFIER: tuple[str, int] = ("tiny", 64)


def prepare_deblur(folder: Path, config: str) -> Path:
    """Seeded RRDBNet of a named configuration, exported to ONNX (parity checked) + state dict."""
    import torch

    from models.export import export_deblur
    from models.manifest import TileSpec
    from models.rrdbnet import CONFIGS, build_generator

    out = folder / f"deblur-{config}"
    if (out / "weights.pt").exists():
        return out
    torch.manual_seed(0)
    gen = build_generator(config)
    export_deblur(
        gen,
        out,
        name=f"bench-deblur-{config}",
        version="0.0.0-bench",
        config_name=config,
        training={"note": "untrained, torch.manual_seed(0): for timing only"},
        description="Benchmark stand-in with random weights.",
        tile=TileSpec(size=TILE, overlap=OVERLAP),
    )
    # the int8 variant the node can serve on CPUs (models.quantize; synthetic calibration tiles:
    # the weights are random, so only its speed means something here)
    from models.quantize import calibration_tiles, quantize_onnx

    quantize_onnx(out / "model.onnx", out / INT8_ONNX, "image", calibration_tiles(None, n=8))
    torch.save(gen.state_dict(), out / "weights.pt")
    (out / "config.json").write_text(json.dumps({"rrdb": CONFIGS[config].as_dict()}))
    return out


def prepare_classifier(folder: Path, arch: str, size: int) -> Path:
    import torch

    from models.classifier import CamExport, build_classifier
    from models.export import export_classify

    out = folder / f"classify-{arch}-{size}"
    if (out / "weights.pt").exists():
        return out
    torch.manual_seed(1)
    model = build_classifier(arch)
    export_classify(
        model,
        out,
        size=size,
        mean=0.5,
        std=0.25,
        architecture=f"{arch} (benchmark stand-in, random weights)",
        name=f"bench-classify-{arch}",
        version="0.0.0-bench",
        training={"note": "untrained, torch.manual_seed(1): for timing only"},
        description="Benchmark stand-in with random weights.",
    )
    torch.save(CamExport(model).state_dict(), out / "weights.pt")
    (out / "config.json").write_text(json.dumps({"arch": arch, "size": size}))
    return out


def count_flops(task: str, name: str, size: int) -> float:
    """FLOPs (2 x MACs) of one forward pass at ``size`` x ``size``, counted on the meta device."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        if task == "deblur":
            from models.rrdbnet import build_generator

            net: torch.nn.Module = build_generator(name)
        else:
            from models.classifier import CamExport, build_classifier

            net = CamExport(build_classifier(name))
        x = torch.empty(1, 1, size, size)
        with FlopCounterMode(display=False) as fc:
            net(x)
    return float(fc.get_total_flops())


def child(args: list[str], timeout: float = 1800) -> Json:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    r = subprocess.run(
        [sys.executable, "-m", "bench.infer_child", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env=env,
    )
    if r.returncode != 0:
        raise RuntimeError(f"bench.infer_child {' '.join(args)} failed: {r.stderr[-2000:]}")
    data: Json = json.loads(r.stdout.strip().splitlines()[-1])
    return data


def measure(
    task: str,
    model: str,
    folder: Path,
    size: int,
    engine: str,
    runs: int,
    peak_gflops: float,
    provider: str = "cpu",
    fp16: bool = False,
    onnx: str = "model.onnx",
    tile: int = TILE,
    label: str | None = None,
) -> Json:
    """One case in a child process; the matmul peak is measured again just before it, since the
    machine's load (and so what is reachable) changes from minute to minute."""
    from bench.common import matmul_peak

    n = 1024 if size >= 512 else 256  # smoke sizes: a quick estimate is enough
    peak_now = float(matmul_peak(n, 3)["peak_gflops"]) if provider == "cpu" else 0.0
    args = ["--engine", engine, "--task", task, "--model-dir", str(folder), "--size", str(size)]
    args += ["--tile", str(tile), "--overlap", str(OVERLAP), "--runs", str(runs)]
    args += ["--provider", provider, "--onnx", onnx] + (["--fp16"] if fp16 else [])
    r = child(args)
    ms = median(r["ms"])
    tiled = task == "deblur" and size > tile
    useful = count_flops(task, model, size)
    executed = count_flops(task, model, tile) * r["tiles"] if tiled else useful
    achieved = executed / (ms / 1000) / 1e9
    return {
        "task": task,
        "model": model,
        "size": size,
        "tiled": tiled,
        "tile": tile if tiled else None,
        "tiles": r["tiles"],
        "engine": label or engine,
        "provider": provider,
        "precision": "fp16" if fp16 else ("int8" if onnx == INT8_ONNX else "fp32"),
        "providers_used": r["providers"],
        "ms_median": round(ms, 2),
        "ms_min": round(min(r["ms"]), 2),
        "ms_runs": r["ms"],
        "peak_rss_mb": r["peak_rss_mb"],
        "rss_before_runs_mb": r["rss_before_mb"],
        "gpu_peak_mb": r.get("gpu_peak_mb"),
        "gflop_useful": _sig(useful / 1e9),
        "gflop_executed": _sig(executed / 1e9),
        "achieved_gflops": _sig(achieved),
        "fraction_of_peak": _sig(achieved / peak_gflops, 3) if peak_gflops else None,
        "peak_gflops_just_before": peak_now or None,
        "fraction_of_peak_just_before": _sig(achieved / peak_now, 3) if peak_now else None,
    }


def _sig(x: float, digits: int = 4) -> float:
    """``x`` to ``digits`` significant digits (tiny smoke models have MFLOPs, not GFLOPs)."""
    return float(f"{x:.{digits}g}")


def speedups(cases: list[Json], fast: str = "ort", slow: str = "torch") -> list[Json]:
    out = []
    same_tiling = [c for c in cases if c.get("tile") in (None, TILE)]
    keys = {(c["task"], c["model"], c["size"]) for c in same_tiling}
    for key in sorted(keys):
        by = {c["engine"]: c for c in same_tiling if (c["task"], c["model"], c["size"]) == key}
        if fast in by and slow in by and by[fast]["ms_median"] > 0:
            out.append(
                {
                    "task": key[0],
                    "model": key[1],
                    "size": key[2],
                    f"{fast}_ms": by[fast]["ms_median"],
                    f"{slow}_ms": by[slow]["ms_median"],
                    "speedup": round(by[slow]["ms_median"] / by[fast]["ms_median"], 2),
                    # fastest run against fastest run: less sensitive to a busy neighbour
                    "speedup_best": round(min(by[slow]["ms_runs"]) / min(by[fast]["ms_runs"]), 2),
                }
            )
    return out


def run(sizes: Sizes, work: Path, peak_gflops: float) -> Json:
    work.mkdir(parents=True, exist_ok=True)
    cases: list[Json] = []
    skipped: list[Json] = []
    for config in sizes.infer_configs:
        folder = prepare_deblur(work, config)
        per_tile: dict[str, float] = {}
        for size in sizes.infer_sizes:
            if config == "esrgan" and size > TILE and not sizes.heavy:
                skipped.append({"model": config, "size": size, "reason": "needs --heavy"})
                continue
            runs = sizes.infer_runs if size <= TILE else 1
            for engine in ("ort", "ort_int8", "torch"):
                c = measure(
                    "deblur",
                    config,
                    folder,
                    size,
                    engine.removesuffix("_int8"),
                    runs,
                    peak_gflops,
                    onnx=INT8_ONNX if engine == "ort_int8" else "model.onnx",
                    label=engine,
                )
                cases.append(c)
                if size == TILE:
                    per_tile[engine] = c["ms_median"]
            if size == 2048 and config == "light":  # the tile size the node could use instead
                cases.append(
                    measure(
                        "deblur", config, folder, size, "ort", runs, peak_gflops, tile=TILE_2048
                    )
                )
        for s in skipped:
            if s["model"] == config and per_tile:
                from models.tiling import tile_starts

                tiles = len(tile_starts(int(s["size"]), TILE, OVERLAP)) ** 2
                s["estimated_s"] = {e: round(ms * tiles / 1000, 1) for e, ms in per_tile.items()}
                s["estimate"] = f"{tiles} tiles x the measured {TILE}px tile time"
    arch, px = SMOKE_CLASSIFIER if sizes.smoke else CLASSIFIER
    folder = prepare_classifier(work, arch, px)
    for engine in ("ort", "torch"):
        runs = max(3, sizes.infer_runs * 2) if not sizes.smoke else 1
        cases.append(measure("classify", arch, folder, px, engine, runs, peak_gflops))
    return {
        "peak_gflops": peak_gflops,
        "tile": TILE,
        "overlap": OVERLAP,
        "cases": cases,
        "speedups": speedups(cases),
        "speedups_int8": speedups(cases, fast="ort_int8"),
        "skipped": skipped,
    }


def demo_models(work: Path) -> tuple[dict[str, Path], str]:
    """The shipped demo models when they are in the tree, else stand-ins of the same
    architecture and size with random weights (the same cost)."""
    weights = REPO / "models" / "weights"
    deblur, classify = weights / "deblur-demo", weights / "classify-demo"
    if (deblur / "manifest.json").exists() and (classify / "manifest.json").exists():
        return {"deblur": deblur, "classify": classify}, "shipped demo models (models/weights)"
    return (
        {
            "deblur": prepare_deblur(work, "light"),
            "classify": prepare_classifier(work, *CLASSIFIER),
        },
        "stand-ins for the demo models (RRDBNet light + EfficientNet-B3 224, random weights)",
    )
