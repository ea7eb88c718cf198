"""The interop message set: deterministic, in wire form (CRLF), hard cases included.

Every message has a From field (DKIM requires one) and comes out byte for
byte the same on every run.  The hard cases are written out here; their
longer generated bodies (a base64 attachment, whitespace-heavy text, the
20 MB message of :func:`big_message`) come from :mod:`fastdkim.mailgen`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List

from fastdkim import mailgen

DOMAIN = "interop.example"

_DATE = b"Date: Tue, 01 Jan 2030 10:00:00 +0000\r\n"


def _msg(headers: List[bytes], body: bytes) -> bytes:
    return b"".join(h if h.endswith(b"\r\n") else h + b"\r\n" for h in headers) + b"\r\n" + body


def message_set() -> Dict[str, bytes]:
    """Name -> message.  Names are stable and used in test ids and reports."""
    base = [
        b"From: Alice <alice@interop.example>",
        b"To: Bob <bob@example.org>",
        b"Subject: interop test",
        _DATE,
        b"Message-ID: <%s@interop.example>",
    ]

    def hdrs(name: str, *extra: bytes, subject: bytes = b"") -> List[bytes]:
        h = [x for x in base]
        h[4] = h[4] % name.encode()
        if subject:
            h[2] = b"Subject: " + subject
        return h + list(extra)

    out: Dict[str, bytes] = {}
    out["plain"] = _msg(hdrs("plain"), b"Hello Bob,\r\n\r\nThe numbers are in.\r\n")

    long_value = b" ".join(b"word%03d" % i for i in range(200))  # about 1600 octets, one line
    out["folded-long-headers"] = _msg(
        hdrs(
            "folded",
            b"X-Long-Unfolded: " + long_value,
            b"References: <a1@example.org>\r\n <a2@example.org>\r\n\t<a3@example.org>\r\n  <a4@example.org>",
            b"Cc: Carol <carol@example.org>,\r\n\tDave <dave@example.org>,\r\n   Erin <erin@example.org>",
            subject=b"a subject that is folded\r\n over three\r\n\tlines",
        ),
        b"Folded headers above.\r\n",
    )
    out["trailing-whitespace"] = _msg(
        hdrs("trailing", b"X-Trailing: value with trailing space   \t", subject=b"trailing   \t "),
        b"line with trailing spaces   \r\nline with a trailing tab\t\r\n  \tleading and trailing \t \r\n"
        b"inner  runs\t\tof   white space\r\n",
    )
    out["whitespace-only-lines"] = _msg(
        hdrs("wsonly"),
        b"first\r\n \r\n\t\r\n  \t  \r\nafter whitespace-only lines\r\n \t\r\nlast\r\n",
    )
    out["trailing-blank-lines"] = _msg(
        hdrs("blanks"),
        b"text followed by many empty lines\r\n" + b"\r\n" * 12 + b"  \r\n\t\r\n" + b"\r\n" * 3,
    )
    out["empty-body"] = _msg(hdrs("empty"), b"")
    out["only-blank-body"] = _msg(hdrs("onlyblank"), b"\r\n\r\n\r\n")
    out["no-final-crlf"] = _msg(hdrs("nofinal"), b"first line\r\nlast line without a line break")
    out["utf8"] = _msg(
        [
            "From: Zoë Ångström <zoe@interop.example>".encode("utf-8"),
            "To: Jürgen Müller <juergen@example.org>".encode("utf-8"),
            "Subject: Grüße aus Köln — 日本語のテキスト ✓".encode("utf-8"),
            _DATE,
            b"Message-ID: <utf8@interop.example>",
            b"MIME-Version: 1.0",
            b"Content-Type: text/plain; charset=utf-8",
            b"Content-Transfer-Encoding: 8bit",
        ],
        "Ça va? Größe, naïve café, Ελληνικά, русский, 中文, emoji 😀  \r\n\r\n"
        "trailing  spaces après \t\r\n".encode("utf-8"),
    )
    out["multipart-base64"] = _msg(
        hdrs(
            "multipart",
            b"MIME-Version: 1.0",
            b'Content-Type: multipart/mixed; boundary="=_boundary_6376"',
        ),
        b"This is a multi-part message in MIME format.\r\n\r\n"
        b"--=_boundary_6376\r\n"
        b"Content-Type: text/plain; charset=us-ascii\r\n\r\n"
        b"See the attachment.  \r\n\r\n"
        b"--=_boundary_6376\r\n"
        b"Content-Type: application/octet-stream; name=\"data.bin\"\r\n"
        b"Content-Transfer-Encoding: base64\r\n"
        b"Content-Disposition: attachment; filename=\"data.bin\"\r\n\r\n"
        + mailgen.body("base64", 40 * 1000, seed=6376)  # 30 KB of data, in 76-column lines
        + b"\r\n--=_boundary_6376--\r\n",
    )
    out["repeated-headers"] = _msg(
        [
            b"Received: from mx2.example.net by mx1.interop.example; Tue, 01 Jan 2030 10:00:02 +0000",
            b"Received: from client.example.net by mx2.example.net; Tue, 01 Jan 2030 10:00:01 +0000",
            b"From: Alice <alice@interop.example>",
            b"To: Bob <bob@example.org>",
            b"Subject: repeated fields",
            b"To: Carol <carol@example.org>",
            _DATE,
            b"Message-ID: <repeated@interop.example>",
            b"Comments: first",
            b"Comments: second",
        ],
        b"Two Received, two To.\r\n",
    )
    out["header-case-and-spacing"] = _msg(
        [
            b"fROM: Alice <alice@interop.example>",
            b"TO:Bob <bob@example.org>",
            b"subject:\t  many   spaces\tand\t\ttabs   inside  ",
            b"DATE: Tue, 01 Jan 2030 10:00:00 +0000",
            b"message-id: <case@interop.example>",
        ],
        b"Header names in mixed case, odd spacing in values.\r\n",
    )
    # indented code, aligned tables, tab-separated columns, trailing blanks, blank-only lines
    out["random-text"] = _msg(hdrs("random"), mailgen.body("whitespace", 13 * 1000, seed=6376))
    return out


#: Size of the big message.
BIG_SIZE = 20 * 1024 * 1024


def big_message(path: Path, size: int = BIG_SIZE) -> Path:
    """Write a message of about ``size`` bytes to ``path`` (whitespace-heavy
    text: varied line lengths, trailing white space, blank-only lines; a run of
    empty lines at the end) and return ``path``."""
    head = _msg(
        [
            b"From: Alice <alice@interop.example>",
            b"To: Bob <bob@example.org>",
            b"Subject: a 20 MB message",
            _DATE,
            b"Message-ID: <big@interop.example>",
        ],
        b"",
    )
    tail = b"the end\r\n\r\n\r\n"
    text = mailgen.body("whitespace", max(0, size - len(head) - len(tail)), seed=8463)
    with open(path, "wb") as fh:
        fh.write(head)
        fh.write(text)
        fh.write(tail)
    return path
