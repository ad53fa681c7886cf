from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from models.tiling import run_tiled, tile_starts


def identity(b: np.ndarray) -> np.ndarray:
    return b


def gauss(b: np.ndarray) -> np.ndarray:
    return np.stack([gaussian_filter(t[0], 1.5, mode="reflect")[None] for t in b]).astype(
        np.float32
    )


@pytest.mark.parametrize(
    "shape", [(1, 1), (2, 3), (7, 5), (64, 64), (100, 37), (130, 250), (257, 129), (300, 301)]
)
@pytest.mark.parametrize("tile,overlap", [(64, 16), (128, 32), (32, 0)])
def test_identity_is_exact(shape: tuple[int, int], tile: int, overlap: int) -> None:
    img = np.random.default_rng(sum(shape)).random(shape).astype(np.float32)
    out = run_tiled(img, identity, tile, overlap)
    assert out.dtype == np.float32 and out.shape == img.shape
    assert np.array_equal(out, img)


def test_batches_and_calls() -> None:
    img = np.random.default_rng(0).random((200, 300)).astype(np.float32)
    seen: list[tuple[int, ...]] = []

    def fn(b: np.ndarray) -> np.ndarray:
        seen.append(b.shape)
        assert b.dtype == np.float32
        return b

    out = run_tiled(img, fn, 64, 16, batch_size=4)
    assert np.array_equal(out, img)
    n_tiles = len(tile_starts(200, 64, 16)) * len(tile_starts(300, 64, 16))
    assert sum(s[0] for s in seen) == n_tiles
    assert all(s[1:] == (1, 64, 64) for s in seen)
    assert max(s[0] for s in seen) == 4


def test_small_image_runs_as_one_padded_tile() -> None:
    img = np.random.default_rng(0).random((10, 21)).astype(np.float32)
    shapes: list[tuple[int, ...]] = []

    def fn(b: np.ndarray) -> np.ndarray:
        shapes.append(b.shape)
        return b * 2

    out = run_tiled(img, fn, 128, 32)
    assert shapes == [(1, 1, 128, 128)]
    assert np.allclose(out, img * 2)


def test_tile_starts_cover_and_overlap() -> None:
    for length in (64, 65, 100, 128, 500, 1032):
        starts = tile_starts(length, 64, 16) if length >= 64 else [0]
        assert starts[0] == 0 and starts[-1] + 64 == length
        for a, b in zip(starts, starts[1:], strict=False):
            assert a + 64 - b >= 16  # at least the overlap
            assert b % 4 == 0 or b == length - 64


def test_convolution_matches_whole_image() -> None:
    img = np.random.default_rng(1).random((300, 260)).astype(np.float32)
    whole = gauss(img[None, None])[0, 0]
    tiled = run_tiled(img, gauss, 64, 32)
    # Gaussian reach (4 sigma = 6 px) is below overlap // 4 = 8 px: equal to rounding.
    assert np.abs(tiled - whole).max() < 1e-5
    # With too little overlap the seams would show.
    seamy = run_tiled(img, gauss, 64, 4)
    assert np.abs(seamy - whole).max() > 1e-3


def test_invalid_arguments() -> None:
    img = np.zeros((10, 10), dtype=np.float32)
    with pytest.raises(ValueError):
        run_tiled(img, identity, 62, 16)
    with pytest.raises(ValueError):
        run_tiled(img, identity, 64, 64)
    with pytest.raises(ValueError):
        run_tiled(np.zeros((1, 2, 2, 2), dtype=np.float32), identity, 64, 16)
    with pytest.raises(ValueError):
        run_tiled(img, lambda b: b[:, :, :10], 64, 16)


def test_several_input_channels_give_one_output_channel() -> None:
    """A 2-channel model (the refiner: blurred image + its deconvolution) gets [N, 2, t, t]
    tiles cut at the same places in both channels, and its one output channel is blended."""
    rng = np.random.default_rng(3)
    img = rng.random((2, 150, 201), dtype=np.float32)

    def mean_of_channels(b: np.ndarray) -> np.ndarray:
        assert b.shape[1] == 2
        return b.mean(axis=1, keepdims=True)

    out = run_tiled(img, mean_of_channels, 64, 16, batch_size=3)
    assert out.shape == (150, 201)
    np.testing.assert_allclose(out, img.mean(axis=0), atol=1e-6)
    with pytest.raises(ValueError, match="expected"):
        run_tiled(img, lambda b: b, 64, 16)  # two channels out: refused
