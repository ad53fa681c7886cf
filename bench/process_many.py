"""``sharpray process`` on many files: one call (models loaded once) against one process per file.

The inputs are the real CR/DX files of ``../shared/data/cxr-dicom`` where present (all 18), else
a generated set. Both ways run the same configuration (the node's defaults: blind Wiener
correction, the bundled classifier, intended-use check) as separate processes, so the figures
include start-up as a user sees it. Reported: wall time per image each way, the ratio, the
summary line's ``models_load_s`` and ``seconds_per_image``, and each input's status.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench.common import Json

REPO = Path(__file__).resolve().parents[1]
CXR_DICOM = REPO.parent / "shared" / "data" / "cxr-dicom"


def _inputs(work: Path, n_fallback: int, px: int, shared: bool) -> tuple[list[Path], str]:
    files = sorted(CXR_DICOM.glob("*.dcm")) if shared and CXR_DICOM.is_dir() else []
    if files:
        return files, f"{CXR_DICOM.name} ({len(files)} real CR/DX files)"
    from bench.data import make_set

    s = make_set(work / "set", "process", n_fallback, px, seed=5)
    return list(s.files), f"generated {n_fallback} × {px}²"


def _sharpray(args: list[str], config: Path | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHARPRAY_")}
    env["PYTHONPATH"] = str(REPO)
    base = [sys.executable, "-m", "node.cli"] + (["--config", str(config)] if config else [])
    return subprocess.run(base + args, env=env, capture_output=True, text=True, timeout=3600)


def run(
    work: Path,
    n_fallback: int = 6,
    px: int = 1024,
    models: dict[str, Path] | None = None,
    shared: bool = True,
) -> Json:
    """``models`` None: the node's defaults; ``shared`` False: a generated set only (smoke)."""
    work.mkdir(parents=True, exist_ok=True)
    config: Path | None = None
    if models is not None:  # smoke: tiny models
        import yaml

        config = work / "config.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "models": {k: str(models[k]) for k in ("deblur", "classify")}
                    | {"providers": "cpu"}
                }
            )
        )
    files, label = _inputs(work, n_fallback, px, shared)
    folder = work / "in"
    folder.mkdir(exist_ok=True)
    for f in files:
        target = folder / f.name
        if not target.exists():
            os.symlink(f.resolve(), target)

    t0 = time.perf_counter()
    one = _sharpray(["process", str(folder), "--out", str(work / "out-one")], config)
    one_s = time.perf_counter() - t0
    lines = [json.loads(x) for x in one.stdout.splitlines() if x.strip()]
    summary = lines[-1]["summary"] if lines and "summary" in lines[-1] else {}

    t0 = time.perf_counter()
    codes = []
    for f in sorted(folder.iterdir()):
        r = _sharpray(["process", str(f), "--out", str(work / "out-each")], config)
        codes.append(r.returncode)
    each_s = time.perf_counter() - t0
    shutil.rmtree(work / "out-one", ignore_errors=True)
    shutil.rmtree(work / "out-each", ignore_errors=True)
    n = len(files)
    return {
        "inputs": label,
        "n": n,
        "one_call_s": round(one_s, 2),
        "one_call_s_per_image": round(one_s / n, 3),
        "process_per_file_s": round(each_s, 2),
        "process_per_file_s_per_image": round(each_s / n, 3),
        "speedup": round(each_s / one_s, 2) if one_s else None,
        "summary": summary,
        "statuses": {
            Path(x["file"]).name: x["status"] + (f" ({x['scope']})" if "scope" in x else "")
            for x in lines[:-1]
        },
        "exit_one_call": one.returncode,
        "exit_codes_per_file": sorted(set(codes)),
    }


def main() -> int:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/sharpray-bench-process"))
    args = ap.parse_args()
    print(json.dumps(run(args.work), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
