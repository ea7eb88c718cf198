"""fastdkim.bulk: sign_many / verify_many over the calling thread, process pools and executors."""
from __future__ import annotations

import io
import os
import pickle
import resource
from concurrent.futures import ThreadPoolExecutor

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

import fastdkim
from fastdkim import bulk
from fastdkim.errors import FromAddressError, NoSigningKey, OptionError, UnsignableMessageError
from fastdkim.keys import public_key_record
from fastdkim.mailgen import generate_corpus
from fastdkim.policy import SigningPolicy
from fastdkim.signing import Signer

from crashing import CrashingSigner


def _msg(i: int, domain: str = "example.com") -> bytes:
    return (b"From: user%d@%s\r\nTo: x@example.org\r\nSubject: message %d\r\n\r\nbody %d\r\n"
            % (i, domain.encode(), i, i))


@pytest.fixture(scope="module")
def ed_signer():
    key = ed25519.Ed25519PrivateKey.generate()
    return Signer("example.com", "ed", key)


@pytest.fixture(scope="module")
def rsa_signer(rsa_key):
    return Signer("example.com", "rsa", rsa_key)


@pytest.fixture(scope="module")
def keys(ed_signer, rsa_signer):
    return {
        "ed._domainkey.example.com": public_key_record(ed_signer.key.public_key()),
        "rsa._domainkey.example.com": public_key_record(rsa_signer.key.public_key()),
    }


def _verifies(message: bytes, keys, n: int = 1) -> bool:
    res = fastdkim.verify(message, keys=keys)
    return len(res) == n and all(r.status == "pass" for r in res)


# -- the contract, wherever the work runs -------------------------------------------------------


@pytest.fixture(params=["thread-of-caller", "processes", "thread-pool"])
def where(request):
    if request.param == "thread-of-caller":
        yield {"jobs": 1}
    elif request.param == "processes":
        yield {"jobs": 2}
    else:
        with ThreadPoolExecutor(2) as ex:
            yield {"executor": ex}


def test_results_in_input_order_and_verify(where, ed_signer, keys):
    msgs = [_msg(i) for i in range(150)]
    results = list(bulk.sign_many(msgs, ed_signer, window=40, **where))
    assert [r.index for r in results] == list(range(150))
    assert [r.key for r in results] == list(range(150))
    for r, m in zip(results, msgs):
        assert r.ok and r.error is None and r.reason == ""
        assert r.headers.startswith(b"DKIM-Signature:")
        assert r.message is None
        assert _verifies(r.headers + m, keys)


def test_bad_messages_are_reported_in_place_nothing_dropped(where, ed_signer, keys, tmp_path):
    good = _msg(1)
    text_file = tmp_path / "text.eml"
    text_file.write_bytes(good)
    inputs = [
        good,
        b"To: nobody@example.org\r\nSubject: no author\r\n\r\nbody\r\n",   # no From
        b"From: a@example.com\r\nSub\rject: x\r\n\r\nbody\r\n",          # bare CR in the header block
        12345,                                                              # not a message
        str(tmp_path / "missing.eml"),                                      # no such file
        ("k", bytearray(good)),
        ("a", "b", "c"),                                                    # not a (key, message) pair
        good,
    ]
    results = list(bulk.sign_many(inputs, ed_signer, include_message=True, **where))
    assert len(results) == len(inputs)
    assert [r.index for r in results] == list(range(len(inputs)))
    ok = [r.ok for r in results]
    assert ok == [True, False, False, False, False, True, False, True]
    assert isinstance(results[1].error, UnsignableMessageError)
    assert "From" in results[1].reason
    assert isinstance(results[2].error, UnsignableMessageError)
    assert isinstance(results[3].error, TypeError) and "int" in results[3].reason
    assert isinstance(results[4].error, FileNotFoundError) and "missing.eml" in results[4].reason
    assert isinstance(results[6].error, TypeError)
    assert results[5].key == "k"
    # Unsignable messages come back unchanged, signed ones whole.
    assert results[1].message == inputs[1]
    assert results[2].message == inputs[2]
    assert results[3].message is None and results[4].message is None
    for i in (0, 5, 7):
        assert results[i].message == results[i].headers + bytes(inputs[i][1] if i == 5 else inputs[i])
        assert _verifies(results[i].message, keys)


def test_paths_files_and_pairs(where, ed_signer, keys, tmp_path):
    paths = []
    for i in range(5):
        p = tmp_path / ("m%d.eml" % i)
        p.write_bytes(_msg(i))
        paths.append(p)
    inputs = [paths[0], str(paths[1]), ("third", paths[2]), open(paths[3], "rb"), ("fifth", io.BytesIO(_msg(4)))]
    try:
        results = list(bulk.sign_many(inputs, ed_signer, include_message=True, **where))
    finally:
        inputs[3].close()
    assert [r.key for r in results] == [0, 1, "third", 3, "fifth"]
    for i, r in enumerate(results):
        assert r.ok, r.reason
        assert r.message == r.headers + _msg(i)
        assert _verifies(r.message, keys)


def test_large_messages_go_alone_and_verify(where, ed_signer, keys):
    big = _msg(0) + b"x" * 70 + b"\r\n"
    big = big + (b"y" * 998 + b"\r\n") * (bulk.LARGE // 1000 + 10)
    msgs = [_msg(1), big, _msg(2), big]
    results = list(bulk.sign_many(msgs, ed_signer, **where))
    assert all(r.ok for r in results)
    assert all(_verifies(r.headers + m, keys) for r, m in zip(results, msgs))


def test_dual_signing_and_policy(where, ed_signer, rsa_signer, keys):
    msgs = [_msg(i) for i in range(20)]
    for r, m in zip(bulk.sign_many(msgs, [rsa_signer, ed_signer], **where), msgs):
        assert r.headers.count(b"DKIM-Signature:") == 2
        assert _verifies(r.headers + m, keys, 2)
    policy = SigningPolicy({"example.com": [ed_signer], "*.example.com": [rsa_signer]})
    inputs = [_msg(1), _msg(2, "sub.example.com"), _msg(3, "other.example"),
              b"From: a@example.com, b@example.com\r\n\r\nx\r\n"]
    results = list(bulk.sign_many(inputs, policy, **where))
    assert results[0].ok and b"s=ed" in results[0].headers
    assert results[1].ok and b"s=rsa" in results[1].headers and _verifies(results[1].headers + inputs[1], keys)
    assert isinstance(results[2].error, NoSigningKey)
    assert isinstance(results[3].error, FromAddressError)


def test_window_bounds_what_is_in_flight(ed_signer):
    consumed = 0

    def gen():
        nonlocal consumed
        for i in range(600):
            consumed += 1
            yield _msg(i)

    window = 50
    seen = 0
    for r in bulk.sign_many(gen(), ed_signer, jobs=2, window=window):
        seen += 1
        # in flight: at most `window`; besides, the chunk being gathered (at
        # most a quarter of the window with two workers)
        assert consumed - seen <= window + window // 4, (consumed, seen)
        assert r.ok
    assert seen == 600


def test_stopping_early_ends_the_pool(ed_signer):
    it = bulk.sign_many((_msg(i) for i in range(10_000)), ed_signer, jobs=2, window=64)
    first = [next(it) for _ in range(10)]
    it.close()
    assert [r.index for r in first] == list(range(10))


def test_a_message_that_kills_its_worker_is_reported_alone(ed_signer, keys):
    """A worker dying takes the pool with it: the engine starts another, does
    the pending messages again one by one, and reports only the culprit."""
    signer = CrashingSigner("example.com", "ed", ed_signer.key)
    msgs = [_msg(i) for i in range(40)]
    msgs[17] = msgs[17].replace(b"Subject:", b"X-Crash: yes\r\nSubject:")
    results = list(bulk.sign_many(msgs, signer, jobs=2, window=16))
    assert [r.index for r in results] == list(range(40))
    assert [i for i, r in enumerate(results) if not r.ok] == [17]
    assert isinstance(results[17].error, bulk.WorkerLost)
    assert all(_verifies(r.headers + m, keys) for r, m in zip(results, msgs) if r.ok)


def test_memory_flat_over_a_long_stream(ed_signer):
    """RSS after 50,000 messages and after 200,000 stay within a few MiB:
    nothing accumulates per message."""
    def gen():
        for i in range(200_000):
            yield b"From: a@example.com\r\nSubject: %d\r\n\r\nbody\r\n" % i

    peaks = {}
    for r in bulk.sign_many(gen(), ed_signer, jobs=2):
        assert r.ok
        if r.index + 1 in (50_000, 200_000):
            peaks[r.index + 1] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB
    assert peaks[200_000] - peaks[50_000] < 8 * 1024, peaks


# -- arguments ----------------------------------------------------------------------------------


def test_argument_errors(ed_signer):
    with pytest.raises(TypeError, match="signer"):
        bulk.sign_many([], "example.com")
    with pytest.raises(TypeError, match="signer"):
        bulk.sign_many([], [ed_signer, "x"])
    with pytest.raises(fastdkim.SigningError):
        bulk.sign_many([], [])
    with pytest.raises(OptionError, match="jobs"):
        list(bulk.sign_many([], ed_signer, jobs=0))
    with pytest.raises(OptionError, match="window"):
        list(bulk.sign_many([], ed_signer, window=0))
    with pytest.raises(TypeError, match="jobs"):
        list(bulk.sign_many([], ed_signer, jobs="2"))
    with pytest.raises(OptionError, match="not both"):
        with ThreadPoolExecutor(1) as ex:
            list(bulk.sign_many([], ed_signer, jobs=2, executor=ex))
    with pytest.raises(TypeError, match="executor"):
        list(bulk.sign_many([], ed_signer, executor=object()))


def test_unpicklable_signer_for_processes_is_a_clear_type_error(ed_key):
    s = Signer("example.com", "ed", ed_key, clock=lambda: 1_700_000_000)
    with pytest.raises(TypeError, match="pickle"):
        list(bulk.sign_many([_msg(1)], s, jobs=2))
    # ... and works where nothing is pickled.
    assert next(iter(bulk.sign_many([_msg(1)], s, jobs=1))).ok


# -- pickling -----------------------------------------------------------------------------------


def test_signer_pickles_with_its_key_and_options(rsa_key):
    s = Signer("example.com", "rsa", rsa_key, headers=["from", "subject"], expiration=3600, identity="@example.com",
               canonicalization="simple/relaxed", body_length=True)
    t = pickle.loads(pickle.dumps(s))
    assert (t.domain, t.selector, t.headers, t.expiration, t.identity, t.header_canon, t.body_canon, t.body_length) \
        == (s.domain, s.selector, s.headers, s.expiration, s.identity, s.header_canon, s.body_canon, s.body_length)
    der = serialization.PrivateFormat.PKCS8
    enc = serialization.NoEncryption()
    assert t.key.private_bytes(serialization.Encoding.DER, der, enc) == \
        s.key.private_bytes(serialization.Encoding.DER, der, enc)
    keys = {"rsa._domainkey.example.com": public_key_record(rsa_key.public_key())}
    m = _msg(3)
    assert _verifies(t.sign(m) + m, keys)


def test_key_material_never_in_repr_or_errors(rsa_key):
    s = Signer("example.com", "rsa", rsa_key)
    der = rsa_key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    import base64

    b64 = base64.b64encode(der).decode()
    policy = SigningPolicy({"example.com": [s]})
    for text in (repr(s), str(s), repr(policy), str(policy)):
        assert b64[40:80] not in text and "PRIVATE" not in text
    assert der not in repr(s).encode()


def test_policy_pickles_and_signs_with_one_read(rsa_signer, ed_signer, keys):
    policy = SigningPolicy({"example.com": [rsa_signer, ed_signer]}, fallback=[ed_signer])
    p2 = pickle.loads(pickle.dumps(policy))
    m = _msg(5)
    headers = p2.sign(m)
    assert headers.count(b"DKIM-Signature:") == 2
    assert _verifies(headers + m, keys, 2)
    # a file object is read once: signing works on an unseekable stream
    class OneWay(io.RawIOBase):
        def __init__(self, data):
            self._b = io.BytesIO(data)

        def readable(self):
            return True

        def readinto(self, b):
            return self._b.readinto(b)

        def seekable(self):
            return False

    headers = policy.sign(io.BufferedReader(OneWay(m)))
    assert _verifies(headers + m, keys, 2)


# -- verify_many --------------------------------------------------------------------------------


def test_verify_many(where, ed_signer, keys, tmp_path):
    signed = [r.message for r in bulk.sign_many([_msg(i) for i in range(30)], ed_signer, jobs=1, include_message=True)]
    tampered = signed[3].replace(b"body 3", b"body 4")
    p = tmp_path / "m.eml"
    p.write_bytes(signed[4])
    inputs = signed[:3] + [tampered, p, _msg(99), str(tmp_path / "missing"), 7]
    results = list(bulk.verify_many(inputs, keys, **where))
    assert [r.index for r in results] == list(range(len(inputs)))
    assert [r.passed for r in results] == [True, True, True, False, True, False, False, False]
    assert results[3].results[0].status == "fail"
    assert results[5].results == [] and results[5].error is None
    assert isinstance(results[6].error, FileNotFoundError)
    assert isinstance(results[7].error, TypeError)


def test_verify_many_with_corpus(ed_signer, keys):
    corpus = list(generate_corpus(40, seed=3, max_size=200_000))
    signed = [r.message for r in bulk.sign_many(corpus, ed_signer, jobs=2, include_message=True)]
    assert all(r.passed for r in bulk.verify_many(signed, keys, jobs=2))


def test_verify_many_rejects_unknown_options():
    with pytest.raises(TypeError):
        bulk.verify_many([], {}, no_such_option=1)


def test_usable_cores():
    assert 1 <= bulk.usable_cores() <= (os.cpu_count() or 1)


def test_workers_that_cannot_start_give_one_clear_error(tmp_path):
    """A script without the ``if __name__ == "__main__":`` guard: its workers
    die as they start.  One clear error, not a WorkerLost per message."""
    import subprocess
    import sys

    script = tmp_path / "unguarded.py"
    script.write_text(
        "import fastdkim\n"
        "from cryptography.hazmat.primitives.asymmetric import ed25519\n"
        "s = fastdkim.Signer('example.com', 'ed', ed25519.Ed25519PrivateKey.generate())\n"
        "msgs = [b'From: a@example.com\\r\\n\\r\\nx\\r\\n'] * 50\n"
        "print(sum(r.ok for r in fastdkim.sign_many(msgs, s, jobs=2)))\n")
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert "WorkerLost" in r.stderr and "__main__" in r.stderr


def test_verify_many_over_dns_one_cache_per_worker(ed_signer, keys):
    """A DNSKeySource pickles as its options: each worker process gets its own
    source and cache, so a thousand messages under one selector cost at most
    one query per worker."""
    from fakedns import FakeDNS, Txt

    from fastdkim.keysources import DNSKeySource

    name = "ed._domainkey.example.com"
    srv = FakeDNS({name: Txt([keys[name]])})
    try:
        source = DNSKeySource(nameservers=[srv.address], timeout=2)
        copy = pickle.loads(pickle.dumps(source))
        assert copy.resolver.nameservers[0].address == "127.0.0.1" and copy.timeout == 2
        assert copy is not source and copy.stats.lookups == 0
        signed = [r.message for r in bulk.sign_many([_msg(i) for i in range(1000)], ed_signer, jobs=1,
                                                   include_message=True)]
        results = list(bulk.verify_many(signed, source, jobs=2))
        assert all(r.passed for r in results)
        assert 1 <= srv.count(name) <= 2
    finally:
        srv.stop()


def test_chunks_shrink_as_the_known_end_nears():
    """Chunks of at most CHUNK_COUNT small messages; where the number of
    messages is known, the last ones are small (the workers finish
    together), never below CHUNK_MIN but for the very last; large and
    unusable ones alone; every message once, in order."""
    from fastdkim import _engine

    def items(n, large=(), bad=()):
        return [_engine._Item(i, i, b"x", _engine.LARGE if i in large else 3000,
                              ValueError("bad") if i in bad else None) for i in range(n)]

    n = 5000
    sizes = [len(c) for c in _engine._chunks(iter(items(n)), 256, n, 2)]
    assert sum(sizes) == n and max(sizes) == 256
    assert sizes == sorted(sizes, reverse=True)  # never growing
    assert all(s >= _engine.CHUNK_MIN for s in sizes[:-1]) and sizes[-1] <= _engine.CHUNK_MIN
    assert len(sizes) < n // _engine.CHUNK_MIN
    unknown = [len(c) for c in _engine._chunks(iter(items(n)), 256)]
    assert unknown == [256] * (n // 256) + [n % 256]
    assert [len(c) for c in _engine._chunks(iter(items(20)), 4, 20, 2)] == [4] * 5  # a small window rules
    mixed = list(_engine._chunks(iter(items(600, large={100}, bad={300})), 256, 600, 2))
    assert [it.index for c in mixed for it in c] == list(range(600))
    assert [len(c) for c in mixed if c[0].index in (100, 300)] == [1, 1]


def test_pool_on_every_core_hashes_on_the_workers_own_threads(compiled_core) -> None:
    """A second hashing thread per worker would only take another worker's core."""
    from fastdkim import _core, _engine

    if compiled_core.HASH_THREAD_MIN == 0:
        pytest.skip("no hashing thread on this machine to turn off")
    if _core.NO_EXTENSIONS:
        pytest.skip("FASTDKIM_NO_EXTENSIONS=1: the workers run the pure core, which has no hashing thread")
    probe = "__import__('fastdkim._canon', fromlist=['_']).HASH_THREAD_MIN"
    cores = _engine.usable_cores()
    for jobs, want in ((cores, 0), (cores - 1, compiled_core.HASH_THREAD_MIN)):
        pool = _engine._start_pool(jobs, "probe-%d" % jobs, pickle.dumps(None))
        try:
            assert pool.submit(eval, probe).result(timeout=120) == want, jobs
        finally:
            pool.shutdown()
