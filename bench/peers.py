"""The receivers and senders a hospital would otherwise use, started fresh for each run.

dcmtk and Orthanc get ``TCP_NODELAY=1`` in their environment (Debian's dcmtk leaves Nagle on
without it, costing ~40 ms per C-STORE round trip); the node sets TCP_NODELAY itself.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx
from pynetdicom import AE

from tests.support.node_proc import NodeProcess, node_config
from tests.support.orthanc import ORTHANC_BIN, Orthanc
from tests.support.ports import GaveUp, free_port, wait_for

NODELAY_ENV = {**os.environ, "TCP_NODELAY": "1"}
PDU = 131072  # dcmtk / Orthanc max PDU, as measured before (shared/peers/results)


class Receiver(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def aet(self) -> str: ...
    @property
    def port(self) -> int: ...

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def received(self) -> int: ...
    def pid(self) -> int | None: ...


def echo(port: int, aet: str) -> bool:
    ae = AE(ae_title="BENCH")
    ae.acse_timeout = ae.network_timeout = 5
    ae.add_requested_context("1.2.840.10008.1.1")
    assoc = ae.associate("127.0.0.1", port, ae_title=aet)
    if not assoc.is_established:
        return False
    try:
        status = assoc.send_c_echo()
        return bool(status) and int(status.Status) == 0
    finally:
        assoc.release()


def cpu_seconds(pid: int | None) -> float:
    """utime + stime of a whole process (all threads), from /proc."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def tools_available() -> dict[str, bool]:
    return {
        "storescp": shutil.which("storescp") is not None,
        "storescu": shutil.which("storescu") is not None,
        "orthanc": Path(ORTHANC_BIN).exists(),
    }


@dataclass
class StoreScp:
    """dcmtk storescp writing every received file to a folder (no fsync before the response)."""

    folder: Path
    name: str = "storescp"
    aet: str = "STORESCP"
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        log = (self.folder.parent / f"{self.folder.name}.log").open("wb")
        cmd = ["storescp", "-aet", self.aet, "-od", str(self.folder), "--max-pdu", str(PDU)]
        self.proc = subprocess.Popen(
            [*cmd, str(self.port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=NODELAY_ENV,
            start_new_session=True,
        )
        log.close()

        def ready() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise GaveUp(f"storescp exited with {self.proc.returncode}")
            return echo(self.port, self.aet)

        wait_for(ready, 30, "storescp to answer C-ECHO")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def received(self) -> int:
        return sum(1 for p in self.folder.iterdir() if p.is_file())

    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None


@dataclass
class OrthancReceiver:
    """A throwaway Orthanc (MaximumPduLength 131072, TCP_NODELAY=1, DICOMweb plugin)."""

    folder: Path
    name: str = "orthanc"
    aet: str = "ORTHANC"
    port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    orthanc: Orthanc | None = None

    def start(self) -> None:
        self.orthanc = Orthanc(self.folder, self.aet, self.port, self.http_port).start()

    def stop(self) -> None:
        if self.orthanc is not None:
            self.orthanc.stop()
        self.orthanc = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def received(self) -> int:
        r = httpx.get(f"{self.url}/statistics", timeout=30)
        r.raise_for_status()
        return int(r.json()["CountInstances"])

    def pid(self) -> int | None:
        if self.orthanc is None or self.orthanc.proc is None:
            return None
        return self.orthanc.proc.pid


@dataclass
class SharpRayReceiver:
    """The node as a real process in the receiver role (durable ingest: fsync before success)."""

    folder: Path
    models: dict[str, Path]
    database_url: str | None = None
    name: str = "sharpray"
    roles: list[str] = field(default_factory=lambda: ["receiver"])
    pacs: tuple[str, int] | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    # True: the shipped pipelines (config defaults), not the tests' reduced "full" (sc, sr)
    shipped_pipelines: bool = False
    node: NodeProcess | None = None

    @property
    def aet(self) -> str:
        return "SHARPRAY"

    @property
    def port(self) -> int:
        assert self.node is not None
        return self.node.dimse_port

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        cfg = node_config(self.folder, self.models, self.pacs, database_url=self.database_url)
        if self.shipped_pipelines:
            cfg.pop("pipelines", None)
        for key, value in self.overrides.items():
            cfg.setdefault(key, {}).update(value)
        self.node = NodeProcess(self.folder, cfg).start(roles=self.roles)

    def stop(self) -> None:
        if self.node is not None:
            self.node.stop()
        self.node = None

    def received(self) -> int:
        assert self.node is not None
        return len(self.node.received_uids())

    def pid(self) -> int | None:
        if self.node is None or self.node.proc is None:
            return None
        return self.node.proc.pid


@dataclass(frozen=True)
class Sent:
    wall_s: float
    returncode: int
    stderr_tail: str


def storescu_cmd(what: Path | list[Path], port: int, aec: str, aet: str = "BENCH") -> list[str]:
    """dcmtk storescu sending a folder (``+sd``) or files over one association."""
    cmd = ["storescu", "-aet", aet, "-aec", aec, "--max-pdu", str(PDU), "127.0.0.1", str(port)]
    return cmd + (["+sd", str(what)] if isinstance(what, Path) else [str(p) for p in what])


def storescu(what: Path | list[Path], port: int, aec: str, timeout: float = 900) -> Sent:
    """Send with dcmtk storescu and wait (timed: process start to exit)."""
    cmd = storescu_cmd(what, port, aec)
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=NODELAY_ENV)
    return Sent(time.perf_counter() - t0, r.returncode, r.stderr[-1500:])
