"""One inference measurement in a process of its own, so that its peak memory is its own.

    python -m bench.infer_child --engine ort|torch --task deblur|classify --model-dir DIR \
        --size N [--tile 512 --overlap 32] [--runs 3] [--provider cpu|cuda|tensorrt] [--fp16]

``DIR`` holds ``model.onnx`` (+ manifest) and ``weights.pt`` (the same weights as a torch state
dict, with ``config.json`` naming the architecture). A deblur input larger than the tile runs in
overlapping tiles as the node does (models.tiling.run_tiled). Prints one JSON line: per-run
milliseconds, peak RSS, RSS before the first run, providers (ORT) or device (torch).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from models.tiling import run_tiled

TileFn = Callable[[np.ndarray], np.ndarray]


def _status_mb(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def rss_mb() -> float:
    return _status_mb("VmRSS")


def peak_mb() -> float:
    """This process's own peak RSS (VmHWM; ru_maxrss would carry the parent's from before exec)."""
    return _status_mb("VmHWM")


def gpu_peak_mb() -> float | None:
    try:
        import torch

        if torch.cuda.is_available():
            return round(torch.cuda.max_memory_allocated() / 2**20, 1)
    except ImportError:
        pass
    return None


def ort_fn(
    model: Path, task: str, provider: str, threads: int, fp16: bool
) -> tuple[Callable[[np.ndarray], Any], list[str]]:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    if threads:
        so.intra_op_num_threads = threads
    providers: list[Any] = ["CPUExecutionProvider"]
    if provider == "cuda":
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    elif provider == "tensorrt":
        cache = str(model.parent / "trt-cache")
        trt = {"trt_engine_cache_enable": True, "trt_engine_cache_path": cache}
        if fp16:
            trt["trt_fp16_enable"] = True
        providers = [("TensorrtExecutionProvider", trt), "CUDAExecutionProvider"]
    sess = ort.InferenceSession(str(model), so, providers=providers)
    name = sess.get_inputs()[0].name
    dtype = np.float16 if sess.get_inputs()[0].type == "tensor(float16)" else np.float32
    outputs = [o.name for o in sess.get_outputs()]

    def run(x: np.ndarray) -> Any:
        out = sess.run(outputs, {name: x.astype(dtype)})
        return np.asarray(out[0], dtype=np.float32) if task == "deblur" else out

    return run, list(sess.get_providers())


def torch_fn(
    folder: Path, task: str, device: str, fp16: bool
) -> tuple[Callable[[np.ndarray], Any], list[str]]:
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    cfg = json.loads((folder / "config.json").read_text())
    if task == "deblur":
        from models.rrdbnet import RRDBConfig, RRDBNet

        c = RRDBConfig(**cfg["rrdb"])
        net: torch.nn.Module = RRDBNet(c.num_feat, c.num_block, c.growth)
    else:
        from models.classifier import CamExport, build_classifier

        net = CamExport(build_classifier(cfg["arch"]))
    net.load_state_dict(torch.load(folder / "weights.pt", map_location="cpu"))
    net = net.eval().to(device)
    if fp16:
        net = net.half()
    dtype = torch.float16 if fp16 else torch.float32

    def run(x: np.ndarray) -> Any:
        with torch.inference_mode():
            y = net(torch.from_numpy(x).to(device=device, dtype=dtype))
            if device != "cpu":
                torch.cuda.synchronize()
            if task == "deblur":
                return y.float().cpu().numpy()
            return [t.float().cpu().numpy() for t in y]

    return run, [device + (" fp16" if fp16 else "")]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--engine", choices=["ort", "torch"], required=True)
    ap.add_argument("--task", choices=["deblur", "classify"], required=True)
    ap.add_argument("--model-dir", type=Path, required=True)
    ap.add_argument("--onnx", default="model.onnx", help="file in --model-dir (ort)")
    ap.add_argument("--size", type=int, required=True)
    ap.add_argument("--tile", type=int, default=512)
    ap.add_argument("--overlap", type=int, default=32)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--provider", choices=["cpu", "cuda", "tensorrt"], default="cpu")
    ap.add_argument(
        "--fp16", action="store_true", help="torch: half precision; TensorRT: fp16 kernels"
    )
    ap.add_argument("--threads", type=int, default=0, help="ORT intra-op threads (0 = all)")
    ap.add_argument("--save-output", type=Path, default=None, help="write the output (.npy)")
    args = ap.parse_args(argv)

    if args.engine == "ort":
        fn, providers = ort_fn(
            args.model_dir / args.onnx, args.task, args.provider, args.threads, args.fp16
        )
    else:
        device = "cpu" if args.provider == "cpu" else "cuda"
        fn, providers = torch_fn(args.model_dir, args.task, device, args.fp16)

    rng = np.random.default_rng(0)
    if args.task == "deblur":
        image = rng.random((args.size, args.size), dtype=np.float32)
        tile = min(args.tile, args.size)

        def once() -> Any:
            if args.size <= tile:
                return fn(image[None, None])[0, 0]
            return run_tiled(image, fn, tile=tile, overlap=args.overlap)

        warm = image[None, None, :tile, :tile].copy()
    else:
        x = rng.random((1, 1, args.size, args.size), dtype=np.float32)

        def once() -> Any:
            return fn(x)

        warm = x
    fn(warm)  # warm-up: one tile (allocations, kernel selection, TensorRT engine build)
    base = rss_mb()
    ms = []
    out: Any = None
    for _ in range(args.runs):
        t0 = time.perf_counter()
        out = once()
        ms.append((time.perf_counter() - t0) * 1000)
    if args.save_output is not None and args.task == "deblur":
        np.save(args.save_output, np.asarray(out, dtype=np.float32))
    tiles = 1
    if args.task == "deblur" and args.size > args.tile:
        from models.tiling import tile_starts

        tiles = len(tile_starts(args.size, args.tile, args.overlap)) ** 2
    report = {
        "ms": [round(m, 2) for m in ms],
        "rss_before_mb": base,
        "peak_rss_mb": peak_mb(),
        "gpu_peak_mb": gpu_peak_mb() if args.engine == "torch" else None,
        "providers": providers,
        "tiles": tiles,
    }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
