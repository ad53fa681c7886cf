"""Blur gate: time from the last C-STORE byte to the image-quality notice stored at the destination.

A real node process (receiver, one worker, one dispatcher, the shipped demo models on the CPU) with
``blur_gate.notify_to`` naming a real Orthanc (the X-ray room's QA destination), which also takes
the corrected SC and the report. The modality (dcmtk storescu) sends one 2048² radiograph at a time
(a real chest radiograph of the MHH test split, upscaled, 16 bit), alternately sharp and with 10 px
motion blur; the next is sent when everything of the previous one is delivered.

Latency, from the node's own index (one clock): the instance's durable ingest (written just after
its last byte arrived, before the C-STORE response) to the notice's dispatch job done (the moment
Orthanc acknowledged storing it). Also reported: the same for the report SR, so the head start of
the notice over the full result shows.

Run: ``python -m bench.blur_notice [--n 6] [--out bench/out/blur_notice.json]``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from bench.common import Json, machine, median
from bench.data import sop_uid
from bench.e2e import _wait_delivered, deliveries
from bench.peers import OrthancReceiver, SharpRayReceiver, storescu
from models.blur import linear_kernel, simulate_motion_blur
from models.deblur_data import load_gray, split_by_patient
from tests.support.paths import SHARED_DATA
from tests.support.synthetic import make_cr

REPO = Path(__file__).resolve().parents[1]
PX = 2048


def _radiographs(folder: Path, n: int) -> list[tuple[Path, str]]:
    mhh = SHARED_DATA / "cxr-radiographs-mhh"
    paths = split_by_patient(mhh).test
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        img = load_gray(mhh / paths[i % len(paths)])
        big = np.asarray(Image.fromarray(img).resize((PX, PX), Image.Resampling.BICUBIC))
        a = big.astype(np.float32) / 255.0
        kind = "sharp" if i % 2 == 0 else "blurred"
        if kind == "blurred":
            a = simulate_motion_blur(a, linear_kernel(10.0, 30.0))
        path = folder / f"img{i:02d}.dcm"
        ds = make_cr(path, PX, PX, bits=16)
        ds.PixelData = np.rint(np.clip(a, 0, 1) * 65535).astype(np.uint16).tobytes()
        ds.save_as(path, enforce_file_format=True)
        out.append((path, kind))
    return out


def run(n: int, work: Path) -> Json:
    qa = OrthancReceiver(work / "qa", aet="QA")
    qa.start()
    models = {
        "deblur": REPO / "models" / "weights" / "deblur-demo",
        "classify": REPO / "models" / "weights" / "classify-demo",
    }
    node = SharpRayReceiver(
        work / "node",
        models,
        roles=["receiver", "worker", "dispatcher"],
        pacs=(qa.aet, qa.port),
        overrides={
            "workers": {"poll_s": 0.1},
            "pipelines": {"gated": {"results": ["sc", "sr"], "correct": "when_blurred"}},
            "routing": {
                "rules": [],
                "fallback": {"name": "fallback", "process": "gated", "send_results_to": ["pacs"]},
            },
            "blur_gate": {"notify_to": ["pacs"]},
        },
    )
    try:
        node.start()
        assert node.node is not None
        url = node.node.database_url
        rows: list[Json] = []
        for path, kind in _radiographs(work / "data", n):
            sent = storescu([path], node.port, node.aet)
            if sent.returncode != 0:
                raise RuntimeError(f"storescu failed: {sent.stderr_tail}")
            uid = sop_uid(path)
            kinds = ("notice", "sr") + (("sc",) if kind == "blurred" else ())
            _wait_delivered(url, {uid}, kinds, timeout=1800)
            d = deliveries(url)[uid]
            rows.append(
                {
                    "image": kind,
                    "notice_s": d["results"]["notice"] - d["received"],
                    "report_s": d["results"]["sr"] - d["received"],
                }
            )
        notice = [float(r["notice_s"]) for r in rows]
        return {
            "px": PX,
            "models": "demo (CPU)",
            "runs": rows,
            "notice_median_s": median(notice),
            "notice_max_s": max(notice),
            "report_median_s": median([float(r["report_s"]) for r in rows]),
            "machine": machine(),
        }
    finally:
        node.stop()
        qa.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=6)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        report = run(args.n, Path(tmp))
    text = json.dumps(report, indent=2)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
