"""The motion correction as an outside evaluator measures it: whole real CR/DX frames, blurred,
written as DICOM, sent through ``sharpray process``, and the returned SC compared with the sharp
original (PSNR/SSIM in the stored values' own scale).

Unlike :mod:`models.evaluate` (centred crops, model functions called directly), this goes through
everything the node does to a file: decoding, the mapping of stored values to grey values, the blur
gate on the whole frame (collimation, markers and borders included), the correction and the SC
written back. Motion lengths in pixels as the issue's independent check gives them (12, 24, 40 px
at detector scale), straight and curved, **noiseless** and with Poisson noise (10⁴ quanta/px)::

    python -m models.evaluate_node_correction --dicoms ../shared/data/cxr-dicom \\
        --out runs/eval/node-correction.json

Only the distinct images of ``cxr-dicom`` of at least 512² (one per source radiograph, the first
file of each size). Blur in linear exposure as :mod:`models.blur` models it, on the image's grey
values mapped by its declared bit range; quantised back to the file's bits.

``--radiographs``: the issue's other case, downscaled chest radiographs (``cxr-radiographs-mhh``,
640 px, ≈0.6 mm/px; only the **test** patients of :func:`models.deblur_data.split_by_patient`),
blurred by 3, 6 and 10 px, wrapped as 8-bit CR twice: with Imager Pixel Spacing 0.6 mm and with
no pixel spacing at all (as a converted PNG arrives), so the node has to assume one::

    python -m models.evaluate_node_correction --radiographs ../shared/data/cxr-radiographs-mhh \
        --out runs/eval/node-correction-640.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pydicom
from numpy.typing import NDArray
from pydicom.uid import ComputedRadiographyImageStorage, ExplicitVRLittleEndian, generate_uid
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from models.blur import NoiseSpec, motion_kernel, simulate_motion_blur

if TYPE_CHECKING:  # the node is imported where it runs, not when models is imported
    from node.pipeline.preprocess import Radiograph

LENGTHS_PX = (12.0, 24.0, 40.0)
LENGTHS_PX_640 = (3.0, 6.0, 10.0)
SPACING_640_MM = 0.6
F64 = NDArray[np.float64]


def _units(path: Path) -> tuple[F64, Radiograph]:
    from node.pipeline.preprocess import decode, read_dataset, to_unit_stored_range

    r = decode(read_dataset(path))
    return to_unit_stored_range(r).astype(np.float64), r


def _write(r: Radiograph, unit: NDArray[np.floating], path: Path) -> None:
    """``unit`` (bright = dense) into a copy of ``r``'s dataset as uncompressed stored values."""
    from node.pipeline.preprocess import from_unit_stored_range

    out = r.ds.copy()
    values = from_unit_stored_range(r, np.asarray(unit, dtype=np.float32))
    out.PixelData = values.tobytes()
    out.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    out.SOPInstanceUID = out.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    out.save_as(path, enforce_file_format=True)


def wrap_as_cr(unit: NDArray[np.floating], path: Path, spacing_mm: float | None) -> None:
    """An 8-bit MONOCHROME2 CR of ``unit`` ([0, 1], bright = dense), anonymous, frontal chest;
    Imager Pixel Spacing ``spacing_mm`` or none."""
    from pydicom.dataset import Dataset, FileMetaDataset

    pixels = np.rint(np.clip(unit, 0.0, 1.0) * 255).astype(np.uint8)
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = ComputedRadiographyImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "EVAL^CASE", "EVAL", "", "O"
    ds.StudyDate = ds.ContentDate = "20260101"
    ds.StudyTime = ds.ContentTime = "120000"
    ds.AccessionNumber = ds.ReferringPhysicianName = ""
    ds.StudyID, ds.SeriesNumber, ds.InstanceNumber = "1", 1, 1
    ds.Modality, ds.BodyPartExamined, ds.ViewPosition = "CR", "CHEST", "AP"
    ds.PatientOrientation = ["R", "F"]
    if spacing_mm is not None:
        ds.ImagerPixelSpacing = [spacing_mm, spacing_mm]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows, ds.Columns = pixels.shape
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit, ds.PixelRepresentation = 7, 0
    ds.PixelData = pixels.tobytes()
    ds.save_as(path, enforce_file_format=True)


def held_out_radiographs(folder: Path, max_images: int = 0, patients: str = "test") -> list[Path]:
    """The ``patients``' images of ``cxr-radiographs-mhh``: ``test``, the test patients (split by
    patient, seed 0, 20 %); ``validation``, the validation images of :mod:`models.tune_balance`
    (training patients that no fitting image comes from), for looks that may inform a change."""
    from models.deblur_data import split_by_patient

    if patients == "validation":
        from models.tune_balance import image_lists

        paths = image_lists(folder)[1]
    elif patients == "test":
        paths = sorted(split_by_patient(folder, 0.2, 0).test)
    else:
        raise ValueError(f"patients must be 'test' or 'validation', not {patients!r}")
    return [folder / p for p in paths][: max_images or None]


def distinct_dicoms(folder: Path) -> list[Path]:
    from node.pipeline.preprocess import decode, read_dataset

    seen: set[tuple[int, int]] = set()
    out = []
    for f in sorted(folder.glob("*.dcm")):
        shape = decode(read_dataset(f)).stored.shape
        if min(shape) >= 512 and shape not in seen:
            seen.add(shape)
            out.append(f)
    return out


@dataclass(frozen=True)
class Source:
    """One sharp image to blur, and how to write a blurred copy of it as DICOM."""

    name: str
    sharp: F64  # [0, 1], bright = dense, as the node maps the file's stored values
    write: Callable[[NDArray[np.floating], Path], None]
    lengths_px: tuple[float, ...]
    header: str = "as sent"  # what the header says of the pixel spacing (a summary group)


def dicom_sources(dicoms: Path, max_images: int = 0) -> list[Source]:
    out = []
    for f in distinct_dicoms(dicoms)[: max_images or None]:
        sharp, source = _units(f)
        out.append(Source(f.stem, sharp, partial(_write, source), LENGTHS_PX))
    return out


def radiograph_sources(folder: Path, max_images: int = 0, patients: str = "test") -> list[Source]:
    """Each held-out 640 px radiograph twice: with Imager Pixel Spacing 0.6 mm and without."""
    from models.deblur_data import load_gray

    out = []
    for f in held_out_radiographs(folder, max_images, patients):
        sharp = load_gray(f).astype(np.float64) / 255.0
        for spacing, tag in ((SPACING_640_MM, "spacing0.6"), (None, "nospacing")):
            write = partial(wrap_as_cr, spacing_mm=spacing)
            out.append(Source(f"{f.stem}-{tag}", sharp, write, LENGTHS_PX_640, tag))
    return out


@dataclass(frozen=True)
class BlurModel:
    """How the cases are blurred: the motion kinds (:func:`models.blur.motion_kernel`), the
    exposure range the blur acts in (``None``: the grey values themselves) and the noise of the
    noisy cases: Poisson quanta in exposure (``grey_noise`` 0) or, as an evaluator with a model of
    its own might add it, Gaussian noise of that standard deviation in the grey values."""

    kinds: tuple[str, ...] = ("straight", "curved")
    log_range: float | None = 3.0
    grey_noise: float = 0.0

    def noises(self) -> tuple[str, str]:
        return ("noiseless", f"grey{self.grey_noise:g}" if self.grey_noise else "poisson1e4")

    def blur(
        self, sharp: NDArray[np.floating], psf: F64, noise: str, rng: np.random.Generator
    ) -> NDArray[np.float32]:
        poisson = noise == "poisson1e4"
        out = simulate_motion_blur(
            sharp.astype(np.float32),
            psf,
            rng,
            log_range=self.log_range,
            noise=NoiseSpec(1e4) if poisson else None,
        )
        if noise != "noiseless" and not poisson:
            out = np.clip(out + rng.normal(0.0, self.grey_noise, out.shape), 0.0, 1.0)
        return out.astype(np.float32)


def run(
    sources: list[Source],
    seed: int = 0,
    blur_log_range: float | None = 3.0,
    model: BlurModel | None = None,
    oracles: bool = False,
) -> dict[str, Any]:
    """Blur every source as ``model`` says, send the lot through ``sharpray process`` and compare
    the returned SCs with the sharp images; ``oracles``: also the true-kernel Wiener and
    Richardson–Lucy on the same decoded blurred frames (``models.evaluate``'s), for how much
    there was to gain."""
    model = model or BlurModel(log_range=blur_log_range)
    rng = np.random.default_rng(seed)
    work = Path(tempfile.mkdtemp(prefix="sharpray-eval-"))
    (work / "in").mkdir()
    sharp_of: dict[str, F64] = {}
    header_of: dict[str, str] = {}
    psf_of: dict[str, F64] = {}
    for src_ in sources:
        for kind in model.kinds:
            for length in src_.lengths_px:
                psf = motion_kernel(kind, length, rng)
                for noise in model.noises():
                    blurred = model.blur(src_.sharp, psf, noise, rng)
                    name = f"{src_.name}__{kind}__{int(length)}__{noise}"
                    src_.write(blurred, work / "in" / f"{name}.dcm")
                    sharp_of[name] = src_.sharp
                    psf_of[name] = psf
                    header_of[name] = src_.header
    t0 = time.time()
    proc = subprocess.run(
        [sys.executable, "-m", "node.cli", "process", "--out", str(work / "out"), str(work / "in")],
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.time() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"sharpray process failed: {proc.stderr[-2000:]}")
    by_source: dict[str, Path] = {}
    for p in (work / "out").rglob("*.dcm"):
        d = pydicom.dcmread(p, stop_before_pixels=True)
        if str(d.get("SeriesDescription", "")).startswith("Motion-corrected"):
            by_source[str(d.SourceImageSequence[0].ReferencedSOPInstanceUID)] = p
    rows = []
    for src in sorted((work / "in").glob("*.dcm")):
        image, kind, length_s, noise = src.stem.split("__")
        blurred_u, sent = _units(src)
        corrected, sc = _units(by_source[str(sent.ds.SOPInstanceUID)])
        reference = sharp_of[src.stem]
        against_blurred = peak_signal_noise_ratio(reference, blurred_u, data_range=1.0)
        dp = peak_signal_noise_ratio(reference, corrected, data_range=1.0) - against_blurred
        ds_ = structural_similarity(reference, corrected, data_range=1.0) - structural_similarity(
            reference, blurred_u, data_range=1.0
        )
        how = str(sc.ds.DerivationDescription).split(": ", 1)[-1]
        extra: dict[str, float] = {}
        if oracles:
            from models.evaluate import rl_oracle, wiener_oracle

            b32 = blurred_u.astype(np.float32)
            for key, fn in (("wiener_oracle_db", wiener_oracle), ("rl_oracle_db", rl_oracle)):
                restored = fn(b32, psf_of[src.stem]).astype(np.float64)
                extra[key] = round(
                    float(peak_signal_noise_ratio(reference, restored, data_range=1.0))
                    - against_blurred,
                    2,
                )
        rows.append(
            {
                **extra,
                "image": image,
                "header": header_of[src.stem],
                "kind": kind,
                "length_px": int(length_s),
                "noise": noise,
                "psnr_gain_db": round(float(dp), 2),
                "ssim_gain": round(float(ds_), 4),
                "what_the_node_did": how[:160],
            }
        )
    summary: dict[str, dict[str, float]] = {}
    several = len(set(header_of.values())) > 1
    for key_fn in (
        lambda r: f"{r['kind']}/{r['length_px']}px/{r['noise']}",
        lambda r: f"{r['noise']}/all",
        lambda r: "all",
    ):
        groups: dict[str, list[dict[str, Any]]] = {}
        for r in rows:
            groups.setdefault(key_fn(r), []).append(r)
            if several:
                groups.setdefault(f"{r['header']}/{key_fn(r)}", []).append(r)
        for group, v in groups.items():
            summary[group] = {
                "psnr_gain_db": round(float(np.mean([r["psnr_gain_db"] for r in v])), 2),
                "ssim_gain": round(float(np.mean([r["ssim_gain"] for r in v])), 4),
                "corrected": round(
                    float(np.mean(["not corrected" not in r["what_the_node_did"] for r in v])), 2
                ),
                "n": len(v),
            }
            for key in ("wiener_oracle_db", "rl_oracle_db"):
                if oracles:
                    summary[group][key] = round(float(np.mean([r[key] for r in v])), 2)
    shutil.rmtree(work, ignore_errors=True)
    return {
        "images": [s.name for s in sources],
        "blur_log_range": model.log_range,
        "kinds": list(model.kinds),
        "grey_noise": model.grey_noise,
        "cases": len(rows),
        "process_seconds": round(seconds, 1),
        "summary": dict(sorted(summary.items())),
        "rows": rows,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    what = ap.add_mutually_exclusive_group(required=True)
    what.add_argument("--dicoms", type=Path, help="cxr-dicom folder: whole detector frames")
    what.add_argument(
        "--radiographs",
        type=Path,
        help="cxr-radiographs-mhh folder: its held-out 640 px images, with and without spacing",
    )
    ap.add_argument("--out", type=Path, required=True, help="JSON file for the results")
    ap.add_argument("--max-images", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--blur-log-range",
        default="3",
        help="exposure range of the simulated blur (models.blur; the node assumes 3); 'none': "
        "blur the grey values themselves, as an evaluator with another blur model might",
    )
    ap.add_argument(
        "--kinds",
        nargs="+",
        default=["straight", "curved"],
        choices=["straight", "curved", "shake"],
        help="motion kinds (shake: models.blur.shake_kernel, an outside evaluator's kind of path)",
    )
    ap.add_argument(
        "--grey-noise",
        type=float,
        default=0.0,
        help="the noisy cases get Gaussian noise of this standard deviation in the grey values "
        "(0–1 scale) instead of Poisson 10⁴ quanta in exposure",
    )
    ap.add_argument(
        "--oracles",
        action="store_true",
        help="also the true-kernel Wiener and Richardson–Lucy gains on the same blurred frames",
    )
    ap.add_argument(
        "--patients",
        choices=["test", "validation"],
        default="test",
        help="with --radiographs: the test patients, or models.tune_balance's validation images",
    )
    args = ap.parse_args(argv)
    if not 0.0 <= args.grey_noise < 0.5:
        ap.error("--grey-noise must be in [0, 0.5)")
    try:
        blur_log_range = (
            None if args.blur_log_range.lower() == "none" else float(args.blur_log_range)
        )
    except ValueError:
        ap.error(f"--blur-log-range wants a number or 'none', got {args.blur_log_range!r}")
    if blur_log_range is not None and not blur_log_range > 0:
        ap.error("--blur-log-range must be positive")
    sources = (
        dicom_sources(args.dicoms, args.max_images)
        if args.dicoms is not None
        else radiograph_sources(args.radiographs, args.max_images, args.patients)
    )
    model = BlurModel(tuple(args.kinds), blur_log_range, args.grey_noise)
    result = run(sources, args.seed, model=model, oracles=args.oracles)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    for k, v in result["summary"].items():
        said = (
            f" oracles Wiener {v['wiener_oracle_db']:+.2f} RL {v['rl_oracle_db']:+.2f}"
            if args.oracles
            else ""
        )
        print(
            f"{k:36s} {v['psnr_gain_db']:+.2f} dB / {v['ssim_gain']:+.4f} (corrected "
            f"{v['corrected']:.2f}, n {v['n']})" + said
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
