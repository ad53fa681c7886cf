"""What a stranger can hold on the DICOM port before an association is accepted, bounded.

pynetdicom's server does the TLS handshake on its accept thread (one idle TLS client blocks every
other), counts a connection that never sent a byte against ``max_associations`` until the
network timeout, and knows no per-address limit. :class:`GuardedServer` and :class:`GuardedAE`
change that:

* **pending connections** (accepted, no association yet) are limited per peer address
  (``node.max_pending_per_peer``) and in total (``node.max_pending_connections``); a connection
  over a limit is closed at once;
* every pending connection has ``node.association_timeout_s`` to complete its TLS handshake and
  its A-ASSOCIATE-RQ, else it is closed (a reaper thread checks twice a second);
* the TLS handshake runs on the connection's own thread, under that time limit;
* ``node.max_associations`` counts **established** associations only, so connections that are
  still handshaking (or stalled) cannot lock legitimate modalities out.

Every refusal is logged with the peer address and the reason (no patient data can be involved at
this stage) and counted in ``sharpray_connections_refused_total{reason}``.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pynetdicom import AE
from pynetdicom.transport import ThreadedAssociationServer

log = logging.getLogger(__name__)

Refused = Callable[[str, str, str], None]  # reason, peer, text


@dataclass
class _Pending:
    peer: str
    since: float
    sock: socket.socket


@dataclass
class ConnectionGuard:
    """The bookkeeping of pending connections (shared by the server and the event handlers)."""

    max_pending: int
    per_peer: int
    timeout_s: float
    on_refused: Refused
    _pending: dict[int, _Pending] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def admit(self, sock: socket.socket, peer: str) -> bool:
        """Whether a new connection from ``peer`` may wait for its association."""
        with self._lock:
            same = sum(1 for p in self._pending.values() if p.peer == peer)
            total = len(self._pending)
            if same >= self.per_peer:
                reason = "per_peer_limit"
                text = f"{same} connections from this address are already waiting to associate"
            elif total >= self.max_pending:
                reason = "pending_limit"
                text = f"{total} connections are already waiting to associate"
            else:
                self._pending[id(sock)] = _Pending(peer, time.monotonic(), sock)
                return True
        self.on_refused(reason, peer, text)
        return False

    def settled(self, sock: object) -> None:
        """The connection associated, was rejected or closed: no longer pending."""
        with self._lock:
            self._pending.pop(id(sock), None)

    def pending_count(self) -> int:
        with self._lock:
            return len(self._pending)

    def reap(self) -> None:
        """Close pending connections older than the time limit."""
        now = time.monotonic()
        with self._lock:
            late = [(k, p) for k, p in self._pending.items() if now - p.since > self.timeout_s]
            for k, _ in late:
                del self._pending[k]
        for _, p in late:
            self.on_refused(
                "association_timeout",
                p.peer,
                f"no association within {self.timeout_s:g} s (TLS handshake or "
                "A-ASSOCIATE-RQ not completed)",
            )
            _close(p.sock)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


class GuardedAE(AE):
    """An AE whose ``maximum_associations`` limits established associations only.

    pynetdicom rejects a request when its acceptor threads (pending ones included) outnumber
    ``maximum_associations``; the property adds the pending ones to the configured limit, so the
    request is refused exactly when ``limit`` associations are already established.
    """

    _established_limit = 10

    @property
    def maximum_associations(self) -> int:
        pending = sum(1 for a in self.active_associations if a.is_acceptor and not a.is_established)
        return max(1, self._established_limit - 1 + pending)

    @maximum_associations.setter
    def maximum_associations(self, value: int) -> None:
        self._established_limit = max(1, int(value))


class GuardedServer(ThreadedAssociationServer):
    """pynetdicom's threaded server with :class:`ConnectionGuard` on its accept path."""

    guard: ConnectionGuard

    def get_request(self) -> tuple[socket.socket, tuple[str, int]]:
        assert self.socket is not None
        client, address = self.socket.accept()
        if self.ssl_context:  # the handshake happens on the connection's thread, not here
            client = self.ssl_context.wrap_socket(
                client, server_side=True, do_handshake_on_connect=False
            )
        return client, address

    def verify_request(self, request: Any, client_address: Any) -> bool:
        return self.guard.admit(request, str(client_address[0]))

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        if isinstance(request, ssl.SSLSocket):
            try:
                request.settimeout(self.guard.timeout_s)
                request.do_handshake()
                request.settimeout(None)
            except (OSError, ValueError) as e:
                self.guard.settled(request)
                self.guard.on_refused(
                    "tls_handshake", str(client_address[0]), f"TLS handshake failed ({e})"
                )
                _close(request)
                return
        super().process_request_thread(request, client_address)


def start_reaper(guard: ConnectionGuard, stop: threading.Event, interval: float = 0.5) -> None:
    """A daemon thread that closes pending connections past their time limit."""

    def run() -> None:
        while not stop.wait(interval):
            try:
                guard.reap()
            except Exception:  # the reaper must outlive any one bad socket
                log.exception("connection reaper")

    threading.Thread(target=run, name="dimse-reaper", daemon=True).start()
