"""The learned kernel magnitude: the bundled ONNX model is the committed checkpoint exported, and
training runs and resumes (tiny bank)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from conftest import KERMANY
from torch import nn

from models.kernel_magnitude_net import (
    KernelMagnitudeNet,
    SymmetryAverage,
    combine_checkpoints,
    dihedral,
    dihedral_inverse,
    export_kernel_magnitude,
    load_checkpoint,
)
from models.kernel_magnitude_net import main as export_main
from models.manifest import load_manifest
from models.train_kernel_magnitude import train

REPO = Path(__file__).resolve().parents[2]
CHECKPOINT = REPO / "models" / "checkpoints" / "kernel-magnitude-net-4.pt"
BUNDLED = REPO / "models" / "weights" / "kernel-magnitude"
DETECTOR_CHECKPOINT = REPO / "models" / "checkpoints" / "kernel-magnitude-detector-net.pt"
DETECTOR_BUNDLED = REPO / "models" / "weights" / "kernel-magnitude-detector"


@pytest.mark.parametrize(
    ("checkpoint", "bundled_folder", "name"),
    [
        (CHECKPOINT, BUNDLED, "sharpray-kernel-magnitude"),
        (DETECTOR_CHECKPOINT, DETECTOR_BUNDLED, "sharpray-kernel-magnitude-detector"),
    ],
)
def test_the_bundled_model_is_the_committed_checkpoint_exported(
    tmp_path: Path, checkpoint: Path, bundled_folder: Path, name: str
) -> None:
    net = load_checkpoint(checkpoint)
    manifest = export_kernel_magnitude(net, tmp_path / "m", name=name)
    assert manifest.task == "kernel_magnitude" and manifest.input.size == 64
    assert float(manifest.metrics["onnx_parity_rel_l2"]) < 1e-3  # type: ignore[arg-type]
    bundled, path = load_manifest(bundled_folder)  # sha256 checked
    assert bundled.task == "kernel_magnitude" and bundled.name == name
    x = np.random.default_rng(0).standard_normal((2, 1, 64, 64)).astype(np.float32)
    (out,) = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {"image": x}
    )
    with torch.no_grad():
        ref = net(torch.from_numpy(x)).numpy()
    assert np.abs(out - ref).max() < 1e-4


def test_two_checkpoints_combine_by_their_weights_or_their_outputs(tmp_path: Path) -> None:
    paths = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        paths.append(tmp_path / f"n{seed}.pt")
        torch.save(KernelMagnitudeNet().state_dict(), paths[-1])
    a, b = (load_checkpoint(p) for p in paths)
    averaged = combine_checkpoints(paths, "weights")
    assert isinstance(averaged, KernelMagnitudeNet)
    for name, w in averaged.state_dict().items():
        assert torch.allclose(w, (a.state_dict()[name] + b.state_dict()[name]) / 2)
    x = torch.from_numpy(
        np.random.default_rng(0).standard_normal((2, 1, 64, 64)).astype(np.float32)
    )
    with torch.no_grad():
        mean_of_outputs = (a(x) + b(x)) / 2
        assert torch.allclose(combine_checkpoints(paths, "outputs")(x), mean_of_outputs)
        assert not torch.allclose(averaged(x), mean_of_outputs, atol=1e-6)
    with pytest.raises(ValueError, match="unknown way"):
        combine_checkpoints(paths, "median")
    # the export of the output mean runs in ONNX Runtime as one graph
    argv = ["--checkpoint", *map(str, paths), "--combine", "outputs"]
    architecture, onnx_out = _exported(argv, tmp_path / "mean", x.numpy())
    assert architecture.startswith("the mean of the outputs of 2 networks")
    assert np.abs(onnx_out - mean_of_outputs.numpy()).max() < 1e-4


def _exported(argv: list[str], out: Path, x: np.ndarray) -> tuple[str, np.ndarray]:
    """Export through the command line into ``out``; the manifest's architecture and what ONNX
    Runtime makes of ``x`` with the exported graph."""
    assert export_main([*argv, "--out", str(out)]) == 0
    manifest, path = load_manifest(out)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (onnx_out,) = session.run(None, {"image": x})
    return manifest.architecture, np.asarray(onnx_out)


def test_the_symmetry_average_reads_eight_ways_and_turns_each_answer_back(
    tmp_path: Path,
) -> None:
    a = torch.from_numpy(np.random.default_rng(1).standard_normal((2, 1, 64, 64)))
    for which in range(8):
        assert torch.equal(dihedral_inverse(dihedral(a, which), which), a), which
    # an identity "network" comes back unchanged
    assert torch.allclose(SymmetryAverage(nn.Identity())(a), a)
    net = KernelMagnitudeNet().eval()
    averaged = SymmetryAverage(net).eval()
    x = a.float()
    with torch.no_grad():
        expected = sum(dihedral_inverse(net(dihedral(x, w)), w) for w in range(8)) / 8
        got = averaged(x)
        assert torch.allclose(got, expected, atol=1e-6)
        # the average is itself symmetric: a turned spectrum gives the turned answer
        assert torch.allclose(averaged(dihedral(x, 5)), dihedral(got, 5), atol=1e-5)
    torch.save(net.state_dict(), tmp_path / "n.pt")
    argv = ["--checkpoint", str(tmp_path / "n.pt"), "--symmetry-average"]
    architecture, onnx_out = _exported(argv, tmp_path / "sym", x.numpy())
    assert architecture.startswith("averaged over the 8 symmetries")
    assert np.abs(onnx_out - got.numpy()).max() < 1e-4


def test_training_writes_a_checkpoint_and_resumes(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    bank = tmp_path / "bank.npz"
    x = rng.standard_normal((40, 64, 64)).astype(np.float32)
    y = rng.random((40, 64, 64)).astype(np.float32)
    np.savez(bank, x=x, y=y)
    out = tmp_path / "k.pt"
    first = train([bank], out, steps=3)
    assert out.exists() and out.with_suffix(".state.pt").exists()
    assert 0 < first["bank_holdout_magnitude_error"] < 10
    before = load_checkpoint(out).state_dict()
    again = train([bank], out, steps=3)  # resumed after the last step: nothing left to do
    assert again == first
    after = load_checkpoint(out).state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_the_dihedral_symmetries_are_those_of_the_mirrored_and_turned_kernel() -> None:
    """Each augmentation of a magnitude is exactly the magnitude of the kernel mirrored or
    transposed the same way (a plain flip of the centred grid is not: f goes to −f − 1)."""
    from models.blur import trajectory_kernel
    from models.kernel_magnitude_net import dihedral
    from models.kernel_shape import magnitude_of

    k = trajectory_kernel(9.0, np.random.default_rng(3))

    def centred(kernel: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.fft.fftshift(magnitude_of(np.ascontiguousarray(kernel))))

    m = centred(k)
    expected = {
        0: k,
        1: k[:, ::-1],
        2: k[::-1, :],
        3: k[::-1, ::-1],
        4: k.T,
        5: k[:, ::-1].T,
        6: k[::-1, :].T,
    }
    for which, kernel in expected.items():
        assert torch.allclose(dihedral(m, which), centred(kernel), atol=1e-12), which
    assert not torch.allclose(m.flip(-1), centred(k[:, ::-1]), atol=1e-3)  # the old "mirror"


def test_training_on_several_banks_from_a_warm_start_keeps_the_first_bank_s_holdout(
    tmp_path: Path,
) -> None:
    from models.kernel_magnitude_net import KernelMagnitudeNet
    from models.train_kernel_magnitude import load_banks

    rng = np.random.default_rng(1)
    banks = []
    for i, n in enumerate((30, 50)):
        banks.append(tmp_path / f"b{i}.npz")
        x = rng.standard_normal((n, 64, 64)).astype(np.float32)
        np.savez(banks[-1], x=x, y=rng.random((n, 64, 64)).astype(np.float32))
    x, _, nval = load_banks(banks)
    assert len(x) == 80 and nval == 3  # a tenth of the first bank, whatever follows it
    assert torch.equal(x[:3, 0], torch.from_numpy(np.load(banks[0])["x"][:3]))
    init = tmp_path / "init.pt"
    torch.save(KernelMagnitudeNet().state_dict(), init)
    out = tmp_path / "k.pt"
    r = train(banks, out, steps=2, lr=1e-4, init=init, augment="dihedral")
    assert out.exists() and 0 < r["bank_holdout_magnitude_error"] < 10
    start = torch.load(init, weights_only=True)
    trained = load_checkpoint(out).state_dict()
    assert any(not torch.equal(start[k], trained[k]) for k in start)  # it moved from the start


def test_the_rule_figures_of_a_validation() -> None:
    from models.train_kernel_magnitude import shape_summary

    def row(
        kind: str, q: float | None, fixed: float, noise: float, est: float = 6.0
    ) -> dict[str, object]:
        return {
            "scene": "s",
            "kind": kind,
            "px": 6.0,
            "quanta": q,
            "flagged": True,
            "gain_fixed": fixed,
            "gain_noise": noise,
            "estimated_px": est,
        }

    rows = [
        row("curved", None, 1.0, 3.0),
        row("curved", None, 2.0, 2.0),
        row("straight", 1e4, 2.0, 1.8, est=3.5),
        {"scene": "s", "kind": "straight", "px": 6.0, "quanta": None, "flagged": False},
    ]
    s = shape_summary(rows)
    assert s["cases"] == 3
    assert s["curved_noiseless"] == 1.0
    assert s["largest_group_fall"] == -0.2
    assert s["all"] == round((2.0 + 0.0 - 0.2) / 3, 3)
    assert s["groups"]["s curved 6px q=None"] == {"cases": 2, "straight": 1.5, "shape": 2.5}
    # the straight kernel kept below 4 px of estimated motion: the straight case no longer falls
    floor = shape_summary(rows, least_px=4.0)
    assert floor["largest_group_fall"] == 0.0 and floor["curved_noiseless"] == 1.0


def test_random_collimation_adds_flat_bands_and_keeps_the_rest() -> None:
    from models.train_kernel_magnitude import random_collimation

    img = np.full((100, 120), 0.5, dtype=np.float32)
    for seed in range(5):
        out = random_collimation(img, np.random.default_rng(seed))
        assert out.shape == img.shape and img.max() == 0.5  # the input is left alone
        edges = [out[0, 60], out[-1, 60], out[50, 0], out[50, -1]]
        assert sum(e < 0.06 for e in edges) >= 1  # at least one unexposed band
        assert float((out == 0.5).mean()) > 0.3  # most of the anatomy is still there


@pytest.mark.skipif(not (KERMANY / "labels.csv").is_file(), reason=f"shared data absent: {KERMANY}")
def test_validate_kermany_runs_the_step_as_built_not_at_the_node_s_least_side(
    tmp_path: Path,
) -> None:
    """The node keeps frames under 384 px straight, so at that side the validation on Kermany's
    224 px frames measures nothing (shaped = straight): by default it runs the step as built."""
    from models.train_kernel_magnitude import AS_BUILT_SMALLEST_FRAME_PX, validate_kermany

    assert AS_BUILT_SMALLEST_FRAME_PX < 224
    node = validate_kermany(KERMANY.parent, BUNDLED, 1, tmp_path / "n.json", smallest_frame_px=384)
    flagged = [r for r in node if r["flagged"]]
    assert flagged and all(r["gain_noise"] == r["gain_fixed"] for r in flagged)
    assert not any(r["shape_replaced"] for r in flagged)


def test_the_detector_rows_are_scored_at_any_threshold_and_the_round_s_choice() -> None:
    """The sixteenth round's rows hold the straight kernel unread (the node as built), read and
    kept, and retrieved; a τ pair picks one of the last two by the predicted distance."""
    from models.train_kernel_magnitude import detector_summary, detector_tau_choice

    def row(kind: str, distance: float, quiet: bool, **gains: float) -> dict[str, object]:
        return {
            "scene": "0.2/open",
            "kind": kind,
            "px": 10.0,
            "quanta": None if quiet else 1e4,
            "flagged": True,
            "estimated_px": 10.0,
            "distance": distance,
            "quiet": quiet,
            **gains,
        }

    rows = [
        row("curved", 0.5, True, gain_fixed=1.0, gain_checked=1.1, gain_retrieved=3.0),
        row("straight", 0.22, True, gain_fixed=2.0, gain_checked=2.1, gain_retrieved=1.0),
        row("straight", 0.45, False, gain_fixed=1.0, gain_checked=1.0, gain_retrieved=0.8),
        {"scene": "0.2/open", "kind": "curved", "px": 10.0, "quanta": 1e4, "flagged": True}
        | {"estimated_px": 9.0, "gain_fixed": 0.5},  # the step did not read this frame
    ]
    low = detector_summary(rows, (0.2, 0.4))  # every read frame replaced
    assert low["groups"]["0.2/open curved 10px q=None"]["shape"] == 3.0
    assert low["groups"]["0.2/open straight 10px q=None"]["shape"] == 1.0
    assert low["groups"]["0.2/open straight 10px q=10000.0"]["shape"] == 0.8
    assert low["groups"]["0.2/open curved 10px q=10000.0"]["shape"] == 0.5  # as built
    high = detector_summary(rows, (0.3, 0.5))  # the straight ones kept, with the step's λ
    assert high["groups"]["0.2/open straight 10px q=None"]["shape"] == 2.1
    assert high["largest_group_fall"] == 0.0
    choice = detector_tau_choice(rows, grid=(0.2, 0.3, 0.5))
    assert choice["chosen"]["thresholds"] in ([0.3, 0.5],)
    assert len(choice["pairs"]) == 9
    assert detector_tau_choice(rows, grid=(0.2,))["chosen"] is None  # every pair falls by 1 dB
    # the eighteenth round's candidate: where the retrieved kernel's Wiener result rang, the
    # frame as without the step (the node as built)
    rows[1]["retrieved_method"] = "richardson-lucy"
    unshaped = detector_summary(rows, (0.2, 0.4), fallback_unshaped=True)
    assert unshaped["groups"]["0.2/open straight 10px q=None"]["shape"] == 2.0
    assert (
        detector_summary(rows, (0.2, 0.4))["groups"]["0.2/open straight 10px q=None"]["shape"]
        == 1.0
    )


@pytest.mark.skipif(not (KERMANY / "labels.csv").is_file(), reason=f"shared data absent: {KERMANY}")
def test_the_detector_bank_holds_spectra_and_true_magnitudes(tmp_path: Path) -> None:
    from models.kernel_shape import GRID
    from models.train_kernel_magnitude import bank_detector

    out = tmp_path / "b.npz"
    bank_detector(KERMANY.parent, 3, out, seed=1, cases_per_scene=2)
    d = np.load(out)
    assert d["x"].shape == d["y"].shape == (3, GRID, GRID)
    assert np.allclose(d["x"].reshape(3, -1).std(axis=1), 1.0, atol=1e-3)  # standardised
    # |K| centred: 1 at zero frequency, the grid's centre after fftshift
    assert np.allclose(d["y"][:, GRID // 2, GRID // 2], 1.0)
