"""The served OpenAPI description is valid and complete, and schemathesis, generating requests
from it, finds no server error (5xx) on any DICOMweb operation."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.dicomweb.conftest import RunningNode, header, stow, synthetic

EXAMPLES_PER_OPERATION = 25
STATUSES: dict[str, dict[int, int]] = {}


@schemathesis.serializer("multipart/related")
def _raw_multipart(ctx: Any, value: Any) -> dict[str, Any]:
    """Send whatever was generated as the body, as bytes (a STOW-RS body is opaque to OpenAPI)."""
    data = value if isinstance(value, bytes) else str(value).encode("utf-8", "replace")
    return {"data": data}


def test_openapi_describes_every_dicomweb_transaction(node: RunningNode) -> None:
    spec = httpx.get(node.url + "/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    paths = spec["paths"]
    for path, method in [
        ("/dicom-web/studies", "post"),
        ("/dicom-web/studies/{study}", "post"),
        ("/dicom-web/studies", "get"),
        ("/dicom-web/series", "get"),
        ("/dicom-web/instances", "get"),
        ("/dicom-web/studies/{study}/series", "get"),
        ("/dicom-web/studies/{study}/instances", "get"),
        ("/dicom-web/studies/{study}/series/{series}/instances", "get"),
        ("/dicom-web/studies/{study}", "get"),
        ("/dicom-web/studies/{study}/series/{series}", "get"),
        ("/dicom-web/studies/{study}/series/{series}/instances/{sop}", "get"),
        ("/dicom-web/studies/{study}/metadata", "get"),
        ("/dicom-web/studies/{study}/series/{series}/instances/{sop}/frames/{frames}", "get"),
        ("/dicom-web/studies/{study}/series/{series}/instances/{sop}/rendered", "get"),
        ("/healthz", "get"),
        ("/metrics", "get"),
    ]:
        assert method in paths.get(path, {}), (method, path)
    stow_op = paths["/dicom-web/studies"]["post"]
    assert "multipart/related" in next(iter(stow_op["requestBody"]["content"]))
    assert {"200", "202", "409", "413", "415"} <= set(stow_op["responses"])
    qido = paths["/dicom-web/studies"]["get"]
    names = {p["name"] for p in qido["parameters"]}
    assert {"limit", "offset", "includefield", "fuzzymatching", "PatientName"} <= names
    assert "application/dicom+json" in qido["responses"]["200"]["content"]


def test_schemathesis_finds_no_server_error(tmp_path: Path, node: RunningNode) -> None:
    stored = synthetic(tmp_path, 2)
    assert stow(node.url, stored).status_code == 200
    ds = header(stored[0])
    real = {
        "study": str(ds.StudyInstanceUID),
        "series": str(ds.SeriesInstanceUID),
        "sop": str(ds.SOPInstanceUID),
    }
    schema = schemathesis.openapi.from_url(node.url + "/openapi.json")
    errors: list[str] = []
    ran = 0
    t0 = time.perf_counter()
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path.startswith("/dicom-web"):
            ran += _fuzz(operation, node.url, errors, real, stored[1])
    elapsed = time.perf_counter() - t0
    print(f"\nschemathesis: {ran} requests in {elapsed:.1f} s")
    for label, counts in sorted(STATUSES.items()):
        print(f"  {label}: {dict(sorted(counts.items()))}")
    assert 300 <= ran <= 600
    assert not errors, errors[:10]
    assert httpx.get(node.url + "/healthz").status_code == 200


def _fuzz(
    operation: Any, base_url: str, errors: list[str], real: dict[str, str], valid: bytes
) -> int:
    """Generated requests to one operation; 5xx go to ``errors``. Half of them use the UIDs of
    an instance that exists (so WADO-RS parameters reach the pixels); STOW-RS bodies are
    multipart with a generated or mutated DICOM part (so they reach the parser and the ingest)."""
    count = 0
    mutation = st.tuples(
        st.integers(0, len(valid) - 1), st.integers(0, 255), st.integers(0, len(valid))
    )

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(
        case=operation.as_strategy(),
        use_real=st.booleans(),
        junk=st.binary(max_size=1024),
        mutate=st.one_of(st.none(), mutation),
    )
    def run(case: Any, use_real: bool, junk: bytes, mutate: tuple[int, int, int] | None) -> None:
        nonlocal count
        if use_real:
            for name in ("study", "series", "sop"):
                if name in (case.path_parameters or {}):
                    case.path_parameters[name] = real[name]
        if case.method.upper() == "POST":
            part = junk
            if mutate is not None:
                at, byte, end = mutate
                part = (valid[:at] + bytes([byte]) + valid[at + 1 :])[:end]
            status = stow(base_url, [part], study=case.path_parameters.get("study")).status_code
        else:
            status = case.call(base_url=base_url, timeout=30).status_code
        count += 1
        STATUSES.setdefault(operation.label, {}).setdefault(status, 0)
        STATUSES[operation.label][status] += 1
        if status >= 500:
            errors.append(f"{case.method} {case.formatted_path} {case.query} -> {status}")

    run()
    return count


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/studies", {"limit": "0"}),
        ("/studies/1.2.3/series/4.5.6/instances/7.8.9/frames/0", {}),
        ("/studies/1.2.3/series/4.5.6/instances/7.8.9/rendered", {"quality": "101"}),
        ("/studies/x/metadata", {}),
    ],
)
def test_bad_parameters_are_400_not_422(
    node: RunningNode, path: str, params: dict[str, str]
) -> None:
    r = httpx.get(node.dicomweb + path, params=params)
    assert r.status_code in (400, 404), (r.status_code, r.text)
