"""Deterministic benchmark inputs: mail bodies, header blocks, messages and keys.

Every generator takes a size and a seed and returns the same bytes on every
machine and every run (``random.Random`` with a fixed seed; no clock, no
``os.urandom``).  Bodies are in wire form (CRLF line endings) and end in CRLF.

Body kinds:

``plain``
    prose wrapped at 72 columns with quoted replies and signature blocks,
    8bit UTF-8 (the "realistic" text of ``bench_canon.py``).
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
    tables, tab-separated columns, trailing blanks, blank-only lines (the
    "whitespace-heavy" text of ``bench_canon.py``).

Large bodies are assembled from a pool of blocks generated once per kind
(a few hundred KB), picked in a seeded random order, so that a 50 MB body
takes a fraction of a second to build yet never repeats with a short period.
"""
from __future__ import annotations

import base64
import binascii
import functools
import random
from dataclasses import dataclass
from typing import Callable, Dict, List, Sequence, Tuple

import bench_canon

KB = 1000
MB = 1000 * 1000

DOMAIN = "example.com"
SELECTORS = {"rsa-sha256": "rsa2026", "ed25519-sha256": "ed2026"}
ALGORITHMS = ("rsa-sha256", "ed25519-sha256")
CANONICALIZATIONS = ("relaxed/relaxed", "simple/simple", "relaxed/simple", "simple/relaxed")
BODY_KINDS = ("plain", "html", "base64", "mixed", "whitespace")
BOUNDARY_MIXED = "=_mixed_6376_8463"
BOUNDARY_ALT = "=_alt_5322_2045"

_POOL_BYTES = 400 * KB


def size_label(size: int) -> str:
    if size >= MB and size % MB == 0:
        return "%d MB" % (size // MB)
    if size >= KB and size % KB == 0:
        return "%d KB" % (size // KB)
    return "%d B" % size


def _split_blocks(text: bytes) -> List[bytes]:
    """Cut generated text into blocks of whole lines (each ending in CRLF)."""
    parts = text.split(b"\r\n\r\n")
    blocks = [p + b"\r\n\r\n" for p in parts[:-1] if p]
    return blocks


def _fill(blocks: Sequence[bytes], size: int, seed: int) -> bytes:
    """Pick blocks in a seeded order until ``size``; cut at the last line end."""
    rnd = random.Random(seed)
    out: List[bytes] = []
    total = 0
    while total < size:
        b = blocks[rnd.randrange(len(blocks))]
        out.append(b)
        total += len(b)
    data = b"".join(out)
    cut = data.rfind(b"\r\n", 0, size - 1)
    return data[: cut + 2] if cut >= 0 else data[:size]


@functools.lru_cache(maxsize=None)
def _plain_pool() -> Tuple[bytes, ...]:
    return tuple(_split_blocks(bench_canon.realistic_text(_POOL_BYTES, seed=6376)))


@functools.lru_cache(maxsize=None)
def _whitespace_pool() -> Tuple[bytes, ...]:
    return tuple(_split_blocks(bench_canon.whitespace_heavy_text(_POOL_BYTES, seed=8463)))


_TAGS = ("div", "p", "span", "td", "table", "tr", "a", "strong", "em", "li")
_STYLES = (
    'style="font-family: Arial, Helvetica, sans-serif; font-size: 14px; color: #333333;"',
    'style="margin: 0 0 12px 0; line-height: 1.5;"',
    'class="content" align="left" valign="top"',
    'style="padding: 8px 16px; background-color: #f4f4f4; border: 1px solid #dddddd;"',
    'href="https://example.com/newsletter/2026/11?utm_source=mail&amp;utm_medium=email"',
)


@functools.lru_cache(maxsize=None)
def _html_pool() -> Tuple[bytes, ...]:
    rnd = random.Random(2045)
    words = bench_canon.WORDS
    blocks: List[bytes] = []
    total = 0
    while total < _POOL_BYTES:
        lines: List[str] = []
        depth = rnd.randint(1, 4)
        for _ in range(rnd.randint(4, 14)):
            tag = rnd.choice(_TAGS)
            attrs = (" " + rnd.choice(_STYLES)) if rnd.random() < 0.6 else ""
            text = " ".join(rnd.choice(words) for _ in range(rnd.randint(3, 30)))
            ind = "  " * depth
            lines.append("%s<%s%s>%s</%s>%s" % (ind, tag, attrs, text, tag, " " if rnd.random() < 0.05 else ""))
            depth = max(1, min(8, depth + rnd.choice((-1, 0, 1))))
        raw = ("\n".join(lines) + "\n").encode("utf-8")
        qp = binascii.b2a_qp(raw, quotetabs=False, istext=True, header=False)
        block = qp.replace(b"\n", b"\r\n")
        blocks.append(block)
        total += len(block)
    return tuple(blocks)


def plain_body(size: int, seed: int = 1) -> bytes:
    return _fill(_plain_pool(), size, seed)


def whitespace_body(size: int, seed: int = 2) -> bytes:
    return _fill(_whitespace_pool(), size, seed)


def html_body(size: int, seed: int = 3) -> bytes:
    head = b"<!DOCTYPE html>\r\n<html><head><meta charset=3D\"utf-8\"></head><body>\r\n"
    return head + _fill(_html_pool(), max(size - len(head), 2), seed)


def base64_body(size: int, seed: int = 4) -> bytes:
    rnd = random.Random(seed)
    raw_len = (size // 78) * 57 + max(0, size % 78 - 2) * 3 // 4
    data = base64.encodebytes(rnd.randbytes(max(raw_len, 3)))
    return data.replace(b"\n", b"\r\n")


def _part(headers: Sequence[str], body: bytes) -> bytes:
    return ("\r\n".join(headers) + "\r\n\r\n").encode("ascii") + body


def mixed_body(size: int, seed: int = 5) -> bytes:
    rnd = random.Random(seed)
    attachments = size >= 20 * KB
    text_size = max(300, size // 12) if attachments else max(200, size * 2 // 5)
    html_size = max(400, size // 6) if attachments else max(300, size // 2)
    alt = b"".join(
        [
            ("--%s\r\n" % BOUNDARY_ALT).encode(),
            _part(["Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit"],
                  plain_body(text_size, seed + 10)),
            ("--%s\r\n" % BOUNDARY_ALT).encode(),
            _part(["Content-Type: text/html; charset=utf-8", "Content-Transfer-Encoding: quoted-printable"],
                  html_body(html_size, seed + 20)),
            ("--%s--\r\n" % BOUNDARY_ALT).encode(),
        ]
    )
    parts = [
        b"This is a multi-part message in MIME format.\r\n\r\n",
        ("--%s\r\n" % BOUNDARY_MIXED).encode(),
        _part(['Content-Type: multipart/alternative; boundary="%s"' % BOUNDARY_ALT], alt),
    ]
    used = sum(len(p) for p in parts) + len(BOUNDARY_MIXED) + 8
    if attachments:
        left = size - used
        n = rnd.randint(1, 3)
        names = ("report.pdf", "photo.jpg", "slides.pptx", "data.xlsx")
        for i in range(n):
            name = names[rnd.randrange(len(names))]
            hdrs = [
                'Content-Type: application/octet-stream; name="%s"' % name,
                "Content-Transfer-Encoding: base64",
                'Content-Disposition: attachment; filename="%s"' % name,
            ]
            overhead = len(BOUNDARY_MIXED) + 6 + sum(len(h) + 2 for h in hdrs) + 2
            share = (left // (n - i)) - overhead
            if share < 200:
                break
            att = _part(hdrs, base64_body(share, seed + 100 + i))
            parts.append(("--%s\r\n" % BOUNDARY_MIXED).encode())
            parts.append(att)
            left -= len(att) + len(BOUNDARY_MIXED) + 4
    parts.append(("--%s--\r\n" % BOUNDARY_MIXED).encode())
    return b"".join(parts)


BODY_GENERATORS: Dict[str, Callable[[int], bytes]] = {
    "plain": plain_body,
    "html": html_body,
    "base64": base64_body,
    "mixed": mixed_body,
    "whitespace": whitespace_body,
}

CONTENT_TYPES = {
    "plain": ["Content-Type: text/plain; charset=utf-8; format=flowed", "Content-Transfer-Encoding: 8bit"],
    "html": ["Content-Type: text/html; charset=utf-8", "Content-Transfer-Encoding: quoted-printable"],
    "base64": ["Content-Type: application/pdf; name=\"report.pdf\"", "Content-Transfer-Encoding: base64"],
    "mixed": ['Content-Type: multipart/mixed;\r\n boundary="%s"' % BOUNDARY_MIXED],
    "whitespace": ["Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit"],
}


def body(kind: str, size: int) -> bytes:
    """A body of ``kind`` of about ``size`` bytes (within a line of it)."""
    return BODY_GENERATORS[kind](size)


# -- header blocks -------------------------------------------------------------------


def _date(rnd: random.Random) -> str:
    day = rnd.randint(1, 28)
    wd = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")[day % 7]
    return "%s, %d Nov 2026 %02d:%02d:%02d +0000" % (wd, day, rnd.randint(0, 23), rnd.randint(0, 59), rnd.randint(0, 59))


def header_fields(count: int, kind: str = "plain", seed: int = 5322) -> List[str]:
    """``count`` header fields (folded where long), as an outgoing message has them.

    The first fields are the usual ones (From, To, Cc, Subject, Date,
    Message-ID, MIME-Version, the content fields, X-Mailer); beyond those come
    trace and list fields (Received, Authentication-Results, List-*, X-*), some
    folded and with irregular whitespace, as a relayed list message has them.
    """
    rnd = random.Random(seed)
    subject = " ".join(rnd.choice(bench_canon.WORDS) for _ in range(8))
    base = [
        "From: Example Sender <sender@example.com>",
        "To: Recipient One <one@example.net>, Recipient Two <two@example.org>",
        "Cc: team@example.com",
        "Subject: %s" % subject,
        "Date: %s" % _date(rnd),
        "Message-ID: <%016x.%08x@mail.example.com>" % (rnd.getrandbits(64), rnd.getrandbits(32)),
        "MIME-Version: 1.0",
    ]
    base += CONTENT_TYPES[kind]
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
            fields.append("List-Unsubscribe:  <mailto:unsubscribe@example.com>,\r\n    <https://example.com/u/%x>" % rnd.getrandbits(48))
        elif r == 7:
            fields.append("X-Spam-Status: No, score=-%d.%d required=5.0 tests=BAYES_00,\r\n\tHTML_MESSAGE autolearn=ham" % (rnd.randint(0, 9), rnd.randint(0, 9)))
        elif r == 8:
            fields.append("x-Originating-IP:   [198.51.100.%d]  " % rnd.randint(1, 250))
        else:
            fields.append("X-Campaign-Id: %s" % " ".join(rnd.choice(bench_canon.WORDS) for _ in range(rnd.randint(2, 12))))
    return fields


def message(fields: Sequence[str], body_bytes: bytes) -> bytes:
    return ("\r\n".join(fields) + "\r\n\r\n").encode("utf-8") + body_bytes


def small_message(total: int = 3 * KB, headers: int = 10) -> bytes:
    """A plain-text message of ``total`` bytes (header block + body)."""
    head = message(header_fields(headers, "plain"), b"")
    return head + plain_body(total - len(head), seed=7)


def header_message(headers: int, body_size: int = 1 * KB) -> bytes:
    """A message with ``headers`` header fields and a short plain body."""
    return message(header_fields(headers, "plain", seed=5322 + headers), plain_body(body_size, seed=8))


def big_message(kind: str, size: int) -> Tuple[bytes, bytes]:
    """(message, its body): a 10-field header block over ``body(kind, size)``."""
    b = body(kind, size)
    return message(header_fields(10, kind), b), b


# -- keys ------------------------------------------------------------------------------


@dataclass
class KeySet:
    """One signing key per algorithm, with what every implementation needs of it."""

    private: Dict[str, object]  # algorithm -> cryptography private key
    pem: Dict[str, bytes]  # algorithm -> PEM (RSA: PKCS#1, Ed25519: PKCS#8)
    record: Dict[str, str]  # algorithm -> TXT value
    seed_b64: bytes  # Ed25519 seed, base64 (the form dkimpy takes)

    def name(self, alg: str) -> str:
        return "%s._domainkey.%s" % (SELECTORS[alg], DOMAIN)

    def mapping(self) -> Dict[str, str]:
        return {self.name(a): self.record[a] for a in ALGORITHMS}


def make_keys() -> KeySet:
    """Fresh RSA-2048 and Ed25519 keys (key generation is not timed)."""
    from cryptography.hazmat.primitives import serialization

    import fastdkim

    rsa_key = fastdkim.generate_private_key("rsa", 2048)
    ed_key = fastdkim.generate_private_key("ed25519")
    pem = {
        "rsa-sha256": rsa_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                            serialization.NoEncryption()),
        "ed25519-sha256": ed_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()),
    }
    seed = ed_key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    return KeySet(
        private={"rsa-sha256": rsa_key, "ed25519-sha256": ed_key},
        pem=pem,
        record={"rsa-sha256": fastdkim.public_key_record(rsa_key), "ed25519-sha256": fastdkim.public_key_record(ed_key)},
        seed_b64=base64.b64encode(seed),
    )
