"""The one intensity mapping from a displayed radiograph to the classifier's input (numpy only).

Training (``models.train_classifier``), evaluation (``models.evaluate``) and the node
(``node.pipeline.preprocess``) all call :func:`classifier_unit`, so the model sees the same
numbers whichever way an image arrives: an 8-bit JPEG of the training set, the same image wrapped
as 12-bit DICOM, or a 2048² CR.

The mapping is deliberately invariant to any increasing linear change of grey values (bit depth,
offset, a linear window): the image is squashed to ``size``² (the Kermany images were resized
without keeping the aspect ratio, so the node does the same), then stretched so that its 0.5th and
99.5th percentiles become 0 and 1. Bright means dense on input and output.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from skimage.transform import resize

#: Percentiles mapped to 0 and 1.
LOW_PERCENTILE = 0.5
HIGH_PERCENTILE = 99.5


def percentile_stretch(image: NDArray[np.floating], eps: float = 1e-6) -> NDArray[np.float32]:
    """Linear stretch of the 0.5th..99.5th percentile to [0, 1], clipped."""
    a = np.asarray(image, dtype=np.float32)
    lo, hi = np.percentile(a, [LOW_PERCENTILE, HIGH_PERCENTILE])
    out = (a - np.float32(lo)) / np.float32(max(float(hi - lo), eps))
    return np.asarray(np.clip(out, 0.0, 1.0), dtype=np.float32)


def squash(image: NDArray[np.floating], size: int) -> NDArray[np.float32]:
    """Resize to ``size``×``size`` (aspect ratio not kept), anti-aliased when shrinking."""
    a = np.asarray(image, dtype=np.float32)
    if a.shape == (size, size):
        return a
    shrink = a.shape[0] > size or a.shape[1] > size
    r = resize(a, (size, size), order=1, anti_aliasing=shrink, preserve_range=True)
    return np.asarray(r, dtype=np.float32)


def classifier_unit(image: NDArray[np.floating], size: int) -> NDArray[np.float32]:
    """A bright = dense image of any value range -> [size, size] float32 in [0, 1]."""
    return percentile_stretch(squash(image, size))


def classifier_input(
    image: NDArray[np.floating], size: int, mean: float, std: float
) -> NDArray[np.float32]:
    """[1, 1, size, size] float32: :func:`classifier_unit`, then ``(x - mean) / std``."""
    x = (classifier_unit(image, size) - np.float32(mean)) / np.float32(std)
    return x[None, None].astype(np.float32)
