"""The node serving a viewer build at the site root (``dicomweb.viewer_dir``) without shadowing
its own routes; a folder that is not a viewer build is refused at start. (OHIF itself, in a
browser, is tested in tests/viewer.)"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from node.config import Settings
from tests.dicomweb.conftest import RunningNode, receiver_config


def _fake_dist(folder: Path) -> Path:
    folder.mkdir()
    (folder / "index.html").write_text("<!doctype html><title>viewer</title>")
    (folder / "app.bundle.0123.js").write_text("console.log('viewer')")
    (folder / "assets").mkdir()
    (folder / "assets" / "x.wasm").write_bytes(b"\x00asm")
    return folder


def test_viewer_files_config_and_client_routes(
    make_node: Callable[..., RunningNode], tmp_path: Path
) -> None:
    dist = _fake_dist(tmp_path / "dist")
    node = make_node(dicomweb={"viewer_dir": str(dist)})
    get = lambda path: httpx.get(node.url + path, timeout=10)  # noqa: E731
    r = get("/app.bundle.0123.js")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript")
    assert r.headers["cross-origin-embedder-policy"] == "require-corp"
    assert get("/assets/x.wasm").headers["content-type"] == "application/wasm"
    config = get("/app-config.js").text
    assert '"qidoRoot": "/dicom-web"' in config and '"routerBasename": "/"' in config
    for route in ("/viewer", "/viewer/whatever"):  # the viewer routes on the client
        page = get(route)
        assert page.status_code == 200 and "<title>viewer</title>" in page.text, route
    assert get("/missing.js").status_code == 404  # a file the build does not have
    for escape in ("/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/..%2f..%2fetc%2fpasswd"):
        assert "root:" not in get(escape).text  # never a file outside the build
    # the node's own routes are never shadowed
    assert get("/healthz").status_code == 200
    assert get("/dicom-web/nothing-here").status_code == 404
    assert "<title>viewer</title>" not in get("/dicom-web/nothing-here").text
    assert get("/metrics").status_code == 200
    assert get("/").is_redirect  # the node's own: to its dashboard


def test_a_folder_that_is_no_viewer_build_is_refused(tmp_path: Path) -> None:
    cfg = receiver_config(tmp_path)
    cfg["dicomweb"] = {"viewer_dir": str(tmp_path)}
    with pytest.raises(ValueError, match="not a built OHIF viewer"):
        Settings.model_validate(cfg)
