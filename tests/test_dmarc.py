"""DMARC (RFC 7489), the DKIM side: organizational domains, alignment, records,
policy discovery through a DNS server on 127.0.0.1, the result, and the
``dmarc`` method in Authentication-Results fields and on the command line."""
from __future__ import annotations

import json
import re

import dns.rcode
import pytest

import fastdkim
from fastdkim import dmarc
from fastdkim.authres import authentication_results, parse_authentication_results
from fastdkim.dmarc import evaluate, evaluate_domain, is_aligned, organizational_domain
from fastdkim.dmarc_record import DMARCRecord, is_dmarc_record, parse_dmarc_record
from fastdkim.errors import OptionError, TagSyntaxError, TemporaryLookupError
from fastdkim.keysources import DNSKeySource
from fastdkim.verification import Verification

from dnstries import count_tries
from fakedns import FakeDNS, Neg, Txt
from helpers_cli import run

authres_pkg = pytest.importorskip("authres")


def signed(domain, d=None, sel="s1", frm=None):
    """A message From ``frm`` (default joe@``domain``) signed with d=``d``
    (default ``domain``), and the key record to publish."""
    key = fastdkim.generate_private_key("ed25519")
    msg = ("From: Joe <%s>\r\nTo: x@example.org\r\nSubject: hi\r\n\r\nHello.\r\n" % (frm or "joe@" + domain)).encode()
    d = d or domain
    return fastdkim.Signer(d, sel, key).sign_message(msg), {"%s._domainkey.%s" % (sel, d): fastdkim.public_key_record(key)}


def passing(domain):
    return Verification("pass", "signature verified", domain=domain, selector="s1")


@pytest.fixture
def server():
    """A DNS server on 127.0.0.1 (a free port), its zone filled by the test."""
    srv = FakeDNS({})
    try:
        yield srv
    finally:
        srv.stop()


def source(srv, timeout=2.0):
    return DNSKeySource(nameservers=[srv.address], timeout=timeout)


# -- organizational domains and alignment -------------------------------------------------------


@pytest.mark.parametrize("domain, org", [
    ("example.com", "example.com"), ("mail.example.com", "example.com"), ("a.b.c.example.com", "example.com"),
    ("example.co.uk", "example.co.uk"), ("sub.example.co.uk", "example.co.uk"), ("x.sub.example.co.uk",
                                                                                  "example.co.uk"),
    ("co.uk", "co.uk"), ("EXAMPLE.Co.UK.", "example.co.uk"), ("www.example.com.au", "example.com.au"),
    ("bücher.example.de", "example.de"), ("x.unknown-tld-for-tests", "x.unknown-tld-for-tests"),
])
def test_organizational_domain(domain, org):
    assert organizational_domain(domain) == org


def test_organizational_domain_of_an_invalid_name():
    with pytest.raises(OptionError):
        organizational_domain("not a domain")


@pytest.mark.parametrize("d, frm, strict, relaxed", [
    ("example.co.uk", "example.co.uk", True, True), ("example.co.uk", "sub.example.co.uk", False, True),
    ("sub.example.co.uk", "example.co.uk", False, True), ("co.uk", "example.co.uk", False, False),
    ("other.co.uk", "example.co.uk", False, False), ("EXAMPLE.COM", "example.com", True, True),
    ("mail.example.com", "news.example.com", False, True), ("example.net", "example.com", False, False),
    ("bad domain", "example.com", False, False),
])
def test_alignment_strict_and_relaxed(d, frm, strict, relaxed):
    assert is_aligned(d, frm, "s") is strict and is_aligned(d, frm, "r") is relaxed and is_aligned(d, frm) is relaxed


def test_alignment_mode_is_checked():
    with pytest.raises(OptionError):
        is_aligned("a.example", "a.example", "x")


def test_the_public_suffix_list_can_be_replaced_and_restored(tmp_path):
    psl = tmp_path / "list.dat"
    psl.write_text("// a private copy\ncom\nexample.com\n")
    try:
        dmarc.load_public_suffix_list(psl)
        assert organizational_domain("a.b.example.com") == "b.example.com"
        empty = tmp_path / "empty.dat"
        empty.write_text("// nothing\n\n")
        with pytest.raises(OptionError):
            dmarc.load_public_suffix_list(empty)
        with pytest.raises(OSError):
            dmarc.load_public_suffix_list(tmp_path / "missing.dat")
    finally:
        dmarc.load_public_suffix_list()
    assert organizational_domain("a.b.example.com") == "example.com"


# -- records ----------------------------------------------------------------------------------


def test_a_full_record():
    r = parse_dmarc_record(b"v=DMARC1; p=Reject; sp=quarantine; adkim=s; aspf=S; pct=25; "
                           b"rua=mailto:agg@example.com!10m, mailto:b@example.net; ruf=mailto:f@example.com; "
                           b"fo=1:d; rf=afrf; ri=3600; future=tag")
    assert (r.p, r.sp, r.adkim, r.aspf, r.pct, r.ri) == ("reject", "quarantine", "s", "s", 25, 3600)
    assert r.rua == ("mailto:agg@example.com!10m", "mailto:b@example.net") and r.ruf == ("mailto:f@example.com",)
    assert r.fo == ("1", "d") and r.rf == ("afrf",) and r.notes == ()
    assert r.policy_for(True) == "quarantine" and r.policy_for(False) == "reject"
    assert json.loads(json.dumps(r.as_dict()))["rua"] == list(r.rua)


def test_defaults():
    r = parse_dmarc_record("v=DMARC1;p=none")
    assert r == DMARCRecord(p="none", text="v=DMARC1;p=none")
    assert (r.sp, r.adkim, r.aspf, r.pct, r.fo, r.rf, r.ri) == (None, "r", "r", 100, ("0",), ("afrf",), 86400)
    assert r.policy_for(True) == "none"


@pytest.mark.parametrize("txt, dmarc_record", [
    ("v=DMARC1; p=none", True), ("v = DMARC1 ;p=none", True), ("V=DMARC1; p=none", True), ("v=DMARC1", True),
    ("v=dmarc1; p=none", False), ("v=DMARC10; p=none", False), ("p=none; v=DMARC1", False),
    ("v=spf1 -all", False), ("", False), ("v=DMARC1x", False),
])
def test_what_is_a_dmarc_record(txt, dmarc_record):
    assert is_dmarc_record(txt) is dmarc_record


@pytest.mark.parametrize("txt, problem", [
    ("v=DMARC1", "p= is missing"), ("v=DMARC1; p=maybe", "p=maybe"), ("v=DMARC1; p=none; sp=sometimes", "sp="),
    ("v=spf1; p=none", "not a DMARC record"), ("v=DMARC1; junk; p=", "p= is not none"),
    ("v=DMARC1; x=1; ;; =reject", "p= is missing"),
])
def test_malformed_records(txt, problem):
    with pytest.raises(TagSyntaxError, match=re.escape(problem)):
        parse_dmarc_record(txt)


@pytest.mark.parametrize("txt, p, pct, note", [
    ("v=DMARC1; p=reject; junk", "reject", 100, "'junk' is not a tag (no '=')"),
    ("v=DMARC1; p=reject; x-foo=1", "reject", 100, "'x-foo' is not a tag name"),
    ("v=DMARC1; p=reject; 1x=2", "reject", 100, "'1x' is not a tag name"),
    ("v=DMARC1; p=reject; pct=10; pct=20", "reject", 10, "a second pct="),
    ("v=DMARC1; p=quarantine; PCT=5; pct=50", "quarantine", 5, "a second pct="),
    ("v=DMARC1; p=reject; p=none", "reject", 100, "a second p="),
    ("v=DMARC1; p=none; P=reject", "none", 100, "a second p="),
    ("v=DMARC1;p=reject;;pct=30;=;", "reject", 30, "'' is not a tag name"),
])
def test_syntax_errors_in_the_remainder_are_discarded(txt, p, pct, note):
    # RFC 7489 section 6.3: "Syntax errors in the remainder of the record
    # SHOULD be discarded in favor of default values (if any) or ignored
    # outright"; a domain's p=reject is not lost to a stray spec.
    r = parse_dmarc_record(txt)
    assert (r.p, r.pct) == (p, pct) and any(n.startswith(note) for n in r.notes), r.notes


def test_a_record_of_junk_gets_a_few_notes():
    r = parse_dmarc_record("v=DMARC1; p=reject; " + "; ".join("junk%d" % i for i in range(5000)))
    assert r.p == "reject" and len(r.notes) == 11 and r.notes[-1] == "and 4990 more specs ignored"


def test_a_missing_policy_with_a_report_address_reads_as_none():
    r = parse_dmarc_record("v=DMARC1; p=bogus; rua=mailto:d@example.com")
    assert r.p == "none" and r.rua == ("mailto:d@example.com",) and "read as p=none" in r.notes[0]
    with pytest.raises(TagSyntaxError):
        parse_dmarc_record("v=DMARC1; rua=not a uri")


@pytest.mark.parametrize("txt, tag", [
    ("v=DMARC1; p=reject; adkim=x", "adkim"), ("v=DMARC1; p=reject; aspf=relaxed", "aspf"),
    ("v=DMARC1; p=reject; pct=101", "pct"), ("v=DMARC1; p=reject; pct=-1", "pct"), ("v=DMARC1; p=reject; pct=", "pct"),
])
def test_bad_alignment_modes_and_pct_fall_back_to_defaults(txt, tag):
    """RFC 7489 section 6.3: syntax errors after v= and p= are discarded in
    favour of the defaults (adkim=r, aspf=r, pct=100), not the whole record."""
    r = parse_dmarc_record(txt)
    assert (r.p, r.adkim, r.aspf, r.pct) == ("reject", "r", "r", 100)
    assert len(r.notes) == 1 and r.notes[0].startswith(tag + "=") and "default" in r.notes[0]


def test_bad_reporting_tags_fall_back_to_defaults():
    r = parse_dmarc_record("v=DMARC1; p=reject; rua=bad uri,mailto:ok@example.com; fo=9; rf=a b; ri=soon")
    assert r.rua == ("mailto:ok@example.com",) and r.fo == ("0",) and r.rf == ("afrf",) and r.ri == 86400
    assert len(r.notes) == 4


# -- the result, with records served by a DNS server on 127.0.0.1 ------------------------------


def test_pass_through_an_aligned_signature_under_a_multi_label_suffix(server):
    message, keys = signed("example.co.uk")
    server.zone.update({name: Txt([value]) for name, value in keys.items()})
    server.zone["_dmarc.example.co.uk"] = Txt(["v=DMARC1; p=reject; rua=mailto:d@example.co.uk"])
    src = source(server)
    results = fastdkim.verify(message, keys=src)
    out = evaluate(message, results, keys=src)
    assert (out.status, out.policy, out.from_domain, out.organizational_domain) == (
        "pass", "reject", "example.co.uk", "example.co.uk")
    assert out.record_domain == "example.co.uk" and "d=example.co.uk" in out.reason
    assert out.dkim[0].strict and out.dkim[0].relaxed
    # answered from the cache the second time
    evaluate(message, results, keys=src)
    assert server.count("_dmarc.example.co.uk") == 1 and server.count("_dmarc.co.uk") == 0
    doc = out.as_dict()
    assert json.loads(json.dumps(doc)) == doc
    assert list(doc)[:5] == ["status", "reason", "header_from", "organizational_domain", "policy"]


def test_subdomain_falls_back_to_the_organizational_record_and_takes_sp(server):
    message, keys = signed("sub.example.co.uk", d="example.co.uk")
    server.zone.update({name: Txt([value]) for name, value in keys.items()})
    server.zone["_dmarc.sub.example.co.uk"] = Neg(dns.rcode.NXDOMAIN)
    server.zone["_dmarc.example.co.uk"] = Txt(["v=DMARC1; p=reject; sp=quarantine"])
    src = source(server)
    results = fastdkim.verify(message, keys=src)
    out = evaluate(message, results, keys=src)
    assert (out.status, out.policy, out.record_domain) == ("pass", "quarantine", "example.co.uk")
    assert server.count("_dmarc.sub.example.co.uk") == 1 and server.count("_dmarc.example.co.uk") == 1
    assert out.dkim[0].relaxed and not out.dkim[0].strict
    # strict DKIM alignment: the parent's signature no longer aligns
    server.zone["_dmarc.example.co.uk"] = Txt(["v=DMARC1; p=reject; sp=quarantine; adkim=s"])
    strict = evaluate(message, results, keys=source(server))
    assert (strict.status, strict.policy) == ("fail", "quarantine") and "not aligned (strict)" in strict.reason
    # without sp=, p applies to subdomains
    server.zone["_dmarc.example.co.uk"] = Txt(["v=DMARC1; p=reject"])
    assert evaluate(message, [], keys=source(server)).policy == "reject"


def test_a_subdomain_with_its_own_record_takes_its_p(server):
    server.zone["_dmarc.sub.example.co.uk"] = Txt(["v=DMARC1; p=none; sp=reject"])
    server.zone["_dmarc.example.co.uk"] = Txt(["v=DMARC1; p=reject"])
    out = evaluate_domain("sub.example.co.uk", [passing("sub.example.co.uk")], keys=source(server))
    assert (out.status, out.policy, out.record_domain) == ("pass", "none", "sub.example.co.uk")
    assert server.count("_dmarc.example.co.uk") == 0


@pytest.mark.parametrize("results, spf, status", [
    # an aligned signature whose key lookup failed for now: a later attempt may pass
    ([Verification("fail", "bad", domain="example.com"), Verification("temperror", "dns", domain="mail.example.com")],
     "softfail", "temperror"),
    ([], "temperror", "temperror"),  # the SPF domain (example.com) aligns
    ([Verification("temperror", "dns", domain="example.com")], "pass", "pass"),  # SPF passes and aligns
    ([Verification("temperror", "dns", domain="example.org")], "fail", "fail"),  # not aligned
    ([Verification("permerror", "bad key", domain="example.com")], "neutral", "fail"),
])
def test_an_aligned_temporary_error_is_temperror_not_fail(server, results, spf, status):
    # RFC 8601's registry: temperror, "a later attempt might produce a final
    # result"; a p=reject policy is not applied to a DNS timeout.
    server.zone["_dmarc.example.com"] = Txt(["v=DMARC1; p=reject"])
    out = evaluate_domain("example.com", results, spf_result=spf, spf_domain="example.com", keys=source(server))
    assert out.status == status, out
    if status == "temperror":
        assert out.disposition() == "none" and "a later attempt may pass" in out.reason
        assert out.policy == "reject"  # (what the record asks, for a caller that defers the message)


def test_a_key_in_testing_mode_does_not_count(server):
    # RFC 6376 section 3.6.1, t=y: "Verifiers MUST NOT treat messages from
    # Signers in testing mode differently from unsigned email".
    message, keys = signed("example.com")
    [(name, record)] = keys.items()
    server.zone[name] = Txt([record + "; t=y"])
    server.zone["_dmarc.example.com"] = Txt(["v=DMARC1; p=reject"])
    results = fastdkim.verify(message, keys=source(server))
    assert results[0].status == "pass" and results[0].testing
    out = evaluate(message, results, keys=source(server))
    assert (out.status, out.disposition()) == ("fail", "reject")
    assert "testing mode (t=y)" in out.reason and out.dkim[0].testing and not out.dkim[0].counts
    assert out.as_dict()["dkim"][0]["testing"] is True
    # an aligned SPF pass still passes; a key out of testing mode counts again
    assert evaluate(message, results, spf_result="pass", spf_domain="example.com", keys=source(server)).passed
    server.zone[name] = Txt([record])
    assert evaluate(message, fastdkim.verify(message, keys=source(server)), keys=source(server)).passed


def test_pass_through_aligned_spf_only(server):
    server.zone["_dmarc.example.com"] = Txt(["v=DMARC1; p=reject"])
    src = source(server)
    out = evaluate_domain("example.com", [], spf_result="pass", spf_domain="bounce.example.com", keys=src)
    assert out.status == "pass" and out.spf_aligned and "SPF pass for bounce.example.com" in out.reason
    server.zone["_dmarc.example.com"] = Txt(["v=DMARC1; p=reject; aspf=s"])
    out = evaluate_domain("example.com", [], spf_result="pass", spf_domain="bounce.example.com", keys=source(server))
    assert out.status == "fail" and not out.spf_aligned and "not aligned (strict)" in out.reason
    same = evaluate_domain("example.com", [], spf_result="PASS", spf_domain="Example.COM", keys=source(server))
    assert same.status == "pass"


def test_fail_when_nothing_aligned_passes(server):
    server.zone["_dmarc.example.com"] = Txt(["v=DMARC1; p=quarantine; pct=20"])
    results = [passing("example.net"), Verification("fail", "bad", domain="example.com"),
               Verification("temperror", "dns", domain="other.example")]
    out = evaluate_domain("example.com", results, spf_result="softfail", spf_domain="example.com", keys=source(server))
    assert (out.status, out.policy, out.pct) == ("fail", "quarantine", 20)
    assert "DKIM d=example.net not aligned" in out.reason and "SPF softfail" in out.reason
    assert [(a.domain, a.status) for a in out.dkim] == [("example.net", "pass"), ("example.com", "fail"),
                                                        ("other.example", "temperror")]
    assert out.disposition(lambda: 0.1) == "quarantine" and out.disposition(lambda: 0.5) == "none"
    assert evaluate_domain("example.com", [passing("example.com")], keys=source(server)).disposition() == "none"


@pytest.mark.parametrize("records, status, reason", [
    (Txt(["v=DMARC1; p=reject"], ["v=DMARC1; p=none"]), "none", "2 DMARC records"),
    (Txt(["v=DMARC1; p=whatever; foo"]), "permerror", "malformed DMARC record"),
    (Txt(["v=DMARC1; p=whatever"]), "permerror", "p=whatever"),
    (Neg(dns.rcode.NXDOMAIN), "none", "no DMARC record at _dmarc.example.com"),
    (Neg(dns.rcode.NOERROR), "none", "no DMARC record"),
    (Txt(["v=spf1 -all"], ["some other text"]), "none", "no DMARC record"),
    (dns.rcode.SERVFAIL, "temperror", "_dmarc.example.com"),
    (dns.rcode.REFUSED, "temperror", "_dmarc.example.com"),
])
def test_record_outcomes(server, records, status, reason):
    server.zone["_dmarc.example.com"] = records
    out = evaluate_domain("example.com", [passing("example.com")], keys=source(server))
    assert out.status == status and reason in out.reason, out
    assert out.from_domain == "example.com" and out.policy is None
    field = authentication_results("mx.example.net", [passing("example.com")], dmarc=out)
    got = parse_authentication_results(field).results[-1]
    assert (got.method, got.result, got.get("header.from"), got.get("policy.dmarc")) == (
        "dmarc", status, "example.com", None)


def test_several_records_at_the_subdomain_stop_discovery(server):
    server.zone["_dmarc.sub.example.com"] = Txt(["v=DMARC1; p=none"], ["v=DMARC1; p=quarantine"])
    server.zone["_dmarc.example.com"] = Txt(["v=DMARC1; p=reject"])
    assert evaluate_domain("sub.example.com", [], keys=source(server)).status == "none"
    assert server.count("_dmarc.example.com") == 0


def test_nxdomain_falls_back_and_a_failure_there_is_temperror(server):
    server.zone["_dmarc.sub.example.co.uk"] = Neg(dns.rcode.NXDOMAIN)
    server.zone["_dmarc.example.co.uk"] = dns.rcode.SERVFAIL
    out = evaluate_domain("sub.example.co.uk", [passing("example.co.uk")], keys=source(server))
    assert out.status == "temperror" and "_dmarc.example.co.uk" in out.reason


def test_no_record_anywhere_is_none(server):
    out = evaluate_domain("sub.example.co.uk", [passing("example.co.uk")], spf_result="pass",
                          spf_domain="example.co.uk", keys=source(server))
    assert out.status == "none" and "_dmarc.sub.example.co.uk or _dmarc.example.co.uk" in out.reason
    assert out.dkim[0].relaxed and out.spf_aligned  # alignment is still reported


def test_a_dropped_query_is_temperror_within_the_timeout(server, monkeypatch):
    """Bounded by the lookup's timeout, told by the tries (not a clock): one
    (two at most), none given longer than the timeout, every one timed out."""
    server.zone["_dmarc.example.com"] = "drop"
    tries = count_tries(monkeypatch)
    out = evaluate_domain("example.com", [passing("example.com")], keys=source(server, timeout=0.5))
    assert out.status == "temperror"
    assert 1 <= server.count("_dmarc.example.com") <= 2
    assert 1 <= len(tries) <= 2 and tries.timed_out == tries
    assert tries.longest_timeout() <= 0.5


def test_a_dropped_query_at_the_first_step_does_not_fall_back(server):
    server.zone["_dmarc.sub.example.com"] = "drop"
    out = evaluate_domain("sub.example.com", [], keys=source(server, timeout=0.5))
    assert out.status == "temperror" and server.count("_dmarc.example.com") == 0


def test_a_mapping_or_a_broken_key_source():
    out = evaluate_domain("example.com", [passing("example.com")], keys={"_dmarc.example.com": "v=DMARC1; p=reject"})
    assert (out.status, out.policy) == ("pass", "reject")

    def broken(name):
        raise RuntimeError("boom")

    assert evaluate_domain("example.com", [], keys=broken).status == "temperror"


def test_a_name_too_long_to_look_up_falls_back():
    long_domain = ".".join(["a" * 60] * 4) + ".example.com"  # valid, but _dmarc. makes it too long
    long_domain = long_domain[len(long_domain) - 250:].lstrip(".")
    out = evaluate_domain(long_domain, [], keys={"_dmarc.example.com": "v=DMARC1; p=quarantine"})
    assert (out.status, out.policy) == ("fail", "quarantine") and any("too long" in n or "octets" in n
                                                                      for n in out.notes)


@pytest.mark.parametrize("message, problem", [
    (b"To: a@example.com\r\n\r\nbody\r\n", "no From field"),
    (b"From: undisclosed\r\nFrom: group:;\r\n\r\nbody\r\n", "2 From fields"),
    (b"From: undisclosed\r\n\r\nbody\r\n", "no domain"),
    (b"From: a@example.com\rX: y\r\n\r\nbody\r\n", "bare CR"),
])
def test_from_domain_trouble_is_permerror(message, problem):
    out = evaluate(message, [], keys={})
    assert out.status == "permerror" and problem in out.reason and out.from_domain is None
    field = authentication_results("mx", [], dmarc=out, width=78)
    assert parse_authentication_results(field).results[-1].result == "permerror"


def test_a_from_domain_that_is_a_public_suffix_trailing_dot_and_capitals(server):
    """A public suffix is its own organizational domain: its record is asked
    for once, with no second step; a final dot and capitals change nothing;
    a signature by a suffix never aligns with a domain registered under it."""
    server.zone["_dmarc.co.uk"] = Txt(["v=DMARC1; p=reject"])
    src = source(server)
    out = evaluate(b"From: Bob <bob@CO.UK.>\r\n\r\nbody\r\n", [passing("co.uk")], keys=src)
    assert (out.status, out.from_domain, out.organizational_domain, out.record_domain) == (
        "pass", "co.uk", "co.uk", "co.uk")
    assert server.count("_dmarc.co.uk") == 1 and server.count("_dmarc.co.uk.") == 0
    server.zone["_dmarc.example.co.uk"] = Txt(["v=DMARC1; p=reject"])
    out = evaluate(b"From: bob@Example.CO.uk.\r\n\r\nbody\r\n", [passing("CO.UK.")], keys=src)
    assert (out.status, out.from_domain) == ("fail", "example.co.uk") and not out.dkim[0].relaxed
    # suffixes written as A-labels are suffixes too: two registrations under one do not align
    assert organizational_domain("a.example.xn--55qx5d.cn") == "example.xn--55qx5d.cn"
    assert not is_aligned("attacker.xn--55qx5d.cn", "bank.xn--55qx5d.cn")
    assert is_aligned("mail.bank.xn--55qx5d.cn", "bank.\u516c\u53f8.cn")


@pytest.mark.parametrize("kwargs", [
    dict(spf_result="bogus", spf_domain="example.com"), dict(spf_result="pass"), dict(spf_domain="example.com"),
    dict(spf_result="pass", spf_domain="not a domain"),
])
def test_bad_spf_arguments(kwargs):
    with pytest.raises(OptionError):
        evaluate_domain("example.com", [], keys={}, **kwargs)


def test_dmarc_in_the_authentication_results_field(server):
    server.zone["_dmarc.example.co.uk"] = Txt(["v=DMARC1; p=reject; sp=none; pct=50"])
    out = evaluate_domain("sub.example.co.uk", [passing("example.co.uk")], keys=source(server))
    field = authentication_results("mx.example.net", [passing("example.co.uk")], dmarc=out, width=78)
    assert all(len(x.expandtabs(8)) <= 78 for x in field.split("\n"))
    ours = parse_authentication_results(field).results[-1]
    # no policy is applied to a pass: no policy.dmarc
    assert (ours.method, ours.result, ours.get("header.from"), ours.get("policy.dmarc")) == (
        "dmarc", "pass", "sub.example.co.uk", None)
    assert ours.comments == ("p=reject sp=none pct=50",)
    theirs = authres_pkg.AuthenticationResultsHeader.parse(re.sub(r"\n(?=\t| )", "", field)).results[-1]
    assert (theirs.method, theirs.result) == ("dmarc", "pass")
    assert [(p.type, p.name, p.value) for p in theirs.properties] == [("header", "from", "sub.example.co.uk")]
    no_sig = authentication_results("mx", [], dmarc=out)
    assert [r.method for r in parse_authentication_results(no_sig).results] == ["dkim", "dmarc"]


@pytest.mark.parametrize("record, disposition, written", [
    ("v=DMARC1; p=reject; sp=quarantine", None, "quarantine"),  # the subdomain policy, all of the mail
    ("v=DMARC1; p=reject; sp=quarantine; pct=50", None, None),  # drawn: the caller's disposition says
    ("v=DMARC1; p=reject; sp=quarantine; pct=50", "quarantine", "quarantine"),
    ("v=DMARC1; p=reject; sp=quarantine; pct=50", "none", "none"),  # outside the sample
])
def test_policy_dmarc_is_the_policy_applied(server, record, disposition, written):
    # The registry's policy.dmarc: the policy applied, after sp= and pct=.
    server.zone["_dmarc.example.co.uk"] = Txt([record])
    out = evaluate_domain("sub.example.co.uk", [], keys=source(server))
    assert out.status == "fail"
    field = authentication_results("mx.example.net", [], dmarc=out, disposition=disposition)
    got = parse_authentication_results(field).results[-1]
    assert got.get("policy.dmarc") == written
    theirs = authres_pkg.AuthenticationResultsHeader.parse(re.sub(r"\n(?=\t| )", "", field)).results[-1]
    assert [p.value for p in theirs.properties if (p.type, p.name) == ("policy", "dmarc")] == (
        [written] if written else [])


# -- the command line: verify --dmarc ---------------------------------------------------------


def test_cli_dmarc_lines_json_and_ar(server, tmp_path):
    message, keys = signed("sub.example.co.uk", d="example.co.uk")
    server.zone.update({name: Txt([value]) for name, value in keys.items()})
    server.zone["_dmarc.example.co.uk"] = Txt(["v=DMARC1; p=reject; sp=quarantine; adkim=s"])
    m = tmp_path / "m.eml"
    m.write_bytes(message)
    r = run("verify", "--dns", server.address, "--dmarc", m)
    lines = r.stdout.decode().splitlines()
    assert r.returncode == 0 and "pass d=example.co.uk" in lines[0]
    assert lines[1].endswith("dmarc=fail header.from=sub.example.co.uk policy=quarantine "
                             "(DKIM d=example.co.uk not aligned (strict); no SPF result given)")
    r = run("verify", "--dns", server.address, "--dmarc", "--spf-result", "Pass", "--spf-domain",
            "sub.example.co.uk", "--json", m)
    doc = json.loads(r.stdout)
    assert doc["dmarc"]["status"] == "pass" and doc["dmarc"]["policy"] == "quarantine"
    assert doc["dmarc"]["spf"] == {"result": "pass", "domain": "sub.example.co.uk", "aligned": True}
    r = run("verify", "--dns", server.address, "--dmarc", "--ar", "mx.example.net", input=message)
    field = parse_authentication_results(r.stdout.decode())
    assert [(x.method, x.result) for x in field.results] == [("dkim", "pass"), ("dmarc", "fail")]
    assert field.results[1].get("policy.dmarc") == "quarantine"
    # standard input holding an mbox: each message its own DMARC result
    mbox = b"From a@b Mon Jan  1 00:00:00 2029\r\n" + message + b"\r\nFrom a@b Mon Jan  1 00:00:00 2029\r\n" + message
    r = run("verify", "--dns", server.address, "--dmarc", "--json", input=mbox)
    assert [json.loads(x)["dmarc"]["status"] for x in r.stdout.splitlines()] == ["fail", "fail"]
    assert server.count("_dmarc.sub.example.co.uk") >= 1


def test_cli_dmarc_temperror_and_usage_errors(server, tmp_path):
    server.zone["_dmarc.example.com"] = dns.rcode.SERVFAIL
    m = tmp_path / "m.eml"
    m.write_bytes(b"From: a@example.com\r\n\r\nbody\r\n")
    r = run("verify", "--dns", server.address, "--dmarc", "--json", m)
    assert r.returncode == 1 and json.loads(r.stdout)["dmarc"]["status"] == "temperror"
    for args, problem in ((["--spf-result", "pass", "--spf-domain", "example.com"], b"go with --dmarc"),
                          (["--dmarc", "--spf-result", "pass"], b"needs --spf-domain"),
                          (["--dmarc", "--spf-domain", "example.com"], b"needs --spf-result"),
                          (["--dmarc", "--spf-result", "pass", "--spf-domain", "a b"], b"--spf-domain"),
                          (["--dmarc", "--spf-result", "maybe"], b"invalid choice")):
        r = run("verify", "--dns", server.address, *args, m)
        assert r.returncode == 2 and problem in r.stderr, (args, r.stderr)


def test_a_record_with_a_bad_mode_still_applies_with_the_default(server):
    server.zone["_dmarc.example.com"] = Txt(["v=DMARC1; p=reject; adkim=strict; pct=lots"])
    out = evaluate_domain("sub.example.com", [passing("example.com")], keys=source(server))
    # adkim falls back to r (relaxed): d=example.com aligns with sub.example.com
    assert (out.status, out.policy, out.pct) == ("pass", "reject", 100)
    assert out.record is not None and len(out.record.notes) == 2


@pytest.mark.parametrize("header", [
    b"From: ceo@bank.example, x@attacker.example",
    b"From: x@attacker.example, ceo@bank.example",
    b"From: ceo@bank.example\r\nFrom: x@attacker.example",
    b"From: x@attacker.example\r\nFrom: ceo@bank.example",
    b"From: grp: ceo@bank.example, x@attacker.example;",
    b"From: ceo@bank.example\r\nFrom: ceo@bank.example",
])
def test_a_second_from_domain_never_takes_a_policy_away(header):
    """RFC 7489 section 6.6.1: each domain of a multi-valued From (and of
    several From fields) is checked, and the strictest policy among the
    failing checks applies: adding an address of one's own domain (signed,
    aligned, p=none) does not get past p=reject."""
    message = header + b"\r\nSubject: x\r\n\r\nbody\r\n"
    keys = {"_dmarc.bank.example": "v=DMARC1; p=reject", "_dmarc.attacker.example": "v=DMARC1; p=none"}
    results = [Verification("pass", "signature verified", domain="attacker.example", selector="s")]
    out = evaluate(message, results, keys=keys)
    assert (out.status, out.policy, out.from_domain, out.disposition()) == ("fail", "reject", "bank.example", "reject")
    assert "RFC 7489 section 6.6.1" in out.reason
    field = authentication_results("mx", results, dmarc=out, width=78)
    assert "dmarc=fail" in field and "header.from=bank.example" in field
    # every domain passing: pass
    both = results + [Verification("pass", "signature verified", domain="bank.example", selector="s")]
    assert evaluate(message, both, keys=keys).status == "pass"


def test_the_worst_of_several_from_domains_speaks_when_none_fails():
    message = b"From: a@bank.example, b@other.example\r\n\r\nbody\r\n"
    results = [Verification("pass", "signature verified", domain="bank.example", selector="s")]

    def txt(name):
        if name == "_dmarc.other.example":
            raise TemporaryLookupError("timed out")
        return ["v=DMARC1; p=reject"] if name == "_dmarc.bank.example" else []
    out = evaluate(message, results, keys=txt)
    assert (out.status, out.from_domain) == ("temperror", "other.example"), out


def test_key_sources_of_every_kind_the_verifier_takes():
    """DMARC looks records up as the verifier does: a source returning None
    (no record), text or one record; an asynchronous source is refused with
    a TypeError saying so, not a crash deep inside."""
    from fastdkim.aio import AsyncDNSKeySource

    msg = b"From: a@bank.example\r\n\r\nbody\r\n"
    assert evaluate(msg, [], keys=lambda name: None).status == "none"
    for answer in (["v=DMARC1; p=reject"], "v=DMARC1; p=reject", [b"v=DMARC1; p=reject"]):
        out = evaluate(msg, [], keys=lambda name, a=answer: a if name == "_dmarc.bank.example" else None)
        assert (out.status, out.policy) == ("fail", "reject"), answer
    with pytest.raises(TypeError, match="asynchronous key source"):
        evaluate(msg, [], keys=AsyncDNSKeySource(nameservers=["127.0.0.1"]))
