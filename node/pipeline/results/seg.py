"""The heatmap as a Segmentation, for viewers (OHIF v3) and research tools that read SEG.

One segment, on the corrected SC (or, when that is not sent, on the source image: same geometry):

* Segmented Property Category (130401, DCM, "Visual explanation") and Type (130403, DCM,
  "Gradient-weighted class activation") (CID 217); the segment label names the explained class.
* ``kind="binary"`` (the default, ``results.seg_type``): Segmentation Type BINARY, the hot part of
  the heatmap (at least ``threshold`` of its peak, the same level as the SR's and the GSPS's
  region outlines). Viewers show it as a filled overlay; OHIF v3 shows no FRACTIONAL SEG.
* ``kind="fractional"``: Segmentation Type FRACTIONAL, Fractional Type PROBABILITY, Maximum
  Fractional Value 255: the stored value is ``round(255 * heatmap)`` (the whole map; a relative
  attention weight scaled by its peak, not a calibrated probability).
* Algorithm: AUTOMATIC, family (123110, DCM, "Artificial Intelligence"), the classifier's name and
  version, the explained class as a parameter.

A single-frame projection image has no Frame of Reference: highdicom then writes none and indexes
the one frame by segment number. The Pixel Measures functional group (shared) carries the image's
pixel spacing (Pixel Spacing, else Imager Pixel Spacing) when it has a valid one, else it is an
empty item: OHIF needs the item to place a SEG, and a Plane Orientation: with ``image_axes`` (``results.seg_image_axes``)
the shared group states the image's own axes (see :func:`_add_image_axes`). The frame is kept
even when it is empty.
"""

from __future__ import annotations

import logging
from typing import Literal

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
from node.pipeline.results.sanitize import sanitize_header, valid_pixel_spacing

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


def image_spacing(*images: pydicom.Dataset) -> tuple[float, float] | None:
    """The first valid Pixel Spacing, else Imager Pixel Spacing, of ``images`` (the corrected SC
    first: it has the source's geometry but a Secondary Capture carries no spacing of its own)."""
    for image in images:
        for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
            try:
                return valid_pixel_spacing(image, keyword)
            except ValueError:
                continue
    return None


def _add_pixel_measures(seg: pydicom.Dataset, *images: pydicom.Dataset) -> None:
    """Shared Pixel Measures with the images' pixel spacing (empty when none has a valid one)."""
    spacing = image_spacing(*images)
    shared = seg.SharedFunctionalGroupsSequence[0]
    measures = pydicom.Dataset()
    if spacing is not None:
        measures.PixelSpacing = [f"{spacing[0]:.6g}", f"{spacing[1]:.6g}"]
    # without a known spacing the item stays empty (Pixel Spacing is Type 1C, required with a
    # Frame of Reference only): OHIF needs the item itself
    # one plane of a projection image: its thickness is not known; SpacingBetweenSlices (Type 3)
    # is left out
    shared.PixelMeasuresSequence = [measures]


def _add_image_axes(seg: pydicom.Dataset) -> None:
    """Shared Plane Orientation (Patient) = the image's own row and column axes (1\\0\\0\\0\\1\\0).

    A projection radiograph has no Frame of Reference, so this states no patient geometry; it is
    the identity orientation that viewers assume for such an image, and OHIF v3 (cornerstone's
    SEG loader) needs it to lay a SEG over the image. dciodvfy accepts it.
    """
    orientation = pydicom.Dataset()
    orientation.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    seg.SharedFunctionalGroupsSequence[0].PlaneOrientationSequence = [orientation]


def build_heatmap_seg(
    analysis: Analysis,
    producer: Producer,
    series_instance_uid: str,
    series_number: int,
    instance_number: int = 1,
    *,
    corrected_sc: pydicom.Dataset | None = None,
    sop_instance_uid: str | None = None,
    kind: Literal["binary", "fractional"] = "binary",
    threshold: float = 0.5,
    image_axes: bool = True,
) -> pydicom.Dataset:
    """The SEG of ``analysis.heatmap`` on ``corrected_sc`` (else on the source).

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

    binary = kind == "binary"
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
        producer,
        clf,
        deblur,
        "Hot part of the heatmap as a binary segmentation"
        if binary
        else "Heatmap encoded as a fractional segmentation",
    )
    seg = hd.seg.Segmentation(
        source_images=[_source_view(image)],
        pixel_array=(heat >= threshold).astype(np.uint8) if binary else heat,
        segmentation_type=(
            hd.seg.SegmentationTypeValues.BINARY
            if binary
            else hd.seg.SegmentationTypeValues.FRACTIONAL
        ),
        segment_descriptions=[segment],
        series_instance_uid=series_instance_uid,
        series_number=series_number,
        sop_instance_uid=sop_uid,
        instance_number=instance_number,
        manufacturer=producer.manufacturer,
        manufacturer_model_name=producer.model_name,
        software_versions=producer.software_version,
        device_serial_number=producer.device_serial_number,
        fractional_type=(None if binary else hd.seg.SegmentationFractionalTypeValues.PROBABILITY),
        max_fractional_value=MAX_FRACTIONAL_VALUE,
        content_label="AI_GRADCAM",
        content_description=fit_text(
            [
                f"Grad-CAM of {f.code.meaning} p={f.probability:.2f}"
                + (f", >= {threshold:.2f} of peak" if binary else ""),
                f"Grad-CAM of {f.code.meaning} p={f.probability:.2f}",
            ],
            LO_MAX,
            False,
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
    _add_pixel_measures(seg, image, ref)
    if image_axes and "FrameOfReferenceUID" not in seg:
        _add_image_axes(seg)
    if image.get("BodyPartExamined"):
        seg.BodyPartExamined = image.BodyPartExamined
    # General Series Laterality is left out: dciodvfy holds its condition unsatisfied in a SEG
    # for every body part (paired or not, with or without a laterality in the source: tested);
    # the SEG's source image, which it references, states the laterality.
    return seg
