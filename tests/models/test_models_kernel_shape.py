"""models.kernel_shape: a curved path's kernel back from its magnitude, and its orientation."""

from __future__ import annotations

import numpy as np
import pytest

from models.blur import convolve, linear_kernel, to_exposure, trajectory_kernel
from models.kernel_shape import (
    centre_on_centroid,
    choose_orientation,
    magnitude_distance,
    magnitude_of,
    retrieve_kernel,
    shape_threshold,
)
from tests.support.synthetic import chest_like


def _on_canvas(k: np.ndarray, n: int = 41) -> np.ndarray:
    out = np.zeros((n, n))
    h, w = k.shape[0] // 2, k.shape[1] // 2
    out[n // 2 - h : n // 2 - h + k.shape[0], n // 2 - w : n // 2 - w + k.shape[1]] = k
    return out


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


@pytest.mark.parametrize("seed", [0, 2, 5])
def test_a_curved_kernel_comes_back_from_its_magnitude_and_its_orientation_from_the_image(
    seed: int,
) -> None:
    true = trajectory_kernel(10.0, np.random.default_rng(seed))
    kernel, error = retrieve_kernel(magnitude_of(true), 7.0, np.random.default_rng(100 + seed))
    assert error < 0.05
    assert kernel.min() >= 0 and kernel.sum() == pytest.approx(1.0)
    # Up to the point reflection, which the magnitude cannot tell ...
    t, r = _on_canvas(true), _on_canvas(kernel)
    assert max(_corr(t, r), _corr(t, r[::-1, ::-1])) > 0.95
    # ... and which the restoration's total variation does: the blurred image decides.
    blurred = convolve(to_exposure(chest_like(256, 256, seed), 3.0), true)
    oriented = choose_orientation(blurred, kernel, balance=0.01, log_range=3.0)
    assert _corr(t, _on_canvas(oriented)) > 0.95


def test_the_mirror_image_of_the_true_kernel_is_turned_back() -> None:
    true = trajectory_kernel(10.0, np.random.default_rng(3))
    blurred = convolve(to_exposure(chest_like(256, 256, 3), 3.0), true)
    mirrored = np.ascontiguousarray(true[::-1, ::-1])
    assert not np.allclose(mirrored, true)
    assert np.allclose(choose_orientation(blurred, mirrored, balance=0.01, log_range=3.0), true)


def test_the_rule_replaces_the_straight_kernel_only_where_the_magnitude_says_curved() -> None:
    straight = linear_kernel(10.0, 30.0)
    assert magnitude_distance(magnitude_of(straight), straight) == pytest.approx(0.0, abs=1e-12)
    curved = trajectory_kernel(10.0, np.random.default_rng(0), curvature=1.0)
    assert magnitude_distance(magnitude_of(curved), straight) > shape_threshold(None)
    # A noisy frame asks for a larger distance than a quiet one (validated on training images).
    assert shape_threshold(1e4) > shape_threshold(1e5) == shape_threshold(None)


def test_centring_and_bad_inputs() -> None:
    k = np.zeros((9, 9))
    k[1, 1] = k[1, 3] = 1.0
    c = centre_on_centroid(k)
    assert c.shape[0] % 2 == 1 and c.sum() == pytest.approx(1.0)
    yy, xx = np.mgrid[: c.shape[0], : c.shape[1]]
    assert (c * yy).sum() == pytest.approx(c.shape[0] // 2, abs=0.05)
    assert (c * xx).sum() == pytest.approx(c.shape[1] // 2, abs=0.05)
    with pytest.raises(ValueError, match="positive mass"):
        centre_on_centroid(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="radius"):
        retrieve_kernel(np.ones((64, 64)), 40.0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="does not fit"):
        magnitude_of(np.ones((70, 70)))
