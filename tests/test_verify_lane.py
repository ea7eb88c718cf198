"""The lane for the usual message (``Checks._quick``): a few signatures, a
small body, bytes in wire form.  It must give exactly what the three phases give
(every attribute of every result, the same key lookups), take the messages
it is for, and leave every other one to the phases before anything is
looked up.  A ``bytearray`` of a message never takes the lane, so comparing
the results for the two is comparing the lane with the phases."""
from __future__ import annotations

import asyncio
import random
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastdkim
import fastdkim.aio
from fastdkim.errors import KeyLookupError, TemporaryLookupError
from fastdkim.keys import public_key_record
from fastdkim.keysources import CallableKeySource

from helpers import body_hash, handmade, random_message

pytestmark = pytest.mark.usefixtures("core")

NOW = 2_000_000_000
HEAD = b"From: a@example.com\r\nTo: b@example.org\r\nSubject: hi\r\n"
BODY = b"Hello.\r\n"
NAME = "sel._domainkey.example.com"


class Counting:
    """A key source that answers from a mapping (or raises) and counts its calls."""

    def __init__(self, answers):
        self.answers, self.calls = answers, []

    def lookup(self, name):
        self.calls.append(name)
        got = self.answers.get(name)
        if isinstance(got, BaseException):
            raise got
        return got


def _both(message, answers, **opts):
    """The results for *message* as bytes and as a bytearray (the phases),
    and the lookups each made."""
    opts.setdefault("now", NOW)
    out = []
    for form in (bytes, bytearray):
        source = Counting(answers)
        out.append((fastdkim.Verifier(keys=CallableKeySource(source.lookup), **opts).verify(form(message)),
                    source.calls))
    return out


def _both_async(message, answers, **opts):
    """:func:`_both` through ``fastdkim.aio`` (a key source whose lookup is a coroutine)."""
    opts.setdefault("now", NOW)
    out = []
    for form in (bytes, bytearray):
        source = Counting(answers)

        class Async:
            async def lookup(self, name):
                return source.lookup(name)

        verifier = fastdkim.aio.AsyncVerifier(keys=Async(), **opts)
        out.append((asyncio.run(verifier.verify(form(message))), source.calls))
    return out


def _lane_taken(message, answers, **opts):
    opts.setdefault("now", NOW)
    v = fastdkim.Verifier(**opts)
    return v._quick(message, NOW, time.time, CallableKeySource(Counting(answers).lookup))[0] is not None


def _tags(**over):
    tags = {"v": "1", "a": "rsa-sha256", "c": "relaxed/relaxed", "d": "example.com", "s": "sel",
            "t": str(NOW - 10), "h": "from:to:subject", "bh": body_hash(BODY, True)}
    tags.update(over)
    return ["%s=%s" % (k, v) for k, v in tags.items() if v is not None]


# (tag changes, key record options or a key source answer, message change, whether the lane takes it)
CASES = {
    "pass": ({}, {}, None, True),
    "pass, no t=": ({"t": None}, {}, None, True),
    "pass, simple/simple": ({"c": "simple/simple", "bh": body_hash(BODY, False)}, {}, None, True),
    "pass, i= of a subdomain": ({"i": "u@mail.example.com"}, {}, None, True),
    "pass, h= signs its own kind": ({"h": "from:to:subject:dkim-signature"}, {}, None, True),
    "pass, key h=sha256": ({}, {"hashes": ["sha256"]}, None, True),
    "body changed": ({}, {}, lambda m: m + b"more\r\n", True),
    "header changed": ({}, {}, lambda m: m.replace(b"Subject: hi", b"Subject: ho"), True),
    "no key": ({}, None, None, True),
    "key lookup temperror": ({}, TemporaryLookupError("timed out"), None, True),
    "key lookup permerror": ({}, KeyLookupError("bad name"), None, True),
    "key source breaks": ({}, RuntimeError("boom"), None, True),
    "key record garbage": ({}, [b"v=DKIM1; p=!!!"], None, True),
    "two key records": ({}, "two", None, True),
    "key t=y": ({}, {"testing": True}, None, True),
    "key s=email": ({}, {"service_types": ["email"]}, None, True),
    "key t=s, i= subdomain": ({"i": "u@mail.example.com"}, {"strict": True}, None, True),
    "key t=s": ({}, {"strict": True}, None, True),
    "key h=sha1 only": ({}, {"hashes": ["sha1"]}, None, True),
    "key of another type": ({}, "ed25519", None, True),
    "l= tag": ({"l": "3"}, {}, None, False),
    "l= beyond the body": ({"l": "300"}, {}, None, False),
    "x= tag": ({"x": str(NOW + 100)}, {}, None, False),
    "expired": ({"x": str(NOW - 5), "t": str(NOW - 100)}, {}, None, False),
    "t= in the future": ({"t": str(NOW + 3600)}, {}, None, False),
    "t= malformed": ({"t": "12a"}, {}, None, False),
    "unknown algorithm": ({"a": "rsa-sha512"}, {}, None, False),
    "rsa-sha1": ({"a": "rsa-sha1"}, {}, None, False),
    "v=2": ({"v": "2"}, {}, None, False),
    "no bh=": ({"bh": None}, {}, None, False),
    "bad base64": ({"bh": "AB=C"}, {}, None, False),
    "two signatures": ({}, {}, lambda m: m.split(b"\r\n", 1)[0] + b"\r\n" + m, True),
    "nine signatures": ({}, {}, lambda m: (m.split(b"\r\n", 1)[0] + b"\r\n") * 8 + m, False),
    "LF mail": ({}, {}, lambda m: m.replace(b"\r\n", b"\n"), False),
    "bare CR in the header block": ({}, {}, lambda m: m.replace(b"Subject: hi", b"Subject: h\ri"), False),
    "large body": ({}, {}, lambda m: m + b"x" * 20000 + b"\r\n", False),
    "no body": ({}, {}, lambda m: m[:m.index(b"\r\n\r\n") + 2], True),
    "From added above": ({}, {}, lambda m: b"From: eve@evil.example\r\n" + m, True),
    "Subject added below": ({}, {}, lambda m: m.replace(b"Subject: hi\r\n", b"Subject: hi\r\nSubject: ho\r\n"),
                            True),
    "second Subject signed": ({"h": "from:to:subject:subject"}, {},
                              lambda m: m.replace(b"Subject: hi\r\n", b"Subject: hi\r\nSubject: ho\r\n"), True),
    "Received added": ({}, {}, lambda m: b"Received: from x by y\r\n" + m, True),
    "Reply-To added, not in h=": ({}, {}, lambda m: b"Reply-To: eve@evil.example\r\n" + m, True),
}


def _answers(key, ed_key, record):
    if record is None:
        return {}
    if isinstance(record, BaseException):
        return {NAME: record}
    if record == "two":
        return {NAME: [public_key_record(key.public_key()).encode()] * 2}
    if record == "ed25519":
        return {NAME: [public_key_record(ed_key.public_key()).encode()]}
    if isinstance(record, list):
        return {NAME: record}
    return {NAME: [public_key_record(key.public_key(), **record).encode()]}


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_lane_gives_what_the_phases_give(rsa_key, ed_key, case):
    over, record, change, lane = CASES[case]
    message = handmade(HEAD, BODY, _tags(**over), rsa_key)
    if change is not None:
        message = change(message)
    answers = _answers(rsa_key, ed_key, record)
    (quick, quick_calls), (phases, phase_calls) = _both(message, answers)
    assert quick == phases
    assert quick_calls == phase_calls
    assert _lane_taken(message, answers) is lane
    # the event loop's verifier: its lane and its phases alike too
    (quick_a, quick_a_calls), (phases_a, phases_a_calls) = _both_async(message, answers)
    assert quick_a == phases_a and quick_a_calls == phases_a_calls == quick_calls


def _signed_by(message, *signers):
    """``message`` signed by each of ``signers`` in turn (the last one on top)."""
    for signer in signers:
        message = signer.sign(message) + message
    return message


@pytest.fixture(scope="module")
def other_rsa_key():
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


MULTI = {
    # name: (signers as (domain, selector, key, options), message change, answers change, lane)
    "author and sender": ([("example.com", "sel", "rsa", {}), ("esp.example", "s2", "other", {})],
                          None, None, True),
    "two algorithms": ([("example.com", "sel", "rsa", {}), ("example.com", "ed", "ed", {})], None, None, True),
    "two canonicalizations": ([("example.com", "sel", "rsa", {"canonicalization": "simple/simple"}),
                               ("esp.example", "s2", "other", {})], None, None, True),
    "same key twice": ([("example.com", "sel", "rsa", {}), ("example.com", "sel", "rsa", {})], None, None, True),
    "body changed": ([("example.com", "sel", "rsa", {}), ("esp.example", "s2", "other", {})],
                     lambda m: m + b"more\r\n", None, True),
    "body changed, two canonicalizations": (
        [("example.com", "sel", "rsa", {"canonicalization": "simple/simple"}), ("esp.example", "s2", "other", {})],
        lambda m: m.replace(b"Hello.", b"Hello. "), None, True),
    "header changed": ([("example.com", "sel", "rsa", {}), ("esp.example", "s2", "other", {})],
                       lambda m: m.replace(b"Subject: hi", b"Subject: ho"), None, True),
    "From added above": ([("example.com", "sel", "rsa", {}), ("esp.example", "s2", "other", {})],
                         lambda m: b"From: eve@evil.example\r\n" + m, None, True),
    "one key missing": ([("example.com", "sel", "rsa", {}), ("esp.example", "s2", "other", {})],
                        None, lambda a: {k: v for k, v in a.items() if not k.startswith("s2.")}, True),
    "one key lookup fails": ([("example.com", "sel", "rsa", {}), ("esp.example", "s2", "other", {})],
                             None, lambda a: dict(a, **{"s2._domainkey.esp.example": TemporaryLookupError("t")}),
                             True),
    "one key in testing mode": ([("example.com", "sel", "rsa", {}), ("esp.example", "s2", "other", {})],
                                None, "testing", True),
    "one with l=": ([("example.com", "sel", "rsa", {}), ("esp.example", "s2", "other", {"body_length": True})],
                    None, None, False),
    "one of them unusable": ([("example.com", "sel", "rsa", {}), ("esp.example", "s2", "other", {})],
                             lambda m: m.replace(b"v=1;", b"v=2;", 1), None, False),
}


@pytest.mark.parametrize("case", sorted(MULTI))
def test_the_lane_gives_what_the_phases_give_for_several_signatures(rsa_key, other_rsa_key, ed_key, case):
    signers, change, answers_change, lane = MULTI[case]
    keys = {"rsa": rsa_key, "other": other_rsa_key, "ed": ed_key}
    made = [fastdkim.Signer(d, sel, keys[k], **opts) for d, sel, k, opts in signers]
    message = _signed_by(HEAD + b"\r\n" + BODY, *made)
    if change is not None:
        message = change(message)
    answers = {"%s._domainkey.%s" % (sel, d): [public_key_record(keys[k].public_key()).encode()]
               for d, sel, k, _ in signers}
    if answers_change == "testing":
        answers["s2._domainkey.esp.example"] = [public_key_record(other_rsa_key.public_key(), testing=True).encode()]
    elif answers_change is not None:
        answers = answers_change(answers)
    (quick, quick_calls), (phases, phase_calls) = _both(message, answers, now=None)
    assert quick == phases
    assert quick_calls == phase_calls
    assert len(quick) == len(signers) and [r.index for r in quick] == list(range(len(signers)))
    assert _lane_taken(message, answers) is lane
    (quick_a, quick_a_calls), (phases_a, phases_a_calls) = _both_async(message, answers, now=None)
    assert quick_a == phases_a == quick and sorted(quick_a_calls) == sorted(phases_a_calls) == sorted(quick_calls)
    if case in ("author and sender", "two algorithms", "two canonicalizations", "same key twice"):
        assert [r.status for r in quick] == ["pass"] * len(signers), [r.reason for r in quick]


def _space_in_inner_b(m):
    """A space at the start of the lower signature's b= value: whitespace its
    own check ignores, but the upper one signed that field as it was."""
    at = m.index(b"DKIM-Signature", 1)
    return m[:at] + m[at:].replace(b" b=", b" b= ", 1)


@pytest.mark.parametrize("change", [None, _space_in_inner_b])
def test_a_signature_over_another_signature_in_the_lane(rsa_key, other_rsa_key, change):
    """h= naming DKIM-Signature: the other signature field is signed, the
    signature's own is not (it is the one with b= deleted, at the end)."""
    inner = fastdkim.Signer("example.com", "sel", rsa_key).sign(HEAD + b"\r\n" + BODY)
    message = handmade(inner + HEAD, BODY, _tags(d="esp.example", s="s2", h="from:dkim-signature"), other_rsa_key)
    if change is not None:
        message = change(message)  # the inner signature's field changed: the outer one breaks
    answers = {"sel._domainkey.example.com": [public_key_record(rsa_key.public_key()).encode()],
               "s2._domainkey.esp.example": [public_key_record(other_rsa_key.public_key()).encode()]}
    (quick, calls), (phases, phase_calls) = _both(message, answers)
    assert quick == phases and calls == phase_calls
    assert _lane_taken(message, answers)
    assert [r.status for r in quick] == (["pass", "pass"] if change is None else ["fail", "pass"])


def test_the_lane_takes_no_more_signatures_than_max_signatures(rsa_key, other_rsa_key):
    made = [fastdkim.Signer("example.com", "sel", rsa_key), fastdkim.Signer("esp.example", "s2", other_rsa_key)]
    message = _signed_by(HEAD + b"\r\n" + BODY, *made)
    answers = {"sel._domainkey.example.com": [public_key_record(rsa_key.public_key()).encode()],
               "s2._domainkey.esp.example": [public_key_record(other_rsa_key.public_key()).encode()]}
    assert _lane_taken(message, answers, max_signatures=2)
    assert not _lane_taken(message, answers, max_signatures=1)
    (quick, calls), (phases, phase_calls) = _both(message, answers, max_signatures=1)
    assert quick == phases and calls == phase_calls
    assert [r.status for r in quick] == ["pass", "neutral"]


def test_the_lane_passes_what_it_should(rsa_key, ed_key):
    for key in (rsa_key, ed_key):
        a = "rsa-sha256" if key is rsa_key else "ed25519-sha256"
        message = handmade(HEAD, BODY, _tags(a=a), key)
        [r] = fastdkim.verify(message, keys={NAME: public_key_record(key.public_key())}, now=NOW)
        assert (r.status, r.reason) == ("pass", "signature verified")
        assert (r.domain, r.selector, r.algorithm, r.identity) == ("example.com", "sel", a, "@example.com")
        assert r.signed_headers == ("from", "to", "subject") and r.timestamp == NOW - 10
        assert r.key_bits == (2048 if key is rsa_key else 256) and r.raw_tags["d"] == b"example.com"


def test_options_that_the_lane_leaves_to_the_phases(rsa_key):
    message = handmade(HEAD, BODY, _tags(), rsa_key)
    answers = _answers(rsa_key, None, {})
    assert not _lane_taken(message, answers, bare_lf=True)
    assert not _lane_taken(message, answers, max_signatures=0)
    assert _lane_taken(message, answers, bare_lf=False)
    for opts in ({"bare_lf": True}, {"max_signatures": 0}, {"bare_lf": False}, {"clock_skew": 0},
                 {"max_header_names": 2}):
        (quick, _), (phases, _) = _both(message, answers, **opts)
        assert quick == phases, opts


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2 ** 32), relaxed_h=st.booleans(), relaxed_b=st.booleans(),
       tamper=st.sampled_from(["none", "body", "header", "add-field", "fold", "case"]),
       ed=st.booleans(), body_lines=st.sampled_from([0, 3, 40, 400]))
def test_signed_random_mail_alike_in_both(rsa_key, ed_key, seed, relaxed_h, relaxed_b, tamper, ed, body_lines):
    rng = random.Random(seed)
    key = ed_key if ed else rsa_key
    message = random_message(rng, body_lines)
    canon = "%s/%s" % ("relaxed" if relaxed_h else "simple", "relaxed" if relaxed_b else "simple")
    signer = fastdkim.Signer("example.com", "sel", key, canonicalization=canon)
    message = signer.sign(message) + message
    if tamper == "body":
        message += b"x\r\n"
    elif tamper == "header":
        message = message.replace(b"To: b@", b"To: c@", 1)
    elif tamper == "add-field":
        message = message.replace(b"\r\n\r\n", b"\r\nSubject: another\r\n\r\n", 1)
    elif tamper == "fold":
        message = message.replace(b"To: b@", b"To:\r\n  b@", 1)
    elif tamper == "case":
        message = message.replace(b"Subject:", b"SUBJECT :", 1)
    answers = {NAME: [public_key_record(key.public_key()).encode()]}
    (quick, quick_calls), (phases, phase_calls) = _both(message, answers, now=None)
    assert quick == phases and quick_calls == phase_calls
    if tamper == "none":
        assert quick[0].status == "pass", quick[0].reason


def test_a_subclass_that_changes_the_phases_is_not_bypassed(ed_key):
    """The lane stands in for begin, key_from and finish: where a subclass
    changes one of them, every message goes through them."""
    message = handmade(HEAD, BODY, _tags(a="ed25519-sha256"), ed_key)
    keys = {NAME: public_key_record(ed_key.public_key())}

    class Pinned(fastdkim.Verifier):
        def key_from(self, name, txts):
            got = super().key_from(name, txts)
            return got if isinstance(got, tuple) else ("permerror", "key not pinned")

    class Noted(fastdkim.Verifier):
        def finish(self, job, keys):
            results = super().finish(job, keys)
            for r in results:
                r.reason += " (noted)"
            return results

    v = Pinned(keys=keys, now=NOW)
    assert [v.verify(f(message))[0].reason for f in (bytes, bytes, bytearray)] == ["key not pinned"] * 3
    v = Noted(keys=keys, now=NOW)
    assert [v.verify(f(message))[0].reason for f in (bytes, bytes, bytearray)] == ["signature verified (noted)"] * 3

    class AsyncPinned(fastdkim.aio.AsyncVerifier):
        def key_from(self, name, txts):
            got = super().key_from(name, txts)
            return got if isinstance(got, tuple) else ("permerror", "key not pinned")

    av = AsyncPinned(keys=keys, now=NOW)
    assert [asyncio.run(av.verify(f(message)))[0].reason for f in (bytes, bytes)] == ["key not pinned"] * 2


@pytest.mark.parametrize("case", ["pass", "t= in the future", "two signatures", "bare CR in the header block"])
def test_the_time_is_read_once_and_only_where_the_phases_read_it(rsa_key, case):
    over, _, change, _ = CASES[case]
    message = handmade(HEAD, BODY, _tags(**over), rsa_key)
    if change is not None:
        message = change(message)
    keys = {NAME: public_key_record(rsa_key.public_key())}
    reads = {}
    for form in (bytes, bytearray):
        calls = []

        def clock():
            calls.append(1)
            return NOW
        fastdkim.Verifier(keys=keys, clock=clock).verify(form(message))
        asyncio.run(fastdkim.aio.AsyncVerifier(keys=keys, clock=clock).verify(form(message)))
        reads[form] = len(calls)
    assert reads[bytes] == reads[bytearray] == (0 if case == "bare CR in the header block" else 2)

    def broken():
        raise RuntimeError("clock down")
    if case == "bare CR in the header block":  # settled without the time, as before
        assert fastdkim.Verifier(keys=keys, clock=broken).verify(message)[0].status == "permerror"
