"""Results as output: Authentication-Results fields (fastdkim.authres) and
``Verification.as_dict`` (the objects ``fastdkim verify --json`` prints)."""
from __future__ import annotations

import json

import pytest

import fastdkim
from fastdkim.authres import authentication_results, is_authserv_id
from fastdkim.errors import OptionError
from fastdkim.verification import Verification

MSG = b"From: Joe <joe@example.com>\r\nTo: x@example.org\r\nSubject: hi\r\n\r\nHello there.\r\n"


@pytest.fixture(scope="module")
def signed():
    """A message signed with Ed25519, and the keys that verify it."""
    key = fastdkim.generate_private_key("ed25519")
    signer = fastdkim.Signer("example.com", "ed", key, identity="joe@example.com")
    keys = {"ed._domainkey.example.com": fastdkim.public_key_record(key)}
    return signer.sign_message(MSG), keys


def test_no_signature_is_dkim_none():
    assert authentication_results("mx.example.net", []) == "Authentication-Results: mx.example.net; dkim=none"


def test_a_verified_message(signed):
    message, keys = signed
    results = fastdkim.verify(message, keys=keys)
    b = results[0].tags["b"].replace(" ", "").replace("\t", "").replace("\r", "").replace("\n", "")
    assert authentication_results("mx.example.net", results) == (
        "Authentication-Results: mx.example.net;\n"
        "\tdkim=pass reason=\"signature verified\" header.d=example.com header.i=joe@example.com header.s=ed "
        "header.a=ed25519-sha256 header.b=%s" % b[:8])


def test_one_result_per_signature_in_order_and_line_separator():
    results = [Verification("pass", "ok", domain="a.example"), Verification("fail", "body hash mismatch",
                                                                             domain="b.example")]
    text = authentication_results("mx", results, linesep="\r\n")
    assert text == ('Authentication-Results: mx;\r\n\tdkim=pass reason="ok" header.d=a.example;\r\n'
                    '\tdkim=fail reason="body hash mismatch" header.d=b.example')


def test_what_the_message_wrote_is_escaped_or_left_out():
    hostile = Verification(
        "permerror", 'bad "tag" \\ \r\nInjected: yes \u00e9\u2713', domain="ex ample.com", selector="s;x",
        algorithm="rsa-sha256", identity="j\u00f6e@example.com", raw_tags={"b": b"ab\r\n cd-efgh"})
    text = authentication_results("mx.example.net", [hostile])
    assert text.isascii() and "\r" not in text and text.count("\n") == 1
    assert 'reason="bad \\"tag\\" \\\\ \\\\x0d\\\\x0aInjected: yes \\\\xe9\\\\u2713"' in text
    # values that would need quoting are left out; a b= that is not base64 gives no header.b
    assert "header.d" not in text and "header.s" not in text and "header.i" not in text
    assert "header.a=rsa-sha256" in text and "header.b" not in text


def test_short_b_gives_no_header_b():
    r = Verification("fail", "", raw_tags={"b": b"abc"})
    assert authentication_results("mx", [r]) == "Authentication-Results: mx;\n\tdkim=fail"


@pytest.mark.parametrize("servid, ok", [("mx.example.net", True), ("mx", True), ("", False), ("a b", False),
                                        ("a;b", False), ("m\u00e9", False), ("mx\n", False)])
def test_authserv_id(servid, ok):
    assert is_authserv_id(servid) is ok
    if not ok:
        with pytest.raises(OptionError):
            authentication_results(servid, [])


# -- Verification.as_dict ------------------------------------------------------------------

KEYS = ["status", "reason", "domain", "selector", "algorithm", "identity", "canonicalization", "body_length",
        "body_truncated", "testing", "key_bits", "signed_headers", "timestamp", "expiration"]


def test_as_dict_of_a_verified_signature(signed):
    message, keys = signed
    r = fastdkim.verify(message, keys=keys)[0]
    d = r.as_dict()
    assert list(d) == KEYS
    assert d["status"] == "pass" and type(d["status"]) is str
    assert d["domain"] == "example.com" and d["selector"] == "ed" and d["identity"] == "joe@example.com"
    assert d["key_bits"] == 256 and d["signed_headers"] == list(r.signed_headers) and isinstance(d["timestamp"], int)
    assert json.loads(json.dumps(d)) == d


def test_as_dict_of_an_unparseable_signature():
    r = fastdkim.verify(b"DKIM-Signature: v=1; a=\r\nFrom: a@example.com\r\n\r\nbody\r\n", keys={})[0]
    d = r.as_dict()
    assert list(d) == KEYS and d["status"] == "permerror" and d["signed_headers"] == []
    assert json.dumps(d)  # plain values only
