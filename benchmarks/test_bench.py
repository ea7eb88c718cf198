"""pytest-benchmark versions of the in-process workloads of ``run.py``.

fastdkim and the raw baselines (``hashlib.sha256``, ``cryptography``) on the
same generated inputs, grouped so that each fastdkim figure sits beside its
limit::

    python -m pytest benchmarks/test_bench.py                     # everything
    python -m pytest benchmarks/test_bench.py -k "body and relaxed"
    python -m pytest benchmarks/test_bench.py --benchmark-save=NAME --benchmark-compare

(``benchmarks/`` is outside the default ``testpaths``, so the test suite never
runs these.)  Nothing here asserts anything about speed; the assertions only
check that what is timed is right (the compiled core is in use, signatures
verify, the compiled and pure body hashes agree).  The peers and the table
with ratios are ``run.py``'s.
"""
from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if (HERE.parent / "src" / "fastdkim").is_dir():
    sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE))

import fastdkim  # noqa: E402
from fastdkim import _canon_py  # noqa: E402
from fastdkim import canonicalization as fd_canon  # noqa: E402
from fastdkim.message import CHUNK  # noqa: E402

import bench_workloads as W  # noqa: E402

pytest.importorskip("pytest_benchmark")

SIZES = (3 * W.KB, 100 * W.KB, 10 * W.MB)
ALGS = {"rsa": "rsa-sha256", "ed25519": "ed25519-sha256"}


@pytest.fixture(scope="module", autouse=True)
def _accelerated() -> None:
    assert fastdkim.ACCELERATED, "the compiled core is not in use: python setup.py build_ext --inplace"


@pytest.fixture(scope="module")
def keys() -> W.KeySet:
    return W.make_keys()


_bodies: dict = {}


def _chunks(kind: str, size: int) -> list:
    key = (kind, size)
    if key not in _bodies:
        _bodies.clear()  # keep one large body in memory at a time
        data = W.body(kind, size)
        mv = memoryview(data)
        _bodies[key] = [mv[i:i + CHUNK] for i in range(0, len(mv), CHUNK)]
    return _bodies[key]


def _mb(chunks: list) -> float:
    return sum(len(c) for c in chunks) / W.MB


# -- body hashing ----------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES, ids=W.size_label)
@pytest.mark.parametrize("kind", W.BODY_KINDS)
def test_body_raw_sha256(benchmark, kind: str, size: int) -> None:
    chunks = _chunks(kind, size)
    benchmark.group = "body %s %s" % (kind, W.size_label(size))
    benchmark.extra_info["MB"] = _mb(chunks)

    def raw() -> bytes:
        h = hashlib.sha256()
        for c in chunks:
            h.update(c)
        return h.digest()

    benchmark(raw)


@pytest.mark.parametrize("canon", ("simple", "relaxed"))
@pytest.mark.parametrize("size", SIZES, ids=W.size_label)
@pytest.mark.parametrize("kind", W.BODY_KINDS)
def test_body_hash(benchmark, kind: str, size: int, canon: str) -> None:
    chunks = _chunks(kind, size)
    relaxed = canon == "relaxed"
    BodyHasher = fd_canon.BodyHasher
    benchmark.group = "body %s %s" % (kind, W.size_label(size))
    benchmark.extra_info["MB"] = _mb(chunks)

    def fd() -> bytes:
        h = BodyHasher(relaxed)
        for c in chunks:
            h.update(c)
        return h.digest()

    digest = benchmark(fd)
    if size <= 100 * W.KB:
        ref = _canon_py.BodyHasher(relaxed)
        for c in chunks:
            ref.update(c)
        assert ref.digest() == digest


def test_sha256_cache_resident(benchmark) -> None:
    buf = bytes(range(256)) * 256
    benchmark.group = "sha256 cache-resident"
    benchmark.extra_info["MB"] = 64 * len(buf) / W.MB

    def hot() -> bytes:
        h = hashlib.sha256()
        for _ in range(64):
            h.update(buf)
        return h.digest()

    benchmark(hot)


# -- signing and verifying ---------------------------------------------------------------


def _raw_crypto(keys: W.KeySet, alg: str, op: str):
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    data = bytes(range(64))
    key = keys.private[alg]
    pub = key.public_key()
    if alg == "rsa-sha256":
        pk, sh = padding.PKCS1v15(), hashes.SHA256()
        if op == "sign":
            return lambda: key.sign(data, pk, sh)
        sig = key.sign(data, pk, sh)
        return lambda: pub.verify(sig, data, pk, sh)
    digest = hashlib.sha256(data).digest()  # RFC 8463: Ed25519 signs a SHA-256 digest
    if op == "sign":
        return lambda: key.sign(digest)
    sig = key.sign(digest)
    return lambda: pub.verify(sig, digest)


@pytest.mark.parametrize("op", ("sign", "verify"))
@pytest.mark.parametrize("alg", sorted(ALGS))
def test_raw_crypto(benchmark, keys: W.KeySet, alg: str, op: str) -> None:
    benchmark.group = "%s %s" % (op, alg)
    benchmark(_raw_crypto(keys, ALGS[alg], op))


def _signed(keys: W.KeySet, alg: str, canon: str, msg: bytes):
    signer = fastdkim.Signer(W.DOMAIN, W.SELECTORS[alg], keys.private[alg], canonicalization=canon)
    return signer, signer.sign(msg) + msg


@pytest.mark.parametrize("canon", W.CANONICALIZATIONS)
@pytest.mark.parametrize("alg", sorted(ALGS))
def test_sign_3kb(benchmark, keys: W.KeySet, alg: str, canon: str) -> None:
    msg = W.small_message(3 * W.KB)
    signer, _ = _signed(keys, ALGS[alg], canon, msg)
    benchmark.group = "sign %s" % alg
    sig = benchmark(signer.sign, msg)
    res = fastdkim.Verifier(keys=keys.mapping()).verify(sig + msg)
    assert [r.status for r in res] == ["pass"]


@pytest.mark.parametrize("canon", W.CANONICALIZATIONS)
@pytest.mark.parametrize("alg", sorted(ALGS))
def test_verify_3kb_cached_key(benchmark, keys: W.KeySet, alg: str, canon: str) -> None:
    _, signed = _signed(keys, ALGS[alg], canon, W.small_message(3 * W.KB))
    verifier = fastdkim.Verifier(keys=keys.mapping())  # reused: in-memory key source
    benchmark.group = "verify %s" % alg
    res = benchmark(verifier.verify, signed)
    assert [r.status for r in res] == ["pass"]


@pytest.mark.parametrize("op", ("sign", "verify"))
@pytest.mark.parametrize("alg", sorted(ALGS))
@pytest.mark.parametrize("headers", (10, 100))
def test_header_block(benchmark, keys: W.KeySet, headers: int, alg: str, op: str) -> None:
    msg = W.header_message(headers)
    signer, signed = _signed(keys, ALGS[alg], "relaxed/relaxed", msg)
    benchmark.group = "%s %s" % (op, alg)
    if op == "sign":
        benchmark(signer.sign, msg)
    else:
        verifier = fastdkim.Verifier(keys=keys.mapping())
        res = benchmark(verifier.verify, signed)
        assert [r.status for r in res] == ["pass"]


@pytest.mark.parametrize("canon", ("relaxed/relaxed", "simple/simple"))
def test_sign_10mb_mixed(benchmark, keys: W.KeySet, canon: str) -> None:
    msg, body = W.big_message("mixed", 10 * W.MB)
    signer = fastdkim.Signer(W.DOMAIN, W.SELECTORS["rsa-sha256"], keys.private["rsa-sha256"], canonicalization=canon)
    benchmark.group = "sign mixed 10 MB"
    benchmark.extra_info["MB"] = len(body) / W.MB
    sig = benchmark(signer.sign, msg)
    res = fastdkim.Verifier(keys=keys.mapping()).verify(sig + msg)
    assert [r.status for r in res] == ["pass"]
