"""Where the worker's time goes on one radiograph, outside the network and the queue.

In-process, with the node's own per-image function: read the file, ``run_image`` (blur gate,
correction, intended use, classification, CAM, the result objects of the default "full"
pipeline: node/pipeline/run.py, what the workers and ``sharpray process`` call), encode them. With
the tiny test models this is the node's own overhead per radiograph; ``run_image`` is also run
once under cProfile to name the functions that cost the most.
"""

from __future__ import annotations

import cProfile
import pstats
import time
from pathlib import Path

from bench.common import Json
from bench.data import make_set


def _where(key: tuple[str, int, str]) -> str:
    file, line, name = key
    parts = Path(file).parts
    short = "/".join(parts[-2:]) if len(parts) >= 2 else file
    return f"{short}:{line}({name})"


def profile(models: dict[str, Path], px: int, work: Path, top: int = 12) -> Json:
    from node import __version__
    from node.app import load_models
    from node.config import ModelSettings, Settings
    from node.pipeline.preprocess import read_dataset
    from node.pipeline.results.inputs import Producer
    from node.pipeline.run import Plan, run_image
    from node.pipeline.worker import encode

    settings = Settings(
        models=ModelSettings(deblur=models["deblur"], classify=models["classify"], providers="cpu")
    )
    loaded = load_models(settings)
    producer = Producer(software_version=__version__)
    path = make_set(work, "prof", 1, px, seed=11).files[0]
    plan = Plan.for_pipeline(settings, "full")  # what the default routing runs
    run_image(read_dataset(path), loaded, plan, producer)  # warm-up (sessions, lazy imports)

    t0 = time.perf_counter()
    ds = read_dataset(path)
    t1 = time.perf_counter()
    outcome = run_image(ds, loaded, plan, producer)
    t3 = time.perf_counter()
    results = outcome.results
    encoded = [encode(r) for _, r in results]
    t4 = time.perf_counter()

    prof = cProfile.Profile()
    prof.enable()
    run_image(read_dataset(path), loaded, plan, producer)
    prof.disable()
    stats = pstats.Stats(prof)
    rows = sorted(
        stats.stats.items(),  # type: ignore[attr-defined]
        key=lambda kv: kv[1][2],  # tottime
        reverse=True,
    )[:top]
    return {
        "px": px,
        "models": str(models["deblur"].name),
        "read_ms": round((t1 - t0) * 1000, 1),
        "run_image_ms": round((t3 - t1) * 1000, 1),
        "encode_ms": round((t4 - t3) * 1000, 1),
        "results": [k for k, _ in results],
        "result_mb": round(sum(len(e) for e in encoded) / 1e6, 2),
        "top_functions": [
            {
                "function": _where(k),
                "calls": v[1],
                "self_s": round(v[2], 3),
                "cum_s": round(v[3], 3),
            }
            for k, v in rows
        ],
    }
