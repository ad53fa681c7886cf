"""What the DICOMweb routes need from the node, built once in node/app.py and passed in."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request, Response
from sqlalchemy.orm import Session, sessionmaker

from node.config import Settings
from node.dicomweb.auth import Guard
from node.ingest import Ingestor
from node.metrics import Metrics
from storage.files import FileStore

PREFIX = "/dicom-web"
DICOM_JSON = "application/dicom+json"
MAX_WARNINGS = 10  # Warning headers per response (clients refuse more than ~100 headers)


def add_warnings(response: Response, texts: list[str]) -> None:
    """PS3.18 8.5.1 ``Warning: 299 <agent> "<text>"`` headers, at most MAX_WARNINGS of them."""
    shown = texts if len(texts) <= MAX_WARNINGS else texts[: MAX_WARNINGS - 1]
    for text in shown:
        response.headers.append("Warning", warning(text))
    if len(shown) < len(texts):
        response.headers.append("Warning", warning(f"and {len(texts) - len(shown)} more"))


def warning(text: str) -> str:
    clean = "".join(ch if 32 <= ord(ch) < 127 else "?" for ch in text)[:500]
    return '299 sharpray "' + clean.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass
class DicomWebContext:
    settings: Settings
    sessions: sessionmaker[Session]
    store: FileStore
    ingestor: Ingestor
    metrics: Metrics
    guard: Guard = field(init=False)

    def __post_init__(self) -> None:
        self.guard = Guard(self.settings)  # raises ConfigError when a named secret is missing

    @property
    def dialect(self) -> str:
        bind = self.sessions.kw.get("bind")
        return str(bind.dialect.name) if bind is not None else "sqlite"

    def service_root(self, request: Request) -> str:
        """The URL of /dicom-web as clients reach it (``dicomweb.base_url`` behind a proxy)."""
        configured = self.settings.dicomweb.base_url
        if configured:
            return configured
        url = request.base_url
        server = request.scope.get("server")
        proxied = any(h.startswith("x-forwarded-") or h == "forwarded" for h in request.headers)
        if url.port is None and server and not proxied:
            # a Host header without the port (dicomweb-client sends one): the port we listen on
            default = 443 if url.scheme == "https" else 80
            if int(server[1]) != default:
                url = url.replace(port=int(server[1]))
        return str(url).rstrip("/") + PREFIX

    def study_url(self, request: Request, study: str) -> str:
        return f"{self.service_root(request)}/studies/{study}"

    def series_url(self, request: Request, study: str, series: str) -> str:
        return f"{self.study_url(request, study)}/series/{series}"

    def instance_url(self, request: Request, study: str, series: str, sop: str) -> str:
        return f"{self.series_url(request, study, series)}/instances/{sop}"
