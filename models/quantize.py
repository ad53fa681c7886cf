"""Static int8 quantization of a deblur generator for CPUs (ONNX Runtime QDQ), with a quality gate.

    python -m models.quantize --model models/weights/deblur-demo \\
        --out models/weights/deblur-demo-int8 --radiographs ../shared/data/cxr-radiographs-mhh

The generator spends its time in 3×3 convolutions that run near the CPU's float32
matrix-multiply peak (docs/performance.md); int8 convolutions (VNNI on current x86 CPUs) do the
same work in about a third of the time. Weights are quantized per output channel (int8,
symmetric), activations per tensor (uint8) with ranges measured on calibration tiles.

* Calibration: blurred crops of the **training** patients (the split of
  :mod:`models.train_deblur`, seed 0), degraded as in training, so activation ranges are those
  the model meets. Without ``--radiographs`` (tests, benchmarks): seeded synthetic images.
* Gate: the held-out **test** patients' crops at the evaluation strengths
  (:func:`models.deblur_data.make_eval_set`), run tiled through the float32 and the int8 model.
  The int8 model is written only if its mean PSNR against the sharp image is within
  ``--max-psnr-drop`` dB of the float32 model's; the figures go into its manifest.

The output folder holds ``model.onnx`` (int8) and a manifest of its own (its own sha256 and
Device UID, version ``<version>+int8``), so the node loads it like any model
(``models.deblur: models/weights/deblur-demo-int8``) and the results name the model that made
them. Serve it on CPUs with AVX512-VNNI or AVX-VNNI: without VNNI, ONNX Runtime's uint8×int8
kernels can saturate (its documentation recommends re-quantizing with ``reduce_range`` there).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from numpy.typing import NDArray
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quant_pre_process,
    quantize_static,
)
from skimage.metrics import peak_signal_noise_ratio

from models.deblur_data import (
    BlurSampler,
    EvalItem,
    load_images,
    make_eval_set,
    sample_batch,
    split_by_patient,
)
from models.evaluate import OnnxDeblur
from models.manifest import (
    ModelManifest,
    device_uid_for,
    load_manifest,
    sha256_of,
    write_manifest,
)

F32 = NDArray[np.float32]
MODEL_FILE = "model.onnx"  # as models.export writes it (that module needs torch; this one not)


class QualityGateFailed(RuntimeError):
    """The int8 model loses more quality than allowed; nothing is written."""


class _Tiles(CalibrationDataReader):  # type: ignore[misc]
    def __init__(self, name: str, tiles: list[F32]) -> None:
        self.name = name
        self.it: Iterator[F32] = iter(tiles)

    def get_next(self) -> dict[str, F32] | None:
        t = next(self.it, None)
        return None if t is None else {self.name: t[None, None].astype(np.float32)}


def calibration_tiles(
    radiographs: Path | None, n: int = 16, size: int = 256, seed: int = 0
) -> list[F32]:
    """Blurred training crops (or seeded synthetic images without ``radiographs``)."""
    rng = np.random.default_rng(seed)
    if radiographs is None:
        tiles = []
        for _ in range(n):
            yy, xx = np.mgrid[0:size, 0:size] / size
            f = rng.uniform(2, 12, 2)
            img = 0.5 + 0.3 * np.sin(f[0] * 6.28 * yy) * np.cos(f[1] * 6.28 * xx)
            img += rng.normal(0, 0.02, img.shape)
            tiles.append(np.clip(img, 0, 1).astype(np.float32))
        return tiles
    split = split_by_patient(radiographs, 0.2, seed)
    images = load_images(radiographs, split.train[: max(n, 8)])
    x, _ = sample_batch(images, rng, n, size, BlurSampler())
    return [x[i, 0] for i in range(n)]


def check_set(radiographs: Path, max_images: int = 8, crop: int = 512) -> list[EvalItem]:
    """The held-out test patients' crops at the evaluation strengths (as models.evaluate)."""
    split = split_by_patient(radiographs, 0.2, 0)
    names = split.test[:max_images]
    return make_eval_set(load_images(radiographs, names), names, seed=2024, crop=crop)


def _psnr(items: list[EvalItem], outs: list[F32]) -> float:
    return float(
        np.mean(
            [
                peak_signal_noise_ratio(it.sharp, o, data_range=1.0)
                for it, o in zip(items, outs, strict=True)
            ]
        )
    )


def quality(fp32_dir: Path, int8_dir: Path, items: list[EvalItem]) -> dict[str, Any]:
    """Mean PSNR against the sharp image of the blurred input, float32 and int8 outputs, and of
    the int8 output against the float32 output."""
    fp32, int8 = OnnxDeblur(fp32_dir), OnnxDeblur(int8_dir)
    a = [fp32(it.blurred) for it in items]
    t0 = time.perf_counter()
    b = [int8(it.blurred) for it in items]
    int8_s = (time.perf_counter() - t0) / len(items)
    agreement = float(
        np.mean([peak_signal_noise_ratio(x, y, data_range=1.0) for x, y in zip(a, b, strict=True)])
    )
    return {
        "crops": len(items),
        "psnr_blurred_input_db": round(_psnr(items, [it.blurred for it in items]), 3),
        "psnr_fp32_db": round(_psnr(items, a), 3),
        "psnr_int8_db": round(_psnr(items, b), 3),
        "psnr_int8_vs_fp32_db": round(agreement, 2),
        "int8_seconds_per_crop": round(int8_s, 3),
    }


def output_path_nodes(model_path: Path) -> list[str]:
    """The nodes between the last convolutions and the graph's outputs (the pixel shuffle and the
    global residual ``x + correction``): they stay float, so the corrected image keeps the
    input's full precision and only the correction passes through int8 (an 8-bit global
    residual would posterize a 12-16-bit radiograph to 256 levels)."""
    graph = onnx.load(str(model_path)).graph
    producer = {o: n for n in graph.node for o in n.output}
    names: list[str] = []
    todo = [o.name for o in graph.output]
    while todo:
        node = producer.get(todo.pop())
        if node is None or node.op_type == "Conv" or node.name in names:
            continue
        names.append(node.name)
        todo.extend(node.input)
    return names


def quantize_onnx(src: Path, dest: Path, input_name: str, tiles: list[F32]) -> None:
    """QDQ int8: per-channel int8 weights, per-tensor uint8 activations (MinMax calibration);
    the output path stays float (``output_path_nodes``)."""
    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        quantize_static(
            str(pre),
            str(dest),
            _Tiles(input_name, tiles),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            nodes_to_exclude=output_path_nodes(pre),
        )


def quantize_deblur(
    model_dir: Path,
    out_dir: Path,
    tiles: list[F32],
    check: list[EvalItem] | None,
    max_psnr_drop: float = 0.05,
    refold: bool = False,
) -> ModelManifest:
    """Quantize ``model_dir``'s generator into ``out_dir`` (model + manifest); with ``check``,
    refuse (QualityGateFailed, nothing written) when int8 loses more than ``max_psnr_drop`` dB."""
    manifest, src = load_manifest(model_dir)
    if manifest.task != "deblur":
        raise ValueError(f"{model_dir} is a {manifest.task} model; only deblur is quantized")
    out_dir.mkdir(parents=True, exist_ok=True)
    dest = out_dir / MODEL_FILE
    with tempfile.TemporaryDirectory() as tmp:
        if refold:
            src = _refolded(src, Path(tmp), manifest)
        quantize_onnx(src, dest, manifest.input.name, tiles)
    sha = sha256_of(dest)
    quantization: dict[str, Any] = {"from_sha256": manifest.sha256}
    quantization["calibration"] = {
        "tiles": len(tiles),
        "tile_px": int(tiles[0].shape[0]),
        "method": "MinMax",
        "format": "QDQ, weights int8 per channel, activations uint8 per tensor",
        "float_nodes": "pixel shuffle and global residual (the image path stays float)",
        "refolded": refold,
    }
    q = manifest.model_copy(
        update={
            "version": f"{manifest.version}+int8",
            "architecture": f"{manifest.architecture}; int8 (ONNX Runtime static quantization)",
            "file": MODEL_FILE,
            "sha256": sha,
            "device_uid": device_uid_for(sha),
            "metrics": {
                **manifest.metrics,
                "quantization": quantization,
            },
        }
    )
    write_manifest(q, out_dir)  # the quality check loads the model through its manifest
    if check:
        result = quality(model_dir, out_dir, check)
        drop = result["psnr_fp32_db"] - result["psnr_int8_db"]
        result["max_psnr_drop_db"] = max_psnr_drop
        if drop > max_psnr_drop:
            dest.unlink()
            (out_dir / "manifest.json").unlink()
            raise QualityGateFailed(
                f"int8 loses {drop:.3f} dB PSNR on the held-out crops (allowed {max_psnr_drop})"
            )
        metrics = dict(q.metrics)
        metrics["quantization"] = {**quantization, "check": result}
        q = q.model_copy(update={"metrics": metrics})
        write_manifest(q, out_dir)
    return q


def _refolded(src: Path, tmp: Path, manifest: ModelManifest) -> Path:
    """The same generator re-exported with its residual scaling folded (models.rrdbnet
    ``fold_residual_scaling``; parity-checked by the export): fewer quantized ops, about 15%
    faster in int8. Needs torch (the train extra)."""
    from models.export import export_deblur, generator_from_onnx

    export_deblur(generator_from_onnx(src), tmp, name=manifest.name, tile=manifest.tile)
    return tmp / MODEL_FILE


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m models.quantize", description=__doc__)
    ap.add_argument("--model", type=Path, required=True, help="float32 deblur model folder")
    ap.add_argument("--out", type=Path, required=True, help="folder for the int8 model")
    ap.add_argument("--radiographs", type=Path, default=None, help="cxr-radiographs-mhh folder")
    ap.add_argument("--tiles", type=int, default=16, help="calibration tiles")
    ap.add_argument("--check-images", type=int, default=8, help="held-out images in the gate")
    ap.add_argument("--max-psnr-drop", type=float, default=0.05, help="dB, int8 vs float32")
    ap.add_argument(
        "--refold",
        action="store_true",
        help="re-export the generator with folded residual scaling first (needs torch)",
    )
    args = ap.parse_args(argv)
    tiles = calibration_tiles(args.radiographs, args.tiles)
    check = check_set(args.radiographs, args.check_images) if args.radiographs else None
    try:
        m = quantize_deblur(args.model, args.out, tiles, check, args.max_psnr_drop, args.refold)
    except QualityGateFailed as e:
        print(f"not written: {e}", file=sys.stderr)
        return 1
    print(json.dumps(m.metrics.get("quantization"), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
