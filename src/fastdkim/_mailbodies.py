"""The bodies of synthetic mail (see :mod:`fastdkim.mailgen`): prose, HTML
in quoted-printable, base64 attachments, multipart mixes and the relaxed
canonicalization's whitespace worst case, built from seeded block pools."""
from __future__ import annotations

import base64
import binascii
import functools
import random
from typing import Callable, Dict, List, Optional, Sequence, Tuple

BODY_KINDS: Tuple[str, ...] = ("plain", "html", "base64", "mixed", "whitespace")

_CRLF = b"\r\n"
_POOL_BYTES = 400 * 1000
_BOUNDARY_MIXED = "=_mixed_6376_8463"
_BOUNDARY_ALT = "=_alt_5322_2045"

_PROSE_WORDS = (
    "the of and to in is that for it with as was on be at by this had not are but from or have an "
    "they which one you were her all she there would their we him been has when who will more no if "
    "out so said what up its about into than them can only other new some could time these two may "
    "then do first any my now such like our over man me even most made after also did many before "
    "must through back years where much your way well down should because each just those people "
    "meeting invoice attached regards schedule project deadline review server message delivery "
    "signature verification domain selector header canonical body relaxed simple mailbox "
    "Grüße Straße naïve café résumé"
).split()


def _sentence(rnd: random.Random) -> str:
    n = rnd.randint(5, 18)
    s = " ".join(rnd.choice(_PROSE_WORDS) for _ in range(n))
    s = s[0].upper() + s[1:]
    if rnd.random() < 0.1:  # two spaces after the full stop
        return s + ". "
    return s + "."


def _wrap(text: str, width: int, rnd: random.Random, prefix: str = "") -> List[str]:
    lines: List[str] = []
    cur = ""
    for w in text.split(" "):
        if cur and len(cur) + 1 + len(w) > width:
            lines.append(prefix + cur)
            cur = w
        else:
            cur = cur + " " + w if cur else w
    if cur:
        lines.append(prefix + cur)
    # a few lines carry trailing blanks (format=flowed, careless editors)
    return [ln + (" " if rnd.random() < 0.03 else "") for ln in lines]


def _prose_text(size: int, seed: int) -> bytes:
    """``size`` bytes of paragraphs, quoted replies and signature blocks."""
    rnd = random.Random(seed)
    out: List[bytes] = []
    total = 0
    while total < size:
        r = rnd.random()
        if r < 0.7:
            para = " ".join(_sentence(rnd) for _ in range(rnd.randint(2, 7)))
            lines = _wrap(para, 72, rnd)
        elif r < 0.9:
            para = " ".join(_sentence(rnd) for _ in range(rnd.randint(1, 4)))
            lines = _wrap(para, 70, rnd, prefix="> ")
        else:
            lines = ["-- ", "Jane Example", "Example Corp. | +1 555 0100", "https://example.com/"]
        block = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")
        out.append(block)
        total += len(block)
    return b"".join(out)[:size]


def _whitespace_text(size: int, seed: int) -> bytes:
    """``size`` bytes of indented code, aligned tables and tab-separated columns."""
    rnd = random.Random(seed)
    out: List[bytes] = []
    total = 0
    while total < size:
        r = rnd.random()
        lines: List[str] = []
        if r < 0.4:  # indented code
            depth = 0
            for _ in range(rnd.randint(5, 25)):
                depth = max(0, min(6, depth + rnd.choice((-1, 0, 0, 1))))
                stmt = " ".join(rnd.choice(_PROSE_WORDS) for _ in range(rnd.randint(1, 6)))
                ind = ("\t" * depth) if rnd.random() < 0.3 else (" " * (4 * depth))
                trail = " " * rnd.choice((0, 0, 0, 1, 4))
                lines.append(ind + stmt + trail)
                if rnd.random() < 0.1:
                    lines.append(" " * rnd.randint(0, 12))  # blank-only line
        elif r < 0.7:  # space-aligned table
            cols = rnd.randint(3, 7)
            for _ in range(rnd.randint(3, 20)):
                cells = [rnd.choice(_PROSE_WORDS)[:12] for _ in range(cols)]
                lines.append("  ".join(c.ljust(14) for c in cells))
        elif r < 0.85:  # tab-separated values
            lines = [
                "\t".join(rnd.choice(_PROSE_WORDS) for _ in range(rnd.randint(3, 9)))
                for _ in range(rnd.randint(3, 15))
            ]
        else:
            lines = _wrap(" ".join(_sentence(rnd) for _ in range(3)), 72, rnd)
        block = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")
        out.append(block)
        total += len(block)
    return b"".join(out)[:size]


def _split_blocks(text: bytes) -> List[bytes]:
    """Cut generated text into blocks of whole lines (each ending in CRLF)."""
    parts = text.split(b"\r\n\r\n")
    return [p + b"\r\n\r\n" for p in parts[:-1] if p]


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
    cut = data.rfind(_CRLF, 0, size - 1)
    return data[: cut + 2] if cut >= 0 else data[:size]


@functools.lru_cache(maxsize=None)
def _plain_pool() -> Tuple[bytes, ...]:
    return tuple(_split_blocks(_prose_text(_POOL_BYTES, seed=6376)))


@functools.lru_cache(maxsize=None)
def _whitespace_pool() -> Tuple[bytes, ...]:
    return tuple(_split_blocks(_whitespace_text(_POOL_BYTES, seed=8463)))


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
    blocks: List[bytes] = []
    total = 0
    while total < _POOL_BYTES:
        lines: List[str] = []
        depth = rnd.randint(1, 4)
        for _ in range(rnd.randint(4, 14)):
            tag = rnd.choice(_TAGS)
            attrs = (" " + rnd.choice(_STYLES)) if rnd.random() < 0.6 else ""
            text = " ".join(rnd.choice(_PROSE_WORDS) for _ in range(rnd.randint(3, 30)))
            ind = "  " * depth
            lines.append("%s<%s%s>%s</%s>%s" % (ind, tag, attrs, text, tag, " " if rnd.random() < 0.05 else ""))
            depth = max(1, min(8, depth + rnd.choice((-1, 0, 1))))
        raw = ("\n".join(lines) + "\n").encode("utf-8")
        qp = binascii.b2a_qp(raw, quotetabs=False, istext=True, header=False)
        block = qp.replace(b"\n", _CRLF)
        blocks.append(block)
        total += len(block)
    return tuple(blocks)


def _plain_body(size: int, seed: int) -> bytes:
    return _fill(_plain_pool(), size, seed)


def _whitespace_body(size: int, seed: int) -> bytes:
    return _fill(_whitespace_pool(), size, seed)


def _html_body(size: int, seed: int) -> bytes:
    head = b"<!DOCTYPE html>\r\n<html><head><meta charset=3D\"utf-8\"></head><body>\r\n"
    return head + _fill(_html_pool(), max(size - len(head), 2), seed)


def _base64_body(size: int, seed: int) -> bytes:
    rnd = random.Random(seed)
    raw_len = (size // 78) * 57 + max(0, size % 78 - 2) * 3 // 4
    data = base64.encodebytes(rnd.randbytes(max(raw_len, 3)))
    return data.replace(b"\n", _CRLF)


def _part(headers: Sequence[str], content: bytes) -> bytes:
    return ("\r\n".join(headers) + "\r\n\r\n").encode("ascii") + content


def _mixed_body(size: int, seed: int) -> bytes:
    rnd = random.Random(seed)
    attachments = size >= 20 * 1000
    text_size = max(300, size // 12) if attachments else max(200, size * 2 // 5)
    html_size = max(400, size // 6) if attachments else max(300, size // 2)
    alt = b"".join(
        [
            ("--%s\r\n" % _BOUNDARY_ALT).encode(),
            _part(["Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit"],
                  _plain_body(text_size, seed + 10)),
            ("--%s\r\n" % _BOUNDARY_ALT).encode(),
            _part(["Content-Type: text/html; charset=utf-8", "Content-Transfer-Encoding: quoted-printable"],
                  _html_body(html_size, seed + 20)),
            ("--%s--\r\n" % _BOUNDARY_ALT).encode(),
        ]
    )
    parts = [
        b"This is a multi-part message in MIME format.\r\n\r\n",
        ("--%s\r\n" % _BOUNDARY_MIXED).encode(),
        _part(['Content-Type: multipart/alternative; boundary="%s"' % _BOUNDARY_ALT], alt),
    ]
    used = sum(len(p) for p in parts) + len(_BOUNDARY_MIXED) + 8
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
            overhead = len(_BOUNDARY_MIXED) + 6 + sum(len(h) + 2 for h in hdrs) + 2
            share = (left // (n - i)) - overhead
            if share < 200:
                break
            att = _part(hdrs, _base64_body(share, seed + 100 + i))
            parts.append(("--%s\r\n" % _BOUNDARY_MIXED).encode())
            parts.append(att)
            left -= len(att) + len(_BOUNDARY_MIXED) + 4
    parts.append(("--%s--\r\n" % _BOUNDARY_MIXED).encode())
    return b"".join(parts)


#: kind -> (generator, the seed used when none is given)
_BODIES: Dict[str, Tuple[Callable[[int, int], bytes], int]] = {
    "plain": (_plain_body, 1),
    "html": (_html_body, 3),
    "base64": (_base64_body, 4),
    "mixed": (_mixed_body, 5),
    "whitespace": (_whitespace_body, 2),
}

_CONTENT_TYPES: Dict[str, List[str]] = {
    "plain": ["Content-Type: text/plain; charset=utf-8; format=flowed", "Content-Transfer-Encoding: 8bit"],
    "html": ["Content-Type: text/html; charset=utf-8", "Content-Transfer-Encoding: quoted-printable"],
    "base64": ["Content-Type: application/pdf; name=\"report.pdf\"", "Content-Transfer-Encoding: base64"],
    "mixed": ['Content-Type: multipart/mixed;\r\n boundary="%s"' % _BOUNDARY_MIXED],
    "whitespace": ["Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit"],
}


def _check_kind(kind: str) -> None:
    if kind not in _BODIES:
        raise ValueError("unknown body kind %r (one of %s)" % (kind, ", ".join(BODY_KINDS)))


def _check_size(name: str, size: int) -> None:
    if size < 0:
        raise ValueError("%s must not be negative (got %d)" % (name, size))


def body(kind: str, size: int, seed: Optional[int] = None) -> bytes:
    """A body of ``kind`` (one of :data:`BODY_KINDS`) of about ``size`` bytes.

    In wire form, ending in CRLF, within a line (base64: a few bytes) of
    ``size``.  Each kind has its own default ``seed``; the same arguments
    always give the same bytes.

    Raises ``ValueError`` for an unknown kind or a negative size.
    """
    _check_kind(kind)
    _check_size("size", size)
    fn, default_seed = _BODIES[kind]
    return fn(size, default_seed if seed is None else seed)
