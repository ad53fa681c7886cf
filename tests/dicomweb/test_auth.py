"""Who may use /dicom-web: open on loopback by default; bearer tokens and HTTP basic users from
environment variables when enabled; STOW-RS never open on a non-loopback address."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from dicomweb_client import DICOMwebClient
from dicomweb_client.session_utils import create_session_from_user_pass

from node.app import Node
from node.config import ConfigError, Settings
from node.dicomweb.auth import is_loopback
from tests.dicomweb.conftest import RunningNode, receiver_config, stow, synthetic

TOKEN = "s3cret-token-for-tests"
PASSWORD = "pa55word"


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_DICOMWEB_TOKEN", TOKEN)
    monkeypatch.setenv("TEST_DICOMWEB_PASSWORD", PASSWORD)


AUTH = {
    "bearer_token_envs": ["TEST_DICOMWEB_TOKEN"],
    "basic_users": {"viewer": "TEST_DICOMWEB_PASSWORD"},
}


def test_loopback_addresses() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert is_loopback("127.1.2.3")
    assert not is_loopback("0.0.0.0") and not is_loopback("::") and not is_loopback("10.0.0.5")


def test_enabled_auth_takes_bearer_tokens_and_basic_users(
    tmp_path: Path, make_node: Callable[..., RunningNode], secrets: None
) -> None:
    node = make_node(dicomweb={"auth": {"enabled": True, **AUTH}})
    parts = synthetic(tmp_path, 1)
    # nothing, or wrong credentials: 401 with both challenges; nothing stored
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic !!"}):
        r = stow(node.url, parts, headers=headers)
        assert r.status_code == 401
        assert "Bearer" in r.headers["www-authenticate"]
        assert "Basic" in r.headers["www-authenticate"]
        assert httpx.get(node.dicomweb + "/studies", headers=headers).status_code == 401
    bad_basic = httpx.get(node.dicomweb + "/studies", auth=("viewer", "nope"))
    assert bad_basic.status_code == 401
    # a bearer token stores and reads
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    assert stow(node.url, parts, headers=bearer).status_code == 200
    assert len(httpx.get(node.dicomweb + "/studies", headers=bearer).json()) == 1
    # dicomweb-client with HTTP basic
    session = create_session_from_user_pass("viewer", PASSWORD)
    client = DICOMwebClient(url=node.dicomweb, session=session)
    assert len(client.search_for_instances()) == 1
    # health and metrics stay open (probes and scrapers)
    assert httpx.get(node.url + "/healthz").status_code == 200
    assert httpx.get(node.url + "/metrics").status_code == 200
    spec = httpx.get(node.url + "/openapi.json").json()
    assert set(spec["components"]["securitySchemes"]) == {"bearer", "basic"}
    assert spec["paths"]["/dicom-web/studies"]["get"]["security"]


def _non_loopback(tmp_path: Path, **dicomweb: object) -> RunningNode:
    from tests.dicomweb.conftest import start_in_process

    folder = tmp_path / "wide"
    folder.mkdir()
    cfg = receiver_config(folder, dicomweb=dicomweb)
    cfg["node"]["http_bind"] = "0.0.0.0"
    return start_in_process(folder, cfg)


def test_non_loopback_without_credentials_refuses_everything_by_default(
    tmp_path: Path,
) -> None:
    node = _non_loopback(tmp_path)
    try:
        r = stow(node.url, synthetic(tmp_path, 1))
        assert r.status_code == 401 and "none are configured" in r.json()["detail"]
        assert httpx.get(node.dicomweb + "/studies").status_code == 401
        assert httpx.get(node.url + "/healthz").status_code == 200
    finally:
        node.node.stop(timeout=10)


def test_non_loopback_with_reads_opened_still_guards_writes(tmp_path: Path, secrets: None) -> None:
    node = _non_loopback(tmp_path, auth={"enabled": False, **AUTH})
    try:
        parts = synthetic(tmp_path, 1)
        assert httpx.get(node.dicomweb + "/studies").status_code == 200
        assert stow(node.url, parts).status_code == 401
        r = stow(node.url, parts, headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 200
        spec = httpx.get(node.url + "/openapi.json").json()
        assert "security" in spec["paths"]["/dicom-web/studies"]["post"]
        assert "security" not in spec["paths"]["/dicom-web/studies"]["get"]
    finally:
        node.node.stop(timeout=10)


def test_a_named_secret_that_is_not_set_stops_the_node(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TEST_DICOMWEB_TOKEN", raising=False)
    cfg = receiver_config(
        tmp_path, dicomweb={"auth": {"bearer_token_envs": ["TEST_DICOMWEB_TOKEN"]}}
    )
    node = Node(Settings.model_validate(cfg), roles=["receiver"])
    try:
        with pytest.raises(ConfigError, match="TEST_DICOMWEB_TOKEN"):
            node.start()
    finally:
        node.stop(timeout=10)
