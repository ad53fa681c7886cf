"""models.train_classifier's drawing of training images: class balance and oversampled patterns."""

from __future__ import annotations

import numpy as np
import pytest

from models.train_classifier import (
    balanced_order,
    parse_oversample,
    sample_weights,
    weighted_order,
)


def test_oversample_specs_are_checked() -> None:
    assert parse_oversample(["NORMAL2-*=2", "a=b=0.5"]) == [("NORMAL2-*", 2.0), ("a=b", 0.5)]
    for bad in ("NORMAL2-*", "=2", "x=0", "x=-1", "x=two"):
        with pytest.raises(ValueError, match="GLOB=FACTOR"):
            parse_oversample([bad])


def test_weights_follow_the_file_name_not_the_folder() -> None:
    paths = ["train/NORMAL/NORMAL2-IM-1.jpeg", "train/NORMAL/IM-2.jpeg", "NORMAL2-x/IM-3.jpeg"]
    w = sample_weights(paths, [("NORMAL2-*", 2.0), ("*.jpeg", 1.5)])
    assert w.tolist() == [3.0, 1.5, 1.5]


def test_oversampled_images_are_drawn_more_often_within_a_balanced_class() -> None:
    # 10 normals (first 5 oversampled x3) and 30 pneumonias
    labels = np.array([0] * 10 + [1] * 30, dtype=np.int64)
    w = np.ones(40)
    w[:5] = 3.0
    rng = np.random.default_rng(0)
    draws = np.concatenate([balanced_order(labels, rng, w) for _ in range(500)])
    counts = np.bincount(draws, minlength=40)
    normals, pneumonias = counts[:10].sum(), counts[10:].sum()
    assert abs(normals / (normals + pneumonias) - 0.5) < 0.01  # classes still balanced
    ratio = counts[:5].mean() / counts[5:10].mean()
    assert 2.8 < ratio < 3.2, ratio
    # without weights: every image of a class equally often
    plain = np.bincount(
        np.concatenate([balanced_order(labels, rng) for _ in range(500)]), minlength=40
    )
    assert 0.9 < plain[:5].mean() / plain[5:10].mean() < 1.1


def test_weighted_order_without_balancing_keeps_the_data_set_ratio() -> None:
    w = np.ones(40)
    w[:5] = 2.0
    rng = np.random.default_rng(1)
    counts = np.bincount(np.concatenate([weighted_order(w, rng) for _ in range(500)]), minlength=40)
    assert 1.85 < counts[:5].mean() / counts[5:].mean() < 2.15
    assert len(weighted_order(w, rng)) == 40
