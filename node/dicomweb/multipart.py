"""multipart/related (RFC 2387) for DICOMweb: a streaming reader that spools parts to files, a
streaming writer, and media-type / Accept header parsing.

The reader never holds a whole body or a whole part in memory: python-multipart's push parser
hands over each part in slices, and each slice goes straight to a temporary file. A part larger
than the per-part limit stops being written (its file is removed) but the body is still parsed,
so the parts after it are read as usual.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

CRLF = b"\r\n"
CHUNK = 1024 * 1024
MAX_BOUNDARY = 200


class MultipartError(ValueError):
    """The body is not well-formed multipart/related (HTTP 400)."""


def parse_media_type(value: str | None) -> tuple[str, dict[str, str]]:
    """``'multipart/related; type="application/dicom"; boundary=x'`` ->
    ``('multipart/related', {'type': 'application/dicom', 'boundary': 'x'})`` (names lowercased)."""
    # header values are latin-1 on the wire; anything else (a query parameter) is replaced
    text = (value or "").encode("latin-1", "replace").decode("latin-1")
    media, params = parse_options_header(text)
    return (
        media.decode("latin-1").strip().lower(),
        {
            k.decode("latin-1").strip().lower(): v.decode("latin-1").strip()
            for k, v in params.items()
        },
    )


@dataclass(frozen=True)
class MediaRange:
    """One entry of an Accept header."""

    media_type: str  # lowercased, e.g. "multipart/related", "image/png", "*/*"
    params: dict[str, str]  # lowercased names, without q
    q: float

    def matches(self, media_type: str) -> bool:
        """Does this range accept ``media_type`` (a concrete type)?"""
        if self.media_type in ("*/*", media_type):
            return True
        major = media_type.split("/", 1)[0]
        return self.media_type == f"{major}/*"


def _split_outside_quotes(text: str, sep: str) -> list[str]:
    out: list[str] = []
    cur: list[str] = []
    quoted = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == sep and not quoted:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    return out


def parse_accept(header: str | None) -> list[MediaRange]:
    """The Accept header's media ranges, most preferred first (q=0 ranges dropped).

    A missing or empty header is ``*/*``.
    """
    if not header or not header.strip():
        return [MediaRange("*/*", {}, 1.0)]
    ranges: list[tuple[float, int, MediaRange]] = []
    for i, item in enumerate(_split_outside_quotes(header, ",")):
        if not item.strip():
            continue
        media, params = parse_media_type(item)
        try:
            q = float(params.pop("q", "1"))
        except ValueError:
            q = 1.0
        if q <= 0 or "/" not in media:
            continue
        ranges.append((-q, i, MediaRange(media, params, q)))
    return [r for _, _, r in sorted(ranges, key=lambda t: (t[0], t[1]))]


@dataclass
class SpooledPart:
    """One part of a request body, on disk (``path``) unless it was over the limit."""

    index: int  # 1-based position in the body
    headers: dict[str, str] = field(default_factory=dict)  # lowercased names
    path: Path | None = None
    size: int = 0
    too_large: bool = False

    @property
    def media_type(self) -> str:
        return parse_media_type(self.headers.get("content-type"))[0]

    def read(self) -> bytes:
        if self.path is None:
            raise MultipartError(f"part {self.index} was not kept")
        return self.path.read_bytes()

    def discard(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)
            self.path = None


class PartSpooler:
    """Feed a multipart body chunk by chunk; collect the parts that finished, spooled to files.

    Spool files are ``<folder>/stow-<uuid>.part`` (``FileStore.clean_orphans`` removes any a
    crash leaves behind). ``close`` removes whatever is still on disk.
    """

    def __init__(self, boundary: str, folder: Path, max_part_bytes: int) -> None:
        # RFC 2046 allows 70 characters; Orthanc's STOW-RS client sends 73, so be lenient
        if not boundary or len(boundary) > MAX_BOUNDARY:
            raise MultipartError(
                f"the multipart boundary is missing or longer than {MAX_BOUNDARY} characters"
            )
        self.folder = folder
        self.max_part_bytes = max_part_bytes
        self.completed: list[SpooledPart] = []
        self.ended = False
        self._count = 0
        self._part: SpooledPart | None = None
        self._file: BinaryIO | None = None
        self._field = bytearray()
        self._value = bytearray()
        self._all: list[SpooledPart] = []
        try:
            self._parser = MultipartParser(
                boundary.encode("latin-1"),
                callbacks={
                    "on_part_begin": self._on_part_begin,
                    "on_header_field": self._on_header_field,
                    "on_header_value": self._on_header_value,
                    "on_header_end": self._on_header_end,
                    "on_headers_finished": self._on_headers_finished,
                    "on_part_data": self._on_part_data,
                    "on_part_end": self._on_part_end,
                    "on_end": self._on_end,
                },
                max_header_count=32,
            )
        except (ValueError, UnicodeError) as e:
            raise MultipartError(f"unusable multipart boundary ({e})") from e

    # -- feeding -----------------------------------------------------------------------------
    def feed(self, chunk: bytes) -> list[SpooledPart]:
        """Parse ``chunk``; return the parts completed by it (their files are closed)."""
        if self.ended:
            return []  # an epilogue after the closing boundary is ignored (RFC 2046)
        try:
            self._parser.write(chunk)
        except MultipartParseError as e:
            raise MultipartError(f"malformed multipart body ({e})") from None
        done, self.completed = self.completed, []
        return done

    def finish(self) -> None:
        """The body ended: it must have reached the closing boundary."""
        self._parser.finalize()
        if not self.ended:
            raise MultipartError("the multipart body ends before its closing boundary")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        for part in self._all:
            part.discard()

    # -- python-multipart callbacks ----------------------------------------------------------
    def _on_part_begin(self) -> None:
        self._count += 1
        self._part = SpooledPart(index=self._count)
        self._all.append(self._part)

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _on_header_end(self) -> None:
        assert self._part is not None
        name = self._field.decode("latin-1").strip().lower()
        self._part.headers[name] = self._value.decode("latin-1").strip()
        self._field.clear()
        self._value.clear()

    def _on_headers_finished(self) -> None:
        assert self._part is not None
        path = self.folder / f"stow-{uuid.uuid4().hex}.part"
        self._file = path.open("wb")
        self._part.path = path

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        part = self._part
        assert part is not None
        part.size += end - start
        if part.too_large:
            return
        if part.size > self.max_part_bytes:
            part.too_large = True
            if self._file is not None:
                self._file.close()
                self._file = None
            part.discard()
            return
        if self._file is not None:
            self._file.write(data[start:end])

    def _on_part_end(self) -> None:
        part = self._part
        assert part is not None
        if self._file is not None:
            self._file.close()
            self._file = None
        self.completed.append(part)
        self._part = None

    def _on_end(self) -> None:
        self.ended = True


def new_boundary() -> str:
    return uuid.uuid4().hex


def write_multipart(parts: Iterable[tuple[str, Iterable[bytes]]], boundary: str) -> Iterator[bytes]:
    """Serialise parts, each (its Content-Type, its data in chunks), as a multipart body."""
    delimiter = b"--" + boundary.encode("latin-1")
    for content_type, chunks in parts:
        yield delimiter + CRLF + b"Content-Type: " + content_type.encode("latin-1") + CRLF + CRLF
        yield from chunks
        yield CRLF
    yield delimiter + b"--" + CRLF


def file_chunks(path: Path, size: int = CHUNK) -> Iterator[bytes]:
    with path.open("rb") as f:
        while chunk := f.read(size):
            yield chunk
