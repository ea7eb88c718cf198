"""TXT record values as bytes (fastdkim._txt): one rule, which the key sources,
the verifier and the key-record parser all follow."""
from __future__ import annotations

import pytest

import fastdkim
from fastdkim._txt import join_strings, txt_bytes
from fastdkim.errors import KeyRecordError, OptionError, TemporaryLookupError
from fastdkim.keysources import CallableKeySource, MappingKeySource

NAME = "sel._domainkey.example.com"


@pytest.mark.parametrize("value, expected", [
    (b"v=DKIM1; p=x", b"v=DKIM1; p=x"),
    (bytearray(b"abc"), b"abc"),
    (memoryview(b"abc"), b"abc"),
    ("v=DKIM1; n=caf\u00e9", "v=DKIM1; n=caf\u00e9".encode("utf-8")),
    ("a\udc80b", b"a\x80b"),  # what surrogateescape decoding left goes back to its octet
    ("", b""),
])
def test_txt_bytes(value, expected):
    out = txt_bytes(value)
    assert out == expected and type(out) is bytes


@pytest.mark.parametrize("value", [None, 42, 3.5, ["x"], ("x",)])
def test_txt_bytes_wrong_type(value):
    with pytest.raises(TypeError, match="where a TXT record"):
        txt_bytes(value)


def test_txt_bytes_other_lone_surrogates_cannot_be_encoded():
    with pytest.raises(UnicodeEncodeError):
        txt_bytes("p=\ud800")


def test_join_strings():
    assert join_strings([b"v=DKIM1; p=", b"AAAA", b"BBBB"]) == b"v=DKIM1; p=AAAABBBB"
    assert join_strings([]) == b""


@pytest.mark.parametrize("value", ["v=DKIM1; p=x", b"v=DKIM1; p=x", "a\udc80b", "caf\u00e9"])
def test_every_consumer_follows_the_same_rule(value):
    expected = txt_bytes(value)
    assert MappingKeySource({NAME: value}).lookup(NAME) == [expected]
    assert MappingKeySource({NAME: [value, value]}).lookup(NAME) == [expected, expected]
    assert CallableKeySource(lambda name: value).lookup(NAME) == [expected]


def test_every_consumer_refuses_the_same_values():
    with pytest.raises(OptionError, match="cannot be encoded"):
        MappingKeySource({NAME: "p=\ud800"})
    with pytest.raises(TypeError, match="where a TXT record"):
        MappingKeySource({NAME: 42})
    with pytest.raises(TemporaryLookupError, match="unusable value"):
        CallableKeySource(lambda name: "p=\ud800").lookup(NAME)
    with pytest.raises(TemporaryLookupError, match="where a TXT record"):
        CallableKeySource(lambda name: [b"ok", 42]).lookup(NAME)
    with pytest.raises(KeyRecordError, match="not valid text"):
        fastdkim.parse_key_record("v=DKIM1; p=\ud800")
    with pytest.raises(TypeError, match="where a TXT record"):
        fastdkim.parse_key_record(42)  # type: ignore[arg-type]


def test_verifier_reads_text_records_by_the_same_rule():
    key = fastdkim.generate_private_key("ed25519")
    msg = fastdkim.Signer("example.com", "sel", key).sign_message(
        b"From: a@example.com\r\nSubject: s\r\n\r\nbody\r\n")
    record = fastdkim.public_key_record(key)

    class Text:
        def lookup(self, name):
            return [record]

    class Wrong:
        def lookup(self, name):
            return [42]

    assert fastdkim.verify(msg, keys=Text())[0].status == "pass"
    [r] = fastdkim.verify(msg, keys=Wrong())
    assert r.status == "temperror" and "where a TXT record" in r.reason
