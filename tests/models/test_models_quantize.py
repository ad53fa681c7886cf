"""models.quantize: an int8 generator with its own manifest, close to float32, behind a quality gate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from models.deblur_data import make_eval_set
from models.manifest import load_manifest
from models.quantize import QualityGateFailed, calibration_tiles, quantize_deblur
from node.pipeline.infer import load_model


def _synthetic_check(n: int = 2, size: int = 160) -> list:  # type: ignore[type-arg]
    rng = np.random.default_rng(5)
    images = []
    for _ in range(n):
        yy, xx = np.mgrid[0:size, 0:size] / size
        img = 0.5 + 0.35 * np.sin(rng.uniform(3, 9) * 6.28 * yy) * np.cos(6.28 * 4 * xx)
        images.append((np.clip(img, 0, 1) * 255).astype(np.uint8))
    return make_eval_set(images, [f"s{i}" for i in range(n)], seed=1, crop=128)


def test_int8_model_has_its_own_manifest_and_stays_close_to_float32(
    tiny_models: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "deblur-int8"
    q = quantize_deblur(
        tiny_models["deblur"], out, calibration_tiles(None, n=4, size=64), _synthetic_check()
    )
    fp32, _ = load_manifest(tiny_models["deblur"])
    assert q.version == f"{fp32.version}+int8"
    assert q.sha256 != fp32.sha256 and q.device_uid != fp32.device_uid
    check = q.metrics["quantization"]["check"]  # type: ignore[index]
    # the figures of the gate are in the manifest, and the int8 output follows float32
    assert check["crops"] == 6 and check["psnr_int8_vs_fp32_db"] > 30
    assert abs(check["psnr_fp32_db"] - check["psnr_int8_db"]) <= 0.05
    # the node loads it like any model (sha256 checked) and it is integer arithmetic inside
    model = load_model(out, "cpu", 1, True)
    assert model.manifest.version.endswith("+int8")
    onnx_text = (out / "model.onnx").read_bytes()
    assert b"QuantizeLinear" in onnx_text and b"DequantizeLinear" in onnx_text
    # an image like those it was calibrated on (another seed)
    x = calibration_tiles(None, n=1, size=64, seed=9)[0][None, None]
    ref = load_model(tiny_models["deblur"], "cpu", 1, True)
    name = ref.manifest.input.name
    (a,) = ref.session.run(None, {name: x})
    (b,) = model.session.run(None, {name: x})
    err = np.abs(np.asarray(a) - np.asarray(b))
    assert err.mean() < 0.01 and err.max() < 0.05
    assert json.loads((out / "manifest.json").read_text())["file"] == "model.onnx"


def test_the_image_path_stays_float(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    """Only the correction passes through int8: the global residual adds it to the float input,
    so a 16-bit ramp keeps thousands of levels (an int8 residual would leave at most 256)."""
    import onnx

    out = tmp_path / "deblur-int8"
    quantize_deblur(
        tiny_models["deblur"], out, calibration_tiles(None, n=2, size=64), None, refold=True
    )
    graph = onnx.load(str(out / "model.onnx")).graph
    producer = {o: n for n in graph.node for o in n.output}
    last = producer[graph.output[0].name]
    assert last.op_type == "Add" and graph.input[0].name in last.input
    model = load_model(out, "cpu", 1, True)
    ramp = np.linspace(0, 1, 256 * 256, dtype=np.float32).reshape(1, 1, 256, 256)
    (y,) = model.session.run(None, {model.manifest.input.name: ramp})
    assert len(np.unique(np.asarray(y))) > 4096


def test_generator_rebuilt_from_onnx_matches_it(tiny_models: dict[str, Path]) -> None:
    import onnxruntime as ort
    import torch

    from models.export import generator_from_onnx

    manifest, path = load_manifest(tiny_models["deblur"])
    net = generator_from_onnx(path)
    x = calibration_tiles(None, n=1, size=64, seed=2)[0][None, None]
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (a,) = sess.run(None, {manifest.input.name: x})
    with torch.no_grad():
        b = net(torch.from_numpy(x)).numpy()
    assert np.abs(np.asarray(a) - b).max() < 1e-5


def test_quality_gate_refuses_and_writes_nothing(
    tiny_models: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "deblur-int8"
    with pytest.raises(QualityGateFailed, match="dB PSNR"):
        # a negative allowance: int8 would have to beat float32
        quantize_deblur(
            tiny_models["deblur"],
            out,
            calibration_tiles(None, n=2, size=64),
            _synthetic_check(1),
            max_psnr_drop=-1.0,
        )
    assert not (out / "model.onnx").exists() and not (out / "manifest.json").exists()
