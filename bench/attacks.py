"""The same connection attacks against SharpRay, dcmtk ``storescp`` and Orthanc, side by side.

Each receiver is started fresh for each scenario; the attacker connects from 127.0.0.2, the
modality (``storescu``, 20 images of 256², one association) from 127.0.0.1:

* ``flood``: 50 connections that never send a byte, 50 stalled A-ASSOCIATE-RQs and one 4 GiB PDU
  header held open while the modality sends;
* ``connect_close``: 16 connections that close at once, then the modality at once;
* ``huge_header``: one ``01 00 FF FF FF FF`` held open for 3 s: the receiver's memory before and
  after.

Reported: whether the modality's 20 images were all stored, its wall time (limit 60 s), the
receiver's peak RSS during the scenario. ``python -m bench.attacks [--out FILE]``; also the
``attacks`` section of ``python -m bench``.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import Json
from bench.peers import OrthancReceiver, Receiver, SharpRayReceiver, StoreScp, tools_available
from tests.support.attacks import connect_and_close, flood, rss_mib
from tests.support.synthetic import make_cr


class _PeakRss:
    def __init__(self, pid: int | None) -> None:
        self.pid, self.peak, self._stop = pid, 0.0, threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            if self.pid is not None:
                try:
                    self.peak = max(self.peak, rss_mib(self.pid))
                except (OSError, AssertionError):
                    pass
            self._stop.wait(0.1)

    def __enter__(self) -> _PeakRss:
        self._t.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._t.join()


def _send(r: Receiver, files: list[Path]) -> Json:
    t0 = time.perf_counter()
    try:
        p = subprocess.run(
            ["storescu", "-aet", "XRAY_ROOM_1", "-aec", r.aet, "127.0.0.1", str(r.port)]
            + [str(f) for f in files],
            capture_output=True,
            text=True,
            timeout=60,
        )
        ok = p.returncode == 0
    except subprocess.TimeoutExpired:
        ok = False
    return {"modality_ok": ok, "modality_s": round(time.perf_counter() - t0, 2)}


def _scenario(r: Receiver, name: str, files: list[Path]) -> Json:
    before = r.received()
    with _PeakRss(r.pid()) as peak:
        if name == "flood":
            with flood(r.port):
                out = _send(r, files)
        elif name == "connect_close":
            connect_and_close(r.port, 16)
            out = _send(r, files)
        else:  # huge_header
            pid = r.pid()
            start = rss_mib(pid) if pid else 0.0
            with flood(r.port, half_open=0, stalled=0, huge=1):
                time.sleep(3)  # let the receiver react to the header
                held = rss_mib(pid) if pid else 0.0
            out = {"rss_before_mib": round(start, 1), "rss_holding_mib": round(held, 1)}
            out |= _send(r, files)
    got = r.received() - before
    return out | {"stored": got, "peak_rss_mib": round(peak.peak, 1)}


def run(work: Path, tiny: dict[str, Path], n: int = 20) -> Json:
    have = tools_available()
    files = [work / "set" / f"{i}.dcm" for i in range(n)]
    (work / "set").mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(files):
        make_cr(f, 256, 256, seed=i)
    makers: dict[str, Callable[[Path], Receiver]] = {
        "sharpray": lambda d: SharpRayReceiver(d, tiny)
    }
    if have["storescp"]:
        makers["storescp"] = lambda d: StoreScp(d)
    if have["orthanc"]:
        makers["orthanc"] = lambda d: OrthancReceiver(d)
    out: Json = {"images": n, "attacker": "127.0.0.2", "modality": "127.0.0.1", "results": []}
    for name in ("flood", "connect_close", "huge_header"):
        for peer, make in makers.items():
            r = make(work / f"{peer}-{name}")
            r.start()
            try:
                res = _scenario(r, name, files)
            except Exception as e:  # one peer's failure must not hide the others' figures
                res = {"error": f"{type(e).__name__}: {e}"}
            finally:
                r.stop()
            out["results"].append({"scenario": name, "receiver": peer} | res)
    return out


def main() -> int:
    import argparse
    import tempfile

    from models.make_test_models import make_test_models

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="write the JSON here too")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sharpray-attacks-"))
    report = run(work, make_test_models(work / "tiny"))
    text = json.dumps(report, indent=1)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
