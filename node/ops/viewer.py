"""OHIF v3, the viewer radiologists use, served by the node against its own DICOMweb.

OHIF's built form ships in the npm package ``@ohif/app`` (folder ``dist/``). Nothing is fetched at
run time: the administrator installs the package (``npm pack @ohif/app@3.13.2 && tar xzf
ohif-app-3.13.2.tgz``) and names its ``dist`` folder in ``dicomweb.viewer_dir``; the node then
serves it same-origin with /dicom-web, so an administrator sees the results (corrected images,
the report's findings and outlines, the heatmap SEG) without a PACS:
``http://NODE:8080/viewer?StudyInstanceUIDs=<uid>`` opens a study.

The built viewer is compiled for the site root (its chunks load from ``/``), so it is served
there, behind every route of the node: its own files (``/app.bundle.*.js``, ``/assets/...``), its
``app-config.js`` (generated here: one DICOMweb data source, this node's /dicom-web) and, for its
client-side routes (``/viewer``, ``/segmentation``, ...), its ``index.html``. Paths the node
serves itself (/dicom-web, /dashboard, /healthz, /metrics) are never shadowed. Cross-origin
isolation headers (COOP/COEP) are set as OHIF's own server does, for its WebAssembly decoders.
"""

from __future__ import annotations

import json
import mimetypes
from pathlib import Path

from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse, HTMLResponse, Response

ISOLATION_HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
}
mimetypes.add_type("application/wasm", ".wasm")
mimetypes.add_type("text/javascript", ".js")


def app_config(dicomweb_root: str) -> str:
    """OHIF's ``window.config``: one DICOMweb source at ``dicomweb_root`` (same origin)."""
    source = {
        "namespace": "@ohif/extension-default.dataSourcesModule.dicomweb",
        "sourceName": "sharpray",
        "configuration": {
            "friendlyName": "SharpRay node",
            "name": "sharpray",
            "wadoUriRoot": dicomweb_root,
            "qidoRoot": dicomweb_root,
            "wadoRoot": dicomweb_root,
            "qidoSupportsIncludeField": True,
            "supportsReject": False,
            "imageRendering": "wadors",
            "thumbnailRendering": "wadors",
            "enableStudyLazyLoad": True,
            "supportsFuzzyMatching": False,
            "supportsWildcard": True,
            "omitQuotationForMultipartRequest": True,
            "bulkDataURI": {"enabled": True},
        },
    }
    config = {
        "routerBasename": "/",
        "extensions": [],
        "modes": [],
        "customizationService": {},
        "showStudyList": True,
        "maxNumberOfWebWorkers": 2,
        "showWarningMessageForCrossOrigin": False,
        "showCPUFallbackMessage": True,
        "showLoadingIndicator": True,
        "strictZSpacingForVolumeViewport": True,
        "investigationalUseDialog": {"option": "never"},
        "defaultDataSourceName": "sharpray",
        "dataSources": [source],
    }
    return f"window.config = {json.dumps(config, indent=2)};\n"


def install(app: FastAPI, dist: Path, dicomweb_root: str = "/dicom-web") -> None:
    """Serve the OHIF build in ``dist`` (checked by the settings: ``dicomweb.viewer_dir``); call
    after every other route is installed."""
    root = dist.resolve()
    index = (root / "index.html").read_text(encoding="utf-8")
    config = app_config(dicomweb_root)
    reserved = ("dicom-web", "dashboard", "healthz", "metrics", "openapi.json", "docs")

    @app.get("/app-config.js", include_in_schema=False)
    def viewer_config() -> Response:
        return Response(config, media_type="text/javascript", headers=ISOLATION_HEADERS | _NO_CACHE)

    @app.get("/{path:path}", include_in_schema=False)
    def viewer_file(path: str) -> Response:
        if path.split("/", 1)[0] in reserved:
            raise HTTPException(404)
        if path:
            target = (root / path).resolve()
            if target.is_relative_to(root) and target.is_file():
                media = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
                return FileResponse(target, media_type=media, headers=ISOLATION_HEADERS)
            if "." in path.rsplit("/", 1)[-1]:
                raise HTTPException(404)  # a file the viewer does not have
        # the viewer routes on the client: every other path is its page
        return HTMLResponse(index, headers=ISOLATION_HEADERS | _NO_CACHE)


_NO_CACHE = {"Cache-Control": "no-cache"}
