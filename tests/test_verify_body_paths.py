"""A body is hashed the same way however it arrives: in one small piece (one
call into the core), in one large piece, or in many pieces from a file
(a streaming hasher), under each canonicalization, with and without l=.
Each test runs once per core."""
from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import serialization

import fastdkim
from fastdkim.canonicalization import ONE_CALL_MAX

pytestmark = pytest.mark.usefixtures("core")

NAME = "sel._domainkey.example.com"
HEAD = b"From: a@example.com\r\nTo: b@example.org\r\nSubject: paths\r\n\r\n"
BODIES = [
    b"",
    b"\r\n\r\n",
    b"Hello  world \t\r\nsecond line\r\n\r\n\r\n",
    b"no final line break",
    b"x \t y\r\n" * (ONE_CALL_MAX // 7 + 10),  # past the one-call limit
]


class _Trickle:
    """A binary file that reads at most *step* octets a call."""

    def __init__(self, data: bytes, step: int) -> None:
        self.data, self.pos, self.step = data, 0, step

    def read(self, n: int = -1) -> bytes:
        k = self.step if n < 0 else min(n, self.step)
        out = self.data[self.pos:self.pos + k]
        self.pos += len(out)
        return out


def _setup(ed_key, canonicalization, body_length):
    pem = ed_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                               serialization.NoEncryption())
    raw = ed_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    signer = fastdkim.Signer(domain="example.com", selector="sel", private_key=pem,
                             canonicalization=canonicalization, body_length=body_length)
    verifier = fastdkim.Verifier(keys={NAME: "v=DKIM1; k=ed25519; p=" + base64.b64encode(raw).decode()})
    return signer, verifier


@pytest.mark.parametrize("canonicalization", ["relaxed/relaxed", "simple/simple"])
@pytest.mark.parametrize("body_length", [False, True])
@pytest.mark.parametrize("body", BODIES)
def test_every_body_path_agrees(ed_key, canonicalization, body_length, body):
    signer, verifier = _setup(ed_key, canonicalization, body_length)
    message = HEAD + body
    signed = signer.sign(message) + message
    want = [r.as_dict() for r in verifier.verify(signed)]
    assert [r["status"] for r in want] == ["pass"]
    for step in (1, 7, 4096, 1 << 22):
        got = verifier.verify(_Trickle(signed, step))
        assert [r.as_dict() for r in got] == want
    extended = signed + b"more\r\n"
    first = [r.as_dict() for r in verifier.verify(extended)]
    for step in (3, 1 << 22):
        assert [r.as_dict() for r in verifier.verify(_Trickle(extended, step))] == first
    if not body_length:
        assert (first[0]["status"], first[0]["reason"]) == ("fail", "body hash mismatch")
    elif body.strip() and body.endswith(b"\r\n"):  # the signed part is unchanged
        assert (first[0]["status"], first[0]["body_truncated"]) == ("neutral", True)


def test_l_beyond_the_body_in_every_path(ed_key):
    signer, verifier = _setup(ed_key, "relaxed/relaxed", True)
    message = HEAD + b"line one\r\nline two\r\n"
    signed = signer.sign(message) + message
    cut = signed[:-len(b"line two\r\n")]
    for m in (cut, _Trickle(cut, 2), _Trickle(cut, 1 << 22)):
        r = verifier.verify(m)[0]
        assert r.status == "permerror"
        assert r.reason.startswith("l=") and "exceeds the canonicalized body length" in r.reason


def test_a_text_file_body_is_refused_in_every_path(ed_key):
    signer, verifier = _setup(ed_key, "relaxed/relaxed", False)

    class _Text(_Trickle):
        def __init__(self, data: bytes, step: int, head: int) -> None:
            super().__init__(data, step)
            self.head = head

        def read(self, n: int = -1):  # bytes for the header block, then str
            out = super().read(n)
            return out if self.pos <= self.head else out.decode("latin-1")

    message = HEAD + b"body\r\n"
    signed = signer.sign(message) + message
    head = signed.index(b"\r\n\r\n") + 4
    for step in (head, 1 << 22):
        with pytest.raises(TypeError):
            verifier.verify(_Text(signed, step, head))
