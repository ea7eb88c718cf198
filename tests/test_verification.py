"""Verification: tag rules, key records, key sources, time, limits, hostile input."""
from __future__ import annotations

import base64
import io

import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastdkim
from fastdkim.errors import KeyLookupError, TemporaryLookupError
from fastdkim.keys import public_key_record

from helpers import MESSAGE, body_hash, handmade, keys_for, resign
from helpers_keys import rsa_key_of_bits

pytestmark = pytest.mark.usefixtures("core")

HEAD = b"From: a@example.com\r\nTo: b@example.org\r\nSubject: hi\r\n"
BODY = b"Hello.\r\n"
NOW = 2_000_000_000


def _base(**over):
    tags = {
        "v": "1", "a": "rsa-sha256", "c": "relaxed/relaxed", "d": "example.com", "s": "sel",
        "t": str(NOW - 10), "h": "from:to:subject", "bh": body_hash(BODY, True),
    }
    tags.update(over)
    return ["%s=%s" % (k, v) for k, v in tags.items() if v is not None]


def check(key, tags, *, keys=None, hash_name="sha256", body=BODY, head=HEAD, **opts):
    msg = handmade(head, body, tags, key, hash_name=hash_name)
    opts.setdefault("now", NOW)
    return fastdkim.verify(msg, keys=keys or keys_for("example.com", "sel", key), **opts)


def test_handmade_baseline_passes(rsa_key):
    [r] = check(rsa_key, _base())
    assert r.status == "pass", r.reason
    assert r.tags["d"] == "example.com" and r.timestamp == NOW - 10


@pytest.mark.parametrize(
    "over, status, reason",
    [
        ({"v": None}, "permerror", "v="),
        ({"v": "2"}, "permerror", "version"),
        ({"a": None}, "permerror", "a="),
        ({"bh": None}, "permerror", "bh="),
        ({"d": None}, "permerror", "d="),
        ({"h": None}, "permerror", "h="),
        ({"s": None}, "permerror", "s="),
        ({"a": "rsa-sha512"}, "permerror", "algorithm"),
        ({"c": "relaxed/fancy"}, "permerror", "canonicalization"),
        ({"h": "to:subject"}, "permerror", "From"),
        ({"i": "user@example.org"}, "permerror", "i="),
        ({"i": "user@notexample.com"}, "permerror", "i="),
        ({"i": "nobody"}, "permerror", "@"),
        ({"x": str(NOW - 20)}, "permerror", "not later than t="),
        ({"x": str(NOW - 10)}, "permerror", "not later than t="),  # x= equal to t= (section 3.5: greater)
        ({"h": "fr om:to"}, "permerror", "h="),
        ({"h": "from:to\x01"}, "permerror", "h="),
        ({"q": "dns/ txt"}, "permerror", "query"),
        ({"t": str(NOW - 100), "x": str(NOW - 5)}, "fail", "expired"),
        ({"t": str(NOW + 3600)}, "permerror", "future"),
        ({"l": "abc"}, "permerror", "l="),
        ({"l": "+1"}, "permerror", "l="),
        ({"l": "\u0661"}, "permerror", "l="),  # a non-ASCII digit
        ({"l": "1" * 77}, "permerror", "l="),
        ({"t": "12 34"}, "permerror", "t="),
        ({"x": "-5"}, "permerror", "x="),
        ({"l": "1000"}, "permerror", "exceeds"),
        ({"q": "http/get"}, "permerror", "query"),
        ({"bh": "!!notbase64"}, "permerror", "base64"),
        ({"bh": "AAAA===="}, "permerror", "base64"),
        ({"bh": "AB=C"}, "permerror", "base64"),
        ({"bh": "A==="}, "permerror", "base64"),
        ({"d": "exa mple.com"}, "permerror", "d="),
        ({"bh": base64.b64encode(b"x" * 32).decode()}, "fail", "body hash"),
    ],
)
def test_signature_tag_rules(rsa_key, over, status, reason):
    [r] = check(rsa_key, _base(**over))
    assert r.status == status, r.reason
    assert reason.lower() in r.reason.lower()


def test_fws_everywhere_unknown_tags_and_case(rsa_key):
    tags = [" v = 1 ", "a=rsa-sha256", "c=relaxed/relaxed", "d=Example.COM", "s=SEL",
            "h=From :\r\n\tTo: subject", "bh=" + body_hash(BODY, True)[:10] + "\r\n " + body_hash(BODY, True)[10:],
            "foo=bar baz", "t=%d" % (NOW - 10)]
    [r] = check(rsa_key, tags)
    assert r.status == "pass", r.reason
    assert r.domain == "example.com" and r.selector == "sel"


def test_b_tag_first_and_lookalikes_in_other_values(rsa_key):
    tags = _base(h="from:to:subject", z="x:b=1|y:=20b=2")
    [r] = check(rsa_key, tags)
    assert r.status == "pass", r.reason
    msg = handmade(HEAD, BODY, _base(), rsa_key)
    # move b= to the front of the tag-list: still the same signature
    start = msg.index(b"DKIM-Signature: ") + len(b"DKIM-Signature: ")
    end = msg.index(b"\r\n", start)
    field = msg[start:end]
    b_part = field[field.index(b"; b=") + 2:]
    moved = b_part + b"; " + field[: field.index(b"; b=")]
    resigned = resign(msg[:start] + moved + msg[end:], rsa_key)
    [r] = fastdkim.verify(resigned, keys=keys_for("example.com", "sel", rsa_key), now=NOW)
    assert r.status == "pass", r.reason


def test_other_signatures_may_be_signed_but_not_the_own_field(rsa_key, ed_key):
    first = fastdkim.Signer("example.com", "sel", ed_key).sign_message(HEAD + b"\r\n" + BODY)
    keys = keys_for("example.com", "sel", ed_key)
    keys.update(keys_for("example.com", "rsa", rsa_key))
    tags = _base(s="rsa", h="from:dkim-signature:dkim-signature")  # one more than exists
    field = b"DKIM-Signature: " + "; ".join(tags + ["b="]).encode() + b"\r\n"
    msg = resign(field + first, rsa_key)
    results = fastdkim.verify(msg, keys=keys, now=NOW)
    assert [r.status for r in results] == ["pass", "pass"], [r.reason for r in results]
    tampered = msg.replace(b"s=sel;", b"s=SEL;", 1)  # the signed signature changed
    assert fastdkim.verify(tampered, keys=keys, now=NOW)[0].status == "fail"


def test_duplicate_tag_is_permerror(rsa_key):
    [r] = check(rsa_key, _base() + ["d=example.com"])
    assert r.status == "permerror" and "duplicate" in r.reason


@pytest.mark.parametrize("where", [0, 3, -1])
def test_empty_tag_spec_is_permerror(rsa_key, where):
    # RFC 6376 section 3.2: tag-list = tag-spec *( ";" tag-spec ) [ ";" ]:
    # ';' first or two in a row is outside the grammar (section 6.1.1).
    tags = _base()
    tags.insert(where if where >= 0 else len(tags), " ")
    [r] = check(rsa_key, tags)
    assert r.status == "permerror" and "empty tag-spec" in r.reason


@pytest.mark.parametrize("record", ["v=DKIM1;; k=rsa; p=%s", ";v=DKIM1; k=rsa; p=%s", "v=DKIM1; k=rsa; ; p=%s",
                                    "v=DKIM1; k=rsa; p=%s;;"])
def test_key_record_with_an_empty_tag_spec_is_permerror(rsa_key, record):
    p = public_key_record(rsa_key).split("p=", 1)[1]
    [r] = check(rsa_key, _base(), keys={"sel._domainkey.example.com": record % p})
    assert r.status == "permerror" and "empty tag-spec" in r.reason
    [ok] = check(rsa_key, _base(), keys={"sel._domainkey.example.com": "v=DKIM1; k=rsa; p=%s;" % p})
    assert ok.status == "pass"  # one ';' may end the list


def test_c_defaults_and_single_value(rsa_key):
    [r] = check(rsa_key, _base(c=None, bh=body_hash(BODY, False)))
    assert r.status == "pass" and r.canonicalization == "simple/simple"
    [r] = check(rsa_key, _base(c="relaxed", bh=body_hash(BODY, False)))
    assert r.status == "pass" and r.canonicalization == "relaxed/simple"


def test_qp_identity(rsa_key):
    [r] = check(rsa_key, _base(i="=6Aohn=2Ex@sub.example.com"))
    assert r.status == "pass", r.reason
    assert r.identity == "john.x@sub.example.com"
    # an '@' in the Local-part only within a quoted string (RFC 5321 Local-part)
    [r] = check(rsa_key, _base(i='=22john=40x=22@sub.example.com'))
    assert r.status == "pass" and r.identity == '"john@x"@sub.example.com', r.reason


@pytest.mark.parametrize("over, reason", [
    ({"i": "john=40evil.example@sub.example.com"}, "more than one '@'"),
    ({"i": "a@b@example.com"}, "more than one '@'"),
    ({"i": "@sub.example.com."}, "invalid i= domain"),
    ({"d": "example.com.", "i": None}, "invalid signing domain"),
    ({"s": "sel."}, "invalid selector"),
])
def test_identity_domain_and_selector_outside_the_grammar_are_permerrors(rsa_key, over, reason):
    """Section 3.5: i= is [Local-part] "@" domain-name, d= a domain-name, s= a
    selector: one '@' outside a quoted string, no trailing dot."""
    [r] = check(rsa_key, _base(**over))
    assert r.status == "permerror" and reason in r.reason, r.reason


def test_rsa_sha1_refused_by_default_and_allowed_on_request(rsa_key):
    tags = _base(a="rsa-sha1", bh=body_hash(BODY, True, "sha1"))
    [r] = check(rsa_key, tags, hash_name="sha1")
    assert r.status == "permerror" and "8301" in r.reason
    [r] = check(rsa_key, tags, hash_name="sha1", allow_sha1=True)
    assert r.status == "pass", r.reason


def test_body_length_limit(rsa_key):
    tags = _base(l="3", bh=body_hash(BODY, True, limit=3))
    [r] = check(rsa_key, tags, body=BODY + b"appended by someone else\r\n")
    # the signature verifies, but a reader shows what was appended: not a pass (RFC 6376 section 8.2)
    assert r.status == "neutral" and r.body_truncated and r.body_length == 3
    assert r.reason.startswith("signature verified over the first 3 octets of the body only (l=)")
    [r] = check(rsa_key, tags, body=b"HeX" + BODY[3:])  # within the signed octets
    assert (r.status, r.reason) == ("fail", "body hash mismatch")
    tags = _base(l=str(len(BODY)), bh=body_hash(BODY, True, limit=len(BODY)))
    [r] = check(rsa_key, tags)  # l= covering the whole body: nothing unsigned
    assert r.status == "pass" and not r.body_truncated


@pytest.mark.parametrize("alg", ["rsa", "ed25519"])
def test_key_type_mismatch(alg, rsa_key, ed_key):
    signing, other = (rsa_key, ed_key) if alg == "rsa" else (ed_key, rsa_key)
    a = "rsa-sha256" if alg == "rsa" else "ed25519-sha256"
    [r] = check(signing, _base(a=a), keys=keys_for("example.com", "sel", other))
    assert r.status == "permerror" and "does not match" in r.reason


def _rec(key, extra=""):
    return public_key_record(key).replace("v=DKIM1; ", "v=DKIM1; " + extra)


@pytest.mark.parametrize(
    "record, status, reason",
    [
        ("v=DKIM1; k=rsa; p=", "permerror", "revoked"),
        ("v=DKIM1; k=rsa", "permerror", "p="),
        ("k=rsa; v=DKIM1; p=AAAA", "permerror", "first"),
        ("v=DKIM2; p=AAAA", "permerror", "DKIM1"),
        ("v=DKIM1; k=dsa; p=AAAA", "permerror", "key type"),
        ("v=DKIM1; p=!!!", "permerror", "base64"),
        ("v=DKIM1; p=QQ==QQ==", "permerror", "base64"),
        ("v=DKIM1; p=QUJD=", "permerror", "base64"),
        ("v=DKIM1; p=AAAA", "permerror", "RSA"),
        ("v=DKIM1; t; p=AAAA", "permerror", "syntax"),
        ("hello world", "permerror", ""),
        ("", "permerror", ""),
    ],
)
def test_bad_key_records(rsa_key, record, status, reason):
    [r] = check(rsa_key, _base(), keys={"sel._domainkey.example.com": record})
    assert r.status == status
    assert reason.lower() in r.reason.lower()


def test_key_record_options(rsa_key):
    good = public_key_record(rsa_key)
    p = good.split("p=")[1]
    cases = [
        ("v=DKIM1; h=sha1; p=" + p, "permerror", "h="),
        ("v=DKIM1; h=sha1:sha256; p=" + p, "pass", ""),
        ("v=DKIM1; s=chat; p=" + p, "permerror", "email"),
        ("v=DKIM1; s=email:chat; p=" + p, "pass", ""),
        ("v=DKIM1; s=*; p=" + p, "pass", ""),
        ("v=DKIM1; t=y; p=" + p, "pass", "testing"),
        ("v=DKIM1; n=notes here; future=1; p=" + p, "pass", ""),
        ("p=" + p, "pass", ""),
    ]
    for rec, status, reason in cases:
        [r] = check(rsa_key, _base(), keys={"sel._domainkey.example.com": rec})
        assert r.status == status, (rec, r.reason)
        assert reason in r.reason
        if "t=y" in rec:
            assert r.testing


def test_key_record_p_folded_over_lines_and_strings(rsa_key):
    p = public_key_record(rsa_key).split("p=")[1]
    folded = " ".join(p[i:i + 60] for i in range(0, len(p), 60))
    for rec in ("v=DKIM1; k=rsa; p=" + folded, "v=DKIM1; p=\r\n\t" + p + " "):
        [r] = check(rsa_key, _base(), keys={"sel._domainkey.example.com": rec})
        assert r.status == "pass", (rec, r.reason)


def test_key_t_s_strict_identity(rsa_key):
    rec = {"sel._domainkey.example.com": public_key_record(rsa_key, strict=True)}
    [r] = check(rsa_key, _base(i="u@example.com"), keys=rec)
    assert r.status == "pass", r.reason
    [r] = check(rsa_key, _base(i="u@sub.example.com"), keys=rec)
    assert r.status == "permerror" and "t=s" in r.reason
    [r] = check(rsa_key, _base(), keys=rec)  # no i=: defaults to @d
    assert r.status == "pass"


def test_pkcs1_rsa_public_key_accepted(rsa_key):
    pkcs1 = rsa_key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    rec = "v=DKIM1; k=rsa; p=" + base64.b64encode(pkcs1).decode()
    [r] = check(rsa_key, _base(), keys={"sel._domainkey.example.com": rec})
    assert r.status == "pass", r.reason


def test_short_rsa_key_in_dns_is_permerror():
    k = rsa_key_of_bits(768)
    [r] = check(k, _base())
    assert r.status == "permerror" and "short" in r.reason
    [r] = check(k, _base(), min_key_bits=512)
    assert r.status == "pass", r.reason


def test_ed25519_spki_key_record_is_permerror(ed_key):
    spki = ed_key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    rec = "v=DKIM1; k=ed25519; p=" + base64.b64encode(spki).decode()
    [r] = check(ed_key, _base(a="ed25519-sha256"), keys={"sel._domainkey.example.com": rec})
    assert r.status == "permerror" and "32" in r.reason


def test_several_dkim_records_is_permerror(rsa_key):
    rec = public_key_record(rsa_key)
    [r] = check(rsa_key, _base(), keys={"sel._domainkey.example.com": [rec, rec]})
    assert r.status == "permerror" and "2 DKIM" in r.reason
    [r] = check(rsa_key, _base(), keys={"sel._domainkey.example.com": ["v=spf1 -all", rec]})
    assert r.status == "pass", r.reason


@pytest.mark.parametrize("other", ["v=DKIM1; s=other; p=MIIB", "v=DKIM1; s=other; k=rsa; p=not a key",
                                   "v=DKIM10; p=MIIB", " v = DKIM2 ; p=MIIB", "v=spf1 -all", "some text p= here"])
def test_a_record_that_verifiers_ignore_does_not_count_beside_the_key(rsa_key, other):
    """RFC 6376 section 3.6.1: a record whose s= does not list email is
    ignored, one whose v= is not DKIM1 discarded; the key beside it is used."""
    rec = public_key_record(rsa_key)
    for keys in ([other, rec], [rec, other]):
        [r] = check(rsa_key, _base(), keys={"sel._domainkey.example.com": keys})
        assert r.status == "pass", (keys, r.reason)


def test_only_records_that_verifiers_ignore_is_permerror_saying_why(rsa_key):
    [r] = check(rsa_key, _base(), keys={"sel._domainkey.example.com": ["v=DKIM1; s=other; p=MIIB", "v=spf1"]})
    assert r.status == "permerror" and "s=other does not allow email" in r.reason, r.reason
    [r] = check(rsa_key, _base(), keys={"sel._domainkey.example.com": ["v=DKIM1; s=other; p=MIIB"]})
    assert r.status == "permerror" and "s=other does not allow email" in r.reason, r.reason
    # a broken DKIM1 record beside a good one still counts
    rec = public_key_record(rsa_key)
    [r] = check(rsa_key, _base(), keys={"sel._domainkey.example.com": ["v=DKIM1; p=", rec]})
    assert r.status == "permerror" and "2 DKIM" in r.reason, r.reason


def test_key_sources(rsa_key):
    rec = public_key_record(rsa_key)
    seen = []

    def cb(name):
        seen.append(name)
        return rec

    assert check(rsa_key, _base(), keys=cb)[0].status == "pass"
    assert seen == ["sel._domainkey.example.com"]
    assert check(rsa_key, _base(), keys=lambda n: None)[0].status == "permerror"

    def boom(name):
        raise RuntimeError("resolver bug")

    assert check(rsa_key, _base(), keys=boom)[0].status == "temperror"

    def temp(name):
        raise TemporaryLookupError("timeout")

    assert check(rsa_key, _base(), keys=temp)[0].status == "temperror"

    def perm(name):
        raise KeyLookupError("bad name")

    assert check(rsa_key, _base(), keys=perm)[0].status == "permerror"

    class Source:
        def lookup(self, name):
            return [rec.encode()]

    assert check(rsa_key, _base(), keys=Source())[0].status == "pass"
    with pytest.raises(TypeError):
        fastdkim.verify(MESSAGE, keys=42)


def test_max_signatures_and_lookups_deduplicated(ed_key):
    signers = [fastdkim.Signer("example.com", "sel", ed_key) for _ in range(12)]
    msg = b"".join(fastdkim.sign_all(MESSAGE, signers)) + MESSAGE
    calls = []
    rec = keys_for("example.com", "sel", ed_key)

    def cb(name):
        calls.append(name)
        return rec[name]

    results = fastdkim.verify(msg, keys=cb)
    assert [r.status for r in results] == ["pass"] * 10 + ["neutral"] * 2
    assert results[-1].reason == "not evaluated: the message has more than 10 signatures"
    # what such a signature says is reported, though it is not checked
    assert (results[-1].domain, results[-1].selector, results[-1].algorithm) == ("example.com", "sel",
                                                                                "ed25519-sha256")
    assert results[-1].raw_tags["d"] == b"example.com" and results[-1].identity is None
    assert len(calls) == 1
    one = fastdkim.verify(msg, keys=cb, max_signatures=1)
    assert [r.status for r in one].count("neutral") == 11
    assert one[1].reason == "not evaluated: the message has more than 1 signature"


def test_verify_as_of_a_given_time_and_clock_skew(ed_key):
    s = fastdkim.Signer("example.com", "sel", ed_key, expiration=60, clock=lambda: NOW)
    msg = s.sign_message(MESSAGE)
    keys = keys_for("example.com", "sel", ed_key)
    assert fastdkim.verify(msg, keys=keys, now=NOW + 30)[0].status == "pass"
    assert fastdkim.verify(msg, keys=keys, now=NOW + 61)[0].status == "fail"
    assert fastdkim.verify(msg, keys=keys, now=NOW - 200)[0].status == "pass"  # within 300 s skew
    assert fastdkim.verify(msg, keys=keys, now=NOW - 400)[0].status == "permerror"
    assert fastdkim.verify(msg, keys=keys, now=NOW - 400, clock_skew=600)[0].status == "pass"
    assert fastdkim.verify(msg, keys=keys, clock=lambda: NOW + 10)[0].status == "pass"


def test_body_hash_and_signature_mismatch_are_distinct(ed_key):
    msg = fastdkim.Signer("example.com", "sel", ed_key).sign_message(MESSAGE)
    keys = keys_for("example.com", "sel", ed_key)
    [r1] = fastdkim.verify(msg.replace(b"numbers", b"Numbers"), keys=keys)
    [r2] = fastdkim.verify(msg.replace(b"Quarterly", b"quarterly"), keys=keys)
    assert r1.status == r2.status == "fail"
    assert "body hash" in r1.reason and "body hash" not in r2.reason


def test_utf8_headers_and_idn(ed_key):
    head = "From: Jürgen <j@bücher.example>\r\nSubject: Grüße ✓\r\n".encode()
    s = fastdkim.Signer("bücher.example", "sél", ed_key)  # U-labels go out as A-labels (RFC 8616)
    assert (s.domain, s.selector) == ("xn--bcher-kva.example", "xn--sl-bja")
    msg = head + b"\r\n" + "Körper\r\n".encode()
    signed = s.sign_message(msg)
    [r] = fastdkim.verify(signed, keys=keys_for("xn--bcher-kva.example", "xn--sl-bja", ed_key))
    assert r.status == "pass" and r.domain == "xn--bcher-kva.example" and r.selector == "xn--sl-bja"
    # a signature written with U-labels is looked up under the A-labels too
    u = signed.replace(b"d=xn--bcher-kva.example", "d=bücher.example".encode())
    u = resign(u, ed_key)
    [r] = fastdkim.verify(u, keys=keys_for("xn--bcher-kva.example", "xn--sl-bja", ed_key))
    assert r.status == "pass" and r.domain == "xn--bcher-kva.example"


def test_no_signatures_gives_empty_list():
    assert fastdkim.verify(MESSAGE, keys={}) == []
    assert fastdkim.verify(b"DKIM-Signature v=1\r\n" + MESSAGE, keys={}) == []  # no colon: not a field
    assert fastdkim.verify(b"", keys={}) == []


@pytest.mark.parametrize(
    "field",
    [
        b"DKIM-Signature:\r\n",
        b"DKIM-Signature: ;;;\r\n",
        b"DKIM-Signature: v=1; a=rsa-sha256; b=; bh=; d=; h=; s=\r\n",
        b"DKIM-Signature: v=1; =x\r\n",
        b"DKIM-Signature: \xff\xfe=\x00\r\n",
        b"DKIM-Signature: v=1; a=ed25519-sha256; d=\xc3\xa9.com; s=s; h=from; bh=AAAA; b=AAAA\r\n",
        b"DKIM-Signature: v=1; a=rsa-sha256; d=e.com; s=s; h=from; bh=AAAA; b=AAAA; l=99999999999999999999999999999\r\n",
    ],
)
def test_malformed_signature_fields_are_permerror(field):
    [r] = fastdkim.verify(field + MESSAGE, keys={})
    assert r.status == "permerror" and r.reason


@given(st.binary(max_size=300))
def test_random_signature_values_never_raise(value):
    results = fastdkim.verify(b"DKIM-Signature: " + value + b"\r\n" + MESSAGE, keys={})
    assert all(r.status in ("permerror", "fail", "neutral", "temperror") for r in results)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.binary(max_size=200))
def test_random_key_records_never_raise(rsa_key, record):
    [r] = check(rsa_key, _base(), keys={"sel._domainkey.example.com": record})
    assert r.status in ("permerror", "pass")


@given(st.binary(max_size=400))
def test_random_messages_never_raise(data):
    for r in fastdkim.verify(data, keys={}) + fastdkim.verify(io.BytesIO(data), keys={}):
        assert r.status in ("permerror", "fail", "neutral", "temperror")


class TestHostileInput:
    """Linear work on inputs built to be expensive (no timing asserts: they must simply finish)."""

    def test_huge_whitespace_run(self, ed_key):
        body = b"a" + b" \t" * (5 << 20) + b"b\r\n"
        s = fastdkim.Signer("example.com", "sel", ed_key, canonicalization="relaxed/relaxed")
        msg = s.sign_message(HEAD + b"\r\n" + body)
        assert fastdkim.verify(msg, keys=keys_for("example.com", "sel", ed_key))[0].status == "pass"

    def test_million_short_lines_and_trailing_blank_lines(self, ed_key):
        body = b"x\r\n" * 1_000_000 + b"\r\n" * 200_000
        s = fastdkim.Signer("example.com", "sel", ed_key)
        msg = s.sign_message(HEAD + b"\r\n" + body)
        assert fastdkim.verify(msg, keys=keys_for("example.com", "sel", ed_key))[0].status == "pass"

    def test_ten_thousand_headers_and_a_megabyte_header(self, ed_key):
        # 3 + 9,995 + 1 fields, and the signature: MAX_HEADER_FIELDS exactly
        many = b"".join(b"X-H%d: v\r\n" % i for i in range(9_995))
        big = b"X-Big: " + b"y" * (1 << 20) + b"\r\n"
        msg = HEAD + many + big + b"\r\nbody\r\n"
        s = fastdkim.Signer("example.com", "sel", ed_key, headers=["from", "x-big"] + ["x-h%d" % i for i in range(0, 9_995, 50)])
        signed = s.sign_message(msg)
        assert fastdkim.verify(signed, keys=keys_for("example.com", "sel", ed_key))[0].status == "pass"

    def test_h_list_too_long_is_permerror(self, rsa_key):
        [r] = check(rsa_key, _base(h="from" + ":x" * 5000))
        assert r.status == "permerror" and "limit" in r.reason


def test_h_names_with_folding_around_colons_and_many_unknown_tags(rsa_key):
    tags = _base(h="from :\r\n\tto\t: subject") + ["x%d=%d" % (i, i) for i in range(100)]
    [r] = check(rsa_key, tags)
    assert r.status == "pass", r.reason
    assert r.signed_headers == ("from", "to", "subject")


@pytest.mark.parametrize("answer", [["v=DKIM1; p=AAAA", "other text"], [b"v=DKIM1; p=AAAA", 5], [object()]])
def test_key_source_breaking_its_protocol_never_raises(rsa_key, answer):
    class Odd:
        def lookup(self, name):
            return answer

    [r] = check(rsa_key, _base(), keys=Odd())
    assert r.status in ("permerror", "temperror"), r


def test_key_source_may_answer_text(rsa_key):
    class Text:
        def lookup(self, name):
            return [public_key_record(rsa_key), "v=spf1 -all"]

    [r] = check(rsa_key, _base(), keys=Text())
    assert r.status == "pass", r.reason
    with pytest.raises(fastdkim.KeyRecordError):
        fastdkim.parse_key_record("v=DKIM1; p=\ud800")


def test_key_source_generators_that_fail(rsa_key):
    from fastdkim.errors import TemporaryLookupError

    class Gen:
        def __init__(self, exc):
            self.exc = exc

        def lookup(self, name):
            yield public_key_record(rsa_key).encode()
            raise self.exc

    [r] = check(rsa_key, _base(), keys=Gen(TemporaryLookupError("SERVFAIL")))
    assert r.status == "temperror" and "SERVFAIL" in r.reason
    [r] = check(rsa_key, _base(), keys=Gen(RuntimeError("boom")))
    assert r.status == "temperror"


# -- the module-level verify(): shared between calls, no leak from one call to the next ----


def test_calls_with_different_mappings_for_one_name_get_their_own_answers(ed_key):
    other = fastdkim.generate_private_key("ed25519")
    msg = fastdkim.Signer("example.com", "sel", ed_key).sign_message(MESSAGE)
    right, wrong = keys_for("example.com", "sel", ed_key), keys_for("example.com", "sel", other)
    for _ in range(2):  # and again, with whatever the first round left behind
        assert fastdkim.verify(msg, keys=right)[0].status == "pass"
        assert fastdkim.verify(msg, keys=wrong)[0].status == "fail"
        assert fastdkim.verify(msg, keys={})[0].status == "permerror"
    # a dict changed between calls answers with what it holds now
    keys = dict(right)
    assert fastdkim.verify(msg, keys=keys)[0].status == "pass"
    keys.update(wrong)
    assert fastdkim.verify(msg, keys=keys)[0].status == "fail"
    keys["sel._domainkey.example.com"] = None
    assert fastdkim.verify(msg, keys=keys)[0].status == "permerror"
    # equal dicts, one with the name spelled differently: each is its own mapping
    spelled = {"SEL._domainkey.Example.COM.": right["sel._domainkey.example.com"]}
    assert fastdkim.verify(msg, keys=spelled)[0].status == "pass"
    with pytest.raises(ValueError, match="appears twice"):  # a bad mapping is refused at every call
        fastdkim.verify(msg, keys={**spelled, **right})
    with pytest.raises(ValueError, match="appears twice"):
        fastdkim.verify(msg, keys={**spelled, **right})


def test_callables_and_sources_answer_only_their_own_call(ed_key):
    other = fastdkim.generate_private_key("ed25519")
    msg = fastdkim.Signer("example.com", "sel", ed_key).sign_message(MESSAGE)
    right = keys_for("example.com", "sel", ed_key)["sel._domainkey.example.com"]
    wrong = keys_for("example.com", "sel", other)["sel._domainkey.example.com"]
    asked = []

    def first(name):
        asked.append(("first", name))
        return right

    def second(name):
        asked.append(("second", name))
        return wrong

    assert fastdkim.verify(msg, keys=first)[0].status == "pass"
    assert fastdkim.verify(msg, keys=second)[0].status == "fail"
    assert fastdkim.verify(msg, keys=first)[0].status == "pass"
    assert [who for who, _ in asked] == ["first", "second", "first"]

    class Source:
        def __init__(self, value):
            self.value, self.calls = value, 0

        def lookup(self, name):
            self.calls += 1
            return [self.value.encode()]

    a, b = Source(right), Source(wrong)
    assert fastdkim.verify(msg, keys=a)[0].status == "pass"
    assert fastdkim.verify(msg, keys=b)[0].status == "fail"
    assert (a.calls, b.calls) == (1, 1)


def test_options_are_each_calls_own(rsa_key, ed_key):
    # now / clock
    s = fastdkim.Signer("example.com", "sel", ed_key, expiration=60, clock=lambda: NOW)
    msg = s.sign_message(MESSAGE)
    keys = keys_for("example.com", "sel", ed_key)
    for _ in range(2):
        assert fastdkim.verify(msg, keys=keys, now=NOW + 61)[0].status == "fail"
        assert fastdkim.verify(msg, keys=keys, now=NOW + 30)[0].status == "pass"
        assert fastdkim.verify(msg, keys=keys, clock=lambda: NOW + 61)[0].status == "fail"
        assert fastdkim.verify(msg, keys=keys, clock=lambda: NOW + 30)[0].status == "pass"
    # min_key_bits: the same record parsed under each call's limit
    short = rsa_key_of_bits(1024)
    tags = _base()
    for _ in range(2):
        assert check(short, tags)[0].status == "pass"
        [r] = check(short, tags, min_key_bits=2048)
        assert r.status == "permerror" and "1024" in r.reason
    # allow_sha1 and max_header_names: what a signer's constant tags imply, under each call's options
    sha1 = _base(a="rsa-sha1", bh=body_hash(BODY, True, "sha1"))
    for _ in range(2):
        assert check(rsa_key, sha1, hash_name="sha1")[0].status == "permerror"
        assert check(rsa_key, sha1, hash_name="sha1", allow_sha1=True)[0].status == "pass"
        assert check(rsa_key, tags, max_header_names=2)[0].status == "permerror"
        assert check(rsa_key, tags)[0].status == "pass"
    with pytest.raises(fastdkim.OptionError):
        fastdkim.verify(msg, keys=keys, max_signatures=-1)


def test_module_verify_and_a_reused_verifier_agree(rsa_key, ed_key):
    msgs = [fastdkim.Signer("example.com", "sel", k).sign_message(MESSAGE) for k in (rsa_key, ed_key)]
    keys = {**keys_for("example.com", "sel", rsa_key)}
    verifier = fastdkim.Verifier(keys=keys, now=NOW)
    for msg in msgs + [msgs[0].replace(b"numbers", b"Numbers"), MESSAGE]:
        assert fastdkim.verify(msg, keys=keys, now=NOW) == verifier.verify(msg)
