"""The motion correction step: the blur gate's estimate in, the corrected image (or the input) out.

Two ways to correct, chosen by ``models.deblur`` in the settings:

* ``null`` (default): **blind Wiener deconvolution** (:func:`models.deblur.deconvolve`) with the
  kernel the blur gate estimated, in linear exposure, at the image's native pixel size; where the
  Wiener result rings at hard edges (collimation, markers; ``blur_gate.ringing_limit``),
  Richardson-Lucy deconvolution instead, and the SC/SR say which. It has no
  learned weights; its identity in the result objects is :data:`WIENER_NAME` with a version and a
  Device UID derived from its parameters (new parameters, new UID).
* a model folder: an ONNX model (:class:`node.pipeline.infer.Deblurrer`). One of two input
  channels is a **refiner** (trained by ``models.train_refiner``): the blind
  Wiener correction above first, then the refiner given the blurred image and that correction
  removes what deconvolution leaves (ringing, noise). A refiner whose manifest says it refines
  the node's correction (``training.refines: node_correction``) is given the correction as
  shipped, with the kernel shape step and the fallback; an older one the Wiener filter alone.
  One of one channel is a generator run on the blurred image alone (the old ``deblur-demo``).

The blind Wiener correction takes a **kernel shape step** by default (``models.kernel_shape``,
setting ``models.kernel_shape``; ``off`` leaves it out): a learned kernel magnitude, phase retrieval and the orientation by total
variation replace the straight kernel where the motion was curved (version
:data:`SHAPED_VERSION`; the SR says "curved motion").

Either way an image the estimate does not call blurred comes back **unchanged**: no correction by
guesswork. :attr:`Correction.applied` and :attr:`Correction.method` say what was done.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from models.deblur import (
    RL_BUDGET_PIXELS,
    RL_QUIET_BUDGET_PIXELS,
    Deconvolution,
    MotionAssessment,
    MotionPolicy,
    deconvolve,
    find_shape,
    refiner_inputs,
)
from models.kernel_shape import DETECTOR_THRESHOLDS, SECOND_THRESHOLDS, effective_thresholds
from models.manifest import ModelManifest, device_uid_for
from node.pipeline.infer import Deblurrer, KernelMagnitude
from node.pipeline.results.inputs import ModelInfo

F32 = NDArray[np.float32]
log = logging.getLogger(__name__)

WIENER_NAME = "sharpray-blind-wiener"
#: 0.6.1: 0.6.0 with the motion estimate's second look (the noise taken out of its spectrum where
#: it finds no motion; ``blur_gate.motion_estimate_noise_subtraction``).
WIENER_VERSION = "0.6.1"
#: The version with the curved-motion shape step (a learned kernel magnitude, models.kernel_shape);
#: 0.8.0: the regulariser halved where that step read the kernel's magnitude (0.7.0: not);
#: 0.9.0: the estimate's second look, as for 0.6.1; 0.10.0: the bundled magnitude network's third
#: version (sharpray-kernel-magnitude 0.3.0, the eleventh round; the network's name, version and
#: checksum are in the Device UID and the description whichever network is configured) and the
#: shape step's τ for a noisy frame 0.4 → 0.3 (the twelfth round); 0.12.0: the fourth network
#: (sharpray-kernel-magnitude 0.4.0, the twenty-second round).
SHAPED_VERSION = "0.12.0"
#: The version whose shape step also runs at pixels finer than 0.4 mm, with a native-pixel
#: magnitude network (models.kernel_magnitude_net.DETECTOR_NAME; the sixteenth round): 0.11.0
#: beside the third network, 0.13.0 beside the fourth.
DETECTOR_SHAPED_VERSION = "0.13.0"
#: The version whose correction is the pixel-wise mean of two: the shape step with the first
#: network (as :data:`SHAPED_VERSION`) and with a second (sharpray-kernel-magnitude 0.5.0, the fifth
#: network read under the eight symmetries of the square, at τ
#: :data:`models.kernel_shape.SECOND_THRESHOLDS`; the twenty-eighth round): 0.14.0, and 0.15.0
#: with the native-pixel network too.
MEAN_VERSION = "0.14.0"
DETECTOR_MEAN_VERSION = "0.15.0"
#: As :data:`MEAN_VERSION` / :data:`DETECTOR_MEAN_VERSION`, with the Richardson-Lucy fallback's
#: steps by the measured noise where a retrieved kernel takes it
#: (``MotionPolicy.shape_rl_follows_noise``; the twenty-ninth round): 0.16.0, 0.17.0.
RL_MEAN_VERSION = "0.16.0"
DETECTOR_RL_MEAN_VERSION = "0.17.0"
#: As :data:`MEAN_VERSION` / :data:`DETECTOR_MEAN_VERSION`, with the fallback's steps by the
#: measured noise for every kernel, the straight one too, at pixels of at least
#: ``MotionPolicy.rl_fallback_follows_noise_from_mm`` (the thirtieth round): 0.18.0, 0.19.0.
ALL_RL_MEAN_VERSION = "0.18.0"
DETECTOR_ALL_RL_MEAN_VERSION = "0.19.0"
#: As :data:`ALL_RL_MEAN_VERSION` / :data:`DETECTOR_ALL_RL_MEAN_VERSION`, with the fallback's cap
#: by the frame's size (``MotionPolicy.rl_fallback_budget_max_iterations``; the thirty-second
#: round): 0.20.0, 0.21.0.
BUDGET_RL_MEAN_VERSION = "0.20.0"
DETECTOR_BUDGET_RL_MEAN_VERSION = "0.21.0"
#: As :data:`ALL_RL_MEAN_VERSION` / :data:`DETECTOR_ALL_RL_MEAN_VERSION`, with λ at least 0.1 where
#: a frame finer than 0.4 mm does not follow the straight kernel's spectrum
#: (``MotionPolicy.kernel_consistency_min``; the thirty-fourth to thirty-sixth rounds, off):
#: 0.22.0, 0.23.0.
CONSISTENCY_RL_MEAN_VERSION = "0.22.0"
DETECTOR_CONSISTENCY_RL_MEAN_VERSION = "0.23.0"
#: As :data:`ALL_RL_MEAN_VERSION` / :data:`DETECTOR_ALL_RL_MEAN_VERSION`, with the Wiener penalty at
#: least the measured noise over the anatomy's power law (``MotionPolicy.
#: penalty_noise_over_signal``; the thirty-ninth and fortieth rounds): 0.25.0, 0.26.0 (0.24.0
#: stays the thirty-seventh and thirty-eighth rounds' reservation, never shipped).
NOISE_PENALTY_RL_MEAN_VERSION = "0.25.0"
DETECTOR_NOISE_PENALTY_RL_MEAN_VERSION = "0.26.0"
#: As :data:`NOISE_PENALTY_RL_MEAN_VERSION` / :data:`DETECTOR_NOISE_PENALTY_RL_MEAN_VERSION`, with
#: a strong, specific fit counted as blurred from a length a little under ``blurred_from_mm``
#: (``MotionPolicy.strong_short_from_mm``; the forty-second round): 0.27.0, 0.28.0
STRONG_SHORT_RL_MEAN_VERSION = "0.27.0"
DETECTOR_STRONG_SHORT_RL_MEAN_VERSION = "0.28.0"
#: As :data:`STRONG_SHORT_RL_MEAN_VERSION` / :data:`DETECTOR_STRONG_SHORT_RL_MEAN_VERSION`, with λ
#: at least 0.1 where a frame finer than 0.4 mm without noise does not follow its straight
#: kernel (``MotionPolicy.kernel_consistency_min`` with ``kernel_consistency_min_quanta``; the
#: forty-third and forty-fourth rounds): 0.29.0, 0.30.0
NOISELESS_CONSISTENCY_RL_MEAN_VERSION = "0.29.0"
DETECTOR_NOISELESS_CONSISTENCY_RL_MEAN_VERSION = "0.30.0"
#: As :data:`STRONG_SHORT_RL_MEAN_VERSION` / :data:`DETECTOR_STRONG_SHORT_RL_MEAN_VERSION`, with the
#: straight kernel drawn as the frame's spectrum follows (``MotionPolicy.
#: kernel_drawing_by_spectrum``; the forty-fifth to forty-seventh rounds; the default)
DRAWN_RL_MEAN_VERSION = "0.31.0"
DETECTOR_DRAWN_RL_MEAN_VERSION = "0.32.0"
#: As :data:`DETECTOR_DRAWN_RL_MEAN_VERSION`, the native-pixel network reading quiet frames only
#: (``MotionPolicy.shape_detector_min_quanta``; the forty-eighth round): 0.33.0
QUIET_DETECTOR_DRAWN_RL_MEAN_VERSION = "0.33.0"
#: As :data:`QUIET_DETECTOR_DRAWN_RL_MEAN_VERSION`, the retrieved kernel only where the straight
#: fit is not specific (``MotionPolicy.shape_detector_max_specificity``; the forty-ninth round;
#: the default, with the noise line at 5·10⁵ and λ as unread where the straight kernel is kept)
SPECIFIC_DETECTOR_DRAWN_RL_MEAN_VERSION = "0.34.0"
#: As :data:`SPECIFIC_DETECTOR_DRAWN_RL_MEAN_VERSION`, the Richardson-Lucy fallback with the
#: retrieved kernel at detector scale too (``MotionPolicy.shape_detector_fallback_unshaped``
#: false; the fiftieth round's candidate)
FALLBACK_DETECTOR_DRAWN_RL_MEAN_VERSION = "0.35.0"
#: ... the retrieved kernel in that fallback only where its fit is under
#: ``MotionPolicy.shape_detector_fallback_max_fit`` (the fifty-first round's candidate)
FITTING_FALLBACK_DETECTOR_DRAWN_RL_MEAN_VERSION = "0.36.0"
#: As :data:`DRAWN_RL_MEAN_VERSION` / :data:`SPECIFIC_DETECTOR_DRAWN_RL_MEAN_VERSION`, the
#: fallback leaving the shadows found in the frame out of its fit
#: (``MotionPolicy.fallback_leaves_shadows``; the fifty-fourth round, its steps the node's
#: float32 ones; the default): 0.39.0, 0.40.0 (0.37.0, 0.38.0 stay the fifty-third round's form
#: with float64 plain steps, never shipped)
SHADOW_RL_MEAN_VERSION = "0.39.0"
SHADOW_DETECTOR_RL_MEAN_VERSION = "0.40.0"
#: As :data:`SHADOW_RL_MEAN_VERSION` / :data:`SHADOW_DETECTOR_RL_MEAN_VERSION`, the motion
#: estimate's windows clear of the shadows found in the frame, that estimate taken where it
#: finds at least :data:`CLEAR_WINDOWS_FROM_MM` of motion at pixels finer than
#: :data:`CLEAR_WINDOWS_FINER_THAN_MM` (``MotionPolicy.estimate_avoids_shadows`` with
#: ``clear_windows_from_mm`` and ``clear_windows_finer_than_mm``; the fifty-sixth round; the
#: default): 0.41.0, 0.42.0
CLEAR_WINDOWS_FROM_MM = 2.0
CLEAR_WINDOWS_FINER_THAN_MM = 0.4
CLEAR_RL_MEAN_VERSION = "0.41.0"
CLEAR_DETECTOR_RL_MEAN_VERSION = "0.42.0"
#: As :data:`CLEAR_RL_MEAN_VERSION` / :data:`CLEAR_DETECTOR_RL_MEAN_VERSION`, the shadows found
#: widened by a square, a marker's corners too (``MotionPolicy.shadows_whole_corners``; the
#: fifty-seventh round; the default): 0.43.0, 0.44.0
CORNERS_RL_MEAN_VERSION = "0.43.0"
CORNERS_DETECTOR_RL_MEAN_VERSION = "0.44.0"
#: As :data:`CORNERS_RL_MEAN_VERSION` / :data:`CORNERS_DETECTOR_RL_MEAN_VERSION`, the kernel's
#: length read across the motion for estimates up to :data:`ACROSS_UP_TO_PX` where the ratio and
#: the template allow (``MotionPolicy.kernel_length_across_*``; the sixty-first round; the
#: default): 0.45.0, 0.46.0
ACROSS_UP_TO_PX = 5.5
ACROSS_MIN_FIT_GAIN = 0.25
ACROSS_MAX_TEMPLATE_DROP = 0.15
ACROSS_RL_MEAN_VERSION = "0.45.0"
ACROSS_DETECTOR_RL_MEAN_VERSION = "0.46.0"
#: As :data:`ACROSS_DETECTOR_RL_MEAN_VERSION`, the correction at detector scale the mean of the
#: one with the native-pixel network and with a second (``models.kernel_shape_detector_second``,
#: sharpray-kernel-magnitude-detector 0.2.0; the sixty-third and sixty-fourth rounds)
DETECTOR_SECOND_VERSION = "0.47.0"
#: As :data:`ACROSS_DETECTOR_RL_MEAN_VERSION`, the Richardson-Lucy fallback at detector scale
#: with the mean of the straight and the retrieved kernel where the retrieved one rang
#: (``MotionPolicy.shape_detector_fallback_kernel_mean``; the sixty-fifth round)
KERNEL_MEAN_DETECTOR_RL_MEAN_VERSION = "0.48.0"
#: As :data:`ACROSS_RL_MEAN_VERSION` / :data:`ACROSS_DETECTOR_RL_MEAN_VERSION`, the fallback's
#: steps by the measured noise also at pixels finer than 0.4 mm in a frame of at least
#: :data:`QUIET_FROM_QUANTA` quanta per pixel (``MotionPolicy.rl_fallback_quiet_from_quanta``;
#: the sixty-sixth round): 0.49.0, 0.50.0
QUIET_FROM_QUANTA = 5e5
QUIET_MIN_PX = 8.0
QUIET_RL_MEAN_VERSION = "0.49.0"
QUIET_DETECTOR_RL_MEAN_VERSION = "0.50.0"
_NOISE_WORDS = {
    "never": "",
    "always": ", measured noise subtracted",
    "second_look": ", looked at again with the measured noise subtracted where it found none",
}


def mean_versions(policy: MotionPolicy) -> tuple[str, str]:
    """The version of the correction with two magnitude networks' mean under ``policy``, without
    and with the detector-scale network: each round that changed it on top of the last. The
    fallback that leaves the shadows out (the fifty-fourth round, the default) on top of
    0.31.0 / 0.34.0 is 0.39.0 / 0.40.0; on top of an earlier or another candidate's version, that
    version with ``+shadows``. The estimate clear of the shadows from 2 mm at pixels finer
    than 0.4 mm (the fifty-sixth round, the default) on top of those is 0.41.0 / 0.42.0; on
    anything else ``+clear``; other limits say theirs (``+clear-<mm>mm[-finer-<mm>mm]``, 0 for
    none). The shadows widened by a square (the fifty-seventh round, the default) on top of
    0.41.0 / 0.42.0 is 0.43.0 / 0.44.0; on anything else that uses the shadows ``+corners``.
    The kernel's length read across the motion (the sixty-first round, the default) on top of
    0.43.0 / 0.44.0 is 0.45.0 / 0.46.0; on anything else, or in another form, ``+across``
    (``+across-<px>px`` for another limit, ``+across-ungated`` without both conditions). The
    detector-scale fallback with the mean of the two kernels (the sixty-fifth round) on top of
    0.46.0 is 0.48.0; on anything else ``+kernel-mean`` (the version without the native-pixel
    network is unchanged: it never reaches that fallback)."""
    plain, detector = _versions_with_the_length_across(policy)
    if policy.shape_detector_fallback_kernel_mean and policy.shape_detector_fallback_unshaped:
        detector = (
            KERNEL_MEAN_DETECTOR_RL_MEAN_VERSION
            if detector == ACROSS_DETECTOR_RL_MEAN_VERSION
            else f"{detector}+kernel-mean"
        )
    return plain, detector


def _with_quiet_steps(version: str, policy: MotionPolicy) -> str:
    """``version`` with the fallback's steps by the noise in quiet fine-pixel frames where the
    policy takes them (the sixty-sixth round): 0.45.0 / 0.46.0 become 0.49.0 / 0.50.0 at
    :data:`QUIET_FROM_QUANTA` for estimates of :data:`QUIET_MIN_PX` and more; anything else
    ``+quiet-steps`` (``+quiet-steps-<quanta>-from-<px>px`` at other lines)."""
    least = policy.rl_fallback_quiet_from_quanta
    if least is None or policy.ringing_limit is None or policy.rl_fallback_follows_noise:
        return version  # no fallback, or every frame follows the noise already
    shortest = policy.rl_fallback_quiet_min_px
    if least != QUIET_FROM_QUANTA or shortest != QUIET_MIN_PX:
        return f"{version}+quiet-steps-{least:g}-from-{shortest:g}px"
    quiet = {
        ACROSS_RL_MEAN_VERSION: QUIET_RL_MEAN_VERSION,
        ACROSS_DETECTOR_RL_MEAN_VERSION: QUIET_DETECTOR_RL_MEAN_VERSION,
    }
    return quiet.get(version, f"{version}+quiet-steps")


def _versions_with_the_length_across(policy: MotionPolicy) -> tuple[str, str]:
    """:func:`mean_versions` with the fallback at detector scale as up to 0.46.0."""
    plain, detector = _versions_with_the_corners(policy)
    most = policy.kernel_length_across_up_to_px
    if most is None:
        return plain, detector
    shipped = (
        most == ACROSS_UP_TO_PX
        and policy.kernel_length_across_min_fit_gain == ACROSS_MIN_FIT_GAIN
        and policy.kernel_length_across_max_template_drop == ACROSS_MAX_TEMPLATE_DROP
        and policy.kernel_length_across_mode == "shorter"
        and not policy.kernel_length_across_shape_reads_estimate
    )
    if shipped:
        across = {
            CORNERS_RL_MEAN_VERSION: ACROSS_RL_MEAN_VERSION,
            CORNERS_DETECTOR_RL_MEAN_VERSION: ACROSS_DETECTOR_RL_MEAN_VERSION,
        }
        return across.get(plain, f"{plain}+across"), across.get(detector, f"{detector}+across")
    form = "+across" + (f"-{most:g}px" if most != ACROSS_UP_TO_PX else "")
    if (
        policy.kernel_length_across_min_fit_gain is None
        or policy.kernel_length_across_max_template_drop is None
    ):
        form += "-ungated"
    return plain + form, detector + form


def _versions_with_the_corners(policy: MotionPolicy) -> tuple[str, str]:
    """:func:`mean_versions` with the kernel's length as the estimate's (up to 0.44.0)."""
    plain, detector = _versions_with_the_shadows(policy)
    if not policy.shadows_whole_corners or not (
        policy.fallback_leaves_shadows or policy.estimate_avoids_shadows
    ):
        return plain, detector  # no shadows found, or found as up to 0.42.0
    corners = {
        CLEAR_RL_MEAN_VERSION: CORNERS_RL_MEAN_VERSION,
        CLEAR_DETECTOR_RL_MEAN_VERSION: CORNERS_DETECTOR_RL_MEAN_VERSION,
    }
    return corners.get(plain, f"{plain}+corners"), corners.get(detector, f"{detector}+corners")


def _versions_with_the_shadows(policy: MotionPolicy) -> tuple[str, str]:
    """:func:`mean_versions` with the shadows found as up to 0.42.0 (a diamond's widening)."""
    plain, detector = _versions_fitting_whole_frames(policy)
    if policy.fallback_leaves_shadows:
        on_top = {
            DRAWN_RL_MEAN_VERSION: SHADOW_RL_MEAN_VERSION,
            SPECIFIC_DETECTOR_DRAWN_RL_MEAN_VERSION: SHADOW_DETECTOR_RL_MEAN_VERSION,
        }
        plain = on_top.get(plain, f"{plain}+shadows")
        detector = on_top.get(detector, f"{detector}+shadows")
    if not policy.estimate_avoids_shadows:
        return plain, detector
    limits = (policy.clear_windows_from_mm, policy.clear_windows_finer_than_mm)
    if limits != (CLEAR_WINDOWS_FROM_MM, CLEAR_WINDOWS_FINER_THAN_MM):
        from_mm, finer = (0.0 if x is None else x for x in limits)
        suffix = f"+clear-{from_mm:g}mm" + ("" if finer == 0 else f"-finer-{finer:g}mm")
        return plain + suffix, detector + suffix
    clear = {
        SHADOW_RL_MEAN_VERSION: CLEAR_RL_MEAN_VERSION,
        SHADOW_DETECTOR_RL_MEAN_VERSION: CLEAR_DETECTOR_RL_MEAN_VERSION,
    }
    return clear.get(plain, f"{plain}+clear"), clear.get(detector, f"{detector}+clear")


def _versions_fitting_whole_frames(policy: MotionPolicy) -> tuple[str, str]:
    """:func:`mean_versions` as if the fallback fitted the whole frame (up to 0.36.0)."""
    follows_from_mm = policy.rl_fallback_follows_noise_from_mm is not None
    penalty = policy.penalty_noise_over_signal is not None
    strong_short = policy.strong_short_from_mm is not None
    consistency = policy.kernel_consistency_min is not None
    if follows_from_mm and policy.rl_fallback_budget_max_iterations is not None:
        return BUDGET_RL_MEAN_VERSION, DETECTOR_BUDGET_RL_MEAN_VERSION
    if (
        follows_from_mm
        and consistency
        and policy.kernel_consistency_min_quanta is not None
        and penalty
        and strong_short
    ):
        return NOISELESS_CONSISTENCY_RL_MEAN_VERSION, DETECTOR_NOISELESS_CONSISTENCY_RL_MEAN_VERSION
    if follows_from_mm and consistency:
        return CONSISTENCY_RL_MEAN_VERSION, DETECTOR_CONSISTENCY_RL_MEAN_VERSION
    if follows_from_mm and penalty and strong_short and policy.kernel_drawing_by_spectrum:
        quiet = policy.shape_detector_min_quanta is not None
        if quiet and policy.shape_detector_max_specificity is not None:
            if not policy.shape_detector_fallback_unshaped:
                return DRAWN_RL_MEAN_VERSION, FALLBACK_DETECTOR_DRAWN_RL_MEAN_VERSION
            if policy.shape_detector_fallback_max_fit is not None:
                return DRAWN_RL_MEAN_VERSION, FITTING_FALLBACK_DETECTOR_DRAWN_RL_MEAN_VERSION
            return DRAWN_RL_MEAN_VERSION, SPECIFIC_DETECTOR_DRAWN_RL_MEAN_VERSION
        if quiet:
            return DRAWN_RL_MEAN_VERSION, QUIET_DETECTOR_DRAWN_RL_MEAN_VERSION
        return DRAWN_RL_MEAN_VERSION, DETECTOR_DRAWN_RL_MEAN_VERSION
    if follows_from_mm and penalty and strong_short:
        return STRONG_SHORT_RL_MEAN_VERSION, DETECTOR_STRONG_SHORT_RL_MEAN_VERSION
    if follows_from_mm and penalty:
        return NOISE_PENALTY_RL_MEAN_VERSION, DETECTOR_NOISE_PENALTY_RL_MEAN_VERSION
    if follows_from_mm:
        return ALL_RL_MEAN_VERSION, DETECTOR_ALL_RL_MEAN_VERSION
    if policy.shape_rl_follows_noise:
        return RL_MEAN_VERSION, DETECTOR_RL_MEAN_VERSION
    return MEAN_VERSION, DETECTOR_MEAN_VERSION


def wiener_info(
    policy: MotionPolicy,
    magnitude: ModelManifest | None = None,
    detector: ModelManifest | None = None,
    second: ModelManifest | None = None,
    detector_second: ModelManifest | None = None,
) -> ModelInfo:
    """The identity of the blind Wiener correction under ``policy``, with the kernel shape step
    of the ``magnitude`` model where one is given (and of the ``detector`` model at pixels finer
    than 0.4 mm), its correction averaged with the one of the ``second`` model where given."""
    if (detector is not None or second is not None) and magnitude is None:
        raise ValueError("the detector-scale and the second magnitude belong to the shape step")
    if detector_second is not None and detector is None:
        raise ValueError("the second native-pixel magnitude belongs to the native-pixel step")
    if magnitude is None:
        version = WIENER_VERSION
    elif second is None:
        version = SHAPED_VERSION if detector is None else DETECTOR_SHAPED_VERSION
    else:
        plain, on_detector = mean_versions(policy)
        version = plain if detector is None else on_detector
    if detector_second is not None:
        version = (
            DETECTOR_SECOND_VERSION
            if version == ACROSS_DETECTOR_RL_MEAN_VERSION
            else f"{version}+detector-second"
        )
    version = _with_quiet_steps(version, policy)
    described: dict[str, object] = {
        "name": WIENER_NAME,
        "version": version,
        "balance": policy.balance,
        "power": policy.power,
        "log_range": policy.log_range,
        "min_specificity": policy.min_specificity,
        "min_confidence": policy.min_confidence,
    }
    if policy.strong_fit_confidence is not None:
        described["strong_fit_confidence"] = policy.strong_fit_confidence
        described["strong_fit_min_specificity"] = policy.strong_fit_min_specificity
    if policy.strong_short_from_mm is not None:
        described["strong_short_from_mm"] = policy.strong_short_from_mm
        described["strong_short_min_confidence"] = policy.strong_short_min_confidence
        described["strong_short_min_specificity"] = policy.strong_short_min_specificity
    if policy.noise_floor_quanta is not None:
        described["noise_floor_quanta"] = policy.noise_floor_quanta
    if policy.estimate_eta_follows_noise:
        described["estimate_eta_follows_noise"] = True
        if policy.estimate_eta_follows_motion:
            described["estimate_eta_follows_motion"] = True
    if policy.penalty_steep_beta is not None:
        described["penalty_steep_beta"] = policy.penalty_steep_beta
        described["penalty_steep_power"] = policy.penalty_steep_power
        described["penalty_slope_offset"] = policy.penalty_slope_offset
    if policy.penalty_noise_over_signal is not None:
        described["penalty_noise_over_signal"] = policy.penalty_noise_over_signal
        if policy.penalty_noise_finer_than_mm is not None:
            described["penalty_noise_finer_than_mm"] = policy.penalty_noise_finer_than_mm
    if policy.estimate_avoids_shadows:
        described["estimate_avoids_shadows"] = True
        if policy.clear_windows_from_mm is not None:
            described["clear_windows_from_mm"] = policy.clear_windows_from_mm
        if policy.clear_windows_finer_than_mm is not None:
            described["clear_windows_finer_than_mm"] = policy.clear_windows_finer_than_mm
    if policy.shadows_whole_corners and (
        policy.fallback_leaves_shadows or policy.estimate_avoids_shadows
    ):
        described["shadows_whole_corners"] = True
    if policy.estimate_noise_subtraction != "never":
        described["estimate_noise_subtraction"] = policy.estimate_noise_subtraction
        described["noise_subtraction_skips_jpeg"] = policy.noise_subtraction_skips_jpeg
    if policy.balance_follows_noise:
        described["balance_exponent"] = policy.balance_exponent
        described["balance_range"] = list(policy.balance_range)
        if policy.balance_mismatch_floor is not None:
            described["balance_mismatch_floor"] = policy.balance_mismatch_floor
        if policy.kernel_consistency_min is not None:
            described["kernel_consistency_min"] = policy.kernel_consistency_min
            if policy.kernel_consistency_balance is not None:
                described["kernel_consistency_balance"] = policy.kernel_consistency_balance
            if policy.kernel_consistency_min_quanta is not None:
                described["kernel_consistency_min_quanta"] = policy.kernel_consistency_min_quanta
        if policy.balance_signal_aware:
            described["balance_signal_aware"] = True
        if policy.noise_mean_where_read:
            described["noise_mean_where_read"] = True
        if policy.balance_length_exponent:
            described["balance_length_exponent"] = policy.balance_length_exponent
            described["balance_reference_length_px"] = policy.balance_reference_length_px
    if policy.kernel_drawing_by_spectrum:
        described["kernel_drawing_by_spectrum"] = True
        described["kernel_drawing_above_noise"] = policy.kernel_drawing_above_noise
        described["kernel_drawing_margin"] = policy.kernel_drawing_margin
    if policy.kernel_length_across_up_to_px is not None:
        described["kernel_length_across_up_to_px"] = policy.kernel_length_across_up_to_px
        described["kernel_length_across_min_fit_gain"] = policy.kernel_length_across_min_fit_gain
        described["kernel_length_across_max_template_drop"] = (
            policy.kernel_length_across_max_template_drop
        )
        if policy.kernel_length_across_mode != "shorter":
            described["kernel_length_across_mode"] = policy.kernel_length_across_mode
        if policy.kernel_length_across_shape_reads_estimate:
            described["kernel_length_across_shape_reads_estimate"] = True
    if magnitude is not None:
        described["kernel_magnitude"] = [magnitude.name, magnitude.version, magnitude.sha256]
        if detector is not None:
            described["kernel_magnitude_detector"] = [
                detector.name,
                detector.version,
                detector.sha256,
            ]
            described["shape_detector_thresholds"] = list(
                policy.shape_detector_thresholds or DETECTOR_THRESHOLDS
            )
            if policy.shape_detector_least_px:
                described["shape_detector_least_px"] = policy.shape_detector_least_px
            if policy.shape_detector_fallback_unshaped:
                described["shape_detector_fallback_unshaped"] = True
                if policy.shape_detector_fallback_max_fit is not None:
                    most = policy.shape_detector_fallback_max_fit
                    described["shape_detector_fallback_max_fit"] = most
                if policy.shape_detector_fallback_kernel_mean:
                    described["shape_detector_fallback_kernel_mean"] = True
            if policy.shape_detector_min_quanta is not None:
                described["shape_detector_min_quanta"] = policy.shape_detector_min_quanta
            if not policy.shape_detector_kept_halved:
                described["shape_detector_kept_halved"] = False
            if policy.shape_detector_max_consistency is not None:
                described["shape_detector_max_consistency"] = policy.shape_detector_max_consistency
            if policy.shape_detector_max_specificity is not None:
                described["shape_detector_max_specificity"] = policy.shape_detector_max_specificity
            if detector_second is not None:
                described["kernel_magnitude_detector_second"] = [
                    detector_second.name,
                    detector_second.version,
                    detector_second.sha256,
                ]
        described["shape_thresholds"] = list(effective_thresholds(policy.shape_thresholds))
        if second is not None:
            described["kernel_magnitude_second"] = [second.name, second.version, second.sha256]
            described["shape_second_thresholds"] = list(SECOND_THRESHOLDS)
        described["shape_finest_spacing_mm"] = policy.shape_finest_spacing_mm
        described["shape_smallest_frame_px"] = policy.shape_smallest_frame_px
        if policy.checked_balance_factor != 1.0:
            described["checked_balance_factor"] = policy.checked_balance_factor
        if policy.shape_balance_factor != 1.0:
            described["shape_balance_factor"] = policy.shape_balance_factor
        if policy.shape_rl_iterations:
            described["shape_rl_iterations"] = policy.shape_rl_iterations
        if policy.shape_rl_only:
            described["shape_rl_only"] = policy.shape_rl_only
    if policy.wiener_balance_factor != 1.0:  # experiments' settings (models.tune_balance)
        described["wiener_balance_factor"] = policy.wiener_balance_factor
    if policy.shrinkage:
        described["shrinkage"] = True
    if policy.rl_iterations:
        described["rl_iterations"] = policy.rl_iterations
    if policy.ringing_limit is not None:
        described["ringing_limit"] = policy.ringing_limit
        if policy.fallback_leaves_shadows:
            described["fallback_leaves_shadows"] = True
        described["rl_fallback_iterations"] = policy.rl_fallback_iterations
        shaped_rl = magnitude is not None and policy.shape_rl_follows_noise
        if shaped_rl:
            described["shape_rl_follows_noise"] = True
        from_mm = policy.rl_fallback_follows_noise_from_mm
        if policy.rl_fallback_follows_noise:
            # the law for every frame: the pixel size from which it would hold changes nothing
            described["rl_fallback_follows_noise"] = True
        elif from_mm is not None:
            described["rl_fallback_follows_noise_from_mm"] = from_mm
        if policy.rl_fallback_follows_noise or shaped_rl or from_mm is not None:
            described["rl_fallback_max_iterations"] = policy.rl_fallback_max_iterations
            budget = policy.rl_fallback_budget_max_iterations
            if budget is not None:
                described["rl_fallback_budget_max_iterations"] = budget
        if policy.rl_fallback_quiet_from_quanta is not None:
            described["rl_fallback_quiet_from_quanta"] = policy.rl_fallback_quiet_from_quanta
            described["rl_fallback_quiet_min_px"] = policy.rl_fallback_quiet_min_px
    params = json.dumps(described, sort_keys=True)
    return ModelInfo(
        name=WIENER_NAME,
        version=version,
        device_uid=device_uid_for(hashlib.sha256(params.encode()).hexdigest()),
        demonstration_only=True,
        description=(
            "Blind straight-motion estimate (spectral template"
            + _NOISE_WORDS[policy.estimate_noise_subtraction]
            + (
                f"; up to {policy.kernel_length_across_up_to_px:g} px, its length read from the"
                " spectrum along the motion over the spectrum across it where that is shorter"
                if policy.kernel_length_across_up_to_px is not None
                else ""
            )
            + ")"
            + (
                f", curved paths retrieved from a learned kernel magnitude ({magnitude.name} "
                f"{magnitude.version}"
                + (
                    f"; {detector.name} {detector.version} at pixels finer than "
                    f"{policy.shape_finest_spacing_mm:g} mm"
                    if detector is not None and policy.shape_finest_spacing_mm is not None
                    else ""
                )
                + ")"
                if magnitude is not None
                else ""
            )
            + (
                f", averaged with the same correction by a second magnitude ({second.name} "
                f"{second.version}) where the first read the frame"
                if second is not None
                else ""
            )
            + (
                f", at detector scale averaged with the same correction by a second native-pixel "
                f"magnitude ({detector_second.name} {detector_second.version}) where the first "
                "read the frame"
                if detector_second is not None
                else ""
            )
            + " and Wiener deconvolution"
            + (" regularised by the measured noise" if policy.balance_follows_noise else "")
            + (
                ", its penalty at least the measured noise over the anatomy's power spectrum"
                + (
                    f" at pixels finer than {policy.penalty_noise_finer_than_mm:g} mm"
                    if policy.penalty_noise_finer_than_mm is not None
                    else ""
                )
                if policy.penalty_noise_over_signal is not None
                else ""
            )
            + (
                f" (times {policy.checked_balance_factor:g} where the kernel's shape was checked)"
                if magnitude is not None and policy.checked_balance_factor != 1.0
                else ""
            )
            + (
                f" with {policy.rl_iterations} Richardson-Lucy steps"
                if policy.rl_iterations
                else ""
            )
            + (
                f" (Richardson-Lucy, {_rl_steps(policy, magnitude is not None)}, where it rings "
                "at hard edges)"
                if policy.ringing_limit is not None
                else ""
            )
            + " in linear exposure; not validated clinically, not for diagnostic use."
        ),
    )


def _budget_words(policy: MotionPolicy) -> str:
    budget = policy.rl_fallback_budget_max_iterations
    if budget is None or budget <= policy.rl_fallback_max_iterations:
        return ""
    side = int(RL_BUDGET_PIXELS**0.5)
    return f", up to {budget} in a frame smaller than {side} x {side} px"


def _rl_steps(policy: MotionPolicy, shaped: bool = False) -> str:
    n, top = policy.rl_fallback_iterations, policy.rl_fallback_max_iterations
    if policy.rl_fallback_follows_noise:
        return f"{n}-{top} steps by the measured noise" + _budget_words(policy)
    where = []
    if policy.rl_fallback_follows_noise_from_mm is not None:
        where.append(f"at pixels of {policy.rl_fallback_follows_noise_from_mm:g} mm and more")
    if shaped and policy.shape_rl_follows_noise:
        where.append("for a retrieved kernel")
    quiet = policy.rl_fallback_quiet_from_quanta
    if quiet is not None:
        where.append(
            f"in frames of at least {quiet:g} quanta per pixel for motion of at least"
            f" {policy.rl_fallback_quiet_min_px:g} px (fewer steps in a frame larger than"
            f" 2048 x {RL_QUIET_BUDGET_PIXELS // 2048} px)"
        )
    if where:
        said = f"{n} steps, {n}-{top} by the measured noise " + " and ".join(where)
        return said + _budget_words(policy)
    return f"{n} steps"


@dataclass(frozen=True)
class Correction:
    image: F32  # [H, W] in [0, 1], bright = dense
    applied: bool
    method: str  # what was done, for the SR and the logs


#: The parameters of the Wiener correction a refiner was trained on, compared with the node's.
_CORRECTION_KEYS = ("balance", "balance_follows_noise", "power", "log_range", "rl_iterations")
_DEFAULTS_BEFORE_RECORDED = {"rl_iterations": 0, "balance_follows_noise": False}


def refiner_policy_mismatch(trained_on: object, policy: MotionPolicy) -> list[str]:
    """Which deconvolution parameters differ between a refiner's training (its manifest's
    ``training.correction_policy``) and the node's; empty when they agree or it does not say."""
    if not isinstance(trained_on, dict):
        return []
    # Refiners trained before Richardson-Lucy steps existed saw the Wiener filter alone, and
    # before sharpray-blind-wiener 0.6.0 a fixed regulariser.
    trained = {**_DEFAULTS_BEFORE_RECORDED, **trained_on}
    return [
        f"{k} {trained[k]} (trained) vs {getattr(policy, k)} (node)"
        for k in _CORRECTION_KEYS
        if k in trained and float(trained[k]) != float(getattr(policy, k))
    ]


def shape_step_mismatch(trained_on: object, magnitude: ModelManifest | None) -> list[str]:
    """How the kernel shape step a refiner of the node's correction was trained with (its
    manifest's ``training.kernel_magnitude``) differs from the node's; empty when they agree."""
    if not isinstance(trained_on, dict):
        return []
    want = f"{trained_on.get('name')} {trained_on.get('version')}"
    if magnitude is None:
        return [f"kernel shape step with {want} (trained) vs none (node: models.kernel_shape off)"]
    have = f"{magnitude.name} {magnitude.version}"
    return [] if want == have else [f"kernel magnitude {want} (trained) vs {have} (node)"]


class Corrector:
    """Corrects a [0, 1] image (stored range, bright = dense) given its motion assessment."""

    def __init__(
        self,
        policy: MotionPolicy,
        generator: Deblurrer | None = None,
        magnitude: KernelMagnitude | None = None,
        detector_magnitude: KernelMagnitude | None = None,
        second_magnitude: KernelMagnitude | None = None,
        detector_second: KernelMagnitude | None = None,
    ) -> None:
        self.policy = policy
        self.generator = generator
        if detector_second is not None and (detector_magnitude is None or generator is not None):
            raise ValueError(
                "the second native-pixel kernel magnitude belongs to the native-pixel shape step "
                "of the blind Wiener correction without a refiner"
            )
        self.detector_second = detector_second
        if second_magnitude is not None and (magnitude is None or generator is not None):
            raise ValueError(
                "the second kernel magnitude belongs to the shape step of the blind Wiener "
                "correction without a refiner"
            )
        self.second_magnitude = second_magnitude
        self.second_policy = replace(policy, shape_thresholds=SECOND_THRESHOLDS)
        if (
            generator is not None
            and magnitude is not None
            and not generator.refines_node_correction
        ):
            raise ValueError("the kernel shape step belongs to the blind Wiener correction only")
        if detector_magnitude is not None and magnitude is None:
            raise ValueError("the detector-scale magnitude belongs to the kernel shape step")
        self.magnitude = magnitude
        self.detector_magnitude = detector_magnitude
        if generator is not None and generator.refines_correction:
            m = generator.model.manifest
            differs = refiner_policy_mismatch(m.training.get("correction_policy"), policy)
            if generator.refines_node_correction:
                differs += shape_step_mismatch(
                    m.training.get("kernel_magnitude"),
                    magnitude.model.manifest if magnitude is not None else None,
                )
            if differs:
                log.warning(
                    "refiner %s was trained on another Wiener correction than the node's "
                    "blur_gate settings give (%s): its output may be worse than the correction",
                    m.display_name,
                    "; ".join(differs),
                )
        self.info = (
            ModelInfo.from_manifest(generator.model.manifest)
            if generator is not None
            else wiener_info(
                policy,
                magnitude.model.manifest if magnitude is not None else None,
                detector_magnitude.model.manifest if detector_magnitude is not None else None,
                second_magnitude.model.manifest if second_magnitude is not None else None,
                detector_second.model.manifest if detector_second is not None else None,
            )
        )

    def refines_at(self, pixel_spacing_mm: float) -> bool:
        """Whether the refiner is made for this pixel size (its manifest's intended use)."""
        if self.generator is None:
            return False
        use = self.generator.model.manifest.intended_use
        if use is None or use.pixel_spacing_mm is None:
            return True
        lo, hi = use.pixel_spacing_mm
        return lo <= pixel_spacing_mm <= hi

    @property
    def provider(self) -> str:
        return self.generator.model.provider if self.generator is not None else "numpy (CPU)"

    def __call__(self, unit: NDArray[np.floating], motion: MotionAssessment) -> Correction:
        a = np.asarray(unit, dtype=np.float32)
        if not motion.blurred:
            return Correction(a, False, "not corrected: no relevant motion found")
        if motion.template_length_px is not None and motion.estimate.kernel().size == 1:
            template_mm = motion.template_length_px * motion.pixel_spacing_mm
            return Correction(
                a,
                False,
                "not corrected: the motion's length read from the spectrum along it over the "
                f"spectrum across it is under one pixel (the straight template read "
                f"{template_mm:.1f} mm)",
            )
        g = self.generator
        if g is not None and g.refines_correction:
            # a refiner of the node's correction as shipped gets the shape step and the fallback;
            # one trained on the Wiener filter's output alone gets that, without the fallback
            on_node = g.refines_node_correction
            refine = self.refines_at(motion.pixel_spacing_mm)
            inputs, done = refiner_inputs(
                a,
                motion,
                self.policy,
                self.magnitude if on_node else None,
                g.variant_balance_factors if refine else (),
                self.detector_magnitude if on_node else None,
                fallback=on_node,
            )
            said = self._said(motion, done)
            if not refine:
                return Correction(
                    done.image,
                    True,
                    f"{said} (not refined: "
                    f"{motion.pixel_spacing_mm:g} mm pixels are outside {self.info.name}'s range)",
                )
            return Correction(
                g(a, done.image, inputs[1:-1]), True, f"{said}, refined by {self.info.name}"
            )
        if g is not None:
            what, _ = _straight_words(motion, self.policy)
            return Correction(g(a), True, f"{self.info.name} generator ({what})")
        done = deconvolve(
            a,
            motion,
            self.policy,
            magnitude=self.magnitude,
            detector_magnitude=self.detector_magnitude,
        )
        said = self._said(motion, done)
        second = self.second_magnitude
        finest = self.policy.shape_finest_spacing_mm
        if finest is not None and motion.pixel_spacing_mm < finest:
            return self._detector_mean(a, motion, done, said)
        if second is None or done.shape is None or not done.shape.checked:
            # the second network reads only where the first did, at its scale (elsewhere both
            # corrections would be the same)
            return Correction(done.image, True, said)
        shape = find_shape(a, motion, self.second_policy, second)
        if shape is not None and not shape.replaced and not done.shape.replaced:
            # both networks read straight motion: the second correction would be the first
            other = done
        else:
            other = deconvolve(a, motion, self.second_policy, magnitude=second, shape=shape)
        return self._mean_of(motion, done, other, said, "kernel magnitude", second)

    def _detector_mean(
        self, a: F32, motion: MotionAssessment, done: Deconvolution, said: str
    ) -> Correction:
        """At detector scale: ``done``, or where the native-pixel network read the frame and a
        second one is configured, the pixel-wise mean of ``done`` and the same correction with
        the second network (where neither retrieved a kernel the two are the same)."""
        second = self.detector_second
        if second is None or done.shape is None or not done.shape.checked:
            # the second network would read the frame only where the first did (the same
            # gates: quiet frame, length, shadows), so elsewhere both corrections are the same
            return Correction(done.image, True, said)
        assert self.magnitude is not None  # the constructor's check
        shape = find_shape(a, motion, self.policy, self.magnitude, second)
        if shape is not None and not shape.replaced and not done.shape.replaced:
            return Correction(done.image, True, said)
        other = deconvolve(
            a, motion, self.policy, magnitude=self.magnitude, shape=shape, detector_magnitude=second
        )
        return self._mean_of(motion, done, other, said, "native-pixel kernel magnitude", second)

    def _mean_of(
        self,
        motion: MotionAssessment,
        done: Deconvolution,
        other: Deconvolution,
        said: str,
        kind: str,
        second: KernelMagnitude,
    ) -> Correction:
        """The pixel-wise mean of two corrections, and what the SR says of it (``kind``: what
        the ``second`` network that made ``other`` is)."""
        mean = ((done.image.astype(np.float64) + other.image) / 2).astype(np.float32)
        m = second.model.manifest
        return Correction(
            mean,
            True,
            f"mean of two corrections: {said}; and, with {kind} {m.name} {m.version},"
            f" {self._said(motion, other)}",
        )

    def _said(self, motion: MotionAssessment, done: Deconvolution) -> str:
        """What the SR says of the blind correction ``done``."""
        what, how = _straight_words(motion, self.policy)
        if done.curved:
            what = (
                f"{motion.motion_mm:.1f} mm curved motion (kernel retrieved from its magnitude)"
                + _across_words(motion)
            )
        elif done.drawing != "nearest":
            what += (
                f" (kernel drawn {DRAWING_WORDS[done.drawing]}, as the frame's spectrum follows)"
            )
        left_out = ""
        if done.method == "richardson-lucy":
            how = (
                f"Richardson-Lucy deconvolution ({done.rl_iterations} steps; the "
                "Wiener filter rang at hard edges)"
            )
            if done.fallback_kernel_mean:
                how += (
                    " with the mean of the straight kernel and one retrieved from its magnitude "
                    "(with the retrieved kernel alone the Wiener filter rang)"
                )
            if done.shadow_share > 0:
                left_out = (
                    f"; {100 * done.shadow_share:.0f} % of the frame (shadows that need not have "
                    "moved: collimation, markers, borders) left out of the fit and returned "
                    "unchanged"
                )
        return f"{how} of {what}{_regularisation(done)}{left_out}"


#: how the SR names a drawing of the straight kernel other than the nearest pixels
DRAWING_WORDS = {"bilinear": "bilinear", "lanczos": "band-limited (Lanczos-3)"}


def _straight_words(motion: MotionAssessment, policy: MotionPolicy) -> tuple[str, str]:
    """What the SR says of the motion (as estimated straight) and of the Wiener filter."""
    e = motion.estimate
    what = f"{motion.motion_mm:.1f} mm straight motion at {e.angle_deg:.0f} degrees"
    what += _across_words(motion)
    steps = policy.rl_iterations
    how = "Wiener deconvolution" + (f" and {steps} Richardson-Lucy steps" if steps else "")
    return what, how


def _across_words(motion: MotionAssessment) -> str:
    """What the SR says where the motion's length was read across it ("" where it was not)."""
    if motion.template_length_px is None:
        return ""
    template_mm = motion.template_length_px * motion.pixel_spacing_mm
    return (
        " (its length read from the spectrum along the motion over the spectrum across it;"
        f" the straight template read {template_mm:.1f} mm)"
    )


def _regularisation(done: Deconvolution) -> str:
    """What set the Wiener filter's regulariser, for the SR ("" when it was not measured)."""
    if done.method != "wiener" or done.balance is None or done.noise_quanta is None:
        return ""
    n = done.noise_quanta
    noise = (
        f"the noise measured ({n:,.0f} quanta per pixel)"
        if math.isfinite(n)
        else "a frame without measurable noise"
    )
    said = f"; regularisation {done.balance:.3g} for {noise}"
    if done.consistency_raised and done.kernel_consistency is not None:
        said += (
            " (raised: the frame's spectrum follows the estimated kernel's poorly, consistency "
            f"{done.kernel_consistency:.2f})"
        )
    if done.penalty_floor is not None:
        said += (
            ", at least the measured noise over the anatomy's power spectrum (falling as "
            f"f^-{done.penalty_floor.exponent:.1f})"
        )
    return said
