"""Fields RFC 5322 allows once, present more often than a signature's ``h=``
lists them (RFC 6376 section 8.15): ``h=`` takes instances from the bottom
up, so the extra ones are above the signed ones, where Python's ``email``
and mail clients find the field they show.  Such a signature is never a
pass, whichever path the message takes (the lane for bytes, the phases for a
bytearray or a file, either core); dkimpy refuses the From case the same way.
"""
from __future__ import annotations

import email
import email.policy
import io
import random

import pytest

import fastdkim
from fastdkim import _canon_py
from fastdkim.keys import public_key_record

pytestmark = pytest.mark.usefixtures("core")

DOMAIN = "example.com"
HEAD = (b"From: Alice <alice@example.com>\r\nTo: bob@example.org\r\nCc: carol@example.org\r\n"
        b"Subject: lunch\r\nDate: Mon, 1 Jan 2029 00:00:00 +0000\r\nMessage-ID: <1@example.com>\r\n"
        b"Reply-To: alice@example.com\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n"
        b"Content-Transfer-Encoding: 7bit\r\n")
MSG = HEAD + b"\r\nSee you at noon.\r\n"
FORMS = {"bytes": bytes, "bytearray": bytearray, "file": io.BytesIO}


def _verify(signed, key, form):
    keys = {"s._domainkey.example.com": public_key_record(key.public_key())}
    return fastdkim.Verifier(keys=keys).verify(FORMS[form](signed))


@pytest.mark.parametrize("form", sorted(FORMS))
@pytest.mark.parametrize("field", [b"From: Eve <eve@bank.example>", b"Subject: pay now", b"To: eve@example.net",
                                   b"Date: Tue, 09 Jan 2029 00:00:00 +0000", b"Reply-To: eve@example.net",
                                   b"Content-Type: text/html", b"Message-ID: <2@example.com>",
                                   b"Content-Transfer-Encoding: base64", b"Cc: eve@example.net"])
def test_a_field_added_above_a_signature_that_lists_it_once_is_not_a_pass(ed_key, field, form):
    signed = fastdkim.Signer(DOMAIN, "s", ed_key, oversign=()).sign(MSG) + MSG
    assert _verify(signed, ed_key, form)[0].status == "pass"
    forged = field + b"\r\n" + signed
    name = field.split(b":")[0].decode()
    # what a reader shows is the added field, which the signature does not cover
    for policy in (email.policy.compat32, email.policy.default):
        assert str(email.message_from_bytes(forged, policy=policy)[name]).startswith(field.split(b": ", 1)[1][:7].decode())
    [r] = _verify(forged, ed_key, form)
    assert r.status == "fail"
    assert r.reason.startswith('the message has more "%s" fields than the signature covers' % name.lower())


@pytest.mark.parametrize("form", sorted(FORMS))
def test_oversigning_already_refuses_it_and_what_h_lists_twice_passes(rsa_key, form):
    default = fastdkim.Signer(DOMAIN, "s", rsa_key)  # oversigns From, Subject, ...
    signed = default.sign(MSG) + MSG
    [r] = _verify(b"Subject: pay now\r\n" + signed, rsa_key, form)
    assert r.status == "fail"
    two = MSG.replace(b"Subject: lunch\r\n", b"Subject: lunch\r\nSubject: dinner\r\n")
    signed_two = fastdkim.Signer(DOMAIN, "s", rsa_key, oversign=()).sign(two) + two
    assert "subject:subject" in signed_two.split(b"\r\n\r\n")[0].decode().replace("\r\n ", "")
    assert _verify(signed_two, rsa_key, form)[0].status == "pass"  # both signed: what is shown was signed


@pytest.mark.parametrize("form", sorted(FORMS))
def test_fields_that_may_repeat_or_are_not_signed_at_all_are_left_alone(ed_key, form):
    signed = fastdkim.Signer(DOMAIN, "s", ed_key, headers=["from", "to", "subject"], oversign=()).sign(MSG) + MSG
    for added in (b"Received: from a by b; Mon, 1 Jan 2029 00:00:01 +0000\r\n", b"X-Tag: 1\r\n",
                  b"Comments: c\r\n", b"Reply-To: eve@example.net\r\n"):  # (Reply-To: not in h= at all)
        [r] = _verify(added + signed, ed_key, form)
        assert r.status == "pass", (added, r.reason)


def test_a_second_signature_is_not_counted_as_a_field_of_its_own_kind(ed_key, rsa_key):
    first = fastdkim.Signer(DOMAIN, "s", ed_key).sign(MSG) + MSG
    keys = {"s._domainkey.example.com": public_key_record(ed_key.public_key())}
    for form in FORMS.values():
        assert [r.status for r in fastdkim.Verifier(keys=keys).verify(form(first + b""))] == ["pass"]


# -- the twins ---------------------------------------------------------------------------------

NAMES = [b"from", b"to", b"subject", b"received", b"x-a", b"dkim-signature"]


def _block(rng):
    fields = [rng.choice(NAMES) for _ in range(rng.randrange(1, 9))]
    raw = b"".join(b"%s: v%d\r\n" % (n.title(), i) for i, n in enumerate(fields))
    names = [rng.choice(NAMES) for _ in range(rng.randrange(0, 8))]
    return fields, raw, names


def test_extra_instance_alike_in_both_cores(compiled_core, pure_core):
    rng = random.Random(8)
    singles = frozenset({b"from", b"to", b"subject"})
    for _ in range(3000):
        fields, raw, names = _block(rng)
        skip = rng.choice([-1] + list(range(len(fields))))
        expect = _canon_py.extra_instance([(n, b"") for i, n in enumerate(fields) if i != skip], names, singles)
        for core in (compiled_core, pure_core):
            assert core.HeaderIndex(raw).extra_instance(names, skip, singles) == expect, (raw, names, skip)


def test_the_signer_oversigns_every_single_field_it_signs():
    """What the verifier refuses to see added (a field RFC 5322 or MIME allows
    once) the default signer oversigns, where it signs that field at all."""
    signed = set(fastdkim.signing.DEFAULT_HEADERS)
    assert {n.decode() for n in _canon_py.SINGLE_FIELDS} & signed <= set(fastdkim.signing.DEFAULT_OVERSIGN)


def test_extra_instance_examples():
    f = [(b"from", b"a"), (b"subject", b"b"), (b"from", b"c")]
    singles = _canon_py.SINGLE_FIELDS
    assert _canon_py.extra_instance(f, [b"from"], singles) == "from"
    assert _canon_py.extra_instance(f, [b"from", b"from"], singles) is None
    assert _canon_py.extra_instance(f, [b"subject", b"from"], singles) == "from"
    assert _canon_py.extra_instance(f, [b"subject"], singles) is None  # From not in h=: not this check's
    assert _canon_py.extra_instance(f, [b"from", b"subject"], frozenset()) is None


# -- the signer: an oversigned field the message lacks is listed once -------------------------


@pytest.mark.parametrize("form", sorted(FORMS))
@pytest.mark.parametrize("added", [b"Content-Type: text/html", b"Content-Transfer-Encoding: quoted-printable",
                                   b"Reply-To: eve@example.net", b"Cc: eve@example.net",
                                   b"List-Unsubscribe: <mailto:eve@example.net>",
                                   # every field RFC 5322 or MIME allows once, and the signer signs
                                   b"Sender: eve@example.net", b"Content-Disposition: attachment",
                                   b"In-Reply-To: <x@example.net>", b"References: <x@example.net>",
                                   b"Message-ID: <x@example.net>", b"Date: Mon, 1 Jan 2024 00:00:00 +0000"])
def test_a_field_the_signed_message_lacked_cannot_be_added(ed_key, added, form):
    """The default Signer lists each oversigned field once more than it
    occurs, once when absent, so that adding one (a Content-Type that makes
    an HTML part of quoted-printable text, a Reply-To) breaks the signature."""
    bare = b"From: Alice <alice@example.com>\r\nTo: bob@example.org\r\nSubject: s\r\n\r\n=3Ch1=3EPay=3C/h1=3E\r\n"
    signed = fastdkim.Signer(DOMAIN, "s", ed_key).sign(bare) + bare
    assert _verify(signed, ed_key, form)[0].status == "pass"
    name = added.split(b":")[0].lower()
    h = signed.split(b" h=")[1].split(b";")[0].replace(b"\r\n", b"").replace(b" ", b"").split(b":")
    assert h.count(name) == 1
    head, body = signed.split(b"\r\n\r\n", 1)
    for forged in (added + b"\r\n" + signed, head + b"\r\n" + added + b"\r\n\r\n" + body):
        [r] = _verify(forged, ed_key, form)
        assert r.status == "fail", r.reason
