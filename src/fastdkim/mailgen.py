"""Synthetic mail: deterministic messages for demonstrations, benchmarks and tests.

The same arguments give the same bytes on every machine and every run
(``random.Random`` with fixed seeds; no clock, no ``os.urandom``).  Everything
is in wire form (CRLF line endings) unless LF is asked for::

    from fastdkim import mailgen

    for m in mailgen.generate_corpus(100, seed=1, max_size=64 * 1024):
        ...                                          # realistic mail of mixed sizes
    mailgen.body("whitespace", 100_000)              # one kind of body, about 100 KB
    mailgen.message(3000, total=True)                # a 3 KB message, header block included
    mailgen.message(1000, headers=100)               # 100 header fields over a 1 KB body
    mailgen.message(1000, line_ending=b"\n")         # the same kind of message with LF endings
    b"".join(mailgen.iter_header_flood(4_000_000))   # a header block of four million fields

Body kinds (:data:`BODY_KINDS`):

``plain``
    prose wrapped at 72 columns with quoted replies and signature blocks,
    8bit UTF-8, a few trailing blanks and double spaces.
``html``
    HTML with nested, space-indented markup, quoted-printable encoded (soft
    line breaks, ``=3D``, ``=20``), as mail clients send it.
``base64``
    a base64 attachment: random octets, 76-column lines.
``mixed``
    typical mail: ``multipart/mixed`` holding a ``multipart/alternative``
    (the plain and HTML parts) and, from 20 KB on, base64 attachments that
    make up about three quarters of the size.
``whitespace``
    the relaxed canonicalization worst case: indented code, space-aligned
    tables, tab-separated columns, trailing blanks, blank-only lines.

Large bodies are assembled from a pool of blocks generated once per kind
(a few hundred KB), picked in a seeded random order, so that a 50 MB body
takes a fraction of a second to build yet never repeats with a short period.
"""
from __future__ import annotations

import base64
import math
import random
from typing import Iterator, List, Optional, Sequence

from ._mailbodies import _CONTENT_TYPES, _CRLF, _PROSE_WORDS, BODY_KINDS, _check_kind, _check_size, body

__all__ = [
    "BODY_KINDS",
    "assemble",
    "body",
    "generate_corpus",
    "header_fields",
    "iter_header_flood",
    "message",
]

_WORDS = (
    "the of and to in is for on that with as was at by be this from or have are an not but which "
    "invoice order shipment account meeting schedule report update review quarterly budget team "
    "customer support release notes please find attached regards thanks tomorrow today project"
).split()


def _text_pool(rng: random.Random, size: int) -> bytes:
    """About ``size`` bytes of CRLF-terminated lines of words."""
    lines = []
    total = 0
    while total < size:
        n = rng.randrange(0, 14)
        line = " ".join(rng.choice(_WORDS) for _ in range(n))
        if rng.random() < 0.05:
            line += "  \t "  # trailing whitespace, as mail clients leave it
        lines.append(line)
        total += len(line) + 2
    return "\r\n".join(lines).encode("ascii") + b"\r\n"


def _b64_pool(rng: random.Random, size: int) -> bytes:
    """About ``size`` bytes of random data in base64, in lines of 76 characters."""
    raw = rng.getrandbits(8 * (size * 3 // 4)).to_bytes(size * 3 // 4, "little")
    enc = base64.b64encode(raw)
    return b"\r\n".join(enc[i:i + 76] for i in range(0, len(enc), 76)) + b"\r\n"


def generate_corpus(count: int, seed: int = 1, min_size: int = 2048, max_size: int = 1 << 20) -> Iterator[bytes]:
    """Yield ``count`` deterministic, realistic messages of log-uniform sizes.

    Plain text, HTML and multipart messages with base64 attachments, with
    folded headers, trailing whitespace and UTF-8 subjects; the header block
    ends its lines in CRLF, and a body is cut from a pool of CRLF-terminated
    lines at any offset (so it may start or end within a line ending).  Body
    sizes are drawn between ``min_size`` and ``max_size`` bytes; the same
    arguments always give the same messages.
    """
    rng = random.Random(seed)
    text = _text_pool(rng, 2 * max_size)
    b64 = _b64_pool(rng, 2 * max_size)
    lo, hi = math.log(min_size), math.log(max_size)
    for i in range(count):
        size = int(math.exp(rng.uniform(lo, hi)))
        kind = rng.random()
        subject = rng.choice(["Quarterly report", "Re: order #%d" % i, "Grüße aus Köln ✓", "Your invoice"])
        head = (
            "From: Sender %d <sender%d@example.com>\r\n"
            "To: recipient%d@example.org,\r\n\tcc-list@example.org\r\n"
            "Subject: %s\r\n"
            "Date: Mon, 02 Mar 2026 10:%02d:00 +0000\r\n"
            "Message-ID: <%d.%d@example.com>\r\n"
            "MIME-Version: 1.0\r\n" % (i, i, i, subject, i % 60, i, seed)
        ).encode("utf-8")
        off = rng.randrange(0, max_size)
        if kind < 0.5:
            body = text[off:off + size]
            head += b"Content-Type: text/plain; charset=utf-8\r\n"
        elif kind < 0.75:
            body = b"<html><body>\r\n<p>" + text[off:off + size].replace(b"\r\n\r\n", b"</p>\r\n<p>") + b"</p></body></html>\r\n"
            head += b"Content-Type: text/html; charset=utf-8\r\n"
        else:
            part = text[off:off + min(size // 4, 4096)]
            att = b64[off:off + size]
            body = (
                b"--b1\r\nContent-Type: text/plain\r\n\r\n" + part
                + b"--b1\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n"
                + b"Content-Disposition: attachment; filename=doc.pdf\r\n\r\n" + att + b"--b1--\r\n"
            )
            head += b'Content-Type: multipart/mixed; boundary="b1"\r\n'
        yield head + b"\r\n" + body


# -- bodies of one kind ----------------------------------------------------------------------



# -- header blocks and messages -------------------------------------------------------------


def _date(rnd: random.Random) -> str:
    day = rnd.randint(1, 28)
    wd = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")[day % 7]
    return "%s, %d Nov 2026 %02d:%02d:%02d +0000" % (wd, day, rnd.randint(0, 23), rnd.randint(0, 59), rnd.randint(0, 59))


def header_fields(count: int, kind: str = "plain", seed: int = 5322) -> List[str]:
    """``count`` header fields (folded where long), as an outgoing message has them.

    The first fields are the usual ones (From, To, Cc, Subject, Date,
    Message-ID, MIME-Version, the content fields of a ``kind`` body, X-Mailer,
    Reply-To); beyond those come trace and list fields (Received,
    Authentication-Results, List-*, X-*), some folded and with irregular
    whitespace, as a relayed list message has them.  Each string is one field
    without its final line break; folded fields hold CRLF.

    Raises ``ValueError`` for an unknown kind or a negative count.
    """
    _check_kind(kind)
    _check_size("count", count)
    rnd = random.Random(seed)
    subject = " ".join(rnd.choice(_PROSE_WORDS) for _ in range(8))
    base = [
        "From: Example Sender <sender@example.com>",
        "To: Recipient One <one@example.net>, Recipient Two <two@example.org>",
        "Cc: team@example.com",
        "Subject: %s" % subject,
        "Date: %s" % _date(rnd),
        "Message-ID: <%016x.%08x@mail.example.com>" % (rnd.getrandbits(64), rnd.getrandbits(32)),
        "MIME-Version: 1.0",
    ]
    base += _CONTENT_TYPES[kind]
    base.append("X-Mailer: benchmark-generator 1.0")
    base.append("Reply-To: replies@example.com")
    fields = base[:count]
    i = 0
    while len(fields) < count:
        r = i % 10
        i += 1
        if r in (0, 1, 2, 3):
            hop = rnd.randint(1, 250)
            fields.append(
                "Received: from relay%d.example.net (relay%d.example.net [192.0.2.%d])\r\n"
                "\tby mx%d.example.com (Postfix) with ESMTPS id %08X\r\n"
                "\tfor <one@example.net>; %s" % (hop, hop, hop, rnd.randint(1, 9), rnd.getrandbits(32), _date(rnd))
            )
        elif r == 4:
            fields.append(
                "Authentication-Results: mx.example.com;\r\n   spf=pass smtp.mailfrom=example.com;\r\n"
                "   dmarc=pass (p=reject) header.from=example.com"
            )
        elif r == 5:
            fields.append("List-Id: Example discussion list <list-%d.example.com>" % rnd.randint(1, 99))
        elif r == 6:
            fields.append("List-Unsubscribe:  <mailto:unsubscribe@example.com>,\r\n    <https://example.com/u/%x>"
                          % rnd.getrandbits(48))
        elif r == 7:
            fields.append("X-Spam-Status: No, score=-%d.%d required=5.0 tests=BAYES_00,\r\n\tHTML_MESSAGE autolearn=ham"
                          % (rnd.randint(0, 9), rnd.randint(0, 9)))
        elif r == 8:
            fields.append("x-Originating-IP:   [198.51.100.%d]  " % rnd.randint(1, 250))
        else:
            fields.append("X-Campaign-Id: %s" % " ".join(rnd.choice(_PROSE_WORDS) for _ in range(rnd.randint(2, 12))))
    return fields


def _check_line_ending(line_ending: bytes) -> None:
    if line_ending not in (b"\r\n", b"\n"):
        raise ValueError("line_ending must be b'\\r\\n' or b'\\n' (got %r)" % (line_ending,))


def assemble(fields: Sequence[str], content: bytes, line_ending: bytes = b"\r\n") -> bytes:
    """A message: ``fields`` (strings, UTF-8 encoded, CRLF in folded ones), the
    empty line, then ``content`` (in wire form).

    With ``line_ending=b"\\n"`` every CRLF of the result becomes LF (mail as
    stored on Unix systems).  Raises ``ValueError`` for any other line ending.
    """
    _check_line_ending(line_ending)
    data = ("\r\n".join(fields) + "\r\n\r\n").encode("utf-8") + content
    return data if line_ending == _CRLF else data.replace(_CRLF, line_ending)


def message(size: int, *, kind: str = "plain", headers: int = 10, seed: Optional[int] = None,
            header_seed: int = 5322, total: bool = False, line_ending: bytes = b"\r\n") -> bytes:
    """A message: :func:`header_fields` (``headers`` of them, drawn with
    ``header_seed``) over a ``kind`` :func:`body` of about ``size`` bytes.

    With ``total=True``, ``size`` is the size of the whole message instead:
    the body gets what the header block leaves (at least nothing).  With
    ``line_ending=b"\\n"`` the message has LF line endings throughout (the sizes
    are those of the CRLF form).

    Raises ``ValueError`` for an unknown kind, a negative size or header
    count, or a line ending other than CRLF or LF.
    """
    _check_size("size", size)
    _check_line_ending(line_ending)
    fields = header_fields(headers, kind, seed=header_seed)
    if total:
        size = max(0, size - len(assemble(fields, b"")))
    return assemble(fields, body(kind, size, seed), line_ending)


def iter_header_flood(count: int, field_size: int = 8, *, end: bool = True, line_ending: bytes = b"\r\n",
                      piece_size: int = 1 << 20) -> Iterator[bytes]:
    """A message with a huge header block, in pieces of about ``piece_size`` bytes.

    The header block is a From field, then ``count`` copies of one field of
    ``field_size`` octets (line ending included: ``X:yyyy`` and as many ``y``
    as it takes); with ``end``, the empty line and a one-line body follow,
    without, the message is all header.  For measuring what a parser keeps of
    a header block: the pieces are small, so that writing such a message to a
    file takes little memory.

    Raises ``ValueError`` for a negative count, a field too short to hold
    ``X:`` and the line ending, a piece size below 1, or a line ending other
    than CRLF or LF.
    """
    _check_size("count", count)
    _check_line_ending(line_ending)
    if field_size < 2 + len(line_ending):
        raise ValueError("field_size must be at least %d (got %d)" % (2 + len(line_ending), field_size))
    if piece_size < 1:
        raise ValueError("piece_size must be at least 1 (got %d)" % piece_size)
    field = b"X:" + b"y" * (field_size - 2 - len(line_ending)) + line_ending
    yield b"From: a@example.com" + line_ending
    per = max(1, piece_size // field_size)
    for _ in range(count // per):
        yield field * per
    if count % per:
        yield field * (count % per)
    if end:
        yield line_ending + b"body" + line_ending
