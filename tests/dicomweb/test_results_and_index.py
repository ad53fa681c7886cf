"""What the node produces is searchable and retrievable like what it received; rows indexed
before migration 0002 (or by an older index) are indexed again at start."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import httpx
from PIL import Image
from sqlalchemy import update

from storage.tables import Instance
from tests.dicomweb.conftest import (
    header,
    receiver_config,
    start_in_process,
    stow,
    synthetic,
    uids,
)
from tests.support.node_proc import node_config
from tests.support.ports import wait_for

SC_CLASS = "1.2.840.10008.5.1.4.1.1.7"


def test_results_of_a_stow_rs_upload_are_found_and_fetched(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    folder = tmp_path / "node"
    folder.mkdir()
    cfg = node_config(folder, tiny_models, None)
    node = start_in_process(folder, cfg, roles=("receiver", "worker", "dispatcher"))
    try:
        (part,) = synthetic(tmp_path, 1, rows=256, cols=224)
        ds = header(part)
        study = str(ds.StudyInstanceUID)
        assert stow(node.url, [part]).status_code == 200

        def produced() -> list[dict[str, Any]] | None:
            found = httpx.get(f"{node.dicomweb}/studies/{study}/instances").json()
            return found if len(found) > 1 and len(found) == _results(found) + 1 else None

        found = wait_for(produced, 180, "the results to be indexed", interval=0.5)
        series = httpx.get(f"{node.dicomweb}/studies/{study}/series").json()
        assert len(series) == len(uids(found, "0020000E")) >= 2
        study_row = httpx.get(f"{node.dicomweb}/studies", params={"StudyInstanceUID": study})
        (s,) = study_row.json()
        assert s["00201208"]["Value"] == [len(found)]  # the study counts its results
        assert "SR" in s["00080061"]["Value"]  # and their modalities
        # a result found by its attributes, retrieved, and rendered for a browser
        (sc,) = httpx.get(
            f"{node.dicomweb}/studies/{study}/instances", params={"SOPClassUID": SC_CLASS}
        ).json()
        sc_series, sc_sop = sc["0020000E"]["Value"][0], sc["00080018"]["Value"][0]
        base = f"{node.dicomweb}/studies/{study}/series/{sc_series}/instances/{sc_sop}"
        client = node.client()
        got = client.retrieve_instance(study, sc_series, sc_sop)
        assert got.SOPClassUID == SC_CLASS and got.PatientID == ds.PatientID
        jpeg = httpx.get(base + "/rendered", headers={"Accept": "image/jpeg"})
        assert jpeg.status_code == 200 and jpeg.headers["content-type"] == "image/jpeg"
        assert Image.open(io.BytesIO(jpeg.content)).size == (got.Columns, got.Rows)
        windowed = httpx.get(base + "/rendered", params={"window": "100,50,linear"})
        assert windowed.status_code == 200 and windowed.content != jpeg.content
    finally:
        node.node.stop(timeout=10)


def _results(found: list[dict[str, Any]]) -> int:
    return sum(1 for d in found if d["00080016"]["Value"][0] != "1.2.840.10008.5.1.4.1.1.1")


def test_rows_without_index_are_indexed_at_start(tmp_path: Path) -> None:
    folder = tmp_path / "restart"
    folder.mkdir()
    cfg = receiver_config(folder)
    node = start_in_process(folder, cfg)
    parts = synthetic(tmp_path, 2, PatientID="BACKFILL-1", Modality="DX")
    try:
        assert stow(node.url, parts).status_code == 200
        # as a database upgraded from 0001 looks: the index columns empty, version 0
        with node.node.sessions.begin() as s:
            s.execute(update(Instance).values(index_version=0, patient_id=None, modality=None))
        assert (
            httpx.get(node.dicomweb + "/studies", params={"PatientID": "BACKFILL-1"}).json() == []
        )
    finally:
        node.node.stop(timeout=10)
    again = start_in_process(folder, cfg)
    try:
        found = httpx.get(again.dicomweb + "/instances", params={"PatientID": "BACKFILL-1"})
        assert len(found.json()) == 2
        assert {d["00080060"]["Value"][0] for d in found.json()} == {"DX"}
    finally:
        again.node.stop(timeout=10)
