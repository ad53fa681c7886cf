"""The correction step with a refiner model (two or more input channels): the blind correction
first, then the refiner given the blurred image (the deconvolutions at other λ where its manifest
names them) and that correction; a sharp image still comes back untouched."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from models.blur import NoiseSpec, linear_kernel, simulate_motion_blur
from models.deblur import MotionPolicy, assess_motion
from models.deblur import correct as wiener_correct
from node.pipeline.correct import Corrector
from node.pipeline.infer import Deblurrer, load_model


def _image(seed: int = 0) -> np.ndarray:
    """A structured test image: smooth blobs and sharp edges (rib-like stripes)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:256, 0:256] / 256.0
    img = 0.4 + 0.2 * np.sin(9 * x + 3 * y) + 0.15 * (np.sin(40 * y + 5 * x) > 0.6)
    img += 0.05 * rng.standard_normal((256, 256))
    return np.clip(img, 0, 1).astype(np.float32)


@pytest.fixture
def refiner(tiny_models: dict[str, Path]) -> Deblurrer:
    return Deblurrer(load_model(tiny_models["refiner"], "cpu", 1, True))


def test_refiner_takes_blurred_image_and_its_wiener_correction(refiner: Deblurrer) -> None:
    policy = MotionPolicy()
    sharp = _image()
    blurred = simulate_motion_blur(
        sharp, linear_kernel(12.0, 30.0), np.random.default_rng(1), noise=NoiseSpec(3e4)
    ).astype(np.float32)
    motion = assess_motion(blurred, 0.3, policy)
    assert motion.blurred, motion
    assert refiner.refines_correction and refiner.channels == 2

    out = Corrector(policy, refiner)(blurred, motion)

    wiener = wiener_correct(blurred, motion, policy)
    assert out.applied and "refined by sharpray-deblur-refiner-test" in out.method
    assert "Wiener deconvolution" in out.method
    assert out.image.shape == blurred.shape
    # the untrained refiner starts as the identity on its correction channel: its output follows
    # the Wiener correction, not the blurred input
    assert np.abs(out.image - wiener).mean() < 0.02
    assert np.abs(out.image - wiener).mean() < np.abs(out.image - blurred).mean()


def test_refiner_leaves_a_sharp_image_alone(refiner: Deblurrer) -> None:
    policy = MotionPolicy()
    sharp = _image(2)
    motion = assess_motion(sharp, 0.3, policy)
    assert not motion.blurred
    out = Corrector(policy, refiner)(sharp, motion)
    assert not out.applied and out.image is not None
    np.testing.assert_array_equal(out.image, sharp)


def test_refiner_without_correction_is_refused(refiner: Deblurrer) -> None:
    with pytest.raises(ValueError, match="correction"):
        refiner(_image())


def test_a_refiner_trained_on_other_deconvolution_parameters_is_named_in_a_warning(
    refiner: Deblurrer, caplog: pytest.LogCaptureFixture
) -> None:
    from dataclasses import asdict, replace

    from node.pipeline.correct import refiner_policy_mismatch

    trained = asdict(MotionPolicy())
    assert refiner_policy_mismatch(trained, MotionPolicy()) == []
    assert refiner_policy_mismatch(None, MotionPolicy()) == []
    other = replace(MotionPolicy(), balance=0.3)
    assert refiner_policy_mismatch(trained, other) == ["balance 0.1 (trained) vs 0.3 (node)"]
    # a refiner from before Richardson-Lucy steps existed was trained on the Wiener filter alone
    before_rl = {k: v for k, v in trained.items() if k != "rl_iterations"}
    assert refiner_policy_mismatch(before_rl, MotionPolicy()) == []
    with_rl = replace(MotionPolicy(), rl_iterations=3)
    assert refiner_policy_mismatch(before_rl, with_rl) == ["rl_iterations 0 (trained) vs 3 (node)"]
    # ... and one from before the regulariser followed the noise, on a fixed one
    before_noise = {k: v for k, v in trained.items() if not k.startswith("balance_")}
    assert refiner_policy_mismatch(before_noise, MotionPolicy()) == [
        "balance_follows_noise False (trained) vs True (node)"
    ]
    fixed = replace(MotionPolicy(), balance_follows_noise=False)
    assert refiner_policy_mismatch(before_noise, fixed) == []

    m = refiner.model.manifest
    refiner.model = replace(
        refiner.model,
        manifest=m.model_copy(update={"training": {**m.training, "correction_policy": trained}}),
    )
    with caplog.at_level("WARNING", logger="node.pipeline.correct"):
        Corrector(MotionPolicy(), refiner)
        assert not caplog.records
        Corrector(other, refiner)
    assert "balance 0.1 (trained) vs 0.3 (node)" in caplog.text


def test_outside_its_pixel_size_range_the_refiner_is_not_run(refiner: Deblurrer) -> None:
    """A refiner declares the pixel sizes it was validated for (manifest intended use); at other
    sizes the node returns the Wiener correction alone and says so."""
    from dataclasses import replace

    from models.manifest import IntendedUse

    policy = MotionPolicy()
    m = refiner.model.manifest
    use = IntendedUse(statement="test", pixel_spacing_mm=(0.1, 0.42))
    refiner.model = replace(refiner.model, manifest=m.model_copy(update={"intended_use": use}))
    corrector = Corrector(policy, refiner)
    assert corrector.refines_at(0.2) and not corrector.refines_at(0.6)

    sharp = _image(4)
    blurred = simulate_motion_blur(
        sharp, linear_kernel(12.0, 30.0), np.random.default_rng(5), noise=NoiseSpec(3e4)
    ).astype(np.float32)
    coarse = assess_motion(blurred, 0.6, policy)
    assert coarse.blurred, coarse
    out = corrector(blurred, coarse)
    np.testing.assert_array_equal(out.image, wiener_correct(blurred, coarse, policy))
    assert out.applied and "not refined: 0.6 mm pixels are outside" in out.method
    fine = assess_motion(blurred, 0.3, policy)
    assert "refined by" in corrector(blurred, fine).method


def test_richardson_lucy_steps_are_said_and_change_the_identity() -> None:
    """``blur_gate.richardson_lucy_steps`` > 0: the SC/SR text says so and the correction gets a
    Device UID of its own; at the default (0) the identity is the plain Wiener correction's."""
    from dataclasses import replace

    from node.pipeline.correct import wiener_info

    sharp = _image()
    blurred = simulate_motion_blur(
        sharp, linear_kernel(12.0, 30.0), np.random.default_rng(1), noise=NoiseSpec(3e4)
    ).astype(np.float32)
    plain, with_rl = MotionPolicy(), replace(MotionPolicy(), rl_iterations=3)
    motion = assess_motion(blurred, 0.3, plain)
    a, b = Corrector(plain)(blurred, motion), Corrector(with_rl)(blurred, motion)
    assert "Richardson-Lucy" not in a.method and a.method.startswith("Wiener deconvolution of")
    assert b.method.startswith("Wiener deconvolution and 3 Richardson-Lucy steps of")
    assert not np.array_equal(a.image, b.image)
    assert wiener_info(plain).device_uid == wiener_info(MotionPolicy()).device_uid
    assert wiener_info(with_rl).device_uid != wiener_info(plain).device_uid
    assert "3 Richardson-Lucy steps" in wiener_info(with_rl).description


def test_a_correction_that_rings_at_hard_edges_says_richardson_lucy(refiner: Deblurrer) -> None:
    """The node's default correction on a frame with collimation and a marker: Richardson-Lucy,
    said in the method text; a refiner still gets the Wiener filter it was trained on."""
    from models.deblur import deconvolve
    from models.tune_deconvolution import collimate

    policy = MotionPolicy()
    sharp = collimate(_image())
    blurred = simulate_motion_blur(
        sharp, linear_kernel(12.0, 30.0), np.random.default_rng(1), noise=NoiseSpec(3e4)
    ).astype(np.float32)
    motion = assess_motion(blurred, 0.3, policy)
    assert motion.blurred, motion
    out = Corrector(policy)(blurred, motion)
    assert out.applied
    done = deconvolve(blurred, motion, policy)
    assert done.rl_iterations == policy.rl_fallback_iterations
    assert out.method.startswith(
        f"Richardson-Lucy deconvolution ({done.rl_iterations} steps; the Wiener filter rang at "
        "hard edges) of "
    )
    assert np.array_equal(out.image, done.image)
    refined = Corrector(policy, refiner)(blurred, motion)
    assert refined.method.startswith("Wiener deconvolution of")


def test_a_refiner_of_the_node_correction_refines_the_correction_as_shipped(
    refiner: Deblurrer, caplog: pytest.LogCaptureFixture
) -> None:
    """A refiner whose manifest says ``training.refines: node_correction`` is given what the node
    ships (the kernel shape step with its magnitude, the Richardson-Lucy fallback where the filter
    rings), and the SR text says both; a Wiener-only refiner still refuses the shape step; a
    shape step other than the one it was trained with is named in a warning."""
    from dataclasses import replace

    from models.deblur import deconvolve
    from models.tune_deconvolution import collimate
    from node.config import BUNDLED_MODELS
    from node.pipeline.infer import KernelMagnitude

    magnitude = KernelMagnitude(load_model(BUNDLED_MODELS / "kernel-magnitude", "cpu", 1, True))
    trained = {"name": magnitude.model.manifest.name, "version": magnitude.model.manifest.version}
    with pytest.raises(ValueError, match="shape step"):
        Corrector(MotionPolicy(), refiner, magnitude)
    m = refiner.model.manifest
    training = {**m.training, "refines": "node_correction", "kernel_magnitude": trained}
    refiner.model = replace(refiner.model, manifest=m.model_copy(update={"training": training}))
    assert refiner.refines_node_correction

    policy = MotionPolicy()
    with caplog.at_level("WARNING", logger="node.pipeline.correct"):
        corrector = Corrector(policy, refiner, magnitude)
        assert not caplog.records
    blurred = simulate_motion_blur(
        collimate(_image()),
        linear_kernel(12.0, 30.0),
        np.random.default_rng(1),
        noise=NoiseSpec(3e4),
    ).astype(np.float32)
    motion = assess_motion(blurred, 0.3, policy)
    assert motion.blurred, motion
    done = deconvolve(blurred, motion, policy, magnitude=magnitude)
    assert done.method == "richardson-lucy"  # the fallback, which a Wiener-only refiner never gets
    out = corrector(blurred, motion)
    np.testing.assert_array_equal(out.image, refiner(blurred, done.image))
    assert out.method.startswith("Richardson-Lucy deconvolution (")
    assert out.method.endswith(", refined by sharpray-deblur-refiner-test")

    with caplog.at_level("WARNING", logger="node.pipeline.correct"):
        Corrector(policy, refiner)
    assert "kernel shape step with sharpray-kernel-magnitude" in caplog.text
    assert "vs none (node: models.kernel_shape off)" in caplog.text


def test_a_refiner_given_deconvolutions_at_other_lambda_gets_them_before_the_correction(
    tmp_path: Path,
) -> None:
    """A refiner of four input channels (manifest: variant_balance_factors 0.5 and 2) is given
    the blurred image, the node's deconvolutions with λ ×0.5 and ×2 (the same kernel) and last
    the correction as shipped; its output is exactly the ONNX model's on that stack."""
    from dataclasses import replace

    import torch

    from models.deblur import deconvolve
    from models.export import export_deblur
    from models.rrdbnet import build_generator
    from node.config import BUNDLED_MODELS
    from node.pipeline.infer import KernelMagnitude

    magnitude = KernelMagnitude(load_model(BUNDLED_MODELS / "kernel-magnitude", "cpu", 1, True))
    torch.manual_seed(7)
    folder = tmp_path / "refiner4"
    export_deblur(
        build_generator("tiny", in_channels=4),
        folder,
        name="sharpray-deblur-refiner4-test",
        version="0.0.0-test",
        config_name="tiny",
        training={"refines": "node_correction", "variant_balance_factors": [0.5, 2.0]},
        parity_shapes=((1, 4, 64, 64),),
    )
    refiner = Deblurrer(load_model(folder, "cpu", 1, True))
    assert refiner.channels == 4 and refiner.refines_node_correction
    assert refiner.variant_balance_factors == (0.5, 2.0)

    policy = MotionPolicy()
    blurred = simulate_motion_blur(
        _image(6), linear_kernel(12.0, 30.0), np.random.default_rng(3), noise=NoiseSpec(3e4)
    ).astype(np.float32)
    motion = assess_motion(blurred, 0.3, policy)
    assert motion.blurred, motion
    out = Corrector(policy, refiner, magnitude)(blurred, motion)

    done = deconvolve(blurred, motion, policy, magnitude=magnitude)
    lower, higher = (
        deconvolve(
            blurred,
            motion,
            replace(policy, wiener_balance_factor=f),
            magnitude=magnitude,
            shape=done.shape,
        ).image
        for f in (0.5, 2.0)
    )
    # λ ×0.5 sharpens (and amplifies noise) more than the correction, λ ×2 less
    assert np.std(np.diff(lower)) > np.std(np.diff(done.image)) > np.std(np.diff(higher))
    np.testing.assert_array_equal(out.image, refiner(blurred, done.image, [lower, higher]))
    assert out.method.endswith(", refined by sharpray-deblur-refiner4-test")
    with pytest.raises(ValueError, match="2 deconvolutions beside the correction"):
        refiner(blurred, done.image)


def test_the_node_loads_the_shape_step_for_a_refiner_of_its_correction_only(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    """``models.deblur`` set to a refiner: the node loads the kernel shape step beside it only
    when the refiner's manifest says it refines the node's correction."""
    import shutil

    from node.app import load_models
    from node.config import load_settings

    folder = tmp_path / "node-refiner"
    shutil.copytree(tiny_models["refiner"], folder)
    manifest = folder / "manifest.json"
    described = json.loads(manifest.read_text())
    described["training"]["refines"] = "node_correction"
    manifest.write_text(json.dumps(described))
    cfg = tmp_path / "c.yaml"
    for model, shaped in ((tiny_models["refiner"], False), (folder, True)):
        cfg.write_text(f"models:\n  deblur: {model}\n")
        corrector = load_models(load_settings(cfg, environ={})).deblur
        assert corrector.generator is not None
        assert (corrector.magnitude is not None) is shaped
