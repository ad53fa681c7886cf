"""The blur gate: judge a radiograph's motion blur first, tell the X-ray room, correct only if needed.

:func:`assess` estimates the motion that blurred one decoded radiograph, from the image alone
(:func:`models.deblur.assess_motion`: straight-motion length and direction from the anisotropy of
its spectrum, in linear exposure), in **millimetres** through the header's Imager Pixel Spacing
(else Pixel Spacing, else an assumed spacing, :func:`assumed_spacing_mm`, and the results say it was
assumed and which). The
decision compares the motion with ``blurred_from_mm`` and ``severe_from_mm`` (a strong, specific fit
with ``strong_fit_blurred_from_mm``, a little lower); an image whose motion cannot be estimated
specifically (``min_specificity``) is ``sharp``. The correction step uses the
same estimate (:class:`BlurAssessment.motion`), so the gate and the correction never disagree.
The figures behind the defaults (false alarms on real sharp radiographs, detection at 0.5/1/2 mm)
are in docs/models.md (``python -m models.evaluate_blur_gate``).

:func:`build_notice_sr` makes the fast notice for the X-ray room: a Comprehensive 3D SR (TID 1500)
with one image-quality measurement group (finding type DCM 111101 "Image Quality") that holds the
estimated motion in mm, the decision as a qualitative evaluation and references the image. It is
marked as an image quality result (series description, and Preliminary/Unverified flags), never a
diagnosis.

Private codes (scheme ``99SHARPRAY``): ``SR-MOTION-MM`` "Estimated motion during exposure",
``SR-BLUR-GATE`` "Motion blur assessment" with values ``SR-BLUR-SHARP`` "No relevant
motion blur", ``SR-BLUR-BLURRED`` "Motion blurred", ``SR-BLUR-SEVERE`` "Severely motion blurred";
``SR-CLASSIFIED`` "Image classified" with values ``SR-CLS-ORIGINAL`` "Original image" and
``SR-CLS-CORRECTED`` "Motion-corrected image" (in the main SR).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Literal

import highdicom as hd
import numpy as np
import pydicom
from numpy.typing import NDArray
from pydicom.sr.codedict import codes

from models.deblur import MotionAssessment, MotionPolicy, assess_motion
from node.config import BlurGateSettings
from node.pipeline.preprocess import (
    Radiograph,
    UnsupportedImage,
    decode,
    header_pixel_spacing_mm,
    to_unit_stored_range,
    to_unit_voi,
)
from node.pipeline.results.common import (
    LO_MAX,
    PRIVATE_SCHEME,
    coding_schemes,
    processing_equipment,
    stable_uid,
)
from node.pipeline.results.inputs import MotionReport, Producer
from node.pipeline.results.sanitize import sanitize_header
from node.pipeline.results.sr_parts import (
    IMAGING_PROCEDURE,
    add_items,
    comment,
    library_view,
    set_library_modalities,
    whole_image,
)

Decision = Literal["sharp", "blurred", "severe"]
Policy = Literal["always", "when_blurred", "never"]

IMAGE_QUALITY = hd.sr.CodedConcept("111101", "DCM", "Image Quality")
BLUR_SCORE = hd.sr.CodedConcept("SR-MOTION-MM", PRIVATE_SCHEME, "Estimated motion during exposure")
UNIT_MM = hd.sr.CodedConcept("mm", "UCUM", "millimeter")
BLUR_ASSESSMENT = hd.sr.CodedConcept("SR-BLUR-GATE", PRIVATE_SCHEME, "Motion blur assessment")
DECISION_CODES: dict[str, hd.sr.CodedConcept] = {
    "sharp": hd.sr.CodedConcept("SR-BLUR-SHARP", PRIVATE_SCHEME, "No relevant motion blur"),
    "blurred": hd.sr.CodedConcept("SR-BLUR-BLURRED", PRIVATE_SCHEME, "Motion blurred"),
    "severe": hd.sr.CodedConcept("SR-BLUR-SEVERE", PRIVATE_SCHEME, "Severely motion blurred"),
}
CLASSIFIED_IMAGE = hd.sr.CodedConcept("SR-CLASSIFIED", PRIVATE_SCHEME, "Image classified")
CLASSIFIED_CODES: dict[str, hd.sr.CodedConcept] = {
    "original": hd.sr.CodedConcept("SR-CLS-ORIGINAL", PRIVATE_SCHEME, "Original image"),
    "corrected": hd.sr.CodedConcept("SR-CLS-CORRECTED", PRIVATE_SCHEME, "Motion-corrected image"),
}
UNIT_NONE = hd.sr.CodedConcept("1", "UCUM", "no units")
SPACING_USED = hd.sr.CodedConcept(
    "SR-SPACING", PRIVATE_SCHEME, "Pixel spacing used for the motion estimate"
)
SPACING_CODES: dict[str, hd.sr.CodedConcept] = {
    "header": hd.sr.CodedConcept("SR-SPACING-HEADER", PRIVATE_SCHEME, "From the image header"),
    "assumed": hd.sr.CodedConcept(
        "SR-SPACING-ASSUMED", PRIVATE_SCHEME, "Assumed: the header gives no pixel spacing"
    ),
}
_DECISION_WORDS = {
    "sharp": "no relevant motion blur",
    "blurred": "MOTION BLURRED",
    "severe": "SEVERELY MOTION BLURRED",
}


def decision_text(motion: MotionReport) -> str:
    """The blur gate's answer in words, for the SR comments (OHIF shows them as labels)."""
    words = _DECISION_WORDS.get(motion.decision, motion.decision)
    spacing = "assumed pixel spacing" if motion.spacing_assumed else "pixel spacing from header"
    if motion.pixel_spacing_mm is not None:
        spacing += f" {motion.pixel_spacing_mm:.2g} mm"
    return f"Motion blur check: {words} (estimated motion {motion.motion_mm:.1f} mm, {spacing})"


#: Smallest side the gate scores; smaller images are refused as UnsupportedImage.
MIN_SIDE = 16

#: Series number of the notice SR.
NOTICE_SERIES_NUMBER = 9010


@dataclass(frozen=True)
class BlurAssessment:
    """The gate's answer for one radiograph: the motion estimate and what it supports."""

    motion: MotionAssessment
    spacing_assumed: bool  # no usable pixel spacing in the header: assumed_spacing_mm used
    seconds: float  # time to compute it

    @property
    def decision(self) -> Decision:
        return self.motion.decision

    @property
    def score(self) -> float:
        """The estimated motion in mm (0 when no motion was found specifically)."""
        return self.motion.motion_mm if self.motion.blurred else 0.0

    def report(self) -> MotionReport:
        """What the result objects state of this assessment."""
        return MotionReport(
            self.score, self.decision, self.spacing_assumed, self.motion.pixel_spacing_mm
        )

    @property
    def blurred(self) -> bool:
        return self.decision != "sharp"

    def to_detail(self) -> dict[str, object]:
        e = self.motion.estimate
        return {
            "motion_mm": round(self.score, 3),
            "length_px": round(e.length_px, 2),
            "angle_deg": round(e.angle_deg, 1),
            "specificity": round(e.specificity, 4),
            "pixel_spacing_mm": round(self.motion.pixel_spacing_mm, 4),
            "spacing_assumed": self.spacing_assumed,
            "decision": self.decision,
        }


def policy(settings: BlurGateSettings) -> MotionPolicy:
    """The motion thresholds and deconvolution parameters of the settings."""
    return MotionPolicy(
        blurred_from_mm=settings.blurred_from_mm,
        severe_from_mm=settings.severe_from_mm,
        min_specificity=settings.min_specificity,
        min_confidence=settings.min_confidence,
        strong_fit_confidence=settings.strong_fit_confidence,
        strong_fit_min_specificity=settings.strong_fit_min_specificity,
        strong_short_from_mm=settings.strong_fit_blurred_from_mm,
        strong_short_min_confidence=settings.strong_fit_blurred_confidence,
        strong_short_min_specificity=settings.strong_fit_blurred_specificity,
        max_motion_mm=settings.max_motion_mm,
        balance=settings.wiener_balance,
        balance_follows_noise=settings.wiener_balance_follows_noise,
        balance_exponent=settings.wiener_balance_exponent,
        noise_mean_where_read=settings.noise_measured_where_read,
        balance_length_exponent=settings.wiener_balance_length_exponent,
        balance_range=(settings.wiener_balance_min, settings.wiener_balance_max),
        balance_mismatch_floor=settings.wiener_balance_mismatch_floor,
        kernel_consistency_min=settings.kernel_consistency_min,
        kernel_consistency_min_quanta=settings.kernel_consistency_min_quanta,
        shape_detector_min_quanta=settings.shape_detector_min_quanta,
        shape_detector_max_consistency=settings.shape_detector_max_consistency,
        shape_detector_max_specificity=settings.shape_detector_max_specificity,
        shape_detector_kept_halved=settings.shape_detector_kept_halved,
        shape_detector_fallback_unshaped=settings.shape_detector_fallback_unshaped,
        shape_detector_fallback_max_fit=settings.shape_detector_fallback_max_fit,
        shape_detector_fallback_kernel_mean=settings.shape_detector_fallback_kernel_mean,
        fallback_leaves_shadows=settings.fallback_leaves_shadows,
        estimate_avoids_shadows=settings.estimate_clear_of_shadows_from_mm is not None,
        clear_windows_from_mm=settings.estimate_clear_of_shadows_from_mm,
        clear_windows_finer_than_mm=settings.estimate_clear_of_shadows_finer_than_mm,
        shadows_whole_corners=settings.shadows_whole_corners,
        kernel_drawing_by_spectrum=settings.kernel_drawing_by_spectrum,
        kernel_drawing_above_noise=settings.kernel_drawing_above_noise,
        kernel_drawing_margin=settings.kernel_drawing_margin,
        kernel_length_across_up_to_px=settings.kernel_length_across_up_to_px,
        kernel_length_across_min_fit_gain=settings.kernel_length_across_min_fit_gain,
        kernel_length_across_max_template_drop=settings.kernel_length_across_max_template_drop,
        checked_balance_factor=settings.wiener_balance_checked_factor,
        power=settings.wiener_power,
        penalty_noise_over_signal=settings.wiener_penalty_noise_over_signal,
        penalty_noise_finer_than_mm=settings.wiener_penalty_noise_finer_than_mm,
        rl_iterations=settings.richardson_lucy_steps,
        ringing_limit=settings.ringing_limit,
        rl_fallback_iterations=settings.rl_fallback_steps,
        rl_fallback_follows_noise=settings.rl_fallback_follows_noise,
        rl_fallback_max_iterations=settings.rl_fallback_max_steps,
        shape_rl_follows_noise=settings.shape_rl_follows_noise,
        rl_fallback_follows_noise_from_mm=settings.rl_follows_noise_from_mm,
        rl_fallback_budget_max_iterations=settings.rl_fallback_budget_max_steps,
        rl_fallback_quiet_from_quanta=settings.rl_fallback_quiet_from_quanta,
        rl_fallback_quiet_min_px=settings.rl_fallback_quiet_min_px,
        noise_floor_quanta=settings.noise_floor_quanta,
        estimate_noise_subtraction=settings.motion_estimate_noise_subtraction,
        noise_subtraction_skips_jpeg=settings.noise_subtraction_skips_jpeg,
    )


def should_correct(policy: Policy, assessment: BlurAssessment | None) -> bool:
    """Whether a pipeline with ``policy`` corrects an image the gate judged so."""
    if policy == "always":
        return True
    if policy == "never":
        return False
    return assessment is None or assessment.blurred


#: Header attributes giving the pixel spacing, in order of preference (the detector's first:
#: motion blurs the image at the detector plane).
SPACING_KEYWORDS = ("ImagerPixelSpacing", "PixelSpacing", "NominalScannedPixelSpacing")
#: A pixel spacing outside this range (mm) is not believed.
SPACING_RANGE_MM = (0.02, 2.0)


def pixel_spacing_mm(ds: pydicom.Dataset) -> float | None:
    """The header's pixel spacing in mm (mean of row and column), or None if none is usable."""
    return header_pixel_spacing_mm(ds, SPACING_KEYWORDS, SPACING_RANGE_MM)


#: Where the assumed spacing is derived from the image size, it stays within this range (the pixel
#: sizes the correction is made for; a 224 px thumbnail is not taken for 2 mm pixels).
ASSUMED_SPACING_RANGE_MM = (0.1, 0.7)


def assumed_spacing_mm(shape: tuple[int, ...], settings: BlurGateSettings) -> float:
    """The pixel spacing assumed for an image whose header gives none.

    ``assumed_pixel_spacing_mm`` where set; else the image is taken to span ``assumed_field_mm``
    (430 mm: a 35 x 43 cm detector's long side) along its longer side, within
    :data:`ASSUMED_SPACING_RANGE_MM`. A fixed guess is wrong by 4x for a downscaled 640 px chest
    radiograph (0.6 mm pixels), and motion in mm is what the gate decides on.
    """
    if settings.assumed_pixel_spacing_mm is not None:
        return settings.assumed_pixel_spacing_mm
    lo, hi = ASSUMED_SPACING_RANGE_MM
    return float(np.clip(settings.assumed_field_mm / max(shape), lo, hi))


#: Transfer syntaxes whose codec may have been lossy (JPEG baseline / extended, JPEG-LS
#: near-lossless, JPEG 2000 and HTJ2K that allow loss), unless the header says otherwise.
LOSSY_SYNTAXES = frozenset(
    {
        "1.2.840.10008.1.2.4.50",
        "1.2.840.10008.1.2.4.51",
        "1.2.840.10008.1.2.4.81",
        "1.2.840.10008.1.2.4.91",
        "1.2.840.10008.1.2.4.93",
        "1.2.840.10008.1.2.4.203",
    }
)


def lossy_compressed(ds: pydicom.Dataset) -> bool:
    """Whether the header says the pixels went through a lossy codec: Lossy Image Compression
    (0028,2110) "01", or, where that attribute is absent, a transfer syntax that allows loss."""
    flag = str(ds.get("LossyImageCompression", "") or "").strip()
    if flag in ("00", "01"):
        return flag == "01"
    meta = getattr(ds, "file_meta", None)
    syntax = str(getattr(meta, "TransferSyntaxUID", "") or "") if meta is not None else ""
    return syntax in LOSSY_SYNTAXES


def motion_policy_for(ds: pydicom.Dataset, settings: BlurGateSettings) -> MotionPolicy:
    """:func:`policy` for this image: no noise subtraction in the estimate where the header says
    a lossy codec made the pixels (``noise_subtraction_skips_jpeg``: the noise there is the
    codec's, as in the decoded JPEGs ``models.jpeg_history`` finds from the pixels alone)."""
    pol = policy(settings)
    if settings.noise_subtraction_skips_jpeg and lossy_compressed(ds):
        return dataclasses.replace(pol, estimate_noise_subtraction="never")
    return pol


def assess_radiograph(r: Radiograph, settings: BlurGateSettings) -> BlurAssessment:
    """Estimate the motion on the image the correction works on (stored range, bright = dense)."""
    t0 = time.perf_counter()
    unit = to_unit_stored_range(r)
    if unit.ndim != 2 or min(unit.shape) < MIN_SIDE:
        raise UnsupportedImage(
            f"image of {'x'.join(map(str, unit.shape))} pixels is too small for a blur assessment "
            f"(at least {MIN_SIDE} pixels a side)"
        )
    spacing = pixel_spacing_mm(r.ds)
    assumed = spacing is None
    motion = assess_motion(
        unit,
        spacing if spacing is not None else assumed_spacing_mm(unit.shape, settings),
        motion_policy_for(r.ds, settings),
    )
    return BlurAssessment(motion, assumed, time.perf_counter() - t0)


def assess(ds: pydicom.Dataset, settings: BlurGateSettings) -> BlurAssessment:
    """Estimate and decide one radiograph; raises UnsupportedImage for what cannot be decoded."""
    return assess_radiograph(decode(ds), settings)


def build_notice_sr(
    source: pydicom.Dataset,
    assessment: BlurAssessment,
    producer: Producer,
    *,
    series_number: int = NOTICE_SERIES_NUMBER,
) -> pydicom.Dataset:
    """The fast image-quality notice (TID 1500 Comprehensive 3D SR) for ``source``.

    UIDs are derived from the source's and the decision, so a re-run writes the same object.
    """
    ref = sanitize_header(source).dataset
    sop = str(ref.SOPInstanceUID)
    sop_uid = stable_uid(sop, "blur notice", assessment.decision)
    algorithm = hd.sr.AlgorithmIdentification(
        name=f"{producer.model_name} blur gate"[:LO_MAX],
        version=producer.software_version,
        manufacturer=producer.manufacturer,
    )
    device = hd.sr.DeviceObserverIdentifyingAttributes(
        uid=stable_uid("sharpray blur gate", producer.device_serial_number),
        name=f"{producer.model_name} blur gate"[:LO_MAX],
        manufacturer_name=producer.manufacturer,
        model_name=producer.model_name,
    )
    context = hd.sr.ObservationContext(
        observer_device_context=hd.sr.ObserverContext(
            observer_type=codes.DCM.Device, observer_identifying_attributes=device
        )
    )
    group = hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(
            uid=stable_uid(sop_uid, "image quality"), identifier="motion blur assessment"
        ),
        finding_type=IMAGE_QUALITY,
        algorithm_id=algorithm,
        source_images=[hd.sr.SourceImageForMeasurementGroup.from_source_image(ref)],
        qualitative_evaluations=[
            hd.sr.QualitativeEvaluation(
                name=BLUR_ASSESSMENT, value=DECISION_CODES[assessment.decision]
            )
        ],
        measurements=[
            hd.sr.Measurement(
                name=BLUR_SCORE,
                value=float(round(assessment.score, 3)),
                unit=UNIT_MM,
                referenced_coordinates=[whole_image(ref)],
            )
        ],
    )
    add_items(group, [comment(decision_text(assessment.report()) + " - not a diagnosis")])
    report = hd.sr.MeasurementReport(
        observation_context=context,
        procedure_reported=IMAGING_PROCEDURE,
        imaging_measurements=[group],
        referenced_images=[library_view(ref)],
    )
    set_library_modalities(report[0], [ref])
    label = {"sharp": "sharp", "blurred": "BLURRED", "severe": "SEVERELY BLURRED"}
    return hd.sr.Comprehensive3DSR(
        evidence=[ref],
        content=report[0],
        series_instance_uid=stable_uid(str(ref.SeriesInstanceUID), "blur notice"),
        series_number=series_number,
        sop_instance_uid=sop_uid,
        instance_number=int(ref.get("InstanceNumber", 1) or 1),
        manufacturer=producer.manufacturer,
        is_complete=True,
        is_final=False,
        is_verified=False,
        institution_name=producer.institution,
        contributing_equipment=[processing_equipment(producer, "Image quality check")],
        series_description=(
            f"Image quality (not a diagnosis): motion {label[assessment.decision]}"
        )[:LO_MAX],
        manufacturer_model_name=producer.model_name,
        software_versions=producer.software_version,
        coding_schemes=coding_schemes(),
    )


BANNER_RGB: dict[str, tuple[int, int, int]] = {
    "sharp": (0, 110, 0),
    "blurred": (200, 110, 0),
    "severe": (170, 0, 0),
}
BANNER_TEXT: dict[str, str] = {
    "sharp": "NO RELEVANT MOTION BLUR",
    "blurred": "MOTION BLURRED - CONSIDER RETAKE",
    "severe": "SEVERE MOTION BLUR - RETAKE ADVISED",
}


def render_notice(grey: NDArray[np.floating], assessment: BlurAssessment) -> NDArray[np.uint8]:
    """RGB uint8: the image in grey under a coloured banner (green sharp, orange blurred, red
    severe) that states the decision, the score and that this is an image-quality check."""
    from PIL import Image, ImageDraw

    from node.pipeline.results.banner_text import banner_font, fit_line

    rows, cols = grey.shape
    g = np.rint(np.clip(np.asarray(grey, dtype=np.float32), 0, 1) * 255).astype(np.uint8)
    image = Image.fromarray(np.repeat(g[..., None], 3, axis=2), mode="RGB")
    draw = ImageDraw.Draw(image)
    size = max(8, round(min(rows, cols) / 30))
    pad = max(2, size // 3)
    lines = [
        BANNER_TEXT[assessment.decision],
        f"estimated motion {assessment.score:.1f} mm - image quality check, not a diagnosis",
    ]
    height = min(rows, pad + (size + pad) * len(lines))
    draw.rectangle((0, 0, cols - 1, height - 1), fill=BANNER_RGB[assessment.decision])
    font = banner_font(size)
    for i, text in enumerate(lines):
        draw.text(
            (pad, pad + i * (size + pad)),
            fit_line(draw, text, font, cols - 2 * pad),
            fill=(255, 255, 255),
            font=font,
        )
    return np.asarray(image, dtype=np.uint8)


def build_notice_sc(
    source: pydicom.Dataset,
    assessment: BlurAssessment,
    producer: Producer,
    *,
    series_number: int = NOTICE_SERIES_NUMBER + 1,
) -> pydicom.Dataset:
    """The notice as a colour Secondary Capture for rooms whose devices show only images."""
    from node.pipeline.results.sc import derived_sc

    ref = sanitize_header(source).dataset
    grey = to_unit_voi(decode(source))
    sop = str(ref.SOPInstanceUID)
    sc = derived_sc(
        ref,
        render_notice(grey, assessment),
        "RGB",
        producer,
        series_instance_uid=stable_uid(str(ref.SeriesInstanceUID), "blur notice sc"),
        series_number=series_number,
        instance_number=int(ref.get("InstanceNumber", 1) or 1),
        sop_instance_uid=stable_uid(sop, "blur notice sc", assessment.decision),
        series_description=(
            f"Image quality (not a diagnosis): {BANNER_TEXT[assessment.decision].lower()}"
        )[:LO_MAX],
        equipment=[processing_equipment(producer, "Image quality check")],
        sources=[ref],
        burned_in_annotation=True,
    )
    sc.DerivationDescription = (
        f"Image quality check: estimated motion {assessment.score:.2f} mm "
        f"({assessment.decision}) burned into a banner over the image; not a diagnosis."
    )
    return sc
