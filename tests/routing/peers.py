"""Real peers for the routing tests: an Orthanc that counts every arrival, dcmtk storescp.

The Orthanc runs a Lua ``ReceivedInstanceFilter`` that appends one line per instance it receives
(SOP Instance UID and how it came: "DicomProtocol" for C-STORE, "Plugins" for DICOMweb STOW-RS)
before storing it, so a duplicate delivery is counted even though Orthanc overwrites the instance.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydicom

from tests.support.dcmtk import require
from tests.support.node_proc import REPO
from tests.support.orthanc import Orthanc, orthanc_available
from tests.support.ports import free_port, wait_for

LUA = """
function ReceivedInstanceFilter(dicom, origin, info)
  local f = io.open("{log}", "a")
  f:write(dicom.SOPInstanceUID .. " " .. origin["RequestOrigin"] .. "\\n")
  f:close()
  return true
end
"""


@dataclass
class CountingOrthanc(Orthanc):
    extra: dict[str, Any] = field(default_factory=dict)
    login: str | None = None  # "user:password" for the test's own REST calls, when auth is on

    @property
    def url(self) -> str:
        creds = f"{self.login}@" if self.login else ""
        return f"http://{creds}127.0.0.1:{self.http_port}"

    @property
    def arrivals_file(self) -> Path:
        return self.folder / "arrivals.txt"

    @property
    def web_url(self) -> str:
        """The DICOMweb root as a destination names it (never with credentials)."""
        return f"http://127.0.0.1:{self.http_port}/dicom-web"

    def config(self, modalities: dict[str, Any] | None = None) -> dict[str, Any]:
        lua = self.folder / "count.lua"
        lua.write_text(LUA.format(log=self.arrivals_file))
        cfg = super().config(modalities)
        cfg["LuaScripts"] = [str(lua)]
        cfg.update(self.extra)
        return cfg

    def arrivals(self) -> collections.Counter[tuple[str, str]]:
        """(SOP Instance UID, "DicomProtocol" | "Plugins") -> times received."""
        if not self.arrivals_file.exists():
            return collections.Counter()
        lines = self.arrivals_file.read_text().split("\n")
        return collections.Counter(tuple(ln.split()) for ln in lines if ln.strip())  # type: ignore[misc]


def start_counting_orthanc(folder: Path, login: str | None = None, **extra: Any) -> CountingOrthanc:
    if not orthanc_available():
        import pytest

        pytest.skip("Orthanc is not installed (apt-get install orthanc orthanc-dicomweb)")
    folder.mkdir(parents=True, exist_ok=True)
    o = CountingOrthanc(folder, "ORTHANC", free_port(), free_port(), extra=dict(extra), login=login)
    return o.start()  # type: ignore[return-value]


@dataclass
class StoreScp:
    """dcmtk storescp writing every received object to its own file (+uf: duplicates visible)."""

    folder: Path
    aet: str = "STORESCP"
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> StoreScp:
        require("storescp")
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        env = {**os.environ, "TCP_NODELAY": "1"}
        self.proc = subprocess.Popen(
            self.command(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
        wait_for(self._listening, 20, f"storescp {self.aet} to listen")
        return self

    def command(self) -> list[str]:
        return ["storescp", "-aet", self.aet, "-od", str(self.folder), "+uf", "+xa", str(self.port)]

    def _listening(self) -> bool:
        import socket

        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError("storescp exited")
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def files(self) -> dict[Path, pydicom.Dataset]:
        out: dict[Path, pydicom.Dataset] = {}
        for f in sorted(self.folder.iterdir()):
            if f.is_file():
                try:
                    out[f] = pydicom.dcmread(f, stop_before_pixels=True)
                except Exception:  # a file still being written
                    continue
        return out

    def received(self) -> list[pydicom.Dataset]:
        return list(self.files().values())

    def uids(self) -> collections.Counter[str]:
        return collections.Counter(str(d.SOPInstanceUID) for d in self.received())


def sharpray(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The administrator's command line, as a real process against the node's config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHARPRAY_")}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run(
        [sys.executable, "-m", "node.cli", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=config.parent,
    )
