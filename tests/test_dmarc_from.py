"""The From domain as DMARC reads it (fastdkim.dmarc_from): the RFC 5322
grammar, strictly, so that no From field gives a domain its reader does not
see; through :func:`fastdkim.dmarc.evaluate`, as receivers use it."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastdkim._text import to_a_label_domain
from fastdkim.dmarc import evaluate
from fastdkim.dmarc_from import author_domain, from_field_domains
from fastdkim.errors import FromAddressError
from fastdkim.verification import Verification


def passing(domain):
    return Verification("pass", "signature verified", domain=domain, selector="s1")


# From fields a lenient reader finds some domain in (the one an attacker
# registered, while the reader of the message sees another): permerror.
SPOOFED_FROM = [
    b"bob@bank.example evil.example",        # read as bank.exampleevil.example (org: exampleevil.example)
    b"bob@bank.example\r\n\tevil.example",   # the same, folded
    b"bob@bank evil.example",                # read as bankevil.example
    b"alice@evil.example <bob@bank.example>",
    b"<bob@bank.example> evil.example",
    b"Bob <bob@bank.example> trailing",
    b"<bob@bank.example>x@evil.example",
    b"<@bank.example:admin@evil.example>",   # an obsolete route: some readers show its domain
    b'"bob@bank.example',                     # a quoted string never closed
    b"bob@bank.example (comment never closed",
    b"<bob@bank.example",
    b"bob@bank.example>",
    b"bob@bank.example@evil.example",
    b"bob@[192.0.2.1]",
    b"bob@bank.example\\,<x@evil.example>",
    b"bob@bank.example <>",
]


@pytest.mark.parametrize("value", SPOOFED_FROM)
def test_a_from_field_without_one_clear_domain_is_permerror_never_a_guess(value):
    message = b"From: " + value + b"\r\nSubject: x\r\n\r\nbody\r\n"
    keys = {"_dmarc.%s" % d: "v=DMARC1; p=none" for d in (
        "bank.example", "evil.example", "bank.exampleevil.example", "exampleevil.example", "bankevil.example")}
    out = evaluate(message, [passing("evil.example"), passing("exampleevil.example"), passing("bankevil.example")],
                   keys=keys)
    assert out.status == "permerror" and out.from_domain is None, out
    assert "RFC 7489 section 6.6.1" in out.reason or "cannot be trusted" in out.reason


@pytest.mark.parametrize("value, domain", [
    (b'"alice@evil.example" <bob@bank.example>', "bank.example"),
    (b"bob@bank.example (alice@evil.example)", "bank.example"),
    (b"(alice@evil.example) bob@bank.example", "bank.example"),
    (b"=?utf-8?q?alice=40evil=2Eexample?= <bob@bank.example>", "bank.example"),
    (b'"bob@bank.example" @evil.example', "evil.example"),  # a quoted local part: the domain is evil.example
    (b"Bob\r\n <bob@Bank.EXAMPLE.>", "bank.example"),
    (b"bob . smith @ bank . example", "bank.example"),
    (b"bob@b\xc3\xbccher.example", "xn--bcher-kva.example"),
    (b"bob@xn--bcher-kva.example", "xn--bcher-kva.example"),
    (b"group: Bob <bob@bank.example>;", "bank.example"),
    (b"bob@bank.example, Alice <alice@BANK.example>", "bank.example"),  # one domain
    (b", bob@bank.example,", "bank.example"),
    (b"bob@co.uk", "co.uk"),  # a public suffix is its own organizational domain
])
def test_the_from_domain_the_grammar_gives(value, domain):
    out = evaluate(b"From: " + value + b"\r\n\r\nbody\r\n", [passing(domain)], keys={"_dmarc." + domain: "v=DMARC1; p=reject"})
    assert (out.status, out.from_domain) == ("pass", domain), out


@pytest.mark.parametrize("value, problem", [
    (b"undisclosed", "no domain"), (b"group:;", "no address"),
    (b"bob@bank..example", "after an address"), (b"bob@-bank.example", "invalid"), (b"@bank.example", "no local part"),
    (b"bob@", "domain after '@'"), (b"<bob@bank.example> <x@evil.example>", "after an address"),
])
def test_from_field_problems_are_said(value, problem):
    out = evaluate(b"From: " + value + b"\r\n\r\nbody\r\n", [], keys={})
    assert out.status == "permerror" and problem in out.reason, out.reason


FROM_ALPHABET = st.sampled_from(list('ab.@<>,;:()"\\[] \t') + ["\r\n ", "\u00e9", "\x00", "=?utf-8?q?x?=",
                                                                   "bank.example", "evil.example"])


@given(st.lists(FROM_ALPHABET, max_size=30).map("".join))
def test_fuzz_from_field_gives_one_valid_domain_or_the_documented_error(value):
    try:
        domains = from_field_domains(value)
    except FromAddressError:
        return
    for d in domains:
        assert d == to_a_label_domain(d)
    out = evaluate(("From: %s\r\n\r\nx\r\n" % value).encode("utf-8", "surrogateescape"), [], keys={})
    assert out.status in ("none", "permerror")


def test_u_label_and_a_label_domains_align():
    msg = "From: bob@b\u00fccher.example\r\n\r\nbody\r\n".encode()
    keys = {"_dmarc.xn--bcher-kva.example": "v=DMARC1; p=reject; adkim=s"}
    for d in ("b\u00fccher.example", "xn--bcher-kva.example", "XN--BCHER-KVA.EXAMPLE."):
        assert evaluate(msg, [passing(d)], keys=keys).status == "pass"
    assert evaluate(msg, [passing("mail.xn--bcher-kva.example")], keys=keys).status == "fail"


def test_author_domain_of_the_header_fields():
    assert author_domain([(b"to", b"To: x@evil.example\r\n"), (b"from", b"From: Bob\r\n <bob@Bank.example>\r\n")]) \
        == "bank.example"
    for fields, problem in (([], "no From field"), ([(b"from", b"From: a@b.example\r\n")] * 2, "2 From fields"),
                            ([(b"from", b"From: a@b.example\r\nX: y\r\n")], "line break")):
        with pytest.raises(FromAddressError, match=problem):
            author_domain(fields)


def test_addresses_of_two_domains_are_each_checked_not_a_guess():
    """A From naming the attacker's domain beside the bank's: the bank's
    check fails, and its policy applies (never a pass from the attacker's)."""
    message = b"From: group: a@bank.example, b@evil.example;\r\nSubject: x\r\n\r\nbody\r\n"
    keys = {"_dmarc.bank.example": "v=DMARC1; p=quarantine", "_dmarc.evil.example": "v=DMARC1; p=none"}
    out = evaluate(message, [passing("evil.example")], keys=keys)
    assert (out.status, out.from_domain, out.policy) == ("fail", "bank.example", "quarantine"), out
