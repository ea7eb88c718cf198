"""One exception tree: what the public API raises is a DKIMError, an OSError or a TypeError."""
from __future__ import annotations

import io
import json

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

import fastdkim
import fastdkim.aio
from fastdkim import errors
from fastdkim.errors import DKIMError, OptionError, SigningError, UnsignableMessageError
from fastdkim.verification import Status

MSG = b"From: a@example.com\r\nSubject: s\r\n\r\nbody\r\n"


@pytest.fixture(scope="module")
def ed_key():
    return ed25519.Ed25519PrivateKey.generate()


def test_every_exception_class_derives_from_dkim_error():
    for name in errors.__all__:
        assert issubclass(getattr(errors, name), DKIMError), name


def test_exception_names_stay_importable_where_they_were():
    from fastdkim.batch import MboxLockedError
    from fastdkim.journal import JournalError
    from fastdkim.keys import KeyRecordError
    from fastdkim.message import HeaderTooLarge, TooManyHeaderFields
    from fastdkim.policy import FromAddressError, NoSigningKey, PolicyError
    from fastdkim.tags import TagSyntaxError

    for cls in (MboxLockedError, JournalError, KeyRecordError, HeaderTooLarge, TooManyHeaderFields, FromAddressError,
                NoSigningKey, PolicyError, TagSyntaxError):
        assert issubclass(cls, DKIMError) and getattr(errors, cls.__name__) is cls
    assert issubclass(MboxLockedError, OSError) and issubclass(JournalError, OSError)
    assert issubclass(KeyRecordError, ValueError) and issubclass(TagSyntaxError, ValueError)


def test_reading_errors_are_not_signing_errors_but_refusals_to_sign_are_both():
    assert not issubclass(errors.HeaderTooLarge, SigningError)
    assert not issubclass(errors.MessageFormatError, SigningError)
    assert issubclass(UnsignableMessageError, errors.MessageFormatError) and issubclass(UnsignableMessageError,
                                                                                         SigningError)


def test_unsignable_message_is_both(ed_key):
    with pytest.raises(UnsignableMessageError):
        fastdkim.Signer("example.com", "s", ed_key).sign(b"Subject: no from\r\n\r\nbody\r\n")


@pytest.mark.parametrize("call, names", [
    (lambda k: fastdkim.Signer("example.com", 123, k), "selector"),
    (lambda k: fastdkim.Signer(None, "s", k), "domain"),
    (lambda k: fastdkim.Signer("example.com", "s", k, canonicalization=("relaxed", "simple")), "canonicalization"),
    (lambda k: fastdkim.Signer("example.com", "s", k, expiration="3600"), "expiration"),
    (lambda k: fastdkim.sign_all(MSG, fastdkim.Signer("example.com", "s", k)), "signers"),
    (lambda k: fastdkim.Signer("example.com", "s", k).sign_message("From: a@example.com\r\n\r\n"), "message"),
    (lambda k: fastdkim.Signer("example.com", "s", k).sign(12), "message"),
    (lambda k: fastdkim.verify("From: a@example.com\r\n\r\n"), "message"),
    (lambda k: fastdkim.verify(MSG, max_signaturs=3), "max_signaturs"),
    (lambda k: fastdkim.verify(io.StringIO("From: a@example.com\n\nbody\n")), "binary mode"),
    (lambda k: fastdkim.verify(MSG, max_signatures="a"), "max_signatures must be an int"),
    (lambda k: fastdkim.verify(MSG, max_signatures=True), "max_signatures must be an int"),
    (lambda k: fastdkim.verify(MSG, min_key_bits="x"), "min_key_bits must be an int"),
    (lambda k: fastdkim.verify(MSG, clock_skew="x"), "clock_skew must be an int"),
    (lambda k: fastdkim.verify(MSG, max_header_names=2.5), "max_header_names must be an int"),
    (lambda k: fastdkim.verify(MSG, allow_sha1="no"), "allow_sha1 must be a bool"),
    (lambda k: fastdkim.verify(MSG, bare_lf="x"), "bare_lf must be a bool or None"),
    (lambda k: fastdkim.verify(MSG, now="x"), "now must be a number"),
    (lambda k: fastdkim.verify(MSG, clock=12), "clock must be callable"),
    (lambda k: fastdkim.Verifier(now="x"), "now must be a number"),
    (lambda k: fastdkim.Verifier(allow_sha1=1), "allow_sha1 must be a bool"),
    (lambda k: fastdkim.aio.AsyncVerifier(clock_skew=None), "clock_skew must be an int"),
    (lambda k: fastdkim.aio.AsyncVerifier(now=[1]), "now must be a number"),
    (lambda k: fastdkim.Signer("example.com", "s", 42), "private key must be"),
])
def test_wrong_types_raise_type_error_naming_the_argument(ed_key, call, names):
    with pytest.raises(TypeError, match=names):
        call(ed_key)


def test_sign_message_takes_a_binary_file(ed_key, tmp_path):
    p = tmp_path / "m.eml"
    p.write_bytes(MSG)
    s = fastdkim.Signer("example.com", "s", ed_key)
    with open(p, "rb") as fh:
        signed = s.sign_message(fh)
    assert signed.endswith(MSG) and signed.startswith(b"DKIM-Signature:")


@pytest.mark.parametrize("call", [
    lambda: fastdkim.Verifier(max_signatures=-1),
    lambda: fastdkim.Verifier(clock_skew=-1),
    lambda: fastdkim.Verifier(min_key_bits=-1024),
    lambda: fastdkim.verify(MSG, max_header_names=-1),
    lambda: fastdkim.DNSKeySource(nameservers=["127.0.0.1"], port=0),
    lambda: fastdkim.DNSKeySource(nameservers=["not an address"]),
    lambda: fastdkim.DNSKeySource(timeout=0),
])
def test_bad_option_values_are_option_errors(call):
    with pytest.raises(OptionError):
        call()


@pytest.mark.parametrize("call", [
    lambda k: fastdkim.Signer("example.com", "s", k, canonicalization="relaxed/bogus"),
    lambda k: fastdkim.Signer("example.com", "s", k, expiration=-5),
    lambda k: fastdkim.Signer("exa mple.com", "s", k),
    lambda k: fastdkim.Signer("example.com", "s s", k),
    lambda k: fastdkim.Signer("example.com", "s", k, algorithm="rsa-sha512"),
    lambda k: fastdkim.Signer("example.com", "s", k, identity="nobody"),
    lambda k: fastdkim.Signer("example.com", "s", k, headers="fr om:to"),
    lambda k: fastdkim.Signer("example.com", "s", k, headers=["from", "DKIM-Signature"]),
])
def test_bad_signer_options_are_option_errors_and_signing_errors(ed_key, call):
    with pytest.raises(errors.SignerOptionError) as info:
        call(ed_key)
    assert isinstance(info.value, OptionError) and isinstance(info.value, SigningError)


def test_status_is_a_str_enum_that_reads_as_the_word(ed_key):
    from fastdkim.keys import public_key_record

    rec = public_key_record(ed_key.public_key())
    signed = fastdkim.Signer("example.com", "s", ed_key).sign_message(MSG)
    (r,) = fastdkim.verify(signed, keys={"s._domainkey.example.com": rec})
    assert r.status is Status.PASS and r.status == "pass" and r.passed
    assert str(r.status) == "%s" % r.status == f"{r.status}" == "pass"
    assert json.dumps({"status": r.status}) == '{"status": "pass"}'
    assert {Status(v) for v in ("pass", "fail", "neutral", "temperror", "permerror")} == set(Status)
