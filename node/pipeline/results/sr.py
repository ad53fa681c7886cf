"""The classifier's findings as a TID 1500 Measurement Report (Comprehensive 3D SR).

Content tree (highdicom ``MeasurementReport``), following IHE AI Results (AIR):

* Observation context: the classifier as a device observer (Device Observer UID = the model's Device
  UID, name = model name and version, manufacturer = the producer, model name = the model's name).
* Procedure reported: SCT 399208008 "Plain chest X-ray" when Body Part Examined is CHEST/THORAX,
  else SCT 168537006 "Plain radiography".
* Image library: the source radiograph and, when it is sent, the motion-corrected SC.
* One measurement group (TID 1501) per class the classifier answers: finding type = the class's
  code, a qualitative evaluation (class code = SCT 52101004 "Present" when the probability is >= 0.5,
  else SCT 272519000 "Absent"), and the probability as a measurement (DCM 122157 "Probability",
  UCUM ``{probability}``), source image = the source radiograph; algorithm = the classifier
  (TID 4019: name, version).
* One planar ROI group (TID 1410) per hot region of the heatmap (:mod:`regions`): finding type = the
  explained class, method DCM 130403 "Gradient-weighted class activation", geometric purpose DCM
  111041 "Outline", the region as a closed SCOORD POLYLINE (PIXEL coordinates, TLHC origin) on the
  corrected SC (on the source when the SC is not sent), and measurements of the heatmap inside it
  (maximum and mean, UCUM ``1``) and, where the image has a pixel spacing, its area in mm2.
* When the heatmap SEG is sent: one planar ROI group that references its segment (TID 1410 with a
  Referenced Segmentation Frame), so a reader finds the full heatmap from the report.
* When the pipeline measured sharpness: one image-quality group (finding type DCM 111101 "Image
  Quality") with 99SHARPRAY SR-BLUR-SRC (``Analysis.sharpness_before``, on the source) and
  SR-BLUR-COR (``Analysis.sharpness_after``, on the SC): the blur effect of
  ``models/sharpness.py``, range [0, 1], lower = sharper, UCUM unit ``1``. Non-finite values are
  left out (logged).

Tracking Unique Identifiers are derived from the SR's SOP Instance UID, so a re-run with the same
UID writes the same document.

Document flags: Completion Flag COMPLETE (the document holds everything the algorithms produced for
this image), Verification Flag UNVERIFIED (no person has verified it, as AIR asks of AI results) and
Preliminary Flag PRELIMINARY (it is not the definitive means of communicating the findings; a
reader's report is).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import highdicom as hd
import numpy as np
import pydicom
from pydicom.sr.codedict import codes
from pydicom.uid import SecondaryCaptureImageStorage, SegmentationStorage, generate_uid

from node.pipeline.results.common import (
    AREA,
    BLUR_CORRECTED,
    BLUR_SOURCE,
    GRAD_CAM,
    LO_MAX,
    MAXIMUM,
    MEAN,
    OUTLINE,
    PRIVATE_SCHEME,
    UNIT_MM2,
    UNIT_ONE,
    coding_schemes,
    fit_text,
    model_equipment,
    stable_uid,
    to_hd_code,
)
from node.pipeline.results.inputs import Analysis, Producer
from node.pipeline.results.regions import HotRegion
from node.pipeline.results.sanitize import sanitize_header, valid_pixel_spacing

__all__ = ["build_report_sr", "PRESENT_THRESHOLD"]

log = logging.getLogger(__name__)

PRESENT_THRESHOLD = 0.5

PRESENT = hd.sr.CodedConcept("52101004", "SCT", "Present")
ABSENT = hd.sr.CodedConcept("272519000", "SCT", "Absent")
PROBABILITY = hd.sr.CodedConcept("122157", "DCM", "Probability")
UNIT_PROBABILITY = hd.sr.CodedConcept("{probability}", "UCUM", "probability")
UNIT_NONE = hd.sr.CodedConcept("1", "UCUM", "no units")
IMAGE_QUALITY = hd.sr.CodedConcept("111101", "DCM", "Image Quality")
PLAIN_CHEST_XRAY = hd.sr.CodedConcept("399208008", "SCT", "Plain chest X-ray")
PLAIN_RADIOGRAPHY = hd.sr.CodedConcept("168537006", "SCT", "Plain radiography")

_CHEST_BODY_PARTS = frozenset({"CHEST", "THORAX", "LUNG"})
_PROJECTION_MODALITIES = frozenset({"CR", "DX", "IO", "MG", "PX", "RF", "RG", "XA"})


def procedure_code(ref: pydicom.Dataset) -> hd.sr.CodedConcept:
    """The procedure reported, from the source's Body Part Examined."""
    if str(ref.get("BodyPartExamined", "")).upper() in _CHEST_BODY_PARTS:
        return PLAIN_CHEST_XRAY
    return PLAIN_RADIOGRAPHY


def _library_view(image: pydicom.Dataset) -> pydicom.Dataset:
    """The attributes highdicom's image library entry reads, limited to what is valid.

    highdicom writes the projection-radiography descriptors (TID 1603) for CR/DX and reads Patient
    Orientation and Imager Pixel Spacing unconditionally; when the image lacks valid values for
    them (empty orientation, no imager spacing, an SC image) the entry gets only the generic
    descriptors (modality from the SOP class, rows, columns).
    """
    view = pydicom.Dataset()
    for keyword in ("SOPClassUID", "SOPInstanceUID", "Rows", "Columns", "FrameOfReferenceUID"):
        if keyword in image:
            view[keyword] = image[keyword]
    view.Modality = "OT"
    modality = str(image.get("Modality", ""))
    orientation = image.get("PatientOrientation")
    if (
        modality in _PROJECTION_MODALITIES
        and orientation is not None
        and not isinstance(orientation, str)
        and len(orientation) == 2
        and all(str(v) for v in orientation)
    ):
        try:
            valid_pixel_spacing(image, "ImagerPixelSpacing")
        except ValueError:
            return view
        view.Modality = modality
        view.PatientOrientation = image.PatientOrientation
        view.ImagerPixelSpacing = image.ImagerPixelSpacing
    return view


def _region_groups(
    analysis: Analysis,
    regions: Sequence[HotRegion],
    image: pydicom.Dataset,
    classifier_id: hd.sr.AlgorithmIdentification,
    sop_uid: str,
) -> list[hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations]:
    """One TID 1410 group per hot region, its outline a SCOORD POLYLINE on ``image``."""
    if not regions:
        return []
    finding = analysis.explained_finding
    code = to_hd_code(finding.code)
    try:
        spacing: tuple[float, float] | None = valid_pixel_spacing(image)
    except ValueError:
        spacing = None
    groups = []
    for i, region in enumerate(regions, start=1):
        measurements = [
            hd.sr.Measurement(
                name=GRAD_CAM,
                value=round(float(region.peak), 6),
                unit=UNIT_ONE,
                derivation=MAXIMUM,
                algorithm_id=classifier_id,
            ),
            hd.sr.Measurement(
                name=GRAD_CAM,
                value=round(float(region.mean), 6),
                unit=UNIT_ONE,
                derivation=MEAN,
                algorithm_id=classifier_id,
            ),
        ]
        if spacing is not None:
            measurements.append(
                hd.sr.Measurement(
                    name=AREA,
                    value=round(float(region.area_px) * spacing[0] * spacing[1], 3),
                    unit=UNIT_MM2,
                    algorithm_id=classifier_id,
                )
            )
        groups.append(
            hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
                tracking_identifier=hd.sr.TrackingIdentifier(
                    uid=stable_uid(sop_uid, "region", str(i)),
                    identifier=f"Grad-CAM region {i} {finding.label}"[:LO_MAX],
                ),
                referenced_region=hd.sr.ImageRegion(
                    graphic_type=hd.sr.GraphicTypeValues.POLYLINE,
                    graphic_data=np.asarray(region.outline, dtype=np.float32),
                    source_image=hd.sr.SourceImageForRegion.from_source_image(image),
                ),
                finding_type=code,
                method=GRAD_CAM,
                algorithm_id=classifier_id,
                geometric_purpose=OUTLINE,
                measurements=measurements,
            )
        )
    return groups


def _segment_group(
    analysis: Analysis,
    seg: pydicom.Dataset,
    shown: pydicom.Dataset,
    classifier_id: hd.sr.AlgorithmIdentification,
    sop_uid: str,
) -> hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations:
    """A TID 1410 group whose region is segment 1 of the heatmap SEG."""
    explained = analysis.explained_finding
    reference = hd.sr.ReferencedSegmentationFrame(
        sop_class_uid=seg.SOPClassUID,
        sop_instance_uid=seg.SOPInstanceUID,
        frame_number=1,
        segment_number=1,
        source_image=hd.sr.SourceImageForSegmentation.from_source_image(shown),
    )
    # PS3.3 Table 10-3: Referenced Segment Number is present only when Referenced Frame Number
    # is not; highdicom writes both. The SEG has one frame holding segment 1: keep the segment.
    for item in reference:
        for sop_ref in item.get("ReferencedSOPSequence", []):
            if "ReferencedSegmentNumber" in sop_ref and "ReferencedFrameNumber" in sop_ref:
                del sop_ref.ReferencedFrameNumber
    return hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(
            uid=stable_uid(sop_uid, "heatmap segment"),
            identifier=f"Grad-CAM heatmap {explained.label}"[:LO_MAX],
        ),
        referenced_segment=reference,
        finding_type=to_hd_code(explained.code),
        method=GRAD_CAM,
        algorithm_id=classifier_id,
    )


NOT_ANALYSED_TYPE = hd.sr.CodedConcept("SR-ANALYSIS", PRIVATE_SCHEME, "Diagnostic analysis")
NOT_ANALYSED = hd.sr.CodedConcept(
    "SR-NOT-ANALYSED", PRIVATE_SCHEME, "Not analysed: outside the model's intended use"
)
SCOPE_REASON = hd.sr.CodedConcept("SR-SCOPE-REASON", PRIVATE_SCHEME, "Reason not analysed")


def _not_analysed_group(
    analysis: Analysis,
    algorithm: hd.sr.AlgorithmIdentification,
    source: hd.sr.SourceImageForMeasurementGroup,
    sop_uid: str,
) -> hd.sr.MeasurementsAndQualitativeEvaluations:
    """The classifier was not run: the image is outside its intended use (coded reasons)."""
    from node.pipeline.scope import REASONS

    assert analysis.scope is not None
    evaluations = [hd.sr.QualitativeEvaluation(name=NOT_ANALYSED_TYPE, value=NOT_ANALYSED)]
    for code, _detail in analysis.scope.reasons:
        evaluations.append(
            hd.sr.QualitativeEvaluation(
                name=SCOPE_REASON,
                value=hd.sr.CodedConcept(code, PRIVATE_SCHEME, REASONS[code][:64]),
            )
        )
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(
            uid=stable_uid(sop_uid, "not analysed"), identifier="not analysed"
        ),
        finding_type=NOT_ANALYSED_TYPE,
        algorithm_id=algorithm,
        source_images=[source],
        qualitative_evaluations=evaluations,
    )


def _blur_gate_items(
    analysis: Analysis, algorithm: hd.sr.AlgorithmIdentification
) -> tuple[list[hd.sr.Measurement], list[hd.sr.QualitativeEvaluation]]:
    """The blur gate's estimate and decision and which image was classified."""
    from node.pipeline.blur_gate import (
        BLUR_ASSESSMENT,
        BLUR_SCORE,
        CLASSIFIED_CODES,
        CLASSIFIED_IMAGE,
        DECISION_CODES,
        SPACING_CODES,
        SPACING_USED,
        UNIT_MM,
    )

    measurements: list[hd.sr.Measurement] = []
    evaluations: list[hd.sr.QualitativeEvaluation] = []
    motion = analysis.motion
    score = motion.motion_mm if motion is not None else None
    if score is not None and math.isfinite(score):
        measurements.append(
            hd.sr.Measurement(
                name=BLUR_SCORE, value=round(score, 3), unit=UNIT_MM, algorithm_id=algorithm
            )
        )
    if motion is not None:
        assumed = motion.spacing_assumed
        evaluations.append(
            hd.sr.QualitativeEvaluation(
                name=SPACING_USED, value=SPACING_CODES["assumed" if assumed else "header"]
            )
        )
    decision = motion.decision if motion is not None else None
    if decision is not None and decision in DECISION_CODES:
        evaluations.append(
            hd.sr.QualitativeEvaluation(name=BLUR_ASSESSMENT, value=DECISION_CODES[decision])
        )
    evaluations.append(
        hd.sr.QualitativeEvaluation(
            name=CLASSIFIED_IMAGE, value=CLASSIFIED_CODES[analysis.classified]
        )
    )
    return measurements, evaluations


def build_report_sr(
    analysis: Analysis,
    producer: Producer,
    corrected_sc: pydicom.Dataset | None,
    series_instance_uid: str,
    series_number: int,
    instance_number: int = 1,
    *,
    sop_instance_uid: str | None = None,
    regions: Sequence[HotRegion] = (),
    seg: pydicom.Dataset | None = None,
) -> pydicom.Dataset:
    """Build the AI result SR for ``analysis`` (see the module docstring for its content).

    ``corrected_sc`` is the object :func:`build_corrected_sc` made for the same analysis (pass it
    only when it is sent too; with None the regions are drawn on the source image). ``regions``
    are the heatmap's hot regions, ``seg`` the heatmap SEG when it is sent. Every object passed
    must belong to the source's study. ``sop_instance_uid`` defaults to a new UID (pass a stable
    one to make retries idempotent). The source dataset is not modified.
    """
    header = sanitize_header(analysis.source)
    for change in header.changes:
        log.info("source header sanitised for SR: %s", change)
    ref = header.dataset
    if corrected_sc is not None:
        if corrected_sc.SOPClassUID != SecondaryCaptureImageStorage:
            raise ValueError("corrected_sc is not a Secondary Capture image")
        if corrected_sc.StudyInstanceUID != ref.StudyInstanceUID:
            raise ValueError("corrected_sc belongs to another study than the source")
    if seg is not None:
        if seg.SOPClassUID != SegmentationStorage:
            raise ValueError("seg is not a Segmentation")
        if seg.StudyInstanceUID != ref.StudyInstanceUID:
            raise ValueError("seg belongs to another study than the source")
    if not analysis.findings and (analysis.scope is None or analysis.scope.in_scope):
        raise ValueError("analysis has no findings to report and was not refused as out of scope")
    sop_uid = sop_instance_uid or generate_uid()
    shown = ref if corrected_sc is None else corrected_sc

    clf = analysis.classifier_model
    deblur = analysis.deblur_model
    demo = clf.demonstration_only or deblur.demonstration_only

    device = hd.sr.DeviceObserverIdentifyingAttributes(
        uid=clf.device_uid,
        name=f"{clf.name} {clf.version}"[:LO_MAX],
        manufacturer_name=producer.manufacturer,
        model_name=clf.name,
    )
    observation_context = hd.sr.ObservationContext(
        observer_device_context=hd.sr.ObserverContext(
            observer_type=codes.DCM.Device,
            observer_identifying_attributes=device,
        )
    )
    classifier_id = hd.sr.AlgorithmIdentification(
        name=clf.name, version=clf.version, manufacturer=producer.manufacturer
    )
    source_for_group = hd.sr.SourceImageForMeasurementGroup.from_source_image(ref)

    groups: list[
        hd.sr.MeasurementsAndQualitativeEvaluations
        | hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations
    ] = []
    for finding in analysis.findings:
        if not 0.0 <= finding.probability <= 1.0:
            raise ValueError(f"probability of {finding.label} is {finding.probability}")
        code = to_hd_code(finding.code)
        groups.append(
            hd.sr.MeasurementsAndQualitativeEvaluations(
                tracking_identifier=hd.sr.TrackingIdentifier(
                    uid=stable_uid(sop_uid, "classification", finding.label),
                    identifier=f"classification {finding.label}"[:LO_MAX],
                ),
                finding_type=code,
                algorithm_id=classifier_id,
                source_images=[source_for_group],
                qualitative_evaluations=[
                    hd.sr.QualitativeEvaluation(
                        name=code,
                        value=PRESENT if finding.present else ABSENT,
                    )
                ],
                measurements=[
                    hd.sr.Measurement(
                        name=PROBABILITY,
                        value=float(finding.probability),
                        unit=UNIT_PROBABILITY,
                        algorithm_id=classifier_id,
                    )
                ],
            )
        )

    if analysis.scope is not None and not analysis.scope.in_scope:
        groups.append(_not_analysed_group(analysis, classifier_id, source_for_group, sop_uid))
    groups.extend(_region_groups(analysis, regions, shown, classifier_id, sop_uid))
    if seg is not None:
        groups.append(_segment_group(analysis, seg, shown, classifier_id, sop_uid))

    quality: list[hd.sr.Measurement] = []
    metric_id = hd.sr.AlgorithmIdentification(
        name=f"{producer.model_name} blur effect (Crete 2007)",
        version=producer.software_version,
        manufacturer=producer.manufacturer,
    )
    for value, name, image in (
        (analysis.sharpness_before, BLUR_SOURCE, ref),
        (analysis.sharpness_after, BLUR_CORRECTED, corrected_sc),
    ):
        if value is None:
            continue
        if not math.isfinite(value):
            log.warning("blur measure %s is %r; left out of the SR", name.meaning, value)
            continue
        quality.append(
            hd.sr.Measurement(
                name=name,
                value=float(value),
                unit=UNIT_NONE,
                algorithm_id=metric_id,
                referenced_images=(
                    None
                    if image is None
                    else [hd.sr.SourceImageForMeasurement.from_source_image(image)]
                ),
            )
        )
    gate = _blur_gate_items(analysis, metric_id)
    quality.extend(gate[0])
    if quality:
        quality_sources = [source_for_group]
        if corrected_sc is not None:
            quality_sources.append(
                hd.sr.SourceImageForMeasurementGroup.from_source_image(corrected_sc)
            )
        groups.append(
            hd.sr.MeasurementsAndQualitativeEvaluations(
                tracking_identifier=hd.sr.TrackingIdentifier(
                    uid=stable_uid(sop_uid, "image quality"), identifier="image quality"
                ),
                finding_type=IMAGE_QUALITY,
                algorithm_id=metric_id,
                source_images=quality_sources,
                measurements=quality,
                qualitative_evaluations=gate[1] or None,
            )
        )

    library = [_library_view(ref)]
    if corrected_sc is not None:
        library.append(_library_view(corrected_sc))
    report = hd.sr.MeasurementReport(
        observation_context=observation_context,
        procedure_reported=procedure_code(ref),
        imaging_measurements=groups,
        referenced_images=library,
    )
    series_description = fit_text(
        [
            f"AI result {producer.model_name} ({clf.name} {clf.version})",
            f"AI result {producer.model_name} {clf.version}",
        ],
        LO_MAX,
        demo,
    )
    equipment = model_equipment(
        producer, clf, deblur, "AI result encoding", "Classification (deep learning model)"
    )
    evidence = [ref] + [d for d in (corrected_sc, seg) if d is not None]
    return hd.sr.Comprehensive3DSR(
        evidence=evidence,
        content=report[0],
        series_instance_uid=series_instance_uid,
        series_number=series_number,
        sop_instance_uid=sop_uid,
        instance_number=instance_number,
        manufacturer=producer.manufacturer,
        is_complete=True,
        is_final=False,
        is_verified=False,
        institution_name=producer.institution,
        contributing_equipment=equipment,
        series_description=series_description,
        manufacturer_model_name=producer.model_name,
        software_versions=producer.software_version,
        coding_schemes=coding_schemes(),
    )
