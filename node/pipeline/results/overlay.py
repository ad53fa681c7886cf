"""The heatmap burned into a colour Secondary Capture, for any viewer.

The picture is the corrected image as its SC displays (first VOI window, MONOCHROME1 inverted),
in grey, with the heatmap blended over it in a rainbow colour map ("jet": blue = low, red = high)
where it is at least :data:`COLOUR_FROM` (the rest stays exactly grey), the hot regions outlined,
and a banner across the top with the explained finding, its probability, the models and a colour
legend. It has the source's rows x columns and pixel spacing, so it hangs beside the original.

Burned In Annotation is YES (the banner is text). The banner holds no patient data.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pydicom
from PIL import Image, ImageDraw
from pydicom.uid import generate_uid

from node.pipeline.results.banner_text import banner_font, fit_line
from node.pipeline.results.common import (
    GRAD_CAM,
    LO_MAX,
    NOT_FOR_DIAGNOSTIC_USE,
    ST_MAX,
    fit_text,
    model_equipment,
)
from node.pipeline.results.inputs import Analysis, Producer
from node.pipeline.results.regions import HotRegion
from node.pipeline.results.sanitize import sanitize_header
from node.pipeline.results.sc import derived_sc, display_unit

__all__ = ["COLOUR_FROM", "MAX_ALPHA", "build_overlay_sc", "jet", "render_overlay"]

log = logging.getLogger(__name__)

COLOUR_FROM = 0.2  # heatmap values below this leave the grey image untouched
MAX_ALPHA = 0.6  # opacity of the colour at heatmap 1.0
OUTLINE_RGB = (255, 255, 255)


def jet(x: np.ndarray) -> np.ndarray:
    """The "jet" colour map: [0, 1] -> RGB in [0, 1] (dark blue, cyan, yellow, dark red)."""
    x = np.clip(np.asarray(x, dtype=np.float32), 0.0, 1.0)[..., None]
    centres = np.array([0.75, 0.5, 0.25], dtype=np.float32)  # R, G, B
    rgb: np.ndarray = np.clip(1.5 - np.abs(4.0 * x - 4.0 * centres), 0.0, 1.0)
    return rgb


def image_state(analysis: Analysis) -> str:
    """What the image under the heatmap is: corrected (by what) or as acquired. The gate leaves a
    sharp image unchanged, and neither banner nor description may say it was corrected."""
    deblur = analysis.deblur_model
    if analysis.classified == "corrected":
        return f"motion-corrected by {deblur.name} {deblur.version}"
    return "as acquired (not motion-corrected)"


def image_line(analysis: Analysis, producer: Producer) -> str:
    """The banner's line on the image (:func:`image_state`, with the producing node's model)."""
    line = f"Image: {image_state(analysis)}"
    return f"{line} ({producer.model_name})" if analysis.classified == "corrected" else line


def banner_lines(analysis: Analysis, producer: Producer) -> list[str]:
    """The banner's text (no patient data)."""
    f = analysis.explained_finding
    clf, deblur = analysis.classifier_model, analysis.deblur_model
    lines = [
        f"AI: {f.code.meaning} p={f.probability:.2f}",
        f"Heatmap: Grad-CAM of {f.code.meaning}, {clf.name} {clf.version}",
        image_line(analysis, producer),
    ]
    if clf.demonstration_only or deblur.demonstration_only:
        lines.append(NOT_FOR_DIAGNOSTIC_USE)
    return lines


def render_overlay(
    grey: np.ndarray,
    heatmap: np.ndarray,
    lines: Sequence[str],
    regions: Sequence[HotRegion] = (),
) -> np.ndarray:
    """RGB uint8 (rows, cols, 3): ``grey`` ([0, 1], bright = dense) with ``heatmap`` ([0, 1])
    blended where it is at least :data:`COLOUR_FROM`, ``regions`` outlined, ``lines`` in a banner.
    """
    if grey.shape != heatmap.shape:
        raise ValueError(f"heatmap shape {heatmap.shape} differs from the image's {grey.shape}")
    rows, cols = grey.shape
    g = np.clip(grey.astype(np.float32), 0.0, 1.0)[..., None]
    h = np.clip(heatmap.astype(np.float32), 0.0, 1.0)
    alpha = (np.clip((h - COLOUR_FROM) / (1.0 - COLOUR_FROM), 0.0, 1.0) * MAX_ALPHA)[..., None]
    rgb = (1.0 - alpha) * g + alpha * jet(h)
    image = Image.fromarray(np.rint(rgb * 255.0).astype(np.uint8), mode="RGB")
    draw = ImageDraw.Draw(image)

    line_width = max(1, round(min(rows, cols) / 500))
    for region in regions:
        points = [(float(x), float(y)) for x, y in region.outline]
        draw.line(points, fill=OUTLINE_RGB, width=line_width, joint="curve")

    size = max(8, round(min(rows, cols) / 48))
    font = banner_font(size)
    pad = max(2, size // 3)
    step = size + pad
    height = min(rows, pad + step * len(lines))
    legend_w = min(cols // 4, 12 * size)
    text_w = cols - 3 * pad - legend_w
    # darken the banner area so the text reads on any image
    band = np.asarray(image, dtype=np.float32)
    band[:height] *= 0.3
    image = Image.fromarray(np.rint(band).astype(np.uint8), mode="RGB")
    draw = ImageDraw.Draw(image)
    for i, text in enumerate(lines):
        colour = (255, 255, 0) if text == NOT_FOR_DIAGNOSTIC_USE else (255, 255, 255)
        draw.text((pad, pad + i * step), fit_line(draw, text, font, text_w), fill=colour, font=font)
    # colour legend: the colours used, from COLOUR_FROM (left) to 1 (right)
    if legend_w >= 16 and height >= 3 * pad + size:
        x0, x1 = cols - pad - legend_w, cols - pad
        bar_h = max(3, size // 2)
        ramp = jet(np.linspace(COLOUR_FROM, 1.0, x1 - x0, dtype=np.float32))
        bar = np.rint(np.repeat(ramp[None], bar_h, axis=0) * 255.0).astype(np.uint8)
        image.paste(Image.fromarray(bar, mode="RGB"), (x0, pad))
        small = banner_font(max(8, size * 3 // 4))
        draw.text((x0, pad + bar_h + 1), "low", fill=(255, 255, 255), font=small)
        draw.text((x1, pad + bar_h + 1), "high", fill=(255, 255, 255), font=small, anchor="ra")
    return np.asarray(image, dtype=np.uint8)


def build_overlay_sc(
    analysis: Analysis,
    producer: Producer,
    series_instance_uid: str,
    series_number: int,
    instance_number: int = 1,
    *,
    corrected_sc: pydicom.Dataset | None = None,
    regions: Sequence[HotRegion] = (),
    sop_instance_uid: str | None = None,
) -> pydicom.Dataset:
    """The colour heatmap Secondary Capture for ``analysis`` (see the module docstring).

    Its Source Image Sequence names the source radiograph and, when given, ``corrected_sc`` (pass
    it only when that object is sent as well). Raises ValueError when the analysis has no heatmap.
    """
    if analysis.heatmap is None:
        raise ValueError("analysis has no heatmap to show")
    header = sanitize_header(analysis.source)
    ref = header.dataset
    heat = np.asarray(analysis.heatmap, dtype=np.float32)
    if heat.shape != (int(ref.Rows), int(ref.Columns)):
        raise ValueError(f"heatmap has shape {heat.shape}, the source {(ref.Rows, ref.Columns)}")
    if not np.all(np.isfinite(heat)):
        raise ValueError("heatmap holds non-finite values")
    grey = display_unit(analysis)
    rgb = render_overlay(grey, heat, banner_lines(analysis, producer), regions)

    f = analysis.explained_finding
    clf, deblur = analysis.classifier_model, analysis.deblur_model
    demo = clf.demonstration_only or deblur.demonstration_only
    series_description = fit_text(
        [
            f"AI heatmap {f.code.meaning} ({clf.name} {clf.version})",
            f"AI heatmap {f.code.meaning} {clf.version}",
            f"AI heatmap {clf.version}",
        ],
        LO_MAX,
        demo,
    )
    equipment = model_equipment(
        producer, clf, deblur, "Heatmap overlay rendering and DICOM encoding"
    )
    sources = [ref] if corrected_sc is None else [ref, corrected_sc]
    sc = derived_sc(
        ref,
        rgb,
        "RGB",
        producer,
        series_instance_uid=series_instance_uid,
        series_number=series_number,
        instance_number=instance_number,
        sop_instance_uid=sop_instance_uid or generate_uid(),
        series_description=series_description,
        equipment=equipment,
        sources=sources,
        burned_in_annotation=True,
    )
    description = (
        f"Grad-CAM heatmap of {f.code.meaning} (p={f.probability:.3f}) from {clf.name} "
        f"{clf.version} (Device UID {clf.device_uid}) blended over the image "
        f"{image_state(analysis)}; {len(regions)} hot region(s) outlined at the heatmap's "
        f"iso-line; banner with finding, probability and models burned in."
    )
    sc.DerivationDescription = fit_text([description], ST_MAX, demo)
    sc.DerivationCodeSequence = [GRAD_CAM]
    return sc
