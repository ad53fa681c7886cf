"""models.evaluate_node_correction: blurred whole DICOM frames through `sharpray process`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models import evaluate_node_correction as enc
from tests.support.synthetic import make_cr, power_law_field


def _radiograph_like(n: int) -> np.ndarray:
    return power_law_field(n, 4, 1.4, 0.15, 0.85)


def _field_frame(tmp_path: Path) -> Path:
    """A folder holding ``field.dcm``: a 512² 12-bit CR of radiograph-like texture, 0.15 mm."""
    folder = tmp_path / "dicoms"
    folder.mkdir()
    ds = make_cr(folder / "field.dcm", 512, 512)
    ds.ImagerPixelSpacing = [0.15, 0.15]
    ds.PixelData = np.rint(_radiograph_like(512) * 4095).astype(np.uint16).tobytes()
    ds.save_as(folder / "field.dcm", enforce_file_format=True)
    return folder


def test_blurred_frames_go_through_the_node_and_come_back_sharper(tmp_path: Path) -> None:
    folder = _field_frame(tmp_path)
    make_cr(folder / "small.dcm", 256, 224)  # under 512²: not an evaluation image
    assert [p.name for p in enc.distinct_dicoms(folder)] == ["field.dcm"]

    result = enc.run(enc.dicom_sources(folder))
    assert result["cases"] == 12 and result["images"] == ["field"]
    rows = {(r["kind"], r["length_px"], r["noise"]): r for r in result["rows"]}
    straight = rows[("straight", 24, "noiseless")]
    assert "Wiener deconvolution" in straight["what_the_node_did"], straight
    assert straight["psnr_gain_db"] > 1.0, straight
    assert result["summary"]["straight/24px/noiseless"]["corrected"] == 1.0


def test_radiographs_are_wrapped_with_and_without_pixel_spacing(tmp_path: Path) -> None:
    from node.pipeline.blur_gate import pixel_spacing_mm
    from node.pipeline.preprocess import decode, read_dataset, to_unit_stored_range

    img = _radiograph_like(64)
    enc.wrap_as_cr(img, tmp_path / "with.dcm", spacing_mm=0.6)
    enc.wrap_as_cr(img, tmp_path / "without.dcm", spacing_mm=None)
    with_, without = (read_dataset(tmp_path / f"{n}.dcm") for n in ("with", "without"))
    assert pixel_spacing_mm(with_) == 0.6 and pixel_spacing_mm(without) is None
    back = to_unit_stored_range(decode(without))
    assert np.abs(back - img).max() <= 0.5 / 255 + 1e-6


def test_blur_of_the_grey_values_themselves_is_corrected_too(tmp_path: Path) -> None:
    """An evaluator's own blur model may convolve the stored values, not the exposure: the node
    deconvolves in its assumed exposure scale and must still gain there."""
    folder = _field_frame(tmp_path)
    (src,) = enc.dicom_sources(folder)
    src = enc.Source(src.name, src.sharp, src.write, (24.0,))

    result = enc.run([src], blur_log_range=None)
    assert result["blur_log_range"] is None and result["cases"] == 4
    straight = result["summary"]["straight/24px/noiseless"]
    assert straight["corrected"] == 1.0 and straight["psnr_gain_db"] > 1.0, straight


def test_grey_noise_is_added_in_the_grey_values_as_asked() -> None:
    sharp = _radiograph_like(128)
    psf = np.ones((1, 1))
    model = enc.BlurModel(kinds=("shake",), grey_noise=0.02)
    assert model.noises() == ("noiseless", "grey0.02")
    rng = np.random.default_rng(0)
    clean = model.blur(sharp, psf, "noiseless", rng)
    noisy = model.blur(sharp, psf, "grey0.02", rng)
    assert np.allclose(clean, sharp, atol=1e-6)
    assert float(np.std(noisy - clean)) == pytest.approx(0.02, rel=0.1)
    assert enc.BlurModel().noises() == ("noiseless", "poisson1e4")


def test_another_blur_model_is_measured_beside_the_true_kernel_oracles(tmp_path: Path) -> None:
    """Camera-shake paths and grey-value noise, an outside evaluator's model: the node does no
    harm on them and the report says what the true kernel could have given."""
    folder = _field_frame(tmp_path)
    (src,) = enc.dicom_sources(folder)
    src = enc.Source(src.name, src.sharp, src.write, (24.0,))

    result = enc.run([src], model=enc.BlurModel(("shake",), 3.0, 0.004), oracles=True)
    assert result["kinds"] == ["shake"] and result["grey_noise"] == 0.004
    assert result["cases"] == 2
    for row in result["rows"]:
        assert row["kind"] == "shake" and row["noise"] in ("noiseless", "grey0.004")
        assert row["psnr_gain_db"] > -0.1, row  # no harm
    noiseless = result["summary"]["shake/24px/noiseless"]
    assert noiseless["wiener_oracle_db"] > 1.0 and noiseless["rl_oracle_db"] > 0.5, noiseless


def test_the_command_line_writes_and_prints_its_summary_without_oracles(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`python -m models.evaluate_node_correction --dicoms …` without ``--oracles`` (its
    documented form) writes the JSON and prints one line per group, no oracle columns."""
    import json

    folder = _field_frame(tmp_path)
    out = tmp_path / "nc.json"
    argv = ["--dicoms", str(folder), "--kinds", "straight", "--out", str(out)]
    assert enc.main(argv) == 0
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["cases"] == 6
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == len(result["summary"])
    assert any(line.startswith("straight/24px/noiseless") for line in printed)
    assert not any("oracles" in line for line in printed)
