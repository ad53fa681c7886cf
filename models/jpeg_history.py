"""Does this 8-bit image still carry a JPEG codec's quantisation? (numpy + scipy only)

A baseline JPEG stores each 8×8 block's DCT coefficients as integer multiples of a quantisation
step ``Q(u, v)``; decoding rounds the inverse transform to integers, which moves each coefficient
by a rounding error of standard deviation about 0.3 grey levels. So in a decoded JPEG the DCT
coefficients of the blocks on the codec's grid lie on a lattice ``k · Q(u, v)``, while in an image
that was never so compressed (or was blurred, resampled or re-noised since) they are spread
continuously. For the lowest AC frequencies this module finds the step ``q`` (2 … 40 grey levels)
whose lattice the coefficients fit best, ``|mean exp(2πi c / q)|`` over the coefficients at least
``q / 2`` from zero; a codec's lattice gives about 0.9, continuous coefficients about
``1 / sqrt(n)``.

Why the motion estimate asks: its second look (docs/models.md, the tenth round) takes the frame's
white noise out of the spectrum; in a JPEG the "noise" it measures is the codec's, not the
detector's quanta, and taking it out leaves the block grid's and the quantisation's patterns for
the motion fit to find (false alarms on JPEG thumbnails).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.fft import dctn

#: The AC frequencies examined (the lowest, where steps are small but not 1 at usual qualities).
FREQUENCIES = ((0, 1), (1, 0), (1, 1), (0, 2), (2, 0))
STEPS = np.arange(2, 41)
#: Lattice fit from which the image counts as a decoded JPEG: on MHH training images (224 and
#: 640 px) JPEG at quality 75 / 85 fit 0.94–0.97 / 0.885–0.91, the same never compressed, blurred
#: after JPEG, or with the grid shifted 0.10–0.62 (docs/models.md, the tenth round). Quality 95
#: (steps of 1–2) fits like an uncompressed image, and the second look raised no alarm there.
THRESHOLD = 0.75
#: At most this many blocks are examined (evenly spaced), bounding the cost on large frames.
MAX_BLOCKS = 8192
#: Least coefficients off zero for a frequency to count.
MIN_COEFFICIENTS = 64


def lattice_fit(image01: NDArray[np.floating]) -> float:
    """The best lattice fit of the lowest AC DCT coefficients of the 8×8 blocks (0 … 1), on the
    grey values scaled to 0 … 255; 0 for an image that is not 8-bit (values off the 1/255 grid)
    or too small."""
    a = np.asarray(image01, dtype=np.float64) * 255.0
    if not np.allclose(a, np.round(a), atol=1e-3):
        return 0.0  # not 8-bit grey levels: no 8-bit JPEG decoded as it is
    h, w = (a.shape[0] // 8) * 8, (a.shape[1] // 8) * 8
    if h < 16 or w < 16:
        return 0.0
    blocks = np.round(a[:h, :w]).reshape(h // 8, 8, w // 8, 8).transpose(0, 2, 1, 3) - 128.0
    blocks = blocks.reshape(-1, 8, 8)
    if len(blocks) > MAX_BLOCKS:
        blocks = blocks[:: -(-len(blocks) // MAX_BLOCKS)]
    coeffs = dctn(blocks, axes=(1, 2), norm="ortho")
    best = 0.0
    for u, v in FREQUENCIES:
        c = coeffs[:, u, v]
        for q in STEPS:
            off = c[np.abs(c) >= q / 2.0]
            if off.size < MIN_COEFFICIENTS:
                continue
            fit = float(np.abs(np.exp(2j * np.pi * off / q).mean()))
            best = max(best, fit)
    return best


def decoded_jpeg(image01: NDArray[np.floating], threshold: float = THRESHOLD) -> bool:
    """Whether the image's block DCT coefficients lie on a JPEG quantisation lattice."""
    return lattice_fit(image01) >= threshold
