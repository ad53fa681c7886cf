"""The gate's third way for short motion (``MotionPolicy.short_motion_*``; docs/models.md, the
forty-first round): a first estimate of at most a few pixels, with a specificity too low for the
first two ways, is motion — never from a second look's estimate, never in a decoded JPEG."""

from __future__ import annotations

import dataclasses
import io

import numpy as np
from PIL import Image

from models.blur import NoiseSpec, linear_kernel, simulate_motion_blur
from models.blur_estimate import MotionEstimate
from models.deblur import MotionPolicy, assess_motion, decide, short_motion_found
from models.jpeg_history import decoded_jpeg
from tests.support.synthetic import power_law_field

SHORT = MotionPolicy(short_motion_max_px=4.0)


def test_a_short_first_estimate_under_the_first_two_ways_is_motion_by_the_third() -> None:
    short = MotionEstimate(3.0, 20.0, confidence=0.5, specificity=0.06)
    assert decide(short, 0.6, SHORT) == "sharp"  # the first two ways: specificity < 0.1
    assert decide(short, 0.6, SHORT, short_way=True) == "blurred"  # 1.8 mm
    assert decide(short, 0.6, MotionPolicy(), short_way=True) == "sharp"  # the way off
    # too long, too weak a fit, too little specificity: not by the third way
    for e in (
        dataclasses.replace(short, length_px=4.5),
        dataclasses.replace(short, confidence=0.39),
        dataclasses.replace(short, specificity=0.02),
        dataclasses.replace(short, specificity=float("nan")),
    ):
        assert not short_motion_found(e, SHORT)
        assert decide(e, 0.6, SHORT, short_way=True) == "sharp"
    # at detector scale 4 px is under the gate's 1 mm: the way cannot flag there
    assert decide(short, 0.2, SHORT, short_way=True) == "sharp"
    assert decide(dataclasses.replace(short, length_px=4.0), 0.2, SHORT, short_way=True) == "sharp"


def _frame() -> np.ndarray:
    """A 384² power-law field at 0.6 mm/px, 3 px of straight motion, Poisson 3·10⁴ (floating
    point): its first estimate is 4.5 px with specificity just under 0.1."""
    field = power_law_field(384, 0, 1.5, 0.2, 0.8)
    rng = np.random.default_rng(0)
    b = simulate_motion_blur(field, linear_kernel(3.0, 30.0), rng, noise=NoiseSpec(3e4))
    return np.clip(b, 0, 1)


def _jpeg(a: np.ndarray) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(np.round(a * 255).astype(np.uint8)).save(buf, "JPEG", quality=95)
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("L"), dtype=np.float32) / 255.0


def test_the_third_way_reads_a_first_estimate_only_and_not_in_a_decoded_jpeg() -> None:
    # the first two ways made unreachable, so what flags is the third
    only_third = MotionPolicy(min_specificity=0.5, strong_fit_confidence=None)
    way = dataclasses.replace(only_third, short_motion_max_px=5.0)
    frame = _frame()
    first = assess_motion(frame, 0.6, dataclasses.replace(way, estimate_noise_subtraction="never"))
    assert first.estimate.length_px <= 5.0 and short_motion_found(first.estimate, way)
    assert assess_motion(frame, 0.6, only_third).decision == "sharp"
    found = assess_motion(frame, 0.6, way)
    assert found.decision == "blurred" and found.estimate == first.estimate
    # a first estimate with the noise taken out ("always") is not a first look: not by this way
    always = dataclasses.replace(way, estimate_noise_subtraction="always")
    assert assess_motion(frame, 0.6, always).decision == "sharp"
    # the same frame through a JPEG codec: its first estimate would pass, the guard says no
    jpeg = _jpeg(frame)
    assert decoded_jpeg(jpeg) and not decoded_jpeg(frame)
    in_jpeg = assess_motion(jpeg, 0.6, dataclasses.replace(way, estimate_noise_subtraction="never"))
    assert short_motion_found(in_jpeg.estimate, way)
    assert assess_motion(jpeg, 0.6, way).decision == "sharp"


def test_a_strong_specific_fit_a_little_short_of_the_threshold_is_blurred() -> None:
    """``strong_short_from_mm`` (the forty-second round): a strong, specific fit counts as
    blurred from that length, a weak one only from ``blurred_from_mm``."""
    strong = MotionEstimate(4.5, 90.0, confidence=0.8, specificity=0.2)  # 0.9 mm at 0.2 mm/px
    policy = MotionPolicy(strong_short_from_mm=0.8)  # the node's default since 0.27.0
    assert decide(strong, 0.2, MotionPolicy(strong_short_from_mm=None)) == "sharp"
    assert decide(strong, 0.2, policy) == "blurred"
    assert decide(dataclasses.replace(strong, length_px=3.9), 0.2, policy) == "sharp"  # 0.78 mm
    for weak in (
        dataclasses.replace(strong, confidence=0.69),
        dataclasses.replace(strong, specificity=0.14),
    ):
        assert decide(weak, 0.2, policy) == "sharp"
    # motion not found at all (neither way of the gate) is not made blurred by it
    lax = dataclasses.replace(
        policy, strong_short_min_confidence=0.5, strong_short_min_specificity=0.0
    )
    unfound = dataclasses.replace(strong, confidence=0.6, specificity=0.01)
    assert decide(unfound, 0.2, lax) == "sharp"
    assert decide(dataclasses.replace(unfound, specificity=0.1), 0.2, lax) == "blurred"
