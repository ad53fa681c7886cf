"""Evaluate the exported models (ONNX Runtime, CPU) against classical baselines; write metrics.json.

Deblurring (``--radiographs`` + ``--deblur``): held-out patients of ``cxr-radiographs-mhh`` (the
same patient split as :mod:`models.train_deblur`, seed 0, 20 %), centred crops, each blurred at
three strengths (:data:`models.deblur_data.EVAL_STRENGTHS`, linear and trajectory kernels in
linear exposure, Poisson noise at 10⁴ quanta/pixel). PSNR/SSIM (data range 1) against the sharp
image of:

* the blurred input;
* unsharp masking (``skimage.filters.unsharp_mask``, radius 2, amount 1) — what a viewer does;
* Richardson–Lucy (10 iterations) and Wiener (balance 0.03) deconvolution **with the true kernel**
  (an oracle: a real image comes without its kernel), both in linear exposure, where the blur
  happened, with reflect padding; the iteration count and balance were picked among 10/30 and
  0.002/0.01/0.03 on three held-out crops (more amplifies the noise);
* our generator, run tiled as the node runs it (:func:`models.tiling.run_tiled`).

Classification (``--labels`` + ``--classify``): the Kermany rows of ``labels.csv`` in ``--split``
(default ``test``, patient-disjoint from training): accuracy, AUC, sensitivity and specificity on
the clean images, on motion-blurred copies (3–6 px at 224 px, about 2–4 mm), and on those blurred
copies after correction by the generator.

``--timing``: ONNX Runtime CPU time per 2048×2048 frame of the "light" and "esrgan" generator
configurations (untrained weights; timing does not depend on them), run tiled 512/32 as the node
does. The "esrgan" figure is extrapolated from one 512² tile × the number of tiles (it takes minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray
from skimage.filters import unsharp_mask
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from skimage.restoration import richardson_lucy, wiener
from skimage.transform import resize

from models.blur import NoiseSpec, from_exposure, random_kernel, simulate_motion_blur, to_exposure
from models.deblur_data import EvalItem, load_gray, load_images, make_eval_set, split_by_patient
from models.manifest import ModelManifest, load_manifest
from models.metrics import binary_metrics
from models.tiling import run_tiled, tile_starts

F32 = NDArray[np.float32]
LOG_RANGE = 3.0
RL_ITERATIONS = 10
WIENER_BALANCE = 0.03


def session(path: Path, threads: int = 2) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


class OnnxDeblur:
    def __init__(self, folder: Path) -> None:
        self.manifest, path = load_manifest(folder)
        self.sess = session(path)
        self.out = self.manifest.outputs.get("image", self.sess.get_outputs()[0].name)

    def __call__(self, image: F32) -> F32:
        m: ModelManifest = self.manifest
        tile = m.tile.size if m.tile else 512
        overlap = m.tile.overlap if m.tile else 32

        def fn(b: F32) -> F32:
            x = ((b - m.input.mean) / m.input.std).astype(np.float32)
            (y,) = self.sess.run([self.out], {m.input.name: x})
            return (np.asarray(y, dtype=np.float32) * m.input.std + m.input.mean).astype(np.float32)

        out = run_tiled(image, fn, tile, overlap, max(4, m.input.multiple_of))
        return np.clip(out, 0.0, 1.0).astype(np.float32)


def _unsharp(img: F32, _k: NDArray[np.float64]) -> F32:
    return np.asarray(unsharp_mask(img, radius=2, amount=1.0), dtype=np.float32)


def _rl(img: F32, k: NDArray[np.float64]) -> F32:
    pad = k.shape[0]
    e = np.pad(to_exposure(img, LOG_RANGE), pad, mode="reflect")
    r = np.asarray(richardson_lucy(e, k, num_iter=RL_ITERATIONS, clip=False))[pad:-pad, pad:-pad]
    return np.clip(from_exposure(r, LOG_RANGE), 0, 1).astype(np.float32)


def _wiener(img: F32, k: NDArray[np.float64]) -> F32:
    e = to_exposure(img, LOG_RANGE)
    pad = k.shape[0]
    ep = np.pad(e, pad, mode="reflect")
    r = np.asarray(wiener(ep, k, balance=WIENER_BALANCE, clip=False))[pad:-pad, pad:-pad]
    return np.clip(from_exposure(r, LOG_RANGE), 0, 1).astype(np.float32)


def _scores(items: list[EvalItem], outs: list[F32]) -> dict[str, Any]:
    per: dict[str, list[tuple[float, float]]] = {}
    for it, o in zip(items, outs, strict=True):
        p = float(peak_signal_noise_ratio(it.sharp, o, data_range=1.0))
        s = float(structural_similarity(it.sharp, o, data_range=1.0))
        per.setdefault(it.strength, []).append((p, s))
        per.setdefault("all", []).append((p, s))
    return {
        k: {
            "psnr_db": round(float(np.mean([v[0] for v in vals])), 3),
            "ssim": round(float(np.mean([v[1] for v in vals])), 4),
            "n": len(vals),
        }
        for k, vals in per.items()
    }


def evaluate_deblur(
    radiographs: Path, deblur: Path | None, crop: int | None, max_images: int | None
) -> dict[str, Any]:
    split = split_by_patient(radiographs, 0.2, 0)
    names = split.test[:max_images] if max_images else split.test
    items = make_eval_set(load_images(radiographs, names), names, seed=2024, crop=crop)
    methods: dict[str, Any] = {
        "blurred_input": lambda im, k: im,
        "unsharp_mask": _unsharp,
        "richardson_lucy_oracle_kernel": _rl,
        "wiener_oracle_kernel": _wiener,
    }
    if deblur is not None:
        model = OnnxDeblur(deblur)
        methods["generator"] = lambda im, k: model(im)
    result: dict[str, Any] = {
        "images": len(names),
        "patients": split.test_patients,
        "crop": crop,
        "strengths_px": {
            "mild": [2, 4],
            "moderate": [4, 7],
            "severe": [7, 10],
        },
        "pixel_spacing_mm_approx": 0.6,
        "noise_photons_per_pixel": 10000,
        "methods": {},
    }
    for name, fn in methods.items():
        t = time.perf_counter()
        outs = [np.asarray(fn(it.blurred, it.kernel), dtype=np.float32) for it in items]
        result["methods"][name] = {
            **_scores(items, outs),
            "seconds_per_image": round((time.perf_counter() - t) / len(items), 3),
        }
        print(name, json.dumps(result["methods"][name]["all"]), flush=True)
    return result


def evaluate_classifier(
    labels_csv: Path, split: str, classify: Path, deblur: Path | None, seed: int = 7
) -> dict[str, Any]:
    from models.train_classifier import read_kermany

    samples = read_kermany(labels_csv, split)
    manifest, path = load_manifest(classify)
    sess = session(path)
    size = manifest.input.size or 224
    y = np.array([s.label for s in samples])
    imgs = []
    for s in samples:
        a = load_gray(labels_csv.parent / s.path).astype(np.float32) / 255.0
        if a.shape != (size, size):
            a = np.asarray(resize(a, (size, size), order=1, anti_aliasing=True), dtype=np.float32)
        imgs.append(a)
    rng = np.random.default_rng(seed)
    blurred = [
        simulate_motion_blur(a, random_kernel(rng, 3.0, 6.0), rng, noise=NoiseSpec(20000.0))
        for a in imgs
    ]

    def probs(batch: list[F32]) -> NDArray[np.float64]:
        x = (np.stack(batch)[:, None] - manifest.input.mean) / manifest.input.std
        out = []
        for i in range(0, len(x), 16):
            (p,) = sess.run(
                [manifest.outputs["probabilities"]], {"image": x[i : i + 16].astype(np.float32)}
            )
            out.append(np.asarray(p)[:, 1])
        return np.concatenate(out).astype(np.float64)

    result: dict[str, Any] = {
        "split": split,
        "images": len(samples),
        "pneumonia": int(y.sum()),
        "blur_px": [3, 6],
        "clean": binary_metrics(y, probs(imgs)),
        "blurred": binary_metrics(y, probs(blurred)),
    }
    if deblur is not None:
        model = OnnxDeblur(deblur)
        result["corrected"] = binary_metrics(y, probs([model(b) for b in blurred]))
    for k in ("clean", "blurred", "corrected"):
        if k in result:
            print("classifier", k, json.dumps(result[k]), flush=True)
    return result


def time_generators(threads: int = 2, size: int = 2048) -> dict[str, Any]:
    """ORT CPU seconds per ``size``² frame, tiled 512/32, for the light and esrgan configs."""
    import torch

    from models.export import export_deblur
    from models.rrdbnet import build_generator

    torch.set_num_threads(threads)
    out: dict[str, Any] = {"threads": threads, "frame": size, "tile": 512, "overlap": 32}
    n_tiles = len(tile_starts(size, 512, 32)) ** 2
    img = np.random.default_rng(0).random((size, size)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        for cfg in ("light", "esrgan"):
            torch.manual_seed(0)
            export_deblur(build_generator(cfg), Path(tmp) / cfg, config_name=cfg)
            sess = session(Path(tmp) / cfg / "model.onnx", threads)

            def fn(b: F32, s: ort.InferenceSession = sess) -> F32:
                (r,) = s.run(["corrected"], {"image": b})
                return np.asarray(r, dtype=np.float32)

            fn(img[None, None, :512, :512])  # warm-up
            if cfg == "light":
                t = time.perf_counter()
                run_tiled(img, fn, 512, 32)
                secs = time.perf_counter() - t
                how = "measured, whole frame tiled"
            else:
                t = time.perf_counter()
                fn(img[None, None, :512, :512])
                secs = (time.perf_counter() - t) * n_tiles
                how = f"one 512 tile x {n_tiles} tiles"
            out[cfg] = {"ms_per_frame": round(secs * 1000), "how": how}
            print("timing", cfg, out[cfg], flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--labels", type=Path, default=None, help="cxr-labeled/labels.csv")
    ap.add_argument("--split", default="test")
    ap.add_argument("--radiographs", type=Path, default=None, help="cxr-radiographs-mhh folder")
    here = Path(__file__).parent / "weights"
    ap.add_argument("--deblur", type=Path, default=here / "deblur-demo")
    ap.add_argument("--classify", type=Path, default=here / "classify-demo")
    ap.add_argument("--crop", type=int, default=384, help="centred crop for deblurring (0 = whole)")
    ap.add_argument("--max-images", type=int, default=0)
    ap.add_argument("--timing", action="store_true")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    deblur = args.deblur if (args.deblur / "manifest.json").is_file() else None
    result: dict[str, Any] = {}
    if args.radiographs is not None:
        result["deblur"] = evaluate_deblur(
            args.radiographs, deblur, args.crop or None, args.max_images or None
        )
    if args.labels is not None and (args.classify / "manifest.json").is_file():
        result["classifier"] = evaluate_classifier(args.labels, args.split, args.classify, deblur)
    if args.timing:
        result["timing_cpu"] = time_generators()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "metrics.json").write_text(
        json.dumps(result, indent=1) + "\n",
        encoding="utf-8",
    )
    print(f"wrote {args.out / 'metrics.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
