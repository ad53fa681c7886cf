"""The correction step with the kernel shape step: the bundled learned kernel magnitude (ONNX),
the node's settings, and what the result objects say (version, Device UID, the method)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from models.blur import (
    NoiseSpec,
    linear_kernel,
    simulate_motion_blur,
    to_exposure,
    trajectory_kernel,
)
from models.deblur import MotionAssessment, MotionPolicy, assess_motion, deconvolve
from models.kernel_shape import magnitude_of, spectrum_input
from node.config import BUNDLED_MODELS, load_settings
from node.pipeline.correct import (
    ACROSS_DETECTOR_RL_MEAN_VERSION,
    ACROSS_RL_MEAN_VERSION,
    ALL_RL_MEAN_VERSION,
    BUDGET_RL_MEAN_VERSION,
    DETECTOR_ALL_RL_MEAN_VERSION,
    DETECTOR_BUDGET_RL_MEAN_VERSION,
    DETECTOR_DRAWN_RL_MEAN_VERSION,
    DETECTOR_MEAN_VERSION,
    DETECTOR_RL_MEAN_VERSION,
    DETECTOR_SECOND_VERSION,
    DETECTOR_SHAPED_VERSION,
    DRAWN_RL_MEAN_VERSION,
    MEAN_VERSION,
    RL_MEAN_VERSION,
    SHADOW_RL_MEAN_VERSION,
    SHAPED_VERSION,
    WIENER_VERSION,
    Corrector,
    wiener_info,
)
from node.pipeline.infer import Deblurrer, KernelMagnitude, ModelLoadError, load_model
from tests.support.synthetic import chest_like, power_law_field

BUNDLED = BUNDLED_MODELS / "kernel-magnitude"


@pytest.fixture(scope="module")
def magnitude() -> KernelMagnitude:
    return KernelMagnitude(load_model(BUNDLED, "cpu", 1, True))


def _blurred_curved(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    mixed = 0.7 * chest_like(384, 384, seed) + 0.3 * power_law_field(384, seed, 1.25, 0.0, 1.0)
    sharp = np.clip(mixed, 0.0, 1.0).astype(np.float32)
    k = trajectory_kernel(10.0, np.random.default_rng(seed), curvature=1.0)
    return sharp, k, simulate_motion_blur(sharp, k, np.random.default_rng(9), noise=NoiseSpec(None))


def _collimated_blurred(kernel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A chest-like frame with an unexposed band (the Wiener result rings at its edge), and the
    same blurred by ``kernel`` without noise."""
    mixed = 0.7 * chest_like(384, 384, 6) + 0.3 * power_law_field(384, 6, 1.25, 0.0, 1.0)
    sharp = np.clip(mixed, 0.0, 1.0).astype(np.float32)
    sharp[:, :60] = 0.0
    return sharp, simulate_motion_blur(
        sharp, kernel, np.random.default_rng(9), noise=NoiseSpec(None)
    )


def _configured(path: Path, blur_gate: str, version: str) -> MotionPolicy:
    """The blur gate's policy from a config.yaml whose ``blur_gate`` holds these (YAML) lines,
    after checking that the node it configures says ``version`` (without the native-pixel
    network, on by default since 0.34.0: these versions are of the step at ≈0.6 mm; and fitting
    the whole frame in the fallback, as every version up to 0.36.0 did)."""
    from node.app import load_models
    from node.pipeline.blur_gate import policy as blur_policy

    whole = (
        "  fallback_leaves_shadows: false\n  estimate_clear_of_shadows_from_mm: null\n"
        "  kernel_length_across_up_to_px: null\n"
    )
    path.write_text("models:\n  kernel_shape_detector: off\nblur_gate:\n" + whole + blur_gate)
    s = load_settings(path, environ={})
    assert load_models(s).deblur.info.version == version
    return blur_policy(s.blur_gate)


def _from_env(path: Path, env: dict[str, str]) -> MotionPolicy:
    """The blur gate's policy from the config.yaml at ``path`` and the environment ``env``."""
    from node.pipeline.blur_gate import policy as blur_policy

    return blur_policy(load_settings(path, environ=env).blur_gate)


def _beside(
    magnitude: KernelMagnitude,
    new: MotionPolicy,
    old: MotionPolicy,
    versions: tuple[str, str, str],
    said: tuple[str, str],
) -> tuple[Corrector, Corrector]:
    """The node with both networks under ``new`` and under ``old``: another Device UID, the
    ``versions`` (new, old, new with the native-pixel network), ``said[0]`` in the new one's
    description and ``said[1]`` not in the old one's."""
    second = KernelMagnitude(load_model(BUNDLED_MODELS / "kernel-magnitude-second", "cpu", 1, True))
    a, b = (Corrector(p, None, magnitude, None, second) for p in (new, old))
    assert a.info.device_uid != b.info.device_uid
    assert (a.info.version, b.info.version) == versions[:2]
    assert said[0] in (a.info.description or "")
    assert said[1] not in (b.info.description or "")
    m = magnitude.model.manifest
    assert wiener_info(new, m, m, second.model.manifest).version == versions[2]
    return a, b


def _fallback_steps_said(
    sharp: np.ndarray,
    blurred: np.ndarray,
    motion: MotionAssessment,
    new: Corrector,
    old: Corrector,
    steps: tuple[int, int] = (40, 10),
    margin_db: float = 0.5,
) -> None:
    """``new`` takes ``steps[0]`` fallback steps on this frame where ``old`` takes ``steps[1]``,
    says so, and gains at least ``margin_db`` over it."""
    more, fewer = new(blurred, motion), old(blurred, motion)
    assert f"Richardson-Lucy deconvolution ({steps[0]} steps" in more.method
    assert f"Richardson-Lucy deconvolution ({steps[1]} steps" in fewer.method

    def psnr(image: np.ndarray) -> float:
        return float(10 * np.log10(1.0 / np.mean((image.astype(np.float64) - sharp) ** 2)))

    assert psnr(more.image) > psnr(fewer.image) + margin_db


def test_the_bundled_network_reads_a_kernel_magnitude_off_the_spectrum(
    magnitude: KernelMagnitude,
) -> None:
    _, k, blurred = _blurred_curved(4)
    out = np.asarray(magnitude(spectrum_input(to_exposure(blurred.astype(np.float64), 3.0))))
    assert out.shape == (64, 64) and np.all((out >= 0) & (out <= 1))
    truth = np.fft.fftshift(magnitude_of(k))
    flat = np.full_like(truth, truth.mean())
    # closer to the true magnitude than a magnitude without any structure
    assert np.linalg.norm(out - truth) < 0.6 * np.linalg.norm(flat - truth)


def test_the_shape_step_changes_the_identity_and_is_said(magnitude: KernelMagnitude) -> None:
    policy = MotionPolicy()
    plain, shaped = wiener_info(policy), Corrector(policy, None, magnitude).info
    assert (plain.version, shaped.version) == (WIENER_VERSION, SHAPED_VERSION)
    assert plain.device_uid != shaped.device_uid
    assert "learned kernel magnitude (sharpray-kernel-magnitude" in (shaped.description or "")
    assert "learned kernel magnitude" not in (plain.description or "")
    # the shape step's τ is part of the identity: the twelfth round's 0.3 for a noisy frame
    # is not the 0.4 of before
    earlier = Corrector(dataclasses.replace(policy, shape_thresholds=(0.25, 0.4)), None, magnitude)
    assert earlier.info.device_uid != shaped.device_uid
    assert (
        Corrector(
            dataclasses.replace(policy, shape_thresholds=(0.25, 0.3)), None, magnitude
        ).info.device_uid
        == shaped.device_uid
    )
    sharp, _, blurred = _blurred_curved(4)
    motion = assess_motion(blurred, 0.6, policy)
    assert motion.blurred
    out = Corrector(policy, None, magnitude)(blurred, motion)
    done = deconvolve(blurred, motion, policy, magnitude=magnitude)
    assert out.applied and np.array_equal(out.image, done.image)
    assert done.shape is not None
    assert ("curved motion" in out.method) == done.curved
    # on finer pixels the step does not run: the same image as without it
    fine = assess_motion(blurred, 0.2, policy)
    if fine.blurred:
        same = Corrector(policy, None, magnitude)(blurred, fine)
        assert np.array_equal(same.image, Corrector(policy)(blurred, fine).image)
        assert "curved" not in same.method


def test_the_checked_kernels_regulariser_is_a_setting_in_the_identity_and_the_text(
    tmp_path: Path, magnitude: KernelMagnitude
) -> None:
    """0.8.0: λ halved where the shape step read the magnitude; ``1`` gives 0.7.0's filter."""
    from node.pipeline.blur_gate import policy as policy_of

    cfg = tmp_path / "c.yaml"
    cfg.write_text("blur_gate:\n  wiener_balance_checked_factor: 1.0\n")
    as_070 = policy_of(load_settings(cfg, environ={}).blur_gate)
    cfg.write_text("models: {}\n")
    default = policy_of(load_settings(cfg, environ={}).blur_gate)
    assert (default.checked_balance_factor, as_070.checked_balance_factor) == (0.5, 1.0)
    new, old = Corrector(default, None, magnitude), Corrector(as_070, None, magnitude)
    assert new.info.device_uid != old.info.device_uid
    assert "times 0.5 where the kernel's shape was checked" in (new.info.description or "")
    assert "where the kernel's shape was checked" not in (old.info.description or "")
    # the straight-kernel correction (no shape step) has nothing to halve: the same identity
    assert wiener_info(default).device_uid == wiener_info(as_070).device_uid
    _, _, blurred = _blurred_curved(4)
    motion = assess_motion(blurred, 0.6, default)
    a, b = new(blurred, motion), old(blurred, motion)
    assert a.applied and b.applied and not np.array_equal(a.image, b.image)
    # the SR's text names the regulariser actually used: half of 0.7.0's
    used = [float(m.method.split("regularisation ")[1].split(" ")[0]) for m in (a, b)]
    assert used[0] == pytest.approx(0.5 * used[1], rel=0.01)


def test_wrong_models_and_combinations_are_refused(
    magnitude: KernelMagnitude, tiny_models: dict[str, Path]
) -> None:
    refiner = Deblurrer(load_model(tiny_models["refiner"], "cpu", 1, True))
    with pytest.raises(ModelLoadError, match="not kernel_magnitude"):
        KernelMagnitude(refiner.model)
    with pytest.raises(ValueError, match="blind Wiener correction only"):
        Corrector(MotionPolicy(), refiner, magnitude)


def test_the_setting_names_the_bundled_model_or_switches_it_off(tmp_path: Path) -> None:
    from node.app import load_models

    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "models:\n  kernel_shape: kernel-magnitude\n  kernel_shape_detector: off\n"
        "  kernel_shape_second: off\n"
    )
    s = load_settings(cfg, environ={})
    assert s.models.kernel_shape == BUNDLED
    models = load_models(s)
    assert models.deblur.magnitude is not None
    assert models.deblur.info.version == SHAPED_VERSION
    for off in ("off", "null"):
        cfg.write_text(f"models:\n  kernel_shape: {off}\n")
        assert load_settings(cfg, environ={}).models.kernel_shape is None
    # the default (since the fourth round, docs/models.md): the bundled model, 0.7.0
    cfg.write_text("models: {}\n")
    default = load_settings(cfg, environ={})
    assert default.models.kernel_shape == BUNDLED
    # the second network on (the twenty-eighth round), the fallback's steps by the noise for a
    # retrieved kernel (the twenty-ninth) and for every kernel at pixels of 0.4 mm and more (the
    # thirtieth); the fallback's cap by the frame's size (the thirty-second) is off; the Wiener
    # penalty's noise floor at detector scale (the fortieth) and the strong short fit (the
    # forty-second) on, the straight kernel drawn as the frame's spectrum follows (the forty-fifth
    # to forty-seventh): 0.31.0; and the native-pixel network at detector scale in quiet frames,
    # its kernel only where the straight fit is not specific (the forty-ninth): 0.34.0; the
    # fallback leaving the shadows out (the fifty-fourth): 0.39.0 / 0.40.0; the estimate clear
    # of them from 2 mm at pixels finer than 0.4 mm (the fifty-sixth): 0.41.0 / 0.42.0; a
    # marker's corners taken too (the fifty-seventh): 0.43.0 / 0.44.0
    assert default.models.kernel_shape_detector == BUNDLED_MODELS / "kernel-magnitude-detector"
    assert default.models.kernel_shape_second == BUNDLED_MODELS / "kernel-magnitude-second"
    assert default.blur_gate.rl_fallback_budget_max_steps is None
    assert load_models(default).deblur.info.version == ACROSS_DETECTOR_RL_MEAN_VERSION
    cfg.write_text("models:\n  kernel_shape_detector: off\n")
    without = load_models(load_settings(cfg, environ={})).deblur.info
    assert without.version == ACROSS_RL_MEAN_VERSION == "0.45.0"
    cfg.write_text(
        "models:\n  kernel_shape_detector: off\nblur_gate:\n"
        "  estimate_clear_of_shadows_from_mm: null\n  shadows_whole_corners: false\n"
        "  kernel_length_across_up_to_px: null\n"
    )
    fallback_only = load_models(load_settings(cfg, environ={})).deblur.info
    assert fallback_only.version == SHADOW_RL_MEAN_VERSION == "0.39.0"
    cfg.write_text(
        "models:\n  kernel_shape_detector: off\nblur_gate:\n  fallback_leaves_shadows: false\n"
        "  estimate_clear_of_shadows_from_mm: null\n  kernel_length_across_up_to_px: null\n"
    )
    whole = load_models(load_settings(cfg, environ={})).deblur.info
    assert whole.version == DRAWN_RL_MEAN_VERSION == "0.31.0"
    cfg.write_text("models: {}\n")
    off_by_env = load_settings(cfg, environ={"SHARPRAY_MODELS__KERNEL_SHAPE": "off"})
    assert off_by_env.models.kernel_shape is None
    assert load_models(off_by_env).deblur.info.version == WIENER_VERSION


def test_a_detector_scale_magnitude_runs_on_fine_pixels_and_changes_the_identity(
    magnitude: KernelMagnitude,
) -> None:
    """The sixteenth round's step at pixels finer than 0.4 mm: its own network (here the
    bundled one stands in for it), its own version and Device UID, said in the description."""
    policy = MotionPolicy()
    shaped = Corrector(policy, None, magnitude)
    both = Corrector(policy, None, magnitude, magnitude)
    assert both.info.version == DETECTOR_SHAPED_VERSION != shaped.info.version
    assert both.info.device_uid != shaped.info.device_uid
    assert "at pixels finer than 0.4 mm" in (both.info.description or "")
    other_tau = dataclasses.replace(policy, shape_detector_thresholds=(0.3, 0.3))
    assert Corrector(other_tau, None, magnitude, magnitude).info.device_uid != both.info.device_uid
    # the detector τ means nothing without the detector network: the identity stays
    assert Corrector(other_tau, None, magnitude).info.device_uid == shaped.info.device_uid
    with pytest.raises(ValueError, match="shape step"):
        Corrector(policy, None, None, magnitude)
    with pytest.raises(ValueError, match="shape step"):
        wiener_info(policy, None, magnitude.model.manifest)
    _, _, blurred = _blurred_curved(4)
    fine = assess_motion(blurred, 0.2, policy)
    assert fine.blurred
    out = both(blurred, fine)
    done = deconvolve(blurred, fine, policy, magnitude=magnitude, detector_magnitude=magnitude)
    assert done.shape is not None and done.shape.checked  # the step read the frame
    assert out.applied and np.array_equal(out.image, done.image)
    # without the detector network the same frame keeps the straight kernel, unread
    plain = deconvolve(blurred, fine, policy, magnitude=magnitude)
    assert plain.shape is not None and not plain.shape.checked


def test_the_detector_setting_loads_its_model_only_with_the_shape_step(tmp_path: Path) -> None:
    from node.app import load_models

    cfg = tmp_path / "c.yaml"
    cfg.write_text("models:\n  kernel_shape_detector: kernel-magnitude\n")
    s = load_settings(cfg, environ={})
    assert s.models.kernel_shape_detector == BUNDLED
    loaded = load_models(s).deblur
    assert loaded.detector_magnitude is not None
    assert loaded.info.version == ACROSS_DETECTOR_RL_MEAN_VERSION
    # in every frame, no limit: the eighteenth round's step on 0.31.0 (the whole frame fitted)
    cfg.write_text(
        "models:\n  kernel_shape_detector: kernel-magnitude\nblur_gate:\n"
        "  shape_detector_min_quanta: null\n  shape_detector_max_specificity: null\n"
        "  fallback_leaves_shadows: false\n  estimate_clear_of_shadows_from_mm: null\n"
        "  kernel_length_across_up_to_px: null\n"
    )
    every = load_models(load_settings(cfg, environ={})).deblur.info
    assert every.version == DETECTOR_DRAWN_RL_MEAN_VERSION
    cfg.write_text(
        "models:\n  kernel_shape_detector: kernel-magnitude\n  kernel_shape_second: off\n"
    )
    assert load_models(load_settings(cfg, environ={})).deblur.info.version == (
        DETECTOR_SHAPED_VERSION
    )
    _used_only_with_the_first(cfg, "kernel_shape_detector", "detector_magnitude")


def _used_only_with_the_first(cfg: Path, setting: str, attribute: str) -> None:
    """``models.<setting>`` loads nothing without ``models.kernel_shape``, and is switched off
    by off or null."""
    from node.app import load_models

    cfg.write_text(f"models:\n  kernel_shape: off\n  {setting}: kernel-magnitude\n")
    alone = load_models(load_settings(cfg, environ={})).deblur
    assert alone.magnitude is None and getattr(alone, attribute) is None
    assert alone.info.version == WIENER_VERSION
    for off in ("off", "null"):
        cfg.write_text(f"models:\n  {setting}: {off}\n")
        assert getattr(load_settings(cfg, environ={}).models, setting) is None


def test_the_second_network_s_correction_is_averaged_where_the_first_read_the_frame(
    magnitude: KernelMagnitude,
) -> None:
    """The twenty-eighth round: the mean of the correction with the first network and the one
    with the second at its own τ; its own version and Device UID; said in the text."""
    second = KernelMagnitude(load_model(BUNDLED_MODELS / "kernel-magnitude-second", "cpu", 1, True))
    assert second.model.manifest.version == "0.5.0"
    policy = MotionPolicy(
        shape_rl_follows_noise=False,
        rl_fallback_follows_noise_from_mm=None,
        fallback_leaves_shadows=False,
        estimate_avoids_shadows=False,
        kernel_length_across_up_to_px=None,
    )  # 0.14.0
    shaped = Corrector(policy, None, magnitude)
    mean = Corrector(policy, None, magnitude, None, second)
    assert mean.info.version == MEAN_VERSION != shaped.info.version
    assert mean.info.device_uid != shaped.info.device_uid
    assert "second magnitude (sharpray-kernel-magnitude 0.5.0)" in (mean.info.description or "")
    sharp, _, blurred = _blurred_curved(4)
    motion = assess_motion(blurred, 0.6, policy)
    assert motion.blurred
    out = mean(blurred, motion)
    first = deconvolve(blurred, motion, policy, magnitude=magnitude)
    other = deconvolve(blurred, motion, mean.second_policy, magnitude=second)
    assert first.shape is not None and first.shape.checked
    assert mean.second_policy.shape_thresholds == (0.15, 0.25)
    expected = ((first.image.astype(np.float64) + other.image) / 2).astype(np.float32)
    assert out.applied and np.array_equal(out.image, expected)
    assert not np.array_equal(out.image, first.image)  # the two corrections differ here
    assert out.method.startswith("mean of two corrections: ")
    assert "sharpray-kernel-magnitude 0.5.0" in out.method
    # at detector scale the first network does not read the frame: one correction, as before
    fine = assess_motion(blurred, 0.2, policy)
    assert np.array_equal(mean(blurred, fine).image, shaped(blurred, fine).image)
    # the second network needs the first, and no refiner
    with pytest.raises(ValueError, match="second kernel magnitude"):
        Corrector(policy, None, None, None, second)
    with pytest.raises(ValueError, match="shape step"):
        wiener_info(policy, None, None, second.model.manifest)


def test_where_neither_network_replaces_the_straight_kernel_one_correction_is_run(
    magnitude: KernelMagnitude, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where both networks read straight motion, their corrections are the same: the second is
    not computed again, and the result is the mean of two as before, to the bit."""
    import node.pipeline.correct as correct

    second = KernelMagnitude(load_model(BUNDLED_MODELS / "kernel-magnitude-second", "cpu", 1, True))
    policy = MotionPolicy()
    mean = Corrector(policy, None, magnitude, None, second)
    mixed = 0.7 * chest_like(384, 384, 6) + 0.3 * power_law_field(384, 6, 1.25, 0.0, 1.0)
    sharp = np.clip(mixed, 0.0, 1.0).astype(np.float32)
    straight = linear_kernel(10.0, 30.0)
    blurred = simulate_motion_blur(sharp, straight, np.random.default_rng(2), noise=NoiseSpec(3e4))
    motion = assess_motion(blurred, 0.6, policy)
    assert motion.blurred
    first = deconvolve(blurred, motion, policy, magnitude=magnitude)
    other = deconvolve(blurred, motion, mean.second_policy, magnitude=second)
    assert first.shape is not None and first.shape.checked and not first.shape.replaced
    assert other.shape is not None and not other.shape.replaced
    expected = ((first.image.astype(np.float64) + other.image) / 2).astype(np.float32)
    calls: list[object] = []

    def counted(*args: object, **kwargs: object) -> object:
        calls.append(kwargs.get("magnitude"))
        return deconvolve(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(correct, "deconvolve", counted)
    out = mean(blurred, motion)
    assert np.array_equal(out.image, expected) and np.array_equal(out.image, first.image)
    assert calls == [magnitude]  # the first network's correction only
    assert out.method.startswith("mean of two corrections: ")
    # where the second replaces the kernel, its correction is run (the curved case)
    calls.clear()
    _, _, curved = _blurred_curved(4)
    mean(curved, assess_motion(curved, 0.6, policy))
    assert calls == [magnitude, second]


def test_a_retrieved_kernel_s_fallback_takes_steps_by_the_noise_where_the_setting_says(
    magnitude: KernelMagnitude, tmp_path: Path
) -> None:
    """The twenty-ninth round's setting: its own version and Device UID, said in the
    description, read from config.yaml; a collimated frame whose retrieved kernel rings takes
    40 steps without noise where the node as built takes 10."""

    # as 0.16.0: the straight kernel's steps by the noise (the thirtieth round) apart
    follows = _configured(
        tmp_path / "c.yaml",
        "  shape_rl_follows_noise: true\n  rl_follows_noise_from_mm: null\n"
        "  rl_fallback_budget_max_steps: null\n",
        RL_MEAN_VERSION,
    )
    assert follows.shape_rl_follows_noise
    built = dataclasses.replace(follows, shape_rl_follows_noise=False)
    new, old = _beside(
        magnitude,
        follows,
        built,
        (RL_MEAN_VERSION, MEAN_VERSION, DETECTOR_RL_MEAN_VERSION),
        (
            "10-40 by the measured noise for a retrieved kernel",
            "by the measured noise for a retrieved",
        ),
    )
    m = magnitude.model.manifest
    assert wiener_info(built, m, m, m).version == DETECTOR_MEAN_VERSION
    # a collimated frame, curved motion, no noise
    k = trajectory_kernel(10.0, np.random.default_rng(6), curvature=1.0)
    sharp, blurred = _collimated_blurred(k)
    motion = assess_motion(blurred, 0.6, built)
    assert motion.blurred
    first = deconvolve(blurred, motion, follows, magnitude=magnitude)
    assert first.shape is not None and first.shape.replaced
    assert first.method == "richardson-lucy" and first.rl_iterations == 40
    _fallback_steps_said(sharp, blurred, motion, new, old)


def test_the_second_setting_is_used_only_with_the_first(tmp_path: Path) -> None:
    _used_only_with_the_first(tmp_path / "c.yaml", "kernel_shape_second", "second_magnitude")


def test_the_straight_kernel_s_fallback_takes_steps_by_the_noise_where_the_setting_says(
    magnitude: KernelMagnitude, tmp_path: Path
) -> None:
    """The thirtieth round's setting (``blur_gate.rl_follows_noise_from_mm``): its own version
    and Device UID, said in the description, read from config.yaml and the environment; a
    collimated frame at 0.6 mm whose straight kernel rings takes 40 steps without noise where
    0.16.0 takes 10, and at 0.2 mm it keeps 10."""

    cfg = tmp_path / "c.yaml"
    # as 0.18.0: the cap by the frame's size (the thirty-second round) apart
    follows = _configured(
        cfg,
        "  rl_follows_noise_from_mm: 0.4\n  rl_fallback_budget_max_steps: null\n"
        "  wiener_penalty_noise_over_signal: null\n",
        ALL_RL_MEAN_VERSION,
    )
    assert follows.rl_fallback_follows_noise_from_mm == 0.4
    cfg.write_text("blur_gate: {}\n")
    key = "SHARPRAY_BLUR_GATE__RL_FOLLOWS_NOISE_FROM_MM"
    assert _from_env(cfg, {key: "0.5"}).rl_fallback_follows_noise_from_mm == 0.5
    assert _from_env(cfg, {key: "null"}).rl_fallback_follows_noise_from_mm is None
    built = dataclasses.replace(follows, rl_fallback_follows_noise_from_mm=None)  # 0.16.0
    new, old = _beside(
        magnitude,
        follows,
        built,
        (ALL_RL_MEAN_VERSION, RL_MEAN_VERSION, DETECTOR_ALL_RL_MEAN_VERSION),
        (
            "10-40 by the measured noise at pixels of 0.4 mm and more and for a retrieved kernel",
            "at pixels of 0.4 mm and more",
        ),
    )
    # a collimated frame, straight motion, no noise
    sharp, blurred = _collimated_blurred(linear_kernel(10.0, 30.0))
    motion = assess_motion(blurred, 0.6, built)
    assert motion.blurred
    first = deconvolve(blurred, motion, follows, magnitude=magnitude)
    assert first.shape is not None and not first.shape.replaced
    assert first.method == "richardson-lucy" and first.rl_iterations == 40
    _fallback_steps_said(sharp, blurred, motion, new, old)
    fine = assess_motion(blurred, 0.2, built)
    assert fine.blurred
    assert np.array_equal(new(blurred, fine).image, old(blurred, fine).image)


def test_the_fallback_s_cap_by_the_frame_s_size_where_the_setting_says(
    magnitude: KernelMagnitude, tmp_path: Path
) -> None:
    """The thirty-second round's setting (``blur_gate.rl_fallback_budget_max_steps``): its own
    version and Device UID, said in the description, read from config.yaml and the environment;
    a small collimated frame without noise takes up to 120 fallback steps where 0.18.0 stops at
    40, and gains; a 1024² frame keeps 40."""
    from models.deblur import fallback_cap

    cfg = tmp_path / "c.yaml"
    budget = _configured(cfg, "  rl_fallback_budget_max_steps: 120\n", BUDGET_RL_MEAN_VERSION)
    assert budget.rl_fallback_budget_max_iterations == 120
    cfg.write_text("blur_gate: {}\n")
    policy = _from_env(cfg, {"SHARPRAY_BLUR_GATE__RL_FALLBACK_BUDGET_MAX_STEPS": "80"})
    assert policy.rl_fallback_budget_max_iterations == 80
    assert fallback_cap((384, 384), policy) == 80 and fallback_cap((1024, 1024), policy) == 40
    assert fallback_cap((640, 640), budget) == 102 and fallback_cap((2048, 2048), budget) == 40
    built = dataclasses.replace(budget, rl_fallback_budget_max_iterations=None)  # 0.31.0
    new, old = _beside(
        magnitude,
        budget,
        built,
        (BUDGET_RL_MEAN_VERSION, DRAWN_RL_MEAN_VERSION, DETECTOR_BUDGET_RL_MEAN_VERSION),
        ("up to 120 in a frame smaller than 1024 x 1024 px", "up to 120"),
    )
    # a collimated 384² frame, straight motion, no noise: the law's steps reach the cap
    sharp, blurred = _collimated_blurred(linear_kernel(10.0, 30.0))
    motion = assess_motion(blurred, 0.6, built)
    assert motion.blurred
    _fallback_steps_said(sharp, blurred, motion, new, old, (120, 40), 0.3)


def test_a_second_native_pixel_network_s_correction_is_averaged_at_detector_scale(
    magnitude: KernelMagnitude,
) -> None:
    """The sixty-third and sixty-fourth rounds' setting (``models.kernel_shape_detector_second``):
    at pixels finer than 0.4 mm, where the native-pixel network read the frame, the correction
    is the pixel-wise mean of the node's correction with each network — to the bit the mean of
    two nodes built one with each, which is what the rounds measured; its own version and
    Device UID; said in the description and the text; at ≈0.6 mm nothing changes."""
    detector = KernelMagnitude(
        load_model(BUNDLED_MODELS / "kernel-magnitude-detector", "cpu", 1, True)
    )
    second = magnitude  # the bundled ≈0.6 mm network stands in for a second native-pixel one
    at_06 = KernelMagnitude(load_model(BUNDLED_MODELS / "kernel-magnitude-second", "cpu", 1, True))
    policy = MotionPolicy()
    shipped = Corrector(policy, None, magnitude, detector, at_06)
    with_second = Corrector(policy, None, magnitude, detector, at_06, second)
    alone_second = Corrector(policy, None, magnitude, second, at_06)
    assert shipped.info.version == ACROSS_DETECTOR_RL_MEAN_VERSION
    assert with_second.info.version == DETECTOR_SECOND_VERSION != shipped.info.version
    assert with_second.info.device_uid != shipped.info.device_uid
    said = with_second.info.description or ""
    assert "second native-pixel magnitude (sharpray-kernel-magnitude 0.5.0)" not in said
    assert f"second native-pixel magnitude ({second.model.manifest.name} " in said
    _, _, blurred = _blurred_curved(4)
    fine = assess_motion(blurred, 0.2, policy)
    assert fine.blurred
    first, other = shipped(blurred, fine), alone_second(blurred, fine)
    assert not np.array_equal(first.image, other.image)  # the two networks differ here
    expected = ((first.image.astype(np.float64) + other.image) / 2).astype(np.float32)
    out = with_second(blurred, fine)
    assert out.applied and np.array_equal(out.image, expected)
    assert out.method.startswith("mean of two corrections: ")
    assert f"native-pixel kernel magnitude {second.model.manifest.name}" in out.method
    # at ≈0.6 mm the native-pixel networks are not read: the correction is the shipped one
    coarse = assess_motion(blurred, 0.6, policy)
    assert np.array_equal(with_second(blurred, coarse).image, shipped(blurred, coarse).image)
    # a noisy frame at detector scale: the network does not read it, one correction
    noisy = simulate_motion_blur(
        _blurred_curved(4)[0],
        linear_kernel(10.0, 30.0),
        np.random.default_rng(3),
        noise=NoiseSpec(1e4),
    )
    loud = assess_motion(noisy, 0.2, policy)
    assert loud.blurred
    assert np.array_equal(with_second(noisy, loud).image, shipped(noisy, loud).image)
    # it belongs to the native-pixel step of the blind correction
    with pytest.raises(ValueError, match="native-pixel"):
        Corrector(policy, None, magnitude, None, None, second)
    with pytest.raises(ValueError, match="native-pixel"):
        wiener_info(policy, magnitude.model.manifest, None, None, second.model.manifest)


def test_the_detector_second_setting_is_off_by_default_and_loads_only_with_the_detector_step(
    tmp_path: Path,
) -> None:
    from node.app import load_models

    cfg = tmp_path / "c.yaml"
    cfg.write_text("models: {}\n")
    assert load_settings(cfg, environ={}).models.kernel_shape_detector_second is None
    shipped = load_settings(Path(__file__).parents[2] / "config.yaml", environ={})
    assert shipped.models.kernel_shape_detector_second is None  # the rounds missed: off
    assert load_models(shipped).deblur.info.version == ACROSS_DETECTOR_RL_MEAN_VERSION
    cfg.write_text("models:\n  kernel_shape_detector_second: kernel-magnitude\n")
    s = load_settings(cfg, environ={})
    assert s.models.kernel_shape_detector_second == BUNDLED
    loaded = load_models(s).deblur
    assert loaded.detector_second is not None
    assert loaded.info.version == DETECTOR_SECOND_VERSION
    key = "SHARPRAY_MODELS__KERNEL_SHAPE_DETECTOR_SECOND"
    assert load_settings(cfg, environ={key: "off"}).models.kernel_shape_detector_second is None
    cfg.write_text(
        "models:\n  kernel_shape_detector: off\n  kernel_shape_detector_second: kernel-magnitude\n"
    )
    without = load_models(load_settings(cfg, environ={})).deblur
    assert without.detector_magnitude is None and without.detector_second is None
    _used_only_with_the_first(cfg, "kernel_shape_detector_second", "detector_second")
