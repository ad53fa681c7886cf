from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.manifest import (
    InputSpec,
    ManifestError,
    ModelManifest,
    device_uid_for,
    load_manifest,
    sha256_of,
    write_manifest,
)


def _manifest(folder: Path) -> ModelManifest:
    model = folder / "model.onnx"
    model.write_bytes(b"not really onnx")
    sha = sha256_of(model)
    return ModelManifest(
        name="m",
        task="deblur",
        version="1",
        architecture="a",
        file="model.onnx",
        sha256=sha,
        device_uid=device_uid_for(sha),
        input=InputSpec(multiple_of=4),
        outputs={"image": "corrected"},
        metrics={"psnr": 1.5},
    )


def test_round_trip(tmp_path: Path) -> None:
    m = _manifest(tmp_path)
    write_manifest(m, tmp_path)
    loaded, path = load_manifest(tmp_path)
    assert loaded == m and path == tmp_path / "model.onnx"
    loaded2, _ = load_manifest(tmp_path / "manifest.json")
    assert loaded2 == m


def test_sha_mismatch_detected(tmp_path: Path) -> None:
    write_manifest(_manifest(tmp_path), tmp_path)
    (tmp_path / "model.onnx").write_bytes(b"swapped weights")
    with pytest.raises(ManifestError, match="sha256"):
        load_manifest(tmp_path)
    load_manifest(tmp_path, verify=False)  # explicitly unverified load still works


def test_missing_and_malformed(tmp_path: Path) -> None:
    with pytest.raises(ManifestError):
        load_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("{")
    with pytest.raises(ManifestError):
        load_manifest(tmp_path)
    m = _manifest(tmp_path)
    data = m.model_dump(mode="json")
    data["unexpected"] = 1
    (tmp_path / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(ManifestError):
        load_manifest(tmp_path)


def test_device_uid_is_dicom_uid() -> None:
    uid = device_uid_for("ab" * 32)
    assert uid.startswith("2.25.") and len(uid) <= 64
    assert all(part.isdigit() for part in uid.split("."))
    assert device_uid_for("cd" * 32) != uid


def test_a_refiner_names_each_extra_input_channel(tmp_path: Path) -> None:
    """More than two input channels only with one Wiener λ factor per extra deconvolution; more
    than one channel only for a deblur model."""
    from pydantic import ValidationError

    m = _manifest(tmp_path)
    four = InputSpec(multiple_of=4, channels=4)
    ok = m.model_copy(update={"input": four, "training": {"variant_balance_factors": [0.5, 2]}})
    checked = ModelManifest.model_validate(ok.model_dump())
    assert checked.variant_balance_factors == (0.5, 2.0)
    assert m.variant_balance_factors == ()
    for training, message in (
        ({}, "needs 2 training.variant_balance_factors, not 0"),
        ({"variant_balance_factors": [0.5]}, "needs 2"),
        ({"variant_balance_factors": [0.5, -1]}, "positive numbers"),
    ):
        bad = ok.model_copy(update={"training": training}).model_dump()
        with pytest.raises(ValidationError, match=message):
            ModelManifest.model_validate(bad)
    two = m.model_copy(
        update={"input": InputSpec(channels=2), "training": {"variant_balance_factors": [2]}}
    )
    with pytest.raises(ValidationError, match="given for 2 input channel"):
        ModelManifest.model_validate(two.model_dump())
    classify = m.model_copy(update={"task": "classify", "input": InputSpec(channels=2)})
    with pytest.raises(ValidationError, match="classify model takes 1 input channel"):
        ModelManifest.model_validate(classify.model_dump())
