"""Bounded fuzzing (hypothesis) of the C-STORE and STOW-RS paths.

A valid CR file is mutated (bytes flipped, cut, inserted, length-sized words overwritten) and
given to: the ingest and the pipeline's decoder in-process (200 examples), the node over a real
association (40), and the node's STOW-RS endpoint (40). Allowed outcomes: stored, or refused
with an ``IngestError`` / a DIMSE status / a STOW failure; a decoder that cannot use the image
says so with ``UnsupportedImage``. Anything else (an unexpected exception, a 5xx, a dead node,
a job failing with a traceback instead of a reason) is a crash.

Found and fixed while building these tests (kept as regression cases in ``REGRESSIONS``): a value
with the wrong VR (Rows as DS or an unknown VR) made the decoder raise ValueError or
NotImplementedError, which the worker took for a bug (retried, logged with a traceback) instead
of failing the job with a reason. The derandomized fuzz runs found nothing further.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pynetdicom import AE, _config
from sqlalchemy import select

from node.ingest import IngestError, Ingestor
from node.instance_index import Received
from node.pipeline.preprocess import UnsupportedImage, decode, read_dataset
from storage import db
from storage.files import FileStore
from storage.tables import Job
from tests.dicomweb.conftest import multipart
from tests.support.node_proc import NodeProcess, node_config
from tests.support.synthetic import make_cr

pytestmark = pytest.mark.e2e

CR = "1.2.840.10008.5.1.4.1.1.1"
FUZZ = settings(
    deadline=None,
    derandomize=True,  # the same examples every run: a failure is reproducible
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)


def _base(folder: Path) -> tuple[bytes, bytes]:
    """(file meta bytes, data set bytes) of a small valid CR."""
    path = folder / "base.dcm"
    make_cr(path, 32, 32, seed=1)
    data = path.read_bytes()
    meta_end = len(data) - len(_body(data))
    return data[:meta_end], data[meta_end:]


def _body(data: bytes) -> bytes:
    fp = io.BytesIO(data)
    pydicom.filereader.read_preamble(fp, False)
    pydicom.filereader._read_file_meta_info(fp)
    return data[fp.tell() :]


@st.composite
def mutated(draw: st.DrawFn, body: bytes) -> bytes:
    """A data set with a few random edits (the kinds of damage a wire or a bad writer does)."""
    out = bytearray(body)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "word", "delete"]))
        at = draw(st.integers(0, max(0, len(out) - 1)))
        if kind == "flip":
            out[at] ^= draw(st.integers(1, 255))
        elif kind == "cut":
            del out[at:]
        elif kind == "insert":
            out[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del out[at : at + draw(st.integers(1, 16))]
        else:  # a length or value word: 0, 0xFFFF, 0xFFFFFFFF, or anything
            word = draw(
                st.sampled_from([b"\x00\x00", b"\xff\xff", b"\xff\xff\xff\xff", b"\x00" * 4])
                | st.binary(min_size=2, max_size=4)
            )
            out[at : at + len(word)] = word
        if not out:
            break
    return bytes(out)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes]:
    return _base(tmp_path_factory.mktemp("fuzz-base"))


# A value with the wrong VR: Rows (0028,0010) as DS or XX (see the module text).
REGRESSIONS = [
    ("rows_as_ds", b"\x28\x00\x10\x00US\x02\x00", b"\x28\x00\x10\x00DS\x02\x00"),
    ("rows_as_xx", b"\x28\x00\x10\x00US\x02\x00", b"\x28\x00\x10\x00XX\x02\x00"),
]


@pytest.mark.parametrize(("name", "old", "new"), REGRESSIONS)
def test_regressions_fail_with_a_reason(
    base: tuple[bytes, bytes], name: str, old: bytes, new: bytes
) -> None:
    meta, body = base
    data = meta + body.replace(old, new, 1)
    with pytest.raises(UnsupportedImage):  # a reason, not ValueError/NotImplementedError
        decode(read_dataset(data))


def test_fuzz_ingest_and_decode_in_process(tmp_path: Path, base: tuple[bytes, bytes]) -> None:
    meta, body = base
    engine = db.make_engine(f"sqlite:///{tmp_path}/index.db")
    db.upgrade(engine)
    store = FileStore(tmp_path / "store")
    ingestor = Ingestor(store, db.make_sessionmaker(engine), process_max_attempts=1)
    outcomes: dict[str, int] = {}

    @settings(FUZZ, max_examples=200)
    @given(mutated(body))
    def one(data: bytes) -> None:
        try:
            ingestor.ingest(meta + data, Received(source="local"))
            outcomes["stored"] = outcomes.get("stored", 0) + 1
        except IngestError as e:
            outcomes[type(e).__name__] = outcomes.get(type(e).__name__, 0) + 1
        try:
            decode(read_dataset(meta + data))
        except UnsupportedImage:
            pass

    one()
    engine.dispose()
    assert sum(outcomes.values()) >= 100, outcomes
    assert "stored" in outcomes and len(outcomes) >= 3, outcomes  # both ways were exercised
    # nothing written beside the store and the index
    assert {p.name for p in tmp_path.iterdir()} <= {
        "store",
        "index.db",
        "index.db-wal",
        "index.db-shm",
    }


@pytest.fixture(scope="module")
def node(
    tmp_path_factory: pytest.TempPathFactory, tiny_models: dict[str, Path]
) -> Iterator[NodeProcess]:
    folder = tmp_path_factory.mktemp("fuzz-node")
    cfg = node_config(folder, tiny_models, None)
    cfg["workers"]["poll_s"] = 0.1
    n = NodeProcess(folder, cfg).start()
    try:
        yield n
    finally:
        n.stop()


def test_fuzz_c_store_over_an_association(
    node: NodeProcess, base: tuple[bytes, bytes], tmp_path: Path
) -> None:
    meta, body = base
    ae = AE(ae_title="FUZZER")
    ae.add_requested_context(CR, ["1.2.840.10008.1.2.1"])
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 20
    statuses: dict[int, int] = {}
    path = tmp_path / "m.dcm"

    @settings(FUZZ, max_examples=40)
    @given(mutated(body))
    def one(data: bytes) -> None:
        path.write_bytes(meta + data)
        assoc = ae.associate("127.0.0.1", node.dimse_port, ae_title=node.ae_title)
        assert assoc.is_established
        _config.STORE_SEND_CHUNKED_DATASET = True
        try:
            status = assoc.send_c_store(path)
        finally:
            _config.STORE_SEND_CHUNKED_DATASET = False
            if assoc.is_established:
                assoc.release()
        code = int(status.Status)
        statuses[code] = statuses.get(code, 0) + 1
        # stored, does not match (bad UIDs), cannot understand; never 0x0110 (a bug)
        assert code in (0x0000, 0xA900, 0xC000), hex(code)

    one()
    assert statuses.get(0, 0) and len(statuses) >= 2, statuses  # both ways were exercised
    assert node.proc is not None and node.proc.poll() is None
    node.wait_idle(timeout=180)
    # what was stored and could not be processed failed with a reason, never with a traceback
    errors = [j.last_error or "" for j in node.jobs() if j.state == "failed"]
    assert all(e.startswith("cannot process") for e in errors), errors
    assert "Traceback" not in node.log_text(), node.log_text()[-3000:]


def test_fuzz_stow_rs(node: NodeProcess, base: tuple[bytes, bytes]) -> None:
    meta, body = base
    codes: dict[int, int] = {}

    @settings(FUZZ, max_examples=40)
    @given(mutated(body), st.booleans(), st.integers(0, 3))
    def one(data: bytes, damage_framing: bool, cut: int) -> None:
        content = multipart([("application/dicom", meta + data)])
        if damage_framing:  # the multipart frame itself cut or mangled
            content = content[: len(content) - 1 - cut * 7] if cut else content.replace(b"--", b"-")
        r = httpx.post(
            f"{node.http_url}/dicom-web/studies",
            content=content,
            headers={
                "Content-Type": (
                    'multipart/related; type="application/dicom"; boundary=sharpray-test-boundary'
                )
            },
            timeout=60,
        )
        codes[r.status_code] = codes.get(r.status_code, 0) + 1
        assert r.status_code in (200, 202, 400, 409), (r.status_code, r.text[:500])

    one()
    assert codes.get(200, 0) and len(codes) >= 2, codes  # both ways were exercised
    assert node.proc is not None and node.proc.poll() is None
    assert httpx.get(f"{node.http_url}/healthz", timeout=5).status_code == 200
    engine = db.make_engine(node.database_url)
    try:
        with engine.connect() as c:
            failed = c.execute(select(Job.last_error).where(Job.state == "failed")).all()
    finally:
        engine.dispose()
    assert all((e or "").startswith("cannot process") for (e,) in failed), failed
