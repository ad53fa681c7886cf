"""Intended use, enforced: may the classifier speak about this image?

The classifier's manifest (``intended_use``) says what it was made for: modalities, body parts,
views, the age range of its training population, the pixel-size range. Before classifying, the node
checks the header where it says something (an absent attribute is no reason to refuse: headers are
often empty) and the image itself (:mod:`models.scope`: does it look like a frontal chest
radiograph?), because headers are also often wrong. Each check can be switched off in
``scope`` of the settings.

An image out of scope gets no diagnosis and no heatmap; the SR says "not analysed" with the coded
reasons (scheme ``99SHARPRAY``). Motion correction does not depend on it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pydicom
from numpy.typing import NDArray

from models.manifest import KERMANY_INTENDED_USE, IntendedUse
from models.scope import ScopeModel
from node.pipeline.preprocess import header_pixel_spacing_mm

#: The intended use assumed for a classifier whose manifest states none (the Kermany models).
DEFAULT_INTENDED_USE = KERMANY_INTENDED_USE

#: Reason codes (scheme 99SHARPRAY): code -> meaning.
REASONS: dict[str, str] = {
    "SR-SCOPE-MODALITY": "Modality outside the intended use",
    "SR-SCOPE-BODYPART": "Body part outside the intended use",
    "SR-SCOPE-VIEW": "View position outside the intended use",
    "SR-SCOPE-AGE": "Patient age outside the trained population",
    "SR-SCOPE-SPACING": "Pixel spacing outside the intended use",
    "SR-SCOPE-IMAGE": "Image does not look like a frontal chest radiograph",
}


@dataclass(frozen=True)
class ScopeFlags:
    """Which checks run (from ``scope`` in the settings)."""

    modality: bool = True
    body_part: bool = True
    view: bool = True
    age: bool = True
    pixel_spacing: bool = True
    image: bool = True
    image_threshold: float | None = None


@dataclass(frozen=True)
class ScopeDecision:
    in_scope: bool
    reasons: tuple[tuple[str, str], ...] = ()  # (code, detail without patient values)
    image_score: float | None = None

    def summary(self) -> str:
        if self.in_scope:
            return "in scope"
        return "not analysed: " + "; ".join(d for _, d in self.reasons)


def _text(ds: pydicom.Dataset, keyword: str) -> str:
    v = ds.get(keyword)
    return "" if v is None else str(v).strip().upper()


def age_years(value: str) -> float | None:
    """A DICOM AS value (``005Y``, ``018M``, ``003W``, ``010D``) in years, else None.

    A bare number (``62``, a common misuse of AS) is read as years.
    """
    m = re.fullmatch(r"\s*(\d{1,3})\s*([DWMY]?)\s*", value or "")
    if not m:
        return None
    n = int(m.group(1))
    return n / {"D": 365.25, "W": 52.18, "M": 12.0, "Y": 1.0, "": 1.0}[m.group(2)]


def check_header(ds: pydicom.Dataset, use: IntendedUse, flags: ScopeFlags) -> list[tuple[str, str]]:
    """Reasons the header puts the image out of scope (empty: none)."""
    out: list[tuple[str, str]] = []
    modality = _text(ds, "Modality")
    if flags.modality and modality and modality not in use.modalities:
        out.append(
            ("SR-SCOPE-MODALITY", f"modality {modality} (intended: {'/'.join(use.modalities)})")
        )
    part = _text(ds, "BodyPartExamined")
    if flags.body_part and part and part not in use.body_parts:
        out.append(
            ("SR-SCOPE-BODYPART", f"body part {part} (intended: {'/'.join(use.body_parts)})")
        )
    view = _text(ds, "ViewPosition")
    if flags.view and view and view not in use.view_positions:
        out.append(("SR-SCOPE-VIEW", f"view {view} (intended: {'/'.join(use.view_positions)})"))
    if flags.age and use.age_years is not None:
        years = age_years(_text(ds, "PatientAge"))
        lo, hi = use.age_years
        if years is not None and not lo <= years <= hi:
            # the age itself is patient data: say only that it is outside the range
            out.append(("SR-SCOPE-AGE", f"patient age outside {lo:g}-{hi:g} years"))
    if flags.pixel_spacing and use.pixel_spacing_mm is not None:
        sp = header_pixel_spacing_mm(ds)
        lo, hi = use.pixel_spacing_mm
        if sp is not None and not lo <= sp <= hi:
            out.append(("SR-SCOPE-SPACING", f"pixel spacing {sp:.3g} mm (intended {lo:g}-{hi:g})"))
    return out


def check_scope(
    ds: pydicom.Dataset,
    shown01: NDArray[np.floating],
    use: IntendedUse | None,
    model: ScopeModel | None,
    flags: ScopeFlags,
) -> ScopeDecision:
    """Header and image checks; ``shown01`` is the image as displayed (bright = dense)."""
    use = use or DEFAULT_INTENDED_USE
    reasons = check_header(ds, use, flags)
    score = None
    if flags.image and model is not None:
        score = model.score(shown01)
        threshold = flags.image_threshold or model.threshold
        if score > threshold:
            reasons.append(
                (
                    "SR-SCOPE-IMAGE",
                    f"image unlike a frontal chest radiograph (score {score:.1f} > {threshold:.1f})",
                )
            )
    return ScopeDecision(not reasons, tuple(reasons), score)
