"""Pure-Python canonicalization core: the readable reference.

This module is the twin of the compiled ``fastdkim._canon`` (``ext/_canon.pyx``):
same names, same behaviour, byte for byte.  It is the fallback where no compiler
exists and the oracle the property tests compare the compiled core against.  It
aims to be obviously correct and linear in its input, not fast.

Body canonicalization (RFC 6376 section 3.4.3 simple, 3.4.4 relaxed) is
streaming: feed chunks of any size; every piece of state that spans a chunk
boundary (a CR waiting for its LF, a run of whitespace, a run of empty lines)
is carried in a few counters, never by keeping the body.
"""
from __future__ import annotations

import base64
import hashlib
import operator
import re
from typing import AbstractSet, Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

Buffer = Union[bytes, bytearray, memoryview]

_CRLF = b"\r\n"
_WSP_RUN = re.compile(rb"[ \t]+")
_BARE_CR = re.compile(rb"\r(?!\n)")
_BARE_CR_OR_LF = re.compile(rb"\r(?!\n)|(?<!\r)\n")

__all__ = [
    "BodyCanonicalizer",
    "BodyHasher",
    "canonicalize_body",
    "body_digest",
    "relaxed_header",
    "find_body_start",
    "split_header_fields",
    "bare_line_break",
    "bad_field_line",
    "normalize_line_endings",
    "parse_tag_list",
    "parse_signature",
    "usable_signature",
    "b64decode",
    "header_hash_input",
    "canonical_headers",
    "fold_base64",
    "body_hash_tags",
    "HeaderIndex",
    "read_usual",
    "lane_start",
    "lane_end",
    "SignLane",
]


def _octets(data: Buffer) -> bytes:
    """``data``, any bytes-like object, as bytes (bytes themselves, not copied).

    :raises TypeError: ``data`` does not have the buffer protocol (where
        ``bytes()`` would turn an int into that many NULs), with the
        compiled core's words.
    """
    if type(data) is bytes:
        return data
    try:
        return memoryview(data).tobytes()
    except TypeError:
        raise TypeError("a bytes-like object is required, not '%s'" % type(data).__name__) from None


class BodyCanonicalizer:
    """Streaming body canonicalizer.

    ``update(chunk)`` returns the canonical bytes that are final so far;
    ``finish()`` returns the rest.  The concatenation of all returned pieces is
    the canonical body, whatever the chunk boundaries.

    :param relaxed: relaxed (section 3.4.4) instead of simple (3.4.3).
    :param bare_lf: treat a LF not preceded by CR as a line ending (CRLF), for
        messages stored with Unix line endings.
    """

    __slots__ = ("_relaxed", "_bare_lf", "_cr", "_wsp", "_midline", "_pending", "_emitted", "_done")

    def __init__(self, relaxed: bool, bare_lf: bool = False) -> None:
        self._relaxed = bool(relaxed)
        self._bare_lf = bool(bare_lf)
        self._cr = False  # a CR ended the last chunk: its LF may start the next
        self._wsp = False  # relaxed: a WSP run is pending on the current line
        self._midline = False  # content of the current line was emitted
        self._pending = 0  # empty lines held back (dropped if nothing follows)
        self._emitted = 0  # octets returned so far
        self._done = False

    @property
    def relaxed(self) -> bool:
        return self._relaxed

    @property
    def bare_lf(self) -> bool:
        return self._bare_lf

    def update(self, data: Buffer) -> bytes:
        if self._done:
            raise ValueError("update() after finish()")
        data = _octets(data)
        if not data:
            return b""
        if self._cr:
            data = b"\r" + data
            self._cr = False
        out: List[bytes] = []
        if self._bare_lf:
            pieces = data.split(b"\n")
            lines = [p[:-1] if p.endswith(b"\r") else p for p in pieces[:-1]]
        else:
            pieces = data.split(_CRLF)
            lines = pieces[:-1]
        for line in lines:
            self._line(line, True, out)
        tail = pieces[-1]
        if tail.endswith(b"\r"):
            self._cr = True
            tail = tail[:-1]
        if tail:
            self._line(tail, False, out)
        res = b"".join(out)
        self._emitted += len(res)
        return res

    def finish(self) -> bytes:
        if self._done:
            return b""
        out: List[bytes] = []
        if self._cr:  # a lone CR at the very end is line content
            self._cr = False
            self._line(b"\r", False, out)
        if self._midline:  # last line lacked its CRLF: add it
            out.append(_CRLF)
            self._midline = False
        if not self._relaxed and self._emitted == 0 and not out:
            out.append(_CRLF)  # simple: an empty body is a single CRLF
        self._done = True
        res = b"".join(out)
        self._emitted += len(res)
        return res

    def _line(self, content: bytes, eol: bool, out: List[bytes]) -> None:
        """Handle (part of) one line; ``eol`` says its line ending follows."""
        if self._relaxed:
            if self._wsp:
                content = b" " + content
            content = _WSP_RUN.sub(b" ", content)
            self._wsp = content.endswith(b" ")
            if self._wsp:
                content = content[:-1]
            if eol:
                self._wsp = False  # trailing whitespace is ignored
        if content:
            if self._pending:
                out.append(_CRLF * self._pending)
                self._pending = 0
            out.append(content)
            self._midline = True
        if eol:
            if self._midline:
                out.append(_CRLF)
                self._midline = False
            else:
                self._pending += 1


class BodyHasher:
    """Canonicalize a body and hash it (SHA-256 unless told), streaming.

    :param relaxed: relaxed body canonicalization instead of simple.
    :param limit: hash only the first ``limit`` canonical octets (the ``l=``
        tag); ``None`` hashes all.
    :param bare_lf: treat bare LF as CRLF.
    :param hash_name: ``"sha256"`` or ``"sha1"`` (``rsa-sha1``, RFC 6376
        section 3.3.1); the same canonical octets go to either.
    :raises ValueError: ``limit`` is negative or ``hash_name`` another name.

    ``length`` is the number of canonical octets produced (all of them, not
    just those hashed); after ``digest()`` it is the canonical body length, so
    ``length > limit`` says the body extended past ``l=``.
    """

    __slots__ = ("_canon", "_hash", "_hash_name", "_limit", "_length", "_hashed", "_digest")

    def __init__(
        self, relaxed: bool, limit: Optional[int] = None, bare_lf: bool = False, hash_name: str = "sha256"
    ) -> None:
        # every argument is checked before anything changes (a re-__init__
        # that raises leaves the hasher as it was)
        if limit is not None and operator.index(limit) < 0:
            raise ValueError("limit must be >= 0")
        if hash_name == "sha256":
            h = hashlib.sha256()
        elif hash_name == "sha1":
            h = hashlib.sha1()
        else:
            raise ValueError("hash_name must be 'sha256' or 'sha1', not %r" % (hash_name,))
        self._hash = h
        self._hash_name = hash_name
        self._canon = BodyCanonicalizer(relaxed, bare_lf)
        self._limit = limit
        self._length = 0
        self._hashed = 0
        self._digest: Optional[bytes] = None

    @property
    def relaxed(self) -> bool:
        return self._canon.relaxed

    @property
    def limit(self) -> Optional[int]:
        return self._limit

    @property
    def hash_name(self) -> str:
        return self._hash_name

    @property
    def length(self) -> int:
        return self._length

    @property
    def hashed(self) -> int:
        return self._hashed

    @property
    def threaded(self) -> bool:
        """Always False: the pure core hashes on the caller's thread (the
        compiled core may hash a large body on a second one)."""
        return False

    def _feed(self, piece: bytes) -> None:
        self._length += len(piece)
        if self._limit is not None:
            room = self._limit - self._hashed
            if room <= 0:
                return
            piece = piece[:room]
        self._hashed += len(piece)
        self._hash.update(piece)

    def update(self, data: Buffer) -> None:
        if self._digest is not None:
            raise ValueError("update() after digest()")
        self._feed(self._canon.update(data))

    def digest(self) -> bytes:
        if self._digest is None:
            self._feed(self._canon.finish())
            self._digest = self._hash.digest()
        return self._digest


def canonicalize_body(data: Buffer, relaxed: bool, bare_lf: bool = False) -> bytes:
    """Canonicalize a whole body at once."""
    c = BodyCanonicalizer(relaxed, bare_lf)
    return c.update(data) + c.finish()


def body_digest(
    data: Buffer, relaxed: bool, limit: Optional[int] = None, bare_lf: bool = False, hash_name: str = "sha256"
) -> Tuple[bytes, int]:
    """Canonicalize a whole body at once and hash it: what a
    :class:`BodyHasher` given the same arguments and fed *data* gives, as
    ``(digest, length)`` (``length``: the canonical body length, all of it,
    not just what ``limit`` lets be hashed).

    :raises ValueError: ``limit`` is negative or ``hash_name`` another name
        than ``"sha256"`` or ``"sha1"``.
    :raises TypeError: ``data`` is not bytes-like.
    """
    h = BodyHasher(relaxed, limit, bare_lf, hash_name)
    h.update(data)
    return h.digest(), h.length


def relaxed_header(field: Buffer) -> bytes:
    """Relaxed header canonicalization (section 3.4.2) of one raw field.

    ``field`` is the field as it appears in the message, ``Name: value`` with
    any folding and with or without its final CRLF.  The result is
    ``name:value`` followed by CRLF.
    """
    f = _octets(field).replace(_CRLF, b"")  # unfold; also drops the final CRLF
    f = _WSP_RUN.sub(b" ", f)
    name, colon, value = f.partition(b":")
    return name.rstrip(b" ").lower() + colon + value.strip(b" ") + _CRLF


def normalize_line_endings(data: Buffer) -> bytes:
    """Replace every LF not preceded by CR with CRLF."""
    # Every line ending to LF, then every LF to CRLF: a CR stays wherever it
    # is not the CR of a CRLF.  (Two whole copies, never a piece per line.)
    return _octets(data).replace(_CRLF, b"\n").replace(b"\n", _CRLF)


def find_body_start(data: Buffer, bare_lf: bool = False) -> int:
    """Offset of the first body octet, or -1 if the header block is unfinished.

    The header block ends at the first empty line.  With ``bare_lf`` a bare LF
    also ends a line.  A message that starts with an empty line has no headers.
    """
    d = _octets(data)
    if d.startswith(_CRLF):
        return 2
    if bare_lf and d.startswith(b"\n"):
        return 1
    if not bare_lf:
        i = d.find(b"\r\n\r\n")
        return -1 if i < 0 else i + 4
    # Earliest LF followed by an empty line (CRLF or LF).
    best = -1
    for pat in (b"\n\r\n", b"\n\n"):
        i = d.find(pat)
        if i >= 0 and (best < 0 or i + len(pat) < best):
            best = i + len(pat)
    return best


def split_header_fields(block: Buffer, max_fields: Optional[int] = None) -> List[Tuple[bytes, bytes]]:
    """Split a CRLF header block into ``(name, raw)`` pairs, top to bottom.

    ``name`` is the field name lower-cased, without surrounding whitespace
    (``b""`` for a line with no colon, which then matches no ``h=`` entry);
    ``raw`` is the field exactly as in the block, folding and final CRLF
    included.  A line that starts with WSP continues the field above it.
    The block may lack the final CRLF.

    :param max_fields: the most fields accepted; ``None``: no limit.
    :raises ValueError: the block has more than ``max_fields`` fields (found
        when the first field past the limit starts, before it is built).
    """
    if max_fields is not None:
        max_fields = operator.index(max_fields)  # (TypeError for 2.5 or "3", as the compiled core)
        if max_fields < 0:
            raise ValueError("max_fields must be >= 0")
    b = _octets(block)
    n = len(b)
    out: List[Tuple[bytes, bytes]] = []
    start = -1  # where the field being collected starts (-1: none yet)
    first_end = 0  # where its first line ends (before the CRLF)
    pos = 0  # where the current line starts
    while pos < n:
        eol = b.find(_CRLF, pos)
        line_end, nxt = (n, n) if eol < 0 else (eol, eol + 2)
        if start < 0 or b[pos:pos + 1] not in (b" ", b"\t"):  # not a continuation line
            if start >= 0:
                out.append(_named_field(b, start, first_end, pos))
            if max_fields is not None and len(out) >= max_fields:
                raise ValueError("more than %d header fields" % max_fields)
            start, first_end = pos, line_end
        pos = nxt
    if start >= 0:
        out.append(_named_field(b, start, first_end, n))
    return out


def _named_field(b: bytes, start: int, first_end: int, end: int) -> Tuple[bytes, bytes]:
    """``(name, raw)`` for the field ``b[start:end]`` whose first line ends at ``first_end``."""
    first = b[start:first_end]
    colon = first.find(b":")
    name = first[:colon].strip(b" \t").lower() if colon >= 0 else b""
    return name, b[start:end]


def bare_line_break(data: Buffer, lf_ok: bool) -> int:
    """Offset of the first bare CR in ``data`` or, unless ``lf_ok``, of the
    first bare CR or bare LF; -1 if there is none.

    A bare CR is a CR not followed by LF (a CR that ends ``data`` is bare); a
    bare LF is a LF not preceded by CR (a LF that starts ``data`` is bare).
    RFC 5322 section 2.2 allows CR and LF in a header block only together, as
    CRLF; ``lf_ok`` accepts bare LF as a line ending (mail stored with Unix
    line endings).
    """
    m = (_BARE_CR if lf_ok else _BARE_CR_OR_LF).search(_octets(data))
    return -1 if m is None else m.start()


_FIELD_START = re.compile(rb"[\x21-\x39\x3b-\x7e]+:")
_NOT_FIELD_OR_CONTINUATION = re.compile(rb"\n(?![\x21-\x39\x3b-\x7e]+:|[ \t])")


def bad_field_line(block: Buffer) -> int:
    """Offset of the first line of the CRLF header block ``block`` that is
    neither a header field (a name of printable US-ASCII other than ``:``,
    then ``:``, RFC 5322 section 2.2) nor a continuation line (starting with
    SP or HTAB, after the first line); -1 if every line is one of those.

    Parsers disagree about such lines (Python's ``email`` ends the header
    block at the first of them), so a verifier must not trust a block with one.
    """
    b = _octets(block)
    if b and not _FIELD_START.match(b):
        return 0
    m = _NOT_FIELD_OR_CONTINUATION.search(b)
    if m is None or m.end() == len(b):  # (a line ending that ends the block starts no line)
        return -1
    return m.end()


_FWS = b" \t\r\n"
_TAG_NAME = re.compile(rb"[A-Za-z][A-Za-z0-9_]*\Z")


def _short(b: bytes, limit: int = 40) -> str:
    s = b.decode("ascii", "backslashreplace")
    return repr(s if len(s) <= limit else s[:limit] + "...")


def parse_tag_list(data: Buffer, max_tags: int = 1024) -> Dict[str, bytes]:
    """Parse a tag-list (RFC 6376 section 3.2) into ``{name: value}``.

    Specs are separated by ``;``; whitespace (SP, HTAB, CR, LF) around names,
    ``=`` and values is dropped; one ``;`` may end the list (RFC 6376
    section 3.2: ``tag-spec *( ";" tag-spec ) [ ";" ]``).

    :raises ValueError: a spec without ``=``, an empty spec (``;`` first,
        or two in a row: not in the grammar), an invalid tag name, a
        duplicate tag, more than ``max_tags`` tags, or no tag at all.
    """
    tags: Dict[str, bytes] = {}
    specs = _octets(data).split(b";")
    for k, spec in enumerate(specs):
        eq = spec.find(b"=")
        if eq < 0:
            if spec.strip(_FWS):
                raise ValueError("tag without '=': %s" % _short(spec.strip(_FWS)))
            if k < len(specs) - 1:  # only the list's end may follow its last ';'
                raise ValueError("empty tag-spec (';' first, or two in a row; only one may end the list)")
            continue
        raw = spec[:eq].strip(_FWS)
        if not _TAG_NAME.match(raw):
            raise ValueError("invalid tag name %s" % _short(raw))
        name = raw.decode("ascii")
        if name in tags:
            raise ValueError("duplicate tag %s=" % name)
        if len(tags) >= max_tags:
            raise ValueError("more than %d tags" % max_tags)
        tags[name] = spec[eq + 1:].strip(_FWS)
    if not tags:
        raise ValueError("empty tag-list")
    return tags


def parse_signature(field: Buffer, max_tags: int = 1024) -> Tuple[Dict[str, bytes], bytes]:
    """Split a ``DKIM-Signature`` field (name, colon, tag-list) into its tags
    and the field with the ``b=`` value deleted (section 3.7: everything
    between its ``=`` and the next ``;`` or the end, whitespace included).

    Without a ``b=`` tag the field comes back unchanged.

    :raises ValueError: the field has no colon, or the tag-list is invalid
        (see :func:`parse_tag_list`).
    """
    raw = _octets(field)
    colon = raw.find(b":")
    if colon < 0:
        raise ValueError("not a header field: no colon")
    tags = parse_tag_list(raw[colon + 1:], max_tags)
    if "b" not in tags:
        return tags, raw
    # The tag-list is valid, so the specs are the ;-separated pieces and
    # exactly one of them has the name b.
    pos = colon + 1
    for spec in raw[colon + 1:].split(b";"):
        eq = spec.find(b"=")
        if eq >= 0 and spec[:eq].strip(_FWS) == b"b":
            return tags, raw[:pos + eq + 1] + raw[pos + len(spec):]
        pos += len(spec) + 1
    raise AssertionError("b= tag not found again")  # pragma: no cover


#: the tags every signature must have (RFC 6376 section 6.1.1)
REQUIRED_TAGS = ("v", "a", "b", "bh", "d", "h", "s")
#: the tags a signer writes alike on every message (what they imply can be
#: remembered between messages), in the order of ``usable_signature``'s key
STATIC_TAGS = ("a", "c", "d", "s", "h", "i", "q")


def usable_signature(
    field: Buffer, max_tags: int = 1024
) -> Optional[Tuple[Dict[str, bytes], bytes, Tuple[Optional[bytes], ...], bytes, bytes]]:
    """The parts of a ``DKIM-Signature`` field that passes the checks of
    RFC 6376 section 6.1.1 that need nothing but the field, in one call;
    ``None`` for any other field (whose verifier then finds out what is
    wrong with it, one check at a time).

    A field passes when :func:`parse_signature` accepts it, it has ``v=1``
    and every other required tag (``a b bh d h s``), and its ``b=`` (not
    empty) and ``bh=`` are base64 that :func:`b64decode` accepts.

    :returns: ``(tags, unsigned, key, b, bh)``: :func:`parse_signature`'s
        two values, the values of ``STATIC_TAGS`` (``None`` where absent)
        and the decoded ``b=`` and ``bh=``.
    :raises TypeError: ``field`` is not bytes-like (nothing else raises).
    """
    try:
        tags, unsigned = parse_signature(field, max_tags)
    except ValueError:
        return None
    if tags.get("v") != b"1" or not all(t in tags for t in REQUIRED_TAGS):
        return None
    try:
        b = b64decode(tags["b"])
        bh = b64decode(tags["bh"])
    except ValueError:
        return None
    if not b:
        return None
    return tags, unsigned, tuple(tags.get(t) for t in STATIC_TAGS), b, bh


_B64 = re.compile(rb"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?\Z")


def b64decode(value: Buffer) -> bytes:
    """Decode a base64 tag value (``b=``, ``bh=``, ``p=``), ignoring whitespace.

    Strict: only the RFC 4648 alphabet, the length (without whitespace) a
    multiple of four, ``=`` padding only at the end and at most two of it.

    :raises ValueError: the value is not such base64.
    """
    v = memoryview(value).tobytes().translate(None, _FWS)
    if not _B64.match(v):
        raise ValueError("malformed base64 value")
    return base64.b64decode(v)


def header_hash_input(
    fields: Sequence[Tuple[bytes, bytes]], names: Sequence[bytes], own: Buffer, relaxed: bool
) -> bytes:
    """The header part of the data a DKIM signature covers (section 3.7).

    For each name of ``names`` (lower-case, in ``h=`` order) the next instance
    of that field from the bottom of ``fields`` upwards, canonicalized; a name
    with no instance left contributes nothing.  Then ``own``, the signature's
    own field with its ``b=`` value emptied, canonicalized without its final
    CRLF.
    """
    wanted = set(names)
    by_name: Dict[bytes, List[bytes]] = {}
    for name, raw in fields:
        if name in wanted:
            by_name.setdefault(name, []).append(raw)
    picked: List[bytes] = []
    for name in names:
        stack = by_name.get(name)
        if stack:
            picked.append(stack.pop())
    return canonical_headers(picked, own, relaxed)


#: Header fields a message has at most one of (RFC 5322 section 3.6, RFC
#: 2045, RFC 2183) whose value changes what a reader shows: where a message
#: has more of one than a signature's ``h=`` lists, a reader may show one the
#: signature does not cover.  (MIME-Version, also once only, is left out: list
#: software adds a second ``1.0`` to signed mail, and no reader shows it.)
SINGLE_FIELDS = frozenset({
    b"from", b"sender", b"reply-to", b"to", b"cc", b"bcc", b"subject", b"date", b"message-id",
    b"in-reply-to", b"references", b"content-type", b"content-transfer-encoding", b"content-disposition",
})


def extra_instance(fields: Sequence[Tuple[bytes, bytes]], names: Sequence[bytes],
                   singles: AbstractSet[bytes]) -> Optional[str]:
    """The first of ``names`` (lower-case, in ``h=`` order) that is in
    ``singles`` and of which ``fields`` (``(name, raw)`` pairs, names
    lower-case) hold more instances than ``names`` lists, as ``str``; else
    ``None``.  Since ``h=`` takes instances from the bottom up, the extra
    ones are above the signed ones, where readers that take the first
    instance find them (RFC 6376 section 8.15)."""
    listed: Dict[bytes, int] = {}
    for name in names:
        listed[name] = listed.get(name, 0) + 1
    present: Dict[bytes, int] = {}
    for name, _ in fields:
        if name in listed:
            present[name] = present.get(name, 0) + 1
    for name, k in listed.items():
        if present.get(name, 0) > k and name in singles:
            return name.decode("ascii", "replace")
    return None


def canonical_headers(fields: Sequence[bytes], own: Buffer, relaxed: bool) -> bytes:
    """The raw header fields ``fields`` canonicalized and concatenated, then
    ``own`` (the signature field, ``b=`` empty) canonicalized without its
    final CRLF: the header data a signature covers, once the fields are chosen.
    """
    out: List[bytes] = []
    for raw in fields:
        raw = _octets(raw)
        out.append(relaxed_header(raw) if relaxed else (raw if raw.endswith(_CRLF) else raw + _CRLF))
    own_b = _octets(own)
    if relaxed:
        out.append(relaxed_header(own_b)[:-2])
    else:
        out.append(own_b[:-2] if own_b.endswith(_CRLF) else own_b)
    return b"".join(out)


def fold_base64(data: Buffer, col: int, width: int = 78, prefix: bytes = b"", suffix: bytes = b"") -> bytes:
    """The base64 of ``data`` as a folded tag value: the first line goes on
    after column ``col`` (left empty when fewer than 8 columns remain), the
    following lines start with one SP; no line passes ``width`` columns.
    Lines are separated by CRLF SP.  The value comes between ``prefix`` and
    ``suffix`` (bytes; a signature field's text before its ``b=`` value
    and the CRLF after it), in one new bytes object.

    :raises ValueError: ``width`` is not from 9 to 65536, or ``col`` not
        from 0 to 65536.
    :raises TypeError: ``prefix`` or ``suffix`` is not bytes.
    """
    if not 9 <= width <= 65536:
        raise ValueError("width must be from 9 to 65536")
    if not 0 <= col <= 65536:
        raise ValueError("col must be from 0 to 65536")
    if type(prefix) is not bytes or type(suffix) is not bytes:
        raise TypeError("prefix and suffix must be bytes")
    b64 = base64.b64encode(memoryview(data).tobytes())
    room = width - col
    line = width - 1
    if room < 8:
        parts = [b""]
    else:
        parts = [b64[:room]]
        b64 = b64[room:]
    parts.extend(b64[i:i + line] for i in range(0, len(b64), line))
    return prefix + b"\r\n ".join(parts) + suffix


def body_hash_tags(head: bytes, col: int, bh: Buffer, width: int = 78) -> Tuple[bytes, int]:
    """A signature field's text ``head`` (ending at column ``col``) followed
    by the ``bh=`` tag of the body hash ``bh`` (base64, unfolded) and the
    start of an empty ``b=`` tag, each after one SP on the line where it is,
    or on a new line (CRLF SP) where it would pass ``width`` columns: the
    text that is signed, and the column where it ends.

    :raises TypeError: ``head`` is not bytes, or ``bh`` not bytes-like.
    """
    if type(head) is not bytes:
        raise TypeError("head must be bytes")
    col, width = operator.index(col), operator.index(width)  # (TypeError for 1.5, as the compiled core)
    out = [head]
    bh_tag = b" bh=" + base64.b64encode(memoryview(bh).tobytes()) + b";"
    if col + len(bh_tag) <= width:
        col += len(bh_tag)
    else:
        out.append(b"\r\n")
        col = len(bh_tag)
    out.append(bh_tag)
    if col + 3 <= width:
        col += 3
    else:
        out.append(b"\r\n")
        col = 3
    out.append(b" b=")
    return b"".join(out), col


class HeaderIndex:
    """The header fields of a CRLF header block, split as
    :func:`split_header_fields` splits them.

    (The compiled twin keeps offsets into the block and makes Python objects
    only for the fields asked for; this one simply keeps the split fields.)

    :param block: the header block (bytes-like), as for :func:`split_header_fields`.
    :param max_fields: the most fields accepted; ``None``: no limit.
    :param message: ``block`` is a whole message in wire form: the header
        block is what comes before its first empty line (see
        :meth:`body_start`).
    :raises ValueError: ``max_fields`` is negative, or the block has more fields.
    """

    __slots__ = ("_block", "_fields", "_body")

    def __init__(self, block: Buffer, max_fields: Optional[int] = None, message: bool = False) -> None:
        data = _octets(block)
        self._body = -1
        if message:
            self._body = find_body_start(data, False)
            if self._body >= 0:
                data = data[:self._body - 2]  # without the empty line
        self._block = data
        self._fields = split_header_fields(data, max_fields)

    def body_start(self) -> int:
        """For an index made of a whole message (``message=True``): the
        offset of its first body octet, after the empty line that ends the
        header block, as :func:`find_body_start` gives it for wire form;
        -1 when there is no such line, or the index was made of a block."""
        return self._body

    def __len__(self) -> int:
        return len(self._fields)

    def __iter__(self) -> Iterator[Tuple[bytes, bytes]]:
        """The ``(name, raw)`` pairs of :meth:`fields`."""
        return iter(self.fields())

    def defect(self) -> Tuple[int, int]:
        """What makes the block untrustworthy, first found first:
        ``(1, pos)`` for :func:`bare_line_break` ``(block, False)`` (a bare
        CR or LF at ``pos``), else ``(2, pos)`` for :func:`bad_field_line`
        (a line neither a field nor a continuation), else ``(0, -1)``."""
        pos = bare_line_break(self._block, False)
        if pos >= 0:
            return (1, pos)
        pos = bad_field_line(self._block)
        if pos >= 0:
            return (2, pos)
        return (0, -1)

    def fields(self) -> List[Tuple[bytes, bytes]]:
        """Every field as a ``(name, raw)`` pair, top to bottom: what
        :func:`split_header_fields` returns for the block (a new list)."""
        return list(self._fields)

    def raw(self, i: int) -> bytes:
        """The raw text of field ``i`` (folding and final CRLF included).

        :raises IndexError: ``i`` is not ``0 <= i < len(self)``.
        """
        if not 0 <= i < len(self._fields):
            raise IndexError("field index out of range")
        return self._fields[i][1]

    def find(self, name: bytes) -> List[int]:
        """The positions (top to bottom) of the fields named ``name``
        (lower-case bytes; field names compare lower-cased).

        :raises TypeError: ``name`` is not bytes.
        """
        _check_name(name)
        return [i for i, (n, _) in enumerate(self._fields) if n == name]

    def names_key(self) -> bytes:
        """The lower-cased field names, each followed by ``:``, top to
        bottom: equal keys, equal sequences of names (no name holds a colon)."""
        return b"".join(n + b":" for n, _ in self._fields)

    def take(self, positions: Sequence[int]) -> List[bytes]:
        """The raw texts of the fields at ``positions``, in that order.

        :raises IndexError: a position is not ``0 <= i < len(self)``.
        """
        return [self.raw(i) for i in positions]

    def canonical(self, positions: Sequence[int], own: Buffer, relaxed: bool) -> bytes:
        """:func:`canonical_headers` of the fields at ``positions`` (in that
        order) and ``own``.

        :raises IndexError: a position is not ``0 <= i < len(self)``.
        """
        return canonical_headers(self.take(positions), own, relaxed)

    def hash_input(self, names: Sequence[bytes], own: Buffer, relaxed: bool, skip: int = -1) -> bytes:
        """:func:`header_hash_input` of these fields, without the field at
        position ``skip`` (a signature that is not a candidate for its own
        ``h=``; -1: none left out).

        :raises TypeError: a name is not bytes.
        """
        names = list(names)
        for n in names:
            _check_name(n)
        fields = [f for i, f in enumerate(self._fields) if i != skip]
        return header_hash_input(fields, names, own, relaxed)

    def extra_instance(self, names: Sequence[bytes], skip: int,
                       singles: AbstractSet[bytes]) -> Optional[str]:
        """:func:`extra_instance` of these fields, without the field at
        position ``skip`` (-1: none left out).

        :raises TypeError: a name is not bytes.
        """
        names = list(names)
        for n in names:
            _check_name(n)
        skip = operator.index(skip)
        return extra_instance([f for i, f in enumerate(self._fields) if i != skip], names, singles)


def read_usual(data: bytes, bare_lf: Optional[bool], max_bytes: int, max_fields: int,
               max_body: int) -> Optional[Tuple[HeaderIndex, bytes]]:
    """The :class:`HeaderIndex` of ``data`` (a whole message, bytes) and its
    body (empty if it has none), when it is the usual message: in wire form
    (``bare_lf`` false, or ``None`` and the first line ending in CRLF), at
    most ``max_bytes`` octets in all, at most ``max_fields`` header fields,
    a header block without defect, a body of at most ``max_body`` octets.
    ``None`` for any other message.

    :raises TypeError: ``data`` is not bytes.
    """
    # (the limits first, as the compiled core takes its arguments)
    max_bytes, max_fields, max_body = operator.index(max_bytes), operator.index(max_fields), operator.index(max_body)
    if type(data) is not bytes:
        raise TypeError("data must be bytes, not %s" % type(data).__name__)
    if bare_lf or len(data) > max_bytes:
        return None
    nl = data.find(b"\n")
    if bare_lf is None and (nl == 0 or (nl > 0 and data[nl - 1] != 13)):  # LF mail
        return None
    try:
        index = HeaderIndex(data, max_fields, True)
    except ValueError:
        return None
    start = index.body_start()
    if index.defect()[0]:
        return None
    if start < 0:
        return index, b""
    if len(data) - start > max_body:
        return None
    return index, data[start:]


#: the most signatures the lane takes (more go to the phases)
LANE_MAX_SIGNATURES = 8


def lane_start(data: bytes, bare_lf: Optional[bool], max_bytes: int, max_fields: int, max_body: int,
               now: Optional[float], clock: Callable[[], float], clock_skew: int,
               statics: Dict[Any, Tuple[Any, ...]],
               static_of: Callable[[Any, Dict[str, bytes]], Tuple[Any, ...]],
               max_sigs: int = 1,
               ) -> Tuple[Optional[Tuple[Any, ...]], Optional[int]]:
    """The verification lane up to the key lookups, for ``data`` (a whole
    message, bytes): the usual message, read by :func:`read_usual` with these
    limits, with from one to ``max_sigs`` (at most
    ``LANE_MAX_SIGNATURES``) ``DKIM-Signature`` fields, each of which
    :func:`usable_signature` accepts, whose static tags (``STATIC_TAGS``
    values, the key of :func:`usable_signature`) imply something usable,
    without ``l=`` or ``x=``, and with a ``t=`` (if any) of at most 76 digits
    no later than ``when + clock_skew``.

    What the static tags imply comes from ``statics`` (by that key), else
    from ``static_of(key, tags)`` (which may remember it there): a tuple, of
    two items when the signature cannot be used.  The time is read once the
    header block is known to be usual, as ``int(now)``, or ``int(clock())``
    when ``now`` is ``None``.

    :returns: ``(lane, when)``: ``lane`` is ``None`` for a message the lane
        leaves to the phases, else ``(index, body, sigs)``: ``sigs`` holds,
        per signature from the top, ``(pos, tags, unsigned, b, bh,
        timestamp, static)`` (``pos``: the signature's field; ``tags``,
        ``unsigned``, ``b``, ``bh``: what :func:`usable_signature` gave;
        ``timestamp``: ``t=`` as a number, or ``None``); ``when`` is the time
        read, ``None`` if it was not.
    :raises TypeError: ``data`` is not bytes, or ``statics`` not a
        ``dict``.  Otherwise only what ``clock`` or ``static_of`` raise.
    """
    if type(statics) is not dict:  # (as the compiled core takes it)
        raise TypeError("statics must be a dict, not %s" % type(statics).__name__)
    usual = read_usual(data, bare_lf, max_bytes, max_fields, max_body)
    if usual is None:
        return None, None
    when = int(clock() if now is None else now)
    index, body = usual
    positions = index.find(b"dkim-signature")
    if not positions or len(positions) > min(max_sigs, LANE_MAX_SIGNATURES):
        return None, when
    sigs = []
    for pos in positions:
        got = usable_signature(index.raw(pos))
        if got is None:
            return None, when
        tags, unsigned, key, b, bh = got
        static = statics.get(key) or static_of(key, tags)
        if len(static) == 2 or "l" in tags or "x" in tags:
            return None, when
        t = tags.get("t")
        timestamp: Optional[int] = None
        if t is not None:
            # (t= is bytes unless static_of changed the tags)
            if type(t) is not bytes or not (t.isdigit() and len(t) <= 76):
                return None, when
            timestamp = int(t)
            if timestamp > when + clock_skew:
                return None, when
        sigs.append((pos, tags, unsigned, b, bh, timestamp, static))
    return (index, body, tuple(sigs)), when


def lane_end(index: HeaderIndex, body: Buffer, relaxed_body: bool, hash_name: str, bh: bytes,
             names: Sequence[bytes], own: bytes, relaxed_headers: bool, skip: int,
             singles: Optional[AbstractSet[bytes]] = None, body_checked: bool = False) -> Union[None, bytes, str]:
    """The hashing of the verification lane, once the key is in: the body's
    hash (``body`` canonicalized, relaxed or simple, hashed with
    ``hash_name``) held against ``bh`` (unless ``body_checked``: the caller
    knows it is ``bh``), then the header hash input of ``index``
    (:meth:`HeaderIndex.hash_input` of ``names``, the signature field
    ``own`` with its ``b=`` value deleted, and ``skip``).

    :returns: ``None`` when the body hash is not ``bh``; else, with
        ``singles``, :meth:`HeaderIndex.extra_instance`'s answer (the name of
        a field the block has more of than ``names`` lists, ``str``) when it
        finds one; else what the key verifies: the SHA-256 of the header
        hash input for ``"sha256"`` (RSA verifies it as prehashed, Ed25519
        signs it, RFC 8463), the input itself for ``"sha1"``.
    :raises ValueError: ``hash_name`` is neither.
    :raises TypeError: ``body`` is not bytes-like or a name not bytes.
    """
    if hash_name not in ("sha256", "sha1"):
        raise ValueError("hash_name must be 'sha256' or 'sha1', not %r" % (hash_name,))
    if not body_checked:
        digest, _ = body_digest(body, relaxed_body, None, False, hash_name)
        if digest != bh:
            return None
    if singles is not None:
        extra = index.extra_instance(names, skip, singles)
        if extra is not None:
            return extra
    data = index.hash_input(names, own, relaxed_headers, skip)
    return data if hash_name == "sha1" else hashlib.sha256(data).digest()


class SignLane:
    """The signing lane of one signer: for the usual message, what the
    signer signs, in one call of :meth:`start`.

    :param relaxed_headers: relaxed (else simple) header canonicalization.
    :param relaxed_body: relaxed (else simple) body canonicalization.
    :param body_length: the field has ``l=``: ``head_of`` is given the
        canonical body's length.
    :param digest: :meth:`start` gives the SHA-256 of the header hash input
        (what an Ed25519 signer signs, RFC 8463 section 3) instead of the input.
    :param plan_of: ``plan_of(index)``, the signer's plan for a header block
        given as its :class:`HeaderIndex`: an object whose ``take`` lists the
        positions of the fields to sign, in ``h=`` order.  It raises for a
        block that cannot be signed, and its answer depends on the block's
        field names alone (the lane may keep it for blocks whose
        :meth:`HeaderIndex.names_key` is the same).
    :param head_of: ``head_of(plan, body_len, now)``: the field's text up to
        its ``h=`` tag (bytes, CRLF line breaks) and the column where it ends;
        ``body_len`` is the canonical body's length with ``body_length``, else
        ``None``.  Given the same plan, ``None`` and ``now`` it must give the
        same text (the lane may keep it for that second).
    :param clock: the time, read once a message as ``int(clock())``.
    :param bare_lf: as :func:`read_usual` takes it (``None`` or false).
    :param max_bytes: :func:`read_usual`'s limit.
    :param max_fields: :func:`read_usual`'s limit.
    :param max_body: :func:`read_usual`'s limit.
    :param width: no line of the field passes this column.
    :raises TypeError: ``plan_of``, ``head_of`` or ``clock`` is not callable.
    :raises ValueError: ``width`` is not from 9 to 65536.
    """

    def __init__(self, relaxed_headers: bool, relaxed_body: bool, body_length: bool, digest: bool,
                 plan_of: Callable[["HeaderIndex"], Any],
                 head_of: Callable[[Any, Optional[int], int], Tuple[bytes, int]],
                 clock: Callable[[], float], bare_lf: Optional[bool], max_bytes: int, max_fields: int,
                 max_body: int, width: int = 78) -> None:
        if not (callable(plan_of) and callable(head_of) and callable(clock)):
            raise TypeError("plan_of, head_of and clock must be callable")
        limits = (operator.index(max_bytes), operator.index(max_fields), operator.index(max_body))
        width = operator.index(width)
        if not 9 <= width <= 65536:
            raise ValueError("width must be from 9 to 65536")
        self._relaxed_headers = bool(relaxed_headers)
        self._relaxed_body = bool(relaxed_body)
        self._body_length = bool(body_length)
        self._digest = bool(digest)
        self._plan_of = plan_of
        self._head_of = head_of
        self._clock = clock
        self._bare_lf = None if bare_lf is None else bool(bare_lf)
        self._limits = limits
        self._width = width

    def start(self, data: bytes) -> Optional[Tuple[bytes, bytes, int]]:
        """``(to_sign, unsigned, col)`` for ``data`` (a whole message, bytes)
        when :func:`read_usual` reads it as the usual message: ``to_sign`` is
        the header hash input (RFC 6376 section 3.7), or its SHA-256 with
        ``digest``; ``unsigned`` is the signature field up to its empty
        ``b=`` tag (CRLF line breaks), ``col`` the column where it ends.
        ``None`` for any other message.

        :raises TypeError: ``data`` is not bytes, or ``head_of`` gave no bytes.
            Otherwise only what ``plan_of``, ``head_of`` and ``clock`` raise.
        """
        usual = read_usual(data, self._bare_lf, *self._limits)
        if usual is None:
            return None
        index, body = usual
        plan = self._plan_of(index)
        fields = index.take(list(plan.take))  # (IndexError for a position out of range)
        bh, length = body_digest(body, self._relaxed_body)
        now = int(self._clock())
        head, col = self._head_of(plan, length if self._body_length else None, now)
        unsigned, col = body_hash_tags(head, operator.index(col), bh, self._width)
        signed = canonical_headers(fields, unsigned, self._relaxed_headers)
        return (hashlib.sha256(signed).digest() if self._digest else signed), unsigned, col


def _check_name(name: object) -> None:
    if type(name) is not bytes:
        raise TypeError("field names must be bytes, not %s" % type(name).__name__)
