"""Cost of the node's blind motion correction on one frame, against scikit-image in the same run.

    python -m bench.correction [--size 2048] [--repeat 3] [--quanta 1e4] [--out FILE.json]

A synthetic radiograph-like frame (smooth anatomy, edges, fine texture) of ``--size``², blurred by
20 px (4 mm at 0.2 mm/px) of straight motion in linear exposure with Poisson noise (``--quanta``;
0: none, where the node's regulariser is least and its Richardson-Lucy fallback takes the most
steps: the dearest case), twice: open,
and collimated (an unexposed band and a marker, :func:`models.tune_deconvolution.collimate`), so
that the node's correction takes its Wiener path once and its Richardson-Lucy fallback once.
Timed (median of ``--repeat``): the blind estimate (:func:`models.deblur.assess_motion`), the
node's deconvolution (:func:`models.deblur.deconvolve`) and, as the peer, scikit-image's
``richardson_lucy`` (10 iterations, its default FFT convolution) with the same kernel on the same
exposure image. Reported as seconds and the ratio peer / node (above 1: the node is faster).
Also the kernel shape step's cost where it runs (a 640² frame at 0.6 mm/px, curved motion; it
does not run on detector-scale pixels), and the Richardson-Lucy fallback's cost at 0.6 mm/px on
collimated 640² and 1024² frames without noise, with the cap of 40 steps and as a time budget
(:func:`fallback_cap`), and at detector scale the fallback with a retrieved kernel on a
collimated quiet frame (:func:`detector_fallback`), the fallback that leaves the shadows
out of its fit (:func:`shadow_fallback`), and the estimate whose windows keep clear of them
(:func:`clear_windows`), and the fallback's steps by the noise in a quiet detector frame
(:func:`quiet_fallback`). Nothing is asserted; the issue's bar is 10 s per 2048²
frame on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.ndimage import gaussian_filter

F32 = NDArray[np.float32]


def frame(size: int, seed: int = 0) -> F32:
    """A radiograph-like test frame in [0.1, 0.9]: smooth background, disks, fine texture."""
    rng = np.random.default_rng(seed)
    img = gaussian_filter(rng.standard_normal((size, size)), size / 16) * 6
    yy, xx = np.mgrid[:size, :size]
    for _ in range(40):
        cy, cx = rng.uniform(0, size, 2)
        r = rng.uniform(size / 64, size / 10)
        img += rng.uniform(-0.15, 0.15) * (((yy - cy) ** 2 + (xx - cx) ** 2) < r * r)
    img += gaussian_filter(rng.standard_normal((size, size)), 1.0) * 0.08
    img -= img.min()
    out: F32 = (0.1 + 0.8 * img / img.max()).astype(np.float32)
    return out


def _median_s(fn: Callable[[], object], repeat: int) -> float:
    from models.shadows import forget_kept

    times = []
    for _ in range(repeat):
        forget_kept()  # each repeat a frame seen for the first time: its shadows found again
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return round(statistics.median(times), 3)


def _scene(
    img: F32, kernel: NDArray[np.float64], repeat: int, quanta: float | None
) -> dict[str, Any]:
    from skimage.restoration import richardson_lucy

    from models.blur import NoiseSpec, simulate_motion_blur, to_exposure
    from models.deblur import MotionPolicy, assess_motion, deconvolve

    policy = MotionPolicy()
    blurred = simulate_motion_blur(img, kernel, np.random.default_rng(1), noise=NoiseSpec(quanta))
    assessment = assess_motion(blurred, 0.2, policy)
    done = deconvolve(blurred, assessment, policy)
    exposure = to_exposure(blurred.astype(np.float64), policy.log_range)
    padded = np.pad(exposure, kernel.shape[0], mode="reflect")
    node_s = _median_s(lambda: deconvolve(blurred, assessment, policy), repeat)
    peer_s = _median_s(lambda: richardson_lucy(padded, kernel, num_iter=10, clip=False), repeat)
    return {
        "decision": assessment.decision,
        "estimated_px": round(assessment.estimate.length_px, 2),
        "method": done.method,
        "overshoot": round(done.overshoot, 5),
        "wiener_balance": None if done.balance is None else round(done.balance, 4),
        "measured_quanta": None if done.noise_quanta is None else round(done.noise_quanta),
        "rl_steps": done.rl_iterations,
        "estimate_s": _median_s(lambda: assess_motion(blurred, 0.2, policy), repeat),
        "deconvolve_s": node_s,
        "skimage_richardson_lucy_10_s": peer_s,
        "peer_over_node": round(peer_s / node_s, 2) if node_s > 0 else None,
    }


def shape_step(repeat: int, quanta: float | None, size: int = 640) -> dict[str, Any]:
    """The kernel shape step's cost where it runs: a ``size``² frame at 0.6 mm/px blurred by a
    curved 10 px path; the deconvolution with and without the bundled learned magnitude."""
    from models.blur import NoiseSpec, simulate_motion_blur, to_exposure, trajectory_kernel
    from models.deblur import MotionPolicy, assess_motion, deconvolve
    from models.kernel_shape import (
        choose_orientation,
        load_magnitude_model,
        retrieve_kernel,
        spectrum_input,
    )
    from models.tune_balance import BUNDLED_MAGNITUDE

    policy = MotionPolicy()
    magnitude = load_magnitude_model(BUNDLED_MAGNITUDE)
    kernel = trajectory_kernel(10.0, np.random.default_rng(2), curvature=1.0)
    blurred = simulate_motion_blur(
        frame(size, 3), kernel, np.random.default_rng(1), noise=NoiseSpec(quanta)
    )
    a = assess_motion(blurred, 0.6, policy)
    done = deconvolve(blurred, a, policy, magnitude=magnitude)
    plain_s = _median_s(lambda: deconvolve(blurred, a, policy), repeat)
    shaped_s = _median_s(lambda: deconvolve(blurred, a, policy, magnitude=magnitude), repeat)
    # what a replaced kernel costs on top: the retrieval from the predicted magnitude and the
    # orientation (two Wiener restorations), whether or not the rule replaced it here
    e = to_exposure(blurred.astype(np.float64), policy.log_range)
    mag = np.fft.ifftshift(np.asarray(magnitude(spectrum_input(e)), dtype=np.float64))

    def retrieve_and_orient() -> object:
        k, _ = retrieve_kernel(mag, a.estimate.length_px / 2 + 2, np.random.default_rng(0))
        return choose_orientation(e, k, 0.01, policy.log_range)

    retrieval_s = _median_s(retrieve_and_orient, repeat)
    return {
        "size": size,
        "pixel_spacing_mm": 0.6,
        "decision": a.decision,
        "replaced": done.curved,
        "deconvolve_s": plain_s,
        "deconvolve_with_shape_step_s": shaped_s,
        "shape_step_s": round(shaped_s - plain_s, 3),
        "retrieval_and_orientation_s": retrieval_s,
    }


def detector_shape_step(
    repeat: int, quanta: float | None, size: int = 2048, folder: Path | None = None
) -> dict[str, Any] | None:
    """The shape step at detector scale (the sixteenth round): a ``size``² frame at 0.2 mm/px
    blurred by a curved 20 px (4 mm) path; the node's deconvolution without and with the
    native-pixel magnitude (``folder``: the bundled one; None where it is absent)."""
    from models.blur import NoiseSpec, simulate_motion_blur, trajectory_kernel
    from models.deblur import MotionPolicy, assess_motion, deconvolve
    from models.kernel_shape import load_magnitude_model
    from models.tune_balance import BUNDLED_MAGNITUDE

    folder = folder or BUNDLED_MAGNITUDE.parent / "kernel-magnitude-detector"
    if not (folder / "manifest.json").is_file():
        return None
    policy = MotionPolicy()
    magnitude = load_magnitude_model(BUNDLED_MAGNITUDE)
    detector = load_magnitude_model(folder)
    kernel = trajectory_kernel(20.0, np.random.default_rng(2), curvature=1.0)
    blurred = simulate_motion_blur(
        frame(size, 3), kernel, np.random.default_rng(1), noise=NoiseSpec(quanta)
    )
    a = assess_motion(blurred, 0.2, policy)

    def shaped() -> Any:
        return deconvolve(blurred, a, policy, magnitude=magnitude, detector_magnitude=detector)

    done = shaped()
    plain_s = _median_s(lambda: deconvolve(blurred, a, policy, magnitude=magnitude), repeat)
    shaped_s = _median_s(shaped, repeat)
    return {
        "size": size,
        "pixel_spacing_mm": 0.2,
        "decision": a.decision,
        "replaced": done.curved,
        "deconvolve_s": plain_s,
        "deconvolve_with_detector_shape_step_s": shaped_s,
        "detector_shape_step_s": round(shaped_s - plain_s, 3),
    }


def detector_fallback(
    repeat: int, size: int = 2048, folder: Path | None = None
) -> dict[str, Any] | None:
    """The Richardson-Lucy fallback with a retrieved kernel at detector scale (the fiftieth
    round): a collimated ``size``² frame at 0.2 mm/px blurred by a curved 20 px (4 mm) path
    without noise (quiet: the native-pixel network reads it; its steps by the noise reach the
    cap), corrected by the node as built (where the retrieved kernel rings, as without the
    network) and with ``shape_detector_fallback_unshaped`` off (None where the network is
    absent)."""
    import dataclasses

    from models.blur import NoiseSpec, simulate_motion_blur, trajectory_kernel
    from models.deblur import MotionPolicy, assess_motion
    from models.kernel_shape import load_magnitude_model
    from models.tune_balance import BUNDLED_MAGNITUDE
    from models.tune_deconvolution import collimate

    folder = folder or BUNDLED_MAGNITUDE.parent / "kernel-magnitude-detector"
    if not (folder / "manifest.json").is_file():
        return None
    node = MotionPolicy()
    retrieved = dataclasses.replace(node, shape_detector_fallback_unshaped=False)
    magnitude = load_magnitude_model(BUNDLED_MAGNITUDE)
    detector = load_magnitude_model(folder)
    kernel = trajectory_kernel(20.0, np.random.default_rng(2), curvature=1.0)
    blurred = simulate_motion_blur(
        collimate(frame(size, 3)), kernel, np.random.default_rng(1), noise=NoiseSpec(None)
    )
    a = assess_motion(blurred, 0.2, node)
    row: dict[str, Any] = {"size": size, "pixel_spacing_mm": 0.2, "decision": a.decision}
    for label, policy in (("node", node), ("retrieved_in_fallback", retrieved)):
        row[label] = _policy_row(blurred, a, policy, repeat, magnitude, detector)
    return row


def detector_second(
    repeat: int, size: int = 2048, folder: Path | None = None
) -> dict[str, Any] | None:
    """The mean with a second native-pixel network (``models.kernel_shape_detector_second``,
    the sixty-fourth round): a quiet ``size``² frame at 0.2 mm/px (no noise: the networks read
    it), open and collimated, blurred by a curved 20 px (4 mm) path; the node's correction as
    built without and with the second network (``folder``: the bundled one; None where it is
    absent)."""
    from models.blur import NoiseSpec, simulate_motion_blur, trajectory_kernel
    from models.deblur import MotionPolicy
    from models.tune_balance import BUNDLED_MAGNITUDE
    from models.tune_deconvolution import collimate
    from node.pipeline.correct import Corrector
    from node.pipeline.infer import KernelMagnitude, load_model

    weights = BUNDLED_MAGNITUDE.parent
    folder = folder or weights / "kernel-magnitude-detector-second"
    if not (folder / "manifest.json").is_file():
        return None

    def net(path: Path) -> KernelMagnitude:
        return KernelMagnitude(load_model(path, "cpu", 0, True))

    policy = MotionPolicy()
    first, at_06 = net(weights / "kernel-magnitude"), net(weights / "kernel-magnitude-second")
    detector = net(weights / "kernel-magnitude-detector")
    built = Corrector(policy, None, first, detector, at_06)
    both = Corrector(policy, None, first, detector, at_06, net(folder))
    kernel = trajectory_kernel(20.0, np.random.default_rng(2), curvature=1.0)
    row: dict[str, Any] = {"size": size, "pixel_spacing_mm": 0.2}
    for scene, sharp in (("open", frame(size, 3)), ("collimated", collimate(frame(size, 3)))):
        blurred = simulate_motion_blur(
            sharp, kernel, np.random.default_rng(1), noise=NoiseSpec(None)
        )
        row[scene] = _with_and_without(blurred, built, both, policy, repeat)
    return row


def _with_and_without(
    blurred: F32, built: Any, both: Any, policy: Any, repeat: int
) -> dict[str, Any]:
    """One frame's estimate and its correction by ``built`` and by ``both``, timed."""
    from models.deblur import assess_motion

    a = assess_motion(blurred, 0.2, policy)
    return {
        "decision": a.decision,
        "said": both(blurred, a).method[:160],
        "estimate_s": _median_s(lambda: assess_motion(blurred, 0.2, policy), repeat),
        "node_s": _median_s(lambda: built(blurred, a), repeat),
        "with_second_s": _median_s(lambda: both(blurred, a), repeat),
    }


def shadow_fallback(repeat: int, size: int = 2048) -> dict[str, Any]:
    """The fallback that leaves the shadows out of its fit (the fifty-third and fifty-fourth
    rounds): a ``size``² frame at 0.2 mm/px whose anatomy moved 20 px (4 mm) under a collimator
    and a marker that did not (the shadows drawn after the blur), no noise (the fallback's steps
    reach the cap); the node as built (the shadows left out) and fitting the whole frame as
    0.34.0 did."""
    import dataclasses

    from models.blur import linear_kernel, simulate_motion_blur
    from models.deblur import MotionPolicy, assess_motion
    from models.tune_deconvolution import collimate

    node = MotionPolicy()  # leaves the shadows out: the default since 0.39.0 / 0.40.0
    whole = dataclasses.replace(
        node, fallback_leaves_shadows=False, estimate_avoids_shadows=False
    )  # 0.34.0
    blurred = collimate(simulate_motion_blur(frame(size, 5), linear_kernel(20.0, 30.0)))
    a = assess_motion(blurred, 0.2, node)
    row: dict[str, Any] = {"size": size, "pixel_spacing_mm": 0.2, "decision": a.decision}
    if a.blurred:
        for label, policy in (("whole_frame", whole), ("node", node)):
            row[label] = _policy_row(blurred, a, policy, repeat)
    return row


def clear_windows(repeat: int, size: int = 2048) -> dict[str, Any]:
    """The motion estimate with its windows clear of the shadows (the fifty-sixth round; the
    default since 0.41.0 / 0.42.0) against the windows nearest the centre (0.40.0), on a
    collimated ``size``² frame at 0.2 mm/px: sharp (where the clear windows find no motion of
    2 mm the estimate is made again the old way: the dearest case) and with the anatomy moved
    20 px (4 mm) under shadows that did not."""
    import dataclasses

    from models.blur import linear_kernel, simulate_motion_blur
    from models.deblur import MotionPolicy, assess_motion, deconvolve
    from models.tune_deconvolution import collimate

    node = MotionPolicy()
    built = dataclasses.replace(node, estimate_avoids_shadows=False)  # 0.40.0
    sharp = frame(size, 6)
    frames = {
        "sharp": collimate(sharp),
        "moved_under_shadows": collimate(simulate_motion_blur(sharp, linear_kernel(20.0, 30.0))),
    }
    row: dict[str, Any] = {"size": size, "pixel_spacing_mm": 0.2}
    for name, img in frames.items():
        for label, policy in (("windows_as_built", built), ("node", node)):
            a = assess_motion(img, 0.2, policy)
            row[f"{name}_{label}"] = {
                "decision": a.decision,
                "motion_mm": round(a.motion_mm, 2),
                "estimate_s": _median_s(partial(assess_motion, img, 0.2, policy), repeat),
            }
    # the whole frame, estimate and correction: its shadows found once for both (since
    # sharpray-blind-wiener 0.44.0's code, models.shadows.shadows_of)
    moved = frames["moved_under_shadows"]
    row["moved_under_shadows_node"]["estimate_and_correction_s"] = _median_s(
        lambda: deconvolve(moved, assess_motion(moved, 0.2, node), node), repeat
    )
    return row


def quiet_fallback(repeat: int, size: int = 2048) -> dict[str, Any]:
    """The fallback's steps by the noise in a quiet detector frame (the sixty-sixth round): a
    collimated ``size``² frame at 0.2 mm/px blurred by 20 px (4 mm) of straight motion without
    noise (the steps by the noise reach the cap), and the same frame cut to ``size`` × ``size``/2
    (the largest that takes the whole cap); the estimate and the node's deconvolution as built
    (10 steps) and with ``rl_fallback_quiet_from_quanta`` at 5·10⁵."""
    import dataclasses

    from models.blur import NoiseSpec, linear_kernel, simulate_motion_blur
    from models.deblur import MotionPolicy, assess_motion
    from models.tune_deconvolution import collimate
    from node.pipeline.correct import QUIET_FROM_QUANTA

    node = MotionPolicy()
    quiet = dataclasses.replace(node, rl_fallback_quiet_from_quanta=QUIET_FROM_QUANTA)
    sharp = collimate(frame(size, 6))
    rows = []
    for part in (sharp, sharp[:, : size // 2]):
        blurred = simulate_motion_blur(
            part, linear_kernel(20.0, 30.0), np.random.default_rng(1), noise=NoiseSpec(None)
        )
        a = assess_motion(blurred, 0.2, node)
        row: dict[str, Any] = {"shape": list(part.shape), "decision": a.decision}
        row["estimate_s"] = _median_s(partial(assess_motion, blurred, 0.2, node), repeat)
        if a.blurred:
            for label, policy in (("node", node), ("quiet_steps", quiet)):
                row[label] = _policy_row(blurred, a, policy, repeat)
        rows.append(row)
    return {"pixel_spacing_mm": 0.2, "frames": rows}


def _policy_row(
    blurred: F32,
    assessment: Any,
    policy: Any,
    repeat: int,
    magnitude: Any = None,
    detector: Any = None,
) -> dict[str, Any]:
    """One policy's row in :func:`detector_fallback` / :func:`shadow_fallback`: the path the
    correction took and its median time (``repeat`` readings)."""
    from models.deblur import deconvolve

    def corrected() -> Any:
        return deconvolve(
            blurred, assessment, policy, magnitude=magnitude, detector_magnitude=detector
        )

    done = corrected()
    return {
        "method": done.method,
        "replaced": done.curved,
        "rl_steps": done.rl_iterations,
        "accelerated": done.rl_accelerated,
        "shadow_share": round(done.shadow_share, 4),
        "deconvolve_s": _median_s(corrected, repeat),
    }


def fallback_cap(repeat: int, sizes: tuple[int, ...] = (640, 1024)) -> list[dict[str, Any]]:
    """The Richardson-Lucy fallback where it is dearest (the thirty-second round): collimated
    frames at 0.6 mm/px of each of ``sizes``², 10 px of straight motion, no noise (the law's steps
    reach the cap), deconvolved with the cap as 0.18.0 had it (40 steps) and as a time budget (up
    to 120 on frames smaller than 1024²); one reading each."""
    import dataclasses

    from models.blur import linear_kernel, simulate_motion_blur
    from models.deblur import RL_BUDGET_CANDIDATE, MotionPolicy, assess_motion
    from models.tune_deconvolution import collimate

    fixed = MotionPolicy()  # the node as built: the cap of 40 on every frame
    budget = dataclasses.replace(fixed, rl_fallback_budget_max_iterations=RL_BUDGET_CANDIDATE)
    rows = []
    for size in sizes:
        blurred = simulate_motion_blur(collimate(frame(size, 4)), linear_kernel(10.0, 30.0))
        a = assess_motion(blurred, 0.6, fixed)
        cap, by_budget = (_policy_row(blurred, a, p, repeat) for p in (fixed, budget))
        rows.append(
            {
                "size": size,
                "decision": a.decision,
                "steps_cap_40": cap["rl_steps"],
                "steps_budget": by_budget["rl_steps"],
                "cap_40_s": cap["deconvolve_s"],
                "budget_s": by_budget["deconvolve_s"],
            }
        )
    return rows


def run(
    size: int = 2048,
    repeat: int = 3,
    motion_px: float = 20.0,
    quanta: float | None = 1e4,
    detector_second_folder: Path | None = None,
) -> dict[str, Any]:
    from models.blur import linear_kernel
    from models.tune_deconvolution import collimate

    kernel = linear_kernel(motion_px, 30.0)
    sharp = frame(size)
    scenes = {"open": sharp, "collimated": collimate(sharp)}
    return {
        "size": size,
        "motion_px": motion_px,
        "repeat": repeat,
        "noise_quanta_per_pixel": quanta,
        "scenes": {name: _scene(img, kernel, repeat, quanta) for name, img in scenes.items()},
        "shape_step": shape_step(repeat, quanta),
        "detector_shape_step": detector_shape_step(repeat, quanta, size),
        "fallback_cap": fallback_cap(repeat, (640, 1024) if size >= 1024 else (size,)),
        "detector_fallback": detector_fallback(repeat, size),
        "detector_second": detector_second(repeat, size, detector_second_folder),
        "shadow_fallback": shadow_fallback(repeat, size),
        "clear_windows": clear_windows(repeat, size),
        "quiet_fallback": quiet_fallback(repeat, size),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument(
        "--quanta", type=float, default=1e4, help="Poisson quanta/px after the blur (0: none)"
    )
    ap.add_argument(
        "--detector-second",
        type=Path,
        default=None,
        help="a second native-pixel magnitude folder (models.kernel_shape_detector_second) to time",
    )
    args = ap.parse_args(argv)
    res = run(
        args.size,
        args.repeat,
        quanta=args.quanta or None,
        detector_second_folder=args.detector_second,
    )
    text = json.dumps(res, indent=1)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
