"""The length read from the power along the motion over the power across it
(models.blur_estimate.length_from_directions; the fifty-ninth round's candidate)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from models.blur import (
    NoiseSpec,
    linear_kernel,
    simulate_motion_blur,
    to_exposure,
    trajectory_kernel,
)
from models.blur_estimate import (
    MotionEstimate,
    frame_power,
    length_from_directions,
    template_scores,
)
from models.deblur import MotionAssessment, MotionPolicy, assess_motion, find_shape
from models.kernel_shape import KernelShape
from models.noise_level import white_noise_variance
from tests.models.test_models_blur_estimate import phantom
from tests.models.test_models_kernel_shape import _oracle, _textured

FLOOR_AT_06_MM = 1e5 * (0.6 / 0.15) ** 2  # the node's noise floor at 0.6 mm pixels
#: the node as up to sharpray-blind-wiener 0.44.0: no length read across
OFF = dataclasses.replace(MotionPolicy(), kernel_length_across_up_to_px=None)
#: the fifty-ninth round's form: the read length wherever it is shorter
UNGATED = dataclasses.replace(
    MotionPolicy(),
    kernel_length_across_min_fit_gain=None,
    kernel_length_across_max_template_drop=None,
)


def _guess(length: float, angle: float, scale: int = 1) -> MotionEstimate:
    return MotionEstimate(length_px=length, angle_deg=angle, confidence=0.8, scale=scale)


@pytest.mark.parametrize("sigma", [0.0, 1.0, 1.5])
def test_the_length_read_across_the_motion_does_not_take_the_softness_for_motion(
    sigma: float,
) -> None:
    sharp = phantom(size=512)
    soft = gaussian_filter(sharp, sigma) if sigma else sharp
    blurred = simulate_motion_blur(soft, linear_kernel(4.0, 30.0), noise=NoiseSpec(None))
    # an estimate read twice too long at the right angle: the ratio reads the motion
    read = length_from_directions(
        frame_power(blurred, noise_floor_quanta=FLOOR_AT_06_MM), _guess(8.0, 30.0)
    )
    assert read is not None
    assert read.length_px == pytest.approx(4.0, abs=0.8)


def test_a_soft_frame_without_motion_reads_no_motion_in_any_direction() -> None:
    soft = gaussian_filter(phantom(size=512), 1.5)
    spectrum = frame_power(soft, noise_floor_quanta=FLOOR_AT_06_MM)
    for angle in (0.0, 45.0, 120.0):
        read = length_from_directions(spectrum, _guess(5.0, angle))
        assert read is not None
        assert read.length_px < 1.2


def test_nothing_is_read_on_a_block_averaged_estimate_or_without_rings_above_the_noise() -> None:
    sharp = phantom(size=256)
    assert length_from_directions(frame_power(sharp), _guess(6.0, 0.0, scale=2)) is None
    flat = np.full((256, 256), 0.5, dtype=np.float32)
    rng = np.random.default_rng(2)
    noisy = simulate_motion_blur(flat, linear_kernel(3.0, 0.0), rng, noise=NoiseSpec(1e3))
    measured = white_noise_variance(to_exposure(noisy.astype(np.float64), 3.0))
    assert length_from_directions(frame_power(noisy), _guess(3.0, 0.0), measured) is None


def test_the_policy_keeps_the_decision_and_only_shortens_the_kernel() -> None:
    sharp = gaussian_filter(phantom(size=512), 1.2)
    rng = np.random.default_rng(5)
    blurred = simulate_motion_blur(sharp, linear_kernel(3.0, 75.0), rng, noise=NoiseSpec(None))
    node = OFF
    shorter = dataclasses.replace(UNGATED, kernel_length_across_up_to_px=12.0)
    directions = dataclasses.replace(shorter, kernel_length_across_mode="directions")
    a, s, d = (assess_motion(blurred, 0.6, p) for p in (node, shorter, directions))
    assert a.decision == s.decision == d.decision
    assert s.estimate.angle_deg == a.estimate.angle_deg
    assert s.estimate.length_px == min(a.estimate.length_px, d.estimate.length_px)
    assert a.blurred
    assert a.estimate.length_px > 3.5  # the softness read as motion
    assert d.estimate.length_px == pytest.approx(3.0, abs=0.8)
    off = dataclasses.replace(shorter, kernel_length_across_up_to_px=0.5)  # no estimate that short
    assert assess_motion(blurred, 0.6, off).estimate == a.estimate


def test_the_shape_step_reads_the_templates_estimate_where_the_kernel_was_shortened() -> None:
    """The sixtieth round's candidate: a straight estimate shortened under the shape step's
    least length would lose the step; with ``template_estimate`` the step reads the template's
    estimate (its gate, support and orientation), the rest the shortened one."""
    sharp = _textured(4)
    true = trajectory_kernel(5.0, np.random.default_rng(1), curvature=1.0)
    blurred = simulate_motion_blur(sharp, true, np.random.default_rng(2), noise=NoiseSpec(None))
    template = MotionEstimate(length_px=3.0, angle_deg=20.0, confidence=0.8, specificity=0.2)
    short = dataclasses.replace(template, length_px=2.8)
    policy = dataclasses.replace(MotionPolicy(), kernel_drawing_by_spectrum=False)
    oracle = _oracle(true)

    def shape(a: MotionAssessment) -> KernelShape:
        found = find_shape(blurred, a, policy, oracle)
        assert found is not None
        return found

    alone = shape(MotionAssessment(short, 0.6, "blurred"))
    assert alone.reason == "motion too short for a shape"
    kept = shape(MotionAssessment(short, 0.6, "blurred", template_estimate=template))
    as_template = shape(MotionAssessment(template, 0.6, "blurred"))
    assert np.isfinite(kept.distance)
    assert kept.distance == as_template.distance
    assert kept.replaced == as_template.replaced
    if not kept.replaced:  # the straight kernel kept is the shortened one
        assert np.array_equal(kept.kernel, short.kernel())


def test_the_template_scores_its_own_length_above_a_far_shorter_one() -> None:
    sharp = phantom(size=512)
    rng = np.random.default_rng(4)
    blurred = simulate_motion_blur(sharp, linear_kernel(8.0, 30.0), rng, noise=NoiseSpec(2e4))
    spectrum = frame_power(blurred)
    at_true, at_half = template_scores(spectrum, [8.0, 4.0], 30.0)
    assert at_true > at_half + 0.05
    across = template_scores(spectrum, [8.0], 120.0)[0]  # the right length across the motion
    assert at_true > across


def test_the_read_length_is_taken_only_where_the_ratio_and_the_template_allow() -> None:
    sharp = gaussian_filter(phantom(size=512), 1.2)
    rng = np.random.default_rng(5)
    blurred = simulate_motion_blur(sharp, linear_kernel(3.0, 75.0), rng, noise=NoiseSpec(None))
    node = OFF
    read = UNGATED
    a, r = assess_motion(blurred, 0.6, node), assess_motion(blurred, 0.6, read)
    assert r.estimate.length_px < a.estimate.length_px
    found = length_from_directions(
        frame_power(blurred, noise_floor_quanta=FLOOR_AT_06_MM), a.estimate
    )
    assert found is not None and found.fits_better_by > 0.0
    assert found.misfit <= found.estimate_misfit
    gated = dataclasses.replace(
        read, kernel_length_across_min_fit_gain=0.0, kernel_length_across_max_template_drop=1.0
    )
    assert assess_motion(blurred, 0.6, gated).estimate == r.estimate
    for refused in (
        dataclasses.replace(read, kernel_length_across_min_fit_gain=100.0),
        dataclasses.replace(read, kernel_length_across_max_template_drop=-1.0),
    ):
        assert assess_motion(blurred, 0.6, refused).estimate == a.estimate
