"""Results as output: Authentication-Results fields (fastdkim.authres) and
``Verification.as_dict`` (the objects ``fastdkim verify --json`` prints)."""
from __future__ import annotations

import json

import pytest

import fastdkim
from fastdkim.authres import authentication_results, is_authserv_id
from fastdkim.errors import OptionError
from fastdkim.dmarc_record import DMARCRecord
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
        "header.a=ed25519-sha256 header.b=%s" % (b[:8] if "/" not in b[:8] else '"%s"' % b[:8]))


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


# -- building: folding, header.b, DMARC; read back by an independent parser ----------------------

authres_pkg = pytest.importorskip("authres")

import io  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from fastdkim.authres import (  # noqa: E402
    AuthenticationResults,
    add_authentication_results,
    claims_authserv_id,
    header_b_values,
    parse_authentication_results,
    write_file_with_authentication_results,
    write_with_authentication_results,
)
from fastdkim.errors import AuthResError, HeaderTooLarge, ReplacedMeanwhile  # noqa: E402

from helpers_cli import run  # noqa: E402


def unfold(field):
    return re.sub(r"\r?\n(?=[ \t])", "", field)


def columns(line):
    return len(line.expandtabs(8))


def by_package(field):
    """The field as the PyPI ``authres`` package reads it (unfolded first, as it asks)."""
    return authres_pkg.AuthenticationResultsHeader.parse(unfold(field))


def unescape(text):
    return re.sub(r"\\(.)", r"\1", text)


LONG_REASON = "body hash mismatch: the body was altered after signing, or the l= tag cut it short"


def sample_results():
    return [
        Verification("pass", "signature verified", domain="example.com", selector="sel2026", algorithm="rsa-sha256",
                     identity="joe@example.com", raw_tags={"b": b"AbCdEfGh1234+/xyz\r\n\tmore=="}),
        Verification("fail", LONG_REASON, domain="mail.example.com", selector="ed", algorithm="ed25519-sha256",
                     raw_tags={"b": b"Zz/9+Yy8Xx7Ww6Vv"}),
        Verification("temperror", 'key lookup failed: "SERVFAIL" \\ retry', domain="example.org", selector="s"),
    ]


def test_folded_to_78_columns_and_read_back_by_the_authres_package():
    results = sample_results()
    for linesep in ("\n", "\r\n"):
        field = authentication_results("mx.example.net", results, linesep=linesep, width=78)
        lines = field.split(linesep)
        assert all(columns(x) <= 78 for x in lines), lines
        assert all(x[:1] in (" ", "\t") for x in lines[1:]) and all(x.strip() for x in lines)
        assert "\r" not in field.replace("\r\n", "") if linesep == "\r\n" else "\r" not in field
        parsed = by_package(field)
        assert parsed.authserv_id == "mx.example.net"
        assert [(r.method, r.result) for r in parsed.results] == [("dkim", "pass"), ("dkim", "fail"),
                                                                  ("dkim", "temperror")]
        assert [unescape(r.reason) for r in parsed.results] == [r.reason for r in results]
        first = {(p.type, p.name): p.value for p in parsed.results[0].properties}
        assert first == {("header", "d"): "example.com", ("header", "i"): "joe@example.com",
                         ("header", "s"): "sel2026", ("header", "a"): "rsa-sha256", ("header", "b"): "AbCdEfGh"}
        # and by ours, the same
        ours = parse_authentication_results(field)
        assert [r.reason for r in ours.results] == [r.reason for r in results]
        assert ours.results[1].get("header.b") == "Zz/9+Yy8" and ours.results[2].get("header.b") is None


def test_unfolded_layout_is_kept_without_width():
    field = authentication_results("mx", sample_results())
    assert field.count("\n") == 3 and max(columns(x) for x in field.split("\n")) > 78


def test_header_b_is_lengthened_until_the_signatures_differ():
    same8 = [Verification("pass", "", raw_tags={"b": b"ABCDEFGHIJ1xyz"}),
             Verification("fail", "", raw_tags={"b": b"ABCDEFGHIJ2xyz"}),
             Verification("fail", "", raw_tags={"b": b"QRSTUVWXYZ"}),
             Verification("fail", "", raw_tags={"b": b"ABCDEFGHIJ1xyz"}),  # the very same signature again
             Verification("fail", "", raw_tags={"b": b"not base64!!"})]
    assert header_b_values(same8) == ["ABCDEFGHIJ1", "ABCDEFGHIJ2", "QRSTUVWX", "ABCDEFGHIJ1", None]
    field = authentication_results("mx", same8, width=78)
    got = [r.get("header.b") for r in parse_authentication_results(field).results]
    assert got == ["ABCDEFGHIJ1", "ABCDEFGHIJ2", "QRSTUVWX", "ABCDEFGHIJ1", None]


def test_values_that_are_no_token_are_quoted_and_read_back():
    # RFC 8601 section 2.2: a pvalue is a token, a quoted string or
    # [local-part]@domain; '/' and '=' are RFC 2045 tspecials.
    results = [Verification("pass", "", domain="example.com", raw_tags={"b": b"ab/cd+efGHIJ"}),
               Verification("pass", "", domain="example.com", raw_tags={"b": b"AAAAAAA=BBBB"}),
               Verification("pass", "", domain="example.com", raw_tags={"b": b"AAAAAAA=CCCC"}),
               Verification("pass", "", domain="example.com", raw_tags={"b": b"Zz9+Yy8xWw"})]
    field = authentication_results("mx.example.net", results)
    assert 'header.b="ab/cd+ef"' in field and 'header.b="AAAAAAA=B"' in field and "header.b=Zz9+Yy8x" in field
    want = [("header.d", "example.com"), ("header.b", "ab/cd+ef"), ("header.d", "example.com"),
            ("header.b", "AAAAAAA=B"), ("header.d", "example.com"), ("header.b", "AAAAAAA=C"),
            ("header.d", "example.com"), ("header.b", "Zz9+Yy8x")]
    assert [(p.key, p.value) for r in parse_authentication_results(field).results for p in r.properties] == want
    assert [("%s.%s" % (p.type, p.name), p.value) for r in by_package(field).results for p in r.properties] == want


def test_a_long_unbreakable_value_stays_whole():
    r = Verification("fail", "x" * 120, domain="example.com")
    field = authentication_results("mx", [r], width=78)
    assert parse_authentication_results(field).results[0].reason == "x" * 120
    assert by_package(field).results[0].reason == "x" * 120


def test_reason_with_runs_of_spaces_survives_folding():
    reason = "a  b   c " + "word " * 30 + " end  "
    field = authentication_results("mx", [Verification("fail", reason)], width=40)
    assert all(x.strip() for x in field.split("\n"))
    assert parse_authentication_results(field).results[0].reason == reason


def test_width_below_20_is_refused():
    with pytest.raises(OptionError):
        authentication_results("mx", [], width=10)


def test_width_and_authserv_id_beyond_a_line_are_refused():
    with pytest.raises(OptionError):
        authentication_results("mx", [], width=999)  # RFC 5322: no line over 998 characters
    assert authentication_results("m" * 255, []).startswith("Authentication-Results: mmm")
    with pytest.raises(OptionError):
        authentication_results("m" * 256, [])


@pytest.mark.parametrize("make", [
    lambda: ([Verification("pass\r\nBcc: evil@example.org", "ok", domain="example.com")], None),
    lambda: ([Verification("pass extra=1", "ok")], None),
    lambda: ([], dmarc_result("pass\r\nX-Injected: 1")),
    lambda: ([], dmarc_result("fail", policy="reject\r\nX-Injected: 1")),
    lambda: ([], dmarc_result("fail", record=DMARCRecord(p="reject)\r\nX-Injected: (1"))),
    lambda: ([], dmarc_result("fail", record=DMARCRecord(p="none", sp="x y"))),
])
def test_results_that_would_write_anything_into_the_field_are_refused(make):
    """A Verification or DMARCResult built by the caller (from another
    verifier's results, say) cannot smuggle a line break or another result
    into the field through its status or policy."""
    results, dmarc = make()
    with pytest.raises(OptionError, match="must be a word|is none, quarantine or reject"):
        authentication_results("mx.example.net", results, dmarc=dmarc)


@pytest.mark.parametrize("bad", ["reject\r\nX-Injected: 1", "discard", "", 3])
def test_a_disposition_that_is_no_policy_is_refused(bad):
    with pytest.raises(OptionError, match="is none, quarantine or reject"):
        authentication_results("mx.example.net", [], dmarc=dmarc_result("fail"), disposition=bad)


def dmarc_result(status, **kw):
    from fastdkim.dmarc import DMARCResult

    kw.setdefault("from_domain", "example.com")
    return DMARCResult(status, "why", **kw)


def test_what_a_malformed_signature_says_cannot_make_a_line_too_long():
    """a=, s=, d= and i= of thousands of characters (what an attacker puts in
    a signature) end up in the reason and properties: the reason is cut,
    long values are left out, and no line passes RFC 5322's 998 characters,
    folded or not."""
    long = "x" * 3000
    sig = ("DKIM-Signature: v=1; a=%s; d=example.com; s=%s; i=%s@example.com; h=from; bh=AAAA; b=AAAA\r\n"
           % (long, long, long)).encode()
    results = fastdkim.verify(sig + b"From: a@example.com\r\n\r\nbody\r\n", keys={})
    results.append(Verification("fail", "\u00e9" * 2000 + " " + "y" * 2000, domain="d" * 400 + ".example",
                                selector="s" * 400, algorithm=long, identity="@" + "i" * 400))
    for width in (None, 78):
        field = authentication_results("mx.example.net", results, width=width)
        lines = field.split("\n")
        assert max(len(x) for x in lines) <= 998, [len(x) for x in lines]
        ours = parse_authentication_results(field)
        assert [r.result for r in ours.results] == ["permerror", "fail"]
        assert all(len(r.reason or "") <= 256 and r.reason.endswith("...") for r in ours.results)
        assert ours.results[1].properties == ()
        assert [r.result for r in by_package(field).results] == ["permerror", "fail"]
    short = authentication_results("mx", [Verification("fail", "z" * 256)])
    assert parse_authentication_results(short).results[0].reason == "z" * 256


def test_a_d_in_u_labels_is_written_in_a_labels():
    r = Verification("pass", "ok", domain="b\u00fccher.example", selector="s")
    field = authentication_results("mx", [r], width=78)
    assert field.isascii() and parse_authentication_results(field).results[0].get("header.d") == \
        "xn--bcher-kva.example"
    assert "header.d" not in authentication_results("mx", [Verification("pass", "ok", domain="b\u00fc cher")])
    field = authentication_results("mx", [], dmarc=dmarc_result("pass", from_domain="b\u00fccher.example"))
    assert parse_authentication_results(field).results[-1].get("header.from") == "xn--bcher-kva.example"


def test_signatures_made_to_share_a_long_prefix_get_no_header_b():
    a, b = "A" * 100 + "B", "A" * 100 + "C"
    got = header_b_values([Verification("pass", "", raw_tags={"b": a.encode()}),
                           Verification("fail", "", raw_tags={"b": b.encode()}),
                           Verification("fail", "", raw_tags={"b": b"Q" * 64 + b"1"}),
                           Verification("fail", "", raw_tags={"b": b"Q" * 63 + b"2"})])
    assert got == [None, None, "Q" * 64, "Q" * 63 + "2"]


@given(st.lists(st.builds(
    Verification,
    status=st.sampled_from(["pass", "fail", "neutral", "temperror", "permerror"]),
    reason=st.text(max_size=120),
    domain=st.one_of(st.none(), st.from_regex(r"[a-z0-9]{1,10}(\.[a-z0-9]{1,10}){1,3}", fullmatch=True), st.text()),
    selector=st.one_of(st.none(), st.text(max_size=20), st.text(st.characters(min_codepoint=32, max_codepoint=126))),
    identity=st.one_of(st.none(), st.from_regex(r"[a-z.+/=]{0,8}@[a-z]{1,8}(\.[a-z]{1,5})?", fullmatch=True),
                       st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=12)),
    raw_tags=st.dictionaries(st.just("b"), st.binary(max_size=40)),
), max_size=5), st.sampled_from([None, 78, 30]))
def test_any_results_give_a_field_both_parsers_read(results, width):
    field = authentication_results("mx.example.net", results, width=width)
    assert field.isascii()
    if width:
        lines = field.split("\n")
        assert all(x.strip() for x in lines)
    ours = parse_authentication_results(field)
    if not results:
        assert [(r.method, r.result) for r in ours.results] == [("dkim", "none")]
        return
    assert [(r.method, r.result) for r in ours.results] == [("dkim", r.status) for r in results]
    pkg = by_package(field)
    assert [r.result for r in pkg.results] == [r.status for r in results]
    for mine, theirs, r in zip(ours.results, pkg.results, results):
        assert (mine.reason is None) == (not r.reason)
        if r.reason:
            assert unescape(theirs.reason) == mine.reason
        assert [(p.key, p.value) for p in mine.properties] == [
            ("%s.%s" % (p.type, p.name), p.value) for p in theirs.properties]


# -- parsing -----------------------------------------------------------------------------------

# RFC 8601, Appendix B (B.2 to B.7): the Authentication-Results fields of the
# examples, as the RFC prints them.
RFC8601_APPENDIX_B = [
    # B.2. Nearly Trivial Case; Service Provided, but No Authentication Done
    ("Authentication-Results: example.org 1; none",
     ("example.org", 1, [])),
    # B.3. Service Provided, Authentication Done
    ("Authentication-Results: example.com;\n"
     "          spf=pass smtp.mailfrom=example.net",
     ("example.com", None, [("spf", "pass", None, None, [("smtp.mailfrom", "example.net")])])),
    # B.4. Service Provided, Several Authentications Done, Single MTA
    ("Authentication-Results: example.com;\n"
     "          auth=pass (cram-md5) smtp.auth=sender@example.net;\n"
     "          spf=pass smtp.mailfrom=example.net",
     ("example.com", None, [("auth", "pass", None, None, [("smtp.auth", "sender@example.net")]),
                            ("spf", "pass", None, None, [("smtp.mailfrom", "example.net")])])),
    ("Authentication-Results: example.com; iprev=pass\n"
     "          policy.iprev=192.0.2.200",
     ("example.com", None, [("iprev", "pass", None, None, [("policy.iprev", "192.0.2.200")])])),
    # B.5. Service Provided, Several Authentications Done, Different MTAs
    ("Authentication-Results: example.com;\n"
     "          dkim=pass (good signature) header.d=example.com",
     ("example.com", None, [("dkim", "pass", None, None, [("header.d", "example.com")])])),
    ("Authentication-Results: example.com;\n"
     "          auth=pass (cram-md5) smtp.auth=sender@example.com;\n"
     "          spf=fail smtp.mailfrom=example.com",
     ("example.com", None, [("auth", "pass", None, None, [("smtp.auth", "sender@example.com")]),
                            ("spf", "fail", None, None, [("smtp.mailfrom", "example.com")])])),
    # B.6. Service Provided, Multi-Tiered Authentication Done
    ("Authentication-Results: example.com;\n"
     "      dkim=pass reason=\"good signature\"\n"
     "        header.i=@mail-router.example.net;\n"
     "      dkim=fail reason=\"bad signature\"\n"
     "        header.i=@newyork.example.com",
     ("example.com", None, [("dkim", "pass", None, "good signature", [("header.i", "@mail-router.example.net")]),
                            ("dkim", "fail", None, "bad signature", [("header.i", "@newyork.example.com")])])),
    ("Authentication-Results: example.net;\n"
     "      dkim=pass (good signature) header.i=@newyork.example.com",
     ("example.net", None, [("dkim", "pass", None, None, [("header.i", "@newyork.example.com")])])),
    # B.7. Comment-Heavy Example
    ("Authentication-Results: foo.example.net (foobar) 1 (baz);\n"
     "    dkim (Because I like it) / 1 (One yay) = (wait for it) fail\n"
     "      policy (A dot can go here) . (like that) expired\n"
     "      (this surprised me) = (as I wasn't expecting it) 1362471462",
     ("foo.example.net", 1, [("dkim", "fail", 1, None, [("policy.expired", "1362471462")])])),
]


@pytest.mark.parametrize("field, want", RFC8601_APPENDIX_B)
def test_rfc8601_appendix_b_examples(field, want):
    servid, version, results = want
    for text in (field, field.replace("\n", "\r\n") + "\r\n", field.encode()):
        ar = parse_authentication_results(text)
        assert (ar.authserv_id, ar.version) == (servid, version)
        assert [(r.method, r.result, r.version, r.reason, [(p.key, p.value) for p in r.properties])
                for r in ar.results] == [tuple(x) for x in results]


def test_comments_are_kept_with_their_result():
    ar = parse_authentication_results(RFC8601_APPENDIX_B[-1][0])
    assert ar.comments == ("foobar", "baz")
    assert ar.results[0].comments[:2] == ("Because I like it", "One yay")
    nested = parse_authentication_results("mx (a (nested \\) one) here); dkim=pass (ok (really))")
    assert nested.comments == ("a (nested \\) one) here",) and nested.results[0].comments == ("ok (really)",)
    each = parse_authentication_results("mx (h); (first) dkim (m) = pass (ok) header.d=x; (second) spf=fail")
    assert each.comments == ("h",) and [r.comments for r in each.results] == [("first", "m", "ok"), ("second",)]


def test_what_mail_writes_beyond_the_strict_grammar():
    ar = parse_authentication_results(
        'Authentication-Results: mx.google.com;\r\n       dkim=pass header.i=@gmail.com header.s=20230601 '
        'header.b=ab/cd+E=;\r\n       spf=pass (google.com: domain of x@gmail.com designates 2001:db8::1 as '
        'permitted sender) smtp.mailfrom=x@gmail.com;\r\n       dmarc=pass (p=NONE sp=QUARANTINE dis=NONE) '
        'header.from=gmail.com')
    assert [r.method for r in ar.results] == ["dkim", "spf", "dmarc"]
    assert ar.results[0].get("HEADER.B") == "ab/cd+E=" and ar.results[2].get("header.from") == "gmail.com"
    quoted = parse_authentication_results('"mx server"; auth=pass smtp.auth="joe smith"@example.com '
                                          'header.x="a;b" reason2.p=\u00e9t\u00e9')
    assert quoted.authserv_id == "mx server"
    assert [p.value for p in quoted.results[0].properties] == ['"joe smith"@example.com', "a;b", "\u00e9t\u00e9"]
    assert quoted.claims("MX Server") and not quoted.claims("mx")
    assert parse_authentication_results("Mx.Example.NET; DKIM=Pass").results[0].as_dict() == {
        "method": "dkim", "version": None, "result": "pass", "reason": None, "properties": []}


MALFORMED = [
    "", "   ", "Authentication-Results:", "mx", "mx 1", "mx;", "mx; ", "; dkim=pass", "mx dkim=pass",
    "mx; dkim", "mx; dkim=", "mx; dkim pass", "mx; =pass", "mx; dkim=pass;", "mx; dkim=pass; ",
    "mx; none; dkim=pass", "mx; none x", "mx; dkim=pass header", "mx; dkim=pass header.d",
    "mx; dkim=pass header.d=", "mx; dkim=pass header.=x", "mx; dkim=pass .d=x", "mx; dkim=pass header.d=x=(",
    "mx; dkim=pass header.d=x reason=late", "mx; dkim=pass reason=a reason=b", "mx; dkim=pass reason=",
    "mx; dkim=pass (unclosed", "mx; dkim=pass reason=\"unclosed", "mx; dkim/=pass", "mx; dkim/x=pass",
    "mx; dkim/99999999999=pass", "mx; dkim=pass\nheader.d=x", "mx; dkim=pass\rheader.d=x", "mx;\x00 dkim=pass",
    "mx; dkim=pass header.d=a\x01b", "mx; dkim=pass (bad \x07 comment)", "mx; dkim=pass reason=\"bad \\",
    "mx; dkim=pa$$", "mx; dk_im=pass", "m\u00e9; dkim=pass", '""; dkim=pass', "mx; dkim=pass header.d=xheader.s=y(",
    "mx; dkim=passheader.d=x", "mx; dkim=pass header.d=\"a\"@", b"mx; dkim=pass reason=\"\xff\"",
]


@pytest.mark.parametrize("field", MALFORMED)
def test_malformed_fields_are_refused_clearly(field):
    with pytest.raises(AuthResError) as info:
        parse_authentication_results(field)
    assert str(info.value).startswith("malformed Authentication-Results field")
    assert isinstance(info.value, ValueError) and isinstance(info.value, fastdkim.DKIMError)


def test_parse_refuses_other_types():
    with pytest.raises(TypeError):
        parse_authentication_results(42)


AR_ALPHABET = st.sampled_from(list("ab1 \t();=./@\"\\-\r\nx\u00e9") + ["dkim", "pass", "none", "reason",
                                                                          "header.d", "\r\n ", "mx;"])


@given(st.lists(AR_ALPHABET, max_size=40).map("".join))
def test_fuzz_parse_raises_only_the_documented_error(text):
    for field in (text, "mx.example.net; " + text, "Authentication-Results: mx; dkim=pass " + text):
        try:
            ar = parse_authentication_results(field)
        except AuthResError:
            continue
        assert isinstance(ar, AuthenticationResults) and ar.authserv_id


@given(st.binary(max_size=80))
def test_fuzz_parse_bytes(data):
    try:
        parse_authentication_results(b"mx; " + data)
    except AuthResError:
        pass


# -- inserting --------------------------------------------------------------------------------

FIELD = "Authentication-Results: mx.example.net;\n\tdkim=pass header.d=example.com"


@pytest.mark.parametrize("value, claims", [
    ("mx.example.net; dkim=pass", True), (" MX.Example.Net. ; none", True), ("(c) mx.example.net;", True),
    ('"mx.example.net"; none', True), ("mx.example.net(broken", True), ("mx.example.net/x; x", True),
    ("mx.example.net", True), ("mx.example.net.evil; dkim=pass", False), ("other.example; dkim=pass", False),
    ("(unclosed mx.example.net", False), ("", False), ("Authentication-Results: mx.example.net; none", True),
    (b"mx.example.net\xff; none", True), (b"mx.example.net; \xff", True), (b"mx.example.ne\xff", False),
])
def test_claims_authserv_id(value, claims):
    assert claims_authserv_id(value, "mx.example.net") is claims


@pytest.mark.parametrize("value", ['" mx.example.net "; dkim=pass', '"\tMX.example.net.\t"; dkim=pass'])
def test_a_quoted_authserv_id_padded_with_whitespace_claims_it(value):
    """A reader that trims the quoted authserv-id would trust such a field as
    ours: it is removed like one."""
    assert claims_authserv_id(value, "mx.example.net")
    out = add_authentication_results(("Authentication-Results: %s\r\nFrom: a@b.example\r\n\r\nx\r\n"
                                      % value).encode(), FIELD, "mx.example.net")
    assert out.count(b"Authentication-Results") == 1


def test_add_removes_only_fields_claiming_the_servid_and_keeps_line_endings():
    msg = (b"Authentication-Results: mx.example.net; dkim=pass (forged)\r\n"
           b"Received: from a\r\n\tby b\r\n"
           b"authentication-results :  MX.EXAMPLE.NET\r\n (folded) ; spf=pass\r\n"
           b"Authentication-Results: other.example; dkim=fail\r\n"
           b"Authentication-Results: mx.example.net(malformed\r\n"
           b"X-Smuggled: a\rAuthentication-Results: mx.example.net; dkim=pass\r\n"
           b"From: a@example.com\r\n\r\n"
           b"Authentication-Results: mx.example.net; in the body, untouched\r\n")
    out = add_authentication_results(msg, FIELD, "mx.example.net")
    assert out == (b"Authentication-Results: mx.example.net;\r\n\tdkim=pass header.d=example.com\r\n"
                   b"Received: from a\r\n\tby b\r\n"
                   b"Authentication-Results: other.example; dkim=fail\r\n"
                   b"From: a@example.com\r\n\r\n"
                   b"Authentication-Results: mx.example.net; in the body, untouched\r\n")
    lf = msg.replace(b"\r\n", b"\n").replace(b"\r", b"")
    out_lf = add_authentication_results(lf, FIELD.replace("\n", "\r\n"), "mx.example.net")
    assert out_lf.startswith(b"Authentication-Results: mx.example.net;\n\tdkim=pass") and b"\r" not in out_lf
    # new, other.example's, the body's, and X-Smuggled's text (without its CR it hides no field)
    assert out_lf.count(b"Authentication-Results") == 4 and b"X-Smuggled: aAuthentication" in out_lf


def test_add_keeps_an_envelope_line_and_copes_with_odd_messages():
    assert add_authentication_results(b"From joe@example.com Mon Jan  1 00:00:00 2029\nFrom: a@b.example\n\nx\n",
                                      FIELD, "mx.example.net") == (
        b"From joe@example.com Mon Jan  1 00:00:00 2029\n" + FIELD.encode() + b"\nFrom: a@b.example\n\nx\n")
    assert add_authentication_results(b"", FIELD, "mx") == FIELD.replace("\n", "\r\n").encode() + b"\r\n"
    assert add_authentication_results(b"From: a@b.example", "X: y", "mx") == b"X: y\r\nFrom: a@b.example"
    assert add_authentication_results(io.BytesIO(b"\r\nbody"), "X: y", "mx") == b"X: y\r\n\r\nbody"


@pytest.mark.parametrize("bad", ["no colon here", "X: a\nnot continued", "X: a\rY: b", "X: a\n   \n\tb", ""])
def test_add_refuses_what_is_not_one_field(bad):
    with pytest.raises(OptionError):
        add_authentication_results(b"From: a@b.example\r\n\r\n", bad, "mx")


def test_add_refuses_a_huge_header_block(monkeypatch):
    from fastdkim import authres_insert

    monkeypatch.setattr(authres_insert, "MAX_HEADER_BYTES", 100)
    with pytest.raises(HeaderTooLarge):
        add_authentication_results(b"X: " + b"a" * 200 + b"\r\n\r\n", "X: y", "mx")


def test_file_in_place_only_over_the_file_read(tmp_path):
    path = tmp_path / "m.eml"
    path.write_bytes(b"Authentication-Results: mx; dkim=pass\nFrom: a@b.example\n\nbody\n")
    with open(path, "rb") as fh:
        assert write_file_with_authentication_results(fh, "Authentication-Results: mx; none", "mx", str(path),
                                                      in_place=True) == 1
    assert path.read_bytes() == b"Authentication-Results: mx; none\nFrom: a@b.example\n\nbody\n"
    # a mail client files the message away, and another one takes its name meanwhile: left alone
    with open(path, "rb") as fh:
        os.replace(path, tmp_path / "filed.eml")
        path.write_bytes(b"From: other@b.example\n\nanother\n")
        with pytest.raises(ReplacedMeanwhile):
            write_file_with_authentication_results(fh, "X: y", "mx", str(path), in_place=True)
    assert path.read_bytes() == b"From: other@b.example\n\nanother\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["filed.eml", "m.eml"]  # no temporary file left
    out = tmp_path / "out" / "copy.eml"
    with open(tmp_path / "filed.eml", "rb") as fh:
        write_file_with_authentication_results(fh, "X: y", "mx", str(out))
        with pytest.raises(FileExistsError):
            write_file_with_authentication_results(fh, "X: z", "mx", str(out))
        write_file_with_authentication_results(fh, "X: z", "mx", str(out), overwrite=True)
    assert out.read_bytes() == b"X: z\nFrom: a@b.example\n\nbody\n"  # (the field claiming mx replaced)


def test_the_file_writers_refuse_what_is_not_a_file_with_a_type_error(tmp_path):
    msg = b"From: a@b.example\r\n\r\nbody\r\n"
    with pytest.raises(TypeError, match="message must be a binary file object .*add_authentication_results"):
        write_with_authentication_results(io.BytesIO(), msg, "X: y", "mx")
    with pytest.raises(TypeError, match="out must be a binary file object"):
        write_with_authentication_results(b"", io.BytesIO(msg), "X: y", "mx")
    for source in ("f.eml", msg, io.BytesIO(msg).getvalue()):
        with pytest.raises(TypeError, match="source must be an open binary file"):
            write_file_with_authentication_results(source, "X: y", "mx", str(tmp_path / "out.eml"))
    assert list(tmp_path.iterdir()) == []


# -- the command line: verify --ar SERVID --add ------------------------------------------------


@pytest.fixture(scope="module")
def zone(tmp_path_factory, signed):
    message, keys = signed
    d = tmp_path_factory.mktemp("arzone")
    z = d / "zone.txt"
    z.write_text("".join('%s. 300 IN TXT "%s"\n' % (name, value) for name, value in keys.items()))
    return z


def test_cli_add_in_place_to_out_and_to_stdout(signed, zone, tmp_path):
    message, _ = signed
    forged = b"Authentication-Results: mx.example.net; dkim=pass\r\n" + message
    a, b = tmp_path / "a.eml", tmp_path / "b.eml"
    a.write_bytes(forged)
    b.write_bytes(message.replace(b"\r\n", b"\n"))
    r = run("verify", "--keys", zone, "--ar", "mx.example.net", "--add", a, b)
    assert r.returncode == 0, r.stderr
    assert b"a.eml: pass" in r.stdout and b"Authentication-Results" not in r.stdout
    for f, nl in ((a, b"\r\n"), (b, b"\n")):
        data = f.read_bytes()
        assert data.startswith(b"Authentication-Results: mx.example.net;" + nl + b"\tdkim=pass")
        assert data.count(b"Authentication-Results") == 1 and data.endswith(b"Hello there." + nl)
        field = data.split(nl + b"DKIM-Signature")[0].decode()
        assert all(columns(x) <= 78 for x in field.split(nl.decode()))
        assert by_package(field).results[0].result == "pass"
    again = run("verify", "--keys", zone, "--json", a)  # the field is not signed: still passes
    assert json.loads(again.stdout)["pass"] is True
    # to --out: a directory for several messages, the sources untouched
    out = tmp_path / "out"
    before = a.read_bytes()
    r = run("verify", "--keys", zone, "--ar", "other.example", "--add", "--out", out, "--json", a, b)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout.splitlines()[0])
    assert doc["authentication_results"].startswith("Authentication-Results: other.example;")
    assert a.read_bytes() == before and (out / "a.eml").read_bytes().count(b"Authentication-Results") == 2
    r = run("verify", "--keys", zone, "--ar", "other.example", "--add", "--out", out, a)
    assert r.returncode == 2 and b"exists" in r.stderr
    assert run("verify", "--keys", zone, "--ar", "other.example", "--add", "--out", out, "--force", a).returncode == 0
    single = tmp_path / "single.eml"
    assert run("verify", "--keys", zone, "--ar", "mx", "--add", "--out", single, b).returncode == 0
    assert single.read_bytes().startswith(b"Authentication-Results: mx;\n")
    # standard input to standard output: the message and nothing else
    r = run("verify", "--keys", zone, "--ar", "mx.example.net", "--add", input=forged)
    assert r.returncode == 0 and r.stdout.startswith(b"Authentication-Results: mx.example.net;\r\n\tdkim=pass")
    assert r.stdout.count(b"Authentication-Results") == 1 and r.stdout.endswith(message)


def test_cli_add_from_standard_input_after_an_envelope_line(signed, zone):
    """A delivery agent pipes the message with its mbox envelope line: the
    message is verified after that line, and written out with it on top."""
    message, _ = signed
    envelope = b"From joe@example.com Mon Jan  1 00:00:00 2029\n"
    lf = message.replace(b"\r\n", b"\n")
    r = run("verify", "--keys", zone, "--ar", "mx.example.net", "--add", input=envelope + lf)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(envelope + b"Authentication-Results: mx.example.net;\n\tdkim=pass")
    assert r.stdout.endswith(lf) and r.stdout.count(b"From joe@") == 1
    # a header field that starts "From " is no envelope line: the message is read as it is
    odd = b"From : joe@example.com\r\n\r\nbody\r\n"
    r = run("verify", "--keys", zone, "--ar", "mx", "--add", input=odd)
    assert r.stdout == b"Authentication-Results: mx; dkim=none\r\n" + odd


@pytest.mark.parametrize("force", [[], ["--force"]])
def test_cli_add_never_writes_two_inputs_to_one_output(zone, tmp_path, force):
    """a/m.eml and b/m.eml to one --out directory: the first is written, the
    second refused (with --force it would have replaced the first)."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = b"From: a@example.com\r\n\r\nfirst\r\n", b"From: a@example.com\r\n\r\nsecond\r\n"
    (tmp_path / "a" / "m.eml").write_bytes(first)
    (tmp_path / "b" / "m.eml").write_bytes(second)
    out = tmp_path / "out"
    r = run("verify", "--keys", zone, "--ar", "mx", "--add", "--out", out, *force, tmp_path / "a" / "m.eml",
            tmp_path / "b" / "m.eml")
    assert r.returncode == 2 and b"already the output of" in r.stderr, r.stderr
    assert (out / "m.eml").read_bytes() == b"Authentication-Results: mx; dkim=none\r\n" + first
    assert (tmp_path / "b" / "m.eml").read_bytes() == second


def test_cli_add_in_a_maildir(signed, zone, tmp_path):
    message, _ = signed
    md = tmp_path / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (md / sub).mkdir(parents=True)
    (md / "new" / "1.host").write_bytes(message)
    (md / "cur" / "2.host:2,S").write_bytes(b"From: x@example.com\r\n\r\nunsigned\r\n")
    r = run("verify", "--keys", zone, "--ar", "mx", "--add", md)
    assert r.returncode == 1  # one message has no passing signature
    assert (md / "new" / "1.host").read_bytes().startswith(b"Authentication-Results: mx;\r\n\tdkim=pass")
    assert (md / "cur" / "2.host:2,S").read_bytes() == b"Authentication-Results: mx; dkim=none\r\n" \
        b"From: x@example.com\r\n\r\nunsigned\r\n"
    out = tmp_path / "copy"
    assert run("verify", "--keys", zone, "--ar", "mx", "--add", "--out", out, md).returncode == 1
    assert sorted(os.listdir(out)) == ["cur", "new", "tmp"] and (out / "new" / "1.host").exists()


@pytest.mark.parametrize("args, problem", [
    (["--add", "MSG"], b"give --ar"), (["--out", "x", "MSG"], b"go with --add"),
    (["--ar", "mx", "--add", "MBOX"], b"mbox"), (["--ar", "mx", "--add", "--out", "MSG", "MSG"], b"in place"),
    (["--ar", "mx", "--add", "-", "MSG"], b"standard input"),
])
def test_cli_add_usage_errors(zone, tmp_path, args, problem):
    mbox = tmp_path / "m.mbox"
    mbox.write_bytes(b"From a@b Mon Jan  1 00:00:00 2029\nFrom: a@b.example\n\nx\n")
    msg = tmp_path / "m.eml"
    msg.write_bytes(MSG)
    paths = {"MBOX": str(mbox), "MSG": str(msg)}
    r = run("verify", "--keys", zone, *[paths.get(a, a) for a in args])
    assert r.returncode == 2 and problem in r.stderr, r.stderr
    assert msg.read_bytes() == MSG


def test_cli_add_in_place_leaves_a_file_written_to_after_it_was_read(signed, zone, tmp_path, monkeypatch):
    """The result stamped in place was found on the file as it was read: a
    file written to after that (before the field is added) is left alone."""
    from fastdkim.cli import verify as cli_verify

    message, _ = signed
    a = tmp_path / "a.eml"
    a.write_bytes(message)
    real = cli_verify.authentication_results

    def changed_meanwhile(*args, **kw):
        with open(a, "ab") as fh:
            fh.write(b"appended after the check\r\n")
        return real(*args, **kw)
    monkeypatch.setattr(cli_verify, "authentication_results", changed_meanwhile)
    r = run("verify", "--keys", zone, "--ar", "mx.example.net", "--add", a)
    assert r.returncode == 2 and b"changed by another program" in r.stderr, r.stderr
    assert a.read_bytes() == message + b"appended after the check\r\n"
