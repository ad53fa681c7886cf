"""The shadows in a radiograph that need not have moved with the patient.

The collimator hangs on the tube and a lead marker usually lies on the detector: when the
patient moves during the exposure, their shadows (and the flat borders a processing step may
add) stay sharp while the anatomy blurs. A deconvolution with one kernel for the whole frame
explains such a sharp edge as the blurred image of an even sharper one and writes its echoes
into the anatomy (docs/models.md, "Collimation that does not move with the patient").

:func:`find_shadows` is a first finder from the image alone: large areas whose local mean lies
at the frame's extremes (unexposed, lead, direct exposure). It also takes dense anatomy that
saturates at a frame's edge; such pixels are then left uncorrected, not harmed.
:func:`shadows_of` is the same, found once per frame: the motion estimate, the shape step and
the fallback each ask for the shadows of the same frame.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage as ndi

#: the local mean's window (px): wide enough to see past the quantum noise
WINDOW = 9
#: how close to the frame's extremes (grey, of 1) a shadow's local mean lies
DELTA = 0.02
#: the smallest shadow, as a share of the frame (labels and small markers are left alone)
MIN_SHARE = 0.002


def find_shadows(
    image01: NDArray[np.floating],
    window: int = WINDOW,
    delta: float = DELTA,
    min_share: float = MIN_SHARE,
    square: bool = False,
) -> NDArray[np.bool_]:
    """True where the frame shows a shadow: pixels whose ``window``² local mean lies within
    ``delta`` of the 0.1 or 99.9 percentile of that mean, in connected areas of at least
    ``min_share`` of the frame, widened by half the window so their edges are out too.

    ``square``: widened by the window's own (square) shape, so a rectangular shadow comes back
    whole, its corners too (the fifty-seventh round's candidate); False: by a diamond (steps to
    the four neighbours), which leaves a rectangle's corners out — a marker's missed corners
    are sharp edges the fit then explains (docs/models.md, "1 mm of motion behind sharp
    shadows")."""
    img = np.asarray(image01, dtype=np.float64)
    if img.ndim != 2:
        raise ValueError(f"a single-frame grey image is needed, got shape {img.shape}")
    mean = ndi.uniform_filter(img, window)
    lo, hi = np.percentile(mean, [0.1, 99.9])
    extreme = (mean <= lo + delta) | (mean >= hi - delta)
    labels, n = ndi.label(extreme)
    if n == 0:
        return np.zeros(img.shape, dtype=bool)
    sizes = np.asarray(ndi.sum(extreme, labels, index=np.arange(1, n + 1)))
    keep = np.zeros(n + 1, dtype=bool)
    keep[1:] = sizes >= min_share * img.size
    if not keep.any():
        return np.zeros(img.shape, dtype=bool)
    structure = ndi.generate_binary_structure(2, 2 if square else 1)
    out: NDArray[np.bool_] = ndi.binary_dilation(
        keep[labels], structure=structure, iterations=max(window // 2, 1)
    )
    return out


#: frames whose shadows :func:`shadows_of` keeps (a worker asks for one frame's several times)
KEPT_FRAMES = 4
_found: OrderedDict[tuple[object, ...], NDArray[np.bool_]] = OrderedDict()
_lock = threading.Lock()


def shadows_of(image01: NDArray[np.floating], square: bool = False) -> NDArray[np.bool_]:
    """:func:`find_shadows` with its defaults, found once for a frame's content (the last
    :data:`KEPT_FRAMES` frames are kept, keyed by a digest of their pixels); read-only."""
    img = np.ascontiguousarray(image01)
    digest = hashlib.blake2b(img.tobytes(), digest_size=16).digest()
    key = (img.shape, img.dtype.str, digest, square)
    with _lock:
        hit = _found.get(key)
        if hit is not None:
            _found.move_to_end(key)
            return hit
    found = find_shadows(img, square=square)
    found.flags.writeable = False
    with _lock:
        _found[key] = found
        while len(_found) > KEPT_FRAMES:
            _found.popitem(last=False)
    return found


def forget_kept() -> None:
    """Forget the frames :func:`shadows_of` keeps (a benchmark times each frame afresh)."""
    with _lock:
        _found.clear()
