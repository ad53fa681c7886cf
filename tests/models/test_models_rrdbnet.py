from __future__ import annotations

import numpy as np
import pytest
import torch

from models.rrdbnet import CONFIGS, build_generator, count_parameters
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
