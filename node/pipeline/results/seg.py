"""The heatmap itself as a FRACTIONAL Segmentation, for viewers and research tools that read SEG.

One segment, on the corrected SC (or, when that is not sent, on the source image: same geometry):

* Segmented Property Category (130401, DCM, "Visual explanation") and Type (130403, DCM,
  "Gradient-weighted class activation") (CID 217); the segment label names the explained class.
* Segmentation Type FRACTIONAL, Segmentation Fractional Type PROBABILITY, Maximum Fractional Value
  255: the stored value is ``round(255 * heatmap)``. The heatmap is the Grad-CAM map scaled to
  [0, 1] by its peak: a relative attention weight, not a calibrated probability.
* Algorithm: AUTOMATIC, family (123110, DCM, "Artificial Intelligence"), the classifier's name and
  version, the explained class as a parameter.

A single-frame projection image has no Frame of Reference: highdicom then writes none, indexes the
one frame by segment number, and the SEG carries no pixel spacing (the source's spacing would make
highdicom write a Pixel Measures item that its own reader refuses). The frame is kept even when the
heatmap is all zero.
"""

from __future__ import annotations

import logging

import highdicom as hd
import numpy as np
import pydicom
from pydicom.dataelem import DataElement
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from node.pipeline.results.common import (
    ARTIFICIAL_INTELLIGENCE,
    GRAD_CAM,
    LO_MAX,
    VISUAL_EXPLANATION,
    fit_text,
    model_equipment,
    stable_uid,
)
from node.pipeline.results.inputs import Analysis, Producer
from node.pipeline.results.sanitize import sanitize_header
from node.pipeline.results.sc import series_laterality

__all__ = ["MAX_FRACTIONAL_VALUE", "build_heatmap_seg"]

log = logging.getLogger(__name__)

MAX_FRACTIONAL_VALUE = 255
_YELLOW = hd.color.CIELabColor.from_rgb(255, 255, 0)
# Elements of the referenced image that the SEG builder must not see (see the module docstring).
_HIDDEN = {0x7FE00010, 0x00280030}  # Pixel Data, Pixel Spacing


def _source_view(image: pydicom.Dataset) -> pydicom.Dataset:
    """``image`` without pixel data and pixel spacing (a shallow view, ``image`` is untouched)."""
    view = pydicom.Dataset()
    for elem in image:
        if elem.tag not in _HIDDEN:
            view.add(elem)
    if hasattr(image, "file_meta"):
        view.file_meta = image.file_meta
    return view


def build_heatmap_seg(
    analysis: Analysis,
    producer: Producer,
    series_instance_uid: str,
    series_number: int,
    instance_number: int = 1,
    *,
    corrected_sc: pydicom.Dataset | None = None,
    sop_instance_uid: str | None = None,
) -> pydicom.Dataset:
    """The FRACTIONAL SEG of ``analysis.heatmap`` on ``corrected_sc`` (else on the source).

    Raises ValueError when the analysis has no heatmap or its shape differs from the image's.
    """
    if analysis.heatmap is None:
        raise ValueError("analysis has no heatmap")
    ref = sanitize_header(analysis.source).dataset
    image = ref if corrected_sc is None else corrected_sc
    if image.StudyInstanceUID != ref.StudyInstanceUID:
        raise ValueError("corrected_sc belongs to another study than the source")
    heat = np.asarray(analysis.heatmap, dtype=np.float32)
    shape = (int(image.Rows), int(image.Columns))
    if heat.shape != shape:
        raise ValueError(f"heatmap has shape {heat.shape}, the image {shape}")
    if not np.all(np.isfinite(heat)):
        raise ValueError("heatmap holds non-finite values")
    heat = np.clip(heat, 0.0, 1.0)

    f = analysis.explained_finding
    clf, deblur = analysis.classifier_model, analysis.deblur_model
    demo = clf.demonstration_only or deblur.demonstration_only
    sop_uid = sop_instance_uid or generate_uid()
    segment = hd.seg.SegmentDescription(
        segment_number=1,
        segment_label=f"Grad-CAM {f.code.meaning}"[:LO_MAX],
        segmented_property_category=VISUAL_EXPLANATION,
        segmented_property_type=GRAD_CAM,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=hd.AlgorithmIdentificationSequence(
            name=clf.name,
            family=ARTIFICIAL_INTELLIGENCE,
            version=clf.version,
            source=producer.manufacturer,
            parameters={"explained class": f.label[:LO_MAX]},
        ),
        tracking_uid=stable_uid(sop_uid, "segment", "1"),
        tracking_id=f"Grad-CAM {f.label}"[:LO_MAX],
        display_color=_YELLOW,
    )
    series_description = fit_text(
        [
            f"AI heatmap SEG {f.code.meaning} ({clf.name} {clf.version})",
            f"AI heatmap SEG {f.code.meaning} {clf.version}",
            f"AI heatmap SEG {clf.version}",
        ],
        LO_MAX,
        demo,
    )
    equipment = model_equipment(
        producer, clf, deblur, "Heatmap encoded as a fractional segmentation"
    )
    seg = hd.seg.Segmentation(
        source_images=[_source_view(image)],
        pixel_array=heat,
        segmentation_type=hd.seg.SegmentationTypeValues.FRACTIONAL,
        segment_descriptions=[segment],
        series_instance_uid=series_instance_uid,
        series_number=series_number,
        sop_instance_uid=sop_uid,
        instance_number=instance_number,
        manufacturer=producer.manufacturer,
        manufacturer_model_name=producer.model_name,
        software_versions=producer.software_version,
        device_serial_number=producer.device_serial_number,
        fractional_type=hd.seg.SegmentationFractionalTypeValues.PROBABILITY,
        max_fractional_value=MAX_FRACTIONAL_VALUE,
        content_label="AI_GRADCAM",
        content_description=fit_text(
            [f"Grad-CAM heatmap of {f.code.meaning} p={f.probability:.2f}"], LO_MAX, False
        ),
        transfer_syntax_uid=ExplicitVRLittleEndian,
        omit_empty_frames=False,
        contributing_equipment=equipment,
        series_description=series_description,
        institution_name=producer.institution,
    )
    # General Image: Patient Orientation is Type 2C (required without a Frame of Reference).
    if "PatientOrientation" not in seg:
        if "PatientOrientation" in image:
            seg.PatientOrientation = image.PatientOrientation
        else:
            seg["PatientOrientation"] = DataElement(0x00200020, "CS", None)
    if image.get("BodyPartExamined"):
        seg.BodyPartExamined = image.BodyPartExamined
    # General Series Laterality (Type 2C): the SC's value when it is known. dciodvfy refuses an
    # empty (unknown) Laterality in a SEG where the body part is not a known paired one.
    laterality, _ = series_laterality(ref)
    if laterality is not None:
        seg.Laterality = laterality
    return seg
