"""Streaming sessions (fastdkim.streaming): fields one by one, the body in
chunks of any size; the same fields and results as signing and verifying the
whole message."""
from __future__ import annotations

import random

import pytest

import fastdkim
from fastdkim.errors import FromAddressError, HeaderTooLarge, NoSigningKey, UnsignableMessageError
from fastdkim.mailgen import message as make_message
from fastdkim.message import read_message
from fastdkim.policy import SigningPolicy
from fastdkim.streaming import SigningSession, VerificationSession, field_from_milter

from helpers import MESSAGE, keys_for

pytestmark = pytest.mark.usefixtures("core")

NOW = 1_900_000_000.0


def _clock() -> float:
    return NOW


def _split(message: bytes):
    """(name, value) pairs as a milter gets them (value after the colon,
    folded lines joined by a bare LF), and the body."""
    pm = read_message(message, bare_lf=False)
    pairs = []
    for _, raw in pm.fields:
        name, _, value = raw.partition(b":")
        pairs.append((name.decode("ascii"), value[:-2].replace(b"\r\n", b"\n")))
    return pairs, b"".join(pm.body)


def _chunks(body: bytes, rng: random.Random, most: int):
    i = 0
    while i < len(body):
        n = rng.randint(1, most)
        yield body[i:i + n]
        i += n


def _stream_sign(session: SigningSession, message: bytes, rng: random.Random, most: int = 7):
    pairs, body = _split(message)
    for name, value in pairs:
        session.header(name, value)
    session.end_of_headers()
    for c in _chunks(body, rng, most):
        session.body(c)
    return session.finish()


def _stream_verify(checks, message: bytes, keys, rng: random.Random, most: int = 7):
    session = VerificationSession(checks, now=NOW)
    pairs, body = _split(message)
    for name, value in pairs:
        session.header(name, value)
    session.end_of_headers()
    session.lookup_keys(fastdkim.keysources.as_key_source(keys))
    for c in _chunks(body, rng, most):
        session.body(c)
    return session.finish()


def test_field_from_milter():
    assert field_from_milter("Subject", b" hi") == b"Subject: hi\r\n"
    assert field_from_milter("To", b" a,\n\tb") == b"To: a,\r\n\tb\r\n"
    assert field_from_milter(b"To", b" a,\r\n\tb") == b"To: a,\r\n\tb\r\n"
    assert field_from_milter("X", memoryview(b"\n\n")) == b"X:\r\n\r\n\r\n"


@pytest.mark.parametrize("canon", ["relaxed/relaxed", "simple/simple", "relaxed/simple", "simple/relaxed"])
@pytest.mark.parametrize("most", [1, 2, 3, 64, 100000])
def test_signing_matches_whole_message(rsa_key, ed_key, canon, most):
    rng = random.Random(most)
    signers = [fastdkim.Signer("example.com", "r", rsa_key, canonicalization=canon, clock=_clock),
               fastdkim.Signer("example.com", "e", ed_key, canonicalization="relaxed/relaxed", clock=_clock,
                               body_length=True)]
    for message in (MESSAGE, make_message(5000, seed=3), MESSAGE.replace(b"\r\n\r\n", b"\r\n\r\n\r\n \t\r\n\r\n", 1)):
        got = _stream_sign(SigningSession(signers), message, rng, most)
        assert got == fastdkim.sign_all(message, signers)
        signed = b"".join(got) + message
        keys = {**keys_for("example.com", "r", rsa_key), **keys_for("example.com", "e", ed_key)}
        assert [r.status for r in fastdkim.verify(signed, keys=keys, now=NOW)] == ["pass", "pass"]


def test_crlf_split_across_chunks(rsa_key):
    body = b"line one \r\nline two\t\r\n\r\n\r\n"
    message = b"From: a@example.com\r\nSubject: s\r\n\r\n" + body
    signer = fastdkim.Signer("example.com", "r", rsa_key, clock=_clock)
    session = SigningSession([signer])
    session.header("From", b" a@example.com")
    session.header("Subject", b" s")
    session.end_of_headers()
    for i in range(len(body)):  # every CRLF split between two chunks
        session.body(body[i:i + 1])
    assert session.finish() == [signer.sign(message)]


def test_policy_chooses_signers(tmp_path, rsa_key, ed_key):
    from fastdkim.keys import write_private_key

    write_private_key(str(tmp_path / "r.pem"), rsa_key)
    (tmp_path / "p.toml").write_text('[domains."example.com"]\nkeys = [{ selector = "r", key = "r.pem" }]\n'
                                     '[domains."*.example.org"]\nkeys = [{ selector = "w", key = "r.pem" }]\n')
    policy = SigningPolicy.from_file(str(tmp_path / "p.toml"))
    s = SigningSession(policy=policy)
    s.header("From", b" a@sub.example.org")
    (chosen,) = s.end_of_headers()
    assert (chosen.domain, chosen.selector) == ("example.org", "w")
    assert s.signers == (chosen,)
    s = SigningSession(policy=policy)
    s.header("From", b" a@other.example")
    with pytest.raises(NoSigningKey):
        s.end_of_headers()
    s = SigningSession(policy=policy)
    s.header("From", b" a@example.com, b@example.com")
    with pytest.raises(FromAddressError):
        s.end_of_headers()


def test_signing_refusals(rsa_key):
    signer = fastdkim.Signer("example.com", "r", rsa_key)
    s = SigningSession([signer])
    s.header("Subject", b" no from")
    with pytest.raises(UnsignableMessageError, match="no From"):
        s.end_of_headers()
    s = SigningSession([signer])
    s.header("From", b" a@example.com\rX: smuggled")
    with pytest.raises(UnsignableMessageError):
        s.end_of_headers()
    s = SigningSession([signer], max_header_bytes=100)
    with pytest.raises(HeaderTooLarge):
        for _ in range(10):
            s.header("X-Filler", b" " + b"x" * 20)
    with pytest.raises(TypeError):
        SigningSession()
    with pytest.raises(TypeError):
        SigningSession([signer], policy=object())  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        SigningSession([signer], max_header_bytes=0)


def test_signing_call_order(rsa_key):
    s = SigningSession([fastdkim.Signer("example.com", "r", rsa_key)])
    with pytest.raises(RuntimeError):
        s.body(b"x")
    with pytest.raises(RuntimeError):
        s.finish()
    s.header("From", b" a@example.com")
    s.end_of_headers()
    with pytest.raises(RuntimeError):
        s.header("To", b" b@example.com")
    with pytest.raises(RuntimeError):
        s.end_of_headers()
    s.finish()
    with pytest.raises(RuntimeError):
        s.finish()
    with pytest.raises(RuntimeError):
        s.body(b"x")


@pytest.mark.parametrize("most", [1, 5, 4096])
def test_verification_matches_whole_message(rsa_key, ed_key, most):
    rng = random.Random(most)
    keys = {**keys_for("example.com", "r", rsa_key), **keys_for("example.com", "e", ed_key)}
    signers = [fastdkim.Signer("example.com", "r", rsa_key, clock=_clock, canonicalization="simple/simple"),
               fastdkim.Signer("example.com", "e", ed_key, clock=_clock, body_length=True)]
    message = make_message(3000, seed=7)
    signed = b"".join(fastdkim.sign_all(message, signers)) + message
    tampered = signed[:-10] + b"X" + signed[-9:]
    unknown = signed.replace(b"s=r;", b"s=zz;", 1)
    extended = signed + b"appended\r\n"  # l= covers the original body
    checks = fastdkim.Verifier(now=NOW)
    for msg in (signed, tampered, unknown, extended, MESSAGE):
        want = fastdkim.verify(msg, keys=keys, now=NOW)
        got = _stream_verify(checks, msg, keys, rng, most)
        assert [(r.status, r.reason, r.domain, r.selector, r.body_truncated) for r in got] == \
               [(r.status, r.reason, r.domain, r.selector, r.body_truncated) for r in want]
    assert [r.status for r in _stream_verify(checks, tampered, keys, rng, most)] == ["fail", "fail"]
    assert [r.status for r in _stream_verify(checks, unknown, keys, rng, most)] == ["permerror", "pass"]


def test_verification_settled_without_keys(rsa_key):
    checks = fastdkim.Verifier()
    s = VerificationSession(checks)
    s.header("From", b" a@example.com")
    assert s.end_of_headers() == []
    s.body(b"anything\r\n")
    assert s.finish() == []
    s = VerificationSession(checks, max_header_bytes=50)
    for _ in range(5):
        s.header("DKIM-Signature", b" " + b"x" * 30)
    assert s.end_of_headers() == []
    (r,) = s.finish()
    assert r.status == "permerror" and "larger than 50" in r.reason


def test_verification_key_outcomes(rsa_key):
    signer = fastdkim.Signer("example.com", "r", rsa_key, clock=_clock)
    message = b"From: a@example.com\r\n\r\nbody\r\n"
    signed = signer.sign(message) + message
    pairs, body = _split(signed)
    s = VerificationSession(fastdkim.Verifier(), now=NOW)
    for name, value in pairs:
        s.header(name, value)
    assert s.end_of_headers() == ["r._domainkey.example.com"]
    s.body(body)
    with pytest.raises(RuntimeError, match="keys"):
        s.finish()
    with pytest.raises(KeyError):
        s.set_keys({})
    s.set_keys({"r._domainkey.example.com": ("temperror", "key lookup failed: timeout")})
    (r,) = s.finish()
    assert (r.status, r.reason) == ("temperror", "key lookup failed: timeout")
    with pytest.raises(RuntimeError):
        s.finish()
    with pytest.raises(TypeError):
        VerificationSession(object())  # type: ignore[arg-type]


@pytest.mark.parametrize("given, status", [
    ("record", "pass"), ("record as text", "pass"), ("lone record", "pass"), ("no record", "permerror"),
    ("key", "pass"), ("garbage", "permerror"),
])
def test_set_keys_takes_what_a_key_source_answers(rsa_key, given, status):
    """The TXT records as a key source returns them (or None), not only what
    the verifier made of them."""
    from fastdkim.keys import public_key_record

    signer = fastdkim.Signer("example.com", "r", rsa_key, clock=_clock)
    message = b"From: a@example.com\r\n\r\nbody\r\n"
    pairs, body = _split(signer.sign(message) + message)
    verifier = fastdkim.Verifier()
    s = VerificationSession(verifier, now=NOW)
    for name, value in pairs:
        s.header(name, value)
    [name] = s.end_of_headers()
    record = public_key_record(rsa_key.public_key())
    s.set_keys({name: {"record": [record.encode()], "record as text": [record], "lone record": record,
                       "no record": None, "key": verifier.key_from(name, [record.encode()]),
                       "garbage": [b"v=DKIM1; p=!!"]}[given]})
    s.body(body)
    (r,) = s.finish()
    assert r.status == status, r.reason
    with pytest.raises(TypeError, match="keys must be a mapping"):
        VerificationSession(verifier, now=NOW).set_keys([(name, record)])


def test_author_domain_is_remembered(tmp_path, rsa_key):
    """The From domain of a field seen before is not parsed again; a From
    field that names no usable address is refused every time."""
    from fastdkim.keys import write_private_key
    from fastdkim.streaming import _REMEMBERED_FROM, _remembered_domain

    write_private_key(str(tmp_path / "r.pem"), rsa_key)
    (tmp_path / "p.toml").write_text('[domains."example.com"]\nkeys = [{ selector = "r", key = "r.pem" }]\n')
    policy = SigningPolicy.from_file(str(tmp_path / "p.toml"))
    _remembered_domain.cache_clear()
    for _ in range(3):
        s = SigningSession(policy=policy)
        s.header("From", b" Alice <alice@Example.COM>")
        (chosen,) = s.end_of_headers()
        assert chosen.domain == "example.com"
    info = _remembered_domain.cache_info()
    assert (info.misses, info.hits) == (1, 2)
    # a long From field is parsed each time, not kept
    s = SigningSession(policy=policy)
    s.header("From", b" " + b"x" * _REMEMBERED_FROM + b" <a@example.com>")
    (chosen,) = s.end_of_headers()
    assert chosen.domain == "example.com" and _remembered_domain.cache_info().currsize == 1
    for _ in range(2):
        s = SigningSession(policy=policy)
        s.header("From", b" a@example.com, b@example.com")
        with pytest.raises(FromAddressError):
            s.end_of_headers()
    s = SigningSession(policy=policy)
    s.header("From", b" a@example.com")
    s.header("From", b" b@example.com")
    with pytest.raises(FromAddressError):  # two From fields: refused, as before
        s.end_of_headers()
