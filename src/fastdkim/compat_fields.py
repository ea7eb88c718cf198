"""The module-level helpers of :mod:`fastdkim.compat` that work on header
fields and tag lists, with dkimpy 1.1's signatures and results:
:func:`select_headers`, :func:`fold`, :func:`validate_signature_fields`,
:func:`rfc822_parse`, :func:`parse_tag_value`, and the constants
(``Simple``, ``Relaxed``, ``CV_Pass``...).

They serve code that calls them directly (to pick the fields a signature
covers, to fold a header it builds, to check a signature's tags before
doing anything else); :mod:`fastdkim.compat`'s signing and verification use
fastdkim's engine, not them, except :func:`rfc822_parse` (which decides what
a message's header fields are, as dkimpy does) and
:func:`validate_signature_fields` (which checks a signature's tags first, as
dkimpy does).
"""
from __future__ import annotations

import logging
import re
import time
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from .compat_errors import DuplicateTag, InvalidTagSpec, MessageFormatError, ValidationError

__all__ = [
    "Simple", "Relaxed", "CV_Pass", "CV_Fail", "CV_None", "HASH_ALGORITHMS", "ARC_HASH_ALGORITHMS",
    "select_headers", "fold", "validate_signature_fields", "rfc822_parse", "parse_tag_value",
    "canonicalize_headers", "bitsize", "text", "get_default_logger", "MANDATORY_FIELDS",
]

Simple = b"simple"    #: for callers passing ``dkim.Simple``
Relaxed = b"relaxed"  #: for callers passing ``dkim.Relaxed``
CV_Pass = b"pass"     #: ARC chain validation values
CV_Fail = b"fail"
CV_None = b"none"

#: The ``a=`` values a signature may carry (rsa-sha1 is refused later, RFC 8301).
HASH_ALGORITHMS: Tuple[bytes, ...] = (b"rsa-sha1", b"rsa-sha256", b"ed25519-sha256")
#: The ``a=`` values of ARC sets.
ARC_HASH_ALGORITHMS: Tuple[bytes, ...] = (b"rsa-sha256",)
#: The tags a DKIM-Signature must have.
MANDATORY_FIELDS: Tuple[bytes, ...] = (b"v", b"a", b"b", b"bh", b"d", b"h", b"s")

#: Leeway, in seconds, for the clocks of signers and verifiers (t= in the
#: future, x= in the past): 10 hours, as in dkimpy.
CLOCK_SLOP = 36000

_HEADER_LINE = re.compile(rb"([\x21-\x7e]+?):")
_LINE_BREAK = re.compile(rb"(\r?\n)")
_TAG_NAME = re.compile(rb"[a-zA-Z]\w*")
_B64 = re.compile(rb"[\s0-9A-Za-z+/]+[\s=]*\Z")
_WS = re.compile(rb"\s+")
_WSP_RUN = re.compile(rb"[\t ]+")
_SPECIALS = re.compile(rb"[()<>\[\]:;@\\,]")


def select_headers(headers: Sequence[Tuple[bytes, bytes]],
                   include_headers: Sequence[bytes]) -> List[Tuple[bytes, bytes]]:
    """The fields of ``headers`` (``(name, value)`` pairs, top to bottom) that
    the names ``include_headers`` (lower-case, in ``h=`` order) select: each
    name takes the next instance of its field from the bottom up; a name with
    no instance left takes nothing (RFC 6376 section 5.4.2).  Raises nothing.

    >>> select_headers([(b'from', b'biz'), (b'foo', b'bar'), (b'from', b'baz')], [b'from', b'from'])
    [(b'from', b'baz'), (b'from', b'biz')]
    """
    chosen: List[Tuple[bytes, bytes]] = []
    below: Dict[bytes, int] = {}  # per name: index of the last instance taken
    for name in include_headers:
        i = below.get(name, len(headers)) - 1
        while i >= 0 and headers[i][0].lower() != name:
            i -= 1
        if i >= 0:
            chosen.append(headers[i])
        below[name] = max(i, 0)
    return chosen


def fold(header: bytes, namelen: int = 0, linesep: bytes = b"\r\n") -> bytes:
    """Fold the last line of ``header`` at spaces so that no line exceeds 72
    characters, the first one ``namelen`` fewer (the field name goes before
    it); a run without spaces is cut at the limit.  Continuation lines start
    with one space and are at most 71 characters after it.  Raises nothing.
    """
    limit = 72 - namelen
    if len(header) <= limit:
        return header
    if len(header) - header.rfind(b"\r\n") == 2 and len(header) <= limit + 2:
        return header  # fits, but for its final line break
    done = b""
    last = header.rfind(b"\r\n ")
    if last != -1:  # only the last line is folded
        done, header = header[:last + 3], header[last + 3:]
    while len(header) > limit:
        space = header[:limit].rfind(b" ")
        if space == -1:
            done += header[:limit] + linesep + b" "
            header = header[limit:]
        else:
            done += header[:space] + linesep + b" "
            header = header[space + 1:]
        limit = 71
    return done + header


def parse_tag_value(tag_list: bytes) -> Dict[bytes, bytes]:
    """Parse a tag=value list (RFC 6376 section 3.2) into ``{name: value}``,
    names and values as bytes without surrounding whitespace; a trailing
    ``;`` is allowed, a name must start with a letter.

    :raises InvalidTagSpec: a spec without ``=``, or a bad name.
    :raises DuplicateTag: a name appears twice.
    """
    tags: Dict[bytes, bytes] = {}
    specs = tag_list.strip().split(b";")
    if not specs[-1]:
        specs.pop()
    for spec in specs:
        name, eq, value = spec.partition(b"=")
        name = name.strip()
        if not eq or not _TAG_NAME.match(name):
            raise InvalidTagSpec(spec)
        if name in tags:
            raise DuplicateTag(name)
        tags[name] = value.strip()
    return tags


def validate_signature_fields(sig: Mapping[bytes, bytes], mandatory_fields: Sequence[bytes] = MANDATORY_FIELDS,
                              arc: bool = False) -> None:
    """Check the tags of a DKIM-Signature (or, with ``arc``, an ARC field):
    the mandatory ones present, ``a=`` known, ``b=`` and ``bh=`` base64,
    ``cv=`` valid, ``d=`` free of specials, ``i=`` within ``d=`` (DKIM only),
    ``l=``, ``t=`` and ``x=`` decimal, ``q=dns/txt``, ``v=1``, ``t=`` not
    more than 10 hours ahead, ``x=`` not more than 10 hours past and not
    before ``t=``.  Returns ``None``.

    :raises ValidationError: the first check that fails.
    """
    hashes = ARC_HASH_ALGORITHMS if arc else HASH_ALGORITHMS
    for tag in mandatory_fields:
        if tag not in sig:
            raise ValidationError("missing %s=" % tag.decode("ascii", "replace"))
    if b"a" in sig and sig[b"a"] not in hashes:
        raise ValidationError("unknown signature algorithm: %r" % sig[b"a"])
    for tag in (b"b", b"bh"):
        if tag in sig and (_B64.match(sig[tag]) is None or len(_WS.sub(b"", sig[tag])) % 4):
            raise ValidationError("%s= value is not valid base64 (%r)" % (tag.decode(), sig[tag]))
    if b"cv" in sig and sig[b"cv"] not in (CV_Pass, CV_Fail, CV_None):
        raise ValidationError("cv= value is not valid (%r)" % sig[b"cv"])
    d = sig.get(b"d", b"")
    if d.isascii() and _SPECIALS.search(d):
        raise ValidationError("d= value is not valid (%r)" % d)
    if not arc and b"i" in sig:
        i = sig[b"i"].lower()
        if not i.endswith(d.lower()) or len(i) <= len(d) or i[-len(d) - 1] not in b"@.":
            raise ValidationError("i= domain is not a subdomain of d= (i=%r d=%r)" % (sig[b"i"], d))
    if b"l" in sig and re.match(rb"\d{,76}\Z", sig[b"l"]) is None:
        raise ValidationError("l= value is not a decimal integer (%r)" % sig[b"l"])
    if b"q" in sig and sig[b"q"] != b"dns/txt":
        raise ValidationError("q= value is not dns/txt (%r)" % sig[b"q"])
    now = int(time.time())
    t_sign: Optional[int] = None
    if b"t" in sig:
        if not _decimal(sig[b"t"]):
            raise ValidationError("t= value is not a decimal integer (%r)" % sig[b"t"])
        t_sign = int(sig[b"t"])
        if t_sign > now + CLOCK_SLOP:
            raise ValidationError("t= value is in the future (%r)" % sig[b"t"])
    if b"v" in sig and sig[b"v"] != b"1":
        raise ValidationError("v= value is not 1 (%r)" % sig[b"v"])
    if b"x" in sig:
        if not _decimal(sig[b"x"]):
            raise ValidationError("x= value is not a decimal integer (%r)" % sig[b"x"])
        x_sign = int(sig[b"x"])
        if x_sign < now - CLOCK_SLOP:
            raise ValidationError("x= value is past (%r)" % sig[b"x"])
        if t_sign and x_sign < t_sign:
            raise ValidationError("x= value is less than t= value (x=%r t=%r)" % (sig[b"x"], sig[b"t"]))


def _decimal(value: bytes) -> bool:
    return re.match(rb"\d+\Z", value) is not None


def split_message(message: bytes) -> Tuple[List[List[bytes]], bytes, bytes]:
    """``(headers, body, message_for_engine)``: the fields as
    :func:`rfc822_parse` gives them, and ``message`` without the lines that
    it skips (mbox ``From `` lines in the header block).

    :raises MessageFormatError: see :func:`rfc822_parse`.
    """
    parts = _LINE_BREAK.split(message)  # line, break, line, break, ..., line
    headers: List[List[bytes]] = []
    skipped: List[int] = []
    i = 0
    while i < len(parts):
        line = parts[i]
        if not line:
            i += 2
            break
        if line[:1] in (b" ", b"\t"):
            if not headers:
                raise MessageFormatError("a continuation line starts the header block: %r" % line)
            headers[-1][1] += line + b"\r\n"
        else:
            m = _HEADER_LINE.match(line)
            if m is not None:
                headers.append([m.group(1), line[m.end():] + b"\r\n"])
            elif line.startswith(b"From "):
                skipped.append(i)
            else:
                raise MessageFormatError("Unexpected characters in RFC822 header: %r" % line)
        i += 2
    body = b"\r\n".join(parts[i::2]) if i < len(parts) else b""
    if skipped:
        drop = set(skipped) | {j + 1 for j in skipped}
        message = b"".join(p for j, p in enumerate(parts) if j not in drop)
    return headers, body, message


def rfc822_parse(message: bytes) -> Tuple[List[List[bytes]], bytes]:
    """Split a message (CRLF or LF line endings) into ``(headers, body)``:
    ``headers`` a list of ``[name, value]`` (value with its folding, ending
    in CRLF), ``body`` with CRLF line endings.  Lines starting ``From `` in
    the header block (an mbox separator) are skipped.

    :raises MessageFormatError: a header line that is neither a field nor a
        continuation, or a continuation line before the first field.
    """
    headers, body, _ = split_message(message)
    return headers, body


def canonicalize_headers(headers: Sequence[Tuple[bytes, bytes]], relaxed: bool) -> List[Tuple[bytes, bytes]]:
    """``(name, value)`` pairs canonicalized (RFC 6376 section 3.4.1/3.4.2):
    unchanged for simple; for relaxed the name lower-cased, the value
    unfolded, its white space runs compressed and trimmed, CRLF-terminated.
    Raises nothing."""
    if not relaxed:
        return [(n, v) for n, v in headers]
    return [(n.lower().rstrip(), _WSP_RUN.sub(b" ", re.sub(rb"\r?\n", b"", v)).strip() + b"\r\n")
            for n, v in headers]


def bitsize(x: int) -> int:
    """Size of a positive integer in bits."""
    return x.bit_length()


def text(s: object) -> str:
    """``bytes`` (ASCII) or ``str`` as ``str``.

    :raises UnicodeDecodeError: bytes that are not ASCII.
    """
    return s.decode("ascii") if isinstance(s, (bytes, bytearray)) else str(s)


def get_default_logger() -> logging.Logger:
    """The logger :mod:`fastdkim.compat` writes to when given none:
    ``fastdkim.compat``, with a handler that discards records unless the
    application configures logging."""
    logger = logging.getLogger("fastdkim.compat")
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())
    return logger
