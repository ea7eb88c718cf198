"""Synthetic mail: a deterministic corpus of realistic messages.

For demonstrations, benchmarks and tests: the same ``seed`` and sizes give the
same bytes every time::

    from fastdkim.mailgen import generate_corpus

    for message in generate_corpus(100, seed=1, max_size=64 * 1024):
        ...
"""
from __future__ import annotations

import base64
import math
import random
from typing import Iterator

__all__ = ["generate_corpus"]

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
