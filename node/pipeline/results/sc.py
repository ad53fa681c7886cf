"""The motion-corrected radiograph as a Secondary Capture image in the source's study.

The SC keeps the source's geometry and stored-value domain: same rows x columns, Bits Allocated,
Bits Stored / High Bit, Photometric Interpretation (MONOCHROME1 stays MONOCHROME1), rescale and VOI
window, so that it windows like the original. It is written uncompressed (Explicit VR Little
Endian), which is what makes Bits Stored < Bits Allocated safe: highdicom always writes Bits Stored =
Bits Allocated and encodes compressed frames accordingly.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from typing import Any, cast

import highdicom as hd
import numpy as np
import pydicom
from pydicom.dataelem import DataElement
from pydicom.multival import MultiValue
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from node.pipeline.results.common import (
    DERIVATION_DEBLUR,
    DERIVATION_EDGE_ENHANCEMENT,
    LO_MAX,
    PURPOSE_SOURCE_FOR_PROCESSING,
    ST_MAX,
    algorithm_equipment,
    coding_schemes,
    deblur_kind,
    fit_text,
    processing_equipment,
)
from node.pipeline.results.inputs import Analysis, Producer
from node.pipeline.results.sanitize import sanitize_header, valid_pixel_spacing

__all__ = [
    "build_corrected_sc",
    "derived_sc",
    "display_unit",
    "presentation_voi",
    "series_laterality",
    "voi_to_unit",
    "source_reference",
    "PAIRED_BODY_PARTS",
    "UNPAIRED_BODY_PARTS",
]

log = logging.getLogger(__name__)

# Body Part Examined values (PS3.16 Annex L) of paired structures: only for these does the SC's
# General Series Laterality apply. Unpaired parts (CHEST, THORAX, ...) must not carry Laterality.
PAIRED_BODY_PARTS = frozenset(
    {
        "ACJOINT",
        "ANKLE",
        "ARM",
        "BREAST",
        "CALCANEUS",
        "CLAVICLE",
        "EAR",
        "ELBOW",
        "EXTREMITY",
        "EYE",
        "FEMUR",
        "FIBULA",
        "FINGER",
        "FOOT",
        "FOREARM",
        "HAND",
        "HEEL",
        "HIP",
        "HUMERUS",
        "KIDNEY",
        "KNEE",
        "LEG",
        "LOWLEG",
        "LOWRARM",
        "ORBIT",
        "PATELLA",
        "SCAPULA",
        "SCJOINT",
        "SHOULDER",
        "SIJOINT",
        "THIGH",
        "THUMB",
        "TIBIA",
        "TMJ",
        "TOE",
        "UPRARM",
        "WRIST",
    }
)

# Unpaired Body Part Examined values: the SC gets no Laterality for these.
UNPAIRED_BODY_PARTS = frozenset(
    {
        "ABDOMEN",
        "ABDOMENPELVIS",
        "CHEST",
        "CHESTABDOMEN",
        "CHESTABDPELVIS",
        "COCCYX",
        "CSPINE",
        "HEAD",
        "HEADNECK",
        "HEART",
        "LSPINE",
        "NECK",
        "PELVIS",
        "SACRUM",
        "SKULL",
        "SPINE",
        "SSPINE",
        "TSPINE",
        "WHOLEBODY",
    }
)

# Transfer syntaxes whose codestream is (or may be) lossy, and the method each implies.
_LOSSY_METHOD = {
    "1.2.840.10008.1.2.4.50": "ISO_10918_1",  # JPEG Baseline
    "1.2.840.10008.1.2.4.51": "ISO_10918_1",  # JPEG Extended
    "1.2.840.10008.1.2.4.81": "ISO_14495_1",  # JPEG-LS near-lossless
    "1.2.840.10008.1.2.4.91": "ISO_15444_1",  # JPEG 2000 (lossy allowed)
    "1.2.840.10008.1.2.4.203": "ISO_15444_15",  # HTJ2K (lossy allowed)
}

_BIPED = {v.value for v in hd.PatientOrientationValuesBiped}
_QUADRUPED = {v.value for v in hd.PatientOrientationValuesQuadruped}


def _checked_pixels(corrected: np.ndarray, ref: pydicom.Dataset) -> tuple[np.ndarray, int]:
    """The corrected array as highdicom needs it (unsigned), and the offset added to signed data.

    Signed sources (Pixel Representation 1) are stored shifted by 2**(BitsStored-1) into the
    unsigned range; the Rescale Intercept then takes the shift back (see :func:`_rescale`).
    """
    shape = (int(ref.Rows), int(ref.Columns))
    if corrected.shape != shape:
        raise ValueError(f"corrected image has shape {corrected.shape}, the source {shape}")
    if int(ref.get("SamplesPerPixel", 1) or 1) != 1:
        raise ValueError("only single-sample (grayscale) sources are supported")
    if not np.issubdtype(corrected.dtype, np.integer):
        raise TypeError(f"corrected image must hold integer stored values, not {corrected.dtype}")
    bits_allocated = int(ref.BitsAllocated)
    bits_stored = int(ref.get("BitsStored", bits_allocated))
    if bits_allocated not in (8, 16) or not 1 <= bits_stored <= bits_allocated:
        raise ValueError(f"unsupported Bits Allocated/Stored {bits_allocated}/{bits_stored}")
    signed = int(ref.get("PixelRepresentation", 0) or 0) == 1
    offset = 1 << (bits_stored - 1) if signed else 0
    lo, hi = int(corrected.min()), int(corrected.max())
    vmin, vmax = -offset, (1 << bits_stored) - 1 - offset
    if lo < vmin or hi > vmax:
        raise ValueError(
            f"corrected values [{lo}, {hi}] do not fit the source's {bits_stored} bits stored"
            f" ([{vmin}, {vmax}])"
        )
    dtype = np.uint8 if bits_allocated == 8 else np.uint16
    if offset:
        return (corrected.astype(np.int64) + offset).astype(dtype), offset
    return corrected.astype(dtype, copy=False), 0


def _orientation(ref: pydicom.Dataset) -> tuple[tuple[str, str] | None, str | None]:
    """(value highdicom accepts, or None) and the Anatomical Orientation Type to pass."""
    aot = ref.get("AnatomicalOrientationType") or None
    allowed = _QUADRUPED if aot == "QUADRUPED" else _BIPED
    value = ref.get("PatientOrientation")
    if value is None or isinstance(value, str) or len(value) != 2:
        return None, aot
    row, col = str(value[0]), str(value[1])
    if row in allowed and col in allowed:
        return (row, col), aot
    return None, aot


def series_laterality(ref: pydicom.Dataset) -> tuple[str | None, bool]:
    """(Laterality R/L to pass to highdicom or None, whether an empty Laterality is needed).

    General Series Laterality is Type 2C: required for paired structures. It is copied when the
    source states it; for a paired body part the source's Image Laterality is used; a known
    unpaired body part (CHEST, ...) gets none; anything else (absent or unrecognised Body Part
    Examined, e.g. the veterinary THORAX) gets an empty value, i.e. "unknown".
    """
    body_part = str(ref.get("BodyPartExamined", "")).upper()
    if ref.get("Laterality") in ("R", "L"):
        return str(ref.Laterality), False
    if body_part in PAIRED_BODY_PARTS:
        image_laterality = ref.get("ImageLaterality")
        if image_laterality in ("R", "L"):
            return str(image_laterality), False
        return None, True
    return None, body_part not in UNPAIRED_BODY_PARTS


def _window(sc: pydicom.Dataset, ref: pydicom.Dataset, pixels: np.ndarray) -> None:
    """Copy the source's VOI (window or VOI LUT); compute a window if it has none."""
    centers, widths = ref.get("WindowCenter"), ref.get("WindowWidth")
    if centers is not None and widths is not None:
        c_list = list(centers) if isinstance(centers, MultiValue) else [centers]
        w_list = list(widths) if isinstance(widths, MultiValue) else [widths]
        try:
            usable = (
                len(c_list) == len(w_list) > 0
                and all(float(w) >= 1 for w in w_list)
                and all(float(c) == float(c) for c in c_list)
            )
        except (TypeError, ValueError):
            usable = False
        if usable:
            for keyword in (
                "WindowCenter",
                "WindowWidth",
                "WindowCenterWidthExplanation",
                "VOILUTFunction",
            ):
                if keyword in ref:
                    sc[keyword] = copy.deepcopy(ref[keyword])
            return
    if "VOILUTSequence" in ref and len(ref.VOILUTSequence) > 0:
        sc.VOILUTSequence = copy.deepcopy(ref.VOILUTSequence)
        return
    slope = float(sc.get("RescaleSlope", 1.0))
    intercept = float(sc.get("RescaleIntercept", 0.0))
    lo, hi = (float(v) * slope + intercept for v in np.percentile(pixels, (0.5, 99.5)))
    lo, hi = min(lo, hi), max(lo, hi)
    width = max(hi - lo, 1.0)
    sc.WindowCenter = pydicom.valuerep.DS(lo + width / 2.0, auto_format=True)
    sc.WindowWidth = pydicom.valuerep.DS(width, auto_format=True)
    sc.WindowCenterWidthExplanation = "SharpRay 0.5-99.5 percentile"


def _rescale(sc: pydicom.Dataset, ref: pydicom.Dataset, offset: int) -> None:
    """Copy a non-identity Modality LUT rescale (so the copied window keeps its meaning), folding
    in the ``offset`` by which signed stored values were shifted."""
    slope = float(ref.get("RescaleSlope", 1.0) or 1.0)
    intercept = float(ref.get("RescaleIntercept", 0.0) or 0.0)
    intercept -= offset * slope
    if slope == 1.0 and intercept == 0.0:
        return
    sc.RescaleSlope = pydicom.valuerep.DS(slope, auto_format=True)
    sc.RescaleIntercept = pydicom.valuerep.DS(intercept, auto_format=True)
    sc.RescaleType = ref.get("RescaleType") or "US"


def _vm(value: object) -> int:
    return len(value) if isinstance(value, MultiValue) else 1


def _lossy(sc: pydicom.Dataset, ref: pydicom.Dataset) -> None:
    """Lossy Image Compression: 01 once any ancestor was lossy; method and ratio when known."""
    flag = ref.get("LossyImageCompression")
    ts = str(getattr(getattr(ref, "file_meta", None), "TransferSyntaxUID", ""))
    lossy = flag == "01" or (flag != "00" and ts in _LOSSY_METHOD)
    if not lossy:
        if flag == "00":
            sc.LossyImageCompression = "00"
        return
    sc.LossyImageCompression = "01"
    method = ref.get("LossyImageCompressionMethod")
    if method is None and ts in _LOSSY_METHOD:
        method = _LOSSY_METHOD[ts]
    ratio = ref.get("LossyImageCompressionRatio")
    if method is not None:
        sc.LossyImageCompressionMethod = method
    if ratio is not None and (method is None or _vm(ratio) == _vm(method)):
        sc.LossyImageCompressionRatio = ratio


def _first(value: object) -> float:
    return float(value[0] if isinstance(value, MultiValue) else value)  # type: ignore[arg-type]


def voi_to_unit(values: np.ndarray, voi: pydicom.Dataset) -> np.ndarray:
    """Modality values -> [0, 1] through the first VOI of ``voi`` (PS3.3 C.11.2.1.2: LINEAR,
    LINEAR_EXACT or SIGMOID window, else its VOI LUT), without the photometric inversion."""
    v = np.asarray(values, dtype=np.float64)
    if "WindowCenter" in voi and "WindowWidth" in voi:
        c, w = _first(voi.WindowCenter), _first(voi.WindowWidth)
        func = str(voi.get("VOILUTFunction", "LINEAR") or "LINEAR").upper()
        if func == "SIGMOID":
            x = 1.0 / (1.0 + np.exp(-4.0 * (v - c) / w))
        elif func == "LINEAR_EXACT":
            x = (v - c) / w + 0.5
        elif w <= 1.0:
            x = (v >= c - 0.5).astype(np.float64)
        else:
            x = (v - (c - 0.5)) / (w - 1.0) + 0.5
        return np.clip(x, 0.0, 1.0).astype(np.float32)
    if "VOILUTSequence" in voi:
        item = voi.VOILUTSequence[0]
        bits = int(item.LUTDescriptor[2])
        from pydicom.pixels.processing import apply_voi_lut

        shown = np.asarray(apply_voi_lut(v, voi, index=0), dtype=np.float64)
        return np.clip(shown / float((1 << bits) - 1), 0.0, 1.0).astype(np.float32)
    raise ValueError("no VOI window or VOI LUT")


def presentation_voi(analysis: Analysis, *, on_source: bool = False) -> pydicom.Dataset:
    """The Modality LUT rescale and VOI (window or VOI LUT) under which the corrected SC is shown
    (``on_source``: under which the source image itself is shown), as a dataset holding only those
    attributes: exactly what :func:`build_corrected_sc` writes, without building the SC.

    With ``on_source`` the rescale is the source's own (no shift for signed values) and a window
    the source lacks is computed from the corrected values (same geometry, nearly the same values).
    """
    ref = sanitize_header(analysis.source).dataset
    pixels, offset = _checked_pixels(analysis.corrected, ref)
    voi = pydicom.Dataset()
    if on_source:
        _rescale(voi, ref, 0)
        pixels = analysis.corrected
    else:
        _rescale(voi, ref, offset)
    _window(voi, ref, pixels)
    return voi


def display_unit(analysis: Analysis) -> np.ndarray:
    """The corrected image as the corrected SC displays under its first VOI: float32 [0, 1],
    bright = dense (MONOCHROME1 inverted), the source's rows x columns."""
    ref = sanitize_header(analysis.source).dataset
    pixels, _ = _checked_pixels(analysis.corrected, ref)
    voi = presentation_voi(analysis)
    slope = float(voi.get("RescaleSlope", 1.0))
    intercept = float(voi.get("RescaleIntercept", 0.0))
    unit = voi_to_unit(pixels.astype(np.float64) * slope + intercept, voi)
    if str(ref.PhotometricInterpretation) == "MONOCHROME1":
        unit = 1.0 - unit
    return unit


def source_reference(image: pydicom.Dataset) -> pydicom.Dataset:
    """A Source Image Sequence item for ``image`` with purpose of reference 121322."""
    item = pydicom.Dataset()
    item.ReferencedSOPClassUID = image.SOPClassUID
    item.ReferencedSOPInstanceUID = image.SOPInstanceUID
    item.PurposeOfReferenceCodeSequence = [PURPOSE_SOURCE_FOR_PROCESSING]
    return item


#: Source modalities a derived Secondary Capture keeps as its own Modality.
SOURCE_MODALITIES = frozenset({"CR", "DX"})


def derived_sc(
    ref: pydicom.Dataset,
    pixels: np.ndarray,
    photometric: str,
    producer: Producer,
    *,
    series_instance_uid: str,
    series_number: int,
    instance_number: int,
    sop_instance_uid: str,
    series_description: str,
    equipment: Sequence[hd.ContributingEquipment],
    sources: Sequence[pydicom.Dataset],
    burned_in_annotation: bool,
) -> pydicom.Dataset:
    """A Secondary Capture derived from the (sanitised) source header ``ref``, with what every SC
    the node writes carries: the source's study, patient, geometry (pixel spacing, orientation,
    laterality rules), ImageType DERIVED\\SECONDARY, Conversion Type WSD, Burned In Annotation, a
    Source Image Sequence (purpose 121322) naming ``sources``, and lossy-compression history.
    Written uncompressed (Explicit VR Little Endian). Derivation description and codes are the
    caller's."""
    try:
        spacing: tuple[float, float] | None = valid_pixel_spacing(ref)
    except ValueError:
        spacing = None
    orientation, orientation_type = _orientation(ref)
    laterality, empty_laterality = series_laterality(ref)
    sc = hd.sc.SCImage.from_ref_dataset(
        ref_dataset=ref,
        pixel_array=pixels,
        photometric_interpretation=photometric,
        bits_allocated=8 if pixels.dtype == np.uint8 else 16,
        coordinate_system=hd.CoordinateSystemNames.PATIENT,
        series_instance_uid=series_instance_uid,
        series_number=series_number,
        sop_instance_uid=sop_instance_uid,
        instance_number=instance_number,
        manufacturer=producer.manufacturer,
        # highdicom annotates this argument as tuple[int, int]; it writes any number as DS.
        pixel_spacing=cast(Any, spacing),
        laterality=laterality,
        # Placeholder when the source has none; replaced by an empty value below (Type 2C).
        patient_orientation=orientation or ("L", "F"),
        anatomical_orientation_type=orientation_type,
        transfer_syntax_uid=ExplicitVRLittleEndian,
        contributing_equipment=list(equipment),
        series_description=series_description,
        manufacturer_model_name=producer.model_name,
        software_versions=producer.software_version,
        institution_name=producer.institution,
        coding_schemes=coding_schemes(),
    )
    # The full Patient and Study modules, not only the attributes from_ref_dataset takes.
    sc.copy_patient_and_study_information(ref)
    # General Series Modality: the source's (CR/DX) rather than highdicom's "OT". The SC Image IOD
    # does not restrict it (PS3.3 A.8.1), and viewers then treat the series as the radiograph it
    # is (OHIF opens "OT" series in a cine player).
    if str(ref.get("Modality", "")) in SOURCE_MODALITIES:
        sc.Modality = ref.Modality

    if orientation is None:
        sc["PatientOrientation"] = DataElement(0x00200020, "CS", None)
    if empty_laterality and "Laterality" not in sc:
        sc["Laterality"] = DataElement(0x00200060, "CS", None)
    if ref.get("BodyPartExamined"):
        sc.BodyPartExamined = ref.BodyPartExamined

    # General Image / SC Equipment: how the image was derived, and from what.
    sc.ImageType = ["DERIVED", "SECONDARY"]
    sc.ConversionType = "WSD"
    sc.BurnedInAnnotation = "YES" if burned_in_annotation else "NO"
    sc.SourceImageSequence = [source_reference(image) for image in sources]
    _lossy(sc, ref)
    return sc


def build_corrected_sc(
    analysis: Analysis,
    producer: Producer,
    series_instance_uid: str,
    series_number: int,
    instance_number: int = 1,
    *,
    sop_instance_uid: str | None = None,
) -> pydicom.Dataset:
    """Build the motion-corrected Secondary Capture for ``analysis.source``.

    ``analysis.corrected`` must have the source's shape and hold integer stored values that fit the
    source's Bits Stored (signed for a signed source), in the source's photometric interpretation.
    ``sop_instance_uid`` defaults to a new UID (pass a stable one to make retries idempotent). The
    source dataset is not modified (a sanitised copy of its header is used, see :mod:`sanitize`).

    Raises ValueError/TypeError when the corrected image or the model identity does not fit.
    """
    header = sanitize_header(analysis.source)
    for change in header.changes:
        log.info("source header sanitised for SC: %s", change)
    ref = header.dataset
    pixels, offset = _checked_pixels(analysis.corrected, ref)
    photometric = str(ref.PhotometricInterpretation)
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise ValueError(f"photometric interpretation {photometric} is not supported")

    model = analysis.deblur_model
    demo = model.demonstration_only
    series_description = fit_text(
        [
            f"Motion-corrected by {producer.model_name} {model.version} ({model.name})",
            f"Motion-corrected by {producer.model_name} {model.version}",
        ],
        LO_MAX,
        demo,
    )
    equipment = [
        processing_equipment(producer, "Motion blur correction and DICOM encoding"),
        algorithm_equipment(model, producer, f"Motion blur reduction ({deblur_kind(model)})"),
    ]
    sc = derived_sc(
        ref,
        pixels,
        photometric,
        producer,
        series_instance_uid=series_instance_uid,
        series_number=series_number,
        instance_number=instance_number,
        sop_instance_uid=sop_instance_uid or generate_uid(),
        series_description=series_description,
        equipment=equipment,
        sources=[ref],
        burned_in_annotation=False,
    )

    # Image Pixel: the source's bit depth (safe: native encoding, values checked to fit).
    bits_stored = int(ref.BitsStored)
    sc.BitsStored = bits_stored
    sc.HighBit = bits_stored - 1

    method = analysis.correction
    description = (
        f"Motion blur reduced by {producer.model_name} {producer.software_version} with "
        f"{deblur_kind(model)} {model.name} {model.version} (Device UID {model.device_uid})"
        + (f": {method}." if isinstance(method, str) else ".")
    )
    # what was done to this image first: the model's general description only where it fits
    # (a mean of two corrections describes both)
    candidates = [f"{description} {model.description}", description]
    sc.DerivationDescription = fit_text(
        candidates if model.description else [description], ST_MAX, demo
    )
    sc.DerivationCodeSequence = [DERIVATION_EDGE_ENHANCEMENT, DERIVATION_DEBLUR]

    _rescale(sc, ref, offset)
    _window(sc, ref, pixels)
    return sc
