"""The compiled BodyHasher's hashing thread (ext/_pipe.h) against the pure twin.

A relaxed SHA-256 ``BodyHasher`` whose first ``update()`` is large hashes on a
second, native thread while the caller's thread canonicalizes into a ring of
256 KiB blocks.  These tests force that thread on for every first update
(``_set_hash_thread_min(1)``) and hold the digest, ``length`` and ``hashed``
to the pure core's and to the compiled core hashing on one thread: bodies
crossing many ring blocks, held-back empty lines by the hundred thousand,
``l=`` limits at block edges, chunk ends anywhere; then what threads bring:
several hashers at once, a hasher dropped half-way, re-initialized, or
carried into a child of ``fork()``.
"""
from __future__ import annotations

import base64
import gc
import hashlib
import os
import random
import subprocess
import sys
import threading
import textwrap
import time
from typing import Iterator, List, Optional

import pytest
from conftest import child_env
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SLOT = 256 * 1024
SETTINGS = settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture], deadline=None)


@pytest.fixture
def threaded_core(compiled_core) -> Iterator:
    """The compiled core with a hashing thread for every relaxed SHA-256 hasher."""
    try:
        previous = compiled_core._set_hash_thread_min(1)
    except ValueError as exc:
        pytest.skip("no hashing thread on this machine: %s" % exc)
    # as if the machine had cores to spare: hashers left alive by other tests
    # in this process must not decide whether these get a thread
    cores = compiled_core._set_hash_thread_cores(1 << 20)
    yield compiled_core
    compiled_core._set_hash_thread_cores(cores)
    compiled_core._set_hash_thread_min(previous)


def _split(data: bytes, cuts: List[int]) -> List[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in zip(points, points[1:])]


def _digest(core, chunks: List[bytes], limit: Optional[int] = None, bare_lf: bool = False):
    h = core.BodyHasher(True, limit, bare_lf)
    threaded = False
    for c in chunks:
        h.update(c)
        threaded = threaded or h.threaded
    d = h.digest()
    assert not h.threaded
    return d, h.length, h.hashed, threaded


def _serial(compiled_core, chunks: List[bytes], limit: Optional[int] = None, bare_lf: bool = False):
    previous = compiled_core._set_hash_thread_min(0)
    try:
        return _digest(compiled_core, chunks, limit, bare_lf)
    finally:
        compiled_core._set_hash_thread_min(previous)


def _reference(pure_core, data: bytes, limit: Optional[int] = None, bare_lf: bool = False):
    canon = pure_core.canonicalize_body(data, True, bare_lf)
    hashed = canon if limit is None else canon[:limit]
    return hashlib.sha256(hashed).digest(), len(canon), len(hashed)


TOKENS = [b"word", b" ", b"  ", b"\t", b" \t ", b"\r\n", b" \r\n", b"\t\r\n", b"\r\n\r\n", b"\r", b"\n",
          b"x" * 70, b"\xc3\xa9", b"\x00"]

_pattern = st.lists(st.sampled_from(TOKENS), min_size=1, max_size=40).map(b"".join)


@st.composite
def large_bodies(draw: st.DrawFn) -> bytes:
    """A pattern repeated past two to four ring blocks."""
    pattern = draw(_pattern)
    size = draw(st.integers(SLOT + 1, 4 * SLOT + 100))
    return (pattern * (size // len(pattern) + 1))[:size]


@SETTINGS
@given(data=large_bodies(), cuts=st.lists(st.integers(0, 1 << 21), max_size=6),
       limit=st.one_of(st.none(), st.integers(0, 5 * SLOT)), bare_lf=st.booleans())
def test_threaded_hash_is_the_serial_hash(threaded_core, data: bytes, cuts: List[int],
                                          limit: Optional[int], bare_lf: bool) -> None:
    chunks = _split(data, cuts)
    got = _digest(threaded_core, chunks, limit, bare_lf)
    assert got[3], "the first update should have started a hashing thread"
    assert got[:3] == _serial(threaded_core, chunks, limit, bare_lf)[:3]


_CASES = {
    "empty lines held back across blocks": b"x\r\n" + b"\r\n" * 300000 + b"y \t\r\n",
    "trailing empty lines dropped": b"text  here\r\n" + b"\r\n" * 400000,
    "whitespace only": b" \t" * 400000,
    "bare LF": b"a  b\n\n c\t\n" * 70000,
    "a verbatim run longer than a block": base64.b64encode(random.Random(7).randbytes(700000)),
    "lone CR at the end": b"a b \r\n" * 100000 + b"z\r",
}


@pytest.mark.parametrize("name", sorted(_CASES))
@pytest.mark.parametrize("limit", [None, 0, 1, SLOT - 1, SLOT, SLOT + 1, 2 * SLOT, 10 ** 12])
def test_threaded_hash_against_pure(threaded_core, pure_core, name: str, limit: Optional[int]) -> None:
    data = _CASES[name]
    chunks = _split(data, [SLOT // 3, SLOT + 7, 2 * SLOT - 1])
    got = _digest(threaded_core, chunks, limit)
    assert got[3]
    assert got[:3] == _reference(pure_core, data, limit), name


def test_which_hashers_take_a_thread(threaded_core) -> None:
    big = b"a  b\r\n" * 100000
    relaxed = threaded_core.BodyHasher(True)
    relaxed.update(big)
    assert relaxed.threaded
    relaxed.update(big)
    assert relaxed.digest() == hashlib.sha256(b"a b\r\n" * 200000).digest()
    assert not relaxed.threaded
    for hasher in (threaded_core.BodyHasher(False), threaded_core.BodyHasher(True, hash_name="sha1")):
        hasher.update(big)
        assert not hasher.threaded
    threaded_core._set_hash_thread_min(SLOT)
    small_first = threaded_core.BodyHasher(True)
    small_first.update(b"a")  # the first update decides: this one is small
    small_first.update(big)
    assert not small_first.threaded
    large_first = threaded_core.BodyHasher(True)
    large_first.update(big[:SLOT])
    assert large_first.threaded
    large_first.digest()


def test_default_and_switch(compiled_core) -> None:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if cpus >= 2 and sys.platform.startswith("linux"):
        assert compiled_core.HASH_THREAD_MIN > 0, "a 2-CPU Linux machine should hash large bodies on a thread"
    with pytest.raises(ValueError):
        compiled_core._set_hash_thread_min(-1)
    with pytest.raises(TypeError):
        compiled_core._set_hash_thread_min(1.5)
    out = subprocess.run([sys.executable, "-c", "from fastdkim import _canon; print(_canon.HASH_THREAD_MIN)"],
                         env=dict(child_env(require_compiled=True), FASTDKIM_HASH_THREAD="0"),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "0"


def test_pure_core_never_threads(pure_core) -> None:
    h = pure_core.BodyHasher(True)
    h.update(b"a b\r\n" * 1000)
    assert h.threaded is False


def test_hashers_in_many_threads(threaded_core, pure_core) -> None:
    bodies = [(b"line %d  with\t space \r\n" % k) * (20000 + 5000 * k) for k in range(6)]
    want = [_reference(pure_core, b)[0] for b in bodies]
    got: List[Optional[bytes]] = [None] * len(bodies)
    errors: List[BaseException] = []

    def run(k: int) -> None:
        try:
            for _ in range(3):
                h = threaded_core.BodyHasher(True)
                data = bodies[k]
                for i in range(0, len(data), 1 << 20):
                    h.update(data[i:i + (1 << 20)])
                got[k] = h.digest()
                assert got[k] == want[k]
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert got == want


def test_reinit_and_reuse(threaded_core, pure_core) -> None:
    data = b"x  y\r\n" * 200000
    h = threaded_core.BodyHasher(True)
    h.update(data)
    assert h.threaded
    h.__init__(True)  # drops the thread and the half-hashed body
    assert not h.threaded and h.length == 0
    h.update(data)
    assert h.threaded
    assert h.digest() == _reference(pure_core, data)[0]
    with pytest.raises(ValueError):
        h.update(data)


_CHILD = textwrap.dedent("""
    import gc, hashlib, os, sys
    from fastdkim import _canon
    _canon._set_hash_thread_min(1)
    _canon._set_hash_thread_cores(8)  # two threads at once, whatever this machine has
    data = b"a \\t b\\r\\n" * 300000
    want = hashlib.sha256(b"a b\\r\\n" * 600000).digest()
    # dropped half-way, many times: the thread must end and nothing hang
    for _ in range(50):
        h = _canon.BodyHasher(True)
        h.update(data)
        del h
    gc.collect()
    h = _canon.BodyHasher(True)
    h.update(data)
    h.update(data)
    assert h.digest() == want
    kept = _canon._hash_threads_kept()
    assert kept == 1, kept  # the thread waits for the next large body
    h = _canon.BodyHasher(True)
    h.update(data)
    assert h.threaded and _canon._hash_threads_kept() == 0
    spare = _canon.BodyHasher(True)  # a second thread, kept once this one is done
    spare.update(data)
    spare.update(data)
    assert spare.threaded and spare.digest() == want and _canon._hash_threads_kept() == 1
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        status = 0 if _canon._hash_threads_kept() == 0 else 6  # the parent's kept thread is not here
        for call in (lambda: h.update(data), h.digest):
            try:
                call()
                status = 3
            except RuntimeError as exc:
                if "fork" not in str(exc):
                    status = 4
        fresh = _canon.BodyHasher(True)
        fresh.update(data)
        fresh.update(data)
        if not fresh.threaded or fresh.digest() != want:
            status = 5
        del h  # a hasher from the parent is dropped without waiting for its thread
        os.write(w, b"%d" % status)
        os._exit(0)
    os.close(w)
    os.waitpid(pid, 0)
    child = os.read(r, 10)
    h.update(data)
    assert h.digest() == want
    again = _canon.BodyHasher(True)  # a new thread: the kept one was ended before the fork
    again.update(data)
    again.update(data)
    assert again.threaded and again.digest() == want
    print("child", child.decode())
""")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork() on this platform")
def test_dropped_hashers_and_fork(threaded_core) -> None:
    out = subprocess.run([sys.executable, "-c", _CHILD], env=child_env(require_compiled=True),
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "child 0", out.stdout + out.stderr


def _hash_whole(core, data: bytes) -> bytes:
    h = core.BodyHasher(True)
    for i in range(0, len(data), 1 << 20):
        h.update(data[i:i + (1 << 20)])
        assert h.threaded
    return h.digest()


def test_threads_kept_for_the_next_bodies(threaded_core, pure_core) -> None:
    """A finished hasher's thread sleeps until the next large body takes it,
    up to as many as may run at once; the next body's digest owes nothing to
    the last one, finished, dropped half-way or cut short by l=."""
    data = b"one  two\t \r\n\r\n" * 90000
    other = b"three four\r\n" * 120000 + b"\r\n" * 5
    want, want_other = _reference(pure_core, data)[0], _reference(pure_core, other)[0]
    gc.collect()
    kept = threaded_core._hash_threads_kept()
    hashers = [threaded_core.BodyHasher(True) for _ in range(3)]
    for h in hashers:
        h.update(data)
        assert h.threaded
    assert threaded_core._hash_threads_kept() == max(0, kept - 3)
    assert [h.digest() for h in hashers] == [want] * 3
    assert threaded_core._hash_threads_kept() == max(kept, 3)
    for _ in range(3):
        dropped = threaded_core.BodyHasher(True)
        dropped.update(data)
        del dropped  # half-way: its thread hashes what it was given, then waits
        cut = threaded_core.BodyHasher(True, limit=1000)
        cut.update(other)
        assert cut.digest() == _reference(pure_core, other, limit=1000)[0]
        assert _hash_whole(threaded_core, other) == want_other
        assert _hash_whole(threaded_core, data) == want
    gc.collect()
    base = threaded_core._hash_thread_load()
    # room for this hasher's thread, and for one kept thread only
    threaded_core._set_hash_thread_cores(2 + 2 * base[0] + base[1])
    for _ in range(threaded_core._hash_threads_kept() + 1):
        assert _hash_whole(threaded_core, data) == want
    assert threaded_core._hash_threads_kept() == min((2 + 2 * base[0] + base[1]) // 2, 64)


def test_reinit_refused_while_another_thread_updates(threaded_core, pure_core) -> None:
    """A re-__init__ whose argument checks run Python code (an __index__)
    while another thread begins an update() is refused before it touches
    the hasher: the other thread's digest, and the thread it may hand on to
    the next body, stay whole.  (Where the other thread's update() did not
    begin in time, or ended first, the re-init is taken, as it may be, and
    its digest is the one of what came after; the test tries until one
    attempt meets the update() half-way.)"""
    data = b"a  b\t\r\n" * 4_500_000  # 31 MB: the update() runs a while without the GIL
    whole = _reference(pure_core, data)[0]
    refused = 0
    for attempt in range(8):
        h = threaded_core.BodyHasher(True)
        h.update(data[:1_000_000])
        assert h.threaded
        got: List[object] = []
        entered = threading.Event()

        def other() -> None:
            try:
                entered.set()
                h.update(data[1_000_000:])
                got.append(h.digest())
            except BaseException as exc:  # reported below
                got.append(exc)

        class Index:
            def __index__(self) -> int:
                threading.Thread(target=other).start()
                entered.wait(10)
                time.sleep(0.003 * (attempt + 1))  # the other thread inside update(), mostly
                return 10

        try:
            h.__init__(True, limit=Index())
        except RuntimeError as exc:
            assert "two threads" in str(exc)
            refused += 1
            taken = False
        else:
            taken = True
        for _ in range(600):
            if got:
                break
            time.sleep(0.05)
        # (re-init first, with limit=10: the digest of what came after)
        assert got == [whole] or (taken and got == [_reference(pure_core, data[1_000_000:], limit=10)[0]]), got
        if refused:
            break
    assert refused, "no attempt met the other thread's update() half-way"
    small = b"c d \r\n" * 200_000
    assert _hash_whole(threaded_core, small) == _reference(pure_core, small)[0]


_FORK_THREADS = textwrap.dedent("""
    import hashlib, os, sys, warnings
    warnings.simplefilter("error")  # (Python 3.12+ warns of fork() with other threads running)
    from fastdkim import _canon
    _canon._set_hash_thread_min(1)
    _canon._set_hash_thread_cores(8)
    tasks = lambda: len(os.listdir("/proc/self/task"))
    data = b"a \\t b\\r\\n" * 300000
    want = hashlib.sha256(b"a b\\r\\n" * 300000).digest()
    before = tasks()
    h = _canon.BodyHasher(True)
    h.update(data)
    assert h.threaded and h.digest() == want
    assert _canon._hash_threads_kept() == 1 and tasks() == before + 1, tasks()
    pid = os.fork()
    if pid == 0:
        os._exit(0 if _canon._hash_threads_kept() == 0 and tasks() == 1 else 7)
    _, status = os.waitpid(pid, 0)
    assert status == 0, status
    # the kept thread was ended before the fork: the parent forked with one thread
    assert _canon._hash_threads_kept() == 0 and tasks() == before, tasks()
    h = _canon.BodyHasher(True)
    h.update(data)
    assert h.threaded and h.digest() == want and _canon._hash_threads_kept() == 1
    print("ok")
""")


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts threads in /proc/self/task (Linux)")
def test_kept_threads_are_ended_before_fork(threaded_core) -> None:
    out = subprocess.run([sys.executable, "-c", _FORK_THREADS], env=child_env(require_compiled=True),
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok", out.stdout + out.stderr


def test_signing_a_large_message_with_the_thread(threaded_core, pure_core, rsa_key) -> None:
    import fastdkim
    from fastdkim import _core
    if _core.core is not threaded_core:
        pytest.skip("the library runs on the pure core here")
    body = b"Hello  there,\t\r\n" * 200000 + b"\r\n\r\n"
    msg = b"From: a@example.com\r\nTo: b@example.org\r\nSubject: big\r\n\r\n" + body
    signer = fastdkim.Signer("example.com", "s1", rsa_key, canonicalization="relaxed/relaxed")
    field = signer.sign(msg)
    bh = base64.b64encode(_reference(pure_core, body)[0])
    assert b"bh=" + bh in field.replace(b"\r\n", b"").replace(b" ", b"").replace(b"\t", b"")


@pytest.mark.parametrize("bad", [dict(limit=1.5), dict(limit=-1), dict(limit="5"), dict(hash_name="md5")])
def test_a_failed_reinit_changes_nothing(core, bad) -> None:
    """Arguments are checked before anything changes, threaded or not."""
    body = b"hello  world \r\n" * 70000
    h = core.BodyHasher(True)
    h.update(body)
    kwargs = dict(dict(relaxed=True), **bad)
    with pytest.raises((TypeError, ValueError)):
        h.__init__(**kwargs)
    h.update(b"abc\r\n")
    assert h.digest() == hashlib.sha256(b"hello world\r\n" * 70000 + b"abc\r\n").digest()
    assert h.length == len(b"hello world\r\n") * 70000 + 5


def test_large_bodies_side_by_side_get_a_thread_only_where_a_core_is_free(threaded_core) -> None:
    """Each hasher with a thread counts two cores, each large body hashed inline one."""
    gc.collect()
    base = threaded_core._hash_thread_load()
    threaded_core._set_hash_thread_cores(2 + 2 * base[0] + base[1])  # two cores free
    big = b"a  b\r\n" * 100000

    def started() -> "object":
        h = threaded_core.BodyHasher(True)
        h.update(big)
        return h

    def load() -> tuple:
        now = threaded_core._hash_thread_load()
        return now[0] - base[0], now[1] - base[1]

    first = started()
    second = started()  # both cores taken by the first
    assert first.threaded and not second.threaded
    assert load() == (1, 1)
    first.digest()
    assert load() == (0, 1)
    third = started()  # one core left: no thread
    assert not third.threaded
    second.digest()
    third.__init__(True)  # a re-init ends its share too
    assert load() == (0, 0)
    fourth = started()
    assert fourth.threaded and load() == (1, 0)
    del fourth  # dropped half-way: its thread ends, its share with it
    gc.collect()
    assert load() == (0, 0)


@st.composite
def runs_and_text(draw: st.DrawFn) -> bytes:
    """Long verbatim runs (which the thread hashes where they lie, in the
    caller's buffer) between stretches that canonicalization changes."""
    rng = random.Random(draw(st.integers(0, 2 ** 32)))
    parts = []
    for _ in range(draw(st.integers(1, 6))):
        if draw(st.booleans()):  # base64-like lines: one verbatim run
            line = draw(st.sampled_from([76, 1000, 70000]))
            raw = base64.b64encode(rng.randbytes(draw(st.integers(16 * 1024, 300 * 1024))))
            parts.append(b"\r\n".join(raw[i:i + line] for i in range(0, len(raw), line)) + b"\r\n")
        else:
            parts.append(draw(_pattern) * draw(st.integers(1, 3000)))
    return b"".join(parts)


@SETTINGS
@given(data=runs_and_text(), cuts=st.lists(st.integers(0, 1 << 21), max_size=8),
       limit=st.one_of(st.none(), st.integers(0, 2 * 1024 * 1024)))
def test_runs_hashed_where_they_lie_against_pure(threaded_core, pure_core, data: bytes, cuts: List[int],
                                                 limit: Optional[int]) -> None:
    chunks = _split(data, cuts)
    got = _digest(threaded_core, chunks, limit)
    assert got[3]
    assert got[:3] == _reference(pure_core, data, limit)


def test_the_callers_buffer_is_free_when_update_returns(threaded_core, pure_core) -> None:
    """The verbatim runs handed to the thread are hashed before ``update()``
    returns: a buffer overwritten right after the call changes nothing (the
    hasher is threaded: its first update is large)."""
    rng = random.Random(11)
    raw = base64.b64encode(rng.randbytes(3 * 1024 * 1024))
    data = b"\r\n".join(raw[i:i + 76] for i in range(0, len(raw), 76)) + b"\r\n"
    chunk = 1 << 20
    want = _reference(pure_core, data)[0]
    for _ in range(5):
        h = threaded_core.BodyHasher(True)
        for i in range(0, len(data), chunk):
            buf = bytearray(data[i:i + chunk])
            junk = bytes(len(buf))
            h.update(buf)
            buf[:] = junk  # at once (the same length: a plain copy): nothing of it may be hashed
        assert h.digest() == want
