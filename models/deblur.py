"""Blind motion correction at any pixel spacing: estimate the motion, decide, deconvolve (numpy only).

One function chain, used by ``models.evaluate``, the blur gate and the node's correction step:

1. :func:`assess_motion` — the straight-motion estimate of :mod:`models.blur_estimate`, searched up
   to ``max_motion_mm`` through the image's pixel spacing, and the decision it supports:
   ``sharp`` (no motion whose fit is specific to its length, ``min_specificity``, and strong,
   ``min_confidence`` — or, a second way, very strong, ``strong_fit_confidence``, and still a
   little specific, ``strong_fit_min_specificity``; or shorter than ``blurred_from_mm``),
   ``blurred``,
   ``severe`` (from ``severe_from_mm``).
2. :func:`deconvolve` (:func:`correct` for the image alone) — only for an image judged blurred:
   Wiener deconvolution in linear exposure with the estimated kernel
   (:func:`models.deconvolve.wiener_exposure`, optionally followed by ``rl_iterations``
   Richardson–Lucy steps, none by default); where its result rings at hard edges
   (``ringing_limit``), Richardson–Lucy deconvolution instead. The Wiener filter's regulariser
   follows the noise measured in the image (:func:`wiener_balance`, :mod:`models.noise_level`):
   ``balance`` at 10⁴ quanta/px, less for a quieter frame, more for a noisier one. A sharp image,
   or one whose motion
   could not be estimated with confidence, is returned **unchanged** (no correction by guesswork).
   Given a learned kernel magnitude (``magnitude``, :mod:`models.kernel_shape`), the straight
   kernel is replaced by one retrieved from it where the motion was not straight (curved paths).

Lengths are in pixels of the image as given; millimetres through ``pixel_spacing_mm`` (Imager Pixel
Spacing / Pixel Spacing of the header, or an assumed value the caller reports).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from models.blur import LINE_DRAWINGS, drawn_linear_kernel, from_exposure, to_exposure
from models.blur_estimate import (
    MotionEstimate,
    estimate_motion,
    frame_power,
    length_from_directions,
    template_scores,
    welch_power,
)
from models.deconvolve import (
    DEFAULT_BALANCE,
    DEFAULT_POWER,
    DEFAULT_RL_ITERATIONS,
    PenaltyFloor,
    overshoot_fraction,
    richardson_lucy,
    sparse_exposure,
    wiener_exposure,
)
from models.jpeg_history import decoded_jpeg
from models.kernel_shape import (
    FINEST_SPACING_MM,
    SMALLEST_FRAME_PX,
    KernelShape,
    MagnitudeEstimator,
    shape_kernel,
)
from models.noise_level import (
    FrameSpectrum,
    frame_spectrum,
    power_law_across,
    quanta_per_pixel,
    signal_power_across,
    spectral_slope_across,
    white_noise_variance,
)
from models.shadows import shadows_of

#: Overshoot share above which the Wiener result is replaced by Richardson-Lucy (docs/models.md).
DEFAULT_RINGING_LIMIT: float | None = 0.01
#: The Wiener λ's factor where the kernel shape step read the kernel's magnitude (the seventh
#: round, docs/models.md).
DEFAULT_CHECKED_BALANCE_FACTOR = 0.5
DEFAULT_RL_FALLBACK_ITERATIONS = 10
#: The noise-following regulariser: ``balance · (REFERENCE / N̂) ** exponent`` within a range,
#: N̂ the measured quanta per pixel; fitted on training images (docs/models.md, "The regulariser
#: follows the noise").
BALANCE_REFERENCE_QUANTA = 1e4
DEFAULT_BALANCE_EXPONENT = 0.7
DEFAULT_BALANCE_RANGE = (0.01, 0.4)
#: The Richardson-Lucy fallback's steps that follow the noise: ``rl_fallback_iterations ·
#: (N̂ / RL_REFERENCE_QUANTA) ** RL_EXPONENT`` up to ``rl_fallback_max_iterations`` (fitted on
#: collimated training scenes, docs/models.md).
RL_REFERENCE_QUANTA = 6e3
RL_EXPONENT = 0.6
#: The frame on which the fallback's cap holds as it is; a smaller frame's steps cost less
#: (``MotionPolicy.rl_fallback_budget_max_iterations``).
RL_BUDGET_PIXELS = 1024 * 1024
#: ... up to this many steps on a smaller frame: the thirty-second round's candidate, which
#: missed its validation rule on curved motion (docs/models.md); off by default.
RL_BUDGET_CANDIDATE = 120
#: The frame on which a quiet frame's fallback takes its cap's steps at most
#: (``MotionPolicy.rl_fallback_quiet_from_quanta``): half a 2048² frame, so a 2048² frame takes
#: half the cap (20 of 40 steps; the sixty-sixth round, docs/models.md).
RL_QUIET_BUDGET_PIXELS = 2048 * 2048 // 2
#: The regulariser's floor for a kernel that may not be the true one: ``floor · (L / 10 px) ** 2 ·
#: ((1 - confidence) / 0.2) ** 3`` (long motion with a poor straight fit: most likely a curved path
#: the straight kernel misses, whose error a smaller λ amplifies like noise; docs/models.md).
MISMATCH_LENGTH_EXPONENT = 2.0
MISMATCH_FIT_EXPONENT = 3.0
#: The signal-aware regulariser (experiment, off by default): ``SNR_BALANCE · (z / SNR_REFERENCE)
#: ** balance_exponent``, z the white noise variance over the anatomy's power across the motion
#: at 0.06-0.14 cycles/px (the Wiener filter's own noise-to-signal ratio; docs/models.md).
SNR_BALANCE = 0.03
SNR_REFERENCE = 0.00347
#: The frequency (cycles/px) where a steeper Wiener penalty (``MotionPolicy.penalty_steep_beta``)
#: equals the policy's own.
PENALTY_MATCHED_AT = 0.1

F32 = NDArray[np.float32]
Decision = Literal["sharp", "blurred", "severe"]
NoiseSubtraction = Literal["never", "always", "second_look"]


@dataclass(frozen=True)
class MotionPolicy:
    """Thresholds and deconvolution parameters (the node fills it from ``blur_gate`` settings)."""

    blurred_from_mm: float = 1.0
    severe_from_mm: float = 3.0
    min_specificity: float = 0.1
    min_confidence: float = 0.45
    # A second way to find motion: a fit this strong needs only this much specificity (moderate
    # motion whose dips the anatomy blurs; chosen on training images, docs/models.md); None: off.
    strong_fit_confidence: float | None = 0.65
    strong_fit_min_specificity: float = 0.05
    #: A third way for short motion (docs/models.md, the forty-first round): a *first* estimate
    #: (before any noise is taken out of the spectrum) of at most this many pixels is motion with
    #: ``short_motion_min_specificity`` and ``short_motion_min_confidence``, in a frame that is not
    #: a decoded JPEG — for a motion that short the 0.6× comparison's first dip lies near the
    #: Nyquist limit, so real short motion is less specific than long, while sharp frames' first
    #: estimates are long (their noise fills the fine scale). None: off.
    short_motion_max_px: float | None = None
    short_motion_min_specificity: float = 0.03
    short_motion_min_confidence: float = 0.4
    #: A strong fit a little short of ``blurred_from_mm`` (docs/models.md, the forty-second
    #: round): motion found with confidence ≥ ``strong_short_min_confidence`` and specificity ≥
    #: ``strong_short_min_specificity`` is "blurred" from this length (mm) on — an estimate that
    #: specific is known to a few per cent, and real 1 mm motion comes out at 0.85–0.95 mm where
    #: its first dip is faint; the node's default since sharpray-blind-wiener 0.27.0. None: off.
    strong_short_from_mm: float | None = 0.8
    strong_short_min_confidence: float = 0.7
    strong_short_min_specificity: float = 0.15
    max_motion_mm: float = 8.0
    # The Wiener regulariser at BALANCE_REFERENCE_QUANTA; with balance_follows_noise, scaled by the
    # measured noise (balance_exponent) and kept within balance_range; else used as it is.
    balance: float = DEFAULT_BALANCE
    balance_follows_noise: bool = True
    balance_exponent: float = DEFAULT_BALANCE_EXPONENT
    balance_range: tuple[float, float] = DEFAULT_BALANCE_RANGE
    # The least λ for a long motion with a poor straight fit (None: no such floor); see
    # mismatch_floor().
    balance_mismatch_floor: float | None = None
    # Set λ by the noise-to-signal ratio (noise over the anatomy's power across the motion)
    # instead of by the noise alone (needs balance_follows_noise).
    balance_signal_aware: bool = False
    power: float = DEFAULT_POWER
    log_range: float = 3.0
    rl_iterations: int = DEFAULT_RL_ITERATIONS
    # Where the Wiener result overshoots the data's range on more than this share of pixels
    # (ringing at hard edges), Richardson-Lucy from a flat start is used instead; None: never.
    ringing_limit: float | None = DEFAULT_RINGING_LIMIT
    #: Where the noise-following λ lies below this, whether the Wiener result rings is judged on
    #: the Wiener result at this λ instead (the limit was set with λ 0.1 for every frame; a quiet
    #: frame's smaller λ alone need not send it to the fallback; the nineteenth round,
    #: docs/models.md). None: judged on the result itself.
    ringing_reference_balance: float | None = None
    rl_fallback_iterations: int = DEFAULT_RL_FALLBACK_ITERATIONS
    # More steps for a quieter frame (rl_fallback_iterations at the noisiest), up to the maximum.
    rl_fallback_follows_noise: bool = False
    rl_fallback_max_iterations: int = 40
    # The quantum-noise floor the motion estimate assumes at least (quanta per 0.15 mm pixel at
    # full exposure; scaled with the pixel area); None: none (models.blur_estimate).
    noise_floor_quanta: float | None = 1e5
    # The kernel shape step (given a learned magnitude) only for frames with pixels at least this
    # large (None: every frame, block-averaged to the network's scale; lost at detector scale).
    shape_finest_spacing_mm: float | None = FINEST_SPACING_MM
    # ... and for frames whose shorter side at the network's scale is at least this many pixels.
    shape_smallest_frame_px: int = SMALLEST_FRAME_PX
    # Experiment: use the retrieved kernel only where its restoration is also smoother (lower
    # total variation) than the straight kernel's.
    shape_arbitrate: bool = False
    # τ of the shape step for a quiet and a noisy frame (None: the validated rule's 0.25 / 0.3,
    # models.kernel_shape.shape_threshold); the twelfth round's candidates.
    shape_thresholds: tuple[float, float] | None = None
    # ... and at detector scale, where a native-pixel magnitude is given (None: the sixteenth
    # round's 0.25 / 0.25, models.kernel_shape.DETECTOR_THRESHOLDS).
    shape_detector_thresholds: tuple[float, float] | None = None
    # ... and there the step does not run for motion estimated shorter than this (px).
    shape_detector_least_px: float = 0.0
    # At detector scale, where the Wiener result with a retrieved kernel rings (the
    # Richardson-Lucy fallback), the frame is corrected as without the shape step (the
    # eighteenth round; False: as the sixteenth round's candidate).
    shape_detector_fallback_unshaped: bool = True
    #: ... except where the retrieved kernel's fit (:attr:`models.kernel_shape.KernelShape.fit`:
    #: its magnitude's error against the learned one) is under this: there the fallback runs with
    #: the retrieved kernel (the fifty-first round's candidate, docs/models.md: a kernel the phase
    #: retrieval matched closely survives Richardson-Lucy's many steps); None: nowhere.
    shape_detector_fallback_max_fit: float | None = None
    #: The sixty-fifth round's candidate (docs/models.md, "The fallback at detector scale with
    #: the mean of the two kernels"): where ``shape_detector_fallback_unshaped`` corrects a frame
    #: without the shape step and the straight kernel's Wiener result rings too, the
    #: Richardson-Lucy fallback runs with :func:`mean_kernel` of the straight and the retrieved
    #: kernel (the same steps, the same shadows left out). False: with the straight kernel.
    shape_detector_fallback_kernel_mean: bool = False
    #: The fifty-third and fifty-fourth rounds' candidate (docs/models.md, "The fallback leaves
    #: the shadows out of its fit"): where the Richardson-Lucy fallback runs, the shadows found in
    #: the frame (:func:`models.shadows.find_shadows`: collimation, markers, borders, which need
    #: not have moved with the patient) are left out of its data term (the node's float32 steps,
    #: accelerated as the node's; since the fifty-fourth round) and come back unchanged; the
    #: default since sharpray-blind-wiener 0.39.0 / 0.40.0. False: the whole frame is fitted
    #: (every version up to 0.36.0).
    fallback_leaves_shadows: bool = True
    #: The motion estimate's spectrum windows keep clear of the shadows found in the frame
    #: (:func:`models.shadows.find_shadows`; :func:`models.blur_estimate.welch_windows`'
    #: ``avoid``), so a small frame whose collimation stayed sharp is judged on its anatomy (the
    #: fifty-fifth and fifty-sixth rounds, docs/models.md; the default since
    #: sharpray-blind-wiener 0.41.0 / 0.42.0, with the two limits below); False: the windows
    #: nearest the centre, whatever they hold (every version up to 0.40.0).
    estimate_avoids_shadows: bool = True
    #: ... and where it does, its estimate is taken only where it finds motion of at least
    #: this many mm; shorter (or none): the estimate with the windows as built (the
    #: fifty-sixth round: the clear windows helped from 2 mm and harmed at 1 mm); None: the
    #: clear windows' estimate wherever they are asked for (the fifty-fifth round's form).
    clear_windows_from_mm: float | None = 2.0
    #: ... and only at pixels finer than this (mm): where the round validated it (0.2 mm); at
    #: 0.6 mm a look found more frames harmed (docs/models.md); None: at every pixel size.
    clear_windows_finer_than_mm: float | None = 0.4
    #: The shadows found (the fallback's and the estimate's) widened by a square, their corners
    #: too (:func:`models.shadows.find_shadows`' ``square``; the fifty-seventh round; the default
    #: since sharpray-blind-wiener 0.43.0 / 0.44.0); False: by a diamond, a rectangle's corners
    #: left in the fit (up to 0.42.0).
    shadows_whole_corners: bool = True
    #: The fifty-eighth round's candidates (docs/models.md, "The shape step beside sharp
    #: shadows"; both off: the round's chosen form missed its validation): where shadows are
    #: found in the frame (:func:`models.shadows.find_shadows`), the kernel shape step keeps
    #: clear of them (:func:`models.kernel_shape.shape_kernel`'s
    #: ``avoid``): its spectrum's windows, and the total variation that chooses the retrieved
    #: kernel's orientation — the sharp edges of a collimation that did not move with the
    #: patient are not the blur's, nor is their ringing the anatomy's; False: the windows
    #: nearest the centre and the whole frame (every version up to 0.44.0).
    shape_clear_of_shadows: bool = False
    #: ... or, instead, no shape step at all in such a frame (the straight kernel kept, the
    #: step's magnitude unread); False: the step wherever it runs.
    shape_skips_shadows: bool = False
    #: A candidate for a next round (docs/models.md, "The noise under sharp shadows, a look";
    #: no round yet): in frames whose pixels are at least this large (mm), where shadows are
    #: found, the correction's noise (its λ, the fallback's steps, the penalty's floor) is read in
    #: windows clear of them and divides their mean exposure
    #: (:func:`models.noise_level.frame_spectrum`'s ``avoid``) — a quarter of flat direct
    #: exposure raised the whole frame's mean, and the measured quanta, twofold; None: the
    #: whole frame's windows and mean (every version up to 0.44.0).
    noise_clear_of_shadows_from_mm: float | None = None
    #: ... and there the native-pixel network reads only frames whose measured noise is at
    #: least this many quanta per pixel (quiet frames; unmeasured: not quiet); None: every frame.
    #: The forty-eighth round's candidate (docs/models.md): the eighteenth round's step lost on
    #: real detector frames with noise and gained without it. 5·10⁵ since the forty-ninth round
    #: (sharpray-blind-wiener 0.34.0: noisy scenes read at most 3.5·10⁵).
    shape_detector_min_quanta: float | None = 5e5
    #: ... and a kernel it retrieved replaces the straight one only where the frame's spectrum
    #: follows the straight kernel less than this (:func:`kernel_consistency`; the straight
    #: path it wrongly read as curved follows it closely); None: wherever it says curved.
    shape_detector_max_consistency: float | None = None
    #: ... and where it keeps the straight kernel there, λ is halved as for any kernel it read
    #: (``checked_balance_factor``; the eighteenth round's step); False: as if unread (the
    #: forty-eighth round's look: halving lost 1 dB on noiseless straight 4 mm Kermany scenes).
    #: False since the forty-ninth round (0.34.0).
    shape_detector_kept_halved: bool = False
    #: ... and (a look after the forty-eighth round) a retrieved kernel only where the frame's
    #: spectrum follows it more closely than the straight kernel, by at least this
    #: (:func:`kernel_consistency`); None: not compared.
    shape_detector_better_by: float | None = None
    #: ... and a retrieved kernel replaces the straight one only where the straight fit's
    #: specificity (:attr:`models.blur_estimate.MotionEstimate.specificity`: how much better the
    #: length fits than 0.6× and 1.5× it, high where the spectrum holds a straight path's
    #: periodic dips) is under this; None: whatever the fit. The forty-ninth round's candidate
    #: (docs/models.md): it holds on both Kermany's and MHH's spectra where the consistency
    #: limit held on Kermany's alone. 0.177 since that round (0.34.0).
    shape_detector_max_specificity: float | None = 0.177
    # How a retrieved kernel is inverted (the fifth round, docs/models.md): the Wiener λ times
    # this factor, then this many Richardson-Lucy steps from the Wiener result; or (rl_only > 0)
    # Richardson-Lucy from a flat start with that many steps instead of the Wiener filter.
    shape_balance_factor: float = 1.0
    shape_rl_iterations: int = 0
    shape_rl_only: int = 0
    # Where a retrieved kernel takes the Richardson-Lucy fallback, its steps follow the measured
    # noise as ``rl_fallback_follows_noise`` says for every frame (the twenty-ninth
    # round, docs/models.md; the node's default since sharpray-blind-wiener 0.16.0).
    shape_rl_follows_noise: bool = True
    # In frames whose pixels are at least this large (mm), the fallback's steps follow the
    # measured noise for every kernel, the straight one too (the thirtieth round, docs/models.md;
    # the node's default since sharpray-blind-wiener 0.18.0: at detector scale the general law
    # harmed a real frame, so it is asked for by pixel size); None: only as the settings above
    # say (0.16.0).
    rl_fallback_follows_noise_from_mm: float | None = 0.4
    #: The thirty-first round, stopped on its fitting look (docs/models.md, "The fallback
    #: accelerated where the frame is quiet"): where the steps by the noise reach the cap (the
    #: frame is too quiet for more to be measured), this many *accelerated* Richardson–Lucy steps
    #: instead (:func:`models.deconvolve.richardson_lucy_steps`; each about four plain ones);
    #: None: the cap's plain steps.
    rl_fallback_quiet_accelerated: int | None = None
    #: The thirty-second round (docs/models.md, "The fallback's cap by the frame's size"): the cap
    #: is a time budget — as many steps as ``rl_fallback_max_iterations`` take on a frame of
    #: :data:`RL_BUDGET_PIXELS`, up to this many on a smaller frame (:func:`fallback_cap`; with
    #: it the node is sharpray-blind-wiener 0.20.0; it missed its validation rule on curved
    #: motion, so it is off); None: ``rl_fallback_max_iterations`` for every frame (0.18.0).
    rl_fallback_budget_max_iterations: int | None = None
    #: The sixty-sixth round (docs/models.md, "More fallback steps in quiet detector frames"):
    #: where the frame's pixels are too fine for the law above (finer than
    #: ``rl_fallback_follows_noise_from_mm``) and no other setting gives it, the fallback's
    #: steps still follow the measured noise in a frame of at least this many quanta per pixel,
    #: up to the cap on a frame of :data:`RL_QUIET_BUDGET_PIXELS` and fewer on a larger one
    #: (:func:`quiet_fallback_cap`); None: a fixed ``rl_fallback_iterations`` there.
    rl_fallback_quiet_from_quanta: float | None = None
    #: ... only for a straight-motion estimate of at least this many pixels (a shorter one's
    #: length is known to a pixel, too roughly for more steps: the round's look, docs/models.md)
    rl_fallback_quiet_min_px: float = 8.0
    #: The sixth round (docs/models.md, "Noise removal after the deconvolution"; tried, not
    #: adopted): the Wiener λ times ``wiener_balance_factor``, and the result's noise shrunk in a
    #: wavelet domain (:mod:`models.shrinkage`, needs the train extra's PyWavelets) where
    #: ``shrinkage`` (not after the Richardson-Lucy fallback).
    wiener_balance_factor: float = 1.0
    shrinkage: bool = False
    #: The seventh round (docs/models.md, "A smaller λ where the kernel was checked"; the node's
    #: default since sharpray-blind-wiener 0.8.0): the Wiener λ times this factor wherever the
    #: shape step read the frame's kernel magnitude (:attr:`models.kernel_shape.KernelShape.checked`).
    checked_balance_factor: float = DEFAULT_CHECKED_BALANCE_FACTOR
    #: The eighth and ninth rounds (docs/models.md, "Short motion in noisy frames"): the white
    #: noise measured in the frame taken out of the estimate's spectrum before the fit —
    #: ``never``; ``always`` (the eighth round); ``second_look``: only where the estimate without
    #: it finds no motion (the ninth round; the node's default since sharpray-blind-wiener 0.9.0).
    estimate_noise_subtraction: NoiseSubtraction = "second_look"
    #: The thirteenth round (docs/models.md, "The noise measured where it is read"): the measured
    #: noise N̂ divides the mean exposure of the windows the noise was read in, not the whole
    #: frame's (:func:`models.noise_level.quanta_per_pixel`); False: as up to 0.10.0.
    noise_mean_where_read: bool = False
    #: The fourteenth and fifteenth rounds (docs/models.md, "λ by the motion's length"): the
    #: noise-following λ times (estimated length / ``balance_reference_length_px``) ** -exponent
    #: before ``balance_range`` is applied (a short motion's kernel zeros lie where the anatomy
    #: is faint and want more regularisation, a long one's less); 0: no such factor.
    balance_length_exponent: float = 0.0
    balance_reference_length_px: float = 10.0
    #: ... never in an 8-bit image that still carries a JPEG codec's quantisation
    #: (:mod:`models.jpeg_history`): the noise measured there is the codec's (the tenth round).
    noise_subtraction_skips_jpeg: bool = True
    #: A look of the twenty-fourth session, not adopted (docs/models.md, "A sparse gradient prior
    #: instead of the Wiener filter"): where the Wiener result is kept (no fallback), the frame is
    #: deconvolved instead with a hyper-Laplacian gradient prior
    #: (:func:`models.deconvolve.sparse_exposure`) of
    #: exponent ``sparse_prior_alpha`` and data weight ``sparse_prior_weight · (λ / 0.1) **
    #: -sparse_prior_exponent``, λ the Wiener regulariser the frame was given (its noise, its
    #: checked kernel): the weight at λ = 0.1 (Poisson noise of 10⁴ quanta/px), more for a
    #: quieter frame; None: the Wiener result. Only in frames whose measured noise is at most
    #: ``sparse_prior_max_quanta`` quanta per pixel (None: in every frame).
    sparse_prior_weight: float | None = None
    sparse_prior_max_quanta: float | None = None
    sparse_prior_exponent: float = 1.0
    sparse_prior_alpha: float = 0.8
    #: The thirty-fourth and thirty-fifth rounds (docs/models.md, "A kernel that does not explain
    #: the spectrum"): in frames whose pixels are finer than ``shape_finest_spacing_mm`` (the
    #: straight kernel, no shape step), where the blurred frame's spectrum does not follow the
    #: estimated kernel's (:func:`kernel_consistency` under this) and the Wiener filter is kept
    #: (whether it rings judged at the λ without this floor), the Wiener λ is at least
    #: ``balance`` (the fixed λ of sharpray-blind-wiener 0.5.0) however quiet the frame; None:
    #: no such check.
    kernel_consistency_min: float | None = None
    #: ... and that floor (None: ``balance``; the thirty-sixth round's candidates).
    kernel_consistency_balance: float | None = None
    #: ... only in frames whose measured noise is at least this many quanta per pixel (quiet
    #: frames, whose noise-following λ is small; in a noisy frame the noise fills the kernel's
    #: dips and lowers the consistency of a right kernel too); None: in every frame. The
    #: forty-third and forty-fourth rounds' candidates (docs/models.md; both missed, off).
    kernel_consistency_min_quanta: float | None = None
    #: A look of the twenty-seventh session (docs/models.md, "Why the Kermany scenes' short
    #: motion comes out too long"; not adopted): the motion estimate's dip floor per ring follows
    #: the frame's noise over its anatomy (:func:`models.blur_estimate.estimate_motion`'s
    #: ``eta_follows_noise``).
    estimate_eta_follows_noise: bool = False
    #: ... with the anatomy each candidate motion would have blurred into the ring's power
    #: (``eta_follows_motion``; the thirty-seventh round, docs/models.md: missed, not adopted).
    estimate_eta_follows_motion: bool = False
    #: The thirty-eighth round's candidate (docs/models.md, "The Wiener penalty's slope from the
    #: frame's anatomy"; missed, off):
    #: where the anatomy's power law across the motion (:func:`models.noise_level.
    #: spectral_slope_across`) is at least this steep, the Wiener penalty ``λ·|2πf|^power`` takes
    #: ``penalty_steep_power`` instead, λ scaled to the same penalty at
    #: :data:`PENALTY_MATCHED_AT` cycles/px (a frame with little anatomy at high frequencies gets
    #: the Wiener filter's own, steeper noise-to-signal ratio). None: the policy's power always.
    penalty_steep_beta: float | None = None
    penalty_steep_power: float = 3.0
    #: ... and with an offset: the power is then ``β − penalty_slope_offset`` within ``power`` …
    #: ``penalty_steep_power`` (0: ``penalty_steep_power`` wherever the slope is steep enough).
    penalty_slope_offset: float = 0.0
    #: The thirty-ninth and fortieth rounds (docs/models.md, "The Wiener penalty as noise over
    #: anatomy", "The noise floor at detector scale only"; the node's default since
    #: sharpray-blind-wiener 0.25.0): where the frame's noise is measured and measurable
    #: (``balance_follows_noise``), the Wiener penalty is at least this factor times the
    #: measured noise over the anatomy's power law across the motion, ``σ²·|f|^β / A``
    #: (:func:`models.noise_level.power_law_across`; the MMSE Wiener filter's own ratio at 1),
    #: so a noisy frame's high frequencies, where only noise is, are held back and a noiseless
    #: frame keeps the policy's penalty. None: off (0.18.0).
    penalty_noise_over_signal: float | None = 1.0
    #: ... only in frames whose pixels are finer than this (mm; at ≈0.6 mm the floor held back
    #: the frames' own noise and cost the thirty-ninth round's crops 0.05 dB); None: at every
    #: pixel size.
    penalty_noise_finer_than_mm: float | None = 0.4
    #: The forty-fifth to forty-seventh rounds (docs/models.md, "How the straight kernel is
    #: drawn, chosen by the spectrum"; the node's default since sharpray-blind-wiener 0.31.0):
    #: the straight estimate's kernel drawn the way (:data:`models.blur.LINE_DRAWINGS`) whose
    #: transfer the frame's spectrum follows best (:func:`chosen_drawing`) instead of always on
    #: the nearest pixels. False: nearest (0.27.0).
    kernel_drawing_by_spectrum: bool = True
    #: ... read only over the bins whose power is at least this many times the frame's noise
    #: floor (:func:`drawing_fits`' ``above_noise``; None: every bin of the band, the forty-fifth
    #: round, whose noisy frames then chose the smoother drawing) ...
    kernel_drawing_above_noise: float | None = 2.0
    #: ... and another drawing than the nearest pixels only where it fits better by more than
    #: this (the forty-sixth and forty-seventh rounds' candidate, the default: 2 and 0.02)
    kernel_drawing_margin: float = 0.02
    #: The fifty-ninth to sixty-first rounds (docs/models.md, "The length read across the
    #: motion"; the default since sharpray-blind-wiener 0.45.0 / 0.46.0: 5.5 px with the
    #: sixty-first round's two conditions below): where the frame is flagged and its estimate
    #: (at native scale) is at most this many px, the kernel's length is the one read from the
    #: power along the motion over the power across it
    #: (:func:`models.blur_estimate.length_from_directions`: a low-pass alike in every direction
    #: cancels there) — only where that is shorter (``kernel_length_across_mode`` ``shorter``)
    #: or wherever it is read (``directions``); ``unseen_dip`` (the sixtieth round): where it
    #: is shorter and the estimate's first dip lies beyond the rings the ratio could read (the
    #: estimate then read only the main lobe's fall, which a soft frame steepens). The gate
    #: decides on the estimate as before. None: off.
    kernel_length_across_up_to_px: float | None = 5.5
    kernel_length_across_mode: Literal["shorter", "directions", "unseen_dip"] = "shorter"
    #: ... and the kernel shape step still reads the template's estimate (the sixtieth round:
    #: the step does not run for a straight estimate under ``MIN_NET_LENGTH_PX``, and a
    #: shortened one lost curved motion's retrieved kernel); False: it reads the shortened one.
    kernel_length_across_shape_reads_estimate: bool = False
    #: The sixty-first round: the read length taken only where it fits the ratio better than the
    #: estimate's length by at least this much (RMS of the log ratio's residual; None: wherever
    #: read) ...
    kernel_length_across_min_fit_gain: float | None = 0.25
    #: ... and where the straight template's correlation at the read length (same angle) is at
    #: most this much under its correlation at the estimate's (where the template falls off
    #: more, it read its dips; :func:`models.blur_estimate.template_scores`); None: wherever.
    kernel_length_across_max_template_drop: float | None = 0.15


#: :func:`kernel_consistency`'s window (px) and the band of radial frequencies it compares
#: (cycles/px: above the anatomy's lowest frequencies, below where quantum noise dominates).
CONSISTENCY_PATCH = 128
CONSISTENCY_BAND = (0.03, 0.3)


@dataclass(frozen=True)
class ConsistencySpectra:
    """What :func:`kernel_consistency` compares, on the :data:`CONSISTENCY_PATCH`² grid: the
    frame's log Welch power, the kernel's log power transfer log(|K|² + 10⁻⁴), and the radial
    frequency (cycles/px) of each bin; ``band`` marks :data:`CONSISTENCY_BAND`."""

    log_power: NDArray[np.float64]
    log_transfer: NDArray[np.float64]
    radius: NDArray[np.float64]

    @property
    def band(self) -> NDArray[np.bool_]:
        lo, hi = CONSISTENCY_BAND
        return (self.radius > lo) & (self.radius < hi)


def consistency_spectra(
    exposure: NDArray[np.floating], psf: NDArray[np.float64]
) -> ConsistencySpectra | None:
    """The frame's and the kernel's spectra as :func:`kernel_consistency` reads them (Hann
    windows of :data:`CONSISTENCY_PATCH`², linear exposure); None for a frame or a kernel too
    large for the window's comparison."""
    e = np.asarray(exposure, dtype=np.float64)
    n = CONSISTENCY_PATCH
    if psf.shape[0] > n // 2 or psf.shape[1] > n // 2 or min(e.shape) < n:
        return None
    power = welch_power(e, n)
    padded = np.zeros((n, n))
    padded[: psf.shape[0], : psf.shape[1]] = psf
    transfer = np.abs(np.fft.fft2(padded)) ** 2
    f = np.fft.fftfreq(n)
    floor = float(np.max(power)) * 1e-12 + 1e-300
    return ConsistencySpectra(
        np.log(power + floor), np.log(transfer + 1e-4), np.hypot(f[:, None], f[None, :])
    )


def kernel_consistency(exposure: NDArray[np.floating], psf: NDArray[np.float64]) -> float:
    """How well the kernel explains the blurred frame's spectrum: the correlation, over the
    radial band :data:`CONSISTENCY_BAND`, of the frame's log Welch power (Hann windows of
    :data:`CONSISTENCY_PATCH`², linear exposure) with the kernel's log power transfer
    log(|K|² + 10⁻⁴) (:func:`consistency_spectra`). A frame blurred by that kernel has the
    kernel's dips in its spectrum (power = anatomy × |K|²): close to 1. Where the motion took
    another path, the frame holds power where the kernel has none, which a small λ then
    amplifies. NaN for a frame or a kernel too large for the window's comparison."""
    spectra = consistency_spectra(exposure, psf)
    if spectra is None:
        return float("nan")
    band = spectra.band
    a, b = spectra.log_power[band], spectra.log_transfer[band]
    if np.std(a) == 0 or np.std(b) == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


#: :func:`drawing_fits`' band (cycles/px): the drawings of a line differ most near Nyquist.
DRAWING_BAND = (0.03, 0.49)


#: :func:`drawing_fits`' noise floor: a low percentile of the frame's power in this ring
#: (cycles/px), where a blurred frame holds little but its noise.
DRAWING_NOISE_RING = (0.35, 0.49)
DRAWING_NOISE_PERCENTILE = 10.0


def drawing_fits(
    exposure: NDArray[np.floating], estimate: MotionEstimate, above_noise: float | None = None
) -> dict[str, float]:
    """How well the straight estimate drawn each of :data:`models.blur.LINE_DRAWINGS` ways
    explains the frame: the correlation over :data:`DRAWING_BAND` of the frame's log Welch power
    with the kernel's log power transfer (:func:`consistency_spectra`), each ring's mean removed
    from both first, so the anatomy's fall with frequency (the same for every drawing) does not
    favour the smoothest. ``above_noise``: only over the bins whose power is at least that many
    times the frame's noise floor (the :data:`DRAWING_NOISE_PERCENTILE`-th percentile of its
    power in :data:`DRAWING_NOISE_RING`): where noise fills the kernel's dips the drawings are
    not told apart there. NaN for a drawing not measurable (kernel or frame too large or small,
    or too few bins)."""
    n = CONSISTENCY_PATCH
    lo, hi = DRAWING_BAND
    fits: dict[str, float] = {}
    spectra: ConsistencySpectra | None = None
    band: NDArray[np.bool_] | None = None
    for drawing in LINE_DRAWINGS:
        psf = drawn_linear_kernel(estimate.length_px, estimate.angle_deg, drawing)
        if spectra is None:
            spectra = consistency_spectra(exposure, psf)
        if spectra is None or psf.shape[0] > n // 2 or psf.shape[1] > n // 2:
            fits[drawing] = float("nan")
            continue
        if band is None:
            band = (spectra.radius > lo) & (spectra.radius < hi)
            if above_noise is not None:
                power = np.exp(spectra.log_power)
                r0, r1 = DRAWING_NOISE_RING
                outer = (spectra.radius > r0) & (spectra.radius < r1)
                floor = float(np.percentile(power[outer], DRAWING_NOISE_PERCENTILE))
                band &= power > above_noise * floor
        padded = np.zeros((n, n))
        padded[: psf.shape[0], : psf.shape[1]] = psf
        log_transfer = np.log(np.abs(np.fft.fft2(padded)) ** 2 + 1e-4)
        ring = np.round(spectra.radius * n).astype(np.int64)
        a, b = spectra.log_power.copy(), log_transfer
        for x in (a, b):
            for k in np.unique(ring[band]):
                m = band & (ring == k)
                x[m] -= x[m].mean()
        fa, fb = a[band], b[band]
        ok = fa.size > 10 and np.std(fa) > 0 and np.std(fb) > 0
        fits[drawing] = float(np.corrcoef(fa, fb)[0, 1]) if ok else float("nan")
    return fits


def chosen_drawing(
    exposure: NDArray[np.floating],
    estimate: MotionEstimate,
    above_noise: float | None = None,
    margin: float = 0.0,
) -> str:
    """The drawing of :func:`drawing_fits` the frame follows best, another than the nearest
    pixels only where it fits better than those by more than ``margin`` (nearest where none is
    measurable or where they tie)."""
    fits = drawing_fits(exposure, estimate, above_noise)
    best = "nearest"
    for drawing, fit in fits.items():
        if not math.isfinite(fit):
            continue
        bar = fits[best] + (margin if best == "nearest" else 0.0)
        if not math.isfinite(fits[best]) or fit > bar:
            best = drawing
    return best


def drawn_as_policy_says(
    exposure: NDArray[np.floating], assessment: MotionAssessment, policy: MotionPolicy
) -> MotionAssessment:
    """The assessment with its estimate drawn as the frame chose
    (:attr:`MotionPolicy.kernel_drawing_by_spectrum`); unchanged where the policy does not ask,
    the frame is not called blurred or a drawing was already set."""
    est = assessment.estimate
    if not (policy.kernel_drawing_by_spectrum and assessment.blurred) or est.drawing != "nearest":
        return assessment
    drawing = chosen_drawing(
        exposure, est, policy.kernel_drawing_above_noise, policy.kernel_drawing_margin
    )
    if drawing == "nearest":
        return assessment
    return replace(assessment, estimate=replace(est, drawing=drawing))


def consistency_floor(
    exposure: NDArray[np.floating],
    assessment: MotionAssessment,
    policy: MotionPolicy,
    quanta: float | None = None,
) -> tuple[float, float | None]:
    """The least λ :attr:`MotionPolicy.kernel_consistency_min` asks of this frame (0: none), and
    the consistency it was measured by (None: not measured). ``quanta``: the frame's measured
    noise, read against :attr:`MotionPolicy.kernel_consistency_min_quanta` (unmeasured: not a
    quiet frame)."""
    least = policy.kernel_consistency_min
    finest = policy.shape_finest_spacing_mm
    if least is None or (finest is not None and assessment.pixel_spacing_mm >= finest):
        return 0.0, None
    quiet = policy.kernel_consistency_min_quanta
    if quiet is not None and (quanta is None or not math.isfinite(quanta) or quanta < quiet):
        return 0.0, None
    c = kernel_consistency(exposure, assessment.estimate.kernel())
    floor = policy.kernel_consistency_balance or policy.balance
    return (floor if math.isfinite(c) and c < least else 0.0), c


@dataclass(frozen=True)
class MotionAssessment:
    """The estimate for one image and what it supports."""

    estimate: MotionEstimate
    pixel_spacing_mm: float
    decision: Decision
    #: The template's estimate where the kernel's length was then read across the motion and
    #: the shape step is to read the template's (``MotionPolicy.kernel_length_across_shape_reads_
    #: estimate``); None: the shape step reads :attr:`estimate`.
    template_estimate: MotionEstimate | None = None
    #: The template's length (px) where the kernel's length was read across the motion instead
    #: (:attr:`estimate` holds the read one); None: the template's length is the estimate's.
    template_length_px: float | None = None

    @property
    def shape_reads(self) -> MotionEstimate:
        """The estimate whose length and angle the kernel shape step reads."""
        return self.template_estimate or self.estimate

    @property
    def motion_mm(self) -> float:
        return self.estimate.length_px * self.pixel_spacing_mm

    @property
    def blurred(self) -> bool:
        return self.decision != "sharp"


def motion_found(estimate: MotionEstimate, policy: MotionPolicy) -> bool:
    """Whether the estimate shows motion at all: a fit specific to its length and strong, or
    very strong and a little specific (the two ways of the policy)."""
    spec, conf = estimate.specificity, estimate.confidence
    if not (math.isfinite(spec) and math.isfinite(conf)):
        return False
    if spec >= policy.min_specificity and conf >= policy.min_confidence:
        return True
    strong = policy.strong_fit_confidence
    return strong is not None and conf >= strong and spec >= policy.strong_fit_min_specificity


def short_motion_found(estimate: MotionEstimate, policy: MotionPolicy) -> bool:
    """Whether a first estimate shows motion by the policy's third way (short motion, at most
    ``policy.short_motion_max_px``; the caller says the estimate is a first one and the frame is
    not a decoded JPEG)."""
    most = policy.short_motion_max_px
    spec, conf = estimate.specificity, estimate.confidence
    if most is None or not (math.isfinite(spec) and math.isfinite(conf)):
        return False
    return (
        estimate.length_px <= most
        and spec >= policy.short_motion_min_specificity
        and conf >= policy.short_motion_min_confidence
    )


def decide(
    estimate: MotionEstimate,
    pixel_spacing_mm: float,
    policy: MotionPolicy,
    *,
    short_way: bool = False,
) -> Decision:
    """The gate's decision on an estimate: motion found (either way of :func:`motion_found`, or
    with ``short_way`` the third, :func:`short_motion_found`) and its length in mm against the
    policy's thresholds (``strong_short_from_mm``: lower for a strong, specific fit)."""
    if not (motion_found(estimate, policy) or (short_way and short_motion_found(estimate, policy))):
        return "sharp"
    mm = estimate.length_px * pixel_spacing_mm
    if mm >= policy.severe_from_mm:
        return "severe"
    if mm >= policy.blurred_from_mm:
        return "blurred"
    strong_from = policy.strong_short_from_mm
    if (
        strong_from is not None
        and mm >= strong_from
        and estimate.confidence >= policy.strong_short_min_confidence
        and estimate.specificity >= policy.strong_short_min_specificity
    ):
        return "blurred"
    return "sharp"


def assess_motion(
    image01: NDArray[np.floating], pixel_spacing_mm: float, policy: MotionPolicy
) -> MotionAssessment:
    """Estimate the motion of a grey image (bright = dense, [0, 1]) and decide."""
    if pixel_spacing_mm <= 0:
        raise ValueError("pixel_spacing_mm must be positive")
    finer = policy.clear_windows_finer_than_mm
    if policy.estimate_avoids_shadows and finer is not None and pixel_spacing_mm >= finer:
        policy = replace(policy, estimate_avoids_shadows=False)  # the windows as built
    if policy.estimate_avoids_shadows and policy.clear_windows_from_mm is not None:
        clear = assess_motion(
            image01, pixel_spacing_mm, replace(policy, clear_windows_from_mm=None)
        )
        if clear.blurred and clear.motion_mm >= policy.clear_windows_from_mm:
            return clear
        built = replace(policy, estimate_avoids_shadows=False)
        return assess_motion(image01, pixel_spacing_mm, built)
    max_px = max(2.0, policy.max_motion_mm / pixel_spacing_mm)
    floor = (
        policy.noise_floor_quanta * (pixel_spacing_mm / 0.15) ** 2
        if policy.noise_floor_quanta
        else None
    )
    mode = policy.estimate_noise_subtraction

    avoid = None
    if policy.estimate_avoids_shadows:
        found = shadows_of(image01, square=policy.shadows_whole_corners)
        avoid = found if found.any() else None

    def estimate(subtract: bool) -> MotionEstimate:
        noise = None
        if subtract:
            try:
                noise = white_noise_variance(to_exposure(np.asarray(image01), policy.log_range))
            except ValueError:  # too small to measure: nothing subtracted
                noise = None
        return estimate_motion(
            image01,
            max_length=max_px,
            log_range=policy.log_range,
            noise_floor_quanta=floor,
            noise_variance=noise,
            eta_follows_noise=policy.estimate_eta_follows_noise,
            eta_follows_motion=policy.estimate_eta_follows_motion,
            avoid=avoid,
        )

    jpeg: list[bool] = []  # decoded_jpeg(image01), computed once where asked

    def decoded() -> bool:
        if not jpeg:
            jpeg.append(decoded_jpeg(image01))
        return jpeg[0]

    def may_subtract() -> bool:
        """The noise may be taken out: not in a decoded JPEG (its noise is the codec's)."""
        return not (policy.noise_subtraction_skips_jpeg and decoded())

    first_subtracted = mode == "always" and may_subtract()
    est = estimate(first_subtracted)
    # the third way reads a first estimate with the frame's noise in it, not a decoded JPEG's
    short_way = (
        policy.short_motion_max_px is not None
        and not first_subtracted
        and est.length_px <= policy.short_motion_max_px
        and not decoded()
    )
    decision = decide(est, pixel_spacing_mm, policy, short_way=short_way)
    if mode == "second_look" and decision == "sharp" and may_subtract():
        # no motion found: look again with the frame's noise taken out of the spectrum (short
        # motion whose dips the noise fills); where that finds none either, the first estimate
        second = estimate(True)
        second_decision = decide(second, pixel_spacing_mm, policy)
        if second_decision != "sharp":
            est, decision = second, second_decision
    most = policy.kernel_length_across_up_to_px
    if most is not None and decision != "sharp" and est.length_px <= most:
        across = length_read_across(image01, est, policy, floor, avoid)
        if across != est:
            shape_reads = est if policy.kernel_length_across_shape_reads_estimate else None
            return MotionAssessment(
                across,
                pixel_spacing_mm,
                decision,
                template_estimate=shape_reads,
                template_length_px=est.length_px,
            )
    return MotionAssessment(est, pixel_spacing_mm, decision)


def length_read_across(
    image01: NDArray[np.floating],
    estimate: MotionEstimate,
    policy: MotionPolicy,
    floor_quanta: float | None,
    avoid: NDArray[np.bool_] | None,
) -> MotionEstimate:
    """``estimate`` with the length read from the power along the motion over the power across
    it (:func:`models.blur_estimate.length_from_directions`, the frame's white noise and the
    policy's floor taken out) as ``policy.kernel_length_across_mode`` says; as it is where no
    length can be read."""
    try:
        noise = white_noise_variance(to_exposure(np.asarray(image01), policy.log_range))
    except ValueError:  # too small to measure
        noise = None
    spectrum = frame_power(
        image01, log_range=policy.log_range, noise_floor_quanta=floor_quanta, avoid=avoid
    )
    read = length_from_directions(spectrum, estimate, noise)
    if read is None:
        return estimate
    least_gain = policy.kernel_length_across_min_fit_gain
    if least_gain is not None and not read.fits_better_by >= least_gain:
        return estimate  # the ratio does not tell the read length from the estimate's
    most_drop = policy.kernel_length_across_max_template_drop
    if most_drop is not None and read.length_px < estimate.length_px:
        at_estimate, at_read = template_scores(
            spectrum, [estimate.length_px, read.length_px], estimate.angle_deg
        )
        if not at_estimate - at_read <= most_drop:
            return estimate  # the template read its dips at the estimate's length
    mode = policy.kernel_length_across_mode
    if mode == "unseen_dip" and read.sees_first_dip_of(estimate.length_px):
        return estimate  # the estimate read its first dip: the template is the better reader
    if mode == "directions":
        return replace(estimate, length_px=read.length_px)
    return replace(estimate, length_px=min(read.length_px, estimate.length_px))


@dataclass(frozen=True)
class Deconvolution:
    """A corrected image and how it was made."""

    image: F32
    method: Literal["none", "wiener", "richardson-lucy"]
    overshoot: float  # share of the Wiener result outside the data's range (0 when not run)
    balance: float | None = None  # the Wiener regulariser used (None when not run)
    noise_quanta: float | None = None  # the measured noise, quanta per pixel (None: not measured)
    rl_iterations: int = 0  # Richardson-Lucy steps of the fallback (0 when not run)
    shape: KernelShape | None = None  # the kernel shape step's finding (None when not run)
    shrunk: bool = False  # the Wiener result's noise shrunk (models.shrinkage)
    rl_accelerated: bool = False  # the fallback's steps were accelerated ones
    # kernel_consistency() of the frame and the straight kernel where the policy asked for it
    # (None: not measured), and whether it raised λ (MotionPolicy.kernel_consistency_min)
    kernel_consistency: float | None = None
    consistency_raised: bool = False
    # the Wiener penalty's power where MotionPolicy.penalty_steep_beta chose a steeper one (None:
    # the policy's)
    penalty_power: float | None = None
    # the least penalty MotionPolicy.penalty_noise_over_signal set (None: not asked, or the
    # frame's noise or anatomy not measurable)
    penalty_floor: PenaltyFloor | None = None
    # how the straight kernel was drawn (models.blur.LINE_DRAWINGS; the frame's choice where
    # MotionPolicy.kernel_drawing_by_spectrum); a retrieved kernel replaced it where shape says so
    drawing: str = "nearest"
    #: the share of the frame the fallback left out of its fit as shadows and gave back unchanged
    #: (``MotionPolicy.fallback_leaves_shadows``; 0: none found or not asked)
    shadow_share: float = 0.0
    #: the fallback ran with the mean of the straight and the retrieved kernel
    #: (``MotionPolicy.shape_detector_fallback_kernel_mean``)
    fallback_kernel_mean: bool = False

    @property
    def curved(self) -> bool:
        """Whether the kernel retrieved from the learned magnitude replaced the straight one."""
        return self.shape is not None and self.shape.replaced


def rl_fallback_iterations(noise_quanta: float | None, policy: MotionPolicy) -> int:
    """Steps of the Richardson-Lucy fallback for an image with this measured noise.

    Each step sharpens more and amplifies more noise, so a quiet frame can take more of them:
    ``rl_fallback_iterations · (N̂ / 6·10³) ** 0.6`` within ``rl_fallback_iterations`` …
    ``rl_fallback_max_iterations`` (``rl_fallback_follows_noise``; else the fixed count).
    """
    base = policy.rl_fallback_iterations
    if not policy.rl_fallback_follows_noise or noise_quanta is None:
        return base
    top = max(base, policy.rl_fallback_max_iterations)
    if not math.isfinite(noise_quanta):
        return top
    n = base * (max(noise_quanta, 0.0) / RL_REFERENCE_QUANTA) ** RL_EXPONENT
    return int(min(max(round(n), base), top))


def noisy_enough(noise_quanta: float | None, policy: MotionPolicy) -> bool:
    """Whether a frame with this measured noise (quanta per pixel; None: not measured) takes the
    sparse prior: at most ``sparse_prior_max_quanta`` (every frame where that is None)."""
    top = policy.sparse_prior_max_quanta
    if top is None:
        return True
    return noise_quanta is not None and noise_quanta <= top


def fallback_cap(shape: tuple[int, ...], policy: MotionPolicy) -> int:
    """The most Richardson-Lucy steps the fallback takes on a frame of ``shape``: the policy's
    cap, or (``rl_fallback_budget_max_iterations``) as many as the cap's steps take on a frame of
    :data:`RL_BUDGET_PIXELS` — a step's time follows the frame's area — within the cap … that
    maximum."""
    cap, top = policy.rl_fallback_max_iterations, policy.rl_fallback_budget_max_iterations
    if top is None:
        return cap
    pixels = max(int(np.prod(shape)), 1)
    return int(min(max(cap, (cap * RL_BUDGET_PIXELS) // pixels), max(top, cap)))


def quiet_enough(noise_quanta: float | None, policy: MotionPolicy) -> bool:
    """Whether a frame with this measured noise takes the fallback's steps by the noise where its
    pixels alone would not (``rl_fallback_quiet_from_quanta``; False where that is None or the
    noise was not measured)."""
    least = policy.rl_fallback_quiet_from_quanta
    return least is not None and noise_quanta is not None and noise_quanta >= least


def quiet_fallback_cap(shape: tuple[int, ...], policy: MotionPolicy) -> int:
    """The most Richardson-Lucy steps the fallback takes on a quiet frame of ``shape`` that
    follows the noise only for its quiet (:func:`quiet_enough`): the policy's cap on a frame of
    up to :data:`RL_QUIET_BUDGET_PIXELS`, on a larger one as many as that cap's steps take there
    (a step's time follows the frame's area), at least ``rl_fallback_iterations``."""
    cap, base = policy.rl_fallback_max_iterations, policy.rl_fallback_iterations
    pixels = max(int(np.prod(shape)), 1)
    return int(max(base, min(cap, (cap * RL_QUIET_BUDGET_PIXELS) // pixels)))


def mismatch_floor(estimate: MotionEstimate, policy: MotionPolicy) -> float:
    """The least regulariser the estimate's own doubt calls for (0 when the policy sets none).

    The straight kernel fits a curved path badly, and what it misses is amplified by a small λ
    like noise: long motion (``length_px``) with a poor fit (``confidence``) gets
    ``balance_mismatch_floor · (L / 10) ** 2 · ((1 - confidence) / 0.2) ** 3``, at most the
    range's top.
    """
    a = policy.balance_mismatch_floor
    if a is None or not math.isfinite(estimate.confidence):
        return 0.0
    doubt = max(0.0, 1.0 - estimate.confidence) / 0.2
    floor = (
        a * (estimate.length_px / 10.0) ** MISMATCH_LENGTH_EXPONENT * doubt**MISMATCH_FIT_EXPONENT
    )
    return float(min(floor, policy.balance_range[1]))


def _measured_quanta(
    exposure: NDArray[np.floating], policy: MotionPolicy, spectrum: FrameSpectrum | None = None
) -> float | None:
    """:func:`models.noise_level.quanta_per_pixel`, or None for an image too small to measure."""
    try:
        return quanta_per_pixel(
            exposure, where_read=policy.noise_mean_where_read, spectrum=spectrum
        )
    except ValueError:
        return None


def _spectrum_or_none(
    exposure: NDArray[np.floating], avoid: NDArray[np.bool_] | None = None
) -> FrameSpectrum | None:
    """The frame's :func:`models.noise_level.frame_spectrum` (clear of ``avoid``), None where
    it is too small."""
    try:
        return frame_spectrum(exposure, avoid=avoid)
    except ValueError:
        return None


def shadows_for_noise(
    image01: NDArray[np.floating], pixel_spacing_mm: float, policy: MotionPolicy
) -> NDArray[np.bool_] | None:
    """The shadows the correction's noise is read clear of
    (:attr:`MotionPolicy.noise_clear_of_shadows_from_mm`; None: not asked, or none found)."""
    from_mm = policy.noise_clear_of_shadows_from_mm
    if from_mm is None or pixel_spacing_mm < from_mm:
        return None
    return _some_shadows(image01, policy)


def _some_shadows(image01: NDArray[np.floating], policy: MotionPolicy) -> NDArray[np.bool_] | None:
    """The shadows found in the frame (:func:`models.shadows.shadows_of`, widened as the policy
    says), None where there are none or nothing else."""
    found = shadows_of(image01, square=policy.shadows_whole_corners)
    return found if 0 < int(found.sum()) < found.size else None


def wiener_balance(
    exposure: NDArray[np.floating],
    policy: MotionPolicy,
    motion_angle_deg: float | None = None,
    motion_length_px: float | None = None,
    *,
    spectrum: FrameSpectrum | None = None,
) -> tuple[float, float | None]:
    """The Wiener regulariser for this linear-exposure image, and the noise it was set by
    (``spectrum``: the frame's :func:`models.noise_level.frame_spectrum`, where already read).

    ``policy.balance`` as it is, or (``balance_follows_noise``) scaled to the image's measured
    noise N̂ (quanta per pixel, :func:`models.noise_level.quanta_per_pixel`):
    ``balance · (10⁴ / N̂) ** balance_exponent`` within ``balance_range``. Less noise, less
    regularisation: a frame blurred without added noise gets about a tenth of the λ that suits
    Poisson noise of 10⁴ quanta/px. With ``balance_length_exponent``, times
    :func:`length_factor` of ``motion_length_px`` before the range is applied (a frame without
    noise keeps the least λ whatever the motion's length).
    """
    n = _measured_quanta(exposure, policy, spectrum) if policy.balance_follows_noise else None
    if n is None:  # not asked for, or too small to measure: the fixed value
        return policy.balance, None
    lo, hi = policy.balance_range
    if not math.isfinite(n):
        return lo, n
    lam = policy.balance * (BALANCE_REFERENCE_QUANTA / n) ** policy.balance_exponent
    if policy.balance_signal_aware and motion_angle_deg is not None:
        noise_variance = float(np.mean(exposure)) / n
        z = noise_variance / signal_power_across(exposure, motion_angle_deg)
        lam = SNR_BALANCE * (z / SNR_REFERENCE) ** policy.balance_exponent
    lam *= length_factor(motion_length_px, policy)
    return float(min(max(lam, lo), hi)), n


def length_factor(length_px: float | None, policy: MotionPolicy) -> float:
    """(``length_px`` / the policy's reference length) to the minus ``balance_length_exponent``:
    the noise-following λ's factor for a motion that long (1 without an exponent or a length)."""
    if not policy.balance_length_exponent or length_px is None:
        return 1.0
    ratio = max(length_px, 1.0) / policy.balance_reference_length_px
    return float(ratio**-policy.balance_length_exponent)


def find_shape(
    image01: NDArray[np.floating],
    assessment: MotionAssessment,
    policy: MotionPolicy,
    magnitude: MagnitudeEstimator,
    detector_magnitude: MagnitudeEstimator | None = None,
) -> KernelShape | None:
    """The kernel shape step's finding for a frame :func:`deconvolve` would correct (None where
    it corrects nothing): what ``deconvolve(..., magnitude=magnitude)`` finds before it inverts,
    to be passed to it as ``shape``."""
    if not assessment.blurred or assessment.estimate.kernel().size == 1:
        return None
    e = to_exposure(np.asarray(image01, dtype=np.float32).astype(np.float64), policy.log_range)
    assessment = drawn_as_policy_says(e, assessment, policy)
    if detector_magnitude is not None and policy.shape_detector_min_quanta is not None:
        est = assessment.estimate
        quanta = wiener_balance(e, policy, est.angle_deg, est.length_px)[1]
        if not quiet_for_detector(quanta, policy):
            detector_magnitude = None
    shadows = shadows_for_shape(image01, policy)
    return _shape(e, assessment, policy, magnitude, detector_magnitude, shadows)


def shadows_for_shape(
    image01: NDArray[np.floating], policy: MotionPolicy
) -> NDArray[np.bool_] | None:
    """The shadows the shape step is to keep clear of or stop at (None: none found, or the
    policy asks neither)."""
    if not (policy.shape_clear_of_shadows or policy.shape_skips_shadows):
        return None
    return _some_shadows(image01, policy)


def quiet_for_detector(quanta: float | None, policy: MotionPolicy) -> bool:
    """Whether a frame whose measured noise is ``quanta`` (quanta per pixel; None: unmeasured)
    is quiet enough for the native-pixel magnitude network
    (:attr:`MotionPolicy.shape_detector_min_quanta`; None: every frame is)."""
    least = policy.shape_detector_min_quanta
    if least is None:
        return True
    return quanta is not None and not math.isnan(quanta) and quanta >= least


def _shape(
    exposure: NDArray[np.float64],
    assessment: MotionAssessment,
    policy: MotionPolicy,
    magnitude: MagnitudeEstimator,
    detector_magnitude: MagnitudeEstimator | None,
    shadows: NDArray[np.bool_] | None = None,
) -> KernelShape:
    est = assessment.estimate
    if shadows is not None and policy.shape_skips_shadows:
        nan = float("nan")
        return KernelShape(est.kernel(), False, nan, nan, 1, "shadows in the frame")
    found = shape_kernel(
        exposure,
        assessment.shape_reads.length_px,
        assessment.shape_reads.angle_deg,
        assessment.pixel_spacing_mm,
        magnitude,
        lambda small: wiener_balance(small, policy)[0],
        policy.log_range,
        policy.power,
        finest_spacing_mm=policy.shape_finest_spacing_mm,
        smallest_frame_px=policy.shape_smallest_frame_px,
        arbitrate=policy.shape_arbitrate,
        thresholds=policy.shape_thresholds,
        noise_where_read=policy.noise_mean_where_read,
        detector_magnitude=detector_magnitude,
        detector_thresholds=policy.shape_detector_thresholds,
        detector_least_px=policy.shape_detector_least_px,
        straight=est.kernel(),
        avoid=shadows if policy.shape_clear_of_shadows else None,
    )
    most = policy.shape_detector_max_consistency
    better_by = policy.shape_detector_better_by
    most_specific = policy.shape_detector_max_specificity
    finest = policy.shape_finest_spacing_mm
    if (
        (most is None and better_by is None and most_specific is None)
        or not found.replaced
        or finest is None
        or assessment.pixel_spacing_mm >= finest
    ):
        return found
    straight = est.kernel()
    reason = ""  # why the straight kernel is kept; "": the retrieved one stays
    if most_specific is not None and not est.specificity < most_specific:
        reason = "the straight fit's dips are specific"
    elif most is not None or better_by is not None:
        follows = kernel_consistency(exposure, straight)
        if (most is not None and follows >= most) or (
            better_by is not None
            and not kernel_consistency(exposure, found.kernel) >= follows + better_by
        ):
            reason = "the frame's spectrum follows the straight kernel"
    if not reason:
        return found
    return replace(found, kernel=straight, replaced=False, fit=float("nan"), reason=reason)


def mean_kernel(a: NDArray[np.floating], b: NDArray[np.floating]) -> NDArray[np.float64]:
    """The mean of two kernels, each normalised to sum 1 and centred on a common odd square
    (the larger of their sizes)."""
    n = max(*a.shape, *b.shape)
    n += 1 - n % 2
    out = np.zeros((n, n))
    for k in (a, b):
        k64 = np.asarray(k, dtype=np.float64)
        total = float(k64.sum())
        if not total > 0:
            raise ValueError("a kernel has no positive mass")
        y, x = (n - k64.shape[0]) // 2, (n - k64.shape[1]) // 2
        out[y : y + k64.shape[0], x : x + k64.shape[1]] += k64 / total / 2
    return out


def fits_for_fallback(shape: KernelShape, policy: MotionPolicy) -> bool:
    """Whether a retrieved kernel whose Wiener result rang at detector scale keeps its place in
    the Richardson-Lucy fallback although ``shape_detector_fallback_unshaped`` is set: its fit
    under ``shape_detector_fallback_max_fit``."""
    most = policy.shape_detector_fallback_max_fit
    return most is not None and math.isfinite(shape.fit) and shape.fit < most


def deconvolve(
    image01: NDArray[np.floating],
    assessment: MotionAssessment,
    policy: MotionPolicy,
    *,
    allow_fallback: bool = True,
    magnitude: MagnitudeEstimator | None = None,
    shape: KernelShape | None = None,
    detector_magnitude: MagnitudeEstimator | None = None,
    fallback_kernel: NDArray[np.float64] | None = None,
) -> Deconvolution:
    """Correct an image the assessment calls blurred; return a sharp one unchanged.

    The Wiener filter (plus ``policy.rl_iterations`` Richardson-Lucy steps) first; where it rings
    (:func:`models.deconvolve.overshoot_fraction` above ``policy.ringing_limit``) and
    ``allow_fallback``, Richardson-Lucy from a flat start instead, which stays positive and does
    not ring at hard edges but sharpens open anatomy less. With ``magnitude`` the kernel shape
    step (:func:`models.kernel_shape.shape_kernel`) may replace the straight kernel first, and a
    replaced kernel is inverted as ``policy.shape_*`` say; ``shape`` is that step's finding when
    it is already known (the same frame deconvolved under several policies). With
    ``policy.shrinkage`` the Wiener result's noise is then shrunk (:mod:`models.shrinkage`).
    ``fallback_kernel``: the kernel the Richardson-Lucy fallback runs with instead of the Wiener
    filter's (``policy.shape_detector_fallback_kernel_mean``).
    """
    a = np.asarray(image01, dtype=np.float32)
    if not assessment.blurred:
        return Deconvolution(a, "none", 0.0)
    if assessment.estimate.kernel().size == 1:
        return Deconvolution(a, "none", 0.0)
    e = to_exposure(a.astype(np.float64), policy.log_range)
    assessment = drawn_as_policy_says(e, assessment, policy)
    est = assessment.estimate
    psf = est.kernel()
    steep = steep_penalty_power(e, est, policy)
    if steep is not None:
        policy = replace(
            policy,
            power=steep,
            wiener_balance_factor=policy.wiener_balance_factor
            * (2 * math.pi * PENALTY_MATCHED_AT) ** (policy.power - steep),
        )
    # read once: the noise for λ and for the penalty's floor
    spectrum = _spectrum_or_none(e, shadows_for_noise(image01, assessment.pixel_spacing_mm, policy))
    balance, quanta = wiener_balance(e, policy, est.angle_deg, est.length_px, spectrum=spectrum)
    floor = noise_over_signal_floor(e, assessment, quanta, policy, spectrum)
    consistency: float | None = None
    raise_by = 1.0  # the consistency floor's factor, applied where the Wiener filter is kept
    if policy.balance_follows_noise:
        balance = max(balance, mismatch_floor(est, policy))
        least, consistency = consistency_floor(e, assessment, policy, quanta)
        if least > balance:
            raise_by = least / balance
    balance *= policy.wiener_balance_factor
    if shape is None and magnitude is not None:
        detector = detector_magnitude if quiet_for_detector(quanta, policy) else None
        shadows_found = shadows_for_shape(image01, policy)
        shape = _shape(e, assessment, policy, magnitude, detector, shadows_found)
    rl_after = policy.rl_iterations
    if shape is not None:
        psf = shape.kernel
        finest = policy.shape_finest_spacing_mm
        kept_at_detector = (
            not shape.replaced and finest is not None and assessment.pixel_spacing_mm < finest
        )
        if shape.checked and not (kept_at_detector and not policy.shape_detector_kept_halved):
            balance *= policy.checked_balance_factor
        if shape.replaced:
            if policy.shape_rl_only > 0:
                r = richardson_lucy(e, psf, policy.shape_rl_only)
                out = np.clip(from_exposure(r, policy.log_range), 0.0, 1.0).astype(np.float32)
                return Deconvolution(
                    out,
                    "richardson-lucy",
                    0.0,
                    None,
                    quanta,
                    policy.shape_rl_only,
                    shape,
                    drawing=est.drawing,
                )
            balance *= policy.shape_balance_factor
            rl_after += policy.shape_rl_iterations
    w = wiener_exposure(e, psf, balance, policy.power, rl_after, floor)
    over = overshoot_fraction(w, e)
    reference = policy.ringing_reference_balance
    limit = policy.ringing_limit
    if reference is not None and limit is not None and balance < reference and over > limit:
        # the ringing judged at the reference λ: does the frame ring, or only the smaller λ?
        over = overshoot_fraction(
            wiener_exposure(e, psf, reference, policy.power, rl_after, floor), e
        )
    method: Literal["wiener", "richardson-lucy"] = "wiener"
    steps = 0
    shadows: NDArray[np.bool_] | None = None
    accelerated = False
    if allow_fallback and policy.ringing_limit is not None and over > policy.ringing_limit:
        finest = policy.shape_finest_spacing_mm
        if (
            shape is not None
            and shape.replaced
            and policy.shape_detector_fallback_unshaped
            and finest is not None
            and assessment.pixel_spacing_mm < finest
            and not fits_for_fallback(shape, policy)
        ):
            straight = assessment.estimate.kernel()
            mean = policy.shape_detector_fallback_kernel_mean
            unshaped = KernelShape(
                straight,
                False,
                float("nan"),
                float("nan"),
                shape.factor,
                "the retrieved kernel's Wiener result rang: corrected without the shape step"
                + (", its fallback with the mean of the two kernels" if mean else ""),
            )
            return deconvolve(
                image01,
                assessment,
                policy,
                shape=unshaped,
                fallback_kernel=mean_kernel(straight, shape.kernel) if mean else None,
            )
        from_mm = policy.rl_fallback_follows_noise_from_mm
        follows = (
            policy.rl_fallback_follows_noise
            or (policy.shape_rl_follows_noise and shape is not None and shape.replaced)
            or (from_mm is not None and assessment.pixel_spacing_mm >= from_mm)
        )
        quiet_from = policy.rl_fallback_quiet_from_quanta
        if quanta is None and (follows or quiet_from is not None):
            quanta = _measured_quanta(e, policy, spectrum)
        quiet = (
            not follows
            and quiet_enough(quanta, policy)
            and est.length_px >= policy.rl_fallback_quiet_min_px
        )
        follows = follows or quiet
        cap = quiet_fallback_cap(e.shape, policy) if quiet else fallback_cap(e.shape, policy)
        law = replace(policy, rl_fallback_follows_noise=follows, rl_fallback_max_iterations=cap)
        steps = rl_fallback_iterations(quanta, law)
        quick = policy.rl_fallback_quiet_accelerated
        accelerated = follows and quick is not None and steps >= cap
        if accelerated and quick is not None:
            steps = quick
        if policy.fallback_leaves_shadows:
            shadows = _some_shadows(image01, policy)
        rl_psf = psf if fallback_kernel is None else fallback_kernel
        w = richardson_lucy(e, rl_psf, steps, accelerated, None if shadows is None else ~shadows)
        method = "richardson-lucy"
    raised = method == "wiener" and raise_by > 1.0 and not (shape is not None and shape.replaced)
    if raised:
        # the frame does not follow the straight kernel and the Wiener filter is kept: at the
        # floor's λ (whether it rang was judged at the λ without it, so the fallback's frames
        # stay the fallback's; the thirty-fifth round)
        balance *= raise_by
        w = wiener_exposure(e, psf, balance, policy.power, rl_after, floor)
    if (
        policy.sparse_prior_weight is not None
        and method == "wiener"
        and noisy_enough(quanta, policy)
    ):
        relative = balance / DEFAULT_BALANCE
        mu = policy.sparse_prior_weight * relative**-policy.sparse_prior_exponent
        w = sparse_exposure(e, psf, mu, policy.sparse_prior_alpha)
    shrunk = False
    if policy.shrinkage and method == "wiener":
        if quanta is None:
            quanta = _measured_quanta(e, policy, spectrum)
        if quanta is not None and math.isfinite(quanta) and quanta > 0:
            # an experiment's step (off in the node), its library in the train extra only
            from models.shrinkage import shrink, subband_noise

            sigmas = subband_noise(psf, balance, policy.power, float(np.mean(e)) / quanta)
            w = shrink(w, e, sigmas)
            shrunk = True
    out = np.clip(from_exposure(w, policy.log_range), 0.0, 1.0).astype(np.float32)
    if shadows is not None:
        # the shadows come back as they were: nothing was fitted there
        out = np.where(shadows, np.asarray(image01, dtype=np.float32), out)
    return Deconvolution(
        out,
        method,
        over,
        balance,
        quanta,
        steps,
        shape,
        shrunk,
        accelerated,
        consistency,
        raised,
        penalty_power=steep,
        penalty_floor=floor if method == "wiener" else None,
        drawing=est.drawing,
        shadow_share=0.0 if shadows is None else float(shadows.mean()),
        fallback_kernel_mean=method == "richardson-lucy" and fallback_kernel is not None,
    )


def noise_over_signal_floor(
    exposure: NDArray[np.float64],
    assessment: MotionAssessment,
    quanta: float | None,
    policy: MotionPolicy,
    spectrum: FrameSpectrum | None = None,
) -> PenaltyFloor | None:
    """The least Wiener penalty ``policy.penalty_noise_over_signal · σ²·|f|^β / A`` of a frame
    (:func:`models.noise_level.power_law_across`: the anatomy's power law across the motion and
    the white noise σ², read together). None where the option is off, the frame's pixels are
    not finer than ``policy.penalty_noise_finer_than_mm``, its noise is not measurable
    (``quanta`` None or infinite: no noise to keep out) or its power law is not. ``spectrum``:
    the frame's :func:`models.noise_level.frame_spectrum`, where already read."""
    factor = policy.penalty_noise_over_signal
    if factor is None or quanta is None or not math.isfinite(quanta):
        return None
    finer = policy.penalty_noise_finer_than_mm
    if finer is not None and assessment.pixel_spacing_mm >= finer:
        return None
    angle = assessment.estimate.angle_deg
    amplitude, beta, noise = power_law_across(exposure, angle, spectrum=spectrum)
    if not (math.isfinite(amplitude) and math.isfinite(beta)) or amplitude <= 0.0:
        return None
    return PenaltyFloor(factor * noise / amplitude, max(beta, 0.0))


def steep_penalty_power(
    exposure: NDArray[np.float64], estimate: MotionEstimate, policy: MotionPolicy
) -> float | None:
    """The Wiener penalty's power for a frame whose anatomy falls at least as steeply as
    ``policy.penalty_steep_beta`` across the motion: β − ``policy.penalty_slope_offset`` within
    ``policy.power`` … ``policy.penalty_steep_power``. None where the policy's power stays (the
    option off, a slope not measurable, a shallower one, or no steeper power)."""
    if policy.penalty_steep_beta is None:
        return None
    beta = spectral_slope_across(exposure, estimate.angle_deg)
    if not math.isfinite(beta) or beta < policy.penalty_steep_beta:
        return None
    power = min(max(beta - policy.penalty_slope_offset, policy.power), policy.penalty_steep_power)
    return power if power > policy.power else None


def refiner_inputs(
    blurred: NDArray[np.floating],
    assessment: MotionAssessment,
    policy: MotionPolicy,
    magnitude: MagnitudeEstimator | None,
    balance_factors: tuple[float, ...] = (),
    detector_magnitude: MagnitudeEstimator | None = None,
    *,
    fallback: bool = True,
) -> tuple[list[F32], Deconvolution]:
    """What a refiner is given, and the correction it refines.

    The inputs: the blurred image, the deconvolutions with the Wiener λ times each of
    ``balance_factors`` (the same kernel: the shape step's finding reused), and last the
    correction (a refiner's output is a residual on that one). The correction is the node's as
    shipped: the shape step with ``magnitude`` where one is given, the Richardson–Lucy fallback
    where the filter rings and ``fallback`` (a refiner of the Wiener filter alone: ``False``).
    """
    a = np.asarray(blurred, dtype=np.float32)
    done = deconvolve(
        a,
        assessment,
        policy,
        allow_fallback=fallback,
        magnitude=magnitude,
        detector_magnitude=detector_magnitude,
    )
    variants = [
        deconvolve(
            a,
            assessment,
            replace(policy, wiener_balance_factor=f * policy.wiener_balance_factor),
            allow_fallback=fallback,
            magnitude=magnitude,
            shape=done.shape,
            detector_magnitude=detector_magnitude,
        ).image
        for f in balance_factors
    ]
    return [a, *variants, done.image], done


def correct(
    image01: NDArray[np.floating], assessment: MotionAssessment, policy: MotionPolicy
) -> F32:
    """The corrected image, or the input unchanged when the assessment does not call it blurred."""
    return deconvolve(image01, assessment, policy).image
