"""The learned kernel magnitude: the bundled ONNX model is the committed checkpoint exported, and
training runs and resumes (tiny bank)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from models.kernel_magnitude_net import export_kernel_magnitude, load_checkpoint
from models.manifest import load_manifest
from models.train_kernel_magnitude import train

REPO = Path(__file__).resolve().parents[2]
CHECKPOINT = REPO / "models" / "checkpoints" / "kernel-magnitude-net.pt"
BUNDLED = REPO / "models" / "weights" / "kernel-magnitude"


def test_the_bundled_model_is_the_committed_checkpoint_exported(tmp_path: Path) -> None:
    net = load_checkpoint(CHECKPOINT)
    manifest = export_kernel_magnitude(net, tmp_path / "m")
    assert manifest.task == "kernel_magnitude" and manifest.input.size == 64
    assert float(manifest.metrics["onnx_parity_rel_l2"]) < 1e-3  # type: ignore[arg-type]
    bundled, path = load_manifest(BUNDLED)  # sha256 checked
    assert bundled.task == "kernel_magnitude"
    x = np.random.default_rng(0).standard_normal((2, 1, 64, 64)).astype(np.float32)
    (out,) = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {"image": x}
    )
    with torch.no_grad():
        ref = net(torch.from_numpy(x)).numpy()
    assert np.abs(out - ref).max() < 1e-4


def test_training_writes_a_checkpoint_and_resumes(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    bank = tmp_path / "bank.npz"
    x = rng.standard_normal((40, 64, 64)).astype(np.float32)
    y = rng.random((40, 64, 64)).astype(np.float32)
    np.savez(bank, x=x, y=y)
    out = tmp_path / "k.pt"
    first = train(bank, out, steps=3)
    assert out.exists() and out.with_suffix(".state.pt").exists()
    assert 0 < first["bank_holdout_magnitude_error"] < 10
    before = load_checkpoint(out).state_dict()
    again = train(bank, out, steps=3)  # resumed after the last step: nothing left to do
    assert again == first
    after = load_checkpoint(out).state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
