"""Signing: options, output format, round trips, streaming, dual signing."""
from __future__ import annotations

import io
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastdkim
from fastdkim import _core
from fastdkim.errors import MessageFormatError, SigningError
from fastdkim.tags import parse_tag_list

from helpers import MESSAGE, keys_for

pytestmark = pytest.mark.usefixtures("core")

CANONS = ["simple/simple", "simple/relaxed", "relaxed/simple", "relaxed/relaxed"]


def _tags(header: bytes):
    return parse_tag_list(header.split(b":", 1)[1])


@pytest.mark.parametrize("canon", CANONS)
@pytest.mark.parametrize("alg", ["rsa", "ed25519"])
def test_round_trip(alg, canon, rsa_key, ed_key):
    key = rsa_key if alg == "rsa" else ed_key
    signer = fastdkim.Signer("example.com", "sel", key, canonicalization=canon)
    signed = signer.sign_message(MESSAGE)
    [r] = fastdkim.verify(signed, keys=keys_for("example.com", "sel", key))
    assert r.status == "pass", r.reason
    assert r.algorithm == ("rsa-sha256" if alg == "rsa" else "ed25519-sha256")
    assert r.canonicalization == canon
    assert r.domain == "example.com" and r.selector == "sel"


def test_header_format(rsa_key):
    h = fastdkim.Signer("example.com", "sel", rsa_key).sign(MESSAGE)
    assert h.startswith(b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.com; s=sel;")
    assert h.endswith(b"\r\n") and not h.endswith(b"\r\n\r\n")
    lines = h[:-2].split(b"\r\n")
    assert all(len(line) <= 78 for line in lines), [len(x) for x in lines]
    assert all(line[:1] in (b" ", b"\t") for line in lines[1:])
    t = _tags(h)
    assert set(t) >= {"v", "a", "c", "d", "s", "t", "h", "bh", "b"}


def test_default_headers_oversign_present_fields(rsa_key):
    h = fastdkim.Signer("example.com", "sel", rsa_key).sign(MESSAGE)
    names = [n.strip() for n in _tags(h)["h"].replace(b"\r\n", b"").replace(b" ", b"").split(b":")]
    assert names.count(b"from") == 2 and names.count(b"subject") == 2 and names.count(b"to") == 2
    assert b"received" not in names
    assert names.count(b"date") == 2 and names.count(b"message-id") == 2 and names.count(b"mime-version") == 2
    # absent oversigned fields are listed once: one added later breaks the signature
    assert names.count(b"cc") == 1 and names.count(b"list-id") == 1 and names.count(b"reply-to") == 1


def test_oversigning_blocks_added_headers(rsa_key):
    signed = fastdkim.Signer("example.com", "sel", rsa_key).sign_message(MESSAGE)
    keys = keys_for("example.com", "sel", rsa_key)
    added = signed.replace(b"Subject:", b"Subject: forged\r\nSubject:", 1)
    assert fastdkim.verify(added, keys=keys)[0].status == "fail"
    unsigned_added = signed.replace(b"Subject:", b"X-Extra: ok\r\nSubject:", 1)
    assert fastdkim.verify(unsigned_added, keys=keys)[0].status == "pass"


def test_explicit_headers_and_no_oversign(ed_key):
    s = fastdkim.Signer("example.com", "sel", ed_key, headers=["Subject", "Date"], oversign=[])
    h = s.sign(MESSAGE)
    assert _tags(h)["h"] == b"from:subject:date"
    [r] = fastdkim.verify(h + MESSAGE, keys=keys_for("example.com", "sel", ed_key))
    assert r.status == "pass"
    assert r.signed_headers == ("from", "subject", "date")


def test_optional_tags_i_x_l_z(rsa_key):
    s = fastdkim.Signer(
        "Example.COM", "sel", rsa_key, identity="user;x@mail.example.com", expiration=3600,
        body_length=True, copy_headers=True, clock=lambda: 2_000_000_000,
    )
    h = s.sign(MESSAGE)
    t = _tags(h)
    assert t["d"] == b"example.com"
    assert t["i"] == b"user=3Bx@mail.example.com"
    assert t["t"] == b"2000000000" and t["x"] == b"2000003600"
    assert int(t["l"]) == len(fastdkim.canonicalization.canonicalize_body(MESSAGE.split(b"\r\n\r\n", 1)[1], True))
    assert b"From:=20Alice=20Example=20<alice@example.com>" in t["z"].replace(b"\r\n", b"").replace(b" ", b"")
    keys = keys_for("example.com", "sel", rsa_key)
    [r] = fastdkim.verify(h + MESSAGE, keys=keys, now=2_000_000_100)
    assert r.status == "pass", r.reason
    assert r.identity == "user;x@mail.example.com"
    assert r.body_length == int(t["l"]) and not r.body_truncated
    [r] = fastdkim.verify(h + MESSAGE + b"appended\r\n", keys=keys, now=2_000_000_100)
    assert r.status == "neutral" and r.body_truncated and "l=" in r.reason  # (appended content is not signed)
    [r] = fastdkim.verify(h + MESSAGE, keys=keys, now=2_000_003_601)
    assert r.status == "fail" and "expired" in r.reason


def test_sign_from_file_object_and_bare_lf(ed_key, tmp_path):
    keys = keys_for("example.com", "sel", ed_key)
    signer = fastdkim.Signer("example.com", "sel", ed_key)
    lf = MESSAGE.replace(b"\r\n", b"\n")
    h = signer.sign(io.BytesIO(lf))
    assert h.endswith(b"\n") and b"\r" not in h  # the message's own line endings
    assert fastdkim.verify(h + lf, keys=keys)[0].status == "pass"
    assert fastdkim.verify((h + lf).replace(b"\n", b"\r\n"), keys=keys)[0].status == "pass"
    assert fastdkim.verify(io.BytesIO(h + lf), keys=keys)[0].status == "pass"
    signed = signer.sign_message(lf)  # the helper matches the message's own line endings
    assert b"\r" not in signed and fastdkim.verify(signed, keys=keys)[0].status == "pass"
    out = tmp_path / "lf.eml"
    signer.sign_file(io.BytesIO(lf), str(out))
    assert b"\r" not in out.read_bytes()
    assert fastdkim.verify(out.read_bytes(), keys=keys)[0].status == "pass"


def test_sign_file_bounded_and_atomic(ed_key, tmp_path):
    src = tmp_path / "in.eml"
    body = b"line of text that repeats\r\n" * 200_000  # ~5 MB
    src.write_bytes(MESSAGE.split(b"\r\n\r\n")[0] + b"\r\n\r\n" + body)
    dst = tmp_path / "out.eml"
    signer = fastdkim.Signer("example.com", "sel", ed_key)
    header = signer.sign_file(str(src), str(dst))
    data = dst.read_bytes()
    assert data == header + src.read_bytes()
    assert fastdkim.verify(data, keys=keys_for("example.com", "sel", ed_key))[0].status == "pass"
    with pytest.raises(SigningError):
        signer.sign_file(str(src), str(src), overwrite=True)
    with pytest.raises(FileExistsError):
        signer.sign_file(str(src), str(dst))
    assert dst.read_bytes() == data
    dst.write_bytes(b"old")
    signer.sign_file(str(src), str(dst), overwrite=True)
    assert fastdkim.verify(dst.read_bytes(), keys=keys_for("example.com", "sel", ed_key))[0].status == "pass"
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".fastdkim-")]


def test_sign_file_from_unseekable_stream(ed_key):
    class Pipe(io.RawIOBase):
        def __init__(self, data):
            self._b = io.BytesIO(data)

        def readable(self):
            return True

        def seekable(self):
            return False

        def readinto(self, buf):
            chunk = self._b.read(len(buf))
            buf[: len(chunk)] = chunk
            return len(chunk)

    out = io.BytesIO()
    signer = fastdkim.Signer("example.com", "sel", ed_key)
    header = signer.sign_file(io.BufferedReader(Pipe(MESSAGE)), out)
    assert out.getvalue() == header + MESSAGE


def test_dual_signing_hashes_each_body_once(rsa_key, ed_key, monkeypatch):
    created = []
    real = _core.core.BodyHasher

    class Counting:
        def __init__(self, *a, **k):
            created.append(a)
            self._h = real(*a, **k)

        def update(self, d):
            self._h.update(d)

        def digest(self):
            return self._h.digest()

        @property
        def length(self):
            return self._h.length

    monkeypatch.setattr(_core.core, "BodyHasher", Counting)
    signers = [
        fastdkim.Signer("example.com", "rsa", rsa_key),
        fastdkim.Signer("example.com", "ed", ed_key),
        fastdkim.Signer("example.com", "ed2", ed_key, canonicalization="relaxed/simple"),
    ]
    headers = fastdkim.sign_all(MESSAGE, signers)
    assert len(created) == 2  # relaxed body shared by the first two; simple once
    monkeypatch.undo()
    keys = {}
    for s, k in (("rsa", rsa_key), ("ed", ed_key), ("ed2", ed_key)):
        keys.update(keys_for("example.com", s, k))
    results = fastdkim.verify(b"".join(headers) + MESSAGE, keys=keys)
    assert [r.status for r in results] == ["pass", "pass", "pass"]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"domain": "exa mple.com"}, "domain"),
        ({"domain": ""}, "domain"),
        ({"selector": "a;b"}, "selector"),
        ({"algorithm": "rsa-sha1"}, "8301"),
        ({"algorithm": "ed25519-sha256"}, "match"),
        ({"algorithm": "hmac"}, "unknown"),
        ({"canonicalization": "loose/simple"}, "canonicalization"),
        ({"identity": "user@other.com"}, "subdomain"),
        ({"identity": "nobody"}, "@"),
        ({"expiration": -5}, "expiration"),
        ({"headers": ["Bad Name"]}, "header"),
        ({"headers": ["DKIM-Signature"]}, "DKIM-Signature"),
    ],
)
def test_bad_options(rsa_key, kwargs, match):
    args = {"domain": "example.com", "selector": "sel"}
    args.update(kwargs)
    with pytest.raises(SigningError, match=match):
        fastdkim.Signer(args.pop("domain"), args.pop("selector"), rsa_key, **args)


def test_idn_domain_becomes_a_label(ed_key):
    s = fastdkim.Signer("bücher.example", "sel", ed_key)
    assert s.domain == "xn--bcher-kva.example"
    signed = s.sign_message(MESSAGE)
    keys = keys_for("xn--bcher-kva.example", "sel", ed_key)
    assert fastdkim.verify(signed, keys=keys)[0].status == "pass"


def test_message_without_from_is_refused(ed_key):
    with pytest.raises(MessageFormatError, match="From"):
        fastdkim.Signer("example.com", "s", ed_key).sign(b"Subject: x\r\n\r\nbody\r\n")


def test_sign_rejects_text_and_other_types(ed_key):
    s = fastdkim.Signer("example.com", "s", ed_key)
    with pytest.raises(TypeError):
        s.sign("From: a@example.com\r\n\r\n")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="binary mode"):  # a text-mode file is an argument of the wrong type
        s.sign(io.StringIO("From: a@example.com\n\nbody\n"))  # type: ignore[arg-type]


def test_empty_body_and_header_only_messages(ed_key):
    keys = keys_for("example.com", "s", ed_key)
    for msg in (b"From: a@example.com\r\n\r\n", b"From: a@example.com\r\n", b"From: a@example.com",
                b"From: a@example.com\r\n\r\nno final newline"):
        for canon in CANONS:
            s = fastdkim.Signer("example.com", "s", ed_key, canonicalization=canon)
            [r] = fastdkim.verify(s.sign(msg) + msg, keys=keys)
            assert r.status == "pass", (msg, canon, r.reason)


_field = st.binary(min_size=0, max_size=40).filter(lambda b: b"\n" not in b and b"\r" not in b)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    canon=st.sampled_from(CANONS),
    subject=_field,
    body=st.binary(max_size=300),
    data=st.data(),
)
def test_any_change_to_signed_content_fails(ed_key, canon, subject, body, data):
    msg = b"From: a@example.com\r\nSubject: x" + subject + b"\r\n\r\n" + body
    keys = keys_for("example.com", "s", ed_key)
    signed = fastdkim.Signer("example.com", "s", ed_key, canonicalization=canon).sign_message(msg)
    assert fastdkim.verify(signed, keys=keys)[0].status == "pass"
    # Change one letter or digit of the signed header values or the body.
    start = signed.index(b"\r\nFrom:") + 2
    positions = [i for i in range(start, len(signed)) if chr(signed[i]).isalnum()]
    if not positions:
        return
    pos = data.draw(st.sampled_from(positions))
    old = signed[pos]
    new = data.draw(st.sampled_from([c for c in b"0aZ9q" if c != old and c != (old ^ 0x20)]))
    tampered = signed[:pos] + bytes([new]) + signed[pos + 1:]
    assert fastdkim.verify(tampered, keys=keys)[0].status == "fail"


def test_lf_bytes_are_recognised_and_wire_bytes_untouched(ed_key):
    keys = keys_for("example.com", "s", ed_key)
    signer = fastdkim.Signer("example.com", "s", ed_key)
    lf = MESSAGE.replace(b"\r\n", b"\n")
    signed_lf = signer.sign_message(lf)
    assert fastdkim.verify(signed_lf, keys=keys)[0].status == "pass"
    assert fastdkim.verify(signed_lf.replace(b"\n", b"\r\n"), keys=keys)[0].status == "pass"
    # Wire-form bytes: a bare LF inside the body is body content, not a line ending.
    wire = MESSAGE + b"odd\nline\r\n"
    signed = signer.sign_message(wire)
    assert fastdkim.verify(signed, keys=keys)[0].status == "pass"
    assert fastdkim.verify(signed.replace(b"odd\nline", b"odd\r\nline"), keys=keys)[0].status == "fail"
    assert fastdkim.verify(signed, keys=keys, bare_lf=True)[0].status == "fail"


def test_header_names_as_one_colon_separated_string(ed_key):
    s = fastdkim.Signer("example.com", "sel", ed_key, headers="Subject:Date", oversign="")
    assert _tags(s.sign(MESSAGE))["h"] == b"from:subject:date"
    s = fastdkim.Signer("example.com", "sel", ed_key, headers="from:subject", oversign="subject")
    assert _tags(s.sign(MESSAGE))["h"] == b"from:subject:subject"
    with pytest.raises(SigningError):
        fastdkim.Signer("example.com", "sel", ed_key, headers=["from", 5])


@pytest.mark.parametrize("head", [b"From: a@example.com\r\nno colon on this line\r\n",
                                  b" Subject: folded first\r\nFrom: a@example.com\r\n",
                                  b"From: a@example.com\r\n: empty name\r\n"])
def test_malformed_header_block_is_refused(ed_key, head):
    with pytest.raises(MessageFormatError, match="malformed header block"):
        fastdkim.Signer("example.com", "sel", ed_key).sign(head + b"\r\nbody\r\n")


@pytest.mark.parametrize("first_line_len", [10, 5000])
def test_header_plus_message_works_for_unix_line_endings(ed_key, first_line_len):
    lf_msg = MESSAGE.replace(b"\r\n", b"\n")
    lf_msg = b"X-Long: " + b"y" * first_line_len + b"\n" + lf_msg
    s = fastdkim.Signer("example.com", "sel", ed_key)
    header = s.sign(lf_msg)
    assert b"\r" not in header and header.endswith(b"\n")
    keys = keys_for("example.com", "sel", ed_key)
    [r] = fastdkim.verify(header + lf_msg, keys=keys)
    assert r.status == "pass", r.reason
    assert s.sign_message(lf_msg).count(b"\r") == 0
    # several signers at once: the same line endings
    fields = fastdkim.sign_all(lf_msg, [s, s])
    assert all(b"\r" not in f for f in fields)
    [r1, r2] = fastdkim.verify(b"".join(fields) + lf_msg, keys=keys)
    assert r1.status == r2.status == "pass"
    # wire form is untouched: CRLF in, CRLF out
    assert s.sign(MESSAGE).endswith(b"\r\n")


def test_refuses_more_h_entries_than_a_verifier_accepts(ed_key):
    msg = b"From: a@example.com\r\n" + b"Cc: x@example.org\r\n" * 600 + b"\r\nbody\r\n"
    with pytest.raises(MessageFormatError, match="more than a verifier accepts"):
        fastdkim.Signer("example.com", "sel", ed_key).sign(msg)


@pytest.mark.parametrize("message", [
    b"From: a@example.com\r\nFrom: b@example.com\r\nSubject: x\r\n\r\nbody\r\n",
    b"Subject: x\r\nFROM: a@example.com\r\nTo: c@example.org\r\nfrom: b@example.com\r\n\r\nbody\r\n",
])
def test_a_message_with_several_from_fields_is_not_signed(message):
    """RFC 5322 allows one From field: readers show either of two, so no
    signature vouches for both (through every way of signing)."""
    import io

    from fastdkim.errors import UnsignableMessageError
    from fastdkim.message import read_message
    from fastdkim.signing import sign_parsed
    from fastdkim.streaming import SigningSession

    signer = fastdkim.Signer("example.com", "sel", fastdkim.generate_private_key("ed25519"))
    for attempt in range(2):  # (the second from the remembered plan of these field names)
        with pytest.raises(UnsignableMessageError, match="2 From header fields"):
            signer.sign(message)
    with pytest.raises(UnsignableMessageError, match="2 From header fields"):
        signer.sign(io.BytesIO(message))
    with pytest.raises(UnsignableMessageError, match="2 From header fields"):
        sign_parsed(read_message(message), [signer])
    session = SigningSession([signer])
    head = message.split(b"\r\n\r\n")[0].split(b"\r\n")
    for line in head:
        name, _, value = line.partition(b":")
        session.header(name.decode(), value)
    with pytest.raises(UnsignableMessageError, match="2 From header fields"):
        session.end_of_headers()
    with pytest.raises(UnsignableMessageError, match="2 From header fields"):
        signer.sign(message.replace(b"\r\n", b"\n"))


@pytest.mark.parametrize("option, value, match", [
    ("oversign", False, "oversign must be a str of names"),
    ("headers", b"from:to", "headers must be a str of names"),
    ("timestamp", 1700000000, r"timestamp must be True or False, not int \(t= is the signing time, from clock\)"),
    ("body_length", 100, "body_length must be True or False"),
    ("copy_headers", "yes", "copy_headers must be True or False"),
    ("bare_lf", 1, "bare_lf must be True, False or None"),
])
def test_an_option_of_the_wrong_type_is_a_type_error_naming_it(option, value, match):
    key = fastdkim.generate_private_key("ed25519")
    with pytest.raises(TypeError, match=match):
        fastdkim.Signer("example.com", "sel", key, **{option: value})
    assert fastdkim.Signer("example.com", "sel", key, oversign=(), headers=iter(["from", "to"])).oversign == frozenset()
