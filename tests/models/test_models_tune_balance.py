"""models.tune_balance: the fifth round's comparison of how a retrieved kernel is inverted."""

from __future__ import annotations

from typing import Any

import pytest

from models.tune_balance import (
    AS_BUILT_FILTER,
    AS_BUILT_SHRINK,
    AS_BUILT_TAU,
    SHAPE_FILTERS,
    SHRINK_FILTERS,
    shape_net_policies,
    summarise_filters,
)


def _row(scene: str, gains: dict[str, float], replaced: bool = True) -> dict[str, Any]:
    row: dict[str, Any] = {
        "scene": scene,
        "kind": "curved",
        "px": 10.0,
        "quanta": None,
        "shape_replaced": replaced,
        f"gain_{AS_BUILT_FILTER}": 1.0,
    }
    if replaced:
        row.update({f"gain_{label}": gains.get(label, 1.0) for label in SHAPE_FILTERS})
    return row


def test_the_best_candidate_is_the_highest_mean_among_those_no_group_of_which_falls_too_far() -> (
    None
):
    rows = [
        # rl10 gains most on average but loses 0.5 dB in the collimated group: not admissible
        _row("0.6/open", {"rl10": 3.0, "c1.4_n3": 1.5}),
        _row("0.6/open", {"rl10": 3.0, "c1.4_n3": 1.5}),
        _row("0.6/collimated", {"rl10": 0.5, "c1.4_n3": 0.9}),
        _row("0.6/open", {"rl10": 9.9}, replaced=False),  # not replaced: not counted
    ]
    out = summarise_filters(rows)
    assert out["cases"] == 3
    rl10 = out["candidates"]["rl10"]
    assert rl10["mean"] == pytest.approx(6.5 / 3, abs=1e-3)
    assert rl10["worst_group"].startswith("0.6/collimated")
    assert rl10["worst_fall"] == pytest.approx(-0.5) and not rl10["admissible"]
    assert out["candidates"]["c1.4_n3"]["delta"] == pytest.approx(0.3, abs=1e-3)
    assert out["candidates"][AS_BUILT_FILTER]["delta"] == 0.0
    assert out["best"] == "c1.4_n3"


def test_no_replaced_case_no_candidate() -> None:
    out = summarise_filters([_row("0.6/open", {}, replaced=False)])
    assert out == {"cases": 0, "candidates": {}}


def test_the_sixth_round_counts_every_flagged_case_against_the_node_as_built() -> None:
    def row(scene: str, gains: dict[str, float]) -> dict[str, Any]:
        r: dict[str, Any] = {"scene": scene, "kind": "straight", "px": 6.0, "quanta": 1e4}
        r.update({f"gain_{label}": gains.get(label, 1.0) for label in SHRINK_FILTERS})
        return r

    rows = [
        row("0.6/open", {"f1_shrink": 1.4, "f0.5_plain": 2.0}),
        row("0.2/open", {"f1_shrink": 1.2, "f0.5_plain": 0.5}),
        {"scene": "0.6/open", "kind": "straight", "px": 6.0, "quanta": 1e4},  # not flagged
    ]
    out = summarise_filters(
        rows, candidates=tuple(SHRINK_FILTERS), built=AS_BUILT_SHRINK, replaced_only=False
    )
    assert out["cases"] == 2
    assert out["candidates"]["f0.5_plain"]["mean"] == pytest.approx(1.25)
    assert not out["candidates"]["f0.5_plain"]["admissible"]  # 0.2/open falls 0.5 dB
    assert out["candidates"]["f1_shrink"]["delta"] == pytest.approx(0.3)
    assert out["best"] == "f1_shrink"


def test_the_twelfth_round_simulates_every_threshold_from_never_and_always_replaced_rows() -> None:
    from models.kernel_shape import QUIET_FROM_QUANTA, shape_threshold
    from models.tune_balance import AS_BUILT_TAU, summarise_thresholds

    # the round's outcome is the default: 0.25 quiet as before, 0.3 noisy instead of 0.4
    assert AS_BUILT_TAU == (0.25, 0.4)
    assert shape_threshold(None) == 0.25 and shape_threshold(1e3) == 0.3
    assert shape_threshold(1e3, (0.1, 0.2)) == 0.2 and shape_threshold(1e6, (0.1, 0.2)) == 0.1

    def row(scene: str, q: float, distance: float, never: float, always: float) -> dict[str, Any]:
        return {
            "scene": scene,
            "kind": "curved",
            "px": 10.0,
            "quanta": q,
            "measured_quanta": q,
            "flagged": True,
            "shape_distance": distance,
            "gain_fixed": never,
            "gain_noise": always,
        }

    noisy = QUIET_FROM_QUANTA / 5
    rows = [
        # a noisy case at distance 0.32: replaced from τ noisy 0.3 down, and it gains 1 dB there
        row("0.6/open", noisy, 0.32, 1.0, 2.0),
        # a noisy collimated case at 0.27: replaced at τ 0.25 only, where it loses 0.5 dB
        row("0.6/collimated", noisy, 0.27, 1.0, 0.5),
        # a quiet case at 0.3: replaced by every quiet τ
        row("0.6/open", 10 * QUIET_FROM_QUANTA, 0.3, 1.0, 3.0),
        {"scene": "0.6/open", "kind": "curved", "px": 6.0, "quanta": None, "flagged": False},
    ]
    out = summarise_thresholds(rows)
    assert out["cases"] == 3
    built = out["pairs"]["0.25/0.4"]
    assert built["delta"] == 0.0 and built["replaced"] == 1
    assert built["mean"] == pytest.approx((1.0 + 1.0 + 3.0) / 3, abs=1e-3)
    better = out["pairs"]["0.25/0.3"]
    assert better["replaced"] == 2 and better["delta"] == pytest.approx(1 / 3, abs=1e-3)
    worse = out["pairs"]["0.25/0.25"]
    assert worse["worst_group"].startswith("0.6/collimated")
    assert worse["worst_fall"] == pytest.approx(-0.5) and not worse["admissible"]
    assert out["best"] in {"0.15/0.3", "0.2/0.3", "0.25/0.3"}
    assert out["pairs"][out["best"]]["mean"] == better["mean"]
    # where nothing differs, the pair as built is kept
    assert summarise_thresholds(rows[2:3])["best"] == "0.25/0.4"
    # the twenty-third round compares against τ as built since 0.10.0
    since = summarise_thresholds(rows, built_pair=(0.25, 0.3))
    assert since["pairs"]["0.25/0.3"]["delta"] == 0.0
    assert since["pairs"]["0.25/0.4"]["delta"] == pytest.approx(-1 / 3, abs=1e-3)
    assert summarise_thresholds(rows[2:3], built_pair=(0.25, 0.3))["best"] == "0.25/0.3"


def test_the_thirteenth_round_reports_both_noise_measures_against_the_truth() -> None:
    from models.tune_balance import summarise_noise

    def row(scene: str, q: float | None, frame: float, where: float) -> dict[str, Any]:
        return {
            "scene": scene,
            "quanta": q,
            "measured_quanta": frame,
            "measured_quanta_where_read": where,
        }

    rows = [
        row("0.2/whole", 1e4, 1.3e4, 1.05e4),
        row("0.2/whole", 1e4, 1.2e4, 1.01e4),
        row("0.2/whole", 1e4, 1.1e4, 0.97e4),
        row("0.2/whole", None, 4e7, 3e7),  # no noise added: no truth to compare with
        row("0.6/whole", 3e3, 3.3e3, 3.0e3),
    ]
    out = summarise_noise(rows)
    assert set(out) == {"0.2/whole 10000", "0.6/whole 3000"}
    assert out["0.2/whole 10000"] == {"cases": 3, "frame_mean": 1.2, "where_read": 1.01}
    assert out["0.6/whole 3000"]["where_read"] == pytest.approx(1.0)


def test_the_regulariser_is_scaled_by_the_motions_length_before_its_range() -> None:
    import dataclasses

    import numpy as np

    from models.deblur import MotionPolicy, length_factor, wiener_balance

    policy = dataclasses.replace(MotionPolicy(), balance_length_exponent=0.5)
    assert length_factor(10.0, policy) == pytest.approx(1.0)  # the reference length
    assert length_factor(2.5, policy) == pytest.approx(2.0)  # short: more
    assert length_factor(40.0, policy) == pytest.approx(0.5)  # long: less
    assert length_factor(0.2, policy) == length_factor(1.0, policy)
    assert length_factor(None, policy) == 1.0 == length_factor(40.0, MotionPolicy())
    rng = np.random.default_rng(5)
    noisy = rng.poisson(np.full((256, 256), 0.4) * 1e4) / 1e4
    lam, _ = wiener_balance(noisy, policy)
    assert wiener_balance(noisy, policy, None, 40.0)[0] == pytest.approx(lam / 2)
    # a frame without noise keeps the least λ, however short its motion
    flat = np.full((256, 256), 0.4)
    lo = policy.balance_range[0]
    assert wiener_balance(flat, policy, None, 2.0)[0] == lo


def test_a_length_exponent_changes_what_the_deconvolution_is_regularised_with() -> None:
    import dataclasses

    import numpy as np

    from models.blur import NoiseSpec, linear_kernel, simulate_motion_blur
    from models.deblur import MotionPolicy, assess_motion, deconvolve
    from tests.support.synthetic import power_law_field

    sharp = power_law_field(320, 3, 1.3, 0.2, 0.8).astype(np.float32)
    rng = np.random.default_rng(4)
    blurred = simulate_motion_blur(sharp, linear_kernel(20.0, 30.0), rng, noise=NoiseSpec(1e4))
    plain = MotionPolicy()
    scaled = dataclasses.replace(plain, balance_length_exponent=1.0)
    a = assess_motion(blurred, 0.2, plain)
    assert a.blurred and a.estimate.length_px > 15
    lam_plain = deconvolve(blurred, a, plain).balance
    lam_scaled = deconvolve(blurred, a, scaled).balance
    assert lam_plain is not None and lam_scaled is not None
    assert lam_scaled == pytest.approx(lam_plain * 10.0 / a.estimate.length_px, rel=1e-6)


def test_a_lambda_law_is_scored_by_interpolating_each_cases_grid() -> None:
    import math

    from models.tune_balance import AS_BUILT_LAW, GRID, balance_law, gain_at, summarise_laws

    def row(px: float, quanta: float, peak: float, scene: str = "0.2/whole") -> dict[str, Any]:
        # a gain curve over log λ with its best at ``peak``
        r: dict[str, Any] = {
            "scene": scene,
            "kind": "straight",
            "px": px,
            "quanta": quanta,
            "flagged": True,
            "measured_quanta": quanta * 1.3,  # the frame's mean overstates N
            "measured_quanta_where_read": quanta,
            "estimated_px": px,
        }
        r.update({f"gain_{g}": 2.0 - (math.log(g) - math.log(peak)) ** 2 for g in GRID})
        return r

    r = row(10.0, 1e4, 0.1)
    assert balance_law(r, (0.1, 0.7, 0.0, "where_read"), (0.01, 0.4)) == pytest.approx(0.1)
    assert balance_law(r, AS_BUILT_LAW, (0.01, 0.4)) == pytest.approx(0.1 / 1.3**0.7)
    assert balance_law(row(40.0, 1e4, 0.1), (0.1, 0.7, 0.5, "where_read"), (0.01, 0.4)) == (
        pytest.approx(0.05)
    )
    assert gain_at(r, 0.1) == pytest.approx(2.0)
    assert gain_at(r, 0.07) < 2.0 and gain_at(r, 1.0) == gain_at(r, GRID[-1])
    # every case's best λ is the where-read law's: it wins, and no group falls
    q = 1e4 / 2 ** (1 / 0.7)  # the noise at which the law gives 0.2, a grid value
    rows = [row(10.0, 1e4, 0.1), row(10.0, q, 0.2)]
    out = summarise_laws(rows)
    assert out["cases"] == 2
    best = out["best_admissible"][0]
    assert best["law"] == [0.1, 0.7, 0.0, "where_read"] and best["delta"] > 0
    assert best["worst_fall"] >= 0


def test_the_whole_frame_design_has_every_scene_motion_and_noise() -> None:
    import numpy as np

    from models.tune_balance import NOISE, WHOLE_LENGTHS_02, whole_frame_cases
    from tests.support.synthetic import power_law_field

    base = power_law_field(96, 1, 1.3, 0.2, 0.8).astype(np.float32)
    cases = list(whole_frame_cases(base, np.random.default_rng(0)))
    assert len(cases) == (2 * 2 + 2 * len(WHOLE_LENGTHS_02)) * len(NOISE)
    at_06 = [c for c in cases if c.scene == "0.6/whole"]
    at_02 = [c for c in cases if c.scene == "0.2/whole"]
    assert {c.px for c in at_06} == {6.0, 10.0} and {c.px for c in at_02} == set(WHOLE_LENGTHS_02)
    assert at_06[0].sharp.shape == (96, 96) and at_02[0].sharp.shape == (288, 288)
    assert all(c.blurred.shape == c.sharp.shape for c in cases)
    # the same draws give the same cases (the rounds' rows are reproducible)
    again = list(whole_frame_cases(base, np.random.default_rng(0)))
    assert all(np.array_equal(a.blurred, b.blurred) for a, b in zip(cases, again, strict=True))


def test_the_twenty_seventh_round_gives_each_network_its_own_threshold() -> None:
    both = shape_net_policies((0.2, 0.25), None)
    assert both["fixed"].shape_thresholds == both["noise"].shape_thresholds == (0.2, 0.25)
    own = shape_net_policies((0.2, 0.25), (0.25, 0.3))
    assert own["fixed"].shape_thresholds == (0.25, 0.3)
    assert own["noise"].shape_thresholds == (0.2, 0.25)
    default = shape_net_policies(None, None)
    assert default["fixed"].shape_thresholds == AS_BUILT_TAU


def test_the_twenty_ninth_round_combines_three_corrections_pixel_by_pixel() -> None:
    import dataclasses

    import numpy as np
    from skimage.metrics import peak_signal_noise_ratio

    from models.blur import NoiseSpec, linear_kernel, simulate_motion_blur
    from models.deblur import MotionPolicy, assess_motion, deconvolve
    from models.tune_balance import third_gains
    from tests.support.synthetic import power_law_field

    sharp = power_law_field(256, 5, 1.3, 0.2, 0.8).astype(np.float32)
    rng = np.random.default_rng(5)
    blurred = simulate_motion_blur(sharp, linear_kernel(8.0, 20.0), rng, noise=NoiseSpec(3e4))
    a = assess_motion(blurred, 0.6, MotionPolicy())
    assert a.blurred
    # three readings that differ (λ scaled), so that mean, median and each alone differ
    policies = [dataclasses.replace(MotionPolicy(), wiener_balance_factor=f) for f in (0.3, 1, 4)]
    images = [deconvolve(blurred, a, p).image.astype(np.float64) for p in policies]

    def gain(image: np.ndarray) -> float:
        return float(
            peak_signal_noise_ratio(sharp, image, data_range=1.0)
            - peak_signal_noise_ratio(sharp, blurred, data_range=1.0)
        )

    readings = [(p, None) for p in policies]
    mean = third_gains(sharp, blurred, a, *readings, combine="mean")
    assert mean["gain_fixed"] == pytest.approx(gain((images[0] + images[1]) / 2))
    assert mean["gain_noise"] == pytest.approx(gain(np.mean(images, axis=0)))
    assert mean["gain_other"] == pytest.approx(gain(np.median(images, axis=0)))
    assert mean["gain_candidate"] == pytest.approx(gain(images[2]))
    median = third_gains(sharp, blurred, a, *readings, combine="median")
    assert median["gain_noise"] == mean["gain_other"]
    assert median["gain_other"] == mean["gain_noise"]
    assert len({round(v, 6) for v in mean.values()}) == 4


def test_the_thirtieth_round_redoes_only_the_readings_whose_straight_kernel_fell_back() -> None:
    """``straight-rl-validate``: a collimated frame at 0.6 mm whose straight kernel rings goes to
    the fallback; the candidate's steps follow the noise (40 without noise), the round-29
    comparison (retrieved kernels only) leaves it as built."""
    import dataclasses

    import numpy as np

    from models.blur import linear_kernel, simulate_motion_blur
    from models.deblur import MotionPolicy, assess_motion
    from models.tune_balance import rl_mean_gains
    from tests.support.synthetic import power_law_field

    sharp = power_law_field(320, 8, 1.3, 0.2, 0.8).astype(np.float32)
    sharp[:, :50] = 0.0  # an unexposed band: the Wiener result rings at its edge
    blurred = simulate_motion_blur(sharp, linear_kernel(10.0, 20.0))
    a = assess_motion(blurred, 0.6, MotionPolicy())
    assert a.blurred
    built = MotionPolicy(rl_fallback_follows_noise_from_mm=None)  # 0.16.0
    readings = [(built, None), (dataclasses.replace(built, shape_thresholds=(0.15, 0.25)), None)]
    straight = rl_mean_gains(sharp, blurred, a, *readings, straight=True)
    assert straight["fell_back"] == 2
    assert straight["gain_noise"] > straight["gain_fixed"] + 0.5
    retrieved = rl_mean_gains(sharp, blurred, a, *readings)
    assert retrieved["fell_back"] == 0
    assert retrieved["gain_noise"] == retrieved["gain_fixed"] == straight["gain_fixed"]
