from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from models.classifier import TinyCNN
from models.export import ParityError, check_parity, export_classify, export_deblur, rel_l2
from models.manifest import load_manifest
from models.rrdbnet import build_generator


def test_rel_l2() -> None:
    a = np.ones(4)
    assert rel_l2(a, a) == 0.0
    assert rel_l2(a * 1.1, a) == pytest.approx(0.1)


def test_generator_export_parity_and_dynamic_axes(tmp_path: Path) -> None:
    torch.manual_seed(0)
    g = build_generator("tiny")
    m = export_deblur(g, tmp_path / "g", config_name="tiny", metrics={"x": 1})
    err = m.metrics["onnx_parity_rel_l2"]
    assert isinstance(err, float) and err < 1e-4
    print(f"generator parity rel L2 {err:.3g}")
    model = onnx.load(str(tmp_path / "g" / "model.onnx"))
    assert model.opset_import[0].version == 17
    assert [i.name for i in model.graph.input] == ["image"]
    assert [o.name for o in model.graph.output] == ["corrected"]
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param for d in dims] == ["N", "", "H", "W"]
    # Another shape, batch 3, through ORT.
    import onnxruntime as ort

    sess = ort.InferenceSession(str(tmp_path / "g" / "model.onnx"))
    x = np.random.default_rng(0).random((3, 1, 20, 36)).astype(np.float32)
    (y,) = sess.run(["corrected"], {"image": x})
    with torch.no_grad():
        ref = g(torch.from_numpy(x)).numpy()
    assert rel_l2(y, ref) < 1e-4
    man, _ = load_manifest(tmp_path / "g")
    assert man.input.intensity == "stored_range" and man.input.multiple_of == 4
    assert man.tile is not None and (man.tile.size, man.tile.overlap) == (512, 32)
    assert man.outputs == {"image": "corrected"}
    assert man.demonstration_only and "not for diagnostic use" in man.description


def test_classifier_export_parity(tmp_path: Path) -> None:
    torch.manual_seed(0)
    m = export_classify(
        TinyCNN(), tmp_path / "c", size=64, mean=0.5, std=0.25, architecture="TinyCNN"
    )
    errs = m.metrics["onnx_parity_rel_l2"]
    assert isinstance(errs, dict) and max(errs.values()) < 1e-4
    print(f"classifier parity rel L2 {errs}")
    data = json.loads((tmp_path / "c" / "manifest.json").read_text())
    assert data["input"]["intensity"] == "voi_window" and data["input"]["size"] == 64
    labels = {lab["name"]: lab for lab in data["labels"]}
    assert labels["NORMAL"]["code"]["value"] == "17621005" and not labels["NORMAL"]["is_finding"]
    assert labels["PNEUMONIA"]["code"] == {
        "value": "233604007",
        "scheme": "SCT",
        "meaning": "Pneumonia",
    }
    assert labels["PNEUMONIA"]["is_finding"]


def test_parity_failure_raises(tmp_path: Path) -> None:
    torch.manual_seed(0)
    g = build_generator("tiny")
    export_deblur(g, tmp_path / "g", config_name="tiny")
    other = build_generator("tiny")
    with torch.no_grad():
        for p in other.parameters():
            p.add_(0.5)
    with pytest.raises(ParityError):
        check_parity(other, tmp_path / "g" / "model.onnx", [(1, 1, 32, 32)], ["corrected"])
    # an output's own bound (the CAM's, since 0.7.0) replaces the common one for that output only
    path, shapes = tmp_path / "g" / "model.onnx", [(1, 1, 32, 32)]
    worst = check_parity(other, path, shapes, ["corrected"], tolerances={"corrected": 1e9})
    assert worst["corrected"] > 1e-4
    with pytest.raises(ParityError):
        check_parity(other, path, shapes, ["corrected"], tolerance=1e9, tolerances={"corrected": 0})
    assert check_parity(g, path, shapes, ["corrected"], tolerances={"other": 0})["corrected"] < 1e-4


def test_refiner_export_two_channels_cli_and_rebuilt_from_onnx(tmp_path: Path) -> None:
    """A 2-channel refiner checkpoint through the CLI: manifest with channels 2 and the pixel
    sizes it is for; its ONNX weights rebuild the same network."""
    import onnxruntime as ort

    from models import export
    from models.export import generator_from_onnx

    torch.manual_seed(1)
    net = build_generator("tiny", in_channels=2)
    ck = tmp_path / "refiner.pt"
    torch.save({"state_dict": net.state_dict(), "config": "tiny", "in_channels": 2}, ck)
    out = tmp_path / "r"
    args = [
        "deblur",
        "--checkpoint",
        str(ck),
        "--out",
        str(out),
        "--pixel-spacing-mm",
        "0.1",
        "0.4",
    ]
    assert export.main(args) == 0
    man, path = load_manifest(out)
    assert man.input.channels == 2 and "refiner of the blind Wiener" in man.architecture
    assert man.intended_use is not None and man.intended_use.pixel_spacing_mm == (0.1, 0.4)
    x = np.random.default_rng(1).random((2, 2, 32, 48)).astype(np.float32)
    (y,) = ort.InferenceSession(str(path)).run(["corrected"], {"image": x})
    rebuilt = generator_from_onnx(path)
    assert rebuilt.in_channels == 2
    with torch.no_grad():
        assert rel_l2(np.asarray(y), net(torch.from_numpy(x)).numpy()) < 1e-4
        assert rel_l2(rebuilt(torch.from_numpy(x)).numpy(), np.asarray(y)) < 1e-4


def test_classifier_weights_stored_as_float16_halve_the_file_and_keep_parity(
    tmp_path: Path,
) -> None:
    torch.manual_seed(0)
    model = TinyCNN(width=32)  # large enough that the weights dominate the file
    with torch.no_grad():  # as the shipped members, whose checkpoints hold float16 weights
        for v in model.state_dict().values():
            if v.is_floating_point():
                v.copy_(v.half().float())
    full = export_classify(model, tmp_path / "fp32", size=64, mean=0.5, std=0.25, architecture="t")
    half = export_classify(
        model,
        tmp_path / "fp16",
        size=64,
        mean=0.5,
        std=0.25,
        architecture="t",
        weights_fp16=True,
    )
    f32, f16 = (tmp_path / d / "model.onnx" for d in ("fp32", "fp16"))
    assert f16.stat().st_size < 0.7 * f32.stat().st_size
    graph = onnx.load(str(f16)).graph
    assert any(i.data_type == onnx.TensorProto.FLOAT16 for i in graph.initializer)
    assert any(n.op_type == "Cast" for n in graph.node)
    # parity against PyTorch was checked on the stored file, within the export tolerance
    assert half.metrics["onnx_weights"].startswith("float16")
    assert all(v < 1e-4 for v in half.metrics["onnx_parity_rel_l2"].values())  # type: ignore[union-attr]
    assert "onnx_weights" not in full.metrics
