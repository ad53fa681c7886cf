"""The motion estimate's noise subtraction (the eighth round, docs/models.md) as a node setting:
config → policy, the identity and text of the correction, and the gate's decision it changes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.blur import NoiseSpec, linear_kernel, simulate_motion_blur
from models.deblur import assess_motion
from node.config import load_settings
from node.pipeline.blur_gate import policy as policy_of
from node.pipeline.correct import WIENER_VERSION, wiener_info
from tests.support.synthetic import chest_like, power_law_field


def test_the_setting_reaches_the_estimate_and_the_identity(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("blur_gate:\n  motion_estimate_noise_subtraction: always\n")
    on = policy_of(load_settings(cfg, environ={}).blur_gate)
    cfg.write_text("blur_gate:\n  motion_estimate_noise_subtraction: never\n")
    off = policy_of(load_settings(cfg, environ={}).blur_gate)
    assert (on.estimate_noise_subtraction, off.estimate_noise_subtraction) == ("always", "never")
    cfg.write_text("models: {}\n")
    default = policy_of(load_settings(cfg, environ={}).blur_gate)  # since 0.9.0 (tenth round)
    assert default.estimate_noise_subtraction == "second_look"
    assert default.noise_subtraction_skips_jpeg
    assert wiener_info(default).version == WIENER_VERSION == "0.6.1"
    a, b = wiener_info(on), wiener_info(off)
    assert a.device_uid != b.device_uid
    assert "measured noise subtracted" in (a.description or "")
    assert "measured noise subtracted" not in (b.description or "")
    cfg.write_text("blur_gate:\n  motion_estimate_noise_subtraction: second_look\n")
    look = wiener_info(policy_of(load_settings(cfg, environ={}).blur_gate))
    assert look.device_uid not in (a.device_uid, b.device_uid)
    cfg.write_text(
        "blur_gate:\n  motion_estimate_noise_subtraction: second_look\n"
        "  noise_subtraction_skips_jpeg: false\n"
    )
    bare = policy_of(load_settings(cfg, environ={}).blur_gate)
    assert not bare.noise_subtraction_skips_jpeg and on.noise_subtraction_skips_jpeg
    assert wiener_info(bare).device_uid != look.device_uid
    assert "again with the measured noise subtracted where it found none" in (
        look.description or ""
    )

    mixed = 0.5 * chest_like(512, 512, 2) + 0.5 * power_law_field(512, 2, 1.25, 0.0, 1.0)
    sharp = np.clip(mixed, 0.0, 1.0).astype(np.float32)
    rng = np.random.default_rng(5)
    noisy = simulate_motion_blur(sharp, linear_kernel(4.0, 70.0), rng, noise=NoiseSpec(3e3))
    found, missed = assess_motion(noisy, 0.6, on), assess_motion(noisy, 0.6, off)
    assert (found.decision, missed.decision) == ("blurred", "sharp")  # 2.4 mm of motion
    assert found.estimate.length_px == pytest.approx(4.0, abs=0.8)
    still = simulate_motion_blur(sharp, np.ones((1, 1)), rng, noise=NoiseSpec(3e3))
    assert assess_motion(still, 0.6, on).decision == "sharp"


def test_the_header_of_a_lossy_frame_turns_the_noise_subtraction_off(tmp_path: Path) -> None:
    """A frame a lossy codec made (JPEG baseline here, Lossy Image Compression "01") gets 0.8.0's
    estimate; an uncompressed one, or one whose header says "00", the configured one."""
    import pydicom

    from node.pipeline.blur_gate import lossy_compressed, motion_policy_for
    from tests.support.paths import TEST_DATA

    cfg = tmp_path / "c.yaml"
    cfg.write_text("models: {}\n")
    settings = load_settings(cfg, environ={}).blur_gate
    jpeg = pydicom.dcmread(TEST_DATA / "sc_chest_jpeg_baseline.dcm", stop_before_pixels=True)
    assert lossy_compressed(jpeg)
    assert motion_policy_for(jpeg, settings).estimate_noise_subtraction == "never"
    # a Kermany JPEG wrapped as DX, stored uncompressed: its header says it was lossy once
    kermany = pydicom.dcmread(
        TEST_DATA / "dx_pediatric_chest_pneumonia.dcm", stop_before_pixels=True
    )
    assert kermany.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1" and lossy_compressed(
        kermany
    )
    plain = pydicom.dcmread(TEST_DATA / "dx_canine_thorax.dcm", stop_before_pixels=True)
    assert not lossy_compressed(plain)  # uncompressed, "00"
    assert motion_policy_for(plain, settings).estimate_noise_subtraction == "second_look"
    del plain.LossyImageCompression  # no statement: the (uncompressed) transfer syntax decides
    assert not lossy_compressed(plain)
    jpeg.LossyImageCompression = "00"
    assert not lossy_compressed(jpeg)
    cfg.write_text("blur_gate:\n  noise_subtraction_skips_jpeg: false\n")
    bare = load_settings(cfg, environ={}).blur_gate
    assert motion_policy_for(kermany, bare).estimate_noise_subtraction == "second_look"
