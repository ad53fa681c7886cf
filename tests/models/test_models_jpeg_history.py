"""Is an 8-bit image a decoded JPEG? (models.jpeg_history), and the motion estimate's noise
subtraction left out there (the tenth round, docs/models.md)."""

from __future__ import annotations

import dataclasses
import io

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter

from models.blur import NoiseSpec, linear_kernel, simulate_motion_blur
from models.deblur import MotionPolicy, assess_motion
from models.jpeg_history import THRESHOLD, decoded_jpeg, lattice_fit


def _grey(size: int = 256, seed: int = 0) -> np.ndarray:
    """8-bit grey levels of smooth anatomy-like structure with fine texture, as 0..1."""
    rng = np.random.default_rng(seed)
    a = gaussian_filter(rng.standard_normal((size, size)), 12) * 4
    a += gaussian_filter(rng.standard_normal((size, size)), 1.0) * 0.3
    a = (a - a.min()) / (a.max() - a.min())
    return np.round((0.1 + 0.8 * a) * 255) / 255


def _jpeg(a: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(np.round(a * 255).astype(np.uint8)).save(buf, "JPEG", quality=quality)
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("L"), dtype=np.float32) / 255.0


def test_a_decoded_jpeg_is_told_from_an_image_never_so_compressed() -> None:
    grey = _grey()
    for q in (75, 85):
        assert lattice_fit(_jpeg(grey, q)) > 0.85 and decoded_jpeg(_jpeg(grey, q))
    assert lattice_fit(grey) < THRESHOLD and not decoded_jpeg(grey)
    # blurred since (and back on the 8-bit grid), or cropped off the codec's grid: no lattice
    rng = np.random.default_rng(1)
    blurred = simulate_motion_blur(_jpeg(grey, 75), linear_kernel(4.0, 30.0), rng)
    assert not decoded_jpeg(np.round(blurred * 255) / 255)
    assert not decoded_jpeg(_jpeg(grey, 75)[3:, 5:])
    # values off the 8-bit grid (a 12-bit frame, floating-point blur) are not examined
    assert lattice_fit(blurred) == 0.0


def test_the_noise_is_not_subtracted_in_a_decoded_jpeg() -> None:
    rng = np.random.default_rng(2)
    noisy = simulate_motion_blur(_grey(384, 3), np.ones((1, 1)), rng, noise=NoiseSpec(3e3))
    jpeg = _jpeg(noisy, 75)
    never = MotionPolicy(estimate_noise_subtraction="never")
    for mode in ("always", "second_look"):
        guarded = dataclasses.replace(never, estimate_noise_subtraction=mode)
        assert assess_motion(jpeg, 0.6, guarded) == assess_motion(jpeg, 0.6, never)
        unguarded = dataclasses.replace(guarded, noise_subtraction_skips_jpeg=False)
        if mode == "always":  # without the check the noise is taken out: another estimate
            a, b = assess_motion(jpeg, 0.6, unguarded), assess_motion(jpeg, 0.6, never)
            assert a.estimate != b.estimate
