"""Tiles batched per inference call give the same corrected image as one tile at a time."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from node.pipeline.infer import Deblurrer, load_model
from tests.support.synthetic import chest_like


def test_batched_tiles_equal_single_tiles(tiny_models: dict[str, Path]) -> None:
    model = load_model(tiny_models["deblur"], "cpu", 0, True)
    image = chest_like(300, 260, seed=3)
    one = Deblurrer(model, tile=128, batch=1)(image)
    four = Deblurrer(model, tile=128, batch=4)(image)
    assert one.shape == image.shape
    np.testing.assert_allclose(four, one, atol=1e-5)
