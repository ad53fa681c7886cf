"""C-STORE SCU to a DICOM destination, with failures classified as transient or permanent."""

from __future__ import annotations

import logging
import socket
import ssl
from pathlib import Path
from typing import Any

import pydicom
from pynetdicom import AE, evt
from pynetdicom.association import Association

from node.config import DimseDestination, TlsSettings
from node.dispatch.errors import PermanentFailure, TransientFailure

log = logging.getLogger(__name__)

# C-STORE failure statuses worth retrying (PS3.4 B.2.3: A7xx out of resources)
_TRANSIENT_STATUS_PREFIX = 0xA700


def _nodelay(event: evt.Event) -> None:
    assoc_sock = event.assoc.dul.socket
    if assoc_sock is not None and assoc_sock.socket is not None:
        assoc_sock.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _Negotiation:
    """Collects what the peer answered during association negotiation."""

    def __init__(self) -> None:
        self.reject: tuple[int, str] | None = None
        self.connected = False

    def on_open(self, event: evt.Event) -> None:
        self.connected = True
        _nodelay(event)

    def on_acse(self, event: evt.Event) -> None:
        p: Any = getattr(event, "primitive", None)
        if type(p).__name__ == "A_ASSOCIATE" and getattr(p, "result", None) in (1, 2):
            self.reject = (int(p.result), f"{p.result_str}: {p.reason_str}")

    def on_pdu(self, event: evt.Event) -> None:
        # The rejection as it came off the wire: when the peer closes the connection right after
        # its A-ASSOCIATE-RJ, pynetdicom sometimes reports an abort instead of the rejection.
        pdu: Any = getattr(event, "pdu", None)
        if type(pdu).__name__ == "A_ASSOCIATE_RJ" and self.reject is None:
            p: Any = pdu.to_primitive()
            self.reject = (int(p.result), f"{p.result_str}: {p.reason_str}")

    def handlers(self) -> list[Any]:
        return [
            (evt.EVT_CONN_OPEN, self.on_open),
            (evt.EVT_ACSE_RECV, self.on_acse),
            (evt.EVT_PDU_RECV, self.on_pdu),
        ]


def tls_context(tls: TlsSettings) -> ssl.SSLContext:
    """A client TLS context from the destination's settings (PS3.15 B.1 secure transport)."""
    ctx = ssl.create_default_context(
        ssl.Purpose.SERVER_AUTH, cafile=str(tls.ca_file) if tls.ca_file else None
    )
    ctx.check_hostname = tls.check_hostname
    if tls.cert_file is not None:
        ctx.load_cert_chain(str(tls.cert_file), str(tls.key_file) if tls.key_file else None)
    return ctx


def _associate(ae: AE, dest: DimseDestination) -> Association:
    where = dest.describe()
    neg = _Negotiation()
    tls_args = None
    if dest.tls.enabled:
        try:
            tls_args = (tls_context(dest.tls), dest.host)
        except (OSError, ssl.SSLError) as e:
            raise PermanentFailure(f"{where}: TLS settings unusable ({type(e).__name__})") from e
    try:
        assoc = ae.associate(
            dest.host,
            dest.port,
            ae_title=dest.ae_title,
            evt_handlers=neg.handlers(),
            tls_args=tls_args,
        )
    except OSError as e:
        raise TransientFailure(f"{where} could not be reached: {e.strerror or e}") from e
    if assoc.is_established:
        return assoc
    if assoc.is_rejected or neg.reject is not None:
        if neg.reject is not None and neg.reject[0] == 2:
            raise TransientFailure(f"{where} rejected the association for now ({neg.reject[1]})")
        reason = neg.reject[1] if neg.reject else "rejected"
        raise PermanentFailure(f"{where} rejected the association ({reason})")
    if not neg.connected:
        raise TransientFailure(f"{where} could not be reached (connection refused or timed out)")
    if assoc.is_aborted and assoc.rejected_contexts and not assoc.accepted_contexts:
        raise PermanentFailure(f"{where} accepted none of the proposed presentation contexts")
    if assoc.is_aborted:
        raise TransientFailure(f"{where} aborted the association")
    raise TransientFailure(f"{where} could not be reached (connection refused or timed out)")


def echo(dest: DimseDestination, calling_ae: str, timeout_s: float) -> None:
    """C-ECHO a destination; raise TransientFailure or PermanentFailure."""
    ae = AE(ae_title=dest.calling_ae_title or calling_ae)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout_s
    ae.add_requested_context("1.2.840.10008.1.1")
    assoc = _associate(ae, dest)
    try:
        status = assoc.send_c_echo()
    finally:
        assoc.release()
    if not status or int(status.Status) != 0:
        where = dest.describe()
        raise TransientFailure(f"{where} answered C-ECHO with a failure")


def send_file(
    dest: DimseDestination, path: Path, calling_ae: str, timeout_s: float, max_pdu: int
) -> None:
    """Send one Part 10 file; raise TransientFailure or PermanentFailure on failure."""
    ds = pydicom.dcmread(path)
    ts = ds.file_meta.TransferSyntaxUID
    ae = AE(ae_title=dest.calling_ae_title or calling_ae)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout_s
    ae.maximum_pdu_size = max_pdu
    ae.add_requested_context(ds.SOPClassUID, [ts])
    where = dest.describe()
    assoc = _associate(ae, dest)
    try:
        accepted = [cx for cx in assoc.accepted_contexts if cx.abstract_syntax == ds.SOPClassUID]
        if not accepted:
            raise PermanentFailure(
                f"{where} accepted no presentation context for SOP class {ds.SOPClassUID} in {ts}"
            )
        status = assoc.send_c_store(ds)
    finally:
        if assoc.is_established:
            assoc.release()
    if not status or "Status" not in status:
        raise TransientFailure(f"{where} gave no C-STORE response (timeout or abort)")
    code = int(status.Status)
    if code == 0x0000 or (code & 0xF000) == 0xB000:  # success, or warning (stored)
        return
    if (code & 0xFF00) == _TRANSIENT_STATUS_PREFIX:
        raise TransientFailure(f"{where} is out of resources (0x{code:04X})")
    raise PermanentFailure(f"{where} refused the object with status 0x{code:04X}")
