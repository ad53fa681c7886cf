"""The blur gate: judge a radiograph's motion blur first, tell the X-ray room, correct only if needed.

:func:`assess` scores one decoded radiograph with the no-reference blur effect of
:mod:`models.sharpness` (Crete et al. 2007; range [0, 1], lower = sharper), computed

* on the image as a viewer shows it (:func:`to_unit_voi`: VOI LUT / window applied, MONOCHROME1
  inverted), so the intensity order does not matter;
* at the image's native pixel scale up to ``max_side`` (longer images are block-averaged, which
  divides blur lengths by the same factor), because motion blur is a length in detector pixels;
* inside a margin (``margin`` of each side left out) and, where the image has a uniform collimated
  border, inside the exposed field, so collimation edges and burnt-in labels at the border do not
  dominate.

The decision compares the score with two thresholds from ``blur_gate`` in the settings: ``sharp``
below ``blurred_from``, ``severe`` from ``severe_from``, ``blurred`` between. The figures behind
the defaults (ROC AUC, false-blur rate vs blur length on real radiographs) are in docs/models.md
(``python -m models.evaluate_blur_gate``).

:func:`build_notice_sr` makes the fast notice for the X-ray room: a Comprehensive 3D SR (TID 1500)
with one image-quality measurement group (finding type DCM 111101 "Image Quality") that holds the
score, the decision as a qualitative evaluation and references the image. It is marked as an image
quality result (series description, and Preliminary/Unverified flags), never a diagnosis.

Private codes (scheme ``99SHARPRAY``): ``SR-BLUR-SCORE`` "Motion blur score (blur effect, 0 sharp,
1 blurred)", ``SR-BLUR-GATE`` "Motion blur assessment" with values ``SR-BLUR-SHARP`` "No relevant
motion blur", ``SR-BLUR-BLURRED`` "Motion blurred", ``SR-BLUR-SEVERE`` "Severely motion blurred";
``SR-CLASSIFIED`` "Image classified" with values ``SR-CLS-ORIGINAL`` "Original image" and
``SR-CLS-CORRECTED`` "Motion-corrected image" (in the main SR).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import highdicom as hd
import numpy as np
import pydicom
from numpy.typing import NDArray
from pydicom.sr.codedict import codes

from models.sharpness import sharpness
from node.config import BlurGateSettings
from node.pipeline.preprocess import Radiograph, UnsupportedImage, decode, to_unit_voi
from node.pipeline.results.common import (
    LO_MAX,
    PRIVATE_SCHEME,
    coding_schemes,
    processing_equipment,
    stable_uid,
)
from node.pipeline.results.inputs import Producer
from node.pipeline.results.sanitize import sanitize_header

Decision = Literal["sharp", "blurred", "severe"]
Policy = Literal["always", "when_blurred", "never"]

IMAGE_QUALITY = hd.sr.CodedConcept("111101", "DCM", "Image Quality")
BLUR_SCORE = hd.sr.CodedConcept(
    "SR-BLUR-SCORE", PRIVATE_SCHEME, "Motion blur score (0 sharp, 1 blurred)"
)
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
PLAIN_RADIOGRAPHY = hd.sr.CodedConcept("168537006", "SCT", "Plain radiography")

#: Smallest side the gate scores; smaller images are refused as UnsupportedImage.
MIN_SIDE = 16

#: Series number of the notice SR.
NOTICE_SERIES_NUMBER = 9010


@dataclass(frozen=True)
class BlurAssessment:
    """The gate's answer for one radiograph."""

    score: float  # blur effect, [0, 1], lower = sharper
    decision: Decision
    seconds: float  # time to compute it

    @property
    def blurred(self) -> bool:
        return self.decision != "sharp"

    def to_detail(self) -> dict[str, object]:
        return {"score": round(self.score, 4), "decision": self.decision}


def decide(score: float, settings: BlurGateSettings) -> Decision:
    """sharp / blurred / severe from the score and the configured thresholds."""
    if not np.isfinite(score):
        return "blurred"  # cannot tell: the cautious answer sends it to correction
    if score >= settings.severe_from:
        return "severe"
    if score >= settings.blurred_from:
        return "blurred"
    return "sharp"


def should_correct(policy: Policy, assessment: BlurAssessment | None) -> bool:
    """Whether a pipeline with ``policy`` corrects an image the gate judged so."""
    if policy == "always":
        return True
    if policy == "never":
        return False
    return assessment is None or assessment.blurred


def _field(img: NDArray[np.float32], margin: float) -> NDArray[np.float32]:
    """The image without a margin and without uniform (collimated) rows/columns at its border."""
    h, w = img.shape
    mh, mw = int(h * margin), int(w * margin)
    a = img[mh : h - mh or None, mw : w - mw or None]
    if min(a.shape) < 16:
        return img
    # Collimation: rows/columns whose spread is tiny compared with the image's are not exposed.
    spread = float(a.std())
    if spread > 0:
        rows = np.flatnonzero(a.std(axis=1) > 0.1 * spread)
        cols = np.flatnonzero(a.std(axis=0) > 0.1 * spread)
        if rows.size >= 16 and cols.size >= 16:
            a = a[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    return a


def score_image(display01: NDArray[np.floating], settings: BlurGateSettings) -> float:
    """The blur score of a grey image as shown (values in [0, 1])."""
    a = np.asarray(display01, dtype=np.float32)
    if a.ndim != 2 or min(a.shape) < MIN_SIDE:
        raise UnsupportedImage(
            f"image of {'x'.join(map(str, a.shape))} pixels is too small for a blur assessment "
            f"(at least {MIN_SIDE} pixels a side)"
        )
    return sharpness(_field(a, settings.margin), max_side=settings.max_side)


def assess_radiograph(r: Radiograph, settings: BlurGateSettings) -> BlurAssessment:
    t0 = time.perf_counter()
    score = score_image(to_unit_voi(r), settings)
    return BlurAssessment(score, decide(score, settings), time.perf_counter() - t0)


def assess(ds: pydicom.Dataset, settings: BlurGateSettings) -> BlurAssessment:
    """Score and decide one radiograph; raises UnsupportedImage for what cannot be decoded."""
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
                value=float(round(assessment.score, 6)),
                unit=UNIT_NONE,
                algorithm_id=algorithm,
            )
        ],
    )
    library = pydicom.Dataset()
    for keyword in ("SOPClassUID", "SOPInstanceUID", "Rows", "Columns"):
        if keyword in ref:
            library[keyword] = ref[keyword]
    library.Modality = "OT"
    report = hd.sr.MeasurementReport(
        observation_context=context,
        procedure_reported=PLAIN_RADIOGRAPHY,
        imaging_measurements=[group],
        referenced_images=[library],
    )
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

    from node.pipeline.results.overlay import _fit, _font

    rows, cols = grey.shape
    g = np.rint(np.clip(np.asarray(grey, dtype=np.float32), 0, 1) * 255).astype(np.uint8)
    image = Image.fromarray(np.repeat(g[..., None], 3, axis=2), mode="RGB")
    draw = ImageDraw.Draw(image)
    size = max(8, round(min(rows, cols) / 30))
    pad = max(2, size // 3)
    lines = [
        BANNER_TEXT[assessment.decision],
        f"motion blur score {assessment.score:.3f} - image quality check, not a diagnosis",
    ]
    height = min(rows, pad + (size + pad) * len(lines))
    draw.rectangle((0, 0, cols - 1, height - 1), fill=BANNER_RGB[assessment.decision])
    font = _font(size)
    for i, text in enumerate(lines):
        draw.text(
            (pad, pad + i * (size + pad)),
            _fit(draw, text, font, cols - 2 * pad),
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
        f"Image quality check: motion blur score {assessment.score:.4f} "
        f"({assessment.decision}) burned into a banner over the image; not a diagnosis."
    )
    return sc
