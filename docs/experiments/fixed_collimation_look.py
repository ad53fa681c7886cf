"""Collimation that does not move with the patient: a look (thirty-fifth session).

Every evaluation here collimates the sharp frame and then blurs it, so the collimation edges and
the marker are smeared by the motion like the anatomy. In a patient who moves during the
exposure they are not: the collimator hangs on the tube and a lead marker usually lies on the
detector, so their shadows stay sharp while the anatomy blurs (a blur that varies across the
frame). Whole real frames take the Richardson-Lucy fallback mostly because the Wiener result
rings at those edges. This look asks how the node as built (``sharpray-blind-wiener 0.34.0``,
both networks) does on frames whose collimation is drawn **after** the blur, against the same
frames collimated before it: how many are flagged, which path the correction takes, and the
PSNR gain over the blurred input on the whole frame and on the exposed anatomy alone.

Frames: the detector-like scenes (:func:`detector_scenes.frames`, 1024² at 0.2 mm/px, open)
of the first ``--images`` of the forty-fourth round's MHH look images (seen); straight and curved
motion of 1 / 2 / 4 mm, no noise and Poisson 10⁴ quanta per pixel (the blur and the noise on
the open frame; for ``after`` the collimation then drawn on the noisy blurred frame).

And a prototype of what would not be fooled by such edges: Richardson-Lucy whose data term
leaves the collimation and the marker out (:func:`masked_richardson_lucy`, the node's kernel and
steps, the mask given), the shadows pasted back afterwards.

Run: ``PYTHONPATH=../.. python fixed_collimation_look.py --out runs/fc-0.json --part 0/2`` (and
``1/2``), then ``--summary runs/fc-*.json``.
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

import numpy as np
from consistency_balance import round_images
from detector_scenes import SPACING_MM, frames, parser, part_of
from fitting_cases import read_rows
from look_rows import save
from outside_blur import gain
from skimage.metrics import peak_signal_noise_ratio

from models.blur import NoiseSpec, from_exposure, motion_kernel, simulate_motion_blur, to_exposure
from models.deblur import MotionPolicy, assess_motion, deconvolve
from models.kernel_shape import load_magnitude_model
from models.tune_deconvolution import collimate

WEIGHTS = Path(__file__).resolve().parents[2] / "models" / "weights"
MOTION_MM = (1.0, 2.0, 4.0)
KINDS = ("straight", "curved")
NOISES: dict[str, float | None] = {"none": None, "1e4": 1e4}
ORDERS = ("before", "after")


def exposed(shape: tuple[int, ...]) -> np.ndarray:
    """The pixels :func:`models.tune_deconvolution.collimate` leaves to the anatomy."""
    mask = collimate(np.ones(shape, dtype=np.float32)) == 1.0
    h, w = shape
    mask[int(0.85 * h) : int(0.9 * h), int(0.6 * w) : int(0.7 * w)] = False  # the marker
    return mask


def anatomy_gain(
    sharp: np.ndarray, blurred: np.ndarray, restored: np.ndarray, anatomy: np.ndarray
) -> float:
    """:func:`outside_blur.gain` over the ``anatomy`` pixels only."""
    return float(
        peak_signal_noise_ratio(sharp[anatomy], restored[anatomy], data_range=1.0)
        - peak_signal_noise_ratio(sharp[anatomy], blurred[anatomy], data_range=1.0)
    )


def found_shadows(image01: np.ndarray, window: int = 9, delta: float = 0.02) -> np.ndarray:
    """A first finder of the shadows that need not have moved (the look's prototype): pixels
    whose local mean (``window``² box, to see past the noise) lies within ``delta`` of the
    frame's extremes (the 0.1 and 99.9 percentiles of that mean: unexposed collimation, lead,
    direct exposure), in connected areas of at least 0.2 % of the frame, widened by the window
    so their edges are out too. True: a shadow."""
    from scipy import ndimage as ndi

    m = ndi.uniform_filter(np.asarray(image01, dtype=np.float64), window)
    lo, hi = np.percentile(m, [0.1, 99.9])
    extreme = (m <= lo + delta) | (m >= hi - delta)
    labels, n = ndi.label(extreme)
    if n == 0:
        return np.zeros(extreme.shape, dtype=bool)
    sizes = np.asarray(ndi.sum(extreme, labels, index=np.arange(1, n + 1)))
    keep = np.zeros(n + 1, dtype=bool)
    keep[1:] = sizes >= 0.002 * extreme.size
    out: np.ndarray = ndi.binary_dilation(keep[labels], iterations=window // 2)
    return out


def masked_richardson_lucy(
    exposure: np.ndarray, psf: np.ndarray, mask: np.ndarray, steps: int
) -> np.ndarray:
    """Richardson-Lucy whose data term counts only the ``mask``'s pixels (Bertero & Boccacci's
    boundary-aware form, ``u ← u · Kᵀ(M·b/Ku) / Kᵀ(M)``): the collimation and the marker, whose
    sharp shadows did not move with the patient, are left out of the fit instead of being
    explained by the motion. A prototype for this look (the mask given, not found)."""
    from scipy import fft as sfft

    from models.deconvolve import pad_for_fft, psf_to_otf

    ep, pad = pad_for_fft(exposure, psf)
    mp = np.pad(mask.astype(np.float64), pad, mode="reflect")
    h, w = ep.shape
    k = psf_to_otf(psf, (h, w))

    def conv(a: np.ndarray, otf: np.ndarray) -> np.ndarray:
        return np.asarray(sfft.irfft2(sfft.rfft2(a) * otf, s=(h, w)))

    kc = np.conj(k)
    norm = conv(mp, kc)
    # pixels no counted datum reaches (deep in the collimation) stay at the start
    seen = norm > 0.05
    u = np.full_like(ep, float(ep[mp > 0].mean()))
    floor = max(float(ep[mp > 0].min()), 1e-6) * 0.5
    for _ in range(steps):
        ratio = mp * ep / np.maximum(conv(u, k), floor)
        u = np.where(seen, np.maximum(u * conv(ratio, kc) / np.maximum(norm, 0.05), floor), u)
    out: np.ndarray = u[pad : pad + exposure.shape[0], pad : pad + exposure.shape[1]]
    return out


def run(names: list[str], out: Path) -> None:
    policy = MotionPolicy()
    first = load_magnitude_model(WEIGHTS / "kernel-magnitude")
    detector = load_magnitude_model(WEIGHTS / "kernel-magnitude-detector")
    rows: list[dict[str, Any]] = []
    for name in names:
        seed0 = zlib.crc32(name.encode())
        (_, sharp_open), _ = frames(name, seed0)
        rng = np.random.default_rng(seed0)
        anatomy = exposed(sharp_open.shape)
        for kind in KINDS:
            for mm in MOTION_MM:
                kernel = motion_kernel(kind, mm / SPACING_MM, rng)
                for noise, quanta in NOISES.items():
                    seed = int(rng.integers(2**31))
                    sharp = collimate(sharp_open)
                    for order in ORDERS:
                        noise_rng = np.random.default_rng(seed)
                        if order == "before":
                            blurred = simulate_motion_blur(
                                sharp, kernel, noise_rng, noise=NoiseSpec(quanta)
                            )
                        else:
                            moved = simulate_motion_blur(
                                sharp_open, kernel, noise_rng, noise=NoiseSpec(quanta)
                            )
                            blurred = collimate(moved)
                        a = assess_motion(blurred, SPACING_MM, policy)
                        row: dict[str, Any] = {
                            "image": name,
                            "kind": kind,
                            "mm": mm,
                            "noise": noise,
                            "order": order,
                            "flagged": a.blurred,
                            "estimated_mm": a.estimate.length_px * SPACING_MM,
                            "gain": 0.0,
                            "anatomy_gain": 0.0,
                            "masked_gain": 0.0,
                            "masked_anatomy_gain": 0.0,
                        }
                        if a.blurred:
                            d = deconvolve(
                                blurred, a, policy, magnitude=first, detector_magnitude=detector
                            )
                            row["method"] = d.method
                            row["curved"] = d.curved
                            row["gain"] = gain(sharp, blurred, d.image)
                            row["anatomy_gain"] = anatomy_gain(sharp, blurred, d.image, anatomy)
                            # the prototype: the node's kernel and steps, the collimation and
                            # the marker left out of the fit and pasted back
                            psf = d.shape.kernel if d.shape is not None else a.estimate.kernel()
                            steps = d.rl_iterations or policy.rl_fallback_max_iterations
                            e = to_exposure(blurred.astype(np.float64), policy.log_range)
                            u = masked_richardson_lucy(e, psf, anatomy, steps)
                            grey = np.clip(from_exposure(u, policy.log_range), 0.0, 1.0)
                            masked = np.where(anatomy, grey, blurred).astype(np.float32)
                            row["masked_gain"] = gain(sharp, blurred, masked)
                            row["masked_anatomy_gain"] = anatomy_gain(
                                sharp, blurred, masked, anatomy
                            )
                            # ... and with the shadows found in the blurred frame itself
                            shadows = found_shadows(blurred)
                            u = masked_richardson_lucy(e, psf, ~shadows, steps)
                            grey = np.clip(from_exposure(u, policy.log_range), 0.0, 1.0)
                            masked = np.where(shadows, blurred, grey).astype(np.float32)
                            row["found_anatomy_gain"] = anatomy_gain(
                                sharp, blurred, masked, anatomy
                            )
                            row["found_share"] = float(shadows.mean())
                            row["found_in_anatomy"] = float((shadows & anatomy).mean())
                        rows.append(row)
        save(out, rows, name)


def summary(rows: list[dict[str, Any]]) -> None:
    print(f"{len(rows)} cases, {len({r['image'] for r in rows})} images")
    for noise in NOISES:
        for mm in MOTION_MM:
            cells = []
            for order in ORDERS:
                sel = [
                    r for r in rows if r["noise"] == noise and r["mm"] == mm and r["order"] == order
                ]
                flagged = [r for r in sel if r["flagged"]]
                rl = sum(1 for r in flagged if r.get("method") == "richardson-lucy")
                g = np.mean([r["gain"] for r in sel])
                ga = np.mean([r["anatomy_gain"] for r in sel])
                worst = min(r["anatomy_gain"] for r in sel)
                gm = np.mean([r.get("masked_anatomy_gain", np.nan) for r in sel])
                wm = min(r.get("masked_anatomy_gain", np.nan) for r in sel)
                gf = np.mean([r.get("found_anatomy_gain", 0.0) for r in sel])
                wf = min(r.get("found_anatomy_gain", 0.0) for r in sel)
                cells.append(
                    f"{order}: flagged {len(flagged)}/{len(sel)}, fallback {rl}, "
                    f"gain {g:+.2f}, anatomy {ga:+.2f} (worst {worst:+.2f}), "
                    f"masked RL anatomy {gm:+.2f} (worst {wm:+.2f}), "
                    f"found {gf:+.2f} (worst {wf:+.2f})"
                )
            print(f"  noise {noise:4s} {mm:g} mm | " + " | ".join(cells))


def main() -> None:
    ap = parser()
    ap.add_argument("--images", type=int, default=8)
    args = ap.parse_args()
    if args.summary:
        summary(read_rows(args.summary))
        return
    names = round_images(True)[: args.images]
    run(part_of(names, args.part, args.out), args.out)


if __name__ == "__main__":
    main()
