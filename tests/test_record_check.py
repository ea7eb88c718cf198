"""Checking a published key record (fastdkim.record_check), as ``fastdkim check-dns`` reports it."""
from __future__ import annotations

import pytest

import fastdkim
from fastdkim.keys import MIN_RSA_BITS, RECOMMENDED_RSA_BITS
from fastdkim.record_check import ERROR, OK, WARNING, Finding, check_record

from helpers_keys import rsa_key_of_bits

NAME = "s._domainkey.example.com"


@pytest.fixture(scope="module")
def ed():
    return fastdkim.generate_private_key("ed25519")


def levels(found):
    return [f.level for f in found]


def test_a_good_record_matching_its_key(ed):
    found = check_record(NAME, [fastdkim.public_key_record(ed).encode()], private_key=ed, key_name="s.pem")
    assert found == [Finding(OK, "Ed25519 key (RFC 8463)"), Finding(OK, "the private key s.pem matches the published record")]
    level, message = found[0]  # a finding unpacks as (level, message)
    assert (level, message) == (OK, "Ed25519 key (RFC 8463)")


def test_a_record_given_as_text_and_another_key(ed):
    other = fastdkim.generate_private_key("ed25519")
    found = check_record(NAME, [fastdkim.public_key_record(ed)], private_key=other)
    assert found[-1] == Finding(ERROR, "the private key does NOT match the published record")


def test_several_dkim_records_and_no_dkim_record(ed):
    rec = fastdkim.public_key_record(ed).encode()
    found = check_record(NAME, [rec, rec, b"google-site-verification=abc"])
    assert found[0] == Finding(ERROR, "2 DKIM records at %s: verifiers reject the key (publish exactly one)" % NAME)
    found = check_record(NAME, [b"google-site-verification=abc"])
    assert found == [Finding(ERROR, "no DKIM record among the TXT records")]
    assert check_record(NAME, []) == [Finding(ERROR, "no DKIM record among the TXT records")]


def test_quotes_revoked_keys_and_syntax_errors():
    found = check_record(NAME, [b'v=DKIM1; k=rsa; " "p=MIIB'])
    assert levels(found) == [ERROR, ERROR] and "quote" in found[0].message and "syntax" in found[1].message
    found = check_record(NAME, [b"v=DKIM1; k=rsa; p="])
    assert levels(found) == [ERROR] and "revoked" in found[0].message


@pytest.mark.parametrize("bits, level", [(768, ERROR), (MIN_RSA_BITS, WARNING), (RECOMMENDED_RSA_BITS, OK)])
def test_rsa_key_sizes(bits, level):
    key = rsa_key_of_bits(bits) if bits < RECOMMENDED_RSA_BITS else fastdkim.generate_private_key("rsa", bits)
    found = check_record(NAME, [fastdkim.public_key_record(key).encode()])
    assert levels(found) == [level] and ("%d bits" % bits) in found[0].message
    if level == WARNING:
        assert "recommends %d or more" % RECOMMENDED_RSA_BITS in found[0].message


def test_testing_flag_strings_and_answer_sizes(ed):
    rec = fastdkim.public_key_record(ed, testing=True).encode()
    found = check_record(NAME, [rec], strings=[3], answer_size=600)
    assert found == [
        Finding(OK, "served as 3 character-strings, which verifiers join"),
        Finding(OK, "Ed25519 key (RFC 8463)"),
        Finding(WARNING, "t=y: the domain is testing DKIM; remove it once signing works"),
        Finding(WARNING, "the DNS answer is 600 bytes: over 512, it needs EDNS0 (or TCP)"),
    ]
    found = check_record(NAME, [rec], strings=[1], answer_size=1300)
    assert found[-1] == Finding(WARNING, "the DNS answer is 1300 bytes: larger than a safe UDP answer (1232); "
                                         "resolvers must retry over TCP")
    assert len(check_record(NAME, [rec], answer_size=512)) == 2  # no size warning


def test_a_key_record_whose_hashes_leave_out_sha256_is_an_error(ed):
    rec = fastdkim.public_key_record(ed).replace("k=ed25519", "k=ed25519; h=sha1")
    found = check_record(NAME, [rec])
    assert Finding(ERROR, "h=sha1 does not allow sha256: verifiers fail every signature with this key "
                          "(RFC 8301: sha256 only)") in found
    assert ERROR not in levels(check_record(NAME, [rec.replace("h=sha1", "h=sha1:sha256")]))


def test_a_record_verifiers_ignore_is_reported_and_does_not_count(ed):
    rec = fastdkim.public_key_record(ed)
    other = "v=DKIM1; s=other; p=MIIB"
    found = check_record(NAME, [other, rec])
    assert found[0] == Finding(WARNING, "key record s=other does not allow email: verifiers ignore this record")
    assert ERROR not in levels(found)
    found = check_record(NAME, [other])
    assert found[0].level == ERROR and Finding(ERROR, "no DKIM record among the TXT records") in found


def test_check_dns_counts_records_as_verifiers_do(ed):
    """A broken record that does not say v=DKIM1, beside the key: verifiers
    ignore it and use the key, and check-dns says so (not "2 DKIM records")."""
    rec = fastdkim.public_key_record(ed)
    broken = "k=rsa; p=AAAA"
    found = check_record(NAME, [broken, rec])
    assert ERROR not in levels(found), found
    assert found[0].level == WARNING and found[0].message.endswith("verifiers ignore this record")
    signer = fastdkim.Signer("example.com", "s", ed)
    msg = b"From: a@example.com\r\n\r\nbody\r\n"
    [r] = fastdkim.verify(signer.sign(msg) + msg, keys={NAME: [broken, rec]})
    assert r.status == "pass", r.reason
    # one that says v=DKIM1 counts, broken or not
    found = check_record(NAME, ["v=DKIM1; " + broken, rec])
    assert Finding(ERROR, "2 DKIM records at %s: verifiers reject the key (publish exactly one)" % NAME) in found
