"""Text on burned-in banners (heatmap overlay SC, image-quality notice SC): a font that exists on
every Pillow build, and lines shortened to fit."""

from __future__ import annotations

from PIL import ImageDraw, ImageFont


def banner_font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's own font at ``size`` px (a fixed bitmap font where Pillow has no FreeType)."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ValueError, OSError):  # Pillow built without FreeType: fixed bitmap font
        return ImageFont.load_default()


def fit_line(draw: ImageDraw.ImageDraw, text: str, font: object, width: float) -> str:
    """``text`` shortened (with "~") until it fits ``width`` pixels."""
    if draw.textlength(text, font=font) <= width:  # type: ignore[arg-type]
        return text
    while len(text) > 1 and draw.textlength(text + "~", font=font) > width:  # type: ignore[arg-type]
        text = text[:-1]
    return text.rstrip() + "~"
