"""DICOM TLS on the SCP: dcmtk storescu +tls with a test CA gets in; no certificate, a certificate
from another CA, or plain TCP do not. Certificates are made here with openssl."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.dcmtk import require
from tests.support.node_proc import NodeProcess, node_config
from tests.support.synthetic import make_cr

pytestmark = pytest.mark.e2e


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _ca(folder: Path, name: str) -> None:
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        f"/CN={name}",
        "-keyout",
        f"{name}.key",
        "-out",
        f"{name}.pem",
        cwd=folder,
    )


def _leaf(folder: Path, name: str, ca: str) -> None:
    _openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        f"/CN={name}",
        "-keyout",
        f"{name}.key",
        "-out",
        f"{name}.csr",
        cwd=folder,
    )
    (folder / "ext.cnf").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    _openssl(
        "x509",
        "-req",
        "-in",
        f"{name}.csr",
        "-CA",
        f"{ca}.pem",
        "-CAkey",
        f"{ca}.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
        "-out",
        f"{name}.pem",
        cwd=folder,
    )


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    d = tmp_path_factory.mktemp("pki")
    _ca(d, "ca")
    _ca(d, "rogue-ca")
    _leaf(d, "node", "ca")
    _leaf(d, "modality", "ca")
    _leaf(d, "intruder", "rogue-ca")
    return d


def _storescu(port: int, file: Path, *tls: str) -> subprocess.CompletedProcess[str]:
    require("storescu")
    return subprocess.run(
        ["storescu", *tls, "-aec", "SHARPRAY", "127.0.0.1", str(port), str(file)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_tls_with_client_certificates(
    tmp_path: Path, tiny_models: dict[str, Path], pki: Path
) -> None:
    cfg = node_config(tmp_path, tiny_models, None)
    cfg["node"]["tls"] = {
        "enabled": True,
        "certificate": str(pki / "node.pem"),
        "private_key": str(pki / "node.key"),
        "ca_certificates": str(pki / "ca.pem"),
        "require_client_certificate": True,
    }
    node = NodeProcess(tmp_path, cfg).start()
    try:
        files = [tmp_path / f"{i}.dcm" for i in range(4)]
        uids = [str(make_cr(f, 64, 64, seed=i).SOPInstanceUID) for i, f in enumerate(files)]
        port = node.dimse_port
        trusted = [
            "+tls",
            str(pki / "modality.key"),
            str(pki / "modality.pem"),
            "+cf",
            str(pki / "ca.pem"),
        ]
        ok = _storescu(port, files[0], *trusted)
        assert ok.returncode == 0, ok.stderr
        # a client with a certificate from a CA we do not trust
        rogue = [
            "+tls",
            str(pki / "intruder.key"),
            str(pki / "intruder.pem"),
            "+cf",
            str(pki / "ca.pem"),
        ]
        assert _storescu(port, files[1], *rogue).returncode != 0
        # a TLS client without a certificate, when one is required
        assert _storescu(port, files[2], "+tla", "+cf", str(pki / "ca.pem")).returncode != 0
        # plain TCP to the TLS port
        assert _storescu(port, files[3]).returncode != 0
        assert node.received_uids() == {uids[0]}
        assert node.health()["status"] == "ok"
    finally:
        node.stop()
