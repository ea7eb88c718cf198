"""Signing policy: keys per From domain, subdomain rules, fallback, dual signing."""
from __future__ import annotations

import pytest

import fastdkim
from fastdkim.keys import public_key_record, write_private_key
from fastdkim.message import read_message
from fastdkim.policy import FromAddressError, NoSigningKey, PolicyError, SigningPolicy, from_domain

pytestmark = pytest.mark.usefixtures("core")


def _fields(headers: bytes):
    return read_message(headers + b"\r\nbody\r\n").fields


@pytest.mark.parametrize(
    "header, domain",
    [
        (b"From: Joe <joe@Example.COM>\r\n", "example.com"),
        (b"From: joe@sub.example.com\r\n", "sub.example.com"),
        (b'From: "Doe, John" <j@example.org>\r\n', "example.org"),
        (b"From: =?utf-8?q?J=C3=B6rg?= <j@b\xc3\xbccher.example>\r\n", "xn--bcher-kva.example"),
        (b"From: Joe\r\n <joe@example.net>\r\n", "example.net"),
    ],
)
def test_from_domain(header, domain):
    assert from_domain(_fields(header)) == domain


@pytest.mark.parametrize(
    "headers, msg",
    [
        (b"Subject: x\r\n", "no From"),
        (b"From: a@example.com\r\nFrom: b@example.com\r\n", "2 From fields"),
        (b"From: a@example.com, b@example.org\r\n", "2 addresses"),
        (b"From: undisclosed\r\n", "no"),
        (b"From: <>\r\n", "no address"),
        (b"From: a@-bad-.com\r\n", "invalid"),
    ],
)
def test_from_domain_errors(headers, msg):
    with pytest.raises(FromAddressError, match=msg):
        from_domain(_fields(headers))


@pytest.fixture
def policy_file(tmp_path, rsa_key, ed_key):
    keys = tmp_path / "keys"
    keys.mkdir()
    write_private_key(keys / "rsa.pem", rsa_key)
    write_private_key(keys / "ed.pem", ed_key)
    p = tmp_path / "dkim.toml"
    p.write_text(
        '[defaults]\ncanonicalization = "relaxed/simple"\n'
        '[domains."example.com"]\nkeys = [{ selector = "rsa", key = "keys/rsa.pem" }, { selector = "ed", key = "keys/ed.pem" }]\n'
        '[domains."*.example.org"]\nkeys = [{ selector = "ed", key = "keys/ed.pem", canonicalization = "simple/simple" }]\n'
        '[fallback]\ndomain = "relay.example.net"\nkeys = [{ selector = "relay", key = "keys/ed.pem" }]\n'
    )
    return p


def test_policy_selection(policy_file, rsa_key, ed_key):
    pol = SigningPolicy.from_file(str(policy_file))
    dual = pol.signers_for_domain("Example.com")
    assert [(s.domain, s.selector, s.algorithm, s.body_canon) for s in dual] == [
        ("example.com", "rsa", "rsa-sha256", "simple"), ("example.com", "ed", "ed25519-sha256", "simple")]
    sub = pol.signers_for_domain("a.b.example.org")
    assert [(s.domain, s.selector, s.header_canon) for s in sub] == [("example.org", "ed", "simple")]
    assert pol.signers_for_domain("example.org")[0].domain == "relay.example.net"  # *.x does not cover x
    assert pol.signers_for_domain("other.test")[0].domain == "relay.example.net"
    assert dual[1].key is sub[0].key  # each key file loaded once
    msg = b"From: a@example.com\r\nSubject: s\r\n\r\nhello\r\n"
    headers = fastdkim.sign_all(msg, pol.signers_for(msg))
    keys = {"rsa._domainkey.example.com": public_key_record(rsa_key), "ed._domainkey.example.com": public_key_record(ed_key)}
    assert [r.status for r in fastdkim.verify(b"".join(headers) + msg, keys=keys)] == ["pass", "pass"]


def test_policy_without_fallback_refuses_unknown_domains(rsa_key, ed_key):
    pol = SigningPolicy({"example.com": [fastdkim.Signer("example.com", "s", ed_key)]})
    with pytest.raises(NoSigningKey, match="other.test"):
        pol.signers_for(b"From: x@other.test\r\n\r\n")
    with pytest.raises(FromAddressError):
        pol.signers_for(b"Subject: none\r\n\r\n")


@pytest.mark.parametrize(
    "text, msg",
    [
        ("not toml = = =", "not valid TOML"),
        ("[stuff]\n", "unknown section"),
        ("[defaults]\nfoo = 1\n", "unknown option"),
        ('[domains."example.com"]\n', "needs keys"),
        ('[domains."example.com"]\nkeys = [{ selector = "s" }]\n', "selector and key"),
        ('[domains."example.com"]\nkeys = [{ selector = "s", key = "k.pem", color = "red" }]\n', "unknown key option"),
        ('[fallback]\nkeys = [{ selector = "s", key = "k.pem" }]\n', "needs a domain"),
        ("", "nothing would be signed"),
    ],
)
def test_bad_policy_files(tmp_path, text, msg):
    p = tmp_path / "p.toml"
    p.write_text(text)
    with pytest.raises(PolicyError, match=msg):
        SigningPolicy.from_file(str(p))


def test_policy_missing_key_file(tmp_path):
    p = tmp_path / "p.toml"
    p.write_text('[domains."example.com"]\nkeys = [{ selector = "s", key = "missing.pem" }]\n')
    with pytest.raises(fastdkim.KeyFormatError, match="cannot read"):
        SigningPolicy.from_file(str(p))
    with pytest.raises(PolicyError, match="cannot read"):
        SigningPolicy.from_file(str(tmp_path / "none.toml"))


def test_a_domain_given_twice_in_two_spellings_is_refused():
    from fastdkim.errors import PolicyError

    key = fastdkim.generate_private_key("ed25519")
    s = [fastdkim.Signer("example.com", "sel", key)]
    for a, b in (("example.com", "example.com."), ("example.com", "EXAMPLE.com"), ("*.example.com", "*.Example.com"),
                 ("bücher.example", "xn--bcher-kva.example")):
        with pytest.raises(PolicyError, match="name the same domain") as info:
            fastdkim.SigningPolicy({a: s, b: s})
        assert repr(a) in str(info.value) and repr(b) in str(info.value)
    assert fastdkim.SigningPolicy({"example.com": s, "*.example.com": s}).domains == ["example.com", "*.example.com"]
