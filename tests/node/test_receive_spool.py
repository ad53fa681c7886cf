"""The DIMSE receiver's spool (node/receive/spool.py): data sets written while they arrive.

A real pynetdicom SCU sends to a real DimseReceiver on a free port; the stored files must be
byte-identical to those of the ordinary path (spooling off), a refused instance must leave no
temporary file behind, and a mismatching spool must never be used.
"""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from pynetdicom import AE
from pynetdicom.sop_class import ComputedRadiographyImageStorage  # type: ignore[attr-defined]

from node.config import NodeSettings
from node.ingest import Ingestor
from node.metrics import Metrics
from node.receive import spool
from node.receive.dimse import DimseReceiver
from storage import db
from storage.files import FileStore
from tests.support.synthetic import make_cr


def _receiver(folder: Path, direct_io: bool) -> tuple[DimseReceiver, int, FileStore]:
    engine = db.make_engine(f"sqlite:///{folder}/node.db")
    db.upgrade(engine)
    store = FileStore(folder / "store", direct_io=direct_io)
    ingestor = Ingestor(store, db.make_sessionmaker(engine), process_max_attempts=3)
    rcv = DimseReceiver(NodeSettings(dimse_port=0, bind="127.0.0.1"), ingestor, Metrics())
    _, port = rcv.start()
    return rcv, port, store


def _send(port: int, files: list[Path]) -> list[int]:
    ae = AE(ae_title="MODALITY")
    ae.add_requested_context(ComputedRadiographyImageStorage)
    assoc = ae.associate("127.0.0.1", port, ae_title="SHARPRAY")
    assert assoc.is_established
    statuses = []
    try:
        for f in files:
            status = assoc.send_c_store(f)
            statuses.append(int(status.Status))
    finally:
        assoc.release()
    return statuses


def _stored(store: FileStore) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in store.root.glob("*/*/*.dcm")}


@pytest.fixture()
def files(tmp_path: Path) -> list[Path]:
    # a small one (one chunk), large ones spanning many MiB chunks, odd sizes
    sizes = [(64, 48), (1200, 1000), (1536, 1377), (701, 999)]
    out = []
    for i, (r, c) in enumerate(sizes):
        f = tmp_path / f"in{i}.dcm"
        make_cr(f, r, c, seed=i)
        out.append(f)
    return out


def test_spooled_files_are_identical_to_the_ordinary_path(
    tmp_path: Path, files: list[Path]
) -> None:
    results = {}
    for direct in (True, False):
        rcv, port, store = _receiver(tmp_path / f"node-{direct}", direct)
        try:
            assert rcv.spooling is (direct and store.direct_io)
            assert _send(port, files) == [0] * len(files)
        finally:
            rcv.stop()
        results[direct] = _stored(store)
        assert not list(store.tmp.iterdir())
    if not FileStore(tmp_path / "probe").direct_io:
        pytest.skip("no O_DIRECT here: both runs took the ordinary path")
    assert results[True] == results[False] and len(results[True]) == len(files)
    for f in files:  # and they are the data sets that were sent
        sent = pydicom.dcmread(f)
        name = f"{sent.SOPInstanceUID}.dcm"
        assert pydicom.dcmread(pydicom.filebase.DicomBytesIO(results[True][name])) == sent


def test_a_refused_instance_leaves_no_temporary_file(tmp_path: Path) -> None:
    rcv, port, store = _receiver(tmp_path / "node", True)
    bad = tmp_path / "bad.dcm"
    ds = make_cr(bad, 900, 900, seed=9)
    ds.SeriesInstanceUID = "not-a-uid"  # refused: 0xA900 (identifying UIDs must be valid)
    ds.save_as(bad, enforce_file_format=True)
    try:
        assert _send(port, [bad]) == [0xA900]
    finally:
        rcv.stop()
    assert not list(store.tmp.iterdir()) and not _stored(store)


def test_a_spool_that_does_not_match_the_request_is_not_used(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "store")
    if not store.direct_io:
        pytest.skip("no O_DIRECT here")
    tap = spool.AssociationTap(store, spool.BufferPool(), lambda _cx: "1.2.840.10008.1.2.1")
    s = spool.Spool(store, tap.pool, tap.writer, tap.hasher, "1.2.3", b"P" * 132)
    s.append(memoryview(b"x" * 5000))
    tap.done = s.finish()
    data = b"P" * 132 + b"x" * 5000
    assert tap.take("1.2.4", data) is None  # another instance
    tap.done = None
    tap.close()
    tap.writer.shutdown(wait=True)
    assert not list(store.tmp.iterdir())  # the dropped spool's file is gone

    tap = spool.AssociationTap(store, spool.BufferPool(), lambda _cx: None)
    s = spool.Spool(store, tap.pool, tap.writer, tap.hasher, "1.2.3", b"P" * 132)
    s.append(memoryview(b"x" * 5000))
    tap.done = s.finish()
    done = tap.take("1.2.3", data)
    assert done is not None
    path, size = done.writing.result()
    assert path.read_bytes() == data and size == len(data)
    import hashlib

    assert done.hashing.result() == hashlib.sha256(data).hexdigest()
    assert tap.take("1.2.3", data) is None  # taken once
    path.unlink()
    tap.close()


def test_a_filesystem_without_o_direct_stops_spooling_and_loses_nothing(
    tmp_path: Path, files: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno
    import os

    from storage import files as store_files

    rcv, port, store = _receiver(tmp_path / "node", True)
    if not rcv.spooling:
        rcv.stop()
        pytest.skip("no O_DIRECT here")
    real_open = os.open

    def refusing_open(path: str, flags: int, mode: int = 0o777) -> int:
        if flags & store_files.O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_open(path, flags, mode)

    monkeypatch.setattr(spool.os, "open", refusing_open)
    monkeypatch.setattr(store_files.os, "open", refusing_open)
    try:
        assert _send(port, files[:2]) == [0, 0]
        assert store.direct_io is False  # found out once, on the first spool
        assert _send(port, files[2:]) == [0, 0]  # a new association: no spool, buffered writes
    finally:
        rcv.stop()
    stored = _stored(store)
    for f in files:
        sent = pydicom.dcmread(f)
        assert (
            pydicom.dcmread(pydicom.filebase.DicomBytesIO(stored[f"{sent.SOPInstanceUID}.dcm"]))
            == sent
        )
    assert not list(store.tmp.iterdir())
