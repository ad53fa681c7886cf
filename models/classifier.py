"""Pneumonia classifier (EfficientNet-B3 from timm) and its export wrapper with a built-in CAM.

Grad-CAM without gradients
--------------------------
timm's EfficientNet head is global average pooling → dropout → linear. For the feature map
``A = forward_features(x)`` ([N, K, h, w], after the final BN + SiLU) the class score is
``y_c = Σ_k w_ck · (1/Z) Σ_ij A_kij + b_c`` with ``Z = h·w``. Grad-CAM (Selvaraju et al. 2017)
weights each channel by the spatial mean of ``∂y_c/∂A_k`` — here exactly ``w_ck / Z`` everywhere — so

    Grad-CAM_c = ReLU(Σ_k (w_ck / Z) · A_k) = ReLU(Σ_k w_ck · A_k) / Z,

i.e. the class activation map (CAM, Zhou et al. 2016) divided by ``Z``. The export wrapper computes
it as a 1×1 convolution with the classifier's weights, a ReLU and a division by ``Z``.

**The bias is left out**: ``b_c`` does not depend on ``A``, so it has no gradient and no place in
Grad-CAM. (Adding ``b_c / Z`` to every position would make the un-rectified map sum to the logit —
a decomposition of the score — but would no longer equal Grad-CAM.) The maps are in the units of
the logit per position: the node normalises each map by its maximum for display.

:func:`grad_cam` computes the same map with autograd, as the reference for tests.
"""

from __future__ import annotations

from typing import Protocol, cast

import torch
import torch.nn.functional as F
from torch import nn

#: Classifier architectures by name: a timm model name, or "tiny" (tests only).
ARCHITECTURES = ("efficientnet_b3", "tiny")
DEFAULT_ARCH = "efficientnet_b3"
#: Input size used for the shipped classifier (the Kermany images are 224×224).
DEFAULT_SIZE = 224


class GapLinearClassifier(Protocol):
    """What the CAM wrapper needs: timm's ``forward_features``/``forward_head``/``get_classifier``."""

    def forward_features(self, x: torch.Tensor) -> torch.Tensor: ...

    def forward_head(self, x: torch.Tensor) -> torch.Tensor: ...

    def get_classifier(self) -> nn.Module: ...


class TinyCNN(nn.Module):
    """A small CNN with the same head and API as a timm EfficientNet (tests only: exports in ms).

    Four stride-2 conv/BN/SiLU stages (8, 16, 32, 32 channels) → features at 1/16 resolution →
    global average pooling → linear.
    """

    def __init__(self, in_chans: int = 1, num_classes: int = 2, width: int = 8) -> None:
        super().__init__()
        chans = [in_chans, width, 2 * width, 4 * width, 4 * width]
        layers: list[nn.Module] = []
        for i in range(4):
            layers += [
                nn.Conv2d(chans[i], chans[i + 1], 3, 2, 1, bias=False),
                nn.BatchNorm2d(chans[i + 1]),
                nn.SiLU(),
            ]
        self.features = nn.Sequential(*layers)
        self.num_features = chans[-1]
        self.classifier = nn.Linear(self.num_features, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.features(x)
        return out

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.classifier(x.mean(dim=(2, 3)))
        return out

    def get_classifier(self) -> nn.Module:
        return self.classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def build_classifier(
    arch: str = DEFAULT_ARCH, num_classes: int = 2, drop_rate: float = 0.2
) -> nn.Module:
    """A single-channel classifier, randomly initialised (never downloads weights)."""
    if arch == "tiny":
        return TinyCNN(in_chans=1, num_classes=num_classes)
    import timm

    model = timm.create_model(
        arch, pretrained=False, in_chans=1, num_classes=num_classes, drop_rate=drop_rate
    )
    # timm initialises the head uniformly in ±1/sqrt(num_classes) (±0.71 for two classes): over
    # 1536 features that starts training at logits of ±20 and losses of 2–6 for hundreds of steps.
    # A zero head starts at p = 0.5 everywhere.
    head = cast(GapLinearClassifier, model).get_classifier()
    if isinstance(head, nn.Linear):
        nn.init.zeros_(head.weight)
        nn.init.zeros_(head.bias)
    return model


def _linear(model: GapLinearClassifier) -> nn.Linear:
    head = model.get_classifier()
    if not isinstance(head, nn.Linear):
        raise TypeError(f"classifier head must be nn.Linear for CAM, got {type(head).__name__}")
    return head


class LogitAverage(nn.Module):
    """An ensemble: the mean of its members' logits (same architecture, input and classes).

    Its Grad-CAM is the mean of the members' un-rectified class maps, rectified: the averaged
    logit is the sum over positions of that mean map (plus the mean bias), so the module doc's
    argument holds for the ensemble as for one network.
    """

    def __init__(self, members: list[nn.Module]) -> None:
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        for m in members:
            _linear(cast(GapLinearClassifier, m))
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(x) for m in self.members]).mean(dim=0)


def members_of(model: nn.Module) -> list[nn.Module]:
    """The networks whose logits ``model`` averages (itself where it is a single network)."""
    return list(model.members) if isinstance(model, LogitAverage) else [model]


class CamExport(nn.Module):
    """Export wrapper: ``image`` [N,1,S,S] → (``probabilities`` [N,C], ``cam`` [N,C,h,w]).

    ``probabilities = softmax(logits / temperature)``: the temperature fitted on the validation
    split by :mod:`models.calibrate` (1 = uncalibrated).

    ``cam = ReLU(conv1x1(forward_features(x), classifier weight, no bias)) / (h·w)``, which equals
    Grad-CAM of every class (see the module doc); h, w = S/32 for EfficientNet. For a
    :class:`LogitAverage` the logits and the un-rectified maps are averaged over its members.
    """

    def __init__(self, model: nn.Module, temperature: float = 1.0) -> None:
        super().__init__()
        self.model = model
        self.temperature = float(temperature)
        for m in members_of(model):
            _linear(cast(GapLinearClassifier, m))  # fail early on an unsuitable head

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, maps = [], []
        for member in members_of(self.model):
            m = cast(GapLinearClassifier, member)
            feats = m.forward_features(x)
            logits.append(m.forward_head(feats))
            w = _linear(m).weight
            h, wd = feats.shape[-2], feats.shape[-1]
            maps.append(F.conv2d(feats, w[:, :, None, None]) / float(h * wd))
        mean_logits = torch.stack(logits).mean(dim=0)
        probs = torch.softmax(mean_logits / self.temperature, dim=1)
        cam = F.relu(torch.stack(maps).mean(dim=0))
        return probs, cam


def grad_cam(model: nn.Module, x: torch.Tensor, class_index: int) -> torch.Tensor:
    """Reference Grad-CAM by autograd on the output of ``forward_features``: [N, h, w].

    Gradients of the class logit w.r.t. the feature map, averaged over space (channel weights),
    weighted sum of the feature channels, ReLU.
    """
    m = cast(GapLinearClassifier, model)
    feats = m.forward_features(x)
    logits = m.forward_head(feats)
    (grads,) = torch.autograd.grad(logits[:, class_index].sum(), feats)
    alpha = grads.mean(dim=(2, 3), keepdim=True)
    return F.relu((alpha * feats).sum(dim=1))
