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
from fastdkim import _core
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
    assert signer.sign(MESSAGE) == signer.sign(bytearray(MESSAGE))
    core, _, _, lane, _ = signer._lane
    assert core is _core.core and isinstance(lane, core.SignLane)
    assert lane.start(MESSAGE) is not None
    for change in ("LF mail", "bare CR in the header block", "large body"):
        assert lane.start(CHANGES[change](MESSAGE)) is None


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


# -- the core's SignLane, compiled against pure ----------------------------------------


class _Plans:
    """A plan_of and head_of as a signer's are: the plan depends on the names
    alone, the head on the plan, l= and the time; counts the calls."""

    def __init__(self):
        self.plan_calls = 0
        self.head_calls = 0

    def plan_of(self, index):
        self.plan_calls += 1
        if index.raw(0)[:1] in (b" ", b"\t"):
            raise ValueError("continuation first")
        names = [name for name, _ in index.fields()]
        if b"from" not in names:
            raise ValueError("no From")

        class Plan:
            take = [i for i in reversed(range(len(names))) if names[i] in (b"from", b"subject", b"to")]
            h = b":".join(names[i] for i in take)
        return Plan()

    def head_of(self, plan, body_len, now):
        self.head_calls += 1
        text = b"DKIM-Signature: v=1; a=x; t=%d;\r\n h=%s;" % (now, plan.h)
        if body_len is not None:
            text += b" l=%d;" % body_len
        return text, len(text) - text.rindex(b"\n")


def _lane(core, plans, clock, relaxed_h=True, relaxed_b=True, body_length=False, digest=False, width=78):
    from fastdkim.canonicalization import ONE_CALL_MAX
    from fastdkim.message import MAX_HEADER_BYTES, MAX_HEADER_FIELDS

    return core.SignLane(relaxed_h, relaxed_b, body_length, digest, plans.plan_of, plans.head_of, clock, None,
                         MAX_HEADER_BYTES, MAX_HEADER_FIELDS, ONE_CALL_MAX, width)


def _run(lane, message):
    try:
        return ("ok", lane.start(message))
    except (ValueError, TypeError, IndexError) as exc:
        return (type(exc).__name__, str(exc))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seeds=st.lists(st.integers(0, 2 ** 32), min_size=1, max_size=6),
       changes=st.lists(st.sampled_from(sorted(CHANGES)), min_size=1, max_size=6),
       relaxed_h=st.booleans(), relaxed_b=st.booleans(), body_length=st.booleans(), digest=st.booleans(),
       width=st.sampled_from([9, 40, 78, 998]))
def test_sign_lane_twins_agree(compiled_core, seeds, changes, relaxed_h, relaxed_b, body_length, digest, width):
    """One lane of each twin, fed the same messages (the compiled one keeps
    the last plan and the head of the second): the same answers, and the
    pure one's are what the core's parts give."""
    import hashlib

    from fastdkim import _canon_py as pure

    ticks = iter(range(10 ** 6))
    clock = lambda: NOW + next(ticks) // 3  # noqa: E731  (a second every three reads)
    opts = dict(relaxed_h=relaxed_h, relaxed_b=relaxed_b, body_length=body_length, digest=digest, width=width)
    a, b = _Plans(), _Plans()
    lanes = [_lane(compiled_core, a, clock, **opts), _lane(pure, b, clock, **opts)]
    for seed, change in zip(seeds, changes):
        message = CHANGES[change](random_message(random.Random(seed), seed % 40))
        clock_then = NOW + next(ticks) // 3
        ticks = iter(range((clock_then - NOW) * 3, 10 ** 6))
        got = _run(lanes[0], message)
        ticks = iter(range((clock_then - NOW) * 3, 10 ** 6))
        want = _run(lanes[1], message)
        assert got == want
        if want[0] == "ok" and want[1] is not None:
            index, body = pure.read_usual(message, None, 32 << 20, 1000, 16384)
            plan = b.plan_of(index)
            bh, n = pure.body_digest(body, relaxed_b)
            head, col = b.head_of(plan, n if body_length else None, clock_then)
            unsigned, col = pure.body_hash_tags(head, col, bh, width)
            data = pure.canonical_headers(index.take(plan.take), unsigned, relaxed_h)
            assert want[1] == (hashlib.sha256(data).digest() if digest else data, unsigned, col)
    assert a.plan_calls <= b.plan_calls


def test_sign_lane_keeps_the_plan_and_the_head_of_the_second(compiled_core):
    plans = _Plans()
    now = [NOW]
    lane = _lane(compiled_core, plans, lambda: now[0])
    other = MESSAGE.replace(b"Subject: hi\r\n", b"")
    first = lane.start(MESSAGE)
    assert lane.start(MESSAGE) == first and (plans.plan_calls, plans.head_calls) == (1, 1)
    assert lane.start(MESSAGE.replace(b"From:", b"FROM:")) == first  # names compare lower-cased
    assert plans.plan_calls == 1
    assert lane.start(other) != first and (plans.plan_calls, plans.head_calls) == (2, 2)
    now[0] += 1
    later = lane.start(other)
    assert b"t=%d;" % (NOW + 1) in later[1] and (plans.plan_calls, plans.head_calls) == (2, 3)
    assert lane.start(MESSAGE) != first and plans.plan_calls == 3
    # a first line that is a continuation line is a defect: not the usual message
    assert lane.start(b" " + MESSAGE) is None and plans.plan_calls == 3
    # with l= the head is made for each message
    plans = _Plans()
    lane = _lane(compiled_core, plans, lambda: NOW, body_length=True)
    lane.start(MESSAGE)
    lane.start(MESSAGE)
    assert (plans.plan_calls, plans.head_calls) == (1, 2)


def test_sign_lane_refuses_what_it_cannot_use(core):
    plans = _Plans()
    with pytest.raises(TypeError, match="callable"):
        core.SignLane(True, True, False, False, None, plans.head_of, lambda: NOW, None, 1 << 20, 1000, 16384)
    with pytest.raises(ValueError, match="width"):
        _lane(core, plans, lambda: NOW, width=8)
    lane = _lane(core, plans, lambda: NOW)
    for data in (bytearray(MESSAGE), MESSAGE.decode(), None):
        with pytest.raises(TypeError):
            lane.start(data)
    with pytest.raises(ValueError, match="no From"):
        lane.start(CHANGES["no From"](MESSAGE))
    for make in (lambda plan, n, now: ("text", 3), lambda plan, n, now: None, lambda plan, n, now: (b"x",)):
        lane = core.SignLane(True, True, False, False, plans.plan_of, make, lambda: NOW, None, 1 << 20, 1000, 16384)
        with pytest.raises((TypeError, ValueError)):  # (what unpacking a pair raises)
            lane.start(MESSAGE)

    class Far:
        take = [0, 99]
        h = b"from"
    clock_calls = []
    lane = core.SignLane(True, True, False, False, lambda index: Far(), plans.head_of,
                         lambda: clock_calls.append(1) or NOW, None, 1 << 20, 1000, 16384)
    with pytest.raises(IndexError, match="field index out of range"):
        lane.start(MESSAGE)
    assert not clock_calls  # (the plan is checked before the time is read)
    lane = core.SignLane(True, True, False, False, plans.plan_of, lambda plan, n, now: (b"x", 5.0), lambda: NOW,
                         None, 1 << 20, 1000, 16384)
    with pytest.raises(TypeError):  # a column that is no integer
        lane.start(MESSAGE)

    def broken():
        raise OSError("no clock")
    lane = core.SignLane(True, True, False, False, plans.plan_of, plans.head_of, broken, None, 1 << 20, 1000, 16384)
    with pytest.raises(OSError, match="no clock"):
        lane.start(MESSAGE)


def test_one_signer_in_many_threads(ed_key):
    """Threads sharing one signer, each with its own header sets, get what
    a signer of their own gives (the lane's kept plan is one object)."""
    import threading

    blocks = [MESSAGE, MESSAGE.replace(b"Subject: hi\r\n", b""), b"To: c@example.org\r\n" + MESSAGE,
              MESSAGE.replace(b"Subject:", b"X-Other:")]
    shared = fastdkim.Signer("example.com", "sel", ed_key, clock=lambda: NOW)
    want = {m: fastdkim.Signer("example.com", "sel", ed_key, clock=lambda: NOW).sign(m) for m in blocks}
    bad = []

    def work(k):
        for i in range(300):
            m = blocks[(i * (k + 1)) % len(blocks)]
            if shared.sign(m) != want[m]:
                bad.append(m)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    import sys
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(old)
    assert not bad


def test_a_changed_body_length_option_is_honoured(ed_key):
    signer = fastdkim.Signer("example.com", "sel", ed_key, clock=lambda: NOW)
    assert b"l=" not in signer.sign(MESSAGE)
    signer.body_length = True
    assert b" l=8;" in signer.sign(MESSAGE)
    assert signer.sign(MESSAGE) == signer.sign(bytearray(MESSAGE))


def test_rsa_key_objects_that_are_not_cryptography_s_own(rsa_key):
    """An RSA key of another class (a wrapper around a key held elsewhere,
    which may take nothing but a real hash algorithm) is handed the data
    and SHA-256, on the lane as on the general reading; cryptography's own
    keys sign the lane's digest prehashed.  Both give the same field."""
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

    calls = []

    class RemoteKey(rsa.RSAPrivateKey):
        def sign(self, data, pad, algorithm):
            if isinstance(algorithm, Prehashed):
                raise TypeError("Expected instance of hashes.HashAlgorithm.")
            calls.append(len(data))
            return rsa_key.sign(data, pad, algorithm)

        def public_key(self):
            return rsa_key.public_key()

        @property
        def key_size(self):
            return rsa_key.key_size

        def decrypt(self, *a):  # pragma: no cover - not used
            raise NotImplementedError

        def private_numbers(self):  # pragma: no cover - not used
            raise NotImplementedError

        def private_bytes(self, *a):  # pragma: no cover - not used
            raise NotImplementedError

        def __copy__(self):  # pragma: no cover - not used
            return self

        def __deepcopy__(self, memo):  # pragma: no cover - not used
            return self

    own = fastdkim.Signer("example.com", "sel", rsa_key, clock=lambda: NOW)
    remote = fastdkim.Signer("example.com", "sel", RemoteKey(), clock=lambda: NOW)
    field = own.sign(MESSAGE)
    assert remote.sign(MESSAGE) == field == remote.sign(bytearray(MESSAGE))
    assert len(calls) == 2 and calls[0] > 32  # the data itself, both times
    assert isinstance(own._lane[4], Prehashed) and remote._lane[4].name == "sha256"
    # a key swapped in is used from the next message on
    remote.key = rsa_key
    assert remote.sign(MESSAGE) == field and len(calls) == 2
