"""Test helpers: messages, key sources, and hand-made signatures."""
from __future__ import annotations

import base64
import hashlib
import random
from typing import Dict, Optional, Sequence, Tuple

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from fastdkim import canonicalization
from fastdkim.keys import public_key_record
from fastdkim.message import read_message
from fastdkim.tags import FWS, parse_tag_list, strip_fws

MESSAGE = (
    b"Received: from mx.example.net by mail.example.com; Tue, 1 Jan 2030 00:00:00 +0000\r\n"
    b"From: Alice Example <alice@example.com>\r\n"
    b"To: Bob <bob@example.org>,\r\n\tCarol <carol@example.org>\r\n"
    b"Subject:  Quarterly   report \r\n"
    b"Date: Tue, 1 Jan 2030 00:00:00 +0000\r\n"
    b"Message-ID: <1234@example.com>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"Hello Bob,  \r\n"
    b"\r\n"
    b"  The numbers\tare in.\r\n"
    b"\r\n"
    b"\r\n"
)


# A plain newsletter, and what an attacker puts above a signed copy of it: a
# header block that parsers breaking lines at a bare LF read with a From and a
# Subject of the attacker's, and an early end of the header block.
NEWSLETTER = b"From: alice@example.com\r\nTo: bob@example.net\r\nSubject: newsletter\r\n\r\nweekly news\r\n"
SMUGGLED = (b"Received: by relay\r\nX-Relay: 1\nFrom: CEO <ceo@example.com>\nSubject: urgent\n\n"
            b"Please wire $10k today.\n\r\n")


def select_headers(fields, names):
    """h= selection written out plainly (an oracle independent of the core):
    each name takes the next instance from the bottom up; surplus names select nothing."""
    by_name = {}
    for name, raw in fields:
        by_name.setdefault(name, []).append(raw)
    out = []
    for name in names:
        stack = by_name.get(name)
        if stack:
            out.append(stack.pop())
    return out


def tag_spans(data: bytes) -> Dict[str, Tuple[int, int]]:
    """Where each tag's value sits in ``data`` (a tag-list that parses),
    found by splitting at ``;`` (an oracle independent of the core's parser).

    The span runs from just after ``=`` up to the ``;`` (or the end): the
    value with all its surrounding whitespace, which is what section 3.7
    deletes for ``b=``.
    """
    spans: Dict[str, Tuple[int, int]] = {}
    pos = 0
    for spec in data.split(b";"):
        end = pos + len(spec)
        eq = spec.find(b"=")
        if eq >= 0:
            spans.setdefault(spec[:eq].strip(FWS).decode("ascii", "replace"), (pos + eq + 1, end))
        pos = end + 1
    return spans


def canonicalize_header(raw: bytes, relaxed: bool) -> bytes:
    """One header field, canonicalized (relaxed: by the active core's
    ``relaxed_header``; simple: as it is), ending in CRLF."""
    if relaxed:
        return canonicalization.relaxed_header(raw)
    return raw if raw.endswith(b"\r\n") else raw + b"\r\n"


def keys_for(domain: str, selector: str, key, **record_opts) -> Dict[str, str]:
    return {"%s._domainkey.%s" % (selector, domain): public_key_record(key, **record_opts)}


def random_message(rng: random.Random, body_lines: int = 20) -> bytes:
    words = [b"lorem", b"ipsum", b"dolor", b"sit", b"amet", b"\xc3\xa9t\xc3\xa9", b"  ", b"\t", b"x" * 90]
    hdr = (
        b"From: a@example.com\r\nTo: b@example.org\r\nSubject: " + b" ".join(rng.choice(words) for _ in range(5))
        + b"\r\nDate: Mon, 1 Jan 2029 00:00:00 +0000\r\n\r\n"
    )
    lines = [b" ".join(rng.choice(words) for _ in range(rng.randrange(0, 12))) for _ in range(body_lines)]
    return hdr + b"\r\n".join(lines) + b"\r\n"


def resign(message: bytes, key, *, hash_name: str = "sha256", index: int = 0) -> bytes:
    """Recompute the b= of the ``index``-th DKIM-Signature (its tags used as written).

    The field must already carry a b= tag (any value); the returned message has
    that value replaced by a valid signature over the field's own tags.  Lets
    tests build signatures a conforming signer would never make.
    """
    pm = read_message(message)
    sigs = [r for n, r in pm.fields if n == b"dkim-signature"]
    raw = sigs[index]
    colon = raw.index(b":") + 1
    tags = parse_tag_list(raw[colon:])
    c = tags["c"].decode() if "c" in tags else "simple/simple"
    relaxed_h = c.split("/")[0] == "relaxed"
    a, b = tag_spans(raw[colon:])["b"]
    own = raw[: colon + a] + raw[colon + b:]
    names = [n.strip().lower() for n in strip_fws(tags["h"]).split(b":")]
    others = [f for f in pm.fields if f[1] is not raw]  # the field being signed is not selectable
    data = b"".join(canonicalize_header(f, relaxed_h) for f in select_headers(others, names))
    data += canonicalize_header(own, relaxed_h)[:-2]
    if isinstance(key, rsa.RSAPrivateKey):
        algo = hashes.SHA256() if hash_name == "sha256" else hashes.SHA1()
        sig = key.sign(data, padding.PKCS1v15(), algo)
    else:
        sig = key.sign(hashlib.sha256(data).digest())
    region = raw[colon + a: colon + b]
    new_raw = raw[: colon + a] + base64.b64encode(sig) + region[len(region.rstrip()):] + raw[colon + b:]
    return message.replace(raw, new_raw, 1)


def body_hash(body: bytes, relaxed: bool, hash_name: str = "sha256", limit: Optional[int] = None) -> str:
    from fastdkim._canon_py import canonicalize_body

    c = canonicalize_body(body, relaxed)
    if limit is not None:
        c = c[:limit]
    return base64.b64encode(hashlib.new(hash_name, c).digest()).decode()


def handmade(
    headers: bytes,
    body: bytes,
    tags: Sequence[str],
    key,
    *,
    hash_name: str = "sha256",
) -> bytes:
    """A message signed with exactly ``tags`` (``b=`` appended and computed)."""
    field = b"DKIM-Signature: " + "; ".join(list(tags) + ["b="]).encode() + b"\r\n"
    try:
        return resign(field + headers + b"\r\n" + body, key, hash_name=hash_name)
    except Exception:  # tags too broken to sign over (duplicates, no h=): a dummy b=
        return field.replace(b"b=\r\n", b"b=AAAA\r\n") + headers + b"\r\n" + body
