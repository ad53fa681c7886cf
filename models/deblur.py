"""Blind motion correction at any pixel spacing: estimate the motion, decide, deconvolve (numpy only).

One function chain, used by ``models.evaluate``, the blur gate and the node's correction step:

1. :func:`assess_motion` — the straight-motion estimate of :mod:`models.blur_estimate`, searched up
   to ``max_motion_mm`` through the image's pixel spacing, and the decision it supports:
   ``sharp`` (no motion whose fit is specific to its length, ``min_specificity``, and strong,
   ``min_confidence``; or shorter than ``blurred_from_mm``), ``blurred``,
   ``severe`` (from ``severe_from_mm``).
2. :func:`correct` — only for an image judged blurred: Wiener deconvolution in linear exposure with
   the estimated kernel (:func:`models.deconvolve.wiener`), optionally followed by
   ``rl_iterations`` Richardson–Lucy steps (less ringing at hard edges; none by default). A sharp image, or one whose motion
   could not be estimated with confidence, is returned **unchanged** (no correction by guesswork).

Lengths are in pixels of the image as given; millimetres through ``pixel_spacing_mm`` (Imager Pixel
Spacing / Pixel Spacing of the header, or an assumed value the caller reports).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from models.blur_estimate import MotionEstimate, estimate_motion
from models.deconvolve import DEFAULT_BALANCE, DEFAULT_POWER, DEFAULT_RL_ITERATIONS, wiener

F32 = NDArray[np.float32]
Decision = Literal["sharp", "blurred", "severe"]


@dataclass(frozen=True)
class MotionPolicy:
    """Thresholds and deconvolution parameters (the node fills it from ``blur_gate`` settings)."""

    blurred_from_mm: float = 1.0
    severe_from_mm: float = 3.0
    min_specificity: float = 0.1
    min_confidence: float = 0.45
    max_motion_mm: float = 8.0
    balance: float = DEFAULT_BALANCE
    power: float = DEFAULT_POWER
    log_range: float = 3.0
    rl_iterations: int = DEFAULT_RL_ITERATIONS


@dataclass(frozen=True)
class MotionAssessment:
    """The estimate for one image and what it supports."""

    estimate: MotionEstimate
    pixel_spacing_mm: float
    decision: Decision

    @property
    def motion_mm(self) -> float:
        return self.estimate.length_px * self.pixel_spacing_mm

    @property
    def blurred(self) -> bool:
        return self.decision != "sharp"


def decide(estimate: MotionEstimate, pixel_spacing_mm: float, policy: MotionPolicy) -> Decision:
    if not math.isfinite(estimate.specificity) or estimate.specificity < policy.min_specificity:
        return "sharp"
    if estimate.confidence < policy.min_confidence:
        return "sharp"
    mm = estimate.length_px * pixel_spacing_mm
    if mm >= policy.severe_from_mm:
        return "severe"
    if mm >= policy.blurred_from_mm:
        return "blurred"
    return "sharp"


def assess_motion(
    image01: NDArray[np.floating], pixel_spacing_mm: float, policy: MotionPolicy
) -> MotionAssessment:
    """Estimate the motion of a grey image (bright = dense, [0, 1]) and decide."""
    if pixel_spacing_mm <= 0:
        raise ValueError("pixel_spacing_mm must be positive")
    max_px = max(2.0, policy.max_motion_mm / pixel_spacing_mm)
    est = estimate_motion(image01, max_length=max_px, log_range=policy.log_range)
    return MotionAssessment(est, pixel_spacing_mm, decide(est, pixel_spacing_mm, policy))


def correct(
    image01: NDArray[np.floating], assessment: MotionAssessment, policy: MotionPolicy
) -> F32:
    """The corrected image, or the input unchanged when the assessment does not call it blurred."""
    a = np.asarray(image01, dtype=np.float32)
    if not assessment.blurred:
        return a
    return wiener(
        a,
        assessment.estimate.kernel(),
        balance=policy.balance,
        power=policy.power,
        log_range=policy.log_range,
        rl_iterations=policy.rl_iterations,
    )
