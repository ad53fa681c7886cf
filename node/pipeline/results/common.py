"""Codes, equipment items and texts shared by the result builders (SC and SR).

Private codes (Coding Scheme Designator ``99SHARPRAY``, declared in every object's Coding Scheme
Identification Sequence):

* ``SR-DEBLUR`` "Motion blur reduction": second Derivation Code of the SC
  (after DCM 113086 "Edge enhancement", the closest CID 7203 code).
* ``SR-BLUR-SRC`` "Blur effect of source image (0 sharp, 1 blurred)": SR measurement on the source.
* ``SR-BLUR-COR`` "Blur effect of corrected image (0 sharp, 1 blurred)": SR measurement on the SC.

The blur values are ``Analysis.sharpness_before/after`` as the pipeline computes them with
``models/sharpness.py`` (the no-reference blur effect of Crete et al. 2007: range [0, 1], **lower =
sharper**); they are written with UCUM unit ``1``.

IHE AI Results (AIR) asks for one Contributing Equipment item per AI model whose Purpose of
Reference is ``(Newcode1, 99IHE, "Processing Algorithm")``, with the model's name in Manufacturer's
Model Name, its version in Software Versions and its Device UID. highdicom's
``ContributingEquipment`` only accepts CID 7005 purposes, so the item is built (and its other values
checked) as "Processing Equipment" and its purpose is then replaced by the AIR code. dciodvfy
(dicom3tools 2022) accepts the code but warns that Device UID is "not present in standard DICOM
IOD" inside this sequence; that warning is expected.
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Sequence

import highdicom as hd
from highdicom.coding_schemes import CodingSchemeIdentificationItem
from pydicom.sr.codedict import codes
from pydicom.uid import UID

from models.manifest import CodedConcept as ManifestCode
from node.pipeline.results.inputs import ModelInfo, Producer

NOT_FOR_DIAGNOSTIC_USE = "NOT FOR DIAGNOSTIC USE"

PRIVATE_SCHEME = "99SHARPRAY"
IHE_SCHEME = "99IHE"

PURPOSE_PROCESSING_ALGORITHM = hd.sr.CodedConcept("Newcode1", IHE_SCHEME, "Processing Algorithm")
DERIVATION_DEBLUR = hd.sr.CodedConcept("SR-DEBLUR", PRIVATE_SCHEME, "Motion blur reduction")
# CID 7203 (Image Derivation) has no code for deblurring; "Edge enhancement" is the closest fit.
DERIVATION_EDGE_ENHANCEMENT = hd.sr.CodedConcept("113086", "DCM", "Edge enhancement")
PURPOSE_SOURCE_FOR_PROCESSING = hd.sr.CodedConcept(
    "121322", "DCM", "Source image for image processing operation"
)
BLUR_SOURCE = hd.sr.CodedConcept(
    "SR-BLUR-SRC", PRIVATE_SCHEME, "Blur effect of source image (0 sharp, 1 blurred)"
)
BLUR_CORRECTED = hd.sr.CodedConcept(
    "SR-BLUR-COR", PRIVATE_SCHEME, "Blur effect of corrected image (0 sharp, 1 blurred)"
)

# Visual explanation (CID 217) and the codes of the heatmap objects.
VISUAL_EXPLANATION = hd.sr.CodedConcept("130401", "DCM", "Visual explanation")
GRAD_CAM = hd.sr.CodedConcept("130403", "DCM", "Gradient-weighted class activation")
OUTLINE = hd.sr.CodedConcept("111041", "DCM", "Outline")
ARTIFICIAL_INTELLIGENCE = hd.sr.CodedConcept("123110", "DCM", "Artificial Intelligence")
MAXIMUM = hd.sr.CodedConcept("56851009", "SCT", "Maximum")
MEAN = hd.sr.CodedConcept("373098007", "SCT", "Mean")
AREA = hd.sr.CodedConcept("42798000", "SCT", "Area")
UNIT_MM2 = hd.sr.CodedConcept("mm2", "UCUM", "square millimeter")
UNIT_PIXELS = hd.sr.CodedConcept("{pixels}", "UCUM", "pixels")
UNIT_ONE = hd.sr.CodedConcept("1", "UCUM", "no units")

LO_MAX = 64  # Long String
ST_MAX = 1024  # Short Text


def stable_uid(*parts: str) -> str:
    """A 2.25 UID derived from ``parts`` (the same parts always give the same UID)."""
    digest = hashlib.sha256("\x00".join(parts).encode()).digest()
    return f"2.25.{int.from_bytes(digest[:16], 'big')}"


def to_hd_code(code: ManifestCode) -> hd.sr.CodedConcept:
    """A manifest code as a (validated) highdicom CodedConcept."""
    return hd.sr.CodedConcept(code.value, code.scheme, code.meaning)


def coding_schemes() -> list[CodingSchemeIdentificationItem]:
    """Coding Scheme Identification items for the private schemes the result objects use."""
    return [
        CodingSchemeIdentificationItem(
            designator=PRIVATE_SCHEME,
            name="SharpRay private codes",
            responsible_organization="SharpRay",
        ),
        CodingSchemeIdentificationItem(
            designator=IHE_SCHEME,
            name="IHE Radiology codes pending DICOM assignment",
            responsible_organization="IHE",
        ),
    ]


def _check_uid(uid: str, what: str) -> None:
    if not UID(uid).is_valid:
        raise ValueError(f"{what} {uid!r} is not a valid DICOM UID")


def processing_equipment(producer: Producer, description: str) -> hd.ContributingEquipment:
    """The SharpRay node itself (109102 "Processing Equipment")."""
    return hd.ContributingEquipment(
        manufacturer=producer.manufacturer,
        purpose_of_reference=codes.DCM.ProcessingEquipment,
        manufacturer_model_name=producer.model_name,
        software_versions=producer.software_version,
        institution_name=producer.institution,
        contribution_datetime=datetime.datetime.now(),
        contribution_description=description,
    )


def algorithm_equipment(
    model: ModelInfo, producer: Producer, description: str
) -> hd.ContributingEquipment:
    """One AI model as IHE AIR's "Processing Algorithm" contributing equipment item."""
    _check_uid(model.device_uid, f"Device UID of model {model.name}")
    item = hd.ContributingEquipment(
        manufacturer=producer.manufacturer,
        purpose_of_reference=codes.DCM.ProcessingEquipment,
        manufacturer_model_name=model.name,
        software_versions=model.version,
        institution_name=producer.institution,
        contribution_datetime=datetime.datetime.now(),
        contribution_description=description,
    )
    item.PurposeOfReferenceCodeSequence = [PURPOSE_PROCESSING_ALGORITHM]
    item.DeviceUID = model.device_uid
    return item


def deblur_kind(model: ModelInfo) -> str:
    """What kind of method the motion correction is (its name says the blind Wiener one)."""
    return "blind deconvolution" if model.name.endswith("-wiener") else "deep learning model"


def model_equipment(
    producer: Producer,
    classifier: ModelInfo,
    deblur: ModelInfo,
    what: str,
    classifier_role: str = "Classification and Grad-CAM heatmap",
) -> list[hd.ContributingEquipment]:
    """The node (doing ``what``), the classifier and the deblurring model, as AI result objects
    list them in Contributing Equipment."""
    return [
        processing_equipment(producer, what),
        algorithm_equipment(classifier, producer, classifier_role),
        algorithm_equipment(deblur, producer, f"Motion blur reduction ({deblur_kind(deblur)})"),
    ]


def fit_text(candidates: Sequence[str], limit: int, demo: bool) -> str:
    """The first candidate that fits ``limit`` characters (else the last one, shortened), with the
    demo warning appended; the warning is never cut."""
    suffix = f" - {NOT_FOR_DIAGNOSTIC_USE}" if demo else ""
    room = limit - len(suffix)
    for text in candidates:
        if len(text) <= room:
            return text + suffix
    return candidates[-1][: room - 1].rstrip() + "~" + suffix
