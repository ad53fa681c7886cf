"""DIMSE receiver: C-ECHO and C-STORE SCP (pynetdicom).

The C-STORE handler is thin: take the bytes as received (no decoding), hand them to the ingestor,
map its errors to DIMSE statuses. Processing never runs here.
"""

from __future__ import annotations

import functools
import logging
import socket
import threading
import types
from typing import Any, cast

from pynetdicom import AE, evt
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.pdu import A_ASSOCIATE_RQ
from pynetdicom.transport import AssociationSocket, ThreadedAssociationServer

from node.config import NodeSettings
from node.ingest import Ingestor
from node.instance_index import Received
from node.metrics import Metrics
from node.receive.answers import INTERNAL_ERROR, answer_for
from node.receive.guard import ConnectionGuard, GuardedAE, GuardedServer, start_reaper
from node.receive.spool import AssociationTap, BufferPool
from node.receive.tls import server_context
from node.sop import ACCEPTED_TRANSFER_SYNTAXES, PROCESSABLE_SOP_CLASSES, VERIFICATION

log = logging.getLogger(__name__)

# DIMSE C-STORE statuses (PS3.4 Annex B.2.3)
SUCCESS = 0x0000


class DimseReceiver:
    def __init__(self, settings: NodeSettings, ingestor: Ingestor, metrics: Metrics) -> None:
        self.settings = settings
        self.ingestor = ingestor
        self.metrics = metrics
        self.server: ThreadedAssociationServer | None = None
        self._called: dict[object, str] = {}  # association -> called AE title of its request
        self._stop = threading.Event()
        self.guard = ConnectionGuard(
            max_pending=settings.max_pending_connections,
            per_peer=settings.max_pending_per_peer,
            timeout_s=settings.association_timeout_s,
            on_refused=self._on_connection_refused,
        )
        # data sets written to the store while they arrive (node/receive/spool.py); only where
        # the store writes with O_DIRECT (buffered writes would not overlap as well)
        store = getattr(ingestor, "store", None)  # None where only the AE is built
        self.spooling = bool(store is not None and store.direct_io)
        self._pool = BufferPool()
        self._taps: dict[object, AssociationTap] = {}

    def build_ae(self) -> AE:
        ae = GuardedAE(ae_title=self.settings.ae_title)
        ae.maximum_pdu_size = self.settings.max_pdu
        ae.maximum_associations = self.settings.max_associations
        ae.network_timeout = self.settings.network_timeout_s
        ae.dimse_timeout = self.settings.network_timeout_s
        ae.acse_timeout = self.settings.network_timeout_s
        ae.require_called_aet = self.settings.check_called_ae
        for sop in PROCESSABLE_SOP_CLASSES:
            ae.add_supported_context(sop, list(ACCEPTED_TRANSFER_SYNTAXES))
        ae.add_supported_context(VERIFICATION)
        if self.settings.allowed_calling_aes:
            ae.require_calling_aet = list(self.settings.allowed_calling_aes)
        return ae

    def start(self) -> tuple[str, int]:
        ae = self.build_ae()
        handlers: list[Any] = [
            (evt.EVT_CONN_OPEN, self._on_conn_open),
            (evt.EVT_CONN_CLOSE, self._on_conn_close),
            (evt.EVT_C_ECHO, self._on_echo),
            (evt.EVT_C_STORE, self._on_store),
            (evt.EVT_PDU_RECV, self._on_pdu),
            (evt.EVT_REJECTED, self._on_rejected),
        ]
        handlers += [
            (evt.EVT_ESTABLISHED, self._on_settled),
            (evt.EVT_ABORTED, self._on_settled),
        ]
        try:
            server = cast(
                GuardedServer,
                ae.make_server(
                    (self.settings.bind, self.settings.dimse_port),
                    evt_handlers=handlers,
                    ssl_context=server_context(self.settings.tls),
                    server_class=GuardedServer,
                ),
            )
        except OSError as e:
            raise OSError(
                f"cannot listen for DICOM on {self.settings.bind}:{self.settings.dimse_port} "
                f"({e.strerror or e})"
            ) from e
        server.guard = self.guard
        ae._servers.append(server)  # so that AE.shutdown() stops it too
        threading.Thread(target=server.serve_forever, name="dimse-accept", daemon=True).start()
        start_reaper(self.guard, self._stop)
        self.server = server
        host, port = server.server_address[:2]
        log.info(
            "DIMSE SCP %s listening on %s:%s%s",
            self.settings.ae_title,
            host,
            port,
            " (TLS)" if self.settings.tls.enabled else "",
        )
        return str(host), int(port)

    def stop(self) -> None:
        self._stop.set()
        if self.server is not None:
            self.server.shutdown()
            self.server = None

    def _on_conn_open(self, event: evt.Event) -> None:
        # the store may have found out since that its filesystem refuses O_DIRECT
        if self.spooling and self.ingestor.store.direct_io:
            assoc = event.assoc

            def transfer_syntax(context_id: int) -> str | None:
                for cx in assoc.accepted_contexts:
                    if cx.context_id == context_id and cx.transfer_syntax:
                        return str(cx.transfer_syntax[0])
                return None

            self._taps[assoc] = AssociationTap(self.ingestor.store, self._pool, transfer_syntax)
        self._tune_socket(event)

    def _on_conn_close(self, event: evt.Event) -> None:
        self._on_settled(event)
        self._called.pop(event.assoc, None)
        tap = self._taps.pop(event.assoc, None)
        if tap is not None:
            tap.close()

    def _on_pdu(self, event: evt.Event) -> None:
        if isinstance(event.pdu, A_ASSOCIATE_RQ):  # kept for the log line of a rejection
            self._called[event.assoc] = str(event.pdu.called_ae_title).strip()
            return
        tap = self._taps.get(event.assoc)
        if tap is not None:
            tap.on_pdu(event.pdu)

    def _on_settled(self, event: evt.Event) -> None:
        """The connection associated, or ended: it no longer counts as pending."""
        sock = event.assoc.dul.socket
        if sock is not None and sock.socket is not None:
            self.guard.settled(sock.socket)

    def _on_connection_refused(self, reason: str, peer: str, text: str) -> None:
        self.metrics.connections_refused.labels(reason=reason).inc()
        log.warning("connection from %s closed: %s", peer, text)
        if reason == "tls_handshake":
            self.ingestor.audit("connection.refused", actor=peer, detail=f"{peer}: {text}")

    def _on_rejected(self, event: evt.Event) -> None:
        """An association was refused: say why, with the peer's address, in the log, the
        metrics and the audit trail (AE titles and addresses only)."""
        assoc = event.assoc
        self._on_settled(event)
        calling = str(assoc.requestor.ae_title).strip()
        called = self._called.pop(assoc, "")
        peer = f"{assoc.requestor.address}:{assoc.requestor.port}"
        allowed = self.settings.allowed_calling_aes
        if allowed and calling not in allowed:
            reason, why = "calling_ae", f"calling AE title {calling!r} is not allowed (reason 3)"
        elif self.settings.check_called_ae and called != self.settings.ae_title:
            reason = "called_ae"
            why = f"called AE title {called!r} is not {self.settings.ae_title!r} (reason 7)"
        else:
            reason = "limit"
            why = f"more than {self.settings.max_associations} associations (local limit)"
        self.metrics.associations_rejected.labels(reason=reason).inc()
        log.warning("association from %s refused: %s", peer, why)
        self.ingestor.audit("association.rejected", actor=calling or peer, detail=f"{peer}: {why}")

    def _tune_socket(self, event: evt.Event) -> None:
        cap_bytes = self.settings.pdu_length_cap_mb * 1024 * 1024
        # Without TCP_NODELAY each C-STORE round trip can stall ~40 ms (Nagle + delayed ACK).
        assoc_sock = event.assoc.dul.socket
        if assoc_sock is not None and assoc_sock.socket is not None:
            assoc_sock.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            # read each PDU into one buffer as it arrives, refusing absurd lengths (this
            # connection only)
            recv = functools.partial(_recv_exact, cap=cap_bytes)
            assoc_sock.recv = types.MethodType(recv, assoc_sock)  # type: ignore[method-assign]

    @staticmethod
    def _on_echo(event: evt.Event) -> int:
        return SUCCESS

    def _on_store(self, event: evt.Event) -> int:
        req = cast(C_STORE, event.request)
        requestor = event.assoc.requestor
        received = Received(
            source="dimse",
            calling_ae=str(requestor.ae_title).strip(),
            called_ae=str(event.assoc.acceptor.ae_title).strip(),
            peer_host=str(requestor.address),
        )
        sop_uid = str(req.AffectedSOPInstanceUID)
        try:
            data = event.encoded_dataset()
            tap = self._taps.get(event.assoc)
            result = self.ingestor.ingest(
                data,
                received,
                expect_sop_class=str(req.AffectedSOPClassUID),
                expect_sop_instance=sop_uid,
                prewritten=tap.take(sop_uid, data) if tap is not None else None,
            )
        except Exception as e:  # every refusal from one table; a bug must not kill the thread
            answer = answer_for(e)
            if answer is INTERNAL_ERROR:
                log.exception("C-STORE of %s failed unexpectedly", _safe_uid(sop_uid))
            return self._reject(answer.metric, answer.dimse_status, sop_uid, received, e)
        counter = self.metrics.duplicates if result.duplicate else self.metrics.received
        counter.labels(source="dimse").inc()
        self.metrics.received_bytes.labels(source="dimse").inc(len(data))
        log.info(
            "stored %s from %s (%s)%s",
            result.sop_instance_uid,
            received.calling_ae,
            received.peer_host,
            " (duplicate, ignored)" if result.duplicate else "",
        )
        return SUCCESS

    def _reject(
        self, reason: str, status: int, sop_uid: str, received: Received, err: Exception
    ) -> int:
        self.metrics.rejected.labels(source="dimse", reason=reason).inc()
        log.warning(
            "C-STORE of %s from %s refused with 0x%04X: %s",
            _safe_uid(sop_uid),
            received.calling_ae,
            status,
            err,
        )
        return status


#: Memory set aside before any byte of a PDU has arrived; the buffer grows (doubling) as the
#: bytes come, so a peer claiming a long PDU costs only what it really sends.
FIRST_CHUNK = 4 * 1024 * 1024


def _recv_exact(self: AssociationSocket, nr_bytes: int, cap: int = 1 << 31) -> bytearray:
    """``AssociationSocket.recv`` reading into large buffers instead of 4 KiB steps.

    pynetdicom 3.0 reads a PDU 4 KiB per ``recv`` call and grows a bytearray each time: about
    2,000 calls per 8 MB image. Same contract: blocks until ``nr_bytes`` are read, returns what
    was read when the peer closes first. Measured with a null handler, 100 × 8 MB from
    storescu: 69 -> 87 images/s (docs/performance.md).

    A claimed length above ``cap`` closes the connection at once, before any allocation (six
    bytes ``01 00 FF FF FF FF`` once made the node reserve 4 GiB); below it, memory grows only as
    bytes arrive (:data:`FIRST_CHUNK`, then doubling).
    """
    assert self.socket is not None
    if nr_bytes > cap:
        log.warning(
            "connection from %s closed: a PDU of %d bytes claimed, the cap is %d",
            _peer(self),
            nr_bytes,
            cap,
        )
        self.close()
        return bytearray()
    buf = bytearray(min(nr_bytes, FIRST_CHUNK))
    got = 0
    while got < nr_bytes:
        if got == len(buf):
            buf.extend(bytes(min(len(buf), nr_bytes - len(buf))))
        with memoryview(buf) as view:
            n = self.socket.recv_into(view[got:], len(buf) - got)
        if not n:
            del buf[got:]
            return buf
        got += n
    return buf


def _peer(sock: AssociationSocket) -> str:
    try:
        name = sock.socket.getpeername()  # type: ignore[union-attr]
    except (OSError, AttributeError):
        return "a peer"
    return f"{name[0]}:{name[1]}" if isinstance(name, tuple) and len(name) >= 2 else "a peer"


def _safe_uid(value: str) -> str:
    """UIDs are safe to log; anything else a peer put there is not echoed."""
    from storage.files import UID_RE

    return value if len(value) <= 64 and UID_RE.match(value) else "<invalid UID>"
