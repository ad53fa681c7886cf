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
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pydicom
from numpy.typing import NDArray
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from models.blur import NoiseSpec, linear_kernel, simulate_motion_blur, trajectory_kernel

if TYPE_CHECKING:  # the node is imported where it runs, not when models is imported
    from node.pipeline.preprocess import Radiograph

LENGTHS_PX = (12.0, 24.0, 40.0)
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


def run(dicoms: Path, seed: int = 0, max_images: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    files = distinct_dicoms(dicoms)[: max_images or None]
    work = Path(tempfile.mkdtemp(prefix="sharpray-eval-"))
    (work / "in").mkdir()
    sharp_of: dict[str, F64] = {}
    for f in files:
        sharp, source = _units(f)
        for kind in ("straight", "curved"):
            for length in LENGTHS_PX:
                psf = (
                    linear_kernel(length, float(rng.uniform(0, 180)))
                    if kind == "straight"
                    else trajectory_kernel(length, rng)
                )
                for noise in ("noiseless", "poisson1e4"):
                    spec = NoiseSpec(1e4) if noise == "poisson1e4" else None
                    blurred = simulate_motion_blur(sharp.astype(np.float32), psf, rng, noise=spec)
                    name = f"{f.stem}__{kind}__{int(length)}__{noise}"
                    _write(source, blurred, work / "in" / f"{name}.dcm")
                    sharp_of[name] = sharp
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
        dp = peak_signal_noise_ratio(
            reference, corrected, data_range=1.0
        ) - peak_signal_noise_ratio(reference, blurred_u, data_range=1.0)
        ds_ = structural_similarity(reference, corrected, data_range=1.0) - structural_similarity(
            reference, blurred_u, data_range=1.0
        )
        how = str(sc.ds.DerivationDescription).split(": ", 1)[-1]
        rows.append(
            {
                "image": image,
                "kind": kind,
                "length_px": int(length_s),
                "noise": noise,
                "psnr_gain_db": round(float(dp), 2),
                "ssim_gain": round(float(ds_), 4),
                "what_the_node_did": how[:160],
            }
        )
    summary: dict[str, dict[str, float]] = {}
    for key_fn in (
        lambda r: f"{r['kind']}/{r['length_px']}px/{r['noise']}",
        lambda r: f"{r['noise']}/all",
        lambda r: "all",
    ):
        groups: dict[str, list[dict[str, Any]]] = {}
        for r in rows:
            groups.setdefault(key_fn(r), []).append(r)
        for key, v in groups.items():
            summary[key] = {
                "psnr_gain_db": round(float(np.mean([r["psnr_gain_db"] for r in v])), 2),
                "ssim_gain": round(float(np.mean([r["ssim_gain"] for r in v])), 4),
                "corrected": round(
                    float(np.mean(["not corrected" not in r["what_the_node_did"] for r in v])), 2
                ),
                "n": len(v),
            }
    return {
        "images": [f.name for f in files],
        "cases": len(rows),
        "process_seconds": round(seconds, 1),
        "summary": dict(sorted(summary.items())),
        "rows": rows,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dicoms", type=Path, required=True, help="cxr-dicom folder")
    ap.add_argument("--out", type=Path, required=True, help="JSON file for the results")
    ap.add_argument("--max-images", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    result = run(args.dicoms, args.seed, args.max_images)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    for k, v in result["summary"].items():
        print(
            f"{k:36s} {v['psnr_gain_db']:+.2f} dB / {v['ssim_gain']:+.4f} (corrected {v['corrected']:.2f}, n {v['n']})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
