"""Run an image-to-image model on a large image in fixed-size overlapping tiles (numpy only).

Used by the node to run the deblurring generator on 2–3k px radiographs with bounded memory and a
fixed tile shape (which also suits TensorRT profiles and GPU batching).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

F32Array = NDArray[np.float32]
TileFn = Callable[[F32Array], F32Array]


def _pad_reflect(a: F32Array, ph: int, pw: int) -> F32Array:
    """Pad bottom/right by ``ph``/``pw`` pixels, mirroring without repeating the edge pixel.

    numpy's ``reflect`` mode handles pads longer than the axis by reflecting repeatedly; an axis of
    length 1 cannot be reflected and is repeated instead.
    """
    if ph == 0 and pw == 0:
        return a
    out = np.pad(a, ((0, ph), (0, 0)), mode="reflect" if a.shape[0] > 1 else "edge")
    out = np.pad(out, ((0, 0), (0, pw)), mode="reflect" if a.shape[1] > 1 else "edge")
    return out.astype(np.float32, copy=False)


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of size ``tile`` covering ``length`` (>= tile) with at least
    ``overlap`` pixels shared between neighbours; the last tile ends exactly at ``length``."""
    if length <= tile:
        return [0]
    stride = tile - overlap
    n = 1 + math.ceil((length - tile) / stride)
    starts = [i * stride for i in range(n - 1)] + [length - tile]
    return starts


def _ramp(tile: int, start: int, length: int, overlap: int) -> NDArray[np.float64]:
    """1-D blending weight of one tile along one axis.

    On a side that has a neighbour, the outer ``overlap // 4`` pixels get weight 0 (the model saw
    padding or a cut there: its output is least reliable), then the weight rises linearly to 1 over
    the rest of the overlap. Elsewhere, including image borders, the weight is 1. Neighbouring
    tiles overlap by at least ``overlap`` pixels, so every pixel has a positive total weight.
    """
    w = np.ones(tile, dtype=np.float64)
    if overlap <= 0:
        return w
    m = overlap // 4
    r = np.clip((np.arange(overlap, dtype=np.float64) + 0.5 - m) / (overlap - 2 * m), 0.0, 1.0)
    if start > 0:
        w[:overlap] = np.minimum(w[:overlap], r)
    if start + tile < length:
        w[tile - overlap :] = np.minimum(w[tile - overlap :], r[::-1])
    return w


def run_tiled(
    image: F32Array,
    fn: TileFn,
    tile: int,
    overlap: int,
    multiple_of: int = 4,
    batch_size: int = 1,
) -> F32Array:
    """Apply ``fn`` to ``image`` tile by tile and blend the tiles seamlessly.

    * ``image``: [H, W], or [C, H, W] for a model of C input channels; converted to float32.
    * ``fn``: maps a float32 batch [N, C, tile, tile] to [N, 1, tile, tile] (e.g. an ONNX session).
    * ``tile``, ``overlap``: tile side and minimum overlap between neighbouring tiles, in pixels;
      both must be multiples of ``multiple_of`` and ``overlap < tile``.
    * ``multiple_of``: the model's size constraint (4 for the pixel-unshuffle generator).
    * ``batch_size``: tiles per call of ``fn`` (the last call may be smaller).

    The image is first padded by reflection (bottom/right) to a multiple of ``multiple_of``, and
    along any axis shorter than ``tile`` up to ``tile``: a small image runs as one padded tile. Tiles
    of fixed size ``tile`` start every ``tile - overlap`` pixels, the last one aligned with the end.
    Outputs are blended with ramp weights over the overlaps (weight 0 on the outer quarter of the
    overlap, then linear up to 1; 1 elsewhere), accumulated in float64, then cropped back to
    [H, W]. With ``fn`` = identity the result equals the input exactly; with a convolution-like
    ``fn`` whose reach is below ``overlap // 4`` it matches the whole-image result to rounding,
    and for a deeper model the difference stays small because tile borders get little weight.
    """
    if image.ndim not in (2, 3):
        raise ValueError(f"run_tiled expects [H, W] or [C, H, W], got shape {image.shape}")
    if tile <= 0 or tile % multiple_of or overlap % multiple_of:
        raise ValueError(
            f"tile ({tile}) and overlap ({overlap}) must be multiples of {multiple_of}"
        )
    if not 0 <= overlap < tile:
        raise ValueError(f"overlap ({overlap}) must be in [0, tile={tile})")
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    img = np.asarray(image, dtype=np.float32)
    channels = img[None] if img.ndim == 2 else img
    h, w = channels.shape[1:]
    hp = max(math.ceil(h / multiple_of) * multiple_of, tile)
    wp = max(math.ceil(w / multiple_of) * multiple_of, tile)
    padded = np.stack([_pad_reflect(c, hp - h, wp - w) for c in channels])

    ys, xs = tile_starts(hp, tile, overlap), tile_starts(wp, tile, overlap)
    acc = np.zeros((hp, wp), dtype=np.float64)
    wsum = np.zeros((hp, wp), dtype=np.float64)
    coords = [(y, x) for y in ys for x in xs]
    for b in range(0, len(coords), batch_size):
        chunk = coords[b : b + batch_size]
        batch = np.stack([padded[:, y : y + tile, x : x + tile] for y, x in chunk])
        out = np.asarray(fn(np.ascontiguousarray(batch, dtype=np.float32)))
        expected = (len(chunk), 1, tile, tile)
        if out.shape != expected:
            raise ValueError(f"tile function returned shape {out.shape}, expected {expected}")
        for i, (y, x) in enumerate(chunk):
            wy = _ramp(tile, y, hp, overlap)
            wx = _ramp(tile, x, wp, overlap)
            wt = wy[:, None] * wx[None, :]
            acc[y : y + tile, x : x + tile] += wt * out[i, 0].astype(np.float64)
            wsum[y : y + tile, x : x + tile] += wt
    result = acc / wsum
    return result[:h, :w].astype(np.float32)
