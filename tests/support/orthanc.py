"""A throwaway Orthanc (Debian packages orthanc + orthanc-dicomweb) as the PACS in tests."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.ports import GaveUp, free_ports, wait_for

ORTHANC_BIN = shutil.which("Orthanc") or "/usr/sbin/Orthanc"
DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"


def orthanc_available() -> bool:
    return Path(ORTHANC_BIN).exists()


@dataclass
class Orthanc:
    folder: Path
    aet: str
    dicom_port: int
    http_port: int
    proc: subprocess.Popen[bytes] | None = None
    # DICOMweb servers Orthanc may query and retrieve from (name -> [url] or {"Url": ...})
    dicomweb_servers: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def config(self, modalities: dict[str, Any] | None = None) -> dict[str, Any]:
        return {
            "Name": f"test-orthanc-{self.dicom_port}",
            "StorageDirectory": str(self.folder / "db"),
            "IndexDirectory": str(self.folder / "db"),
            "StorageCompression": False,
            "Plugins": [DICOMWEB_PLUGIN] if Path(DICOMWEB_PLUGIN).exists() else [],
            "ConcurrentJobs": 2,
            "SaveJobs": False,
            "HttpServerEnabled": True,
            "HttpPort": self.http_port,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "DicomServerEnabled": True,
            "DicomAet": self.aet,
            "DicomPort": self.dicom_port,
            "DicomCheckCalledAet": False,
            "DicomAlwaysAllowEcho": True,
            "DicomAlwaysAllowStore": True,
            "DicomCheckModalityHost": False,
            "MaximumPduLength": 131072,
            "UnknownSopClassAccepted": False,
            "OverwriteInstances": True,
            "DicomModalities": modalities or {},
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "Servers": self.dicomweb_servers},
        }

    def start(self) -> Orthanc:
        (self.folder / "db").mkdir(parents=True, exist_ok=True)
        cfg = self.folder / "orthanc.json"
        cfg.write_text(json.dumps(self.config(), indent=2))
        env = {**os.environ, "TCP_NODELAY": "1"}
        self.proc = subprocess.Popen(
            [ORTHANC_BIN, f"--logfile={self.folder / 'orthanc.log'}", "--no-jobs", str(cfg)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )

        def ready() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise GaveUp(f"Orthanc exited early; see {self.folder / 'orthanc.log'}")
            return httpx.get(f"{self.url}/system", timeout=2).status_code == 200

        wait_for(ready, 30, "Orthanc to answer on HTTP")
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    # -- REST helpers --------------------------------------------------------------------
    def get(self, path: str) -> Any:
        r = httpx.get(f"{self.url}{path}", timeout=30)
        r.raise_for_status()
        return r.json()

    def instances(self) -> list[str]:
        return list(self.get("/instances"))

    def tags(self, orthanc_id: str) -> dict[str, Any]:
        return dict(self.get(f"/instances/{orthanc_id}/simplified-tags"))

    def file(self, orthanc_id: str) -> bytes:
        r = httpx.get(f"{self.url}/instances/{orthanc_id}/file", timeout=60)
        r.raise_for_status()
        return r.content


def start_orthanc(
    folder: Path, aet: str = "ORTHANC", dicomweb_servers: dict[str, Any] | None = None
) -> Orthanc:
    if not orthanc_available():
        pytest.skip("Orthanc is not installed (apt-get install orthanc orthanc-dicomweb)")
    return Orthanc(
        folder, aet, *free_ports(2), dicomweb_servers=dict(dicomweb_servers or {})
    ).start()
