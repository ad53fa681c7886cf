"""Content items shared by the node's two TID 1500 reports (the AI result SR and the blur notice).

The form is chosen so that the DICOM standard, pixelmed's DicomSRValidator and OHIF v3 (the viewer
radiologists open these reports in) all accept it:

* Every measurement group (TID 1501) carries at least one measurement (TID 300 NUM) that is
  INFERRED FROM a SCOORD on an image (TID 300 row "INFERRED FROM", TID 320). OHIF hydrates every
  group in "Imaging Measurements" and reads the first coordinate of each; a group without one
  breaks its viewport. For an image-level result (a finding's probability, the estimated motion)
  the region is the whole image the algorithm analysed (:func:`whole_image`).
* Each group states itself in words in a Comment (DCM 121106) TEXT item: OHIF shows it as the
  first line of the measurement's label, where the coded items alone would read
  "Probability: 0.35 {probability}" with no finding name. TID 1501 is extensible; the coded
  content stays the normative part.
* What has no measurement (an image out of the model's intended use, the disclaimer) goes into
  TID 1500's document-level "Qualitative Evaluations" container (TID 1500 row 12), which OHIF does
  not hydrate and the standard meant for exactly that.
* Procedure reported: SCT 363679005 "Imaging procedure" (CID 100; pixelmed rejects codes outside
  the group). Image library: the modality of each image when CID 29 has it (CR, DX, ...).
"""

from __future__ import annotations

from collections.abc import Sequence

import highdicom as hd
import numpy as np
import pydicom
from highdicom.sr.enum import RelationshipTypeValues
from highdicom.sr.templates import Template

from node.pipeline.results.common import PRIVATE_SCHEME, ST_MAX
from node.pipeline.results.sanitize import valid_pixel_spacing

IMAGING_PROCEDURE = hd.sr.CodedConcept("363679005", "SCT", "Imaging procedure")
COMMENT = hd.sr.CodedConcept("121106", "DCM", "Comment")
QUALITATIVE_EVALUATIONS = hd.sr.CodedConcept("C0034375", "UMLS", "Qualitative Evaluations")
DISCLAIMER = hd.sr.CodedConcept("SR-DISCLAIMER", PRIVATE_SCHEME, "Intended use statement")


def whole_image(image: pydicom.Dataset) -> hd.sr.CoordinatesForMeasurement:
    """The whole of ``image`` as a closed POLYLINE (PIXEL coordinates, origin at the top left
    corner of the first pixel): the region an image-level result was inferred from."""
    rows, cols = float(image.Rows), float(image.Columns)
    outline = np.array(
        [[0.0, 0.0], [cols, 0.0], [cols, rows], [0.0, rows], [0.0, 0.0]], dtype=np.float32
    )
    return region_on(outline, image)


def region_on(outline: np.ndarray, image: pydicom.Dataset) -> hd.sr.CoordinatesForMeasurement:
    """A closed POLYLINE ``outline`` ((column, row) points) on ``image``."""
    return hd.sr.CoordinatesForMeasurement(
        graphic_type=hd.sr.GraphicTypeValues.POLYLINE,
        graphic_data=np.asarray(outline, dtype=np.float32),
        source_image=hd.sr.SourceImageForRegion.from_source_image(image),
    )


def comment(text: str) -> hd.sr.TextContentItem:
    return hd.sr.TextContentItem(
        name=COMMENT, value=text[:ST_MAX], relationship_type=RelationshipTypeValues.CONTAINS
    )


def add_items(group: Template, items: Sequence[hd.sr.ContentItem]) -> None:
    """Append ``items`` to the content of a measurement group (its CONTAINER item)."""
    container = group[0]
    for item in items:
        container.ContentSequence.append(item)


def qualitative_evaluations(
    evaluations: Sequence[hd.sr.QualitativeEvaluation], texts: Sequence[str] = ()
) -> hd.sr.ContainerContentItem:
    """TID 1500's document-level "Qualitative Evaluations" container."""
    container = hd.sr.ContainerContentItem(
        name=QUALITATIVE_EVALUATIONS, relationship_type=RelationshipTypeValues.CONTAINS
    )
    container.ContentSequence = hd.sr.ContentSequence()
    for evaluation in evaluations:
        for item in evaluation:
            container.ContentSequence.append(item)
    for text in texts:
        container.ContentSequence.append(
            hd.sr.TextContentItem(
                name=DISCLAIMER,
                value=text[:ST_MAX],
                relationship_type=RelationshipTypeValues.CONTAINS,
            )
        )
    return container


_MODALITY_MEANINGS = {
    "CR": "Computed Radiography",
    "DX": "Digital Radiography",
    "IO": "Intra-oral Radiography",
    "MG": "Mammography",
    "PX": "Panoramic X-Ray",
    "RF": "Radiofluoroscopy",
    "RG": "Radiographic imaging",
    "XA": "X-Ray Angiography",
}


def library_view(image: pydicom.Dataset) -> pydicom.Dataset:
    """The attributes highdicom's image library entry reads, limited to what is valid.

    highdicom writes the projection-radiography descriptors (TID 1603) when Modality is CR/DX/...
    and then reads Patient Orientation and Imager Pixel Spacing; without valid values for them
    the view says OT (generic descriptors only) and :func:`set_library_modalities` puts the
    image's own modality code back afterwards.
    """
    view = pydicom.Dataset()
    for keyword in ("SOPClassUID", "SOPInstanceUID", "Rows", "Columns", "FrameOfReferenceUID"):
        if keyword in image:
            view[keyword] = image[keyword]
    view.Modality = "OT"
    modality = str(image.get("Modality", ""))
    orientation = image.get("PatientOrientation")
    if (
        modality in _MODALITY_MEANINGS
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


def set_library_modalities(content: pydicom.Dataset, images: Sequence[pydicom.Dataset]) -> None:
    """Give each image library entry the CID 29 code of its image's Modality.

    highdicom codes the modality from the SOP class, which makes a Secondary Capture "OT", a code
    CID 29 lacks; the node's derived SCs keep the CR/DX modality of their source. An image whose
    modality CID 29 does not list keeps what highdicom wrote.
    """
    modality_of = {
        str(im.SOPInstanceUID): str(im.get("Modality", ""))
        for im in images
        if str(im.get("Modality", "")) in _MODALITY_MEANINGS
    }
    for item in content.ContentSequence:
        if item.ConceptNameCodeSequence[0].CodeValue != "111028":  # Image Library
            continue
        for group in item.get("ContentSequence", []):
            for entry in group.get("ContentSequence", []):
                if entry.ValueType != "IMAGE":
                    continue
                uid = str(entry.ReferencedSOPSequence[0].ReferencedSOPInstanceUID)
                modality = modality_of.get(uid)
                if modality is None:
                    continue
                for descriptor in entry.get("ContentSequence", []):
                    name = descriptor.ConceptNameCodeSequence[0]
                    if name.CodeValue == "121139" and descriptor.ValueType == "CODE":
                        code = descriptor.ConceptCodeSequence[0]
                        code.CodeValue = modality
                        code.CodingSchemeDesignator = "DCM"
                        code.CodeMeaning = _MODALITY_MEANINGS[modality]
