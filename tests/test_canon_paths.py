"""Every kernel path of the compiled core against the pure twin.

The compiled core picks its body kernels at import (``fastdkim._canon.SIMD``:
``avx2``, ``ssse3``, ``sse2`` or ``scalar``, the best the CPU runs unless
``FASTDKIM_SIMD`` names another); ``_use_simd`` switches them for these tests,
so that each path this machine can run is held against ``fastdkim._canon_py``
on bodies rich in what relaxed canonicalization acts on: SP and HTAB runs
across 16- and 32-octet block boundaries, runs before CRLF, a bare CR or LF,
empty lines, the chunk ends of ``update()`` anywhere.  Paths the CPU lacks are
skipped (a build without the vector kernels still runs ``scalar``).
"""
from __future__ import annotations

import hashlib
import random
import subprocess
import sys
from typing import Iterator, List

import pytest
from conftest import child_env
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SETTINGS = settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])
PATHS = ("scalar", "sse2", "ssse3", "avx2", "avx512")

# Runs one octet short of, at and past the block sizes (15-17, 31-33) and longer.
RUN_LENGTHS = (1, 2, 3, 14, 15, 16, 17, 30, 31, 32, 33, 34, 63, 64, 65, 100)
TOKENS = [
    b"a", b"word", b"Stra\xc3\x9fe", b"\x80", b"\x00", b"\x1f", b"!", b"x" * 17, b"y" * 40,
    b"\r\n", b"\r", b"\n", b"\r\r\n", b"\n\r", b"\r\n\r\n", b" \r\n", b"\t\r\n", b" \n", b"\t\r",
    b" ", b"\t", b"  ", b" \t", b"\t ",
]


@st.composite
def _wsp_run(draw: st.DrawFn) -> bytes:
    n = draw(st.sampled_from(RUN_LENGTHS))
    return bytes(draw(st.lists(st.sampled_from(b" \t"), min_size=n, max_size=n)))


_token = st.one_of(st.sampled_from(TOKENS), st.sampled_from(TOKENS), _wsp_run(), st.binary(max_size=3))
bodies = st.one_of(
    st.lists(_token, max_size=60).map(b"".join),
    # repeated: many block boundaries, each met at another offset
    st.tuples(st.lists(_token, max_size=20).map(b"".join), st.integers(1, 40)).map(lambda t: t[0] * t[1]),
)


@pytest.fixture(params=PATHS)
def path(request: pytest.FixtureRequest, compiled_core) -> Iterator[str]:
    """Each kernel path in turn, live for the test (the previous one restored after)."""
    if request.param not in compiled_core.SIMD_PATHS:
        pytest.skip("this CPU (or build) has no %s path" % request.param)
    previous = compiled_core._use_simd(request.param)
    yield request.param
    compiled_core._use_simd(previous)


def _pieces(body: bytes, cuts: List[int]) -> List[bytes]:
    out, prev = [], 0
    for c in sorted(cuts) + [len(body)]:
        out.append(body[prev:c])
        prev = c
    return out


@SETTINGS
@given(body=bodies, bare_lf=st.booleans(), data=st.data())
def test_relaxed_paths_agree_with_the_twin(compiled_core, pure_core, path, body, bare_lf, data):
    assert compiled_core.SIMD == path
    want = pure_core.canonicalize_body(body, True, bare_lf)
    assert compiled_core.canonicalize_body(body, True, bare_lf) == want
    cuts = data.draw(st.lists(st.integers(0, len(body)), max_size=8), label="cuts")
    c = compiled_core.BodyCanonicalizer(True, bare_lf)
    p = pure_core.BodyCanonicalizer(True, bare_lf)
    for piece in _pieces(body, cuts):
        assert c.update(piece) == p.update(piece)
    assert c.finish() == p.finish()
    limit = data.draw(st.one_of(st.none(), st.integers(0, len(want) + 2)), label="limit")
    h = compiled_core.BodyHasher(True, limit, bare_lf)
    for piece in _pieces(body, cuts):
        h.update(piece)
    assert h.digest() == hashlib.sha256(want if limit is None else want[:limit]).digest()
    assert h.length == len(want)


@SETTINGS
@given(body=bodies, bare_lf=st.booleans())
def test_simple_paths_agree_with_the_twin(compiled_core, pure_core, path, body, bare_lf):
    assert compiled_core.canonicalize_body(body, False, bare_lf) == pure_core.canonicalize_body(body, False, bare_lf)


@SETTINGS
@given(value=bodies, name=st.sampled_from([b"Subject", b"X-Long-Name ", b"a", b""]),
       dense=st.sampled_from(RUN_LENGTHS))
def test_relaxed_header_paths_agree_with_the_twin(compiled_core, pure_core, path, value, name, dense):
    # runs of octets above SP of every length around the vector width, between folds and blanks
    field = name + b": " + b"d" * dense + value + b"\r\n \t" + b"e" * dense + b"\r\n"
    assert compiled_core.relaxed_header(field) == pure_core.relaxed_header(field)
    assert compiled_core.relaxed_header(value) == pure_core.relaxed_header(value)
    fields = [(b"subject", field), (b"to", b"To: " + value + b"\r\n")]
    own = b"DKIM-Signature: v=1;\r\n  b=" + value
    for relaxed in (True, False):
        assert compiled_core.header_hash_input(fields, [b"to", b"subject"], own, relaxed) == \
            pure_core.header_hash_input(fields, [b"to", b"subject"], own, relaxed)


@SETTINGS
@given(block=bodies, lines=st.lists(st.sampled_from(RUN_LENGTHS), max_size=6))
def test_header_index_paths_agree_with_the_twin(compiled_core, pure_core, path, block, lines):
    # field lines of every length around the vector width, then anything (bare CR and LF included)
    data = b"".join(b"X-%d: " % k + b"v" * k + b"\r\n" for k in lines) + block
    for whole in (False, True):
        c, p = compiled_core.HeaderIndex(data, None, whole), pure_core.HeaderIndex(data, None, whole)
        assert (c.fields(), c.defect(), c.body_start()) == (p.fields(), p.defect(), p.body_start())
        # the names as the index hashes and finds them (eight octets at a time), and what h= takes
        names = [name for name, _ in p.fields()] + [b"x-%d" % k for k in lines] + [b"x-", b"x-1234567"]
        for name in names:
            assert c.find(name) == p.find(name)
        h = names[::-1] + names[:3]
        for relaxed in (True, False):
            assert c.hash_input(h, b"S: x", relaxed) == p.hash_input(h, b"S: x", relaxed)


# What a header field value is made of: words, folds (CRLF before SP or
# HTAB), blank runs of every length around the vector widths, and what
# breaks a fold (a bare CR or LF, CRLF before a word) so that the vector
# pass gives the value back to the octet loop.
_FOLDS = [b"\r\n ", b"\r\n\t", b" \r\n ", b"\t\r\n\t\t"]
_BREAKS = [b"\r", b"\n", b"\r\nx", b"\r\r\n ", b"\n\r "]
_value_token = st.one_of(st.sampled_from([b"a", b"word", b"Stra\xc3\x9fe", b"<x@example.com>;", b"\x00", b"\x7f"]),
                         st.sampled_from(_FOLDS), _wsp_run(), st.binary(min_size=1, max_size=70))
header_values = st.lists(_value_token, max_size=40).map(b"".join)


@SETTINGS
@given(value=header_values, broken=st.one_of(st.none(), st.sampled_from(_BREAKS)), at=st.integers(0, 200),
       lead=st.sampled_from([b"", b" ", b"\r\n ", b"  \t"]), trail=st.sampled_from([b"", b" ", b"\t \r\n "]))
def test_relaxed_field_values_agree_with_the_twin(compiled_core, pure_core, path, value, broken, at, lead, trail):
    # long folded values (the vector pass), with or without something that is no fold in them
    if broken is not None:
        at = min(at, len(value))
        value = value[:at] + broken + value[at:]
    for name in (b"Subject", b"X-Name "):
        field = name + b":" + lead + value + trail + b"\r\n"
        assert compiled_core.relaxed_header(field) == pure_core.relaxed_header(field)
        assert compiled_core.relaxed_header(field[:-2]) == pure_core.relaxed_header(field[:-2])
    block = b"Subject:" + lead + value + trail + b"\r\nTo: a\r\n"
    c, p = compiled_core.HeaderIndex(block), pure_core.HeaderIndex(block)
    assert c.hash_input([b"to", b"subject"], b"S: x", True) == p.hash_input([b"to", b"subject"], b"S: x", True)



@pytest.mark.parametrize("piece", _FOLDS + _BREAKS + [b" ", b"  \t ", b"\x00"])
def test_relaxed_field_values_at_block_edges(compiled_core, pure_core, path, piece):
    # each fold, and each CR or LF that is no fold, at every offset around
    # the ends of the first and second 64-octet blocks of a long value
    words = b"word " * 40
    for at in list(range(0, 4)) + list(range(58, 70)) + list(range(122, 134)) + [len(words) - 1, len(words)]:
        value = words[:at] + piece + words[at:]
        for field in (b"Subject: " + value + b"\r\n", b"Subject:" + value, b"Subject:" + value.rstrip(b" ")):
            assert compiled_core.relaxed_header(field) == pure_core.relaxed_header(field), (piece, at)


def _large_body(seed: int, size: int) -> bytes:
    """Long verbatim runs (hashed in place when relaxed), sloppy text, long WSP runs
    and empty-line runs, bare line breaks: what fills and flushes whole blocks."""
    rnd = random.Random(seed)
    words = [b"the", b"body", b"hash", b"of", b"Gr\xc3\xbc\xc3\x9fe", b"relaxed", b"x" * 20]
    parts: List[bytes] = []
    total = 0
    while total < size:
        k = rnd.randrange(7)
        if k == 0:  # base64-like lines: one long verbatim run
            p = (b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0123456789+/abcdefghijklmnopqrstuvwxyz0123\r\n"
                 * rnd.choice((1, 50, 400)))
        elif k == 1:  # sloppy text
            line = []
            for _ in range(rnd.randint(1, 14)):
                line.append(rnd.choice(words))
                line.append(rnd.choice((b" ", b" ", b" ", b" ", b" ", b" ", b"  ", b"\t")))
            p = b"".join(line) + rnd.choice((b"", b" ", b"\t")) + rnd.choice((b"\r\n", b"\r\n", b"\n", b"\r"))
            p *= rnd.randint(1, 30)
        elif k == 2:
            p = bytes([rnd.choice(b" \t")]) * rnd.choice(RUN_LENGTHS + (5000, 70000))
        elif k == 3:
            p = b"\r\n" * rnd.choice((1, 2, 40, 3000))
        elif k == 4:
            p = bytes(rnd.choice(b" \t\r\nab") for _ in range(rnd.randint(1, 80)))
        elif k == 5:
            p = b"    indented\tcode  here   \r\n" * rnd.randint(1, 200)
        else:
            p = b"w" * rnd.choice((1, 30, 20000))
        parts.append(p)
        total += len(p)
    return b"".join(parts)


@pytest.mark.parametrize("seed", range(4))
def test_large_bodies_on_every_path(compiled_core, pure_core, path, seed):
    body = _large_body(seed, 600_000)
    rnd = random.Random(seed)
    cuts = rnd.sample(range(len(body) + 1), 10) + [rnd.randrange(len(body)) for _ in range(3)]
    pieces = _pieces(body, cuts)
    for bare_lf in (False, True):
        for relaxed in (True, False):
            want = pure_core.canonicalize_body(body, relaxed, bare_lf)
            assert compiled_core.canonicalize_body(body, relaxed, bare_lf) == want
            c = compiled_core.BodyCanonicalizer(relaxed, bare_lf)
            assert b"".join([c.update(p) for p in pieces] + [c.finish()]) == want
            for limit in (None, len(want) // 3):
                h = compiled_core.BodyHasher(relaxed, limit, bare_lf)
                for p in pieces:
                    h.update(p)
                assert h.digest() == hashlib.sha256(want if limit is None else want[:limit]).digest()
                assert h.length == len(want)


def test_path_switch(compiled_core):
    paths = compiled_core.SIMD_PATHS
    assert paths[0] == "scalar" and set(paths) <= set(PATHS)
    assert list(paths) == [p for p in PATHS if p in paths]
    assert compiled_core.SIMD in paths
    previous = compiled_core._use_simd("scalar")
    try:
        assert compiled_core.SIMD == "scalar"
        with pytest.raises(ValueError):
            compiled_core._use_simd("sse9")
        with pytest.raises(ValueError):
            compiled_core._use_simd(None)
        for p in PATHS:
            if p not in paths:
                with pytest.raises(ValueError):
                    compiled_core._use_simd(p)
        assert compiled_core.SIMD == "scalar"
    finally:
        assert compiled_core._use_simd(previous) == "scalar"
    assert compiled_core.SIMD == previous


_SHOW = "import warnings; warnings.simplefilter('error'); import fastdkim._canon as c; print(c.SIMD)"


@pytest.mark.parametrize("name", PATHS)
def test_environment_forces_a_path(compiled_core, name):
    paths = compiled_core.SIMD_PATHS
    env = child_env(require_compiled=True)
    env["FASTDKIM_SIMD"] = name
    out = subprocess.run([sys.executable, "-c", _SHOW], env=env, capture_output=True, text=True, check=True)
    # a path the CPU lacks gives the best one it has below it
    assert out.stdout.strip() == (name if name in paths else paths[-1])


def test_environment_names_an_unknown_path(compiled_core):
    env = child_env(require_compiled=True)
    env["FASTDKIM_SIMD"] = "fastest"
    show = "import warnings; import fastdkim._canon as c; print(c.SIMD)"
    out = subprocess.run([sys.executable, "-W", "always", "-c", show], env=env, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == compiled_core.SIMD_PATHS[-1]
    assert "FASTDKIM_SIMD='fastest'" in out.stderr
    env.pop("FASTDKIM_SIMD")
    out = subprocess.run([sys.executable, "-c", _SHOW], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == compiled_core.SIMD_PATHS[-1]


#: Lines holding no plain octet (WSP, CRLF, and a lone LF or CR as their only
#: content), or only control octets.  The block kernels once scanned a whole
#: output window past such content and threw the work away, for each octet of
#: progress, and the state machine walked back over every lone LF before the
#: kernel's end: quadratic in the body (a 1 MB body took seconds through
#: BodyHasher; 256 KB of LFs a minute through canonicalize_body).  At a
#: megabyte each, a return of that would stall this test for minutes.
BLANK_LINES = (b" \t\r\n\n", b"\x00\t\r\t\r\n  ", b"\r \r\n\n    ", b"\n" + b" \r\n" * 40, b"\n \t", b"\r ",
               b"\n", b"\x01\n", b"a\n\n", b" \n\t\r", b"\r\n\n",
               # runs just short of what is hashed in place, each ending where a WSP follows
               b"\r\n\n" * 5400 + b"\t")


@pytest.mark.parametrize("bare_lf", [False, True], ids=["crlf", "bare-lf"])
@pytest.mark.parametrize("pattern", BLANK_LINES, ids=[repr(p) for p in BLANK_LINES])
def test_lines_without_plain_octets(path: str, compiled_core, pure_core, pattern: bytes, bare_lf: bool) -> None:
    data = (pattern * (1000000 // len(pattern) + 1))[:1000000]
    want = pure_core.canonicalize_body(data, True, bare_lf)
    assert compiled_core.canonicalize_body(data, True, bare_lf) == want
    h = compiled_core.BodyHasher(True, None, bare_lf)
    for i in range(0, len(data), 300000):
        h.update(data[i:i + 300000])
    assert h.digest() == hashlib.sha256(want).digest()
    assert h.length == len(want)
