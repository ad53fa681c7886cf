"""models.ensemble_classifier: checkpoints averaged by their logits, calibrated and exported as one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from models import ensemble_classifier, export
from models.classifier import CamExport, LogitAverage, TinyCNN
from models.ensemble_classifier import IncompatibleMembers, combine
from models.export import load_classifier_checkpoint
from models.manifest import load_manifest


def _member(seed: int, val: list[str] | None = None) -> dict[str, object]:
    torch.manual_seed(seed)
    net = TinyCNN()
    with torch.no_grad():  # a random, non-zero head and BN statistics: members really differ
        for p in net.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return {
        "arch": "tiny",
        "architecture": "tiny",
        "num_classes": 2,
        "size": 32,
        "mean": 0.5,
        "std": 0.25,
        "state_dict": net.state_dict(),
        "val_paths": val if val is not None else ["v/a.png", "v/b.png"],
        "training": {"intensity": "models.intensity.classifier_unit", "seed": seed},
    }


def test_ensemble_averages_logits_and_its_cam_decomposes_the_mean_logit(tmp_path: Path) -> None:
    cks = [_member(1), _member(2)]
    paths = []
    for i, ck in enumerate(cks):
        paths.append(tmp_path / f"m{i}.pt")
        torch.save(ck, paths[-1])
    out = tmp_path / "ens" / "best.pt"
    assert ensemble_classifier.main(["--members", *map(str, paths), "--out", str(out)]) == 0

    model, ck = load_classifier_checkpoint(out)
    assert isinstance(model, LogitAverage) and len(model.members) == 2
    assert ck["training"]["intensity"] and len(ck["training"]["members"]) == 2
    singles = [load_classifier_checkpoint(p)[0].eval() for p in paths]
    model.eval()
    x = torch.rand(3, 1, 32, 32)
    with torch.no_grad():
        mean_logits = torch.stack([m(x) for m in singles]).mean(dim=0)
        # members are stored in float16: equal to that precision
        assert torch.allclose(model(x), mean_logits, atol=2e-2)
        assert not torch.allclose(singles[0](x), singles[1](x), atol=1e-2)
        probs, cam = CamExport(model).eval()(x)
        assert torch.allclose(probs, torch.softmax(model(x), dim=1), atol=1e-6)
        # Un-rectified, the averaged maps sum over positions to the averaged logit less the bias.
        maps = []
        for m in model.members:
            f = m.forward_features(x)
            maps.append(
                torch.einsum("nkij,ck->ncij", f, m.get_classifier().weight) / f[0, 0].numel()
            )
        mean_map = torch.stack(maps).mean(dim=0)
        bias = torch.stack([m.get_classifier().bias for m in model.members]).mean(dim=0)
        assert torch.allclose(mean_map.sum(dim=(2, 3)) + bias, model(x), atol=1e-4)
        assert torch.allclose(cam, mean_map.clamp(min=0), atol=1e-6)

    # exported as one ONNX graph with the same outputs as a single network, parity checked
    assert export.main(["classify", "--checkpoint", str(out), "--out", str(tmp_path / "onnx")]) == 0
    manifest, onnx_path = load_manifest(tmp_path / "onnx")
    assert manifest.input.intensity == "classifier_unit"
    assert manifest.architecture.startswith("mean of 2")
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    p, c = sess.run(None, {"image": x.numpy()})
    assert np.allclose(p, probs.numpy(), atol=1e-4) and c.shape == tuple(cam.shape)


def test_members_must_share_input_and_validation_split() -> None:
    a = _member(1)
    with pytest.raises(IncompatibleMembers, match="validation images"):
        combine([a, _member(2, val=["v/other.png"])], ["a", "b"])
    other_std = {**_member(2), "std": 0.3}
    with pytest.raises(IncompatibleMembers, match="std"):
        combine([a, other_std], ["a", "b"])
    with pytest.raises(IncompatibleMembers, match="at least two"):
        combine([a], ["a"])
    assert combine([a, _member(2)], ["a", "b"])["val_paths"] == a["val_paths"]


def test_validation_report_compares_members_and_ensemble(tmp_path: Path) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    rows = ["path,label,patient_id,split"]
    val = []
    for i in range(8):
        rel = f"train/img{i}.png"
        (tmp_path / "train").mkdir(exist_ok=True)
        Image.fromarray((rng.random((40, 40)) * 255).astype(np.uint8)).save(tmp_path / rel)
        rows.append(f"{rel},{'PNEUMONIA' if i % 2 else 'NORMAL'},p{i},train")
        val.append(rel)
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    paths = []
    for seed in (1, 2):
        paths.append(tmp_path / f"m{seed}.pt")
        torch.save(_member(seed, val=val), paths[-1])
    out = tmp_path / "ens.pt"
    assert (
        ensemble_classifier.main(
            [
                "--members",
                *map(str, paths),
                "--out",
                str(out),
                "--labels",
                str(tmp_path / "labels.csv"),
            ]
        )
        == 0
    )
    report = ensemble_classifier.validation_report(out, tmp_path / "labels.csv")
    assert set(report) == {str(paths[0]), str(paths[1]), "ensemble"}
    for r in report.values():
        assert r["n"] == 8 and 0.0 <= r["auc"] <= 1.0 and np.isfinite(r["nll_after"])
        assert 0.05 <= r["temperature"] <= 20.0
    # with a models.shortcut file: the AUC on the images the global statistics get wrong too
    shortcut = tmp_path / "shortcut.csv"
    # images 0-3 adverse (normals scored high, pneumonias low), 4-7 not
    scores = [0.9, 0.1, 0.8, 0.2, 0.05, 0.95, 0.1, 0.9]
    shortcut.write_text(
        "path,score\n" + "".join(f"{p},{s}\n" for p, s in zip(val, scores, strict=True))
    )
    with_adverse = ensemble_classifier.validation_report(out, tmp_path / "labels.csv", shortcut)
    for name, r in with_adverse.items():
        assert r["adverse_n"] == 4 and 0.0 <= r["adverse_auc"] <= 1.0
        assert r["auc"] == report[name]["auc"]
    # a validation image without a score is refused, not skipped
    shortcut.write_text("path,score\n" + f"{val[0]},0.5\n")
    with pytest.raises(SystemExit, match="no score for 7 validation images"):
        ensemble_classifier.main(
            [
                *("--members", *map(str, paths), "--out", str(out)),
                *("--labels", str(tmp_path / "labels.csv"), "--shortcut", str(shortcut)),
            ]
        )
