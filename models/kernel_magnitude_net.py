"""The learned kernel magnitude: a small U-Net from the Welch log spectrum to |K|, and its export.

The network reads the blurred image's Welch log power spectrum (64², in linear exposure,
:func:`models.kernel_shape.spectrum_input`) and returns the motion kernel's magnitude |K| on the
same grid (centred, ``fftshift``), in [0, 1]. :mod:`models.kernel_shape` recovers the kernel
from it (phase retrieval, orientation by total variation) where it differs from the straight
estimate (docs/models.md, "Curved motion: magnitude, phase and the mirror image").

Training (bank of simulated crops, MHH training patients only) is the experiment
``docs/experiments/kernel_magnitude_net.py``; this module holds the network and exports a
checkpoint to the ONNX model the node runs (ONNX Runtime, never torch):

``python -m models.kernel_magnitude_net --checkpoint models/checkpoints/kernel-magnitude-net.pt
--out models/weights/kernel-magnitude``

Several checkpoints (``--checkpoint A.pt B.pt``) are exported as their weight average
(``--combine weights``) or as the mean of their outputs in one graph (``--combine outputs``);
``--symmetry-average`` reads each spectrum under the eight symmetries of the square and averages.
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from models.export import MODEL_FILE, OPSET, check_parity
from models.manifest import (
    InputSpec,
    ModelManifest,
    device_uid_for,
    sha256_of,
    write_manifest,
)

NAME = "sharpray-kernel-magnitude"
VERSION = "0.1.0"
#: The native-pixel network for frames with pixels finer than 0.4 mm (models.kernel_shape).
DETECTOR_NAME = "sharpray-kernel-magnitude-detector"
GRID = 64


class KernelMagnitudeNet(nn.Module):
    """A small U-Net on the 64² log spectrum: 64² → 32² → 16² (dilated) and back, with skips."""

    def __init__(self, ch: int = 16) -> None:
        super().__init__()

        def block(i: int, o: int, d: int = 1) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(i, o, 3, padding=d, dilation=d), nn.GELU())

        self.e1 = nn.Sequential(block(1, ch), block(ch, ch))
        self.e2 = nn.Sequential(nn.Conv2d(ch, 2 * ch, 3, 2, 1), nn.GELU(), block(2 * ch, 2 * ch))
        self.e3 = nn.Sequential(
            nn.Conv2d(2 * ch, 4 * ch, 3, 2, 1),
            nn.GELU(),
            *(block(4 * ch, 4 * ch, d) for d in (1, 2, 4, 2)),
        )
        self.u2 = nn.ConvTranspose2d(4 * ch, 2 * ch, 2, 2)
        self.d2 = nn.Sequential(block(4 * ch, 2 * ch), block(2 * ch, 2 * ch))
        self.u1 = nn.ConvTranspose2d(2 * ch, ch, 2, 2)
        self.d1 = nn.Sequential(block(2 * ch, ch), nn.Conv2d(ch, 1, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.e1(x)
        b = self.e2(a)
        c = self.e3(b)
        d = self.d2(torch.cat([self.u2(c), b], 1))
        return torch.sigmoid(self.d1(torch.cat([self.u1(d), a], 1)))


def negate_frequency(a: torch.Tensor, dim: int) -> torch.Tensor:
    """An ``fftshift``-ed spectrum with the frequency along ``dim`` negated (f → −f): the
    spectrum of the mirrored image. A plain flip would map f to −f − 1 on an even grid."""
    n = a.shape[dim]
    index = (-torch.arange(n, device=a.device)) % n  # a gather: exported to ONNX as one
    return a.index_select(dim, index)


def dihedral(a: torch.Tensor, which: int) -> torch.Tensor:
    """One of the 8 symmetries of the square (``which`` 0–7) applied to ``fftshift``-ed spectra
    [..., n, n]: mirroring or turning the image by 90° does the same to its power spectrum and to
    its motion kernel's magnitude, so each is another valid case."""
    if which & 1:
        a = negate_frequency(a, -1)
    if which & 2:
        a = negate_frequency(a, -2)
    if which & 4:
        a = a.transpose(-1, -2)
    return a


def dihedral_inverse(a: torch.Tensor, which: int) -> torch.Tensor:
    """The symmetry that undoes :func:`dihedral` ``which`` (the transpose first, then the same
    negations: they commute with each other)."""
    if which & 4:
        a = a.transpose(-1, -2)
    if which & 1:
        a = negate_frequency(a, -1)
    if which & 2:
        a = negate_frequency(a, -2)
    return a


class SymmetryAverage(nn.Module):
    """A magnitude network read eight ways: the spectrum under each symmetry of the square, the
    answer turned back, the eight averaged (the networks were trained with these symmetries)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [dihedral_inverse(self.net(dihedral(x, w)), w) for w in range(8)]
        return torch.stack(outs).mean(0)


def load_checkpoint(path: Path) -> KernelMagnitudeNet:
    net = KernelMagnitudeNet()
    net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return net.eval()


def average_weights(paths: list[Path]) -> KernelMagnitudeNet:
    """One network whose every weight is the mean of the checkpoints' (a "weight average":
    meaningful for networks of one lineage, e.g. one fine-tuned from the other)."""
    states = [torch.load(p, map_location="cpu", weights_only=True) for p in paths]
    net = KernelMagnitudeNet()
    net.load_state_dict({k: sum(s[k] for s in states) / len(states) for k in states[0]})
    return net.eval()


class MeanOfNetworks(nn.Module):
    """The mean of several magnitude networks' outputs, exported as one graph."""

    def __init__(self, nets: list[KernelMagnitudeNet]) -> None:
        super().__init__()
        if not nets:
            raise ValueError("MeanOfNetworks needs at least one network")
        self.nets = nn.ModuleList(nets)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([n(x) for n in self.nets]).mean(0)


def combine_checkpoints(paths: list[Path], how: str) -> nn.Module:
    """One checkpoint as it is; several as their weight average (``how="weights"``) or the mean
    of their outputs (``how="outputs"``)."""
    if len(paths) == 1:
        return load_checkpoint(paths[0])
    if how == "weights":
        return average_weights(paths)
    if how == "outputs":
        return MeanOfNetworks([load_checkpoint(p) for p in paths]).eval()
    raise ValueError(f"unknown way to combine checkpoints: {how!r}")


def export_kernel_magnitude(
    net: nn.Module,
    out_dir: Path,
    *,
    version: str = VERSION,
    training: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    name: str = NAME,
) -> ModelManifest:
    """``out_dir/model.onnx`` (input ``image`` [N, 1, 64, 64], output ``magnitude``) and its
    manifest, after checking ONNX Runtime against PyTorch."""
    net = net.float().cpu().eval()
    inner = net.net if isinstance(net, SymmetryAverage) else net
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / MODEL_FILE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            net,
            (torch.zeros(1, 1, GRID, GRID),),
            str(path),
            input_names=["image"],
            output_names=["magnitude"],
            dynamic_axes={"image": {0: "N"}, "magnitude": {0: "N"}},
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )
    parity = check_parity(net, path, [(1, 1, GRID, GRID), (3, 1, GRID, GRID)], ["magnitude"])
    sha = sha256_of(path)
    manifest = ModelManifest(
        name=name,
        task="kernel_magnitude",
        version=version,
        architecture=(
            (
                "averaged over the 8 symmetries of the square (spectrum turned, answer turned "
                "back): "
                if isinstance(net, SymmetryAverage)
                else ""
            )
            + (
                f"the mean of the outputs of {len(inner.nets)} networks, each a "
                if isinstance(inner, MeanOfNetworks)
                else ""
            )
            + "U-Net (16/32/64 channels, dilated bottleneck) from the 64x64 Welch log power "
            "spectrum of the blurred linear exposure to the motion kernel's magnitude |K| "
            "(centred, sigmoid)"
        ),
        file=MODEL_FILE,
        sha256=sha,
        device_uid=device_uid_for(sha),
        demonstration_only=True,
        description=(
            "Kernel magnitude for the curved-motion shape step of the blind correction; "
            "trained on simulated motion over public radiographs, not validated clinically."
        ),
        input=InputSpec(
            intensity="welch_log_spectrum", mean=0.0, std=1.0, size=GRID, multiple_of=1
        ),
        outputs={"magnitude": "magnitude"},
        training=training or {},
        metrics={**(metrics or {}), "onnx_parity_rel_l2": parity["magnitude"]},
        opset=OPSET,
    )
    write_manifest(manifest, out_dir)
    return manifest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--checkpoint",
        type=Path,
        nargs="+",
        required=True,
        help="state dict (.pt); several are combined as --combine says",
    )
    ap.add_argument(
        "--combine",
        choices=("weights", "outputs"),
        default="weights",
        help="several checkpoints: their weight average, or the mean of their outputs",
    )
    ap.add_argument(
        "--symmetry-average",
        action="store_true",
        help="read each spectrum under the 8 symmetries of the square and average the answers",
    )
    ap.add_argument("--out", type=Path, required=True, help="model folder to write")
    ap.add_argument("--version", default=VERSION)
    ap.add_argument(
        "--name", default=NAME, help=f"model name (the detector-scale network: {DETECTOR_NAME})"
    )
    ap.add_argument(
        "--record",
        type=Path,
        default=None,
        help="the checkpoint's JSON record (data, validation) copied into the manifest",
    )
    args = ap.parse_args(argv)
    record: dict[str, Any] = (
        json.loads(args.record.read_text(encoding="utf-8")) if args.record else {}
    )
    net = combine_checkpoints(args.checkpoint, args.combine)
    if args.symmetry_average:
        net = SymmetryAverage(net)
    m = export_kernel_magnitude(
        net,
        args.out,
        version=args.version,
        name=args.name,
        training={k: record[k] for k in ("data", "reproduce", "machine") if k in record},
        metrics={
            k: record[k] for k in ("bank_holdout_magnitude_error", "validation") if k in record
        },
    )
    print(f"{m.display_name} -> {args.out} (parity {m.metrics['onnx_parity_rel_l2']:.2e})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
