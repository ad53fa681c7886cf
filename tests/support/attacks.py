"""Connection-level attacks on a DICOM port, from a chosen loopback source address (Linux routes
all of 127/8 to lo): used by tests/security/test_connection_limits.py and bench/attacks.py."""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

ATTACKER = "127.0.0.2"


def connect(port: int, stack: ExitStack, source: str = ATTACKER) -> socket.socket | None:
    """A TCP connection to 127.0.0.1:port from ``source``, closed when ``stack`` closes."""
    s = socket.socket()
    try:
        s.bind((source, 0))
        s.settimeout(5)
        s.connect(("127.0.0.1", port))
    except OSError:
        s.close()
        return None
    stack.callback(s.close)
    return s


def stalled_rq() -> bytes:
    """The first bytes of an A-ASSOCIATE-RQ that announces 68 bytes and never sends them."""
    return struct.pack(">BBL", 0x01, 0x00, 68) + b"\x00\x01\x00\x00SHARPRAY"


HUGE_PDU_HEADER = bytes.fromhex("0100FFFFFFFF")  # an A-ASSOCIATE-RQ claiming 4 GiB


def _send(s: socket.socket, data: bytes) -> None:
    try:
        s.sendall(data)
    except OSError:
        pass


@contextmanager
def flood(
    port: int, half_open: int = 50, stalled: int = 50, huge: int = 1, idle: int = 0
) -> Iterator[list[socket.socket]]:
    """Hold that many connections open while the block runs: never a byte (``half_open`` and
    ``idle``, e.g. TLS clients that never handshake), a stalled A-ASSOCIATE-RQ, a 4 GiB header."""
    with ExitStack() as stack:
        held = []
        for n, data in ((half_open + idle, b""), (stalled, stalled_rq()), (huge, HUGE_PDU_HEADER)):
            for _ in range(n):
                s = connect(port, stack)
                if s is None:
                    continue
                if data:
                    _send(s, data)
                held.append(s)
        yield held


def connect_and_close(port: int, n: int = 16) -> None:
    """``n`` connections that close at once without a byte."""
    with ExitStack() as stack:
        for _ in range(n):
            connect(port, stack)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")
