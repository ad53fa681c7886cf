from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from models.manifest import load_manifest
from models.tiling import run_tiled


def test_layout_and_manifests(test_models: dict[str, Path]) -> None:
    assert set(test_models) == {"deblur", "refiner", "classify"}
    for role, folder in test_models.items():
        assert (folder / "manifest.json").is_file() and (folder / "model.onnx").is_file()
        m, path = load_manifest(folder)
        assert m.task == ("deblur" if role == "refiner" else role) and m.demonstration_only
        assert m.input.channels == (2 if role == "refiner" else 1)
        assert path == folder / "model.onnx"


def test_deblur_runs_tiled_in_onnxruntime(test_models: dict[str, Path]) -> None:
    m, path = load_manifest(test_models["deblur"])
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out_name = m.outputs["image"]
    assert m.tile is not None

    def fn(b: np.ndarray) -> np.ndarray:
        (y,) = sess.run([out_name], {m.input.name: b})
        return np.asarray(y, dtype=np.float32)

    img = np.random.default_rng(0).random((601, 555)).astype(np.float32)
    out = run_tiled(img, fn, m.tile.size, m.tile.overlap, m.input.multiple_of)
    assert out.shape == img.shape and np.isfinite(out).all()
    assert float(np.abs(out - img).mean()) < 0.1  # near-identity fixture


def test_classifier_runs_in_onnxruntime(test_models: dict[str, Path]) -> None:
    m, path = load_manifest(test_models["classify"])
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    s = m.input.size
    assert s is not None
    x = ((np.random.default_rng(0).random((2, 1, s, s)) - m.input.mean) / m.input.std).astype(
        np.float32
    )
    probs, cam = sess.run([m.outputs["probabilities"], m.outputs["cam"]], {m.input.name: x})
    assert probs.shape == (2, len(m.labels))
    assert np.allclose(probs.sum(1), 1.0, atol=1e-5)
    assert cam.shape[:2] == (2, len(m.labels)) and (cam >= 0).all()
    assert [lab.index for lab in m.labels] == [0, 1]


def test_deterministic_and_cli(tmp_path: Path, test_models: dict[str, Path]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "models.make_test_models", str(tmp_path)],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    for task in ("deblur", "classify"):
        a, _ = load_manifest(tmp_path / task)
        b, _ = load_manifest(test_models[task])
        assert a.sha256 == b.sha256 and a.device_uid == b.device_uid


WEIGHTS = Path(__file__).resolve().parents[2] / "models" / "weights"


def test_shipped_demo_models_verify_and_run() -> None:
    folders = [p for p in (WEIGHTS / "deblur-demo", WEIGHTS / "classify-demo") if p.is_dir()]
    if not folders:
        pytest.skip("no demo weights in models/weights")
    for folder in folders:
        m, path = load_manifest(folder)  # sha256 verified
        assert m.demonstration_only and "not for diagnostic use" in m.description
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        if m.task == "deblur":
            x = np.random.default_rng(0).random((1, 1, 64, 64)).astype(np.float32)
            (y,) = sess.run([m.outputs["image"]], {"image": x})
            assert y.shape == x.shape
            psnr = m.metrics["psnr_db"]
            assert isinstance(psnr, dict)
            assert psnr["generator"]["all"] > psnr["blurred_input"]["all"]
        else:
            s = m.input.size
            assert s is not None
            x = np.zeros((1, 1, s, s), dtype=np.float32)
            probs, cam = sess.run(["probabilities", "cam"], {"image": x})
            assert probs.shape == (1, 2) and cam.shape[:2] == (1, 2)
            assert "test" in m.metrics
