"""The heatmap's hot regions as closed outlines, in the coordinates DICOM graphics use.

A hot region is a connected area where the heatmap is at least ``threshold`` (by default 0.5 of
its peak: the heatmap is scaled to [0, 1]). Its outline is the ``threshold`` iso-line
(:func:`skimage.measure.find_contours` on the region's bounding box, padded with zeros so that a
region touching the image border is still closed), simplified with
:func:`skimage.measure.approximate_polygon`. Holes inside a region are not outlined.

Coordinates are ``(column, row)`` pairs with the origin at the top-left corner of the top-left
pixel (the PIXEL annotation units of presentation states and the SCOORD convention of SR, PS3.3
C.10.5.1.2 and C.18.6.1.2), so a pixel centre is at ``index + 0.5``; every point lies within
``[0, columns] x [0, rows]``. Each outline is closed: its last point repeats its first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from skimage.measure import approximate_polygon, find_contours, label, regionprops

__all__ = ["HotRegion", "hot_regions"]


@dataclass(frozen=True)
class HotRegion:
    """One connected hot region of a heatmap."""

    outline: np.ndarray  # (n, 2) float32 (column, row), closed, n >= 4
    area_px: int  # pixels at or above the threshold
    peak: float  # highest heatmap value inside
    mean: float  # mean heatmap value inside
    centroid: tuple[float, float]  # (column, row) in the same coordinates as the outline

    @property
    def bounding_box(self) -> tuple[float, float, float, float]:
        """(left, top, right, bottom) of the outline."""
        x, y = self.outline[:, 0], self.outline[:, 1]
        return float(x.min()), float(y.min()), float(x.max()), float(y.max())


def hot_regions(
    heatmap: np.ndarray,
    threshold: float = 0.5,
    *,
    max_regions: int = 5,
    min_area_fraction: float = 0.0005,
    tolerance: float = 1.5,
) -> list[HotRegion]:
    """The largest connected regions where ``heatmap >= threshold``, largest first.

    Regions smaller than ``min_area_fraction`` of the image (or 4 pixels) are left out.
    ``tolerance`` is the polygon simplification in pixels. Raises ValueError for a heatmap that is
    not a finite 2-D array or a threshold outside (0, 1].
    """
    h = np.asarray(heatmap, dtype=np.float32)
    if h.ndim != 2 or h.size == 0:
        raise ValueError(f"heatmap must be a 2-D array, not of shape {h.shape}")
    if not np.all(np.isfinite(h)):
        raise ValueError("heatmap holds non-finite values")
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold {threshold} is not in (0, 1]")
    rows, cols = h.shape
    hot = h >= threshold
    if not hot.any():
        return []
    labels = label(hot, connectivity=2)
    min_area = max(4, int(min_area_fraction * rows * cols))
    props = sorted(
        (p for p in regionprops(labels, intensity_image=h) if p.area >= min_area),
        key=lambda p: (-int(p.area), p.label),
    )[:max_regions]
    out: list[HotRegion] = []
    for p in props:
        r0, c0, r1, c1 = p.bbox
        # Only this region's values, with a zero border: its iso-line is one closed contour.
        crop = np.where(labels[r0:r1, c0:c1] == p.label, h[r0:r1, c0:c1], 0.0)
        padded = np.pad(crop, 1, mode="constant", constant_values=0.0)
        contours = find_contours(padded, threshold)
        if not contours:
            continue
        outer = max(contours, key=len)  # the outer boundary is the longest
        outer = approximate_polygon(outer, tolerance=tolerance)
        # padded (row, col) at pixel centres -> image (column, row), TLHC origin
        rr = np.clip(outer[:, 0] - 1 + r0 + 0.5, 0.0, float(rows))
        cc = np.clip(outer[:, 1] - 1 + c0 + 0.5, 0.0, float(cols))
        pts = np.stack([cc, rr], axis=1).astype(np.float32)
        if not np.array_equal(pts[0], pts[-1]):
            pts = np.vstack([pts, pts[:1]])
        if len(pts) < 4:  # fewer than three distinct corners: not an area
            continue
        cy, cx = p.centroid
        out.append(
            HotRegion(
                outline=pts,
                area_px=int(p.area),
                peak=float(p.intensity_max),
                mean=float(p.intensity_mean),
                centroid=(float(cx) + 0.5, float(cy) + 0.5),
            )
        )
    return out
