"""Detector-like scenes: a 640 px frame upsampled with its own power law continued."""

from __future__ import annotations

import numpy as np
import pytest

from models.blur import to_exposure
from models.detector_texture import continued, power_law
from tests.support.synthetic import power_law_field


def _band_power(img: np.ndarray, above: float) -> float:
    e = to_exposure(img.astype(np.float64), 3.0)
    p = np.abs(np.fft.fft2(e - e.mean())) ** 2
    f = np.hypot(np.fft.fftfreq(img.shape[0])[:, None], np.fft.fftfreq(img.shape[1])[None, :])
    return float(p[(f > above) & (f < 0.45)].mean())


def test_the_power_law_of_a_field_is_read_back() -> None:
    field = power_law_field(256, 3, 1.2, 0.2, 0.8)  # amplitude 1/f^1.2: power f^-2.4 in grey
    beta, _ = power_law(field)
    # in linear exposure the grey field's law holds to within the exponential's curvature
    assert 2.0 < beta < 2.8


def test_the_band_upsampling_leaves_empty_is_filled_and_nothing_else_moves() -> None:
    base = power_law_field(160, 5, 1.2, 0.2, 0.8).astype(np.float32)
    scene = continued(base, 384, seed=1)
    assert scene.shape == (384, 384) and scene.dtype == np.float32
    assert float(scene.min()) >= 0.0 and float(scene.max()) <= 1.0
    plain = continued(base, 384, seed=1, up=3)
    assert np.array_equal(scene, plain)  # the seed fixes the texture
    from scipy.ndimage import zoom

    upsampled = np.clip(zoom(base, 3.0, order=3), 0.0, 1.0)[48:432, 48:432]
    # above the 640 px frame's Nyquist (1/6 cycles/px here): several times the power
    # cubic upsampling left (its interpolation leaks a little there: about 6x on this field)
    assert _band_power(scene, 0.2) > 4 * _band_power(upsampled, 0.2)
    # the anatomy below it is the upsampled frame's
    assert np.corrcoef(scene.ravel(), upsampled.ravel())[0, 1] > 0.95
    assert continued(base, 10_000, seed=1, up=2).shape == (320, 320)  # capped at the sides
    with pytest.raises(ValueError):
        continued(base, 64, seed=1, up=0)
