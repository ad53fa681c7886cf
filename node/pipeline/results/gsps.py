"""A Grayscale Softcopy Presentation State that outlines the heatmap's hot regions.

It references the corrected SC (or, when that is not sent, the source image: same geometry) and
holds, in the graphic layer ``AI_HOT_REGIONS``, one closed POLYLINE per hot region (the heatmap's
iso-line, :mod:`regions`) in PIXEL units, and in the layer ``AI_TEXT`` one text object naming the
finding, its probability and the model. A viewer that shows presentation states draws them over
the real pixels.

Display: the VOI window of the referenced image (so it looks like the image hung alone), its
rescale, and the Presentation LUT Shape INVERSE for a MONOCHROME1 image (IDENTITY would show it
inverted; PS3.3 C.11.6.1).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import highdicom as hd
import numpy as np
import pydicom
from pydicom.dataelem import DataElement
from pydicom.multival import MultiValue
from pydicom.uid import generate_uid

from node.pipeline.results.common import (
    LO_MAX,
    NOT_FOR_DIAGNOSTIC_USE,
    fit_text,
    model_equipment,
)
from node.pipeline.results.inputs import Analysis, Producer
from node.pipeline.results.regions import HotRegion
from node.pipeline.results.sanitize import sanitize_header
from node.pipeline.results.sc import presentation_voi, series_laterality

__all__ = ["REGION_LAYER", "TEXT_LAYER", "build_gsps"]

log = logging.getLogger(__name__)

REGION_LAYER = "AI_HOT_REGIONS"
TEXT_LAYER = "AI_TEXT"
_YELLOW = hd.color.CIELabColor.from_rgb(255, 255, 0)
_WHITE = hd.color.CIELabColor.from_rgb(255, 255, 255)


def _values(value: object) -> list[object]:
    return list(value) if isinstance(value, MultiValue) else [value]


def _voi_transformation(voi: pydicom.Dataset) -> hd.pr.SoftcopyVOILUTTransformation:
    """The first window (or the VOI LUT) of ``voi`` as a softcopy VOI LUT transformation."""
    if "WindowCenter" in voi and "WindowWidth" in voi:
        explanation = voi.get("WindowCenterWidthExplanation")
        function = voi.get("VOILUTFunction")
        return hd.pr.SoftcopyVOILUTTransformation(
            window_center=float(_values(voi.WindowCenter)[0]),  # type: ignore[arg-type]
            window_width=float(_values(voi.WindowWidth)[0]),  # type: ignore[arg-type]
            window_explanation=str(_values(explanation)[0]) if explanation else None,
            voi_lut_function=str(function) if function else None,
        )
    item = voi.VOILUTSequence[0]
    bits = int(item.LUTDescriptor[2])
    raw = item.LUTData
    data = np.frombuffer(raw, dtype="<u2") if isinstance(raw, bytes) else np.asarray(raw)
    lut = hd.VOILUT(
        first_mapped_value=int(item.LUTDescriptor[1]),
        lut_data=data.astype(np.uint8 if bits <= 8 else np.uint16),
        lut_explanation=item.get("LUTExplanation"),
    )
    return hd.pr.SoftcopyVOILUTTransformation(voi_luts=[lut])


def _text_box(rows: int, cols: int) -> tuple[float, float, float, float]:
    """A bounding box across the top left of the image, in PIXEL units."""
    pad = max(1.0, round(min(rows, cols) / 100))
    height = max(8.0, round(min(rows, cols) / 20))
    return (pad, pad, max(pad + 1.0, cols * 0.75), min(float(rows) - 1.0, pad + height))


def build_gsps(
    analysis: Analysis,
    producer: Producer,
    regions: Sequence[HotRegion],
    series_instance_uid: str,
    series_number: int,
    instance_number: int = 1,
    *,
    corrected_sc: pydicom.Dataset | None = None,
    sop_instance_uid: str | None = None,
) -> pydicom.Dataset:
    """The presentation state outlining ``regions`` on ``corrected_sc`` (else on the source).

    ``regions`` may be empty (a heatmap with no hot area): the state then holds only the text.
    """
    header = sanitize_header(analysis.source)
    ref = header.dataset
    if corrected_sc is not None:
        if corrected_sc.StudyInstanceUID != ref.StudyInstanceUID:
            raise ValueError("corrected_sc belongs to another study than the source")
        image = corrected_sc
        voi = presentation_voi(analysis)
    else:
        image = ref
        voi = presentation_voi(analysis, on_source=True)
    rows, cols = int(image.Rows), int(image.Columns)
    photometric = str(image.PhotometricInterpretation)

    f = analysis.explained_finding
    clf, deblur = analysis.classifier_model, analysis.deblur_model
    demo = clf.demonstration_only or deblur.demonstration_only

    region_layer = hd.pr.GraphicLayer(
        layer_name=REGION_LAYER,
        order=1,
        description=f"Grad-CAM hot regions of {f.code.meaning}"[:LO_MAX],
        display_color=_YELLOW,
    )
    text_layer = hd.pr.GraphicLayer(
        layer_name=TEXT_LAYER,
        order=2,
        description="AI result text"[:LO_MAX],
        display_color=_WHITE,
    )
    outlines = [
        hd.pr.GraphicObject(
            graphic_type=hd.pr.GraphicTypeValues.POLYLINE,
            graphic_data=np.asarray(r.outline, dtype=np.float32),
            units=hd.pr.AnnotationUnitsValues.PIXEL,
            is_filled=False,
        )
        for r in regions
    ]
    text = (
        f"AI: {f.code.meaning} p={f.probability:.2f}; outlined: Grad-CAM hot regions "
        f"({clf.name} {clf.version})"
    )
    if demo:
        text += f" - {NOT_FOR_DIAGNOSTIC_USE}"
    annotations = [
        hd.pr.GraphicAnnotation(
            referenced_images=[image],
            graphic_layer=text_layer,
            text_objects=[
                hd.pr.TextObject(
                    text_value=text,
                    units=hd.pr.AnnotationUnitsValues.PIXEL,
                    bounding_box=_text_box(rows, cols),
                    text_justification=hd.pr.TextJustificationValues.LEFT,
                )
            ],
        )
    ]
    if outlines:
        annotations.insert(
            0,
            hd.pr.GraphicAnnotation(
                referenced_images=[image],
                graphic_layer=region_layer,
                graphic_objects=outlines,
            ),
        )
    series_description = fit_text(
        [
            f"AI regions {f.code.meaning} ({clf.name} {clf.version})",
            f"AI regions {f.code.meaning} {clf.version}",
            f"AI regions {clf.version}",
        ],
        LO_MAX,
        demo,
    )
    equipment = model_equipment(
        producer, clf, deblur, "Hot-region outlines as a presentation state"
    )
    pr = hd.pr.GrayscaleSoftcopyPresentationState(
        referenced_images=[image],
        series_instance_uid=series_instance_uid,
        series_number=series_number,
        sop_instance_uid=sop_instance_uid or generate_uid(),
        instance_number=instance_number,
        manufacturer=producer.manufacturer,
        manufacturer_model_name=producer.model_name,
        software_versions=producer.software_version,
        device_serial_number=producer.device_serial_number,
        content_label="AI_HOT_REGIONS",
        content_description=fit_text(
            [f"Grad-CAM hot regions of {f.code.meaning} p={f.probability:.2f}"], LO_MAX, False
        ),
        graphic_annotations=annotations,
        graphic_layers=[region_layer, text_layer] if outlines else [text_layer],
        institution_name=producer.institution,
        voi_lut_transformations=[_voi_transformation(voi)],
        presentation_lut_transformation=hd.PresentationLUTTransformation(
            presentation_lut_shape="INVERSE" if photometric == "MONOCHROME1" else "IDENTITY"
        ),
        contributing_equipment=equipment,
        series_description=series_description,
    )
    if image.get("BodyPartExamined"):
        pr.BodyPartExamined = image.BodyPartExamined
    # General Series Laterality (Type 2C) by the same rule as the SC's
    laterality, empty_laterality = series_laterality(ref)
    if laterality is not None:
        pr.Laterality = laterality
    elif empty_laterality:
        pr["Laterality"] = DataElement(0x00200060, "CS", None)
    return pr
