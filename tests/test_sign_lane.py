"""The lane of ``Signer.sign`` for the usual message (bytes in wire form, a
small body, a header block without defect) must give exactly the field the
general reading gives, and refuse exactly what it refuses.  A ``bytearray``
never takes the lane, so comparing the two is comparing the lane with the
general reading."""
from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastdkim
from fastdkim.errors import MessageFormatError

from helpers import random_message

pytestmark = pytest.mark.usefixtures("core")

NOW = 2_000_000_000
MESSAGE = b"From: a@example.com\r\nTo: b@example.org\r\nSubject: hi\r\n\r\nHello.\r\n"


def _outcome(signer, message):
    try:
        return ("ok", signer.sign(message))
    except MessageFormatError as exc:
        return (type(exc).__name__, str(exc))


def _alike(signer, message):
    got = _outcome(signer, message)
    assert got == _outcome(signer, bytearray(message))
    return got


CHANGES = {
    "usual": lambda m: m,
    "no body": lambda m: m[:m.index(b"\r\n\r\n") + 2],
    "empty body": lambda m: m[:m.index(b"\r\n\r\n") + 4],
    "LF mail": lambda m: m.replace(b"\r\n", b"\n"),
    "bare LF in the header block": lambda m: m.replace(b"To:", b"X: y\nTo:"),
    "bare CR in the header block": lambda m: m.replace(b"To:", b"X: y\rTo:"),
    "continuation first": lambda m: b" " + m,
    "line without a colon": lambda m: m.replace(b"To:", b"Nonsense\r\nTo:"),
    "no From": lambda m: m.replace(b"From:", b"Sender:"),
    "large body": lambda m: m + b"x y  z\t\r\n" * 3000,
    "body with bare LF": lambda m: m + b"a\nb\r\n",
    "folded fields": lambda m: m.replace(b"Subject: hi", b"Subject:\r\n hi\r\n\tthere"),
    "many fields": lambda m: b"".join(b"X-F%d: v\r\n" % i for i in range(150)) + m,
}
OPTIONS = [{}, {"canonicalization": "simple/simple"}, {"body_length": True}, {"copy_headers": True},
           {"timestamp": False, "expiration": 3600}, {"bare_lf": False}, {"bare_lf": True},
           {"headers": ["from", "to", "subject", "x-f1"]}]


@pytest.mark.parametrize("change", sorted(CHANGES))
@pytest.mark.parametrize("opts", OPTIONS, ids=lambda o: ",".join(o) or "default")
def test_the_lane_signs_as_the_general_reading(rsa_key, ed_key, change, opts):
    message = CHANGES[change](MESSAGE)
    for key in (rsa_key, ed_key):
        _alike(fastdkim.Signer("example.com", "sel", key, clock=lambda: NOW, **opts), message)


def test_the_lane_is_taken_for_the_usual_message(ed_key):
    signer = fastdkim.Signer("example.com", "sel", ed_key, clock=lambda: NOW)
    assert signer._quick(MESSAGE) == signer.sign(bytearray(MESSAGE))
    for change in ("LF mail", "bare CR in the header block", "large body"):
        assert signer._quick(CHANGES[change](MESSAGE)) is None


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2 ** 32), body_lines=st.sampled_from([0, 5, 60, 600]), relaxed=st.booleans())
def test_random_mail_signed_alike(ed_key, seed, body_lines, relaxed):
    message = random_message(random.Random(seed), body_lines)
    canon = "relaxed/relaxed" if relaxed else "simple/simple"
    kind, field = _alike(fastdkim.Signer("example.com", "sel", ed_key, canonicalization=canon, clock=lambda: NOW),
                         message)
    assert kind == "ok"
    [r] = fastdkim.verify(field + message, keys={"sel._domainkey.example.com": fastdkim.public_key_record(ed_key)},
                          now=NOW)
    assert r.status == "pass", r.reason


def test_a_message_whose_signed_copy_no_verifier_reads_is_refused(ed_key):
    from fastdkim.message import MAX_HEADER_FIELDS

    signer = fastdkim.Signer("example.com", "sel", ed_key, clock=lambda: NOW)
    keys = {"sel._domainkey.example.com": fastdkim.public_key_record(ed_key)}
    head = MESSAGE[:MESSAGE.index(b"\r\n\r\n") + 2]
    for extra, signable in ((MAX_HEADER_FIELDS - 4, True), (MAX_HEADER_FIELDS - 3, False)):
        message = b"X-F: v\r\n" * extra + MESSAGE  # (MESSAGE has 3 fields)
        assert head.count(b"\r\n") + extra == (MAX_HEADER_FIELDS - 1 if signable else MAX_HEADER_FIELDS)
        got = _alike(signer, message)
        if signable:
            [r] = fastdkim.verify(got[1] + message, keys=keys, now=NOW)
            assert r.status == "pass", r.reason
        else:
            assert got[0] == "UnsignableMessageError" and "header fields" in got[1]
    # several signers: room for each of their fields
    message = b"X-F: v\r\n" * (MAX_HEADER_FIELDS - 4) + MESSAGE  # one field short of the limit
    with pytest.raises(MessageFormatError, match="2 signatures"):
        fastdkim.sign_all(message, [signer, signer])
    assert len(fastdkim.sign_all(message, [signer])) == 1


def test_one_signer_alternating_header_sets(ed_key):
    """A signer remembers the last sequence of field names and its plan: a
    block with other names (by one field, by their order, by a name the
    signer does not sign, by case alone) must get its own plan each time,
    as a new signer gives it."""
    keys = {"sel._domainkey.example.com": fastdkim.public_key_record(ed_key)}
    blocks = [MESSAGE,
              MESSAGE.replace(b"Subject: hi\r\n", b""),
              MESSAGE.replace(b"To: b@example.org\r\nSubject: hi\r\n", b"Subject: hi\r\nTo: b@example.org\r\n"),
              MESSAGE.replace(b"Subject:", b"X-Other:"),
              MESSAGE.replace(b"Subject:", b"SUBJECT:"),
              b"To: c@example.org\r\n" + MESSAGE]
    signer = fastdkim.Signer("example.com", "sel", ed_key, clock=lambda: NOW)
    # (bytes take the lane, a bytearray the general reading, LF mail its (name, raw) pairs)
    forms = [(m, f) for m in blocks for f in (bytes, bytearray, lambda m: m.replace(b"\r\n", b"\n"))]
    for message, form in forms * 2 + forms[::-1]:
        message = form(message)
        field = signer.sign(message)
        assert field == fastdkim.Signer("example.com", "sel", ed_key, clock=lambda: NOW).sign(message)
        [r] = fastdkim.verify(field + message, keys=keys, now=NOW)
        assert r.status == "pass", r.reason
    # and the remembered plan does not travel with a pickled signer
    import pickle

    signer = fastdkim.Signer("example.com", "sel", ed_key, timestamp=False)  # (a clock that pickles)
    field = signer.sign(blocks[1])
    assert signer._last_plan[1] is not None
    clone = pickle.loads(pickle.dumps(signer))
    assert clone._last_plan == (b"", None)
    assert clone.sign(blocks[1]) == field
