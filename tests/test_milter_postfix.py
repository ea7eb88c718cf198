"""The milter behind a real Postfix: a Postfix instance of the test's own on
127.0.0.1 (own config_directory, queue and log), ``smtpd_milters`` pointing
at the fastdkim milter, mail submitted with smtplib and delivered into a
local Maildir.  Mail from an internal address comes out signed (checked with
fastdkim and dkimpy); mail from outside (an other client address, through
XCLIENT) comes out with an Authentication-Results field with the right
results, forged ones claiming the milter's authserv-id removed."""
from __future__ import annotations

import re
import smtplib
import time
import uuid
from typing import Dict, Optional

import pytest

import fastdkim
from fastdkim.authres import claims_authserv_id, parse_authentication_results
from fastdkim.mailgen import message as make_message
from fastdkim.message import read_message

from milter_harness import AUTHSERV_ID, DOMAIN, MilterProcess, Postfix, make_keys, need_postfix, verify_both

pytest.importorskip("kilter.protocol", reason="the milter needs kilter.protocol (the milter extra; Python 3.10+)")

pytestmark = pytest.mark.xdist_group("milter-postfix")


@pytest.fixture(scope="module")
def mta(tmp_path_factory):
    need_postfix()
    d = tmp_path_factory.mktemp("postfix")
    keys = make_keys(d / "keys")
    milter = MilterProcess(d, ["--policy", keys.policy, "--authserv-id", AUTHSERV_ID, "--keys", keys.zone,
                               "--internal-hosts", "127.0.0.0/8"])
    try:
        postfix = Postfix(milters="inet:127.0.0.1:%d" % milter.port)
    except BaseException:
        milter.stop()
        raise
    yield keys, milter, postfix
    postfix.stop()
    assert milter.stop() == 0, milter.log()


def _deliver(postfix: Postfix, message: bytes, xclient: Optional[str] = None, timeout: float = 60.0) -> bytes:
    """Submit ``message`` (its Subject must be unique) and return it as
    delivered, with CRLF line endings (the Maildir stores LF)."""
    subject = [raw for name, raw in read_message(message).fields if name == b"subject"][0]
    before = set(postfix.delivered())
    with smtplib.SMTP("127.0.0.1", postfix.port, timeout=30) as s:
        if xclient:
            s.ehlo()
            code, reply = s.docmd("XCLIENT", xclient)
            assert code == 220, reply
        s.sendmail("sender@example.com", ["rcpt@example.org"], message)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in set(postfix.delivered()) - before:
            data = path.read_bytes().replace(b"\n", b"\r\n")
            if subject in data:
                return data
        time.sleep(0.05)
    raise AssertionError("not delivered within %g s; Postfix log:\n%s" % (timeout, postfix.log()[-4000:]))


def _message(tag: str, body: bytes = b"Hello  there.\r\n.a line starting with a dot\r\n") -> bytes:
    return (b"From: Alice <alice@example.com>\r\nTo: rcpt@example.org\r\nSubject: %s %s\r\n\tfolded\r\n"
            b"Date: Tue, 1 Jan 2030 00:00:00 +0000\r\nMessage-ID: <%s@example.com>\r\n\r\n"
            % (tag.encode(), uuid.uuid4().hex.encode(), uuid.uuid4().hex.encode())) + body


def _ar(delivered: bytes) -> Dict[str, list]:
    """The Authentication-Results fields of a delivered message, by authserv-id."""
    out: Dict[str, list] = {}
    for name, raw in read_message(delivered).fields:
        if name == b"authentication-results":
            ar = parse_authentication_results(raw)
            out.setdefault(ar.authserv_id, []).append([(r.method, r.result) for r in ar.results])
    return out


def test_internal_mail_comes_out_signed(mta):
    keys, milter, postfix = mta
    delivered = _deliver(postfix, _message("internal"))
    statuses, dkimpy = verify_both(delivered, keys)
    assert statuses == ["pass", "pass"]
    assert dkimpy in (True, None)
    assert {r.selector for r in fastdkim.verify(delivered, keys=keys.records)} == {"rsa1", "ed1"}
    # one log line per message, under Postfix's queue id
    queue_id = re.search(rb"with ESMTP id ([0-9A-F]+)", delivered).group(1).decode()
    assert "%s: signed (from " % queue_id in milter.log()


def test_large_internal_mail_comes_out_signed(mta):
    keys, milter, postfix = mta
    body = b"".join(read_message(make_message(300_000, seed=4), bare_lf=False).body)
    delivered = _deliver(postfix, _message("large", body))
    statuses, dkimpy = verify_both(delivered, keys)
    assert statuses == ["pass", "pass"] and dkimpy in (True, None)


def test_authenticated_sender_from_outside_is_signed(mta):
    keys, milter, postfix = mta
    delivered = _deliver(postfix, _message("authenticated"), xclient="ADDR=192.0.2.5 NAME=roaming.example LOGIN=alice")
    statuses, dkimpy = verify_both(delivered, keys)
    assert statuses == ["pass", "pass"] and dkimpy in (True, None)
    assert AUTHSERV_ID not in _ar(delivered)


def _signed(keys, tag: str, selector: str = "rsa1") -> bytes:
    message = _message(tag)
    return fastdkim.Signer(DOMAIN, selector, keys.rsa).sign(message) + message


def test_mail_from_outside_gets_authentication_results(mta):
    keys, milter, postfix = mta
    outside = "ADDR=192.0.2.1 NAME=outside.example"
    good = _deliver(postfix, _signed(keys, "good"), xclient=outside)
    tampered_in = _signed(keys, "tampered").replace(b"Hello", b"Jello")
    tampered = _deliver(postfix, tampered_in, xclient=outside)
    unknown = _deliver(postfix, _signed(keys, "unknown", selector="retired"), xclient=outside)
    unsigned = _deliver(postfix, _message("unsigned"), xclient=outside)
    assert _ar(good)[AUTHSERV_ID] == [[("dkim", "pass")]]
    assert _ar(tampered)[AUTHSERV_ID] == [[("dkim", "fail")]]
    assert _ar(unknown)[AUTHSERV_ID] == [[("dkim", "permerror")]]
    assert _ar(unsigned)[AUTHSERV_ID] == [[("dkim", "none")]]
    # what fastdkim says of the delivered messages agrees
    assert [r.status for r in fastdkim.verify(good, keys=keys.records)] == ["pass"]
    assert [r.status for r in fastdkim.verify(tampered, keys=keys.records)] == ["fail"]


def test_forged_authentication_results_are_removed(mta):
    keys, milter, postfix = mta
    signed = _signed(keys, "forged")
    forged = (b"Authentication-Results: %s; dkim=pass header.d=example.com\r\n"
              b"Authentication-Results: MX.Example.NET.; dkim=pass\r\n"
              b"Authentication-Results: other.example.net; dkim=fail\r\n" % AUTHSERV_ID.encode())
    delivered = _deliver(postfix, forged + signed, xclient="ADDR=192.0.2.1 NAME=outside.example")
    ars = _ar(delivered)
    assert ars[AUTHSERV_ID] == [[("dkim", "pass")]]  # ours alone
    assert ars["other.example.net"] == [[("dkim", "fail")]]  # another server's stays
    claiming = [raw for name, raw in read_message(delivered).fields
                if name == b"authentication-results" and claims_authserv_id(raw, AUTHSERV_ID)]
    assert len(claiming) == 1
    assert [r.status for r in fastdkim.verify(delivered, keys=keys.records)] == ["pass"]


def test_forged_fields_in_odd_spellings_are_removed(mta):
    """Through Postfix: forged fields written with whitespace before the
    colon, in another case, with a comment before the authserv-id, folded
    before it, or hidden behind a bare CR in another field, among other
    servers' fields and fields that share their names: no forged field is
    delivered, every other field is."""
    keys, milter, postfix = mta
    a = AUTHSERV_ID.encode()
    forged = (b"Authentication-Results: other.example.net; dkim=fail\r\n"
              b"Authentication-Results : %s; dkim=pass\r\n"
              b"X-Note: first\rAuthentication-Results: %s; dkim=pass\r\n"
              b"X-Note: kept\r\n"
              b"authentication-results: (checked) %s ; dkim=pass\r\n"
              b"AUTHENTICATION-RESULTS:\r\n %s.; dkim=pass\r\n"
              b"Authentication-Results: other.example.net (%s); dkim=neutral\r\n" % (a, a, a, a, a))
    delivered = _deliver(postfix, forged + _signed(keys, "odd-forged"), xclient="ADDR=192.0.2.1 NAME=outside.example")
    head = delivered.split(b"\r\n\r\n", 1)[0]
    claiming = [line for line in re.split(rb"\r\n(?![ \t])|\r(?!\n)", head)
                if re.match(rb"authentication-results[ \t]*:", line, re.IGNORECASE)
                and claims_authserv_id(line.split(b":", 1)[1], AUTHSERV_ID)]
    assert len(claiming) == 1 and b"dkim=pass" in claiming[0]  # ours alone
    assert b"X-Note: kept\r\n" in head
    # (Postfix delivers the bare CR as a space: that field, no longer hiding one, may stay)
    assert b"X-Note: first\r" not in head and b"\r" not in head.replace(b"\r\n", b"")
    assert head.count(b"other.example.net") == 2
    assert [r.status for r in fastdkim.verify(delivered, keys=keys.records)] == ["pass"]


def test_concurrent_clients(mta):
    """Ten SMTP clients at once, two messages each: every message comes out
    signed, each signature over its own message."""
    import threading

    keys, milter, postfix = mta
    tag = uuid.uuid4().hex[:8]
    messages = [_message("concurrent-%s-%d" % (tag, i), body=b"message %d\r\n" % i * (i + 1)) for i in range(20)]
    before = set(postfix.delivered())
    errors = []

    def client(part):
        try:
            for msg in part:
                with smtplib.SMTP("127.0.0.1", postfix.port, timeout=60) as s:
                    s.sendmail("sender@example.com", ["rcpt@example.org"], msg)
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(messages[i::10],)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    deadline = time.monotonic() + 60
    while True:
        mine = [p for p in set(postfix.delivered()) - before if ("concurrent-%s" % tag).encode() in p.read_bytes()]
        if len(mine) == 20 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert len(mine) == 20
    for p in mine:
        delivered = p.read_bytes().replace(b"\n", b"\r\n")
        assert [r.status for r in fastdkim.verify(delivered, keys=keys.records)] == ["pass", "pass"]
