"""RRDBNet (ESRGAN's generator) for single-channel radiographs at the input's own resolution.

Wang et al., "ESRGAN: Enhanced Super-Resolution Generative Adversarial Networks", ECCVW 2018:
Residual-in-Residual Dense Blocks (RRDB = 3 residual dense blocks, each 5 convolutions with dense
connections of ``growth`` channels, LeakyReLU 0.2, no batch norm, residual scaling 0.2).

Here the network does not upscale: a pixel-unshuffle ×4 in front turns [N,1,H,W] into
[N,16,H/4,W/4] so the body runs at 1/16 of the pixels, and a pixel-shuffle ×4 at the end returns
to [N,1,H,W]. A global residual makes the network learn a correction: ``output = input + f(input)``.
H and W must be multiples of 4 (pad by reflection first: :func:`models.tiling.run_tiled` does).
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

SCALE = 4  # pixel-unshuffle / pixel-shuffle factor


@dataclass(frozen=True)
class RRDBConfig:
    num_feat: int
    num_block: int
    growth: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


#: Named configurations. "light" is the default shipped model (≈ 25 s per 2048² frame in ONNX
#: Runtime on 2 CPU cores), "esrgan" the original size (≈ 4 min per 2048² on 2 cores: a GPU model),
#: "tiny" is for tests only.
CONFIGS: dict[str, RRDBConfig] = {
    "esrgan": RRDBConfig(num_feat=64, num_block=23, growth=32),
    "light": RRDBConfig(num_feat=32, num_block=6, growth=32),
    "refiner": RRDBConfig(num_feat=32, num_block=2, growth=16),
    "tiny": RRDBConfig(num_feat=8, num_block=1, growth=8),
}
DEFAULT_CONFIG = "light"


class ResidualDenseBlock(nn.Module):
    """Five 3×3 convolutions with dense connections; output = x + 0.2 · conv5(...)."""

    def __init__(self, num_feat: int, growth: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(num_feat, growth, 3, 1, 1)
        self.conv2 = nn.Conv2d(num_feat + growth, growth, 3, 1, 1)
        self.conv3 = nn.Conv2d(num_feat + 2 * growth, growth, 3, 1, 1)
        self.conv4 = nn.Conv2d(num_feat + 3 * growth, growth, 3, 1, 1)
        self.conv5 = nn.Conv2d(num_feat + 4 * growth, num_feat, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)
        for m in (self.conv1, self.conv2, self.conv3, self.conv4, self.conv5):
            # ESRGAN initialisation: Kaiming, scaled by 0.1 for stable deep residual training.
            nn.init.kaiming_normal_(m.weight, a=0.0, mode="fan_in")
            m.weight.data.mul_(0.1)
            assert m.bias is not None
            nn.init.zeros_(m.bias)
        # 0.2 until ``fold_residual_scaling`` moves it into conv5 (the export form)
        self.res_scale = 0.2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.lrelu(self.conv1(x))
        x2 = self.lrelu(self.conv2(torch.cat((x, x1), 1)))
        x3 = self.lrelu(self.conv3(torch.cat((x, x1, x2), 1)))
        x4 = self.lrelu(self.conv4(torch.cat((x, x1, x2, x3), 1)))
        x5: torch.Tensor = self.conv5(torch.cat((x, x1, x2, x3, x4), 1))
        return x + (x5 if self.res_scale == 1.0 else self.res_scale * x5)


class RRDB(nn.Module):
    """Residual-in-residual dense block: three RDBs, output = x + 0.2 · RDB3(RDB2(RDB1(x)))."""

    def __init__(self, num_feat: int, growth: int) -> None:
        super().__init__()
        self.rdb1 = ResidualDenseBlock(num_feat, growth)
        self.rdb2 = ResidualDenseBlock(num_feat, growth)
        self.rdb3 = ResidualDenseBlock(num_feat, growth)
        # the export form scales with a 1×1 convolution instead (``fold_residual_scaling``)
        self.out_scale: nn.Conv2d | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.rdb3(self.rdb2(self.rdb1(x)))
        if self.out_scale is not None:
            scaled: torch.Tensor = self.out_scale(out)
            return x + scaled
        return x + 0.2 * out


class RRDBNet(nn.Module):
    """RRDBNet at ×1 with pixel-unshuffle/shuffle ×4 and a global residual on the last input
    channel: one channel (the blurred image) for the generator, two (the blurred image and its
    deconvolution) for the refiner (:mod:`models.train_refiner`), which learns what the
    deconvolution left (ringing, noise) on top of it."""

    def __init__(
        self, num_feat: int = 32, num_block: int = 6, growth: int = 32, in_channels: int = 1
    ) -> None:
        super().__init__()
        self.config = RRDBConfig(num_feat=num_feat, num_block=num_block, growth=growth)
        self.in_channels = in_channels
        ch = SCALE * SCALE
        self.conv_first = nn.Conv2d(ch * in_channels, num_feat, 3, 1, 1)
        self.body = nn.Sequential(*[RRDB(num_feat, growth) for _ in range(num_block)])
        self.conv_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, ch, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)
        # Start near the identity: the correction's last layer begins small.
        nn.init.kaiming_normal_(self.conv_last.weight)
        self.conv_last.weight.data.mul_(0.01)
        assert self.conv_last.bias is not None
        nn.init.zeros_(self.conv_last.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.conv_first(F.pixel_unshuffle(x, SCALE))
        feat = feat + self.conv_body(self.body(feat))
        out = self.conv_last(self.lrelu(self.conv_hr(feat)))
        base = x if self.in_channels == 1 else x[:, -1:]
        return base + F.pixel_shuffle(out, SCALE)


@torch.no_grad()
def fold_residual_scaling(model: RRDBNet) -> RRDBNet:
    """The same function in the form ONNX Runtime runs fastest on CPUs (a copy; ``model`` is kept).

    ONNX Runtime keeps convolutions in its blocked NCHWc layout only along a chain of ops it can
    run in that layout; a multiplication by the constant 0.2 is not one, so each residual
    scaling sent every tensor back to NCHW and every concatenation ran in NCHW with a reorder
    before each of the 349 convolutions (measured: 333 ReorderOutput + 332 ReorderInput nodes in
    the ESRGAN graph). Here the dense block's 0.2 moves into its last convolution's weights and
    bias, and the RRDB's 0.2 becomes a 1×1 convolution with weight 0.2·I (0.1% more FLOPs), so
    the whole body stays blocked. The output is the same up to float rounding; the export's
    parity check compares it with the original.
    """
    folded = copy.deepcopy(model)
    for rrdb in folded.body:
        assert isinstance(rrdb, RRDB)
        if rrdb.out_scale is not None:
            continue  # already in the export form (folding twice would scale twice)
        for rdb in (rrdb.rdb1, rrdb.rdb2, rrdb.rdb3):
            assert rdb.conv5.bias is not None
            rdb.conv5.weight.mul_(rdb.res_scale)
            rdb.conv5.bias.mul_(rdb.res_scale)
            rdb.res_scale = 1.0
        n = rrdb.rdb1.conv5.out_channels
        scale = nn.Conv2d(n, n, 1, bias=False)
        scale.weight.copy_(0.2 * torch.eye(n).reshape(n, n, 1, 1))
        rrdb.out_scale = scale.to(rrdb.rdb1.conv5.weight)
    return folded


def build_generator(config: str | RRDBConfig = DEFAULT_CONFIG, in_channels: int = 1) -> RRDBNet:
    """An RRDBNet of a named configuration ("esrgan", "light", "tiny") or an explicit one."""
    cfg = CONFIGS[config] if isinstance(config, str) else config
    return RRDBNet(cfg.num_feat, cfg.num_block, cfg.growth, in_channels)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
