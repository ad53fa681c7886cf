"""STOW-RS to a DICOMweb destination (dicomweb-client), failures classified as transient or permanent.

Transient (retried with backoff): the server could not be reached, timed out, or answered 408,
429 or 5xx. Permanent (failed at once, an administrator acts): 4xx such as 401/403 (credentials),
400/409/415 (the server refuses the object), or a Failed SOP Sequence naming the instance.
dicomweb-client's own retrying is switched off: the durable queue does the retrying.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pydicom
import requests
from dicomweb_client.api import DICOMwebClient

from node.config import DicomwebDestination
from node.dispatch.errors import PermanentFailure, TransientFailure

log = logging.getLogger(__name__)

_TRANSIENT_HTTP = {408, 425, 429}


def _session(dest: DicomwebDestination) -> requests.Session:
    s = requests.Session()
    auth = dest.auth
    if auth.type == "basic":
        assert auth.username is not None and auth.password_env is not None
        s.auth = (auth.username, _secret(auth.password_env, dest))
    elif auth.type == "bearer":
        assert auth.token_env is not None
        s.headers["Authorization"] = f"Bearer {_secret(auth.token_env, dest)}"
    if dest.ca_file is not None:
        s.verify = str(dest.ca_file)
    return s


def _secret(env: str, dest: DicomwebDestination) -> str:
    value = os.environ.get(env)
    if not value:
        raise PermanentFailure(f"{dest.describe()}: environment variable {env} is not set")
    return value


def _client(dest: DicomwebDestination, timeout_s: float) -> DICOMwebClient:
    client = DICOMwebClient(url=dest.url, session=_session(dest), timeout=timeout_s)
    client.set_http_retry_params(retry=False)
    return client


def _classify(dest: DicomwebDestination, e: Exception, what: str) -> Exception:
    where = dest.describe()
    if isinstance(e, requests.HTTPError) and e.response is not None:
        code = e.response.status_code
        if code in _TRANSIENT_HTTP or code >= 500:
            return TransientFailure(f"{where} answered {what} with HTTP {code} (will retry)")
        return PermanentFailure(f"{where} refused {what} with HTTP {code}")
    if isinstance(e, requests.exceptions.SSLError):
        return PermanentFailure(f"{where}: TLS failed ({type(e).__name__})")
    if isinstance(e, requests.Timeout | requests.ConnectionError):
        return TransientFailure(f"{where} could not be reached ({type(e).__name__})")
    if isinstance(e, requests.RequestException):
        return TransientFailure(f"{where}: {type(e).__name__}")
    return e


def send_file(dest: DicomwebDestination, path: Path, timeout_s: float) -> None:
    """Store one Part 10 file with STOW-RS; raise TransientFailure or PermanentFailure."""
    ds = pydicom.dcmread(path)
    uid = str(ds.SOPInstanceUID)
    client = _client(dest, dest.timeout_s or timeout_s)
    try:
        response = client.store_instances([ds], study_instance_uid=str(ds.StudyInstanceUID))
    except Exception as e:
        raise _classify(dest, e, "STOW-RS") from e
    for item in getattr(response, "FailedSOPSequence", []) or []:
        if str(getattr(item, "ReferencedSOPInstanceUID", uid)) == uid:
            reason = getattr(item, "FailureReason", None)
            code = int(reason) if reason is not None else 0
            if (code & 0xFF00) == 0xA700:  # out of resources (PS3.18 Table I.2-3): try later
                raise TransientFailure(f"{dest.describe()} is out of resources (0x{code:04X})")
            raise PermanentFailure(f"{dest.describe()} refused the object (0x{code:04X})")


def ping(dest: DicomwebDestination, timeout_s: float) -> None:
    """A QIDO-RS query for one study UID: checks reachability and credentials."""
    client = _client(dest, dest.timeout_s or timeout_s)
    try:
        client.search_for_studies(limit=1, fields=["StudyInstanceUID"])
    except Exception as e:
        raise _classify(dest, e, "QIDO-RS") from e
