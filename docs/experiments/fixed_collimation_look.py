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
leaves the collimation and the marker out (:func:`richardson_lucy`'s ``data``, the node's kernel and
steps, the mask given), the shadows pasted back afterwards; and the same with the shadows found
in the frame. Both now live in ``models`` (:func:`models.deconvolve.richardson_lucy` with its
``data`` mask, :func:`models.shadows.find_shadows`; the look and the fifty-third round ran the
masked steps in float64, since the fifty-fourth round they are the node's float32 ones, so a
rerun differs from the recorded figures by that rounding).

``--validation [--look]``: the fifty-third round's validation (docs/models.md), the node as built
against ``MotionPolicy.fallback_leaves_shadows``, Kermany every 200th train image from the 90th
(``--look``: MHH every third unnamed training image from the third); ``--validation --summary``.

Run: ``PYTHONPATH=../.. python fixed_collimation_look.py --out runs/fc-0.json --part 0/2`` (and
``1/2``), then ``--summary runs/fc-*.json``.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from consistency_balance import kermany_frames, round_images
from detector_scenes import SPACING_MM, frames, parser, part_of
from fitting_cases import read_rows
from look_rows import save
from outside_blur import gain
from round_design import kermany_train_every_200th, unnamed_mhh_images
from skimage.metrics import peak_signal_noise_ratio

from models.blur import NoiseSpec, from_exposure, motion_kernel, simulate_motion_blur, to_exposure
from models.deblur import MotionPolicy, assess_motion, deconvolve
from models.deconvolve import richardson_lucy
from models.kernel_shape import load_magnitude_model
from models.shadows import find_shadows as found_shadows
from models.tune_deconvolution import collimate

WEIGHTS = Path(__file__).resolve().parents[2] / "models" / "weights"
#: the node as the look and the fifty-third round had it (0.34.0: the whole frame fitted)
BUILT = replace(MotionPolicy(), fallback_leaves_shadows=False, estimate_avoids_shadows=False)
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


@dataclass(frozen=True)
class Scene:
    """One blurred case: the image, the motion, the noise, whether the shadows were drawn
    before or after the blur, the sharp and blurred frames and the anatomy's pixels."""

    image: str
    kind: str
    mm: float
    noise: str
    order: str
    sharp: np.ndarray
    blurred: np.ndarray
    anatomy: np.ndarray

    def row(self, **more: object) -> dict[str, Any]:
        """The case's keys for a results row, and ``more``."""
        keys = {"image": self.image, "kind": self.kind, "mm": self.mm, "noise": self.noise}
        return {**keys, "order": self.order, **more}


def scene_frames(
    name: str, frames_of: Callable[[str, int], list[tuple[str, np.ndarray]]], seed_key: str
) -> tuple[np.ndarray, np.random.Generator, np.ndarray, np.ndarray]:
    """One image's open frame (``frames_of``, seeded by the image's name and ``seed_key``), the
    generator its cases draw from, the anatomy's pixels and the frame collimated."""
    seed0 = zlib.crc32((seed_key + name).encode())
    (_, sharp_open), _ = frames_of(name, seed0)
    return (
        sharp_open,
        np.random.default_rng(seed0),
        exposed(sharp_open.shape),
        collimate(sharp_open),
    )


def scenes(
    name: str,
    frames_of: Callable[[str, int], list[tuple[str, np.ndarray]]],
    seed_key: str = "",
    spacing_mm: float = SPACING_MM,
) -> Iterator[Scene]:
    """The cases of one image: its open detector-like frame (``frames_of``), collimated, each
    kind and length of motion (at ``spacing_mm``) and noise, the shadows drawn before and after
    the blur (the same kernel and noise draw for both); seeds by the image's name and
    ``seed_key``."""
    sharp_open, rng, anatomy, sharp = scene_frames(name, frames_of, seed_key)
    for kind in KINDS:
        for mm in MOTION_MM:
            kernel = motion_kernel(kind, mm / spacing_mm, rng)
            for noise, quanta in NOISES.items():
                seed = int(rng.integers(2**31))
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
                    yield Scene(name, kind, mm, noise, order, sharp, blurred, anatomy)


def run(names: list[str], out: Path) -> None:
    policy = BUILT
    first = load_magnitude_model(WEIGHTS / "kernel-magnitude")
    detector = load_magnitude_model(WEIGHTS / "kernel-magnitude-detector")
    rows: list[dict[str, Any]] = []
    for name in names:
        for c in scenes(name, frames):
            sharp, blurred, anatomy = c.sharp, c.blurred, c.anatomy
            a = assess_motion(blurred, SPACING_MM, policy)
            row = c.row(
                flagged=a.blurred,
                estimated_mm=a.estimate.length_px * SPACING_MM,
                gain=0.0,
                anatomy_gain=0.0,
                masked_gain=0.0,
                masked_anatomy_gain=0.0,
            )
            if a.blurred:
                d = deconvolve(blurred, a, policy, magnitude=first, detector_magnitude=detector)
                row["method"] = d.method
                row["curved"] = d.curved
                row["gain"] = gain(sharp, blurred, d.image)
                row["anatomy_gain"] = anatomy_gain(sharp, blurred, d.image, anatomy)
                # the prototype: the node's kernel and steps, the collimation and the marker
                # left out of the fit and pasted back
                psf = d.shape.kernel if d.shape is not None else a.estimate.kernel()
                steps = d.rl_iterations or policy.rl_fallback_max_iterations
                e = to_exposure(blurred.astype(np.float64), policy.log_range)
                u = richardson_lucy(e, psf, steps, data=anatomy)
                grey = np.clip(from_exposure(u, policy.log_range), 0.0, 1.0)
                masked = np.where(anatomy, grey, blurred).astype(np.float32)
                row["masked_gain"] = gain(sharp, blurred, masked)
                row["masked_anatomy_gain"] = anatomy_gain(sharp, blurred, masked, anatomy)
                # ... and with the shadows found in the blurred frame itself
                shadows = found_shadows(blurred)
                u = richardson_lucy(e, psf, steps, data=~shadows)
                grey = np.clip(from_exposure(u, policy.log_range), 0.0, 1.0)
                masked = np.where(shadows, blurred, grey).astype(np.float32)
                row["found_anatomy_gain"] = anatomy_gain(sharp, blurred, masked, anatomy)
                row["found_share"] = float(shadows.mean())
                row["found_in_anatomy"] = float((shadows & anatomy).mean())
            rows.append(row)
        save(out, rows, name)


#: the fifty-third round (docs/models.md): the node as built against the fallback that leaves
#: the shadows out of its fit (:attr:`models.deblur.MotionPolicy.fallback_leaves_shadows`)
CANDIDATE = replace(BUILT, fallback_leaves_shadows=True)
SEED_KEY = "shadows-fifty-third"


def validate(
    names: list[str],
    mhh: bool,
    out: Path,
    frames_of: Callable[[str, int], list[tuple[str, np.ndarray]]] | None = None,
    seed_key: str = SEED_KEY,
) -> None:
    """The fifty-third round's validation rows: per case the node's and the candidate's anatomy
    gain (the candidate differs only where the node takes the fallback); the fifty-fourth's with
    its own ``frames_of`` (1024² Kermany scenes) and ``seed_key``."""
    node = BUILT
    first = load_magnitude_model(WEIGHTS / "kernel-magnitude")
    detector = load_magnitude_model(WEIGHTS / "kernel-magnitude-detector")
    rows: list[dict[str, Any]] = []
    frames_of = frames_of or (frames if mhh else kermany_frames)
    for name in names:
        for c in scenes(name, frames_of, seed_key):
            a = assess_motion(c.blurred, SPACING_MM, node)
            row = c.row(set="mhh" if mhh else "kermany", flagged=a.blurred, node=0.0, shadows=0.0)
            if a.blurred:
                built = deconvolve(c.blurred, a, node, magnitude=first, detector_magnitude=detector)
                row["node"] = anatomy_gain(c.sharp, c.blurred, built.image, c.anatomy)
                row["method"] = built.method
                if built.method == "richardson-lucy":
                    d = deconvolve(
                        c.blurred, a, CANDIDATE, magnitude=first, detector_magnitude=detector
                    )
                    row["shadows"] = anatomy_gain(c.sharp, c.blurred, d.image, c.anatomy)
                    row["shadow_share"] = d.shadow_share
                else:
                    row["shadows"] = row["node"]
            rows.append(row)
        save(out, rows, name)


@dataclass(frozen=True)
class Compared:
    """The node's and a candidate's anatomy gains over some cases: means and harmed counts
    (< −0.1 dB), as the rounds' rules read them (no cases: both 0)."""

    node: float
    candidate: float
    node_harmed: int
    candidate_harmed: int

    @property
    def delta(self) -> float:
        return self.candidate - self.node


def compared(sel: list[dict[str, Any]], candidate: str) -> Compared:
    """:class:`Compared` of the rows ``sel``: their ``node`` column against ``candidate``'s."""
    node = np.array([r["node"] for r in sel]) if sel else np.zeros(1)
    cand = np.array([r[candidate] for r in sel]) if sel else np.zeros(1)
    harmed = (int((node < -0.1).sum()), int((cand < -0.1).sum()))
    return Compared(float(node.mean()), float(cand.mean()), *harmed)


def validation_summary(rows: list[dict[str, Any]]) -> None:
    """Per set and shadow order: mean and harmed (< −0.1 dB) of the node and the candidate
    over all cases (0 where not flagged), and the rule's conditions."""
    for name in sorted({r["set"] for r in rows}):
        for order in ORDERS:
            sel = [r for r in rows if r["set"] == name and r["order"] == order]
            c = compared(sel, "shadows")
            hn, hc = c.node_harmed, c.candidate_harmed
            if order == "after":
                met = c.delta >= 1.0 and hc < hn / 2
            else:
                met = c.candidate >= c.node - 0.1 and hc <= hn + 1
            print(
                f"{name} shadows {order} the blur: {len(sel)} cases, node {c.node:+.3f} "
                f"(harmed {hn}), shadows {c.candidate:+.3f} (harmed {hc}), "
                f"Δ {c.delta:+.3f}: met {met}"
            )
            for mm in MOTION_MM:
                d = [r["shadows"] - r["node"] for r in sel if r["mm"] == mm]
                print(f"    {mm:g} mm: Δ {np.mean(d):+.3f}")


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


def picture(out: Path) -> None:
    """docs/images/fixed-collimation.png: one look image (seen), 2 mm of straight motion without
    noise, the collimation drawn after the blur: sharp, blurred, the node as built and with the
    shadows left out of the fallback, each a 2× zoom of the corner where the two bands meet."""
    from PIL import Image, ImageDraw

    name = round_images(True)[0]
    c = next(
        x
        for x in scenes(name, frames)
        if x.kind == "straight" and x.mm == 2.0 and x.noise == "none" and x.order == "after"
    )
    node = BUILT
    first = load_magnitude_model(WEIGHTS / "kernel-magnitude")
    detector = load_magnitude_model(WEIGHTS / "kernel-magnitude-detector")
    a = assess_motion(c.blurred, SPACING_MM, node)
    panels = {"sharp": c.sharp, "blurred": c.blurred}
    for label, policy in (("node 0.34.0", node), ("shadows left out", CANDIDATE)):
        d = deconvolve(c.blurred, a, policy, magnitude=first, detector_magnitude=detector)
        g = anatomy_gain(c.sharp, c.blurred, d.image, c.anatomy)
        panels[f"{label} ({g:+.2f} dB)"] = d.image
    h, w = c.sharp.shape
    y0, x0 = int(0.12 * h) - 40, int(0.15 * w) - 40  # the corner of the two bands
    tiles = []
    for label, img in panels.items():
        crop = np.clip(img[y0 : y0 + 200, x0 : x0 + 200], 0.0, 1.0)
        tile = Image.fromarray((crop * 255).astype(np.uint8)).resize((400, 400), Image.NEAREST)
        canvas = Image.new("L", (400, 424), 255)
        canvas.paste(tile, (0, 24))
        ImageDraw.Draw(canvas).text((6, 6), label, fill=0)
        tiles.append(canvas)
    sheet = Image.new("L", (400 * len(tiles) + 8 * (len(tiles) - 1), 424), 255)
    for i, t in enumerate(tiles):
        sheet.paste(t, (i * 408, 0))
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out, optimize=True)


def main() -> None:
    ap = parser()
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--validation", action="store_true", help="the fifty-third round's")
    ap.add_argument("--look", action="store_true", help="with --validation: the MHH images")
    ap.add_argument("--picture", type=Path, help="write the look's picture there")
    args = ap.parse_args()
    if args.picture:
        picture(args.picture)
        return
    if args.summary and args.validation:
        validation_summary(read_rows(args.summary))
        return
    if args.summary:
        summary(read_rows(args.summary))
        return
    if args.validation:
        images = unnamed_mhh_images()[2::3] if args.look else kermany_train_every_200th(90)
        validate(part_of(images, args.part, args.out), args.look, args.out)
        return
    names = round_images(True)[: args.images]
    run(part_of(names, args.part, args.out), args.out)


if __name__ == "__main__":
    main()
