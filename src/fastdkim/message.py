"""Reading messages: the header block as fields, the body as a stream of chunks.

A message is given as bytes-like or as a binary file object.  Only the header
block is held in memory (up to ``max_header_bytes``, at most
``max_header_fields`` fields); the body is read in ``CHUNK`` pieces, so a
message of any size is processed in bounded memory.

Line endings.  A message is *LF mail* (stored with Unix line endings) when its
first line ends in a bare LF: the first LF of the message is not preceded by
CR, or the message starts with LF.  Then a bare LF counts as CRLF, in the
header block and in the body.  Any other message is in wire form, where a bare
LF is content.  The rule is the same for every kind of input (bytes, a file,
standard input); the ``bare_lf`` option of :func:`read_message` overrides it.

RFC 5322 section 2.2 allows CR and LF in a header block only together, as
CRLF, and mail software does not agree on what anything else means (Python's
``email`` takes a lone CR or LF for a line break).  So a bare CR anywhere in
the header block, and in wire form a bare LF, make the message *malformed*:
:attr:`ParsedMessage.malformed` says why; verification then fails every
signature (``permerror``) and signing refuses the message.
"""
from __future__ import annotations

from typing import BinaryIO, Iterator, List, Optional, Tuple, Union, cast

from . import _canon_py, _core
from .canonicalization import ONE_CALL_MAX
from .errors import HeaderTooLarge, MessageFormatError, TooManyHeaderFields  # noqa: F401 (importable from here)

__all__ = [
    "Header", "MessageInput", "ParsedMessage", "read_message", "read_usual", "is_file", "CHUNK", "MAX_HEADER_BYTES",
    "MAX_HEADER_FIELDS", "HeaderTooLarge", "TooManyHeaderFields",
]

CHUNK = 1 << 20
MAX_HEADER_BYTES = 32 << 20
MAX_HEADER_FIELDS = 10_000

MessageInput = Union[bytes, bytearray, memoryview, BinaryIO]
Header = Tuple[bytes, bytes]  # (lower-cased name, raw field with folding and CRLF)

_SMALL = 1 << 16  # header blocks up to this size are sliced (copied); larger ones viewed


#: the classes of the cores' header indexes (pure, and compiled when built)
_INDEX_TYPES: Tuple[type, ...] = tuple(
    m.HeaderIndex for m in (_core.pure, _core.compiled) if m is not None)


def as_index(fields: object) -> "Optional[_canon_py.HeaderIndex]":
    """``fields`` when it is a core's ``HeaderIndex`` (pure or compiled), else ``None``."""
    return fields if isinstance(fields, _INDEX_TYPES) else None  # type: ignore[return-value]


class ParsedMessage:
    """A message split into header fields and a body stream.

    ``fields`` are top to bottom, in wire form (CRLF line endings).  ``body``
    yields the body in chunks exactly as stored (line endings untouched: the
    body canonicalizer deals with bare LF when asked to).  ``lf_endings`` tells
    whether the header block used bare LF line endings.

    ``fields`` may be given as a list of ``(name, raw)`` pairs or as the
    core's ``HeaderIndex`` of the header block; then the list is made on
    first use of :attr:`fields`, and until then :attr:`index` lets signing
    and verification make Python objects only for the fields they need.
    """

    __slots__ = ("_fields", "_index", "body", "lf_endings", "bare_lf", "malformed")

    def __init__(self, fields: Union[List[Header], "_canon_py.HeaderIndex"], body: Iterator[bytes],
                 lf_endings: bool, bare_lf: bool = False, malformed: Optional[str] = None) -> None:
        self._fields: Optional[List[Header]] = None
        self._index: Optional[_canon_py.HeaderIndex] = None
        if isinstance(fields, _INDEX_TYPES):
            self._index = cast("_canon_py.HeaderIndex", fields)
        else:
            self._fields = cast("List[Header]", fields)
        self.body = body
        self.lf_endings = lf_endings
        #: whether bare LF counts as a line ending for this message (resolved option)
        self.bare_lf = bare_lf
        #: why the header block is malformed (a bare CR, or a bare LF in wire
        #: form), or ``None``.  The fields are still split as the form in use
        #: reads them, but they must be neither signed nor trusted.
        self.malformed = malformed

    @property
    def fields(self) -> List[Header]:
        """The header fields as ``(lower-cased name, raw field)`` pairs, top to bottom."""
        if self._fields is None:
            assert self._index is not None
            self._fields = self._index.fields()
        return self._fields

    @fields.setter
    def fields(self, value: List[Header]) -> None:
        self._fields = value
        self._index = None

    @property
    def index(self) -> "Optional[_canon_py.HeaderIndex]":
        """The ``HeaderIndex`` the fields come from, while :attr:`fields` has
        not been handed out (a list handed out may have been changed since);
        ``None`` otherwise."""
        return self._index if self._fields is None else None

    def __repr__(self) -> str:
        return "ParsedMessage(fields=%r, body=%r, lf_endings=%r, bare_lf=%r, malformed=%r)" % (
            self.fields, self.body, self.lf_endings, self.bare_lf, self.malformed)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ParsedMessage):
            return NotImplemented
        return (self.fields, self.body, self.lf_endings, self.bare_lf, self.malformed) == (
            other.fields, other.body, other.lf_endings, other.bare_lf, other.malformed)

    __hash__ = None  # type: ignore[assignment]

    def __getstate__(self) -> Tuple[List[Header], Iterator[bytes], bool, bool, Optional[str]]:
        # (pickled and copied with the list of fields: the index is the core's own object)
        return (self.fields, self.body, self.lf_endings, self.bare_lf, self.malformed)

    def __setstate__(self, state: Tuple[List[Header], Iterator[bytes], bool, bool, Optional[str]]) -> None:
        self.__init__(*state)  # type: ignore[misc]


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


def _bare_first_line(data: Union[bytes, bytearray, memoryview], nl: int) -> bool:
    """Whether the first line ends in a bare LF, given the offset ``nl`` of the first LF (-1: none)."""
    return nl == 0 or (nl > 0 and data[nl - 1] != 13)


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
            raise TypeError("message file must be opened in binary mode (a text-mode file gives str)")
        yield chunk


def _read_head(fh: BinaryIO, bare_lf: Optional[bool], max_header_bytes: int) -> Tuple[bytearray, int, int]:
    """Read ``fh`` up to the end of its header block (and perhaps beyond).

    Returns the bytes read, the offset of the body in them (-1: the file
    ended first) and the offset of the first LF (-1: none).  The line-ending
    form is known once the first LF is in, so the end of the header block is
    looked for from then on.
    """
    buf = bytearray()
    want = 1 << 16
    start = nl = -1
    lf = bare_lf
    while True:
        chunk = fh.read(want)
        if isinstance(chunk, str):
            raise TypeError("message file must be opened in binary mode (a text-mode file gives str)")
        if not chunk:
            return buf, start, nl
        seen = len(buf)
        buf += chunk
        if nl < 0:
            nl = buf.find(b"\n", seen)
            if nl >= 0 and lf is None:
                lf = _bare_first_line(buf, nl)
        if nl >= 0:  # no line ends before the first LF, so neither does the header block
            start = _core.core.find_body_start(buf, bool(lf))
            if start >= 0:
                return buf, start, nl
        if len(buf) > max_header_bytes:
            raise HeaderTooLarge("header block larger than %d bytes" % max_header_bytes)
        want = min(want * 2, CHUNK * 8)  # geometric growth keeps re-scans linear overall


def _head_view(data: Union[bytes, memoryview], end: int) -> Union[bytes, memoryview]:
    """``data[:end]``, without copying a large header block."""
    if end == len(data):
        return data
    if end <= _SMALL or isinstance(data, memoryview):
        return data[:end]
    return memoryview(data)[:end]


def _malformed(head: Union[bytes, memoryview], lf: bool) -> Optional[str]:
    """Why the header block ``head`` is malformed in the form ``lf`` says, or ``None``."""
    pos = _core.core.bare_line_break(head, lf)
    return None if pos < 0 else _bare_break_reason(head, pos)


def _bare_break_reason(head: Union[bytes, memoryview], pos: int) -> str:
    """The reason for the bare CR or LF at ``pos`` of ``head``."""
    return "bare %s at offset %d in the header block (RFC 5322 section 2.2: CR and LF only together as CRLF)" % (
        "CR" if head[pos] == 13 else "LF", pos)


def _parse_head(
    data: Union[bytes, memoryview], start: int, lf: bool, lf_endings: bool,
    max_header_bytes: int, max_header_fields: int,
) -> Tuple["_canon_py.HeaderIndex", bool, Optional[str]]:
    """The header fields (as an index) of ``data`` (the message, or at least its header
    block) whose body starts at ``start`` (-1: no body), whether the header
    block uses bare LF line endings, and why it is malformed (or ``None``)."""
    end = len(data) if start < 0 else start
    if end > max_header_bytes:
        raise HeaderTooLarge("header block larger than %d bytes" % max_header_bytes)
    core = _core.core
    if not lf:
        # Wire form: the block without the empty line that ends it (which
        # holds no bare CR or LF), split and checked in one pass.
        block = _head_view(data, end if start < 0 else end - 2)
        try:
            fields = core.HeaderIndex(block, max_header_fields)
        except ValueError:
            raise TooManyHeaderFields("header block has more than %d fields" % max_header_fields) from None
        return fields, False, _defect_reason(fields, block)
    head = _head_view(data, end)  # the header block with the empty line that ends it
    malformed = _malformed(head, lf)
    try:
        # LF mail: without the empty line ("\n" or "\r\n") that ends the block
        if start >= 0:
            head = _head_view(data, end - (2 if data[end - 2:end - 1] == b"\r" else 1))
        block = core.normalize_line_endings(head)
        fields = core.HeaderIndex(block, max_header_fields)
    except ValueError:
        raise TooManyHeaderFields("header block has more than %d fields" % max_header_fields) from None
    if malformed is None:
        malformed = _bad_line(block)
    return fields, lf_endings, malformed


def _defect_reason(index: "_canon_py.HeaderIndex", block: Union[bytes, memoryview]) -> Optional[str]:
    """Why the wire-form header block ``block`` (or a message that starts
    with it), whose index is ``index``, is malformed, or ``None``."""
    kind, pos = index.defect()
    if kind == 0:
        return None
    return _bare_break_reason(block, pos) if kind == 1 else _bad_line_reason(block, pos)


def _bad_line(block: Union[bytes, memoryview]) -> Optional[str]:
    """Why the CRLF header block ``block`` has a line that is neither a field nor a continuation, or ``None``."""
    pos = _core.core.bad_field_line(block)
    return None if pos < 0 else _bad_line_reason(block, pos)


def _bad_line_reason(block: Union[bytes, memoryview], pos: int) -> str:
    """The reason for the line at ``pos`` of ``block``, neither a field nor a continuation."""
    line = bytes(block[pos:pos + 200]).split(b"\r\n", 1)[0][:60]
    what = ("its first line is a continuation line" if pos == 0 and line[:1] in (b" ", b"\t") else
            "a line without a colon" if b":" not in line else
            "not a field name (printable US-ASCII other than ':', no spaces)")
    # (the octets as Python writes bytes, without the b: every one not printable
    # ASCII escaped alike)
    return "malformed header block: %s: %s (RFC 5322 section 2.2; other parsers end the header block there)" % (
        what, repr(line)[1:])


def read_usual(data: bytes, bare_lf: Optional[bool]) -> "Optional[Tuple[_canon_py.HeaderIndex, bytes]]":
    """The header index of *data* (a whole message as bytes) and its body
    (empty if it has none), when it is the usual message: in wire form (by
    ``bare_lf`` as :func:`read_message` takes it), a header block without
    defect within the default limits, a body of at most ``ONE_CALL_MAX``
    octets (hashed in one call).  ``None`` for any other message, which
    :func:`read_message` then reads.  This is how the lanes read a message
    (the core's ``SignLane`` for signing, its ``lane_start`` for
    verification, with these limits): what it accepts, :func:`read_message`
    reads alike, without its objects.

    :raises TypeError: *data* is not bytes.
    """
    return _core.core.read_usual(data, bare_lf, MAX_HEADER_BYTES, MAX_HEADER_FIELDS, ONE_CALL_MAX)


def read_message(
    message: MessageInput,
    *,
    bare_lf: Optional[bool] = None,
    max_header_bytes: int = MAX_HEADER_BYTES,
    max_header_fields: int = MAX_HEADER_FIELDS,
) -> ParsedMessage:
    """Split ``message`` into header fields and a body stream.

    :param bare_lf: treat a bare LF as CRLF (LF mail).  ``None`` (the
        default): yes when the message's first line ends in a bare LF (such a
        message cannot be in wire form), for bytes and files alike; otherwise
        the message is in wire form and a bare LF is content.
    :param max_header_bytes: the largest header block accepted.
    :param max_header_fields: the most header fields accepted.
    :returns: the parsed message; :attr:`ParsedMessage.malformed` is set for a
        bare CR in the header block, or a bare LF in a wire-form header block.
    :raises MessageFormatError: the header block exceeds ``max_header_bytes``
        (:class:`HeaderTooLarge`) or ``max_header_fields``
        (:class:`TooManyHeaderFields`), or the file is not binary.
    :raises TypeError: ``message`` is neither bytes-like nor a binary file.
    """
    if type(message) is bytes:  # the common case, without memoryview overhead
        data: bytes = message
        first = _bare_first_line(data, data.find(b"\n"))
        lf = first if bare_lf is None else bare_lf
        if not lf and len(data) <= max_header_bytes:
            # Wire form, and too short for a header block too large: the end
            # of the header block found, the block split and checked, in
            # one pass over it (and no copy of it).
            try:
                index = _core.core.HeaderIndex(data, max_header_fields, True)
            except ValueError:
                raise TooManyHeaderFields("header block has more than %d fields" % max_header_fields) from None
            start = index.body_start()
            fields, lf_endings, malformed = index, False, _defect_reason(index, data)
        else:
            start = _core.core.find_body_start(data, lf)
            fields, lf_endings, malformed = _parse_head(data, start, lf, first, max_header_bytes, max_header_fields)
        if start < 0 or start == len(data):
            chunks: Iterator[bytes] = iter(())
        elif len(data) - start <= CHUNK:
            chunks = iter((data[start:],))
        else:
            chunks = _bytes_body(memoryview(data)[start:])
        return ParsedMessage(fields, chunks, lf_endings, lf, malformed)
    if is_file(message):
        fh: BinaryIO = message  # type: ignore[assignment]
        buf, start, nl = _read_head(fh, bare_lf, max_header_bytes)
        first = _bare_first_line(buf, nl)
        lf = first if bare_lf is None else bare_lf
        view = memoryview(buf)  # no copy of the header block
        fields, lf_endings, malformed = _parse_head(view, start, lf, first, max_header_bytes, max_header_fields)
        rest = bytes(view[start:]) if start >= 0 else b""
        return ParsedMessage(fields, _file_body(rest, fh), lf_endings, lf, malformed)
    if isinstance(message, (bytes, bytearray, memoryview)):
        mv = memoryview(message).cast("B") if isinstance(message, memoryview) else memoryview(message)
        first = _bare_first_line(mv, _first_lf(mv))
        lf = first if bare_lf is None else bare_lf
        start = _core.core.find_body_start(mv, lf)
        fields, lf_endings, malformed = _parse_head(mv, start, lf, first, max_header_bytes, max_header_fields)
        body = mv[start:] if start >= 0 else memoryview(b"")
        return ParsedMessage(fields, _bytes_body(body), lf_endings, lf, malformed)
    raise TypeError("message must be bytes-like or a binary file object, not %s" % type(message).__name__)
