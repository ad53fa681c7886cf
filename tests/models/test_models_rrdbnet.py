from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from models.rrdbnet import CONFIGS, RRDBConfig, build_generator, count_parameters
from models.tiling import run_tiled


def test_configs() -> None:
    assert CONFIGS["esrgan"].num_feat == 64 and CONFIGS["esrgan"].num_block == 23
    assert CONFIGS["esrgan"].growth == 32
    assert count_parameters(build_generator("light")) < count_parameters(build_generator("esrgan"))
    with pytest.raises(KeyError):
        build_generator("nope")


def test_starts_near_identity_and_keeps_shape() -> None:
    torch.manual_seed(0)
    g = build_generator("tiny").eval()
    x = torch.rand(2, 1, 32, 48)
    with torch.no_grad():
        y = g(x)
    assert y.shape == x.shape
    assert float((y - x).abs().mean()) < 0.05  # global residual, small initial correction


def test_rejects_sizes_not_multiple_of_four() -> None:
    g = build_generator("tiny").eval()
    with pytest.raises(RuntimeError), torch.no_grad():
        g(torch.rand(1, 1, 30, 30))


@pytest.mark.parametrize("shape", [(37, 53), (130, 97), (5, 201)])
def test_any_size_via_tiling(shape: tuple[int, int]) -> None:
    torch.manual_seed(0)
    g = build_generator("tiny").eval()

    def fn(b: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            out: np.ndarray = g(torch.from_numpy(b)).numpy()
        return out

    img = np.random.default_rng(0).random(shape).astype(np.float32)
    out = run_tiled(img, fn, tile=64, overlap=16)
    assert out.shape == img.shape and out.dtype == np.float32
    assert np.isfinite(out).all()


def test_light_config_trains_one_step() -> None:
    torch.manual_seed(0)
    g = build_generator("light")
    opt = torch.optim.Adam(g.parameters(), 1e-3)
    x = torch.rand(1, 1, 32, 32)
    loss = torch.nn.functional.l1_loss(g(x), x)
    loss.backward()
    opt.step()
    assert all(p.grad is not None for p in g.parameters())


def test_folded_residual_scaling_is_the_same_function_and_keeps_ort_blocked(
    tmp_path: Path,
) -> None:
    """The export form (0.2 folded into conv5, RRDB scale as a 1×1 convolution) computes the
    same output, and ONNX Runtime then runs the whole body in its blocked layout."""
    import collections

    import onnxruntime as ort

    from models.rrdbnet import fold_residual_scaling

    torch.manual_seed(3)
    net = build_generator(RRDBConfig(num_feat=16, num_block=2, growth=16)).eval()
    folded = fold_residual_scaling(net)
    x = torch.rand(1, 1, 64, 64)
    with torch.no_grad():
        assert torch.allclose(net(x), folded(x), atol=1e-6)
    assert net.body[0].out_scale is None  # the original is untouched

    def reorders(module: torch.nn.Module, name: str) -> int:
        path = tmp_path / f"{name}.onnx"
        torch.onnx.export(
            module, x, str(path), input_names=["image"], opset_version=17, dynamo=False
        )
        so = ort.SessionOptions()
        so.optimized_model_filepath = str(tmp_path / f"{name}.opt.onnx")
        so.log_severity_level = 3
        ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        import onnx

        ops = collections.Counter(
            n.op_type for n in onnx.load(so.optimized_model_filepath).graph.node
        )
        return ops["ReorderInput"] + ops["ReorderOutput"]

    before, after = reorders(net, "plain"), reorders(folded, "folded")
    if before == 0:
        pytest.skip("this CPU has no NCHWc kernels in ONNX Runtime (no AVX2)")
    assert after <= 2 < before  # one reorder in, one out, instead of one around every block
