"""Signing and verification through the header block's index (``ParsedMessage.index``)
agree with the list of fields it stands for.

A message read from bytes keeps its header block as the core's
``HeaderIndex``; signing and verification then make Python objects only for
the fields they use.  Once ``fields`` is handed out the list is what counts
(it may have been changed).  Each test runs with each core.
"""
from __future__ import annotations

import time

import pytest

import fastdkim
from fastdkim.message import ParsedMessage, read_message
from fastdkim.signing import sign_parsed
from fastdkim.streaming import VerificationSession

from helpers import MESSAGE, body_hash, keys_for, resign

NOW = 2_000_000_000
HEAD = b"From: a@example.com\r\nTo: b@example.org\r\nSubject: hi\r\n"
BODY = b"Hello.\r\n"


@pytest.fixture(autouse=True)
def _each_core(core):
    yield core


def _signed_signature_message(rsa_key, ed_key):
    """A message with two signatures, the top one signing the other one (and
    listing dkim-signature once more than there are other signatures)."""
    first = fastdkim.Signer("example.com", "sel", ed_key, clock=lambda: NOW - 10).sign_message(HEAD + b"\r\n" + BODY)
    tags = ["v=1", "a=rsa-sha256", "c=relaxed/relaxed", "d=example.com", "s=rsa", "t=%d" % (NOW - 10),
            "h=from:dkim-signature:dkim-signature", "bh=" + body_hash(BODY, True), "b="]
    field = b"DKIM-Signature: " + "; ".join(tags).encode() + b"\r\n"
    msg = resign(field + first, rsa_key)
    keys = keys_for("example.com", "sel", ed_key)
    keys.update(keys_for("example.com", "rsa", rsa_key))
    return msg, keys


def _finish_with_list(verifier, msg):
    """Verify ``msg`` with the fields handed out between the phases: the list path."""
    job = verifier.begin(msg, NOW, time.time)
    assert job.message.index is not None
    assert job.message.fields  # handed out: from now on the list counts
    assert job.message.index is None
    outcomes = {name: verifier.key_from(name, verifier.keys.lookup(name)) for name in job.names}
    return verifier.finish(job, outcomes)


def test_own_signature_is_no_candidate_on_either_path(rsa_key, ed_key):
    msg, keys = _signed_signature_message(rsa_key, ed_key)
    verifier = fastdkim.Verifier(keys=keys, now=NOW)
    assert [r.status for r in verifier.verify(msg)] == ["pass", "pass"]
    assert [r.status for r in _finish_with_list(verifier, msg)] == ["pass", "pass"]
    session = VerificationSession(verifier, now=NOW)
    head, _, body = msg.partition(b"\r\n\r\n")
    for line in read_message(head + b"\r\n\r\n").fields:
        session.field(line[1])
    session.set_keys({name: verifier.key_from(name, verifier.keys.lookup(name)) for name in session.end_of_headers()})
    session.body(body)
    assert [r.status for r in session.finish()] == ["pass", "pass"]
    tampered = msg.replace(b"s=sel;", b"s=SEL;", 1)  # the signed signature changed
    assert verifier.verify(tampered)[0].status == "fail"
    assert _finish_with_list(verifier, tampered)[0].status == "fail"


def test_identical_signature_fields_are_told_apart_by_position(rsa_key, ed_key):
    # The same field twice: each is verified without itself, with the other one as a candidate.
    msg, keys = _signed_signature_message(rsa_key, ed_key)
    top = read_message(msg).fields[0][1]
    doubled = top + msg
    verifier = fastdkim.Verifier(keys=keys, now=NOW)
    want = [r.status for r in _finish_with_list(verifier, doubled)]
    assert [r.status for r in verifier.verify(doubled)] == want
    assert want[2] == "pass"


@pytest.mark.parametrize("message", [MESSAGE, b"X-A: 1\r\nFROM: a@example.com\r\nX-A: 2\r\nSUBJECT:b\r\n\r\nbody\r\n"])
@pytest.mark.parametrize("copy_headers", [False, True])
def test_signing_from_the_index_or_the_list_is_the_same(ed_key, message, copy_headers):
    signer = fastdkim.Signer("example.com", "sel", ed_key, clock=lambda: NOW, copy_headers=copy_headers,
                             headers=["from", "x-a", "to", "subject"])
    from_index = read_message(message)
    assert from_index.index is not None
    from_list = read_message(message)
    assert from_list.fields and from_list.index is None
    a = sign_parsed(from_index, [signer])
    assert a == sign_parsed(from_list, [signer]) == [signer.sign(message)]
    [r] = fastdkim.verify(a[0] + message, keys=keys_for("example.com", "sel", ed_key), now=NOW)
    assert r.status == "pass", r.reason


def test_parsed_message_given_a_list_or_changed(ed_key):
    pm = read_message(MESSAGE)
    fields = pm.fields
    assert pm.fields is fields and pm.index is None  # one list, made once
    other = ParsedMessage(list(fields), pm.body, False)
    assert other.index is None and other.fields == fields and other == pm
    assert "ParsedMessage(fields=[" in repr(other)
    pm2 = read_message(MESSAGE)
    pm2.fields = [f for f in fields if f[0] != b"subject"]
    assert pm2.index is None and all(name != b"subject" for name, _ in pm2.fields)
    signer = fastdkim.Signer("example.com", "sel", ed_key, clock=lambda: NOW)
    [field] = sign_parsed(pm2, [signer])
    h = field.split(b"h=")[1].split(b";")[0].replace(b"\r\n", b"").replace(b" ", b"").split(b":")
    assert h.count(b"subject") == 1  # absent: listed once (oversigned), no instance signed


@pytest.mark.parametrize("as_list", [False, True])
def test_a_first_line_starting_with_whitespace_is_refused_at_every_message(core, ed_key, as_list):
    # " From: a" has the name "from": the same names as a message signed before, whose plan is remembered
    signer = fastdkim.Signer("example.com", "sel", ed_key, clock=lambda: NOW)
    good, bad = b"From: a@example.com\r\nTo: b\r\n", b" From: a@example.com\r\nTo: b\r\n"
    for block in (good, bad):
        index = core.HeaderIndex(block)
        pm = ParsedMessage(index.fields() if as_list else index, iter(()), False)
        if block is good:
            assert sign_parsed(pm, [signer])
        else:
            with pytest.raises(fastdkim.errors.UnsignableMessageError, match="continuation line"):
                sign_parsed(pm, [signer])


def test_parsed_message_pickles_and_copies_with_its_fields():
    import copy
    import pickle

    pm = read_message(MESSAGE)
    again = pickle.loads(pickle.dumps(pm))
    assert again.fields == read_message(MESSAGE).fields and again.index is None
    assert b"".join(again.body) == MESSAGE.split(b"\r\n\r\n", 1)[1]
    assert copy.copy(read_message(MESSAGE)).fields == again.fields


def test_malformed_and_too_many_fields_as_before():
    pm = read_message(b"From: a\r\nX: b\rc\r\nno colon\r\n\r\nbody")
    assert pm.malformed is not None and "bare CR at offset 13" in pm.malformed
    pm = read_message(b"From: a\r\nno colon\r\n\r\nbody")
    assert pm.malformed is not None and "a line without a colon" in pm.malformed
    with pytest.raises(fastdkim.message.TooManyHeaderFields):
        read_message(b"A: 1\r\nB: 2\r\nC: 3\r\n\r\n", max_header_fields=2)
    with pytest.raises(fastdkim.message.HeaderTooLarge):
        read_message(b"A: 1\r\nB: 2\r\nC: 3\r\n\r\n", max_header_bytes=10, max_header_fields=2)
