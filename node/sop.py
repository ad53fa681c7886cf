"""What the node speaks: SOP classes and transfer syntaxes it accepts, in one place.

The SCP's presentation contexts, the pipeline's input check and the conformance summary in the
README are all derived from these lists.
"""

from __future__ import annotations

from pydicom.uid import (
    JPEG2000,
    UID,
    Comprehensive3DSRStorage,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    GrayscaleSoftcopyPresentationStateStorage,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
    SecondaryCaptureImageStorage,
    SegmentationStorage,
)

CR_IMAGE = UID("1.2.840.10008.5.1.4.1.1.1")
DX_PRESENTATION = UID("1.2.840.10008.5.1.4.1.1.1.1")
DX_PROCESSING = UID("1.2.840.10008.5.1.4.1.1.1.1.1")
SECONDARY_CAPTURE = UID("1.2.840.10008.5.1.4.1.1.7")
VERIFICATION = UID("1.2.840.10008.1.1")

# SOP classes the C-STORE SCP accepts; all of them are processed.
PROCESSABLE_SOP_CLASSES: tuple[UID, ...] = (
    CR_IMAGE,
    DX_PRESENTATION,
    DX_PROCESSING,
    SECONDARY_CAPTURE,
)

# Transfer syntaxes accepted for storage (and decodable by the pipeline's pixel decoders).
ACCEPTED_TRANSFER_SYNTAXES: tuple[UID, ...] = (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    JPEG2000Lossless,
    JPEG2000,
    RLELossless,
)


# SOP class of each result object the node writes (Instance.result_kind -> SOP class), all in
# Explicit VR Little Endian. docs/conformance.md is generated from these lists (node.conformance).
RESULT_SOP_CLASSES: dict[str, UID] = {
    "sc": SecondaryCaptureImageStorage,  # corrected image
    "overlay": SecondaryCaptureImageStorage,  # heatmap burned over the corrected image
    "gsps": GrayscaleSoftcopyPresentationStateStorage,
    "seg": SegmentationStorage,
    "sr": Comprehensive3DSRStorage,
}
RESULT_TRANSFER_SYNTAX: UID = ExplicitVRLittleEndian
