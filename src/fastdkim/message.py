"""Reading messages: the header block as fields, the body as a stream of chunks.

A message is given as bytes-like or as a binary file object.  Only the header
block is held in memory (up to ``max_header_bytes``); the body is read in
``CHUNK`` pieces, so a message of any size is processed in bounded memory.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO, Iterator, List, Optional, Tuple, Union

from . import _core
from .errors import MessageFormatError

__all__ = ["Header", "MessageInput", "ParsedMessage", "read_message", "is_file", "CHUNK", "MAX_HEADER_BYTES"]

CHUNK = 1 << 20
MAX_HEADER_BYTES = 32 << 20

MessageInput = Union[bytes, bytearray, memoryview, BinaryIO]
Header = Tuple[bytes, bytes]  # (lower-cased name, raw field with folding and CRLF)


class HeaderTooLarge(MessageFormatError):
    """The header block is larger than the configured limit."""


@dataclass
class ParsedMessage:
    """A message split into header fields and a body stream.

    ``fields`` are top to bottom, in wire form (CRLF line endings).  ``body``
    yields the body in chunks exactly as stored (line endings untouched: the
    body canonicalizer deals with bare LF when asked to).  ``lf_endings`` tells
    whether the header block used bare LF line endings.
    """

    fields: List[Header]
    body: Iterator[bytes]
    lf_endings: bool
    #: whether bare LF counts as a line ending for this message (resolved option)
    bare_lf: bool = False


def is_file(obj: object) -> bool:
    return hasattr(obj, "read") and not isinstance(obj, (bytes, bytearray, memoryview))


def _first_lf(mv: memoryview) -> int:
    """Offset of the first LF in ``mv``, or -1 (looked for in pieces, without a copy of the whole)."""
    step = 1 << 16
    for i in range(0, len(mv), step):
        j = bytes(mv[i:i + step]).find(b"\n")
        if j >= 0:
            return i + j
    return -1


def _bytes_body(data: memoryview) -> Iterator[bytes]:
    for i in range(0, len(data), CHUNK):
        yield data[i:i + CHUNK]  # type: ignore[misc]


def _file_body(head: bytes, fh: BinaryIO) -> Iterator[bytes]:
    if head:
        yield head
    while True:
        chunk = fh.read(CHUNK)
        if not chunk:
            return
        if not isinstance(chunk, (bytes, bytearray)):
            raise MessageFormatError("message file must be opened in binary mode")
        yield chunk


def _split(buf: bytes, body_start: int, bare_lf: bool) -> Tuple[List[Header], bool]:
    """The header fields of ``buf`` (the message, or at least its header
    block) whose body starts at ``body_start`` (-1: no body), and whether the
    header block uses bare LF line endings."""
    if not bare_lf:  # wire form: one copy, without the empty line that ends the block
        return _core.core.split_header_fields(buf if body_start < 0 else buf[:body_start - 2]), False
    head = buf if body_start < 0 else buf[:body_start]
    lf = b"\n" in head and not head.split(b"\n", 1)[0].endswith(b"\r")
    head = _core.core.normalize_line_endings(head)
    if body_start >= 0:
        head = head[:-2]  # the empty line that ends the header block
    return _core.core.split_header_fields(head), lf


def read_message(
    message: MessageInput,
    *,
    bare_lf: Optional[bool] = None,
    max_header_bytes: int = MAX_HEADER_BYTES,
) -> ParsedMessage:
    """Split ``message`` into header fields and a body stream.

    :param bare_lf: treat a bare LF as CRLF.  ``None`` (the default) means
        yes for file objects (mail stored on disk usually has Unix line
        endings); for bytes, yes only when the first line ends in a bare LF
        (such bytes cannot be in wire form), so wire-form bytes are untouched.
    :raises MessageFormatError: the header block exceeds ``max_header_bytes``,
        or the file is not binary.
    :raises TypeError: ``message`` is neither bytes-like nor a binary file.
    """
    if is_file(message):
        fh: BinaryIO = message  # type: ignore[assignment]
        lf = True if bare_lf is None else bare_lf
        buf = bytearray()
        want = 1 << 16
        start = -1
        while True:
            chunk = fh.read(want)
            if isinstance(chunk, str):
                raise MessageFormatError("message file must be opened in binary mode")
            if not chunk:
                break
            buf += chunk
            start = _core.core.find_body_start(buf, lf)
            if start >= 0:
                break
            if len(buf) > max_header_bytes:
                raise HeaderTooLarge("header block larger than %d bytes" % max_header_bytes)
            want = min(want * 2, CHUNK * 8)  # geometric growth keeps re-scans linear overall
        data = bytes(buf)
        if start >= 0 and start > max_header_bytes:
            raise HeaderTooLarge("header block larger than %d bytes" % max_header_bytes)
        fields, lf_endings = _split(data, start, lf)
        rest = data[start:] if start >= 0 else b""
        return ParsedMessage(fields, _file_body(rest, fh), lf_endings, lf)
    if type(message) is bytes:  # the common case, without memoryview overhead
        data: bytes = message
        if bare_lf is None:
            nl = data.find(b"\n")
            lf = nl == 0 or (nl > 0 and data[nl - 1] != 13)
        else:
            lf = bare_lf
        start = _core.core.find_body_start(data, lf)
        end = len(data) if start < 0 else start
        if end > max_header_bytes:
            raise HeaderTooLarge("header block larger than %d bytes" % max_header_bytes)
        fields, lf_endings = _split(data, start, lf)
        if start < 0 or start == len(data):
            chunks: Iterator[bytes] = iter(())
        elif len(data) - start <= CHUNK:
            chunks = iter((data[start:],))
        else:
            chunks = _bytes_body(memoryview(data)[start:])
        return ParsedMessage(fields, chunks, lf_endings, lf)
    if isinstance(message, (bytes, bytearray, memoryview)):
        mv = memoryview(message).cast("B") if isinstance(message, memoryview) else memoryview(message)
        if bare_lf is None:
            nl = _first_lf(mv)
            lf = nl == 0 or (nl > 0 and mv[nl - 1] != 13)
        else:
            lf = bare_lf
        start = _core.core.find_body_start(mv, lf)
        end = len(mv) if start < 0 else start
        if end > max_header_bytes:
            raise HeaderTooLarge("header block larger than %d bytes" % max_header_bytes)
        fields, lf_endings = _split(bytes(mv[:end]), start if start >= 0 else -1, lf)
        body = mv[start:] if start >= 0 else memoryview(b"")
        return ParsedMessage(fields, _bytes_body(body), lf_endings, lf)
    raise TypeError("message must be bytes-like or a binary file object, not %s" % type(message).__name__)
