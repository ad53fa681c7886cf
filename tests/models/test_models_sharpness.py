from __future__ import annotations

import numpy as np
import pytest

from models.blur import linear_kernel, simulate_motion_blur
from models.sharpness import sharpness


def _phantom(n: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    img = np.zeros((n, n), dtype=np.float32)
    for _ in range(60):
        y, x, r = rng.integers(0, n, 2).tolist() + [int(rng.integers(n // 40, n // 8))]
        yy, xx = np.ogrid[:n, :n]
        img[(yy - y) ** 2 + (xx - x) ** 2 < r * r] += float(rng.uniform(0.1, 0.3))
    return np.clip(img, 0, 1)


def test_blur_increases_measure() -> None:
    img = _phantom(256)
    values = [sharpness(simulate_motion_blur(img, linear_kernel(L, 30.0))) for L in (0, 3, 7, 15)]
    assert all(0.0 <= v <= 1.0 for v in values)
    assert values == sorted(values)
    assert values[-1] - values[0] > 0.1


def test_scores_a_whole_2048_frame() -> None:
    # its speed is bench/'s to measure, not a test's to assert (a loaded CI machine fails it)
    img = np.random.default_rng(0).random((2048, 2048)).astype(np.float32)
    v = sharpness(img)
    assert 0.0 <= v <= 1.0


def test_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        sharpness(np.zeros((4, 4, 3), dtype=np.float32))
    with pytest.raises(ValueError):
        sharpness(np.zeros((1, 50), dtype=np.float32))
