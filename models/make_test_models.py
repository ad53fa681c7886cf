"""Build tiny, untrained, seeded test models for the node's tests, in a few seconds.

``python -m models.make_test_models OUT_DIR`` (or :func:`make_test_models`) writes

* ``OUT_DIR/deblur/{model.onnx,manifest.json}``: RRDBNet "tiny" (8 features, 1 block, growth 8);
  its correction starts near zero, so its output is close to (not equal to) its input;
* ``OUT_DIR/refiner/{model.onnx,manifest.json}``: the same "tiny" RRDBNet with two input channels
  (the blurred image and the node's Wiener correction), the form of the shipped refiner; its
  output starts near the correction channel;
* ``OUT_DIR/classify/{model.onnx,manifest.json}``: :class:`models.classifier.TinyCNN` with the same
  outputs as the real classifier (``probabilities`` [N,2], ``cam`` [N,2,4,4]) at input size 64.

Both manifests say ``demonstration_only`` and that the weights are random: they are fixtures.
The same seed gives the same weights (the ONNX bytes, hence sha256 and Device UID, are stable
for a given torch version).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from models.classifier import TinyCNN
from models.export import export_classify, export_deblur
from models.manifest import TileSpec
from models.rrdbnet import build_generator

TEST_CLASSIFIER_SIZE = 64
TEST_DESCRIPTION = "Test fixture with random weights: meaningless output, not for any use."


def make_test_models(out_dir: Path, seed: int = 0) -> dict[str, Path]:
    """Export the tiny test generator, refiner and classifier; return {task: folder}."""
    out_dir = Path(out_dir)
    dirs: dict[str, Path] = {}
    # (role, input channels, seed offset, name): the generator and the refiner differ only there
    for role, channels, offset, name in (
        ("deblur", 1, 0, "sharpray-deblur-test"),
        ("refiner", 2, 2, "sharpray-deblur-refiner-test"),
    ):
        torch.manual_seed(seed + offset)
        dirs[role] = out_dir / role
        export_deblur(
            build_generator("tiny", in_channels=channels),
            dirs[role],
            name=name,
            version="0.0.0-test",
            config_name="tiny",
            training={"note": f"untrained, torch.manual_seed({seed + offset})"},
            metrics={},
            description=TEST_DESCRIPTION,
            tile=TileSpec(size=512, overlap=32),
        )
    torch.manual_seed(seed + 1)
    clf = TinyCNN(in_chans=1, num_classes=2)
    # The finding reported present on every image, so the heatmap objects (drawn only for a
    # present finding) are always there for the tests to check.
    with torch.no_grad():
        clf.classifier.bias.copy_(torch.tensor([-3.0, 3.0]))
    classify_dir = out_dir / "classify"
    export_classify(
        clf,
        classify_dir,
        size=TEST_CLASSIFIER_SIZE,
        mean=0.5,
        std=0.25,
        architecture="TinyCNN (test fixture: 4 conv stages, GAP, linear)",
        name="sharpray-pneumonia-test",
        version="0.0.0-test",
        training={"note": f"untrained, torch.manual_seed({seed + 1})"},
        metrics={},
        description=TEST_DESCRIPTION,
    )
    return {**dirs, "classify": classify_dir}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    dirs = make_test_models(args.out_dir, args.seed)
    for k, v in dirs.items():
        print(f"{k}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
