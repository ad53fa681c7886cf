"""The training scripts in --smoke mode (a few tiny steps) on the shared data, then export."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import LABELED, MHH

from models.manifest import load_manifest


@pytest.mark.skipif(not (MHH / "metadata.csv").is_file(), reason=f"shared data absent: {MHH}")
def test_train_deblur_smoke_and_export(tmp_path: Path) -> None:
    from models import export, train_deblur

    out = tmp_path / "run"
    rc = train_deblur.main(
        ["--data", str(MHH), "--out", str(out), "--smoke", "--config", "tiny", "--threads", "1"]
    )
    assert rc == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"psnr_final", "gan_final", "blurred"} <= set(metrics)
    split = json.loads((out / "split.json").read_text())
    assert not set(split["train_patients"]) & set(split["test_patients"])
    # Resume after the end is a no-op that still evaluates.
    assert (
        train_deblur.main(
            ["--data", str(MHH), "--out", str(out), "--smoke", "--config", "tiny", "--resume"]
        )
        == 0
    )
    assert (
        export.main(
            ["deblur", "--checkpoint", str(out / "psnr_final.pt"), "--out", str(tmp_path / "m")]
        )
        == 0
    )
    m, _ = load_manifest(tmp_path / "m")
    assert m.task == "deblur" and m.training["dataset"] == "cxr-radiographs-mhh"


@pytest.mark.skipif(not (LABELED / "labels.csv").is_file(), reason=f"shared data absent: {LABELED}")
def test_train_classifier_smoke_and_export(tmp_path: Path) -> None:
    from models import export, train_classifier

    out = tmp_path / "run"
    rc = train_classifier.main(
        [
            "--labels",
            str(LABELED / "labels.csv"),
            "--out",
            str(out),
            "--smoke",
            "--threads",
            "1",
            "--oversample",
            "person*=2",
            "--report-test",
        ]
    )
    assert rc == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["metrics"]["test"]["n"] == 4
    best = torch.load(out / "best.pt", map_location="cpu", weights_only=False)
    assert "oversampled ['person*=2']" in best["training"]["sampling"]
    assert (
        export.main(
            ["classify", "--checkpoint", str(out / "best.pt"), "--out", str(tmp_path / "m")]
        )
        == 0
    )
    m, _ = load_manifest(tmp_path / "m")
    assert m.task == "classify" and m.input.size == 64 and len(m.labels) == 2


@pytest.mark.skipif(not (MHH / "metadata.csv").is_file(), reason=f"shared data absent: {MHH}")
def test_refiner_bank_then_training_smoke_and_resume(tmp_path: Path) -> None:
    """A small bank of (blurred, node correction, sharp) crops from two training images, only
    where the node corrects; two steps of the 2-channel refiner on it, then a resume that finds
    the run finished; the network starts as the identity on the correction channel."""
    import numpy as np
    import torch

    from models import refiner_bank, train_refiner
    from models.deblur_data import split_by_patient
    from models.rrdbnet import build_generator

    bank = tmp_path / "bank"
    names = split_by_patient(MHH).train[:2]
    counts = refiner_bank.build(MHH, bank, 3, 128, 1, 0, names, scales=(2.0,))
    assert counts["shards"] == 2 and counts["crops"] == counts["corrected"] > 0
    crops, spacing = refiner_bank.load_bank(bank)
    assert crops.shape[1:] == (3, 128, 128) and np.allclose(spacing, 0.3)
    # the correction channel differs from the blurred one: the node deconvolved these
    assert float(np.abs(crops[:, 1].astype(np.float32) - crops[:, 0]).mean()) > 1e-3

    out = tmp_path / "run"
    args = ["--bank", str(bank), "--out", str(out), "--smoke", "--threads", "1"]
    assert train_refiner.main(args) == 0
    assert json.loads((out / "status.json").read_text())["done"] is True
    assert (out / "best.pt").is_file()
    assert train_refiner.main([*args, "--resume"]) == 0
    ck = torch.load(out / "last.pt", weights_only=False)
    assert ck["in_channels"] == 2 and ck["step"] == 2
    net = build_generator("tiny", in_channels=2).eval()
    x = torch.from_numpy(np.random.default_rng(0).random((1, 2, 32, 32), dtype=np.float32))
    with torch.no_grad():
        assert torch.allclose(net(x), x[:, 1:], atol=0.05)


@pytest.mark.skipif(not (MHH / "metadata.csv").is_file(), reason=f"shared data absent: {MHH}")
def test_refiner_bank_of_the_node_correction_is_recorded_in_the_refiner(tmp_path: Path) -> None:
    """A bank made with the shape step (--kernel-shape) says so in bank.json; the refiner trained
    on it records which correction it refines and which magnitude, and --validate measures every
    validation crop."""
    from models import refiner_bank, train_refiner

    bank = tmp_path / "bank"
    magnitude = Path(__file__).resolve().parents[2] / "models" / "weights" / "kernel-magnitude"
    args = ["--data", str(MHH), "--out", str(bank), "--limit", "2", "--draws", "8"]
    assert refiner_bank.main([*args, "--scales", "1", "--kernel-shape", str(magnitude)]) == 0
    described = json.loads((bank / "bank.json").read_text())
    assert described["refines"] == "node_correction"
    assert described["scales_mm_per_px"] == [0.6]
    assert described["kernel_magnitude"]["name"] == "sharpray-kernel-magnitude"

    out = tmp_path / "run"
    run = ["--bank", str(bank), "--out", str(out), "--smoke", "--threads", "1"]
    assert train_refiner.main(run) == 0
    training = torch.load(out / "best.pt", weights_only=False)["training"]
    assert training["refines"] == "node_correction"
    assert training["kernel_magnitude"] == described["kernel_magnitude"]
    assert "0.6 mm/px" in training["data"]
    assert train_refiner.main([*run, "--validate", str(out / "best.pt")]) == 0
    checked = json.loads((out / "validation.json").read_text())
    crops, _ = refiner_bank.load_bank(bank)
    assert 0 < checked["crops"] <= len(crops)
    assert 0.0 <= checked["share_worse"] <= 1.0

    # with the deconvolutions at λ x0.5 and x2: the same exposures, two more channels before the
    # correction; a refiner of four input channels that says so in its manifest
    more = tmp_path / "bank-variants"
    args = ["--data", str(MHH), "--out", str(more), "--limit", "2", "--draws", "8", "--scales"]
    variants = ["--kernel-shape", str(magnitude), "--variant-balance-factors", "0.5", "2"]
    assert refiner_bank.main([*args, "1", *variants]) == 0
    wide, _ = refiner_bank.load_bank(more)
    assert wide.shape[1] == 5
    np.testing.assert_array_equal(wide[:, [0, 3, 4]], crops)
    assert json.loads((more / "bank.json").read_text())["variant_balance_factors"] == [0.5, 2.0]
    out4 = tmp_path / "run4"
    assert train_refiner.main(["--bank", str(more), "--out", str(out4), "--smoke"]) == 0
    ck = torch.load(out4 / "best.pt", weights_only=False)
    assert ck["in_channels"] == 4 and ck["training"]["variant_balance_factors"] == [0.5, 2.0]
    from models import export

    onnx = tmp_path / "onnx4"
    assert export.main(["deblur", "--checkpoint", str(out4 / "best.pt"), "--out", str(onnx)]) == 0
    manifest, _ = load_manifest(onnx)
    assert manifest.input.channels == 4 and manifest.variant_balance_factors == (0.5, 2.0)


@pytest.mark.skipif(not (LABELED / "labels.csv").is_file(), reason=f"shared data absent: {LABELED}")
def test_train_classifier_with_weight_averaging_keeps_the_average(tmp_path: Path) -> None:
    from models import train_classifier

    out = tmp_path / "run"
    weights = tmp_path / "weights.csv"
    weights.write_text("path,weight\nkermany224/NORMAL/not-there.jpeg,3\n")
    args = ["--labels", str(LABELED / "labels.csv"), "--out", str(out), "--smoke", "--swa"]
    args += ["--draw-weights", str(weights)]
    assert train_classifier.main([*args, "--arch", "tiny", "--threads", "1"]) == 0
    best = torch.load(out / "best.pt", map_location="cpu", weights_only=False)
    assert best["training"]["sampling"] == "class-balanced, draw weights weights.csv"
    assert best["training"]["weight_average"] == "SWA of 1 epoch ends, BatchNorm recomputed"
    assert best["training"]["optimizer"].startswith("AdamW lr 0.002 constant (SWA)")
    last = torch.load(out / "last.pt", map_location="cpu", weights_only=False)
    assert last["swa_count"] == 1 and last["swa"] is not None
    # without --report-test the test split is not measured
    assert "test" not in best["metrics"]
    assert "test" not in json.loads((out / "metrics.json").read_text())["metrics"]


def test_train_classifier_refuses_a_bad_weights_file(tmp_path: Path) -> None:
    from models import train_classifier

    bad = tmp_path / "w.csv"
    bad.write_text("path,weight\na.jpeg,-1\n")
    args = ["--labels", str(tmp_path / "labels.csv"), "--out", str(tmp_path / "o")]
    for weights in (bad, tmp_path / "missing.csv"):
        with pytest.raises(SystemExit) as e:
            train_classifier.main([*args, "--smoke", "--draw-weights", str(weights)])
        assert e.value.code == 2


def test_weight_average_is_the_mean_and_batchnorm_is_recomputed() -> None:
    """SWA's two parts: the plain mean of the snapshots' weights, and BatchNorm statistics
    measured on data for the averaged network (not the mean of the snapshots' statistics)."""
    from models.train_classifier import WeightAverage, recompute_batchnorm

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3), torch.nn.BatchNorm2d(3))
    snapshots = []
    avg = WeightAverage(net)
    for _ in range(3):
        with torch.no_grad():
            for p in net.parameters():
                p.add_(torch.randn_like(p))
        snapshots.append([p.detach().clone() for p in net.parameters()])
        avg.update(net)
    assert avg.count == 3
    for got, *each in zip(avg.module.parameters(), *snapshots, strict=True):
        torch.testing.assert_close(got, torch.stack(each).mean(0))

    x = np.random.default_rng(1).random((64, 16, 16), dtype=np.float32)  # two equal batches
    recompute_batchnorm(avg.module, x, mean=0.5, std=0.25)
    with torch.no_grad():
        feats = avg.module[0]((torch.from_numpy(x)[:, None] - 0.5) / 0.25)
    bn = avg.module[1]
    torch.testing.assert_close(bn.running_mean, feats.mean((0, 2, 3)), rtol=1e-4, atol=1e-5)
    assert bn.momentum == 0.1 and not avg.module.training


def test_bfloat16_is_on_by_default_only_where_the_cpu_has_it(tmp_path: Path) -> None:
    from models.train_classifier import cpu_has_native_bf16

    info = tmp_path / "cpuinfo"
    info.write_text("flags\t\t: fpu sse2 avx2 avx512f avx512bw\n")
    assert not cpu_has_native_bf16(info)  # AVX-512 without its BF16 extension: emulated
    info.write_text("flags\t\t: fpu sse2 avx2 avx512f avx512_bf16 amx_tile\n")
    assert cpu_has_native_bf16(info)
    assert not cpu_has_native_bf16(tmp_path / "absent")
