"""Each destination type against a real peer, and how its failures are classified.

STOW-RS against Orthanc's DICOMweb plugin (with HTTP Basic auth), C-STORE over TLS against dcmtk
storescp with a certificate made for the test, and the error classes an administrator sees.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from node.config import DicomwebAuth, DicomwebDestination, DimseDestination, TlsSettings
from node.dispatch import dimse, stow
from node.dispatch.errors import PermanentFailure, TransientFailure
from tests.routing.peers import CountingOrthanc, StoreScp, start_counting_orthanc
from tests.support.ports import free_port
from tests.support.synthetic import make_cr

STOW = "Plugins"


@pytest.fixture
def image(tmp_path: Path) -> tuple[Path, str]:
    ds = make_cr(tmp_path / "img.dcm", 64, 64)
    return tmp_path / "img.dcm", str(ds.SOPInstanceUID)


@pytest.fixture
def locked_orthanc(tmp_path: Path) -> Iterator[CountingOrthanc]:
    o = start_counting_orthanc(
        tmp_path / "orthanc",
        login="sharpray:s3cret",
        AuthenticationEnabled=True,
        RegisteredUsers={"sharpray": "s3cret"},
    )
    try:
        yield o
    finally:
        o.stop()


def test_stow_rs_with_basic_auth_from_the_environment(
    locked_orthanc: CountingOrthanc,
    image: tuple[Path, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path, uid = image
    auth = DicomwebAuth(type="basic", username="sharpray", password_env="TEST_STOW_PASSWORD")
    dest = DicomwebDestination(type="dicomweb", url=locked_orthanc.web_url, auth=auth)
    # the secret's variable is not set: permanent, says which variable, no request made
    monkeypatch.delenv("TEST_STOW_PASSWORD", raising=False)
    with pytest.raises(PermanentFailure, match="TEST_STOW_PASSWORD is not set"):
        stow.send_file(dest, path, 10)
    # wrong password: HTTP 401, permanent
    monkeypatch.setenv("TEST_STOW_PASSWORD", "wrong")
    with pytest.raises(PermanentFailure, match="HTTP 401"):
        stow.send_file(dest, path, 10)
    with pytest.raises(PermanentFailure, match="HTTP 401"):
        stow.ping(dest, 10)
    assert locked_orthanc.arrivals() == {}
    # right password: stored once
    monkeypatch.setenv("TEST_STOW_PASSWORD", "s3cret")
    stow.ping(dest, 10)
    stow.send_file(dest, path, 10)
    assert locked_orthanc.arrivals() == {(uid, STOW): 1}
    # a URL that is not a DICOMweb service: permanent (HTTP 404)
    wrong = dest.model_copy(update={"url": locked_orthanc.web_url + "/no-such-root"})
    with pytest.raises(PermanentFailure, match="HTTP 404"):
        stow.send_file(wrong, path, 10)


def test_unreachable_destinations_are_transient(image: tuple[Path, str]) -> None:
    path, _ = image
    port = free_port()  # nobody listens there
    web = DicomwebDestination(type="dicomweb", url=f"http://127.0.0.1:{port}/dicom-web")
    with pytest.raises(TransientFailure, match="could not be reached"):
        stow.send_file(web, path, 5)
    with pytest.raises(TransientFailure):
        stow.ping(web, 5)
    d = DimseDestination(ae_title="NOBODY", host="127.0.0.1", port=port)
    with pytest.raises(TransientFailure, match="could not be reached"):
        dimse.send_file(d, path, "SHARPRAY", 5, 0)
    with pytest.raises(TransientFailure):
        dimse.echo(d, "SHARPRAY", 5)


def _certificate(folder: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return key, cert


class TlsStoreScp(StoreScp):
    key: Path
    cert: Path

    def command(self) -> list[str]:
        return [
            "storescp", "-aet", self.aet, "-od", str(self.folder), "+uf", "+xa",
            "+tls", str(self.key), str(self.cert), "-ic", str(self.port),
        ]  # fmt: skip


def test_dicom_tls_destination(tmp_path: Path, image: tuple[Path, str]) -> None:
    path, uid = image
    key, cert = _certificate(tmp_path)
    scp = TlsStoreScp(tmp_path / "tls-scp", aet="TLSSCP")
    scp.key, scp.cert = key, cert
    scp.start()
    try:
        tls = TlsSettings(enabled=True, ca_file=cert)
        dest = DimseDestination(ae_title="TLSSCP", host="127.0.0.1", port=scp.port, tls=tls)
        dimse.echo(dest, "SHARPRAY", 10)
        dimse.send_file(dest, path, "SHARPRAY", 10, 0)
        assert scp.uids() == {uid: 1}
        # the same peer without TLS on our side: the TLS server drops us (transient: the peer
        # may come back; the job ends failed after max_attempts)
        plain = dest.model_copy(update={"tls": TlsSettings()})
        with pytest.raises(TransientFailure):
            dimse.send_file(plain, path, "SHARPRAY", 5, 0)
        # a CA that did not sign the peer's certificate: the handshake fails, nothing is sent
        (tmp_path / "other").mkdir()
        _, other_cert = _certificate(tmp_path / "other")
        untrusted = dest.model_copy(update={"tls": TlsSettings(enabled=True, ca_file=other_cert)})
        with pytest.raises(TransientFailure):
            dimse.send_file(untrusted, path, "SHARPRAY", 5, 0)
        assert scp.uids() == {uid: 1}
        # unusable TLS settings (no such CA file) are permanent
        broken = dest.model_copy(
            update={"tls": TlsSettings(enabled=True, ca_file=tmp_path / "missing.pem")}
        )
        with pytest.raises(PermanentFailure, match="TLS settings unusable"):
            dimse.send_file(broken, path, "SHARPRAY", 5, 0)
    finally:
        scp.stop()
