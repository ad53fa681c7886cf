"""The forty-fifth round's candidate as a node setting (``blur_gate.kernel_drawing_by_spectrum``):
config → policy, the correction's identity (Device UID) and what the SR says when the frame
chose another drawing of the straight kernel than the nearest pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.blur import drawn_linear_kernel, simulate_motion_blur
from models.deblur import assess_motion
from node.app import load_models
from node.config import load_settings
from node.pipeline.blur_gate import policy as policy_of
from node.pipeline.correct import (
    DRAWN_RL_MEAN_VERSION,
    STRONG_SHORT_RL_MEAN_VERSION,
    Corrector,
    wiener_info,
)
from tests.support.settings import WHOLE_FRAME
from tests.support.synthetic import power_law_field


def test_the_setting_reaches_the_policy_the_identity_and_the_sr_words(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    # the versions of the step at 0.6 mm: the native-pixel network (on since 0.34.0) off
    cfg.write_text("models:\n  kernel_shape_detector: off\n")
    default = load_settings(cfg, environ=WHOLE_FRAME)
    # the default since sharpray-blind-wiener 0.31.0 (the forty-fifth to forty-seventh rounds)
    gate = default.blur_gate
    assert gate.kernel_drawing_by_spectrum is True
    assert (gate.kernel_drawing_above_noise, gate.kernel_drawing_margin) == (2.0, 0.02)
    on = policy_of(gate)
    assert load_models(default).deblur.info.version == DRAWN_RL_MEAN_VERSION == "0.31.0"
    cfg.write_text(
        "models:\n  kernel_shape_detector: off\nblur_gate:\n  kernel_drawing_by_spectrum: false\n"
    )
    off_settings = load_settings(cfg, environ=WHOLE_FRAME)
    off = policy_of(off_settings.blur_gate)
    assert on.kernel_drawing_by_spectrum and not off.kernel_drawing_by_spectrum
    assert load_models(off_settings).deblur.info.version == STRONG_SHORT_RL_MEAN_VERSION
    env = {"SHARPRAY_BLUR_GATE__KERNEL_DRAWING_BY_SPECTRUM": "false"}
    cfg.write_text("models: {}\n")
    assert load_settings(cfg, environ=env).blur_gate.kernel_drawing_by_spectrum is False
    assert wiener_info(on).device_uid != wiener_info(off).device_uid
    cfg.write_text("blur_gate:\n  kernel_drawing_above_noise: null\n  kernel_drawing_margin: 0\n")
    every_bin = policy_of(load_settings(cfg, environ=WHOLE_FRAME).blur_gate)
    assert (every_bin.kernel_drawing_above_noise, every_bin.kernel_drawing_margin) == (None, 0.0)
    assert wiener_info(every_bin).device_uid != wiener_info(on).device_uid

    # a frame blurred by a band-limited line: the SR says how the kernel was drawn
    sharp = power_law_field(384, 7, 1.0, 0.2, 0.8).astype(np.float32)
    blurred = simulate_motion_blur(sharp, drawn_linear_kernel(4.0, 33.0, "lanczos"))
    motion = assess_motion(blurred, 0.6, on)
    assert motion.blurred
    said = Corrector(on)(blurred, motion).method
    assert "kernel drawn band-limited (Lanczos-3), as the frame's spectrum follows" in said
    assert "kernel drawn" not in Corrector(off)(blurred, motion).method
