"""Start-up recovery: partial writes removed, stored-but-unindexed files indexed or quarantined."""

from __future__ import annotations

import shutil
from pathlib import Path

from sqlalchemy import select

from node.ingest import Ingestor
from node.instance_index import Received
from node.recover import recover
from storage import db
from storage.files import FileStore
from storage.tables import Instance, Job
from tests.support.synthetic import make_cr


def test_recover_after_a_crash_between_write_and_commit(tmp_path: Path, database_url: str) -> None:
    engine = db.make_engine(database_url)
    db.upgrade(engine)
    sessions = db.make_sessionmaker(engine)
    store = FileStore(tmp_path / "store")
    ingestor = Ingestor(store, sessions, process_max_attempts=3)
    indexed = make_cr(tmp_path / "a.dcm", 64, 64, seed=1)
    ingestor.ingest((tmp_path / "a.dcm").read_bytes(), Received(source="dimse"))
    # a file renamed into place whose index commit never happened
    lost = make_cr(tmp_path / "b.dcm", 64, 64, seed=2)
    rel = store.relpath_for(lost.StudyInstanceUID, lost.SeriesInstanceUID, lost.SOPInstanceUID)
    store.abspath(rel).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(tmp_path / "b.dcm", store.abspath(rel))
    # garbage with a UID-like name, and a partial write in tmp/
    junk = store.root / "1.2.3" / "1.2.4" / "1.2.5.dcm"
    junk.parent.mkdir(parents=True)
    junk.write_bytes(b"not dicom at all")
    (store.tmp / "abc.part").write_bytes(b"half")

    result = recover(store, sessions, ingestor)
    assert (result.partial_files, result.reindexed, result.quarantined) == (1, 1, 1)
    with sessions() as s:
        uids = set(s.scalars(select(Instance.sop_instance_uid)))
        assert uids == {str(indexed.SOPInstanceUID), str(lost.SOPInstanceUID)}
        assert len(list(s.scalars(select(Job).where(Job.kind == "process")))) == 2
    assert not junk.exists() and not list(store.tmp.iterdir())
    reasons = list(store.quarantine_dir.glob("*.reason.txt"))
    assert len(reasons) == 1 and "without an index row" in reasons[0].read_text()
    # idempotent
    assert recover(store, sessions, ingestor) == type(result)(0, 0, 0, 0, 0)


def test_recovery_removes_own_results_of_an_unfinished_job(
    tmp_path: Path, database_url: str
) -> None:
    """A result the worker placed but whose commit never happened is not taken as an input: its job
    runs again. A Secondary Capture from anyone else is indexed as received."""
    from pydicom.uid import SecondaryCaptureImageStorage

    engine = db.make_engine(database_url)
    db.upgrade(engine)
    sessions = db.make_sessionmaker(engine)
    store = FileStore(tmp_path / "store")
    ingestor = Ingestor(store, sessions, process_max_attempts=3)
    placed = []
    for seed, manufacturer in ((3, "SharpRay"), (4, "Other Vendor")):
        ds = make_cr(tmp_path / f"{seed}.dcm", 64, 64, seed=seed)
        ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
        ds.Manufacturer = manufacturer
        rel = store.relpath_for(ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
        store.abspath(rel).parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(store.abspath(rel), enforce_file_format=True)
        placed.append((ds, store.abspath(rel)))

    result = recover(store, sessions, ingestor, own_manufacturer="SharpRay")
    assert (result.reindexed, result.dropped_results) == (1, 1)
    (ours, ours_path), (theirs, theirs_path) = placed
    assert not ours_path.exists() and theirs_path.exists()
    with sessions() as s:
        uids = set(s.scalars(select(Instance.sop_instance_uid)))
    assert uids == {str(theirs.SOPInstanceUID)}


def test_a_crash_between_placing_and_commit_keeps_who_sent_it(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    """The node dies (fault hook) after the file is in place and before its row is committed:
    storescu gets no success. After the restart the file is routed by its calling AE (the rule
    for XRAY_ROOM_1 processes it; the fallback would ignore it), and the modality's resend is not
    lost as a duplicate: the instance is processed exactly once."""

    from tests.support.dcmtk import storescu
    from tests.support.node_proc import NodeProcess, node_config

    cfg = node_config(
        tmp_path,
        tiny_models,
        None,
        routing={
            "rules": [
                {"name": "room-1", "match": {"calling_ae": ["XRAY_ROOM_1"]}, "process": "full"}
            ],
            "fallback": {"name": "others", "ignore": True},
        },
    )
    ds = make_cr(tmp_path / "a.dcm", 128, 128, seed=3)
    uid = str(ds.SOPInstanceUID)
    node = NodeProcess(tmp_path, cfg)
    node.start(extra_env={"SHARPRAYTEST_CRASH_AT": "after_place"})
    sent = storescu(
        [tmp_path / "a.dcm"], node.dimse_port, node.ae_title, "XRAY_ROOM_1", check=False
    )
    assert node.proc is not None
    assert node.proc.wait(30) == 137  # died at the fault point
    assert "Success" not in sent.stdout + sent.stderr or sent.returncode != 0
    node.start()  # recovery runs at start
    try:
        storescu([tmp_path / "a.dcm"], node.dimse_port, node.ae_title, "XRAY_ROOM_1")  # resend
        counts = node.wait_idle(timeout=120)
        assert counts.get(("process", "done")) == 1, counts
        details = node.process_details()
        assert uid in details
        engine = db.make_engine(node.database_url)
        try:
            with engine.connect() as c:
                rows = c.execute(
                    select(Instance.calling_ae, Job.rule)
                    .join(Job, Job.instance_id == Instance.id)
                    .where(Instance.sop_instance_uid == uid, Job.kind == "process")
                ).all()
        finally:
            engine.dispose()
        assert rows == [("XRAY_ROOM_1", "room-1")], rows
        assert not list(Path(cfg["storage"]["folder"]).glob("*/*/*.received.json"))
    finally:
        node.stop()
