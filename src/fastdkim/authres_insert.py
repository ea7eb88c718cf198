"""Prepending an ``Authentication-Results`` field to a message.

RFC 8601 section 5: a border MTA removes (or renames) any
``Authentication-Results`` field that claims its own authserv-id before
adding its own, so that downstream readers trust only what it wrote.  Here
those fields are removed, and only those: fields of other servers stay.  A
field counts as claiming the authserv-id when a lenient reading of its first
word says so, malformed or not (``mx.example.net(x`` claims
``mx.example.net``), compared without regard to case or a final dot; and a
field that hides such a field behind a bare CR or LF (which some readers take
for a line break) is removed as well.

The message keeps its own line endings (the new field is written with CRLF
or LF as its first header line ends) and every other byte: the header block
is read line by line up to the empty line that ends it, the body copied as it
is, in blocks, whatever its size.  An mbox envelope line (``From sender
date``) at the top stays on top.
"""
from __future__ import annotations

import io
import os
import re
import shutil
from typing import BinaryIO, List, Optional, Tuple, Union

from ._files import atomic_write, file_identity
from .errors import HeaderTooLarge, OptionError
from .message import MAX_HEADER_BYTES, MessageInput, is_file

__all__ = [
    "add_authentication_results",
    "claims_authserv_id",
    "is_envelope_line",
    "write_file_with_authentication_results",
    "write_with_authentication_results",
]

_AR_NAME = re.compile(rb"authentication-results[ \t]*:", re.IGNORECASE)
_AR_NAME_TEXT = re.compile(r"[ \t]*authentication-results[ \t]*:", re.IGNORECASE)
_LINE_BREAK = re.compile(rb"\r\n|\r|\n")
_TOKEN = re.compile(r"[A-Za-z0-9!#$%&'*+\-.^_`{|}~]+")
_WORD = re.compile(r"[^ \t;(]+")
_FIELD_START = re.compile(r"[\x21-\x39\x3b-\x7e]+[ \t]*:")
_HEADER_FIELD = re.compile(rb"From[ \t]*:")


def is_envelope_line(line: bytes) -> bool:
    """Whether ``line`` (the first line of a file) is an mbox envelope line
    (``From sender date``) rather than a header field (``From:``, ``From
    :``).  Raises nothing."""
    return line.startswith(b"From ") and not _HEADER_FIELD.match(line)


def _skip_cfws(text: str, pos: int) -> Optional[int]:
    """The position after whitespace and comments from ``pos``; ``None`` in
    an unterminated comment."""
    while pos < len(text):
        c = text[pos]
        if c in " \t":
            pos += 1
        elif c == "(":
            depth = 0
            while True:
                if pos >= len(text):
                    return None
                c = text[pos]
                if c == "\\":
                    pos += 2
                    continue
                depth += (c == "(") - (c == ")")
                pos += 1
                if depth == 0:
                    break
        else:
            break
    return pos


def claims_authserv_id(field: Union[str, bytes], authserv_id: str) -> bool:
    """Whether the ``Authentication-Results`` field (the whole field, or its
    value) names ``authserv_id`` as its authserv-id, read leniently: after
    any comments, a quoted string (without the whitespace around its
    content), or the token or the word (up to whitespace, ``;`` or ``(``)
    that starts it; compared without regard to case or a final dot.  A
    malformed field claiming it counts.  Raises nothing."""
    text = field.decode("utf-8", "replace") if isinstance(field, (bytes, bytearray)) else str(field)
    m = _AR_NAME_TEXT.match(text)
    if m:
        text = text[m.end():]
    text = text.replace("\r", "").replace("\n", "")
    pos = _skip_cfws(text, 0)
    if pos is None:
        return False
    want = authserv_id.lower().rstrip(".")
    candidates = []
    if text[pos:pos + 1] == '"':
        out, i = [], pos + 1
        while i < len(text) and text[i] != '"':
            if text[i] == "\\":
                i += 1
            out.append(text[i:i + 1])
            i += 1
        candidates.append("".join(out).strip(" \t"))  # (readers that trim it must not trust it)
    else:
        for pattern in (_TOKEN, _WORD):
            w = pattern.match(text, pos)
            if w:
                candidates.append(w.group())
    return any(c.lower().rstrip(".") == want for c in candidates)


def _claims(group: bytes, authserv_id: str) -> bool:
    """Whether the raw field ``group`` (its lines with their endings) is, or
    hides behind a bare CR or LF, an Authentication-Results field claiming
    ``authserv_id``."""
    fields: List[bytes] = []
    for seg in _LINE_BREAK.split(group):
        if seg[:1] in (b" ", b"\t") and fields:
            fields[-1] += seg
        else:
            fields.append(seg)
    for f in fields:
        m = _AR_NAME.match(f)
        if m and claims_authserv_id(f[m.end():], authserv_id):
            return True
    return False


def _field_bytes(field: str, linesep: bytes) -> bytes:
    """``field`` with ``linesep`` line endings and a final one.

    :raises OptionError: ``field`` is not one header field (no name and
        colon, a bare CR, a line that does not continue it).
    """
    if not isinstance(field, str):
        raise TypeError("the field is a str, not %s" % type(field).__name__)
    lines = re.split(r"\r\n|\n", field.rstrip("\r\n"))
    if not _FIELD_START.match(lines[0]):
        raise OptionError("not a header field (name: value): %r" % field[:60])
    for line in lines:
        if "\r" in line:
            raise OptionError("the field holds a bare CR: %r" % field[:60])
    for line in lines[1:]:
        if line[:1] not in (" ", "\t") or not line.strip(" \t"):
            raise OptionError("a continuation line of the field must start with whitespace and hold more: %r"
                              % line[:60])
    return linesep.join(line.encode("utf-8") for line in lines) + linesep


def _read_header(message: BinaryIO) -> Tuple[bytes, List[bytes], bytes, bool]:
    """Read ``message`` up to the end of its header block: the envelope line
    (or ``b""``), the header lines, the empty line that ends the block (or
    ``b""`` at the end of the file) and whether it is LF mail.

    :raises HeaderTooLarge: the header block is larger than the limit
        :func:`fastdkim.message.read_message` applies.
    :raises TypeError: the file is not binary.
    """
    envelope = b""
    lines: List[bytes] = []
    lf: Optional[bool] = None
    size = 0
    while True:
        line = message.readline(MAX_HEADER_BYTES + 1 - size)
        if isinstance(line, str):
            raise TypeError("message file must be opened in binary mode (a text-mode file gives str)")
        if not line:
            return envelope, lines, b"", bool(lf)
        size += len(line)
        if size > MAX_HEADER_BYTES:
            raise HeaderTooLarge("header block larger than %d bytes" % MAX_HEADER_BYTES)
        if not envelope and not lines and is_envelope_line(line):
            envelope = line
            continue
        if lf is None:
            lf = line.endswith(b"\n") and not line.endswith(b"\r\n")
        if line == b"\r\n" or (lf and line == b"\n"):
            return envelope, lines, line, lf
        lines.append(line)


def write_with_authentication_results(out: BinaryIO, message: BinaryIO, field: str, authserv_id: str) -> int:
    """Write the message read from the binary file ``message`` (from its
    current position to its end) to ``out``: ``field`` first (after an mbox
    envelope line), in the message's line endings, then the header fields
    but those that claim ``authserv_id`` (see :func:`claims_authserv_id`),
    then the rest as it is.

    :returns: how many fields were removed.
    :raises OptionError: ``field`` is not one header field (see the module
        documentation).
    :raises HeaderTooLarge: the header block is larger than
        :data:`fastdkim.message.MAX_HEADER_BYTES`.
    :raises TypeError: ``message`` is not a binary file, or ``out`` not a
        file to write to.
    :raises OSError: reading or writing failed.
    """
    if not is_file(message):
        raise TypeError("message must be a binary file object (for bytes, use add_authentication_results), not %s"
                        % type(message).__name__)
    if not hasattr(out, "write"):
        raise TypeError("out must be a binary file object to write to, not %s" % type(out).__name__)
    envelope, lines, blank, lf = _read_header(message)
    groups: List[List[bytes]] = []
    for line in lines:
        if line[:1] in (b" ", b"\t") and groups:
            groups[-1].append(line)
        else:
            groups.append([line])
    kept = [b"".join(g) for g in groups]
    removed = len(kept)
    kept = [g for g in kept if not _claims(g, authserv_id)]
    removed -= len(kept)
    head = _field_bytes(field, b"\n" if lf else b"\r\n")
    out.write(envelope + head + b"".join(kept) + blank)
    shutil.copyfileobj(message, out, 1 << 20)
    return removed


def add_authentication_results(message: MessageInput, field: str, authserv_id: str) -> bytes:
    """``message`` (bytes, or a binary file read from its current position)
    with ``field`` prepended and the fields that claim ``authserv_id``
    removed; see :func:`write_with_authentication_results`.

    :raises OptionError: ``field`` is not one header field.
    :raises HeaderTooLarge: the header block is too large.
    :raises TypeError: ``message`` is neither bytes-like nor a binary file.
    """
    if is_file(message):
        src: BinaryIO = message  # type: ignore[assignment]
    elif isinstance(message, (bytes, bytearray, memoryview)):
        src = io.BytesIO(message)
    else:
        raise TypeError("message must be bytes-like or a binary file object, not %s" % type(message).__name__)
    out = io.BytesIO()
    write_with_authentication_results(out, src, field, authserv_id)
    return out.getvalue()


def write_file_with_authentication_results(
    source: BinaryIO, field: str, authserv_id: str, dest: Union[str, "os.PathLike[str]"], *,
    in_place: bool = False, overwrite: bool = False, read_as: Optional[os.stat_result] = None,
) -> int:
    """Write the message in the open binary file ``source`` (read from its
    start) with ``field`` prepended to the file ``dest``, through a temporary
    file moved into place (:func:`fastdkim._files.atomic_write`): ``dest``
    never holds part of a message.

    ``in_place``: ``dest`` is the file ``source`` was opened from, and is
    replaced only if it still is that very file, unchanged since it was
    read (:func:`fastdkim._files.file_identity` of ``read_as``, its status
    taken when it was opened, before the results in ``field`` were found;
    by default its status now); a file that a mail client moved, removed,
    replaced or wrote to meanwhile is left alone.  Otherwise an existing
    ``dest`` is replaced only with ``overwrite``.

    :returns: how many fields claiming ``authserv_id`` were removed.
    :raises ReplacedMeanwhile: ``in_place``, and ``dest`` is no longer the
        file read, or was written to; nothing was written.
    :raises FileExistsError: ``dest`` exists, and neither ``in_place`` nor
        ``overwrite`` is set.
    :raises OptionError: ``field`` is not one header field.
    :raises HeaderTooLarge: the header block is too large.
    :raises TypeError: ``source`` is not a binary file opened from a file
        (for a path, open it; for bytes, use :func:`add_authentication_results`).
    :raises OSError: reading or writing failed (``dest`` is left as it was).
    """
    if not (is_file(source) and hasattr(source, "seek") and hasattr(source, "fileno")):
        raise TypeError("source must be an open binary file, not %s" % type(source).__name__)
    _field_bytes(field, b"\r\n")  # a bad field is refused before any file is made
    expect = None
    if in_place:
        expect = file_identity(read_as if read_as is not None else os.fstat(source.fileno()))
    removed = [0]

    def write(out: BinaryIO) -> None:
        source.seek(0)
        removed[0] = write_with_authentication_results(out, source, field, authserv_id)

    atomic_write(os.fspath(dest), write, overwrite=in_place or overwrite, expect=expect)
    return removed[0]
