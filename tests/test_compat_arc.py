"""``arc_sign``, ``arc_verify`` and the ``ARC`` class of fastdkim.compat,
driven as dkimpy's documentation drives them and cross-checked against the
real dkimpy both ways: sets each seals validate with the other, verdicts and
result dictionaries are equal, and the same cases seal nothing or raise.
"""
from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import serialization as ser

import fastdkim.compat as compat
from fastdkim.keys import public_key_record
from fastdkim.message import read_message

real = pytest.importorskip("dkim")
pytest.importorskip("authres")

LISTS = b"lists.example.org"
RELAY = b"relay.example.net"
BODY = b"Hello,\r\n\r\nthe list says hi.\r\n"


def _message(authserv_id: bytes = LISTS, results: bytes = b"spf=pass smtp.mailfrom=a@example.com;\r\n"
             b" dkim=pass header.d=example.com") -> bytes:
    return (b"Authentication-Results: " + authserv_id + b"; " + results + b"\r\n"
            b"From: Alice <a@example.com>\r\nTo: list@lists.example.org\r\nSubject: hi\r\n"
            b"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <x@example.com>\r\n\r\n" + BODY)


@pytest.fixture(scope="module")
def world(rsa_key):
    pem = rsa_key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.TraditionalOpenSSL, ser.NoEncryption())
    records = {b"arc._domainkey." + d + b".": public_key_record(rsa_key).encode() for d in (LISTS, RELAY)}

    def dnsfunc(name, timeout=5):
        return records.get(name)

    return {"pem": pem, "dnsfunc": dnsfunc}


SEALERS = {"fastdkim": compat, "dkimpy": real}


def _both(sealed, dnsfunc):
    return compat.arc_verify(sealed, dnsfunc=dnsfunc), real.arc_verify(sealed, dnsfunc=dnsfunc)


def _seal(module, message, domain, pem, **kw):
    return b"".join(module.arc_sign(message, b"arc", domain, pem, domain, **kw)) + message


@pytest.mark.parametrize("first", SEALERS)
@pytest.mark.parametrize("second", SEALERS)
def test_two_hops_cross_validate(world, first, second):
    one = _seal(SEALERS[first], _message(), LISTS, world["pem"])
    mine, theirs = _both(one, world["dnsfunc"])
    assert mine == theirs
    assert mine[0] == compat.CV_Pass and mine[2] == "success"
    two = _seal(SEALERS[second], b"Authentication-Results: relay.example.net; arc=pass\r\n" + one, RELAY,
                world["pem"])
    mine, theirs = _both(two, world["dnsfunc"])
    assert mine == theirs
    assert mine[0] == compat.CV_Pass
    assert [r["instance"] for r in mine[1]] == [2, 1]
    assert [r["cv"] for r in mine[1]] == [b"pass", b"none"]
    assert mine[1][0]["aar-value"].startswith(b"i=2; relay.example.net; arc=pass")


@pytest.mark.parametrize("sealer", SEALERS)
def test_damage_fails_for_both(world, sealer):
    sealed = _seal(SEALERS[sealer], _message(), LISTS, world["pem"])
    for damaged in (sealed.replace(b"the list says hi", b"the list says bye"),
                    sealed.replace(b"Subject: hi", b"Subject: ho")):
        mine, theirs = _both(damaged, world["dnsfunc"])
        assert mine[0] == theirs[0] == compat.CV_Fail
        assert mine[1][0]["ams-valid"] is theirs[1][0]["ams-valid"] is False
    cv = sealed.replace(b"cv=none", b"cv=pass")  # breaks the seal's signature
    assert compat.arc_verify(cv, dnsfunc=world["dnsfunc"])[0] == real.arc_verify(cv, dnsfunc=world["dnsfunc"])[0] \
        == compat.CV_Fail


def test_chain_ended_by_cv_fail_is_none_for_both(world):
    one = _seal(real, _message(), LISTS, world["pem"])
    two = _seal(compat, b"Authentication-Results: relay.example.net; arc=fail\r\n" + one, RELAY, world["pem"])
    assert b"cv=fail" in two
    mine, theirs = _both(two, world["dnsfunc"])
    assert mine[0] is None and theirs[0] is None
    assert mine[2] == theirs[2] == "ARC-Seal[2] reported failure, the chain is terminated"


def test_unsigned_message(world):
    msg = _message()
    assert compat.arc_verify(msg, dnsfunc=world["dnsfunc"]) == real.arc_verify(msg, dnsfunc=world["dnsfunc"]) \
        == (compat.CV_None, [], "Message is not ARC signed")


@pytest.mark.parametrize("module", SEALERS.values(), ids=SEALERS)
def test_nothing_to_seal(world, module):
    # No Authentication-Results of this ADMD; a chain without an arc= result.
    assert module.arc_sign(_message(b"other.example"), b"arc", LISTS, world["pem"], LISTS) == []
    one = _seal(module, _message(), LISTS, world["pem"])
    assert module.arc_sign(b"Authentication-Results: relay.example.net; spf=pass smtp.mailfrom=a@b.example\r\n" + one,
                           b"arc", RELAY, world["pem"], RELAY) == []


@pytest.mark.parametrize("module", SEALERS.values(), ids=SEALERS)
def test_refusals(world, module):
    with pytest.raises(module.ParameterError):  # arc= result, but no chain
        module.arc_sign(_message(results=b"arc=pass"), b"arc", LISTS, world["pem"], LISTS)
    with pytest.raises(module.ParameterError):
        module.arc_sign(_message(), b"arc", LISTS, world["pem"], LISTS, include_headers=[b"subject"])
    with pytest.raises(module.ParameterError):
        module.arc_sign(_message(), b"arc", LISTS, world["pem"], LISTS, include_headers=[b"from", b"received"])
    with pytest.raises(module.KeyFormatError):
        module.arc_sign(_message(), b"arc", LISTS, b"not a key", LISTS)


def test_arc_class_as_dkimpy_documents_it(world):
    a = compat.ARC(_message(), signature_algorithm=b"rsa-sha256")
    assert isinstance(a, compat.DomainSigner)
    fields = a.sign(b"arc", LISTS, world["pem"], LISTS, include_headers=[b"from", b"to", b"subject"],
                    timestamp=1700000000)
    assert [f.split(b":", 1)[0] for f in fields] == [b"ARC-Seal", b"ARC-Message-Signature",
                                                    b"ARC-Authentication-Results"]
    assert all(f.endswith(b"\r\n") for f in fields)
    assert b"t=1700000000" in fields[0] and b"t=1700000000" in fields[1]
    assert a.include_headers == (b"from", b"to", b"subject")
    sealed = b"".join(fields) + _message()
    v = compat.ARC(sealed)
    cv, results, reason = v.verify(dnsfunc=world["dnsfunc"])
    assert (cv, reason) == (compat.CV_Pass, "success")
    assert results == real.ARC(sealed).verify(dnsfunc=world["dnsfunc"])[1]
    assert v.sorted_arc_headers()[0] == 1


def test_lf_message_and_linesep(world):
    msg = _message().replace(b"\r\n", b"\n")
    fields = compat.arc_sign(msg, b"arc", LISTS, world["pem"], LISTS, linesep=b"\n")
    assert not any(b"\r" in f for f in fields)
    sealed = b"".join(fields) + msg
    mine, theirs = _both(sealed, world["dnsfunc"])
    assert mine[0] == theirs[0] == compat.CV_Pass


def test_dnsfunc_errors(world):
    sealed = _seal(compat, _message(), LISTS, world["pem"])

    def timeout(name, timeout=5):
        raise compat.DnsTimeoutError("slow")

    assert compat.arc_verify(sealed, dnsfunc=timeout)[0] == compat.CV_Fail

    def broken(name, timeout=5):
        raise RuntimeError("resolver bug")

    with pytest.raises(RuntimeError):
        compat.arc_verify(sealed, dnsfunc=broken)
    assert compat.arc_verify(sealed, dnsfunc=lambda name, timeout=5: None)[0] == compat.CV_Fail


# -- the documented differences --------------------------------------------------------------

def test_ams_signs_present_fields_once(world):
    fields = compat.arc_sign(_message(), b"arc", LISTS, world["pem"], LISTS)
    theirs = real.arc_sign(_message(), b"arc", LISTS, world["pem"], LISTS)
    h = compat.parse_tag_value(b"".join(fields[1].split(b":", 1)[1].split()))[b"h"]
    assert h.split(b":").count(b"from") == 1
    h_real = real.parse_tag_value(b"".join(theirs[1].split(b":", 1)[1].split()))[b"h"]
    assert h_real.split(b":").count(b"from") == 2  # dkimpy oversigns From


def test_signature_algorithm_is_honoured(world, ed_key):
    seed = ed_key.private_bytes(ser.Encoding.Raw, ser.PrivateFormat.Raw, ser.NoEncryption())

    key = base64.b64encode(seed)
    records = {b"ed._domainkey.lists.example.org.": public_key_record(ed_key).encode()}
    fields = compat.arc_sign(_message(), b"ed", LISTS, key, LISTS, signature_algorithm=b"ed25519-sha256")
    assert b"a=ed25519-sha256" in fields[0]
    cv, _, _ = compat.arc_verify(b"".join(fields) + _message(), dnsfunc=lambda n, timeout=5: records.get(n))
    assert cv == compat.CV_Pass


def test_unknown_arc_result_sealed_as_fail(world):
    one = _seal(compat, _message(), LISTS, world["pem"])
    two = _seal(compat, b"Authentication-Results: relay.example.net; arc=neutral\r\n" + one, RELAY, world["pem"])
    assert b"cv=fail" in two
    theirs = _seal(real, b"Authentication-Results: relay.example.net; arc=neutral\r\n" + one, RELAY, world["pem"])
    assert b"cv=neutral" in theirs
    # a chain ended by cv=fail is not sealed again
    three = b"Authentication-Results: lists.example.org; arc=fail\r\n" + two
    assert compat.arc_sign(three, b"arc", LISTS, world["pem"], LISTS) == []


@pytest.mark.parametrize("sealer", SEALERS)
def test_from_added_after_sealing_fails_for_both(world, sealer):
    """dkimpy counts one From more than h= names when verifying; fastdkim
    fails an AMS that leaves any From field uncovered: the same verdict."""
    sealed = _seal(SEALERS[sealer], _message(), LISTS, world["pem"])
    added = b"From: Mallory <ceo@example.com>\r\n" + sealed
    mine, theirs = _both(added, world["dnsfunc"])
    assert mine[0] == theirs[0] == compat.CV_Fail


def test_sets_out_of_header_order(world):
    """RFC 8617 section 5.1.1 orders a seal's input by instance; dkimpy's
    input depends on where the sets stand, and it fails a chain whose sets were moved
    about (the RFC decides: fastdkim passes it)."""
    one = _seal(compat, _message(), LISTS, world["pem"])
    two = _seal(compat, b"Authentication-Results: relay.example.net; arc=pass\r\n" + one, RELAY, world["pem"])
    raws = [raw for _, raw in read_message(two).fields]
    names = [r.split(b":")[0] for r in raws[:8]]
    assert names == [b"ARC-Seal", b"ARC-Message-Signature", b"ARC-Authentication-Results",
                     b"Authentication-Results"] * 2
    body = two.split(b"\r\n\r\n", 1)[1]
    moved = b"".join(raws[4:8] + raws[0:4] + raws[8:]) + b"\r\n" + body  # set 1 above set 2
    mine, theirs = _both(moved, world["dnsfunc"])
    assert mine[0] == compat.CV_Pass
    assert theirs[0] == compat.CV_Fail
