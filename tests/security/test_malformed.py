"""Malformed input against the node as a real process: every case of the security issue as a file
over C-STORE (pynetdicom, and dcmtk storescu for the accepted ones), as a STOW-RS part, and as
raw PDUs over a socket. The node answers each with the expected status, stays up, and still takes
a valid image afterwards. ``sharpray process`` refuses every case with one line and writes nothing
outside its output folder.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pydicom
import pytest
import yaml
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pynetdicom import AE, _config
from sqlalchemy import select

from node.sop import ACCEPTED_TRANSFER_SYNTAXES
from storage import db
from storage.tables import Instance, Job
from tests.dicomweb.conftest import stow
from tests.security.malformed import (
    ACCEPTED,
    CASES,
    MR_IMAGE,
    NO_CONTEXT,
    UNKNOWN_TS,
    Case,
    sop_uid_of,
)
from tests.support.dcmtk import storescu
from tests.support.node_proc import REPO, NodeProcess, node_config
from tests.support.synthetic import PATIENT_ID, PATIENT_NAME, make_cr

pytestmark = pytest.mark.e2e

CR = "1.2.840.10008.5.1.4.1.1.1"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
IMPLICIT_LE = "1.2.840.10008.1.2"
VERIFICATION = "1.2.840.10008.1.1"


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Case, Path]]:
    folder = tmp_path_factory.mktemp("malformed")
    return {c.name: (c, c.build(folder)) for c in CASES}


@pytest.fixture(scope="module")
def node(
    tmp_path_factory: pytest.TempPathFactory, tiny_models: dict[str, Path]
) -> Iterator[NodeProcess]:
    folder = tmp_path_factory.mktemp("node")
    n = NodeProcess(folder, node_config(folder, tiny_models, None)).start()
    try:
        yield n
    finally:
        n.stop()


def _ae() -> AE:
    ae = AE(ae_title="MODALITY")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 20
    return ae


def _alive(node: NodeProcess) -> None:
    """The node answers C-ECHO and /healthz."""
    ae = _ae()
    ae.add_requested_context(VERIFICATION)
    assoc = ae.associate("127.0.0.1", node.dimse_port, ae_title=node.ae_title)
    assert assoc.is_established, "the node no longer accepts associations"
    status = assoc.send_c_echo()
    assoc.release()
    assert int(status.Status) == 0
    assert node.health()  # /healthz answers 200 (raises otherwise)
    assert node.proc is not None and node.proc.poll() is None


def _c_store(node: NodeProcess, path: Path) -> int:
    """Send a file's bytes as they are on disk (after its file meta)."""
    meta = pydicom.filereader.read_file_meta_info(path)
    ae = _ae()
    ae.add_requested_context(str(meta.MediaStorageSOPClassUID), [str(meta.TransferSyntaxUID)])
    assoc = ae.associate("127.0.0.1", node.dimse_port, ae_title=node.ae_title)
    try:
        if not assoc.is_established or not assoc.accepted_contexts:
            return NO_CONTEXT
        chunked = _config.STORE_SEND_CHUNKED_DATASET
        _config.STORE_SEND_CHUNKED_DATASET = True  # the file's bytes, not a re-encoding
        try:
            status = assoc.send_c_store(path)
        finally:
            _config.STORE_SEND_CHUNKED_DATASET = chunked
        assert "Status" in status, "no C-STORE response (association aborted)"
        return int(status.Status)
    finally:
        if assoc.is_established:
            assoc.release()


@pytest.mark.parametrize("name", [c.name for c in CASES])
def test_c_store_answers_each_case(
    node: NodeProcess, cases: dict[str, tuple[Case, Path]], name: str
) -> None:
    case, path = cases[name]
    assert _c_store(node, path) == case.dimse
    _alive(node)


@pytest.mark.parametrize("name", [c.name for c in CASES])
def test_stow_rs_answers_each_case(
    node: NodeProcess, cases: dict[str, tuple[Case, Path]], name: str
) -> None:
    case, path = cases[name]
    r = stow(node.http_url, [path.read_bytes()])
    if case.stow is None:
        assert r.status_code == 200, r.text
    else:
        assert r.status_code == 409, r.text
        failed = r.json()["00081198"]["Value"]
        assert [f["00081197"]["Value"][0] for f in failed] == [case.stow]
        assert r.headers.get("Warning", "").startswith("299")
    _alive(node)


def test_accepted_cases_fail_their_job_with_a_reason_and_the_bytes_are_kept(
    node: NodeProcess, cases: dict[str, tuple[Case, Path]]
) -> None:
    accepted = {sop_uid_of(p): c for c, p in cases.values() if c.dimse == ACCEPTED}
    for _, path in cases.values():  # idempotent: sends what the C-STORE test sent
        if cases[path.stem][0].dimse == ACCEPTED:
            _c_store(node, path)
    node.wait_idle(timeout=120)
    engine = db.make_engine(node.database_url)
    try:
        with engine.connect() as c:
            rows = c.execute(
                select(Instance.sop_instance_uid, Instance.path, Job.state, Job.last_error)
                .join(Job, Job.instance_id == Instance.id)
                .where(Job.kind == "process")
            ).all()
    finally:
        engine.dispose()
    found = {uid: (rel, state, err) for uid, rel, state, err in rows if uid in accepted}
    assert set(found) == set(accepted)
    for uid, case in accepted.items():
        rel, state, err = found[uid]
        assert state == "failed", (case.name, state, err)
        assert case.job_error is not None and err is not None
        assert err.startswith("cannot process") and case.job_error in err, (case.name, err)
        assert (Path(node.config["storage"]["folder"]) / rel).is_file(), case.name
    # nothing that was refused reached the index or the store; nothing escaped the store
    refused = {sop_uid_of(p) for c, p in cases.values() if c.dimse != ACCEPTED}
    assert not refused & node.received_uids()
    store = Path(node.config["storage"]["folder"])
    assert not list(store.rglob("*etc*")) and not list(store.rglob("*evil*"))
    assert not Path("/tmp/evil").exists() and not Path("/tmp/evil.dcm").exists()
    # the reasons and the log hold no patient data
    log = node.log_text()
    assert PATIENT_NAME not in log and PATIENT_ID not in log and "19700101" not in log
    assert "Traceback" not in log, log[-3000:]


def test_sharpray_quarantine_lists_them_with_their_reasons(
    node: NodeProcess, cases: dict[str, tuple[Case, Path]]
) -> None:
    """The CLI lists what was kept but cannot be processed (after the test above)."""
    cfg = node.folder / "config.yaml"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHARPRAY_")}
    env["PYTHONPATH"] = str(REPO)
    r = subprocess.run(
        [sys.executable, "-m", "node.cli", "--config", str(cfg), "quarantine", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=node.folder,
    )
    assert r.returncode == 0, r.stderr
    listed = {e["instance"]: e["reason"] for e in json.loads(r.stdout) if e["kind"] == "failed_job"}
    for case, path in cases.values():
        if case.dimse == ACCEPTED:
            assert case.job_error is not None
            assert case.job_error in listed[sop_uid_of(path)], case.name


def test_storescu_sends_the_accepted_cases(
    node: NodeProcess, cases: dict[str, tuple[Case, Path]]
) -> None:
    """dcmtk as the modality: what it can send of the cases, the node acknowledges."""
    files = [p for c, p in cases.values() if c.dimse == ACCEPTED and c.name != "bad_j2k"]
    storescu(files, node.dimse_port, node.ae_title)
    _alive(node)


# -- raw PDUs (PS3.8 9.3), built by hand ------------------------------------------------------


def _item(kind: int, body: bytes) -> bytes:
    return struct.pack(">BBH", kind, 0, len(body)) + body


def associate_rq(called: str, contexts: list[tuple[int, str, list[str]]]) -> bytes:
    items = _item(0x10, b"1.2.840.10008.3.1.1.1")
    for ctx_id, abstract, syntaxes in contexts:
        sub = _item(0x30, abstract.encode()) + b"".join(_item(0x40, s.encode()) for s in syntaxes)
        items += _item(0x20, struct.pack(">BBBB", ctx_id, 0, 0, 0) + sub)
    items += _item(0x50, _item(0x51, struct.pack(">I", 16384)))
    body = (
        struct.pack(">HH", 1, 0)
        + called.ljust(16).encode()
        + b"MODALITY".ljust(16)
        + bytes(32)
        + items
    )
    return struct.pack(">BBI", 0x01, 0, len(body)) + body


def p_data(ctx_id: int, header: int, data: bytes) -> bytes:
    pdv = struct.pack(">IBB", len(data) + 2, ctx_id, header) + data
    return struct.pack(">BBI", 0x04, 0, len(pdv)) + pdv


def _command(fields: dict[str, Any]) -> bytes:
    ds = pydicom.Dataset()
    for k, v in fields.items():
        setattr(ds, k, v)
    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, True
    write_dataset(fp, ds)
    body = fp.getvalue()
    return struct.pack("<HHII", 0, 0, 4, len(body)) + body  # (0000,0000) group length first


def store_rq(sop_uid: str) -> bytes:
    return _command(
        {
            "AffectedSOPClassUID": CR,
            "CommandField": 0x0001,
            "MessageID": 1,
            "Priority": 0,
            "CommandDataSetType": 0x0000,
            "AffectedSOPInstanceUID": sop_uid,
        }
    )


def _read_pdu(s: socket.socket) -> tuple[int, bytes] | None:
    """One PDU, or None when the node closed the connection."""
    head = b""
    while len(head) < 6:
        chunk = s.recv(6 - len(head))
        if not chunk:
            return None
        head += chunk
    kind, _, length = struct.unpack(">BBI", head)
    body = b""
    while len(body) < length:
        chunk = s.recv(min(65536, length - len(body)))
        if not chunk:
            return None
        body += chunk
    return kind, body


def _until_closed(s: socket.socket) -> list[int]:
    """PDU types the node sends until it closes the connection."""
    seen: list[int] = []
    while (pdu := _read_pdu(s)) is not None:
        seen.append(pdu[0])
        if pdu[0] == 0x07:  # A-ABORT: the node drops the connection after it
            break
    return seen


def _connect(node: NodeProcess) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", node.dimse_port), timeout=30)
    return s


def _associated(node: NodeProcess) -> socket.socket:
    s = _connect(node)
    s.sendall(associate_rq(node.ae_title, [(1, CR, [EXPLICIT_LE])]))
    pdu = _read_pdu(s)
    assert pdu is not None and pdu[0] == 0x02, pdu  # A-ASSOCIATE-AC
    return s


RAW_CASES = ["garbage", "truncated_rq", "overlong_item", "unknown_pdu", "huge_length"]


@pytest.mark.parametrize("case", RAW_CASES)
def test_raw_pdus_before_association_are_dropped(node: NodeProcess, case: str) -> None:
    rq = associate_rq(node.ae_title, [(1, CR, [EXPLICIT_LE])])
    with _connect(node) as s:
        if case == "garbage":
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + os.urandom(200))
        elif case == "truncated_rq":
            s.sendall(rq[: len(rq) // 2])  # the PDU says more follows; the peer goes quiet
            s.shutdown(socket.SHUT_WR)
        elif case == "overlong_item":  # an item claims more bytes than its PDU holds
            s.sendall(rq[:74] + b"\x10\x00\xff\xff" + rq[78:])
        elif case == "unknown_pdu":
            s.sendall(struct.pack(">BBI", 0x55, 0, 4) + b"\x00" * 4)
            s.shutdown(socket.SHUT_WR)
        elif case == "huge_length":  # a 4 GiB PDU announced, 6 bytes sent
            s.sendall(struct.pack(">BBI", 0x04, 0, 0xFFFFFFFF))
            s.shutdown(socket.SHUT_WR)
        seen = _until_closed(s)
    # nothing but an abort or a rejection comes back, never an association
    assert set(seen) <= {0x03, 0x07}, seen
    _alive(node)


def test_unknown_transfer_syntax_and_sop_class_are_not_negotiated(node: NodeProcess) -> None:
    with _connect(node) as s:
        s.sendall(
            associate_rq(
                node.ae_title,
                [(1, CR, [UNKNOWN_TS]), (3, MR_IMAGE, list(ACCEPTED_TRANSFER_SYNTAXES))],
            )
        )
        pdu = _read_pdu(s)
        assert pdu is not None
        if pdu[0] == 0x02:  # accepted association, but each context refused (PS3.8 9.3.3.2)
            body = pdu[1]
            results = {}
            p = 68
            while p < len(body):
                kind, _, n = struct.unpack(">BBH", body[p : p + 4])
                if kind == 0x21:
                    results[body[p + 4]] = body[p + 6]
                p += 4 + n
            assert results == {1: 4, 3: 3}, results  # 4: TS not supported, 3: abstract syntax
        else:
            assert pdu[0] == 0x03, pdu  # or rejected as a whole
    _alive(node)


@pytest.mark.parametrize("case", ["pdv_overrun", "garbage_command", "garbage_dataset"])
def test_raw_p_data_after_association(node: NodeProcess, case: str) -> None:
    with _associated(node) as s:
        if case == "pdv_overrun":  # the PDV says 1000 bytes, its PDU holds 10
            pdv = struct.pack(">IBB", 1000, 1, 0x03) + b"\x00" * 8
            s.sendall(struct.pack(">BBI", 0x04, 0, len(pdv)) + pdv)
            seen = _until_closed(s)
            assert seen in ([], [0x07]), seen
        elif case == "garbage_command":
            s.sendall(p_data(1, 0x03, os.urandom(64)))
            seen = _until_closed(s)
            assert seen in ([], [0x07]), seen
        else:  # a proper C-STORE-RQ whose data set is noise: answered 0xC000, association lives
            uid = "1.2.826.0.1.3680043.10.999.2"
            s.sendall(p_data(1, 0x03, store_rq(uid)))
            s.sendall(p_data(1, 0x02, b"\x08\x00\x16\x00UI" + os.urandom(300)))
            pdu = _read_pdu(s)
            assert pdu is not None and pdu[0] == 0x04, pdu
            # 0xC000 (unreadable) or 0xA900 (read, but its UIDs are not valid): noise either way
            status = struct.pack("<HHI", 0x0000, 0x0900, 2)
            assert any(status + struct.pack("<H", c) in pdu[1] for c in (0xC000, 0xA900)), pdu
            s.sendall(struct.pack(">BBI", 0x05, 0, 4) + bytes(4))  # A-RELEASE-RQ
            reply = _read_pdu(s)
            assert reply is not None and reply[0] == 0x06, reply  # A-RELEASE-RP
            assert uid not in node.received_uids()
    _alive(node)


def test_a_valid_image_is_taken_and_processed_afterwards(node: NodeProcess, tmp_path: Path) -> None:
    good = make_cr(tmp_path / "good.dcm", 128, 128, seed=42)
    storescu([tmp_path / "good.dcm"], node.dimse_port, node.ae_title)
    uid = str(good.SOPInstanceUID)
    node.wait_idle(timeout=120)
    done = [
        j
        for j in node.jobs()
        if j.kind == "process" and j.state == "done" and j.instance_id in _ids(node, uid)
    ]
    assert len(done) == 1
    _alive(node)


def _ids(node: NodeProcess, uid: str) -> set[int]:
    engine = db.make_engine(node.database_url)
    try:
        with engine.connect() as c:
            q = select(Instance.id).where(Instance.sop_instance_uid == uid)
            return {r[0] for r in c.execute(q)}
    finally:
        engine.dispose()


# -- the same cases, offline ------------------------------------------------------------------


def _tree(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_size for p in folder.rglob("*")}


def _process(cfg: Path, file: Path, out: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHARPRAY_")}
    env["PYTHONPATH"] = str(REPO)
    args = [sys.executable, "-m", "node.cli", "--config", str(cfg), "process", str(file)]
    return subprocess.run(
        [*args, "--out", str(out)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_sharpray_process_refuses_each_case_in_one_line(
    tmp_path: Path, tiny_models: dict[str, Path], cases: dict[str, tuple[Case, Path]]
) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump(node_config(tmp_path, tiny_models, None)))
    work = tmp_path / "work"
    work.mkdir()
    inputs = cases[CASES[0].name][1].parent
    before_inputs = _tree(inputs)
    with ThreadPoolExecutor(4) as pool:  # one process per file, a few at a time
        runs = pool.map(
            lambda cp: (cp[0], _process(cfg, cp[1], work / f"out-{cp[0].name}", work)),
            cases.values(),
        )
    for case, r in runs:
        out = work / f"out-{case.name}"
        lines = r.stderr.strip().splitlines()
        assert r.returncode != 0, (case.name, r.stdout)
        assert len(lines) == 1 and lines[0].startswith("sharpray: "), (case.name, r.stderr)
        assert "Traceback" not in r.stderr and PATIENT_NAME not in r.stderr
        assert not out.exists() or not any(out.iterdir()), case.name
    # nothing written anywhere but the (empty) output folders
    assert _tree(inputs) == before_inputs
    assert {p.split("/")[0] for p in _tree(work)} <= {f"out-{c.name}" for c in CASES}
    # and a valid file is processed (the command works; the refusals above are real)
    make_cr(tmp_path / "good.dcm", 128, 128, seed=7)
    r = _process(cfg, tmp_path / "good.dcm", work / "out-good", work)
    assert r.returncode == 0, r.stderr
    assert len(list((work / "out-good").glob("*.dcm"))) >= 2
