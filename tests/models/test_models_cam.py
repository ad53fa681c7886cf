from __future__ import annotations

import numpy as np
import pytest
import torch

from models.classifier import CamExport, TinyCNN, build_classifier, grad_cam


def _normalise(a: torch.Tensor) -> torch.Tensor:
    peak = a.flatten(1).amax(dim=1).clamp_min(1e-12)
    return a / peak[:, None, None]


@pytest.mark.parametrize("arch,size", [("tiny", 64), ("efficientnet_b3", 96)])
def test_cam_output_equals_grad_cam(arch: str, size: int) -> None:
    torch.manual_seed(0)
    model = build_classifier(arch).eval()
    if arch == "efficientnet_b3":
        # Random init leaves BN at identity; train-mode stats make the features less trivial.
        with torch.no_grad():
            model.train()
            model(torch.rand(4, 1, size, size))
            model.eval()
    x = torch.rand(2, 1, size, size)
    wrapper = CamExport(model).eval()
    with torch.no_grad():
        probs, cam = wrapper(x)
    assert probs.shape == (2, 2)
    assert torch.allclose(probs.sum(1), torch.ones(2), atol=1e-5)
    assert cam.shape[:2] == (2, 2) and (cam >= 0).all()
    worst_raw, worst_norm = 0.0, 0.0
    for c in range(2):
        ref = grad_cam(model, x, c).detach()
        got = cam[:, c]
        worst_raw = max(worst_raw, float((ref - got).abs().max()))
        if float(ref.max()) > 0:
            worst_norm = max(worst_norm, float((_normalise(ref) - _normalise(got)).abs().max()))
    print(f"{arch}: CAM vs Grad-CAM max abs error raw {worst_raw:.3g}, normalised {worst_norm:.3g}")
    assert worst_raw < 1e-5
    assert worst_norm < 1e-4


def test_cam_is_unbiased_and_scaled() -> None:
    torch.manual_seed(1)
    model = TinyCNN().eval()
    with torch.no_grad():
        model.classifier.bias.fill_(5.0)
        x = torch.rand(1, 1, 64, 64)
        _, cam = CamExport(model)(x)
        feats = model.forward_features(x)
        w = model.classifier.weight
        ref = torch.relu(torch.einsum("ck,nkhw->nchw", w, feats)) / (
            feats.shape[2] * feats.shape[3]
        )
    assert np.allclose(cam.numpy(), ref.numpy(), atol=1e-6)


def test_rejects_non_linear_head() -> None:
    model = TinyCNN()
    model.classifier = torch.nn.Sequential(torch.nn.Linear(32, 2))  # type: ignore[assignment]
    with pytest.raises(TypeError):
        CamExport(model)
