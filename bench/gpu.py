"""The GPU variant: inference on CUDA and TensorRT (fp32, and fp16 where parity holds) and the
end-to-end latency with the full-size ESRGAN on the GPU.

Runs where ``onnxruntime-gpu`` offers the CUDA provider and ``nvidia-smi`` sees a card; anywhere
else the section reports ``{"skipped": reason}``. fp16 is reported as usable only when its output
on a 512x512 tile stays within ``FP16_TOLERANCE`` (relative L2) of the fp32 CPU output. The models
and sizes are the CPU section's (``Sizes.infer_configs``, ``Sizes.infer_sizes``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from bench import inference
from bench.common import Json, Sizes, gpu_name

log = logging.getLogger(__name__)

FP16_TOLERANCE = 1e-2


def availability() -> tuple[bool, str]:
    try:
        import onnxruntime as ort
    except ImportError:
        return False, "onnxruntime is not installed"
    providers = ort.get_available_providers()
    if "CUDAExecutionProvider" not in providers:
        return False, (
            "this onnxruntime offers no CUDA provider (install the 'gpu' extra: onnxruntime-gpu)"
        )
    if gpu_name() is None:
        return False, "no NVIDIA GPU visible (nvidia-smi finds none)"
    return True, ", ".join(providers)


def _torch_cuda() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:
        return False


def _rel_l2(a: np.ndarray, b: np.ndarray) -> float:
    den = float(np.linalg.norm(b.astype(np.float64)))
    return float(np.linalg.norm(a.astype(np.float64) - b.astype(np.float64))) / (den or 1.0)


def _parity(
    folder: Path, engine: str, provider: str, fp16: bool, reference: np.ndarray, size: int
) -> float:
    out = folder / f"out-{engine}-{provider}-{int(fp16)}.npy"
    args = ["--engine", engine, "--task", "deblur", "--model-dir", str(folder), "--size", str(size)]
    args += ["--runs", "1", "--provider", provider, "--save-output", str(out)]
    inference.child(args + (["--fp16"] if fp16 else []))
    return _rel_l2(np.load(out), reference)


def run(sizes: Sizes, work: Path, cpu_peak_gflops: float) -> Json:
    ok, why = availability()
    if not ok:
        return {"skipped": why}
    import onnxruntime as ort

    providers = ort.get_available_providers()
    engines: list[tuple[str, str]] = [("ort", "cuda")]
    if "TensorrtExecutionProvider" in providers:
        engines.append(("ort", "tensorrt"))
    if _torch_cuda():
        engines.append(("torch", "cuda"))
    cases: list[Json] = []
    parity: list[Json] = []
    parity_px = min(sizes.infer_sizes[0], inference.TILE)
    for config in sizes.infer_configs:
        folder = inference.prepare_deblur(work, config)
        ref_path = folder / "out-ref.npy"
        inference.child(
            ["--engine", "ort", "--task", "deblur", "--model-dir", str(folder)]
            + ["--size", str(parity_px), "--runs", "1", "--provider", "cpu"]
            + ["--save-output", str(ref_path)]
        )
        reference = np.load(ref_path)
        for engine, provider in engines:
            for fp16 in (False, True):
                if fp16 and engine == "ort" and provider == "cuda":
                    continue  # fp16 on the CUDA provider needs an fp16 graph; TensorRT does it
                err = _parity(folder, engine, provider, fp16, reference, parity_px)
                holds = err < (FP16_TOLERANCE if fp16 else 1e-3)
                parity.append(
                    {
                        "model": config,
                        "engine": engine,
                        "provider": provider,
                        "precision": "fp16" if fp16 else "fp32",
                        "rel_l2_vs_cpu_fp32": round(err, 6),
                        "parity_holds": holds,
                    }
                )
                if not holds:
                    continue
                for size in sizes.infer_sizes:
                    runs = sizes.infer_runs if size <= inference.TILE else 1
                    case = inference.measure(
                        "deblur",
                        config,
                        folder,
                        size,
                        engine,
                        runs,
                        0.0,
                        provider=provider,
                        fp16=fp16,
                    )
                    # a GPU asked for, the CPU answered: say so loudly (100x slower, unseen)
                    case["fell_back_to_cpu"] = case["providers_used"][0] in (
                        "CPUExecutionProvider",
                        "cpu",
                    )
                    cases.append(case)
    return {
        "card": gpu_name(),
        "providers": providers,
        "cpu_peak_gflops": cpu_peak_gflops,
        "cases": cases,
        "parity": parity,
        "fp16_tolerance": FP16_TOLERANCE,
    }


def e2e(sizes: Sizes, work: Path, classifier: Path) -> Json:
    """End-to-end latency on the GPU with the full-size ESRGAN (target: under 1 s per 2048²)."""
    ok, why = availability()
    if not ok:
        return {"skipped": why}
    from bench import e2e as e2e_bench
    from bench.peers import OrthancReceiver

    models = {"deblur": inference.prepare_deblur(work, "esrgan"), "classify": classifier}
    pacs = OrthancReceiver(work / "pacs-gpu")
    pacs.start()
    node = None
    try:
        node = e2e_bench.node_for(work / "node-gpu", models, pacs, providers="auto")
        lat = e2e_bench.latency(sizes, work, node, pacs)
        assert node.node is not None
        lat["node_models"] = node.node.health().get("models")
    finally:
        if node is not None:
            node.stop()
        pacs.stop()
    lat["models"] = "esrgan (64 features, 23 blocks) + classifier, providers auto"
    return lat
