"""The forty-fifth round's candidate: the straight kernel drawn on the pixel grid the way the
frame's spectrum follows (models.blur.drawn_linear_kernel, models.deblur.chosen_drawing;
MotionPolicy.kernel_drawing_by_spectrum, off by default). An evaluator may draw its line
otherwise than the node's nearest pixels; the inverse filter built on the wrong drawing loses
0.3–0.6 dB on frames without noise (docs/models.md, the rendering look)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio

from models.blur import (
    LINE_DRAWINGS,
    NoiseSpec,
    drawn_linear_kernel,
    linear_kernel,
    simulate_motion_blur,
    to_exposure,
)
from models.blur_estimate import MotionEstimate
from models.deblur import (
    MotionPolicy,
    assess_motion,
    chosen_drawing,
    deconvolve,
    drawing_fits,
)
from tests.support.synthetic import power_law_field

DRAWN = MotionPolicy()  # the default since sharpray-blind-wiener 0.31.0
NEAREST = dataclasses.replace(DRAWN, kernel_drawing_by_spectrum=False)


@pytest.fixture(scope="module")
def sharp() -> np.ndarray:
    return power_law_field(384, 7, 1.0, 0.2, 0.8).astype(np.float32)


@pytest.mark.parametrize("drawing", LINE_DRAWINGS)
@pytest.mark.parametrize("angle", [0.0, 33.0, 90.0, 141.0])
def test_each_drawing_is_a_centred_kernel_of_the_motions_length(drawing: str, angle: float) -> None:
    k = drawn_linear_kernel(4.0, angle, drawing)
    assert k.shape[0] == k.shape[1] and k.shape[0] % 2 == 1
    assert k.sum() == pytest.approx(1.0)
    rows, cols = np.indices(k.shape) - k.shape[0] // 2
    assert float((k * rows).sum()) == pytest.approx(0.0, abs=1e-9)  # centred
    assert float((k * cols).sum()) == pytest.approx(0.0, abs=1e-9)
    # the spread along the motion is that of a 4 px segment (variance L²/12), the drawing's
    # own spread across a pixel added (nearest: ≤ 1/12 per axis, bilinear 1/6, Lanczos small)
    a = np.radians(angle)
    along = cols * np.cos(a) - rows * np.sin(a)
    assert float((k * along**2).sum()) == pytest.approx(16 / 12, abs=0.35)


def test_nearest_is_the_nodes_kernel_and_the_estimates_default() -> None:
    assert np.array_equal(drawn_linear_kernel(5.3, 27.0), linear_kernel(5.3, 27.0))
    est = MotionEstimate(5.3, 27.0, 0.9)
    assert est.drawing == "nearest" and np.array_equal(est.kernel(), linear_kernel(5.3, 27.0))
    redrawn = dataclasses.replace(est, drawing="lanczos").kernel()
    assert np.array_equal(redrawn, drawn_linear_kernel(5.3, 27.0, "lanczos"))
    assert np.array_equal(drawn_linear_kernel(0.5, 10.0, "bilinear"), np.ones((1, 1)))
    with pytest.raises(ValueError, match="drawing must be one of"):
        drawn_linear_kernel(3.0, 0.0, "cubic")


def test_the_lanczos_drawing_follows_the_continuous_motions_transfer() -> None:
    # horizontal 2.5 px: the continuous motion's transfer is sinc(2.5·f), first zero at 0.4
    # cycles/px; the nearest drawing [0.3, 0.4, 0.3] puts it at 0.37, the Lanczos one near 0.4
    n = 256
    f = np.fft.fftfreq(n)[: n // 2]
    truth = np.abs(np.sinc(2.5 * f))
    errors = {}
    for drawing in LINE_DRAWINGS:
        k = drawn_linear_kernel(2.5, 0.0, drawing)
        row = k.sum(axis=0)
        transfer = np.abs(np.fft.fft(row, n))[: n // 2]
        band = f < 0.45
        errors[drawing] = float(np.max(np.abs(transfer[band] - truth[band])))
    assert errors["lanczos"] < 0.05
    assert errors["lanczos"] < errors["nearest"] and errors["lanczos"] < errors["bilinear"]


@pytest.mark.parametrize("drawing", LINE_DRAWINGS)
def test_a_frame_without_noise_chooses_the_drawing_it_was_blurred_with(
    sharp: np.ndarray, drawing: str
) -> None:
    est = MotionEstimate(3.0, 33.0, 0.9)
    blurred = simulate_motion_blur(sharp, drawn_linear_kernel(3.0, 33.0, drawing))
    e = to_exposure(blurred.astype(np.float64), 3.0)
    fits = drawing_fits(e, est)
    assert set(fits) == set(LINE_DRAWINGS) and all(np.isfinite(v) for v in fits.values())
    assert chosen_drawing(e, est) == drawing


def test_an_unmeasurable_frame_keeps_the_nearest_drawing(sharp: np.ndarray) -> None:
    small = to_exposure(sharp[:100, :100].astype(np.float64), 3.0)
    est = MotionEstimate(3.0, 33.0, 0.9)
    assert all(np.isnan(v) for v in drawing_fits(small, est).values())
    assert chosen_drawing(small, est) == "nearest"


def test_the_correction_inverts_the_chosen_drawing_and_says_so(sharp: np.ndarray) -> None:
    k = drawn_linear_kernel(4.0, 33.0, "lanczos")
    blurred = simulate_motion_blur(sharp, k)
    a = assess_motion(blurred, 0.6, DRAWN)
    assert a.blurred
    assert DRAWN.kernel_drawing_by_spectrum
    built = deconvolve(blurred, a, NEAREST)
    drawn = deconvolve(blurred, a, DRAWN)
    assert built.drawing == "nearest" and drawn.drawing == "lanczos"
    by_hand = dataclasses.replace(a, estimate=dataclasses.replace(a.estimate, drawing="lanczos"))
    assert np.array_equal(drawn.image, deconvolve(blurred, by_hand, NEAREST).image)

    def psnr(x: np.ndarray) -> float:
        return float(peak_signal_noise_ratio(sharp, x, data_range=1.0))

    assert psnr(drawn.image) > psnr(built.image) + 0.2


@pytest.mark.parametrize("quanta", [1e5, 2e4])
def test_a_noisy_frame_read_above_its_noise_keeps_the_drawing_it_was_blurred_with(
    quanta: float,
) -> None:
    # the forty-fifth round's miss: noise fills a nearest-drawn kernel's dips and every bin of
    # the band then favours the smoother bilinear drawing; read only where the power stands
    # twice above the frame's noise floor, the nearest drawing fits best again
    field = power_law_field(512, 3, 1.3, 0.2, 0.8)
    rng = np.random.default_rng(0)
    noisy = simulate_motion_blur(
        field, drawn_linear_kernel(5.7, 30.0, "nearest"), rng, noise=NoiseSpec(quanta)
    )
    a = assess_motion(noisy, 0.175, MotionPolicy())
    assert a.blurred
    e = to_exposure(noisy.astype(np.float64), 3.0)
    assert chosen_drawing(e, a.estimate) == "bilinear"
    above = drawing_fits(e, a.estimate, above_noise=2.0)
    assert above["nearest"] > max(above["bilinear"], above["lanczos"])
    assert chosen_drawing(e, a.estimate, above_noise=2.0, margin=0.02) == "nearest"
    # nothing above a floor set too high: nothing measured, the nearest pixels kept
    assert all(np.isnan(v) for v in drawing_fits(e, a.estimate, above_noise=1e12).values())


def test_the_margin_keeps_the_nearest_pixels_unless_another_drawing_fits_clearly_better(
    sharp: np.ndarray,
) -> None:
    est = MotionEstimate(3.0, 33.0, 0.9)
    blurred = simulate_motion_blur(sharp, drawn_linear_kernel(3.0, 33.0, "lanczos"))
    e = to_exposure(blurred.astype(np.float64), 3.0)
    fits = drawing_fits(e, est)
    lead = fits["lanczos"] - max(fits["nearest"], fits["bilinear"])
    assert lead > 0
    assert chosen_drawing(e, est, margin=0.0) == "lanczos"
    assert chosen_drawing(e, est, margin=fits["lanczos"] - fits["nearest"] - 1e-6) == "lanczos"
    assert chosen_drawing(e, est, margin=2.0) == "nearest"  # correlations differ by < 2
