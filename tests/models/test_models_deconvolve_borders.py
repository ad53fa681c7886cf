"""The FFT deconvolution's borders (models.deconvolve.pad_for_fft) and the node's blur-invariant
stored-value mapping (node.pipeline.preprocess.stored_bit_range): the two things that decided
whether long motion on a whole real frame was corrected or made worse."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.fft import next_fast_len
from skimage.metrics import peak_signal_noise_ratio

from models.blur import from_exposure, linear_kernel, simulate_motion_blur, to_exposure
from models.deconvolve import pad_for_fft, padded_as, richardson_lucy, wiener_exposure
from node.pipeline.preprocess import (
    decode,
    read_dataset,
    stored_bit_range,
    to_unit_stored_range,
)
from tests.support.synthetic import make_cr, power_law_field


def _field(n: int, seed: int) -> np.ndarray:
    """A radiograph-like 1/f^1.4 field in [0.15, 0.85] with an unexposed band (a hard edge)."""
    img = power_law_field(n, seed, 1.4, 0.15, 0.85)
    img[:, :60] = 0.0
    return img


def _gain(sharp: np.ndarray, blurred: np.ndarray, out: np.ndarray) -> float:
    return float(
        peak_signal_noise_ratio(sharp, out, data_range=1.0)
        - peak_signal_noise_ratio(sharp, blurred, data_range=1.0)
    )


@pytest.mark.parametrize("length", [24.0, 40.0])
def test_long_motion_is_restored_over_the_whole_frame_borders_included(length: float) -> None:
    # With half the PSF of plain reflect padding the inverse filter's tails wrapped around the
    # frame: -3.8 dB at 24 px and -6.3 dB at 40 px here; with pad_for_fft +2.3 dB.
    sharp = _field(512, 0)
    k = linear_kernel(length, 30.0)
    blurred = simulate_motion_blur(sharp.astype(np.float32), k).astype(np.float64)
    e = to_exposure(blurred, 3.0)
    out = np.clip(from_exposure(wiener_exposure(e, k), 3.0), 0.0, 1.0)
    assert _gain(sharp, blurred, out) > 1.5
    rl = np.clip(from_exposure(richardson_lucy(e, k, 10), 3.0), 0.0, 1.0)
    assert _gain(sharp, blurred, rl) > 0.5


def test_padding_is_reflect_inside_and_fades_to_the_mean_outside() -> None:
    e = np.random.default_rng(1).uniform(0.2, 1.0, (40, 50))
    k = linear_kernel(10.0, 0.0)
    ep, pad = pad_for_fft(e, k)
    assert pad == 2 * max(k.shape) + 8
    # at least the padding on each side, to a length the FFT is fast for (factors 2, 3, 5)
    for n, side in zip(ep.shape, (40, 50), strict=True):
        assert side + 2 * pad <= n < 1.25 * (side + 2 * pad) and n == next_fast_len(n, real=True)
    # the image's mask or start padded the same way
    assert padded_as(np.ones((40, 50), bool), ep.shape, pad).shape == ep.shape
    assert np.allclose(ep[pad : pad + 40, pad : pad + 50], e, rtol=0, atol=1e-12)
    # the outermost rows and columns are the mean: the periodic extension has no jump
    assert np.allclose(ep[0], e.mean()) and np.allclose(ep[:, -1], e.mean())
    # next to the frame the padding is the reflection, barely faded
    assert np.allclose(ep[pad - 1, pad : pad + 50], e[1], atol=0.01)


def test_the_unit_mapping_is_the_declared_bit_range_so_blur_does_not_change_it(
    tmp_path: Path,
) -> None:
    sharp = _field(256, 2)
    blurred = simulate_motion_blur(sharp.astype(np.float32), linear_kernel(30.0, 0.0))
    units = []
    for name, img in (("sharp", sharp), ("blurred", blurred)):
        ds = make_cr(tmp_path / f"{name}.dcm", 256, 256)
        ds.PixelData = np.rint(np.clip(img, 0, 1) * 4095).astype(np.uint16).tobytes()
        ds.save_as(tmp_path / f"{name}.dcm", enforce_file_format=True)
        r = decode(read_dataset(tmp_path / f"{name}.dcm"))
        assert (r.lo, r.hi) == (0.0, 4095.0)
        units.append(to_unit_stored_range(r))
    # the blurred frame's stored values span less than the sharp one's (blur pulls the extremes
    # in), yet both map to grey values the way they were written
    assert float(units[1].max()) < float(units[0].max()) - 0.02
    assert np.abs(units[1] - np.clip(blurred, 0, 1)).max() <= 0.5 / 4095 + 1e-6
    assert np.abs(units[0] - sharp).max() <= 0.5 / 4095 + 1e-6


def test_bit_range_signed_and_under_declared() -> None:
    assert stored_bit_range(12, False, 526.0, 4095.0) == (0.0, 4095.0)
    assert stored_bit_range(16, True, -100.0, 900.0) == (-32768.0, 32767.0)
    # a header that declares fewer bits than the data holds: widened to the data
    assert stored_bit_range(8, False, 0.0, 1000.0) == (0.0, 1000.0)


def test_noise_floor_lets_the_estimate_find_long_curved_motion_in_noiseless_frames() -> None:
    """A real detector frame blurred by 40 px curved motion without noise: the per-ring weights
    read the noise floor off the blurred anatomy and miss it; with the floor of a real detector
    (blur_gate.noise_floor_quanta) it is found. The sharp frame stays sharp either way. The
    floor is compared under the first way of finding motion alone: the second way (a very strong
    fit, strong_fit_confidence) finds some of these frames without the floor too."""
    from models.blur import trajectory_kernel
    from models.deblur import MotionPolicy, assess_motion
    from tests.support.paths import SHARED_DATA

    path = SHARED_DATA / "cxr-dicom" / "WG04_RG1_CR_Philips_chest_EVRLE.dcm"
    if not path.is_file():
        pytest.skip(f"real CR frame not available: {path} is absent")
    ds = read_dataset(path)
    sharp = to_unit_stored_range(decode(ds)).astype(np.float32)
    from node.pipeline.blur_gate import pixel_spacing_mm

    spacing = pixel_spacing_mm(ds) or 0.15
    with_floor = MotionPolicy(strong_fit_confidence=None)
    without = MotionPolicy(noise_floor_quanta=None, strong_fit_confidence=None)
    shipped = MotionPolicy()
    rng = np.random.default_rng(1)
    found = {"floor": 0, "none": 0, "shipped": 0}
    for _ in range(3):
        blurred = simulate_motion_blur(sharp, trajectory_kernel(40.0, rng))
        found["floor"] += assess_motion(blurred, spacing, with_floor).blurred
        found["none"] += assess_motion(blurred, spacing, without).blurred
        found["shipped"] += assess_motion(blurred, spacing, shipped).blurred
    assert found["floor"] >= found["none"] + 2, found
    assert found["shipped"] >= found["floor"], found
    assert not assess_motion(sharp, spacing, with_floor).blurred
    assert not assess_motion(sharp, spacing, shipped).blurred
