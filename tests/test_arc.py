"""fastdkim.arc: sealing (ARCSealer) and chain validation (verify_chain), on both cores."""
from __future__ import annotations

import base64
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

import fastdkim
from fastdkim import _core
from fastdkim.arc import ARCResult, ARCSealer, verify_chain
from fastdkim.arc_authres import arc_authentication_results, arc_resinfo
from fastdkim.arc_chain import MAX_INSTANCES
from fastdkim.errors import OptionError, SigningError, TemporaryLookupError, UnsignableMessageError
from fastdkim.keys import public_key_record
from fastdkim.message import read_message

pytestmark = pytest.mark.usefixtures("core")

MESSAGE = (b"From: Alice <alice@origin.example>\r\nTo: list@lists.example\r\nSubject: hello\r\n"
           b"Date: Thu, 03 Dec 2026 05:00:00 +0000\r\nMessage-ID: <1@origin.example>\r\n\r\n"
           b"Hello list,\r\nthis is the body.\r\n")


@pytest.fixture
def keys(rsa_key, ed_key):
    return {
        "sel._domainkey.origin.example": public_key_record(rsa_key),
        "arc._domainkey.lists.example": public_key_record(rsa_key),
        "ed._domainkey.fwd.example": public_key_record(ed_key),
    }


@pytest.fixture
def sealers(rsa_key, ed_key, keys):
    return [
        ARCSealer("origin.example", "sel", rsa_key, authserv_id="mx.origin.example", keys=keys),
        ARCSealer("lists.example", "arc", rsa_key, authserv_id="lists.example", keys=keys),
        ARCSealer("fwd.example", "ed", ed_key, authserv_id="mx.fwd.example", keys=keys),
    ]


def _signed(rsa_key, message=MESSAGE):
    return fastdkim.Signer("origin.example", "sel", rsa_key).sign(message) + message


def _add_footer(message: bytes) -> bytes:
    return message + b"-- \r\nlist footer\r\n"


def _rewrite_tag(message: bytes, field: bytes, tag: bytes, value: bytes) -> bytes:
    """``message`` with ``tag=`` of the first ``field`` set to ``value``."""
    start = message.index(field + b":")
    end = message.index(b"\r\n", start)
    while message[end + 2:end + 3] in (b" ", b"\t"):
        end = message.index(b"\r\n", end + 2)
    head = re.sub(rb"(?<![a-z])" + tag + rb"=[^;]*", tag + b"=" + value, message[start:end])
    return message[:start] + head + message[end:]


# -- sealing and validating ----------------------------------------------------------------------


def test_first_hop_seals_cv_none_and_verifies(sealers, keys, rsa_key):
    signed = _signed(rsa_key)  # (once: a second signing may fall in the next second, t= changed)
    fields = sealers[0].seal(signed)
    assert [f.split(b":")[0] for f in fields] == [b"ARC-Seal", b"ARC-Message-Signature",
                                                  b"ARC-Authentication-Results"]
    assert b"cv=none" in fields[0] and b" i=1;" in fields[0]
    assert fields[2].startswith(b"ARC-Authentication-Results: i=1; mx.origin.example;")
    assert b"dkim=pass" in fields[2] and b"arc=none" in fields[2]
    assert all(len(line) <= 78 for f in fields[:2] for line in f.split(b"\r\n"))
    result = verify_chain(b"".join(fields) + signed, keys)
    assert (result.status, result.instances, result.oldest_pass) == ("pass", 1, 1)
    assert result.sets[0].domain == "origin.example" and result.sets[0].authserv_id == "mx.origin.example"
    assert sealers[0].last_result is not None and sealers[0].last_result.status == "none"


def _ams_h(field: bytes) -> list:
    tags = _core.core.parse_tag_list(field.split(b":", 1)[1])
    return [n.strip() for n in tags["h"].replace(b"\r\n", b"").decode().split(":")]


@pytest.mark.parametrize("headers", [None, ["from", "subject", "DKIM-Signature"]])
def test_the_ams_signs_the_dkim_signatures_present(keys, rsa_key, ed_key, headers):
    # RFC 8617 section 4.1.2: the AMS SHOULD sign the DKIM-Signature fields present.
    signed = _signed(rsa_key)
    twice = fastdkim.Signer("fwd.example", "ed", ed_key).sign(signed) + signed
    sealer = ARCSealer("lists.example", "arc", rsa_key, authserv_id="lists.example", keys=keys, headers=headers)
    fields = sealer.seal(twice)
    h = _ams_h(fields[1])
    assert h[-2:] == ["dkim-signature", "dkim-signature"] and h.count("dkim-signature") == 2
    sealed = b"".join(fields) + twice
    assert verify_chain(sealed, keys).status == "pass"
    # a DKIM-Signature changed after sealing (a tag added to the top one) breaks the AMS
    top = twice.split(b"\r\n", 1)[0]
    changed = sealed.replace(top, top.replace(b"d=fwd.example", b"d=fwd.example; xnote=1"), 1)
    r = verify_chain(changed, keys)
    assert r.status == "fail" and "ARC-Message-Signature i=1" in r.reason
    plain = sealer.seal(MESSAGE)  # none present: none listed
    assert "dkim-signature" not in _ams_h(plain[1])


def test_the_ams_h_list_stays_within_what_a_verifier_accepts(keys, rsa_key):
    from fastdkim.tags import MAX_H_NAMES

    junk = b"".join(b"DKIM-Signature: v=1; a=rsa-sha256; d=x%d.example; s=s; h=from; bh=AA==; b=AA==\r\n" % i
                    for i in range(MAX_H_NAMES + 20))
    message = junk + _signed(rsa_key)
    sealer = ARCSealer("lists.example", "arc", rsa_key, authserv_id="lists.example", keys=keys)
    fields = sealer.seal(message)
    h = _ams_h(fields[1])
    assert len(h) <= MAX_H_NAMES and h.count("dkim-signature") == MAX_H_NAMES - len(set(h) - {"dkim-signature"})
    assert verify_chain(b"".join(fields) + message, keys).status == "pass"


def test_three_hops_with_a_list_footer_between(sealers, keys, rsa_key):
    """The list validates the chain as the message arrives, adds a footer
    (breaking the DKIM signature and the first AMS), then seals cv=pass."""
    m1 = sealers[0].seal_message(_signed(rsa_key))
    on_arrival = verify_chain(m1, keys)
    assert on_arrival.status == "pass"
    m2 = sealers[1].seal_message(_add_footer(m1), chain=on_arrival, results="dkim=pass header.d=origin.example")
    assert b"cv=pass" in m2.split(b"ARC-Message-Signature")[0]
    m3 = sealers[2].seal_message(m2)
    result = verify_chain(m3, keys)
    assert (result.status, result.instances) == ("pass", 3)
    assert result.oldest_pass == 2  # the first AMS no longer covers the body
    assert [s.ams_status for s in result.sets] == ["fail", "pass", "pass"]
    assert [s.seal_status for s in result.sets] == ["pass", "pass", "pass"]
    assert fastdkim.verify(m3, keys=keys)[0].status == "fail"


def test_validating_after_the_footer_seals_cv_fail_over_its_own_set(sealers, keys, rsa_key):
    m1 = sealers[0].seal_message(_signed(rsa_key))
    m2 = sealers[1].seal_message(_add_footer(m1))  # validated now: the most recent AMS fails
    assert sealers[1].last_result.status == "fail"
    seal = m2.split(b"ARC-Message-Signature")[0]
    assert b"cv=fail" in seal
    result = verify_chain(m2, keys)
    assert result.status == "fail" and "cv=fail" in result.reason
    # Nothing more is sealed on a chain that ends in cv=fail.
    assert sealers[2].seal(m2) == []
    assert sealers[2].seal_message(m2) == m2
    # The cv=fail seal covers its own set alone (RFC 8617 section 5.1.2).
    seal, ams, aar = (raw for _, raw in read_message(m2).fields[:3])
    tags, unsigned = _core.core.parse_signature(seal)
    data = _core.core.canonical_headers([aar, ams], unsigned, True)
    rsa_key.public_key().verify(_core.core.b64decode(tags["b"]), data, padding.PKCS1v15(), hashes.SHA256())


def test_chain_argument_with_a_broken_structure_gives_cv_fail(sealers, keys, rsa_key):
    m1 = sealers[0].seal_message(_signed(rsa_key))
    good = verify_chain(m1, keys)
    broken = m1.replace(b"ARC-Authentication-Results: i=1", b"X-Old: i=1", 1)
    fields = sealers[1].seal(broken, chain=good, results="none")
    assert b"cv=fail" in fields[0]
    with pytest.raises(OptionError):
        sealers[1].seal(m1, chain=ARCResult("none", "no ARC header fields"), results="none")
    with pytest.raises(OptionError):
        sealers[1].seal(MESSAGE, chain=good, results="none")  # a chain result for a message without one
    with pytest.raises(TypeError):
        sealers[1].seal(m1, chain="pass")  # type: ignore[arg-type]


@pytest.mark.parametrize("canonicalization", ["simple/simple", "relaxed/simple", "simple/relaxed"])
def test_ams_canonicalizations(rsa_key, keys, canonicalization):
    sealer = ARCSealer("lists.example", "arc", rsa_key, authserv_id="lists.example", keys=keys,
                       canonicalization=canonicalization)
    sealed = sealer.seal_message(MESSAGE, results="spf=pass smtp.mailfrom=origin.example")
    assert ("c=%s" % canonicalization).encode() in sealed
    assert verify_chain(sealed, keys).status == "pass"


@pytest.mark.parametrize("width", [None, 40, 78, 200])
def test_layouts_verify(rsa_key, keys, width):
    sealer = ARCSealer("lists.example", "arc", rsa_key, authserv_id="lists.example", keys=keys, width=width,
                       canonicalization="simple/simple")
    fields = sealer.seal(MESSAGE, results=["spf=pass smtp.mailfrom=origin.example", "dmarc=pass"])
    if width is None:
        assert all(f.count(b"\r\n") == 1 for f in fields)
    else:
        assert all(len(line) <= width for f in fields[:2] for line in f.split(b"\r\n"))
    assert verify_chain(b"".join(fields) + MESSAGE, keys).status == "pass"


def test_lf_message_gets_lf_fields_and_verifies(sealers, keys, rsa_key):
    lf = _signed(rsa_key).replace(b"\r\n", b"\n")
    fields = sealers[0].seal(lf)
    assert all(b"\r" not in f for f in fields)
    sealed = b"".join(fields) + lf
    assert verify_chain(sealed, keys).status == "pass"
    assert verify_chain(sealed.replace(b"\n", b"\r\n"), keys).status == "pass"


def test_tampering_after_sealing_fails(sealers, keys, rsa_key):
    m = sealers[1].seal_message(sealers[0].seal_message(_signed(rsa_key)))
    assert verify_chain(m.replace(b"Subject: hello", b"Subject: HELLO"), keys).status == "fail"
    assert verify_chain(m.replace(b"this is the body", b"this is a body"), keys).status == "fail"
    # an older AAR changed: the seals cover it
    bad = m.replace(b"arc=none", b"arc=pass", 1)
    r = verify_chain(bad, keys)
    assert r.status == "fail" and "ARC-Seal" in r.reason


def test_computed_results_without_dkim_signatures(sealers, keys):
    fields = sealers[0].seal(MESSAGE, remote_ip="192.0.2.9")
    assert fields[2] == (b"ARC-Authentication-Results: i=1; mx.origin.example;\r\n\tdkim=none;\r\n\t"
                         b"arc=none smtp.remote-ip=192.0.2.9\r\n")
    assert verify_chain(b"".join(fields) + MESSAGE, keys).status == "pass"


def test_no_arc_fields_is_none(keys):
    r = verify_chain(MESSAGE, keys)
    assert (r.status, r.instances, r.cv) == ("none", 0, "none")
    assert r.as_dict()["status"] == "none" and "none" in str(r)


def test_seal_needs_a_from_field_and_a_wellformed_header(sealers):
    with pytest.raises(UnsignableMessageError):
        sealers[0].seal(b"To: x@y.example\r\n\r\nbody\r\n", results="none")
    with pytest.raises(UnsignableMessageError):
        sealers[0].seal(b"From: a@b.example\r\nX: a\rb\r\n\r\nbody\r\n", results="none")


def test_sealer_options(rsa_key):
    with pytest.raises(OptionError):
        ARCSealer("a.example", "s", rsa_key, authserv_id="not an id")
    with pytest.raises(SigningError):
        ARCSealer("a.example", "s", rsa_key, authserv_id="a.example", headers="from:arc-seal")
    with pytest.raises(SigningError):
        ARCSealer("a.example", "s", rsa_key, authserv_id="a.example", headers="from:authentication-results")
    with pytest.raises(OptionError):
        ARCSealer("a.example", "s", rsa_key, authserv_id="a.example", width=10)
    with pytest.raises(TypeError):
        ARCSealer("a.example", "s", rsa_key, authserv_id="a.example", keys=42)
    sealer = ARCSealer("a.example", "s", rsa_key, authserv_id="a.example", keys={})
    assert "a.example" in repr(sealer)
    for bad in ("", [], "dkim=pass\r\nX-Injected: yes", "spf=pass\n\n body", ["ok", ""]):
        with pytest.raises(OptionError):
            sealer.seal(MESSAGE, results=bad)
    with pytest.raises(OptionError):
        sealer.seal(MESSAGE, results="spf=pass", remote_ip="192.0.2.1")


def test_fifty_sets_then_no_more(rsa_key, keys):
    sealer = ARCSealer("lists.example", "arc", rsa_key, authserv_id="lists.example", keys=keys)
    m = MESSAGE
    for _ in range(MAX_INSTANCES):
        m = sealer.seal_message(m, results="none")
    r = verify_chain(m, keys)
    assert (r.status, r.instances) == ("pass", MAX_INSTANCES)
    assert sealer.seal(m, results="none") == []


# -- hostile chains: fail with a reason, never an exception --------------------------------------


def _one_hop(sealers, rsa_key) -> bytes:
    return sealers[0].seal_message(_signed(rsa_key))


def test_fifty_one_instances(sealers, keys, rsa_key):
    m = _one_hop(sealers, rsa_key)
    extra = b"ARC-Seal: i=51; a=rsa-sha256; cv=pass; d=x.example; s=s; b=AAAA\r\n"
    r = verify_chain(extra + m, keys)
    assert r.status == "fail" and "1..50" in r.reason


def test_duplicate_instance(sealers, keys, rsa_key):
    m = _one_hop(sealers, rsa_key)
    head = m.split(b"ARC-Message-Signature")[0]
    r = verify_chain(head + m, keys)
    assert r.status == "fail" and "2 ARC-Seal for i=1" in r.reason


def test_gap_in_instances(sealers, keys, rsa_key):
    m = sealers[1].seal_message(sealers[0].seal_message(_signed(rsa_key)))
    m3 = sealers[2].seal_message(m)
    gap = re.sub(rb"(ARC-[A-Za-z-]+: )([^\r]*?)\bi=2;", lambda x: x.group(1) + x.group(2) + b"i=4;", m3)
    gap = gap.replace(b"ARC-Authentication-Results: i=2;", b"ARC-Authentication-Results: i=4;")
    r = verify_chain(gap, keys)
    assert r.status == "fail"


def test_missing_field_of_a_set(sealers, keys, rsa_key):
    m = _one_hop(sealers, rsa_key)
    r = verify_chain(m.replace(b"ARC-Authentication-Results:", b"X-Removed:"), keys)
    assert r.status == "fail" and "no ARC-Authentication-Results for i=1" in r.reason


def test_seal_that_signs_the_wrong_fields(rsa_key, keys, sealers):
    """A second seal made as a cv=fail seal (its own set alone) but claiming cv=pass."""
    m1 = _one_hop(sealers, rsa_key)
    lying = ARCSealer("lists.example", "arc", rsa_key, authserv_id="lists.example", keys=keys)
    fields = lying.seal(m1.replace(b"ARC-Seal:", b"X-Hidden-Seal:", 1), results="none")
    assert b"cv=fail" in fields[0]
    forged = fields[0].replace(b"cv=fail", b"cv=pass")  # (b= no longer matches either)
    r = verify_chain(forged + fields[1] + fields[2] + m1, keys)
    assert r.status == "fail" and "ARC-Seal i=2" in r.reason


def _relaxed_field(field: bytes, crlf: bool = True) -> bytes:
    name, value = field.split(b":", 1)
    value = re.sub(rb"[ \t]+", b" ", value.replace(b"\r\n", b"")).strip(b" \t")
    return name.strip().lower() + b":" + value + (b"\r\n" if crlf else b"")


def _hand_sealed(key, aar: bytes, message: bytes = MESSAGE, ams_extra: bytes = b"") -> bytes:
    """*message* with a first ARC set (relaxed/relaxed, rsa-sha256) whose
    ARC-Authentication-Results field is *aar* as given, made by hand (the
    canonicalization written out, not fastdkim's) and signed with *key*."""
    head, body = message.split(b"\r\n\r\n", 1)
    fields = {f.split(b":", 1)[0].lower(): f + b"\r\n" for f in re.split(rb"\r\n(?![ \t])", head)}
    lines = [re.sub(rb"[ \t]+", b" ", line).rstrip(b" ") for line in body.split(b"\r\n")]
    bh = base64.b64encode(hashes_sha256(b"\r\n".join(lines).rstrip(b"\r\n") + b"\r\n"))

    def sign(data: bytes) -> bytes:
        return base64.b64encode(key.sign(data, padding.PKCS1v15(), hashes.SHA256()))

    ams = (b"ARC-Message-Signature: i=1; a=rsa-sha256; c=relaxed/relaxed; d=lists.example; s=arc; " + ams_extra
           + b"h=from:to:subject; bh=" + bh + b"; b=")
    ams += sign(b"".join(_relaxed_field(fields[n]) for n in (b"from", b"to", b"subject"))
                + _relaxed_field(ams, False)) + b"\r\n"
    seal = b"ARC-Seal: i=1; a=rsa-sha256; cv=none; d=lists.example; s=arc; b="
    seal += sign(_relaxed_field(aar) + _relaxed_field(ams) + _relaxed_field(seal, False)) + b"\r\n"
    return seal + ams + aar + message


def hashes_sha256(data: bytes) -> bytes:
    h = hashes.Hash(hashes.SHA256())
    h.update(data)
    return h.finalize()


@pytest.mark.parametrize("aar, servid", [
    # an authserv-id cut short by what none holds is no authserv-id, not a prefix of one
    (b"ARC-Authentication-Results: i=1; mx.ex\xc3\xa4mple.org; arc=none\r\n", None),
    (b"ARC-Authentication-Results: i=1; lists.example/relay; arc=none\r\n", None),
    (b'ARC-Authentication-Results: i=1; "mx.\xc3\xa4.example"; arc=none\r\n', "mx.\u00e4.example"),
    (b"ARC-Authentication-Results: i=1; lists.example 1; arc=none\r\n", "lists.example"),
    (b"ARC-Authentication-Results: i=1; lists.example; arc=none\r\n", "lists.example"),
    # RFC 8617 section 4.1.1: [CFWS] before the instance, and between it and ';'
    (b"ARC-Authentication-Results: (hop (one)) i=1; lists.example; arc=none\r\n", "lists.example"),
    (b"ARC-Authentication-Results: i=1 (first hop);\r\n (by) lists.example; arc=none\r\n", "lists.example"),
    (b"ARC-Authentication-Results:\r\n\ti (x) = (y) 1\r\n ; \"lists example\"; none\r\n", "lists example"),
])
def test_aar_with_comments_and_folding_where_the_grammar_allows_them(rsa_key, keys, aar, servid):
    r = verify_chain(_hand_sealed(rsa_key, aar), keys)
    assert (r.status, r.instances) == ("pass", 1), r.reason
    assert r.sets[0].authserv_id == servid


@pytest.mark.parametrize("extra", [b"v=1; ", b"x_note=hello; ", b"v=1; z=a|b; "])
def test_unknown_tags_of_an_ams_are_ignored_v_included(rsa_key, keys, extra):
    # RFC 8617 section 4.1.2 defines no v= for the AMS; RFC 6376 section 3.2:
    # unrecognized tags are ignored (dkimpy and Mail::DKIM read it so)
    aar = b"ARC-Authentication-Results: i=1; lists.example; arc=none\r\n"
    r = verify_chain(_hand_sealed(rsa_key, aar, ams_extra=extra), keys)
    assert r.status == "pass", r.reason


@pytest.mark.parametrize("aar", [
    b"ARC-Authentication-Results: (never closed i=1; lists.example; arc=none\r\n",
    b"ARC-Authentication-Results: I=1; lists.example; arc=none\r\n",
    b"ARC-Authentication-Results: lists.example; i=1; arc=none\r\n",
    b"ARC-Authentication-Results: i=1 lists.example; arc=none\r\n",
    b"ARC-Authentication-Results: i=(1); lists.example; arc=none\r\n",
])
def test_aar_without_a_leading_instance_fails(rsa_key, keys, aar):
    r = verify_chain(_hand_sealed(rsa_key, aar), keys)
    assert r.status == "fail" and "without a leading i= tag" in r.reason


@pytest.mark.parametrize("mutation", [
    (b"ARC-Seal", b"i", b"0"), (b"ARC-Seal", b"i", b"x"), (b"ARC-Seal", b"i", b""), (b"ARC-Seal", b"cv", b"maybe"),
    (b"ARC-Seal", b"a", b"rsa-sha1"), (b"ARC-Seal", b"d", b"-bad-"), (b"ARC-Seal", b"b", b"!!!"),
    (b"ARC-Message-Signature", b"h", b"to:subject"), (b"ARC-Message-Signature", b"h", b"from:arc-seal"),
    (b"ARC-Message-Signature", b"bh", b"AAAA"), (b"ARC-Message-Signature", b"c", b"fancy"),
    (b"ARC-Message-Signature", b"i", b"2"), (b"ARC-Message-Signature", b"t", b"soon"),
    (b"ARC-Message-Signature", b"a", b"ed448-sha512"),
])
def test_malformed_tags_fail(sealers, keys, rsa_key, mutation):
    m = _one_hop(sealers, rsa_key)
    r = verify_chain(_rewrite_tag(m, *mutation), keys)
    assert r.status == "fail" and r.reason


@pytest.mark.parametrize("junk", [
    b"ARC-Seal: no tags at all\r\n", b"ARC-Seal: i=1; i=1\r\n", b"ARC-Message-Signature: ;;;\r\n",
    b"ARC-Authentication-Results: nothing\r\n", b"ARC-Authentication-Results: i=99999999999999999999; x\r\n",
    b"ARC-Seal: " + b"x=y; " * 100 + b"i=1\r\n",
])
def test_junk_fields_fail(keys, junk):
    r = verify_chain(junk + MESSAGE, keys)
    assert r.status == "fail" and r.reason


def test_enormous_and_numerous_fields(sealers, keys, rsa_key):
    m = _one_hop(sealers, rsa_key)
    huge = b"ARC-Seal: i=1; a=rsa-sha256; b=" + b"A" * (4 << 20) + b"; cv=none; d=x.example; s=s\r\n"
    assert verify_chain(huge + m, keys).status == "fail"
    many = b"ARC-Authentication-Results: i=1; x.example; none\r\n" * 5000
    r = verify_chain(many + m, keys)
    assert r.status == "fail" and "5001 ARC-Authentication-Results for i=1" in r.reason
    spread = b"".join(b"ARC-Authentication-Results: i=%d; x.example; none\r\n" % (i % 50 + 1) for i in range(5000))
    assert verify_chain(spread + m, keys).status == "fail"


def test_structural_failures_fetch_no_keys(sealers, keys, rsa_key):
    asked = []

    def lookup(name):
        asked.append(name)
        return [keys[name].encode()] if name in keys else []

    m = _one_hop(sealers, rsa_key)
    assert verify_chain(m.replace(b"ARC-Authentication-Results:", b"X:"), lookup).status == "fail"
    assert asked == []


def test_key_lookup_failures(sealers, keys, rsa_key):
    m = _one_hop(sealers, rsa_key)

    class Flaky:
        def lookup(self, name):
            raise TemporaryLookupError("timeout")

    r = verify_chain(m, Flaky())
    assert r.status == "fail" and r.temporary and "timeout" in r.reason

    class Broken:
        def lookup(self, name):
            raise RuntimeError("bug")

    r = verify_chain(m, Broken())
    assert r.status == "fail" and "bug" in r.reason
    r = verify_chain(m, {})
    assert r.status == "fail" and "no key record" in r.reason and not r.temporary
    wrong_type = {"sel._domainkey.origin.example": keys["ed._domainkey.fwd.example"]}
    r = verify_chain(m, wrong_type)
    assert r.status == "fail" and "k=ed25519" in r.reason


def test_malformed_header_block_with_arc_fields_fails(sealers, keys, rsa_key):
    m = _one_hop(sealers, rsa_key)
    r = verify_chain(m.replace(b"Subject: hello", b"Subject: he\rllo"), keys)
    assert r.status == "fail" and "malformed" in r.reason


def test_message_as_a_file(sealers, keys, rsa_key, tmp_path):
    path = tmp_path / "m.eml"
    path.write_bytes(_one_hop(sealers, rsa_key))
    with path.open("rb") as fh:
        assert verify_chain(fh, keys).status == "pass"
    with path.open("rb") as fh:
        fields = sealers[1].seal(fh, results="none")
    assert b"cv=pass" in fields[0]


@given(st.sampled_from([b"ARC-Seal: ", b"ARC-Message-Signature: ", b"ARC-Authentication-Results: "]),
       st.binary(max_size=300))
def test_random_arc_fields_never_raise(name, value):
    r = verify_chain(name + value + b"\r\n" + MESSAGE, {})
    assert r.status == "fail" and r.reason


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow], max_examples=60)
@given(st.data())
def test_random_edits_of_a_sealed_chain_never_raise(sealers, keys, rsa_key, data):
    m = _two_hops(sealers, rsa_key)
    head_end = m.index(b"\r\n\r\n")
    at = data.draw(st.integers(0, head_end - 1))
    new = data.draw(st.binary(min_size=0, max_size=3))
    edited = m[:at] + new + m[at + 1:]
    r = verify_chain(edited, keys)
    assert r.status in ("pass", "fail", "none") and r.reason
    if r.status == "pass":  # only an edit that canonicalization ignores leaves the chain valid
        assert r.instances == 2


_TWO_HOPS: dict = {}


def _two_hops(sealers, rsa_key) -> bytes:
    """Two hops sealed once per key (the fuzz test runs many examples)."""
    key = id(rsa_key)
    if key not in _TWO_HOPS:
        _TWO_HOPS[key] = sealers[1].seal_message(_one_hop(sealers, rsa_key))
    return _TWO_HOPS[key]


# -- the arc= method of Authentication-Results -----------------------------------------------------


def test_arc_resinfo():
    ok = ARCResult("pass", "chain of 2 ARC sets verified", 2, 1)
    assert arc_resinfo(ok) == "arc=pass (i=2)"
    # an IPv6 address is quoted: its colons are RFC 2045 tspecials (RFC 8601 section 2.2)
    assert arc_resinfo(ok, remote_ip="2001:db8:0::1") == 'arc=pass (i=2) smtp.remote-ip="2001:db8::1"'
    assert arc_resinfo(ok, remote_ip="192.0.2.1") == "arc=pass (i=2) smtp.remote-ip=192.0.2.1"
    older = ARCResult("pass", "ok", 3, 2)
    assert arc_resinfo(older) == "arc=pass (i=3) header.oldest-pass=2"
    bad = ARCResult("fail", 'ARC-Seal i=1: "quoted"\r\nInjected: yes', 1)
    text = arc_resinfo(bad)
    assert text.startswith('arc=fail (i=1) reason="ARC-Seal i=1: \\"quoted\\"') and "\r" not in text
    assert arc_resinfo(ARCResult("none", "no ARC header fields")) == "arc=none"
    with pytest.raises(OptionError):
        arc_resinfo(ok, remote_ip="not-an-ip")
    with pytest.raises(OptionError):
        arc_resinfo(ARCResult("maybe; x=y", "?"))


def test_arc_authentication_results(sealers, keys, rsa_key):
    m = _one_hop(sealers, rsa_key)
    field = arc_authentication_results("mx.example.net", verify_chain(m, keys), dkim=fastdkim.verify(m, keys=keys),
                                       remote_ip="192.0.2.7", linesep="\r\n", width=78)
    assert field.startswith("Authentication-Results: mx.example.net;\r\n\tdkim=pass")
    assert field.endswith(";\r\n\tarc=pass (i=1) smtp.remote-ip=192.0.2.7")
    alone = arc_authentication_results("mx.example.net", verify_chain(MESSAGE, keys))
    assert alone == "Authentication-Results: mx.example.net;\n\tarc=none"
    parsed = fastdkim.authres.parse_authentication_results(field)
    assert [r.method for r in parsed.results] == ["dkim", "arc"]


# -- review of hostile chains (issue 17) -----------------------------------------------------------


def _hand_seal(rsa_key, message: bytes, instance: bytes = b"1", cv: bytes = b"none") -> bytes:
    """``message`` with one ARC set made field by field (no sealer's checks),
    its ``i=`` written as ``instance``, signed by ``arc._domainkey.lists.example``."""
    def sign(data: bytes) -> bytes:
        return base64.b64encode(rsa_key.sign(data, padding.PKCS1v15(), hashes.SHA256()))

    pm = read_message(message)
    hasher = _core.core.BodyHasher(True, None, False, "sha256")
    for chunk in pm.body:
        hasher.update(chunk)
    bh = base64.b64encode(hasher.digest())
    aar = b"ARC-Authentication-Results: i=%s; lists.example; none\r\n" % instance
    h = [b"from", b"to", b"subject"]
    ams = (b"ARC-Message-Signature: a=rsa-sha256; c=relaxed/relaxed; d=lists.example; s=arc; i=%s;"
           b" h=%s; bh=%s; b=\r\n" % (instance, b":".join(h), bh))
    data = _core.core.header_hash_input(list(pm.fields), h, _core.core.parse_signature(ams)[1], True)
    ams = ams.replace(b"b=\r\n", b"b=" + sign(data) + b"\r\n")
    seal = b"ARC-Seal: a=rsa-sha256; cv=%s; d=lists.example; s=arc; i=%s; b=\r\n" % (cv, instance)
    data = _core.core.canonical_headers([aar, ams], _core.core.parse_signature(seal)[1], True)
    seal = seal.replace(b"b=\r\n", b"b=" + sign(data) + b"\r\n")
    return seal + ams + aar + message


def test_hand_sealed_set_verifies(rsa_key, keys):
    """The helper below makes sets that verify when nothing is wrong with them."""
    assert verify_chain(_hand_seal(rsa_key, MESSAGE), keys).status == "pass"


@pytest.mark.parametrize("instance", [b"01", b"+1", b"1.0", b"0", b"00", b"51", b"100"])
def test_instance_written_other_than_plainly_fails(rsa_key, keys, instance):
    """A correctly signed set whose i= is not plain digits without a leading
    zero: parsers that compare text and parsers that compare numbers would
    file it under different sets."""
    r = verify_chain(_hand_seal(rsa_key, MESSAGE, instance), keys)
    assert r.status == "fail" and "i=%s" % instance.decode() in r.reason


def test_from_field_added_above_the_sealed_one_fails(sealers, keys, rsa_key):
    """The AMS signs From once; a second From put on top after sealing is
    not covered and must not ride on the chain's pass."""
    m = sealers[1].seal_message(_one_hop(sealers, rsa_key))
    assert verify_chain(m, keys).status == "pass"
    r = verify_chain(b"From: Mallory <ceo@origin.example>\r\n" + m, keys)
    assert r.status == "fail" and "2 From fields" in r.reason and "ARC-Message-Signature i=2" in r.reason
    below = m.replace(b"\r\n\r\n", b"\r\nFrom: Mallory <ceo@origin.example>\r\n\r\n", 1)
    assert verify_chain(below, keys).status == "fail"


def test_newest_ams_failing_fails_whatever_the_older_ones_say(rsa_key, keys, sealers):
    """Only the second AMS signs List-Id; changing it breaks that AMS alone."""
    m1 = _one_hop(sealers, rsa_key)
    with_list = m1.replace(b"\r\n\r\n", b"\r\nList-Id: <list.lists.example>\r\n\r\n", 1)
    m2 = sealers[1].seal_message(with_list)
    assert verify_chain(m2, keys).status == "pass"
    r = verify_chain(m2.replace(b"List-Id: <list.", b"List-Id: <other."), keys)
    assert r.status == "fail" and "ARC-Message-Signature i=2" in r.reason
    assert [s.ams_status for s in r.sets] == ["", "fail"]


def test_sets_in_any_order_in_the_header(sealers, keys, rsa_key):
    """The AS input is ordered by instance (RFC 8617 section 5.1.1), not by
    position: sets moved about in the header still verify.  (dkimpy's input
    depends on where the sets stand: it fails such a chain.)"""
    m = sealers[1].seal_message(_one_hop(sealers, rsa_key))
    lines = read_message(m).fields
    raws = [raw for _, raw in lines]
    moved = b"".join(raws[3:6] + raws[0:3] + raws[6:]) + b"\r\n" + m.split(b"\r\n\r\n", 1)[1]
    r = verify_chain(moved, keys)
    assert (r.status, r.instances) == ("pass", 2)


@pytest.mark.parametrize("mutation", [
    (b"ARC-Seal", b"cv", b"\x1b[2J\x07"), (b"ARC-Seal", b"a", b"rsa\x1b[0m\x07"), (b"ARC-Seal", b"d", b"\x1b[31mx.example"),
    (b"ARC-Seal", b"i", b"\x1b1"), (b"ARC-Message-Signature", b"c", b"relaxed\x1b[0m"),
])
def test_reasons_show_no_control_characters(sealers, keys, rsa_key, mutation):
    """Reasons quote tag values from the message; they reach logs and terminals."""
    r = verify_chain(_rewrite_tag(_one_hop(sealers, rsa_key), *mutation), keys)
    assert r.status == "fail" and "\\x1b" in r.reason
    assert all(c.isprintable() and c.isascii() for c in r.reason), r.reason


def test_chain_argument_passing_another_chain_is_refused(sealers, keys, rsa_key):
    """A pass given for one chain must not be sealed over another: the seal
    would vouch for sets nobody validated."""
    m1 = _one_hop(sealers, rsa_key)
    one = verify_chain(m1, keys)
    m2 = sealers[1].seal_message(m1)
    with pytest.raises(OptionError):
        sealers[2].seal(m2, chain=one, results="none")
    assert b"cv=pass" in sealers[2].seal(m2, chain=verify_chain(m2, keys), results="none")[0]


def test_authentication_results_takes_the_arc_result():
    """``arc=`` goes through the one field builder: after the DKIM (and
    DMARC) results, folded like them, a long failure reason inside its
    quoted string; parsed back, the methods come in that order."""
    from fastdkim.authres import authentication_results, parse_authentication_results

    bad = ARCResult("fail", "ARC-Message-Signature i=2 did not verify: " + "body hash mismatch " * 6, 2)
    field = authentication_results("mx.example.net", [], arc=bad, remote_ip="192.0.2.1", width=78)
    lines = field.split("\n")
    assert lines[1] == "\tdkim=none;" and lines[2].startswith("\tarc=fail (i=2)")
    assert all(len(line.expandtabs(8)) <= 78 for line in lines), lines
    assert field.endswith("smtp.remote-ip=192.0.2.1")
    parsed = parse_authentication_results(field)
    assert [r.method for r in parsed.results] == ["dkim", "arc"]
    assert parsed.results[1].result == "fail"
    assert authentication_results("mx.example.net", [], arc=ARCResult("pass", "ok", 1, 1)) == \
        "Authentication-Results: mx.example.net;\n\tdkim=none;\n\tarc=pass (i=1)"
    with pytest.raises(OptionError):
        authentication_results("mx.example.net", [], arc=bad, remote_ip="nowhere")


def test_arc_time_tags_are_dkims(keys, rsa_key):
    """RFC 8617 section 4.1.2: the AMS has DKIM's semantics, time tags
    included (and the seal's are read alike): made in the future beyond the
    clock skew, expired, or with x= not after t=, the chain fails."""
    import time

    now = int(time.time())
    later = ARCSealer("lists.example", "arc", rsa_key, authserv_id="lists.example", keys=keys,
                      clock=lambda: now + 3600)
    sealed = later.seal_message(_signed(rsa_key))
    early = verify_chain(sealed, keys=keys, now=now)
    assert early.status == "fail" and "t=%d is in the future" % (now + 3600) in early.reason, early.reason
    assert verify_chain(sealed, keys=keys, now=now + 3600).status == "pass"
    assert verify_chain(sealed, keys=keys, now=now + 3600 - 200).status == "pass"  # within the 300 s skew
    sealed = ARCSealer("lists.example", "arc", rsa_key, authserv_id="lists.example", keys=keys,
                       clock=lambda: now).seal_message(_signed(rsa_key))
    assert verify_chain(sealed, keys=keys, now=now).status == "pass"
    for field in (b"ARC-Message-Signature", b"ARC-Seal"):
        expired = _rewrite_tag(sealed, field, b"t", b"%d; x=%d" % (now - 7200, now - 3600))
        out = verify_chain(expired, keys=keys, now=now)
        assert out.status == "fail" and "signature expired (x=%d)" % (now - 3600) in out.reason, out.reason
        crossed = _rewrite_tag(sealed, field, b"t", b"%d; x=%d" % (now, now))
        out = verify_chain(crossed, keys=keys, now=now)
        assert out.status == "fail" and "is not later than t=" in out.reason, out.reason
        bad = _rewrite_tag(sealed, field, b"t", b"%d; x=soon" % now)
        assert "malformed x= value" in verify_chain(bad, keys=keys, now=now).reason


def test_a_chain_that_cannot_be_validated_for_now_is_not_sealed_cv_fail(sealers, keys, rsa_key):
    """A key lookup that times out is no verdict: the sealer raises
    TemporaryLookupError (seal later) rather than end the chain with cv=fail."""
    first = sealers[1].seal_message(_signed(rsa_key))

    def slow(name):
        if name.startswith("arc._domainkey."):
            raise TemporaryLookupError("timed out")
        return keys.get(name)
    hop = ARCSealer("fwd.example", "ed", sealers[2]._signer.key, authserv_id="mx.fwd.example", keys=slow)
    with pytest.raises(TemporaryLookupError, match="seal the message later"):
        hop.seal(first)
    assert hop.last_result.temporary and hop.last_result.status == "fail"
    assert b"cv=pass" in sealers[2].seal_message(first)  # once the keys are there
