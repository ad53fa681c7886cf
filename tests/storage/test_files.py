"""storage.files: durable writes, O_DIRECT from a reused aligned buffer, and the buffered fallback."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from storage import files
from storage.files import DIRECT_ALIGN, FileStore


@pytest.mark.parametrize("size", [0, 1, DIRECT_ALIGN - 1, DIRECT_ALIGN, 3 * DIRECT_ALIGN + 17])
def test_direct_write_is_byte_exact_for_any_length(tmp_path: Path, size: int) -> None:
    store = FileStore(tmp_path / "store")
    data = os.urandom(size)
    tmp, written = store.write_temp(data)
    assert written == size and tmp.read_bytes() == data
    store.place(tmp, "1.2/1.3/1.4.dcm")
    assert (store.root / "1.2/1.3/1.4.dcm").read_bytes() == data and not tmp.exists()


def test_the_reused_buffer_leaves_nothing_of_an_earlier_file(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "store")
    big, _ = store.write_temp(b"\xff" * (2 * DIRECT_ALIGN))
    small, _ = store.write_temp([b"ab", memoryview(b"cd"), bytearray(b"e")])
    assert small.read_bytes() == b"abcde" and big.read_bytes() == b"\xff" * (2 * DIRECT_ALIGN)
    # the padding written before the truncation was zeros, not the earlier file's bytes
    assert os.stat(small).st_size == 5


def test_filesystems_without_o_direct_get_buffered_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FileStore(tmp_path / "store")
    if not store.direct_io:
        pytest.skip("no O_DIRECT on this platform")
    real_open = os.open

    def refusing_open(path: str, flags: int, mode: int = 0o777) -> int:
        if flags & files.O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_open(path, flags, mode)

    monkeypatch.setattr(files.os, "open", refusing_open)
    tmp, size = store.write_temp(b"x" * 5000)
    assert tmp.read_bytes() == b"x" * 5000 and size == 5000
    assert store.direct_io is False  # decided once, not retried per file
    assert list(store.tmp.iterdir()) == [tmp]  # the refused attempt left nothing behind


def test_other_write_errors_are_raised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = FileStore(tmp_path / "store")

    def full_disk(fd: int, data: object, offset: int) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files.os, "pwrite", full_disk)
    with pytest.raises(OSError) as e:
        store.write_temp(b"y" * 100)
    assert e.value.errno == errno.ENOSPC
    assert not list(store.tmp.iterdir())
