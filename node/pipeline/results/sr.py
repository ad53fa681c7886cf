"""The classifier's findings as a TID 1500 Measurement Report (Comprehensive 3D SR).

Content tree (highdicom ``MeasurementReport``), following IHE AI Results (AIR), in the form that
the standard, pixelmed's DicomSRValidator and OHIF v3 all accept (:mod:`sr_parts` says why):

* Observation context: the classifier as a device observer (Device Observer UID = the model's Device
  UID, name = model name and version, manufacturer = the producer, model name = the model's name).
* Procedure reported: SCT 363679005 "Imaging procedure" (CID 100).
* Image library: the source radiograph and, when it is sent, the motion-corrected SC, each with
  its own modality (CR/DX).
* One measurement group (TID 1501) per finding the classifier answers (``Finding.is_finding``; a
  "normal" class is the absence of every finding and gets no group): finding type = the class's
  code, a qualitative evaluation (SCT 52101004 "Present" from the model's operating point on, else
  SCT 272519000 "Absent"), the probability as a measurement (DCM 122157 "Probability", UCUM
  ``{probability}``) inferred from the whole image the classifier saw (on the corrected SC when it
  is sent, else on the source), and a Comment that says it in words ("AI finding: Pneumonia
  PRESENT ..."); algorithm = the classifier (TID 4019: name, version).
* One measurement group per hot region of the heatmap (:mod:`regions`): finding type = the
  explained class, measurements of the heatmap inside the region (DCM 130403 "Gradient-weighted
  class activation", derivation maximum and mean, UCUM ``1``, method Grad-CAM) and, where the
  image has a pixel spacing, its area in mm2, inferred from the region's closed SCOORD POLYLINE
  outline (PIXEL coordinates, TLHC origin) on the corrected SC (on the source when the SC is not
  sent), and a Comment ("Pneumonia evidence region 1 of 2 (Grad-CAM): peak 0.99, mean 0.72,
  area 812 mm2").
* When the pipeline measured the image: one image-quality group (finding type DCM 111101 "Image
  Quality") with the blur gate's estimated motion in mm (inferred from the whole source image),
  its decision and which image was classified, and 99SHARPRAY SR-BLUR-SRC / SR-BLUR-COR (the
  no-reference blur effect of ``models/sharpness.py``, range [0, 1], lower = sharper).
* Document-level Qualitative Evaluations (TID 1500 row 12): "not analysed" with its coded reasons
  when the image is outside the model's intended use, and the intended-use statement ("NOT FOR
  DIAGNOSTIC USE ..." for a demonstration model) as text.

The heatmap SEG, when sent, is referenced from the SR's evidence (Current Requested Procedure
Evidence Sequence); TID 1500 can only reference a segment from a measurement group without
coordinates, which OHIF cannot display.

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
    NOT_FOR_DIAGNOSTIC_USE,
    PRIVATE_SCHEME,
    UNIT_MM2,
    UNIT_ONE,
    coding_schemes,
    fit_text,
    model_equipment,
    stable_uid,
    to_hd_code,
)
from node.pipeline.results.inputs import Analysis, Finding, Producer
from node.pipeline.results.regions import HotRegion
from node.pipeline.results.sanitize import sanitize_header
from node.pipeline.results.seg import image_spacing
from node.pipeline.results.sr_parts import (
    IMAGING_PROCEDURE,
    add_items,
    comment,
    library_view,
    qualitative_evaluations,
    region_on,
    set_library_modalities,
    whole_image,
)

__all__ = ["build_report_sr", "PRESENT_THRESHOLD"]

log = logging.getLogger(__name__)

PRESENT_THRESHOLD = 0.5

PRESENT = hd.sr.CodedConcept("52101004", "SCT", "Present")
ABSENT = hd.sr.CodedConcept("272519000", "SCT", "Absent")
PROBABILITY = hd.sr.CodedConcept("122157", "DCM", "Probability")
UNIT_PROBABILITY = hd.sr.CodedConcept("{probability}", "UCUM", "probability")
UNIT_NONE = hd.sr.CodedConcept("1", "UCUM", "no units")
IMAGE_QUALITY = hd.sr.CodedConcept("111101", "DCM", "Image Quality")

NOT_ANALYSED_TYPE = hd.sr.CodedConcept("SR-ANALYSIS", PRIVATE_SCHEME, "Diagnostic analysis")
NOT_ANALYSED = hd.sr.CodedConcept(
    "SR-NOT-ANALYSED", PRIVATE_SCHEME, "Not analysed: outside the model's intended use"
)
SCOPE_REASON = hd.sr.CodedConcept("SR-SCOPE-REASON", PRIVATE_SCHEME, "Reason not analysed")

DEMONSTRATION_STATEMENT = (
    f"{NOT_FOR_DIAGNOSTIC_USE}: produced by a demonstration model; "
    "a radiologist's reading of the original images is the diagnosis."
)
AI_STATEMENT = (
    "AI result for a radiologist's review: unverified, preliminary; "
    "the original images and a radiologist's report are the diagnosis."
)


def _finding_group(
    finding: Finding,
    shown: pydicom.Dataset,
    classifier_id: hd.sr.AlgorithmIdentification,
    sop_uid: str,
    demo: bool,
) -> hd.sr.MeasurementsAndQualitativeEvaluations:
    """TID 1501: one finding, present or absent, its probability inferred from the whole image."""
    if not 0.0 <= finding.probability <= 1.0:
        raise ValueError(f"probability of {finding.label} is {finding.probability}")
    code = to_hd_code(finding.code)
    group = hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(
            uid=stable_uid(sop_uid, "classification", finding.label),
            identifier=f"AI finding {finding.code.meaning}"[:LO_MAX],
        ),
        finding_type=code,
        algorithm_id=classifier_id,
        qualitative_evaluations=[
            hd.sr.QualitativeEvaluation(name=code, value=PRESENT if finding.present else ABSENT)
        ],
        measurements=[
            hd.sr.Measurement(
                name=PROBABILITY,
                value=float(finding.probability),
                unit=UNIT_PROBABILITY,
                referenced_coordinates=[whole_image(shown)],
            )
        ],
    )
    verdict = "PRESENT" if finding.present else "absent"
    text = (
        f"AI finding: {finding.code.meaning} {verdict} (probability {finding.probability:.2f}, "
        f"reported present from {finding.threshold:.2f})"
    )
    if demo:
        text += f" - {NOT_FOR_DIAGNOSTIC_USE}"
    add_items(group, [comment(text)])
    return group


def _region_groups(
    analysis: Analysis,
    regions: Sequence[HotRegion],
    image: pydicom.Dataset,
    classifier_id: hd.sr.AlgorithmIdentification,
    sop_uid: str,
) -> list[hd.sr.MeasurementsAndQualitativeEvaluations]:
    """One TID 1501 group per hot region, its measurements inferred from its outline on ``image``."""
    if not regions:
        return []
    finding = analysis.explained_finding
    code = to_hd_code(finding.code)
    spacing = image_spacing(image, analysis.source)
    groups = []
    for i, region in enumerate(regions, start=1):
        outline = [region_on(np.asarray(region.outline, dtype=np.float32), image)]
        area = (
            round(float(region.area_px) * spacing[0] * spacing[1], 1)
            if spacing is not None
            else None
        )
        # OHIF draws the region from the first measurement that refers to it and labels it with
        # the measurements that have no other content: the area when known, else the peak.
        measurements = [
            hd.sr.Measurement(
                name=GRAD_CAM,
                value=round(float(region.peak), 6),
                unit=UNIT_ONE,
                derivation=MAXIMUM,
                method=GRAD_CAM,
                referenced_coordinates=outline if area is None else None,
            ),
            hd.sr.Measurement(
                name=GRAD_CAM,
                value=round(float(region.mean), 6),
                unit=UNIT_ONE,
                derivation=MEAN,
                method=GRAD_CAM,
            ),
        ]
        if area is not None:
            measurements.insert(
                0,
                hd.sr.Measurement(
                    name=AREA, value=area, unit=UNIT_MM2, referenced_coordinates=outline
                ),
            )
        group = hd.sr.MeasurementsAndQualitativeEvaluations(
            tracking_identifier=hd.sr.TrackingIdentifier(
                uid=stable_uid(sop_uid, "region", str(i)),
                identifier=f"{finding.code.meaning} evidence region {i}"[:LO_MAX],
            ),
            finding_type=code,
            algorithm_id=classifier_id,
            measurements=measurements,
        )
        text = (
            f"{finding.code.meaning} evidence region {i} of {len(regions)} (Grad-CAM): "
            f"peak {region.peak:.2f}, mean {region.mean:.2f}"
        )
        if area is not None:
            text += f", area {area:.0f} mm2"
        add_items(group, [comment(text)])
        groups.append(group)
    return groups


def _not_analysed(analysis: Analysis) -> list[hd.sr.QualitativeEvaluation]:
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
    return evaluations


def _quality_group(
    analysis: Analysis,
    producer: Producer,
    ref: pydicom.Dataset,
    corrected_sc: pydicom.Dataset | None,
    sop_uid: str,
) -> hd.sr.MeasurementsAndQualitativeEvaluations | None:
    """The blur gate's estimate and decision, the blur measures and which image was classified."""
    from node.pipeline.blur_gate import (
        BLUR_ASSESSMENT,
        BLUR_SCORE,
        CLASSIFIED_CODES,
        CLASSIFIED_IMAGE,
        DECISION_CODES,
        SPACING_CODES,
        SPACING_USED,
        UNIT_MM,
        decision_text,
    )

    metric_id = hd.sr.AlgorithmIdentification(
        name=f"{producer.model_name} blur gate"[:LO_MAX],
        version=producer.software_version,
        manufacturer=producer.manufacturer,
    )
    measurements: list[hd.sr.Measurement] = []
    evaluations: list[hd.sr.QualitativeEvaluation] = []
    motion = analysis.motion
    score = motion.motion_mm if motion is not None else None
    if score is not None and math.isfinite(score):
        measurements.append(
            hd.sr.Measurement(
                name=BLUR_SCORE,
                value=round(score, 3),
                unit=UNIT_MM,
                referenced_coordinates=[whole_image(ref)],
            )
        )
    for value, name, image in (
        (analysis.sharpness_before, BLUR_SOURCE, ref),
        (analysis.sharpness_after, BLUR_CORRECTED, corrected_sc),
    ):
        if value is None or image is None:
            continue
        if not math.isfinite(value):
            log.warning("blur measure %s is %r; left out of the SR", name.meaning, value)
            continue
        # every group needs one measurement inferred from a region (sr_parts); without a motion
        # estimate the source's blur measure carries it
        measurements.append(
            hd.sr.Measurement(
                name=name,
                value=float(value),
                unit=UNIT_NONE,
                referenced_coordinates=[whole_image(image)] if not measurements else None,
                referenced_images=(
                    [hd.sr.SourceImageForMeasurement.from_source_image(image)]
                    if measurements
                    else None
                ),
            )
        )
    if not measurements:
        return None
    if motion is not None:
        assumed = motion.spacing_assumed
        evaluations.append(
            hd.sr.QualitativeEvaluation(
                name=SPACING_USED, value=SPACING_CODES["assumed" if assumed else "header"]
            )
        )
        if motion.decision in DECISION_CODES:
            evaluations.append(
                hd.sr.QualitativeEvaluation(
                    name=BLUR_ASSESSMENT, value=DECISION_CODES[motion.decision]
                )
            )
    evaluations.append(
        hd.sr.QualitativeEvaluation(
            name=CLASSIFIED_IMAGE, value=CLASSIFIED_CODES[analysis.classified]
        )
    )
    group = hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(
            uid=stable_uid(sop_uid, "image quality"), identifier="image quality"
        ),
        finding_type=IMAGE_QUALITY,
        algorithm_id=metric_id,
        measurements=measurements,
        qualitative_evaluations=evaluations,
    )
    words = [decision_text(motion) if motion is not None else "Image quality"]
    words.append(f"classified: {analysis.classified} image")
    if analysis.correction:
        words.append(analysis.correction)
    add_items(group, [comment("; ".join(words))])
    return group


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
    are the heatmap's hot regions, ``seg`` the heatmap SEG when it is sent (referenced as
    evidence). Every object passed must belong to the source's study. ``sop_instance_uid``
    defaults to a new UID (pass a stable one to make retries idempotent). The source dataset is
    not modified.
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

    groups: list[hd.sr.MeasurementsAndQualitativeEvaluations] = []
    reported = [f for f in analysis.findings if f.is_finding] or list(analysis.findings)
    for finding in reported:
        groups.append(_finding_group(finding, shown, classifier_id, sop_uid, demo))
    groups.extend(_region_groups(analysis, regions, shown, classifier_id, sop_uid))
    quality = _quality_group(analysis, producer, ref, corrected_sc, sop_uid)
    if quality is not None:
        groups.append(quality)

    library = [library_view(ref)]
    if corrected_sc is not None:
        library.append(library_view(corrected_sc))
    report = hd.sr.MeasurementReport(
        observation_context=observation_context,
        procedure_reported=IMAGING_PROCEDURE,
        imaging_measurements=groups or None,
        referenced_images=library,
    )
    content = report[0]
    set_library_modalities(content, [ref] + ([corrected_sc] if corrected_sc is not None else []))
    out_of_scope = analysis.scope is not None and not analysis.scope.in_scope
    content.ContentSequence.append(
        qualitative_evaluations(
            _not_analysed(analysis) if out_of_scope else [],
            [DEMONSTRATION_STATEMENT if demo else AI_STATEMENT],
        )
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
        content=content,
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
