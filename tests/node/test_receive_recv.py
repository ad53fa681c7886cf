"""node.receive.dimse._recv_exact: pynetdicom's recv contract, read into one buffer."""

from __future__ import annotations

import socket
import threading
from types import SimpleNamespace
from typing import Any, cast

from node.receive.dimse import _recv_exact


def _reader(sock: socket.socket) -> Any:
    return cast(Any, SimpleNamespace(socket=sock))


def test_reads_exactly_the_bytes_asked_for_across_many_sends() -> None:
    a, b = socket.socketpair()
    payload = bytes(range(256)) * 4096  # 1 MiB, sent in odd pieces
    extra = b"next PDU"

    def send() -> None:
        for i in range(0, len(payload), 7001):
            a.sendall(payload[i : i + 7001])
        a.sendall(extra)

    t = threading.Thread(target=send)
    t.start()
    got = _recv_exact(_reader(b), len(payload))
    t.join()
    assert isinstance(got, bytearray) and bytes(got) == payload
    assert bytes(_recv_exact(_reader(b), len(extra))) == extra  # nothing of the next one was taken
    a.close()
    b.close()


def test_returns_what_arrived_when_the_peer_closes() -> None:
    a, b = socket.socketpair()
    a.sendall(b"partial")
    a.close()
    got = _recv_exact(_reader(b), 100)
    assert bytes(got) == b"partial"
    b.close()


def test_a_length_above_the_cap_closes_without_allocating() -> None:
    a, b = socket.socketpair()
    closed: list[bool] = []
    reader = cast(Any, SimpleNamespace(socket=b, close=lambda: closed.append(True)))
    assert _recv_exact(reader, 0xFFFFFFFF, cap=1024) == bytearray()
    assert closed == [True]
    a.close()
    b.close()


def test_memory_grows_only_with_what_arrives() -> None:
    """A peer that claims 1 GiB and sends 10 bytes costs the first chunk, not 1 GiB."""
    a, b = socket.socketpair()
    a.sendall(b"0123456789")
    a.close()
    got = _recv_exact(_reader(b), 1 << 30, cap=1 << 31)
    assert bytes(got) == b"0123456789"
    b.close()
