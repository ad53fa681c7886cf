"""One preprocessing for training, evaluation and the node: a PNG and its DICOM wrapping give the
same classifier input and the same probability."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pydicom
import pytest
from PIL import Image

from models.deblur_data import load_gray
from models.evaluate import pneumonia_probabilities
from models.intensity import classifier_input, classifier_unit, percentile_stretch
from models.manifest import load_manifest
from node.pipeline.preprocess import decode, to_unit_voi
from tests.support.synthetic import chest_like, make_cr


def _png(path: Path, size: int = 224) -> np.ndarray:
    img = np.rint(chest_like(size, size, seed=4) * 255).astype(np.uint8)
    Image.fromarray(img).save(path)
    return img


def _wrap(path: Path, u8: np.ndarray, *, bits: int, photometric: str, window: bool) -> None:
    """The 8-bit image as a DICOM of ``bits`` bits: value*16 + 100, optionally inverted/windowed."""
    rows, cols = u8.shape
    ds = make_cr(path, rows, cols, bits=bits, photometric=photometric)
    v = u8.astype(np.float64) * 16 + 100
    if photometric == "MONOCHROME1":
        v = (2**bits - 1) - v
    ds.PixelData = np.rint(v).astype(np.uint16).tobytes()
    if window:
        # a linear window over the full range, as a full-range 12-bit export carries
        ds.WindowCenter = float(v.max() + v.min()) / 2
        ds.WindowWidth = float(v.max() - v.min() + 2)
    ds.save_as(path, enforce_file_format=True)


@pytest.mark.parametrize(
    ("photometric", "window"),
    [("MONOCHROME2", False), ("MONOCHROME1", False), ("MONOCHROME2", True)],
)
def test_png_and_its_dicom_wrapping_give_the_same_input_and_probability(
    tmp_path: Path, test_models: dict[str, Path], photometric: str, window: bool
) -> None:
    u8 = _png(tmp_path / "x.png")
    _wrap(tmp_path / "x.dcm", u8, bits=12, photometric=photometric, window=window)
    # training / evaluation path: the 8-bit file
    train = classifier_unit(load_gray(tmp_path / "x.png").astype(np.float32) / 255.0, 64)
    # node path: decode, as displayed (bright = dense), then the same function
    node = classifier_unit(to_unit_voi(decode(pydicom.dcmread(tmp_path / "x.dcm"))), 64)
    assert np.abs(train - node).max() < 2e-3

    manifest, path = load_manifest(test_models["classify"])
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    probs = [
        sess.run(["probabilities"], {"image": classifier_input(x, 64, 0.5, 0.25)})[0][0, 1]
        for x in (train, node)
    ]
    assert probs[0] == pytest.approx(probs[1], abs=1e-3)


def test_evaluation_batches_give_the_one_by_one_probability(
    tmp_path: Path, test_models: dict[str, Path]
) -> None:
    """models.evaluate's batched probabilities are those of the same images fed one by one through
    classifier_input (the node's function), after evaluation's percentile stretch of the file."""
    chest = chest_like(200, 240, seed=1).astype(np.float32)
    noise = np.random.default_rng(0).random((200, 240)).astype(np.float32)
    images = [chest, 1 - chest, noise]
    manifest, path = load_manifest(test_models["classify"])
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    size = manifest.input.size or 224
    single = [
        sess.run(
            ["probabilities"],
            {
                "image": classifier_input(
                    percentile_stretch(a), size, manifest.input.mean, manifest.input.std
                )
            },
        )[0][0, 1]
        for a in images
    ]
    batched = pneumonia_probabilities(sess, manifest, images, batch=2)
    assert batched.shape == (3,)
    assert np.allclose(batched, single, atol=1e-6)
    assert np.unique(batched).size == 3  # each image its own probability, in its own place


def test_stretch_ignores_bit_depth_and_offset() -> None:
    a = chest_like(300, 260, seed=1)
    assert np.allclose(classifier_unit(a, 224), classifier_unit(a * 4000 + 17, 224), atol=1e-5)
    out = classifier_unit(a, 224)
    assert out.shape == (224, 224) and out.min() == 0.0 and out.max() == 1.0
