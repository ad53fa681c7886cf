"""DICOMweb tests: the node in this process (receiver role: DIMSE SCP + HTTP, real uvicorn on a
free port, real database and store) or as a real process; dicomweb-client, httpx and Orthanc as
the peers."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pydicom
import pytest
from dicomweb_client import DICOMwebClient
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from node.app import Node
from node.config import Settings
from tests.support.node_proc import node_config
from tests.support.paths import TEST_DATA, shared_dicom_files
from tests.support.ports import wait_for
from tests.support.synthetic import make_cr

NO_MODELS = {"deblur": Path("/nonexistent/deblur"), "classify": Path("/nonexistent/classify")}


@dataclass
class RunningNode:
    node: Node
    folder: Path
    settings: Settings

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.settings.node.http_port}"

    @property
    def dicomweb(self) -> str:
        return self.url + "/dicom-web"

    def client(self, **kw: Any) -> DICOMwebClient:
        return DICOMwebClient(url=self.dicomweb, **kw)


def receiver_config(
    folder: Path, database_url: str | None = None, **overrides: Any
) -> dict[str, Any]:
    """A receiver-only node: no models, no workers, no destinations."""
    cfg = node_config(folder, NO_MODELS, None, database_url, **overrides)
    cfg["workers"].update({"count": 0, "dispatchers": 0})
    return cfg


def start_in_process(
    folder: Path, cfg: dict[str, Any], roles: tuple[str, ...] = ("receiver",)
) -> RunningNode:
    settings = Settings.model_validate(cfg)
    node = Node(settings, roles=roles)
    node.start()
    running = RunningNode(node, folder, settings)
    wait_for(
        lambda: httpx.get(running.url + "/healthz", timeout=2).status_code == 200,
        30,
        "the node's HTTP server",
    )
    return running


@pytest.fixture
def make_node(tmp_path: Path) -> Iterator[Callable[..., RunningNode]]:
    started: list[RunningNode] = []

    def make(database_url: str | None = None, **overrides: Any) -> RunningNode:
        folder = tmp_path / f"node{len(started)}"
        folder.mkdir()
        running = start_in_process(folder, receiver_config(folder, database_url, **overrides))
        started.append(running)
        return running

    yield make
    for r in started:
        r.node.stop(timeout=10)


@pytest.fixture
def node(make_node: Callable[..., RunningNode]) -> RunningNode:
    return make_node()


def real_files() -> list[Path]:
    """The shared real radiographs, or the two in tests/data when ../shared is absent."""
    return shared_dicom_files() or sorted(TEST_DATA.glob("*.dcm"))


def encode(ds: Dataset) -> bytes:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def synthetic(
    folder: Path,
    n: int = 1,
    *,
    rows: int = 64,
    cols: int = 64,
    study_uid: str | None = None,
    series_uid: str | None = None,
    **attributes: Any,
) -> list[bytes]:
    """``n`` small synthetic CR files (one series unless told), with ``attributes`` set."""
    study_uid = study_uid or generate_uid()
    series_uid = series_uid or generate_uid()
    out = []
    for i in range(n):
        path = folder / f"syn-{generate_uid()}.dcm"
        ds = make_cr(path, rows, cols, seed=i, study_uid=study_uid, series_uid=series_uid)
        ds.InstanceNumber = i + 1
        for k, v in attributes.items():
            setattr(ds, k, v)
        out.append(encode(ds))
        path.unlink()
    return out


def multipart(parts: list[tuple[str, bytes]], boundary: str = "sharpray-test-boundary") -> bytes:
    body = b""
    for ctype, data in parts:
        body += f"--{boundary}\r\nContent-Type: {ctype}\r\n\r\n".encode() + data + b"\r\n"
    return body + f"--{boundary}--\r\n".encode()


def stow(
    url: str,
    parts: list[tuple[str, bytes]] | list[bytes],
    *,
    study: str | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """POST a STOW-RS request built by hand (for what dicomweb-client will not send)."""
    items = [("application/dicom", p) if isinstance(p, bytes) else p for p in parts]
    target = f"{url}/dicom-web/studies" + (f"/{study}" if study else "")
    h = {
        "Content-Type": 'multipart/related; type="application/dicom"; boundary=sharpray-test-boundary'
    }
    h.update(headers or {})
    return httpx.post(target, content=multipart(items), headers=h, timeout=120)


def uids(datasets: list[dict[str, Any]], tag: str) -> set[str]:
    return {str(d[tag]["Value"][0]) for d in datasets if "Value" in d.get(tag, {})}


def header(data: bytes) -> Dataset:
    return pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
