"""The compiled core (``fastdkim._canon``) against its pure-Python twin (``fastdkim._canon_py``).

The pure module is the specification: for every input, and however a body is cut
into chunks, the compiled module must return the same bytes, digests, counters
and errors.  Property tests draw inputs biased toward the octets that matter to
canonicalization (SP, HTAB, CR, LF and an 8-bit octet) and take the two cores
from the ``compiled_core`` and ``pure_core`` fixtures; example tests run once
per core (the ``core`` fixture) and pin the RFC 6376 worked example, the
empty-body rules and the large pathological cases (which must also run in
linear time in both cores).  How many examples a property test draws is the
Hypothesis profile's choice (see ``conftest.py``).
"""
from __future__ import annotations

import base64
import binascii
import collections
import hashlib
import random
import sys
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SETTINGS = settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# -- strategies ---------------------------------------------------------------

BODY_TOKENS = [
    b" ", b"\t", b"\r", b"\n", b"\r\n", b"a", b"b", b"\x80", b"  ", b" \t ",
    b"\r\n\r\n", b" \r\n", b"\t\r\n", b"word", b"\r\r\n", b"\n\r",
]
HEADER_TOKENS = [
    b"A", b"Subject", b"x-Y", b":", b" : ", b" ", b"\t", b"\r\n", b"\r\n ", b"\r\n\t",
    b"\r", b"\n", b"\x80", b"Ab", b"  ", b"\r\n\r\n", b"\n\n", b"\n\r\n",
]


def _token_strings(tokens, max_tokens):
    return st.lists(
        st.one_of(st.sampled_from(tokens), st.sampled_from(tokens), st.binary(max_size=3)),
        max_size=max_tokens,
    ).map(b"".join)


short_bodies = _token_strings(BODY_TOKENS, 40)
bodies = st.one_of(
    short_bodies,
    short_bodies,
    st.binary(max_size=120),
    # longer inputs reach the vector loops and the chunk-end cases
    st.tuples(short_bodies, st.integers(1, 60)).map(lambda t: t[0] * t[1]),
)
header_blobs = st.one_of(_token_strings(HEADER_TOKENS, 30), st.binary(max_size=60))


def _cuts(data, n):
    """Draw sorted split points for n bytes."""
    return sorted(data.draw(st.lists(st.integers(0, n), max_size=8), label="cuts"))


def _pieces(body, cuts):
    out, prev = [], 0
    for c in cuts + [len(body)]:
        out.append(body[prev:c])
        prev = c
    return out


def _as_type(piece, kind):
    if kind == 1:
        return bytearray(piece)
    if kind == 2:
        return memoryview(piece)
    return piece


def _stream(mod, relaxed, bare_lf, pieces, kinds=None):
    c = mod.BodyCanonicalizer(relaxed, bare_lf)
    out = []
    for n, p in enumerate(pieces):
        out.append(c.update(_as_type(p, kinds[n % len(kinds)] if kinds else 0)))
    out.append(c.finish())
    return b"".join(out)


# -- property tests -------------------------------------------------------------


@SETTINGS
@given(body=bodies, relaxed=st.booleans(), bare_lf=st.booleans(), data=st.data())
def test_canonicalizer_twins_agree_for_any_split(compiled_core, pure_core, body, relaxed, bare_lf, data):
    want = pure_core.canonicalize_body(body, relaxed, bare_lf)
    assert compiled_core.canonicalize_body(body, relaxed, bare_lf) == want
    pieces = _pieces(body, _cuts(data, len(body)))
    kinds = data.draw(st.lists(st.integers(0, 2), min_size=1, max_size=3), label="buffer types")
    assert _stream(compiled_core, relaxed, bare_lf, pieces, kinds) == want
    # the reference itself does not depend on the split either
    assert _stream(pure_core, relaxed, bare_lf, pieces) == want


@SETTINGS
@given(body=bodies, relaxed=st.booleans(), bare_lf=st.booleans(), data=st.data())
def test_canonicalizer_pieces_agree_chunk_by_chunk(compiled_core, pure_core, body, relaxed, bare_lf, data):
    # Not just the concatenation: each update() returns the same bytes.
    pieces = _pieces(body, _cuts(data, len(body)))
    a = pure_core.BodyCanonicalizer(relaxed, bare_lf)
    b = compiled_core.BodyCanonicalizer(relaxed, bare_lf)
    assert (a.relaxed, a.bare_lf) == (b.relaxed, b.bare_lf)
    for p in pieces:
        assert b.update(p) == a.update(p)
    assert b.finish() == a.finish()
    assert b.finish() == a.finish() == b""


@SETTINGS
@given(body=bodies, relaxed=st.booleans(), bare_lf=st.booleans(), data=st.data())
def test_hasher_twins_agree(compiled_core, pure_core, body, relaxed, bare_lf, data):
    canon = pure_core.canonicalize_body(body, relaxed, bare_lf)
    limit = data.draw(st.one_of(st.none(), st.integers(0, len(canon) + 3)), label="limit")
    pieces = _pieces(body, _cuts(data, len(body)))
    a = pure_core.BodyHasher(relaxed, limit, bare_lf)
    b = compiled_core.BodyHasher(relaxed, limit, bare_lf)
    assert (b.relaxed, b.limit) == (a.relaxed, a.limit)
    for p in pieces:
        a.update(p)
        b.update(p)
        assert (b.length, b.hashed) == (a.length, a.hashed)
    d = b.digest()
    assert d == a.digest()
    assert d == hashlib.sha256(canon if limit is None else canon[:limit]).digest()
    hashed = len(canon) if limit is None else min(len(canon), limit)
    assert (b.length, b.hashed) == (a.length, a.hashed) == (len(canon), hashed)
    assert b.digest() == d  # idempotent
    with pytest.raises(ValueError):
        b.update(b"x")
    with pytest.raises(ValueError):
        a.update(b"x")


@SETTINGS
@given(field=header_blobs)
def test_relaxed_header_twins_agree(compiled_core, pure_core, field):
    assert compiled_core.relaxed_header(field) == pure_core.relaxed_header(field)
    assert compiled_core.relaxed_header(bytearray(field)) == pure_core.relaxed_header(field)


@SETTINGS
@given(block=header_blobs)
def test_split_header_fields_twins_agree(compiled_core, pure_core, block):
    got = compiled_core.split_header_fields(block)
    assert got == pure_core.split_header_fields(block)
    assert b"".join(raw for _, raw in got) == block  # the fields tile the block
    assert compiled_core.split_header_fields(memoryview(block)) == got


@SETTINGS
@given(block=header_blobs, max_fields=st.integers(0, 6))
def test_split_header_fields_limit_twins_agree(compiled_core, pure_core, block, max_fields):
    got = _outcome(compiled_core.split_header_fields, block, max_fields)
    assert got == _outcome(pure_core.split_header_fields, block, max_fields)
    unlimited = pure_core.split_header_fields(block)
    if len(unlimited) <= max_fields:
        assert got == ("ok", unlimited)
    else:
        assert got == ("error", "more than %d header fields" % max_fields)


def test_split_header_fields_stops_at_the_limit(core):
    """Past max_fields the split stops at once: it never builds the fields
    of a huge block first (measured as Python allocations, not time)."""
    import tracemalloc

    block = b"a:1\r\n" * 1_000_000
    assert len(core.split_header_fields(block[:50], 10)) == 10
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="more than 10 header fields"):
            core.split_header_fields(block, 10)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 200_000, peak
    with pytest.raises(ValueError):
        core.split_header_fields(b"a:1", -1)


# Random octets with CR and LF sprinkled in: alone, paired, doubled, reversed,
# at the edges of the input and in long runs (which reach the nogil path).
LINE_BREAK_TOKENS = [b"\r", b"\n", b"\r\n", b"\n\r", b"\r\r\n", b"\n\n", b"\r\n\r\n", b"a", b"From: x", b" ", b"\x00"]
line_break_data = st.one_of(
    _token_strings(LINE_BREAK_TOKENS, 40),
    st.binary(max_size=80),
    st.tuples(_token_strings(LINE_BREAK_TOKENS, 6), st.integers(1, 3000), _token_strings(LINE_BREAK_TOKENS, 6))
    .map(lambda t: b"a: b\r\n" * t[1] + t[0] + b"\r\n" * t[1] + t[2]),
)


def _bare_line_break_oracle(data, lf_ok):
    """Octet by octet: the first CR without its LF, or (unless lf_ok) LF without its CR."""
    for i, c in enumerate(data):
        if c == 13 and data[i + 1:i + 2] != b"\n":
            return i
        if c == 10 and not lf_ok and (i == 0 or data[i - 1] != 13):
            return i
    return -1


@SETTINGS
@given(data=line_break_data, lf_ok=st.booleans())
def test_bare_line_break_twins_agree(compiled_core, pure_core, data, lf_ok):
    got = compiled_core.bare_line_break(data, lf_ok)
    assert got == pure_core.bare_line_break(data, lf_ok) == _bare_line_break_oracle(data, lf_ok)
    assert compiled_core.bare_line_break(bytearray(data), lf_ok) == got
    assert compiled_core.bare_line_break(memoryview(data), lf_ok) == got
    assert pure_core.bare_line_break(memoryview(data), lf_ok) == got


def test_bare_line_break_examples(core):
    f = core.bare_line_break
    assert f(b"", False) == f(b"", True) == -1
    assert f(b"a: b\r\nc: d\r\n\r\n", False) == -1
    assert f(b"a: b\nc: d\n\n", True) == -1
    assert f(b"a: b\nc: d\n\n", False) == 4
    assert f(b"\n", False) == 0 and f(b"\n", True) == -1
    assert f(b"a\r", True) == 1  # a CR at the very end has no LF
    assert f(b"X: a\rFrom: evil\r\n", True) == 4
    assert f(b"a\r\r\n", True) == 1
    assert f(b"a\n\rb", False) == 1 and f(b"a\n\rb", True) == 2
    big = b"Received: x\r\n" * 100_000
    assert f(big + b"X: 1\nFrom: y\r\n", False) == len(big) + 4
    assert f(big + b"X: 1\nFrom: y\r\n", True) == -1
    assert f(big + b"X: 1\rFrom: y\r\n", True) == len(big) + 4


FIELD_LINE_TOKENS = [b"\r\n", b"A: b", b"From: x", b" cont", b"\tcont", b"X Y: z", b": v", b"N :v", b"\xe9: v",
                     b"no colon", b"From x", b":", b" ", b"\n", b"a"]
field_line_data = st.one_of(
    _token_strings(FIELD_LINE_TOKENS, 30),
    st.binary(max_size=80),
    st.tuples(_token_strings(FIELD_LINE_TOKENS, 6), st.integers(1, 3000))
    .map(lambda t: b"Received: x\r\n" * t[1] + t[0]),
)


def _bad_field_line_oracle(block):
    """Line by line: the first that is neither ``ftext+ ":" ...`` nor (after the first) SP/HTAB-led."""
    if not block:
        return -1
    pos = 0
    lines = block.split(b"\n")
    for n, line in enumerate(lines):
        if n == len(lines) - 1 and line == b"" and n > 0:
            break  # after the block's final line ending
        name, colon, _ = line.partition(b":")
        ok_field = colon and name and all(33 <= c <= 126 and c != 58 for c in name)
        if not ok_field and not (n > 0 and line[:1] in (b" ", b"\t")):
            return pos
        pos += len(line) + 1
    return -1


@SETTINGS
@given(data=field_line_data)
def test_bad_field_line_twins_agree(compiled_core, pure_core, data):
    got = compiled_core.bad_field_line(data)
    assert got == pure_core.bad_field_line(data) == _bad_field_line_oracle(data)
    assert compiled_core.bad_field_line(bytearray(data)) == pure_core.bad_field_line(memoryview(data)) == got


def test_bad_field_line_examples(core):
    f = core.bad_field_line
    assert f(b"") == -1 and f(b"A: b\r\n") == -1 and f(b"A: b\r\n c\r\n\td\r\nE:f") == -1
    assert f(b" A: b\r\n") == 0  # a continuation of nothing
    assert f(b"A: b\r\nno colon\r\nC: d\r\n") == 6
    assert f(b"A: b\r\nSubject : x\r\n") == 6  # space before the colon (obsolete syntax)
    assert f(b"A: b\r\nX Y: z\r\n") == 6 and f(b": v\r\n") == 0 and f(b"\xe9: v\r\n") == 0
    assert f(b"From sender@example.com Mon Jan  1 00:00:00 2029\r\nA: b\r\n") == 0  # an envelope line
    big = b"Received: x\r\n" * 100_000
    assert f(big + b"bad\r\n") == len(big) and f(big) == -1


@SETTINGS
@given(data=st.one_of(header_blobs, bodies))
def test_find_body_start_and_normalize_twins_agree(compiled_core, pure_core, data):
    for bare_lf in (False, True):
        assert compiled_core.find_body_start(data, bare_lf) == pure_core.find_body_start(data, bare_lf)
    assert compiled_core.normalize_line_endings(data) == pure_core.normalize_line_endings(data)


@SETTINGS
@given(body=bodies, step=st.integers(1, 7))
def test_non_contiguous_buffers(compiled_core, pure_core, body, step):
    view = memoryview(body)[::step]
    flat = bytes(view)
    assert compiled_core.canonicalize_body(view, True) == pure_core.canonicalize_body(flat, True)
    assert compiled_core.relaxed_header(view) == pure_core.relaxed_header(flat)
    assert compiled_core.normalize_line_endings(view) == pure_core.normalize_line_endings(flat)
    assert compiled_core.find_body_start(view, True) == pure_core.find_body_start(flat, True)
    assert compiled_core.split_header_fields(view) == pure_core.split_header_fields(flat)
    assert compiled_core.bare_line_break(view, False) == pure_core.bare_line_break(flat, False)
    h = compiled_core.BodyHasher(False)
    h.update(view)
    assert h.digest() == hashlib.sha256(pure_core.canonicalize_body(flat, False)).digest()


def _mixed_body(seed, size):
    """Large bodies with long verbatim runs, long blank and empty-line runs and
    bare LFs: they reach the block flushes and the in-place hashing that the
    small property-test inputs cannot."""
    rnd = random.Random(seed)
    parts, total = [], 0
    while total < size:
        kind = rnd.randrange(8)
        if kind == 0:
            p = bytes(rnd.choice(b" \t\r\nab\x80") for _ in range(rnd.randint(1, 40)))
        elif kind == 1:
            p = b"word " * rnd.randint(1, 400)
        elif kind == 2:
            p = b"\r\n" * rnd.choice((1, 2, 3, 500, 70000))
        elif kind == 3:
            p = bytes([rnd.choice(b" \t")]) * rnd.choice((1, 2, 100, 20000))
        elif kind == 4:
            p = b"x" * rnd.choice((1, 100, 20000, 150000))
        elif kind == 5:
            p = b"\n" * rnd.randint(1, 3)
        elif kind == 6:
            p = b"a line of text \r\n" * rnd.randint(1, 3000)
        else:
            p = b"\r"
        parts.append(p)
        total += len(p)
    return b"".join(parts)


@pytest.mark.parametrize("seed", range(6))
def test_large_bodies_twins_agree(compiled_core, pure_core, seed):
    body = _mixed_body(seed, 400_000)
    rnd = random.Random(1000 + seed)
    cuts = sorted(rnd.sample(range(len(body) + 1), 12))
    pieces = _pieces(body, cuts)
    for relaxed in (False, True):
        for bare_lf in (False, True):
            want = pure_core.canonicalize_body(body, relaxed, bare_lf)
            assert compiled_core.canonicalize_body(body, relaxed, bare_lf) == want
            assert _stream(compiled_core, relaxed, bare_lf, pieces) == want
            limit = rnd.choice((None, 0, len(want) // 2, len(want) - 1, len(want) + 1))
            limit = None if limit is None else max(0, limit)
            h = compiled_core.BodyHasher(relaxed, limit, bare_lf)
            for p in pieces:
                h.update(p)
            assert h.digest() == hashlib.sha256(want if limit is None else want[:limit]).digest()
            assert h.length == len(want)
            assert h.hashed == (len(want) if limit is None else min(limit, len(want)))


# -- the hash a BodyHasher feeds (rsa-sha1 needs SHA-1) ---------------------------

HASH_NAMES = ["sha256", "sha1"]


@pytest.mark.parametrize("hash_name", HASH_NAMES)
@SETTINGS
@given(body=bodies, relaxed=st.booleans(), bare_lf=st.booleans(), data=st.data())
def test_hasher_hash_names_twins_agree(compiled_core, pure_core, hash_name, body, relaxed, bare_lf, data):
    canon = pure_core.canonicalize_body(body, relaxed, bare_lf)
    limit = data.draw(st.one_of(st.none(), st.integers(0, len(canon) + 3)), label="limit")
    pieces = _pieces(body, _cuts(data, len(body)))
    kinds = data.draw(st.lists(st.integers(0, 2), min_size=1, max_size=3), label="buffer types")
    a = pure_core.BodyHasher(relaxed, limit, bare_lf, hash_name)
    b = compiled_core.BodyHasher(relaxed, limit, bare_lf, hash_name=hash_name)
    assert (b.relaxed, b.limit, b.hash_name) == (a.relaxed, a.limit, a.hash_name) == (relaxed, limit, hash_name)
    for n, p in enumerate(pieces):
        a.update(p)
        b.update(_as_type(p, kinds[n % len(kinds)]))
        assert (b.length, b.hashed) == (a.length, a.hashed)
    d = b.digest()
    assert d == a.digest() == hashlib.new(hash_name, canon if limit is None else canon[:limit]).digest()
    hashed = len(canon) if limit is None else min(len(canon), limit)
    assert (b.length, b.hashed) == (a.length, a.hashed) == (len(canon), hashed)
    assert b.digest() == a.digest() == d  # idempotent
    for h in (a, b):
        with pytest.raises(ValueError):
            h.update(b"x")


@pytest.mark.parametrize("hash_name", HASH_NAMES)
@pytest.mark.parametrize("seed", range(3))
def test_large_bodies_hash_names_twins_agree(compiled_core, pure_core, hash_name, seed):
    # block flushes, in-place hashing of long runs and limits that fall
    # inside them, under random chunking, for each hash
    body = _mixed_body(100 + seed, 300_000)
    rnd = random.Random(2000 + seed)
    for relaxed in (False, True):
        for bare_lf in (False, True):
            want = pure_core.canonicalize_body(body, relaxed, bare_lf)
            cuts = sorted(rnd.sample(range(len(body) + 1), rnd.randint(0, 20)))
            pieces = _pieces(body, cuts)
            limit = rnd.choice((None, 0, 1, rnd.randrange(len(want) + 1), len(want) - 1, len(want) + 5))
            limit = None if limit is None else max(0, limit)
            a = pure_core.BodyHasher(relaxed, limit, bare_lf, hash_name)
            b = compiled_core.BodyHasher(relaxed, limit, bare_lf, hash_name)
            for p in pieces:
                a.update(p)
                b.update(p)
            assert b.digest() == a.digest() == hashlib.new(hash_name, want if limit is None else want[:limit]).digest()
            hashed = len(want) if limit is None else min(limit, len(want))
            assert (b.length, b.hashed) == (a.length, a.hashed) == (len(want), hashed)


def test_sha1_limit_inside_deferred_crlfs(core):
    body = b"a\r\n\r\n\r\n\r\nb\r\n"
    for relaxed in (False, True):
        for limit in range(len(body) + 2):
            for cut in range(len(body) + 1):
                h = core.BodyHasher(relaxed, limit, False, "sha1")
                h.update(body[:cut])
                h.update(body[cut:])
                assert h.digest() == hashlib.sha1(body[:limit]).digest()
                assert (h.length, h.hashed) == (len(body), min(limit, len(body)))


def test_hash_name_default_and_refusals(core):
    assert core.BodyHasher(False).hash_name == "sha256"
    assert core.BodyHasher(True, None, False, "sha256").digest() == hashlib.sha256(b"").digest()
    # simple canonicalization of an empty body is one CRLF (RFC 6376 3.4.3)
    assert core.BodyHasher(False, hash_name="sha1").digest() == hashlib.sha1(b"\r\n").digest()
    for bad in ("SHA256", "sha-256", "sha512", "md5", "", " sha1", b"sha256", b"sha1", None, 256):
        with pytest.raises(ValueError):
            core.BodyHasher(True, None, False, bad)
    with pytest.raises(ValueError):
        core.BodyHasher(True, -1, False, "sha1")


# -- RFC 6376 examples ------------------------------------------------------------

RFC_HEADERS = [b"A: X\r\n", b"B : Y\t\r\n\tZ  \r\n"]
RFC_BODY = b" C \r\nD \t E\r\n\r\n\r\n"


def test_rfc6376_3_4_5_example(core):
    assert [core.relaxed_header(h) for h in RFC_HEADERS] == [b"a:X\r\n", b"b:Y Z\r\n"]
    assert core.split_header_fields(b"".join(RFC_HEADERS)) == [(b"a", RFC_HEADERS[0]), (b"b", RFC_HEADERS[1])]
    assert core.canonicalize_body(RFC_BODY, relaxed=True) == b" C\r\nD E\r\n"
    assert core.canonicalize_body(RFC_BODY, relaxed=False) == b" C \r\nD \t E\r\n"
    message = b"".join(RFC_HEADERS) + b"\r\n" + RFC_BODY
    start = core.find_body_start(message)
    assert message[start:] == RFC_BODY
    for relaxed, want in ((True, b" C\r\nD E\r\n"), (False, b" C \r\nD \t E\r\n")):
        h = core.BodyHasher(relaxed)
        for i in range(len(RFC_BODY)):  # one octet at a time
            h.update(RFC_BODY[i : i + 1])
        assert h.digest() == hashlib.sha256(want).digest()


def test_empty_body_rules(core):
    # simple: an empty body is one CRLF; relaxed: it stays empty (RFC 6376 3.4.3, 3.4.4)
    for body in (b"", b"\r\n", b"\r\n\r\n\r\n"):
        assert core.canonicalize_body(body, relaxed=False) == b"\r\n"
        assert core.canonicalize_body(body, relaxed=True) == b""
    assert core.canonicalize_body(b" \t \r\n\t\r\n", relaxed=True) == b""
    simple, relaxed = core.BodyHasher(False), core.BodyHasher(True)
    assert base64.b64encode(simple.digest()) == b"frcCV1k9oG9oKj3dpUqdJg1PxRT2RSN/XKdLCPjaYaY="
    # SHA-256 of the empty string
    assert base64.b64encode(relaxed.digest()) == b"47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
    assert (simple.length, relaxed.length) == (2, 0)


def test_last_line_without_crlf(core):
    assert core.canonicalize_body(b"a", False) == b"a\r\n"
    assert core.canonicalize_body(b"a \t", True) == b"a\r\n"
    assert core.canonicalize_body(b"a\r", False) == b"a\r\r\n"  # a lone CR is content
    assert core.canonicalize_body(b"a\nb\n", False, bare_lf=True) == b"a\r\nb\r\n"
    assert core.canonicalize_body(b"a\nb\n", False) == b"a\nb\n\r\n"


# -- large and pathological bodies (linear time, bounded memory) -------------------


def _feed(mod, body, relaxed, chunk, limit=None, bare_lf=False):
    h = mod.BodyHasher(relaxed, limit, bare_lf)
    mv = memoryview(body)
    for i in range(0, len(body), chunk):
        h.update(mv[i : i + chunk])
    return h


def _cpu_time(run, n):
    """CPU seconds this process spent in ``run(n)`` (the time other programs take does not count)."""
    t0 = time.process_time()
    run(n)
    return time.process_time() - t0


def _assert_linear(run, n):
    """``run(16 * n)`` costs less than 64 times ``run(n)``: linear work costs 16
    times as much, quadratic work 256 times.  Both measured in one run, as CPU
    time of this process, the small size at its best of three, the large one at
    its best of up to three (measured again only while over the bound: a busy
    machine can add page faults to one run, never to the work itself), with
    50 ms of slack for the clock: a busy machine does not tip the comparison,
    and nothing is compared with a fixed number of seconds."""
    small = min(_cpu_time(run, n) for _ in range(3))
    bound = 64 * small + 0.05
    large = _cpu_time(run, 16 * n)
    for _ in range(2):
        if large < bound:
            break
        large = min(large, _cpu_time(run, 16 * n))
    assert large < bound, "16 times the input cost %.3f s of CPU against %.3f s: not linear" % (large, small)


@pytest.mark.parametrize("relaxed", [False, True])
def test_million_empty_lines_then_text(core, relaxed):
    def run(lines):
        body = b"\r\n" * lines + b"text\r\n"
        want = body  # the empty lines are not trailing: all of them stay
        assert core.canonicalize_body(body, relaxed) == want
        for chunk in (65536, 65537, 1 << 20):  # odd chunks cut CRLF pairs
            h = _feed(core, body, relaxed, chunk)
            assert h.digest() == hashlib.sha256(want).digest()
            assert h.length == len(want)
        # the same lines at the end are dropped
        tail = b"text\r\n" + b"\r\n" * lines
        assert _feed(core, tail, relaxed, 65537).digest() == hashlib.sha256(b"text\r\n").digest()

    _assert_linear(run, 1_000_000 // 16)  # the large size: a million lines


def test_ten_megabyte_whitespace_run(core):
    def run(pairs):
        ws = b" \t" * pairs
        assert core.canonicalize_body(b"a" + ws + b"b\r\n", True) == b"a b\r\n"
        assert core.canonicalize_body(b"a" + ws + b"\r\n", True) == b"a\r\n"
        assert core.canonicalize_body(ws, True) == b""
        assert core.canonicalize_body(b"a" + ws + b"b\r\n", False) == b"a" + ws + b"b\r\n"
        h = _feed(core, b"a" + ws + b"b", True, 65537)
        assert h.digest() == hashlib.sha256(b"a b\r\n").digest()
        h = _feed(core, b"a" + ws + b"b", False, 65537)
        assert h.digest() == hashlib.sha256(b"a" + ws + b"b\r\n").digest()

    # Both cores are linear: anything quadratic would cost hundreds of times more at the large size.
    _assert_linear(run, 5_000_000 // 16)  # the large size: ten megabytes


@pytest.mark.parametrize("relaxed", [False, True])
def test_limit_inside_deferred_crlfs(core, relaxed):
    body = b"a\r\n\r\n\r\n\r\nb\r\n"  # three held-back empty lines, released by "b"
    want = body
    for limit in range(len(want) + 2):
        for cut in range(len(body) + 1):
            h = core.BodyHasher(relaxed, limit)
            h.update(body[:cut])
            h.update(body[cut:])
            assert h.digest() == hashlib.sha256(want[:limit]).digest()
            assert (h.length, h.hashed) == (len(want), min(limit, len(want)))
    # a limit inside a million held-back CRLFs (odd: between CR and LF)
    big = b"x\r\n" + b"\r\n" * 1_000_000 + b"y"
    limit = 3 + 2 * 600_000 + 1
    h = _feed(core, big, relaxed, 65536, limit=limit)
    assert h.digest() == hashlib.sha256(big[:limit]).digest()
    assert (h.length, h.hashed) == (len(big) + 2, limit)


# -- misuse and API shape -------------------------------------------------------


def test_misuse_errors(core):
    with pytest.raises(ValueError):
        core.BodyHasher(True, -1)
    c = core.BodyCanonicalizer(True)
    assert c.update(b"a ") == b"a"
    assert c.finish() == b"\r\n"
    assert c.finish() == b""
    with pytest.raises(ValueError):
        c.update(b"x")
    h = core.BodyHasher(False, limit=3)
    h.update(bytearray(b"abcdef"))
    assert h.digest() == hashlib.sha256(b"abc").digest()
    assert (h.relaxed, h.limit, h.length, h.hashed) == (False, 3, 8, 3)
    with pytest.raises(ValueError):
        h.update(b"")
    with pytest.raises(TypeError):
        core.canonicalize_body("text", True)
    with pytest.raises(TypeError):
        core.relaxed_header("A: b")


def test_same_public_api(compiled_core, pure_core):
    assert compiled_core.__all__ == pure_core.__all__
    for name in pure_core.__all__:
        assert hasattr(compiled_core, name), name
    for cls in ("BodyCanonicalizer", "BodyHasher"):
        public = {n for n in dir(getattr(pure_core, cls)) if not n.startswith("_")}
        assert public <= set(dir(getattr(compiled_core, cls))), cls
    c = compiled_core.BodyCanonicalizer(relaxed=1, bare_lf=[1])
    assert (c.relaxed, c.bare_lf) == (True, True)
    h = compiled_core.BodyHasher(relaxed=0, limit=None, bare_lf=True)
    assert (h.relaxed, h.limit, h.length, h.hashed, h.hash_name) == (False, None, 0, 0, "sha256")
    h = compiled_core.BodyHasher(relaxed=1, limit=5, bare_lf=False, hash_name="sha1")
    assert (h.relaxed, h.limit, h.hash_name) == (True, 5, "sha1")


# -- tag-lists and the header hash input ----------------------------------------

TAG_TOKENS = [
    b"v", b"a", b"b", b"bh", b"d", b"h", b"x_1", b"1x", b"=", b";", b" ", b"\t", b"\r\n ", b"\r\n",
    b"rsa-sha256", b"from:to", b"abc+/=", b"\x80", b"\xff", b"", b";;", b"==",
]
tag_lists = st.lists(st.sampled_from(TAG_TOKENS), max_size=30).map(b"".join) | st.binary(max_size=80)


def _outcome(fn, *args):
    try:
        return ("ok", fn(*args))
    except ValueError as exc:
        return ("error", str(exc))


@SETTINGS
@given(data=tag_lists, max_tags=st.integers(1, 8))
def test_parse_tag_list_twins_agree(compiled_core, pure_core, data, max_tags):
    got = _outcome(compiled_core.parse_tag_list, data, max_tags)
    assert got == _outcome(pure_core.parse_tag_list, data, max_tags)
    assert _outcome(compiled_core.parse_tag_list, bytearray(data), max_tags) == got
    if got[0] == "ok":
        assert all(isinstance(k, str) and isinstance(v, bytes) for k, v in got[1].items())


def test_parse_tag_list_examples(core):
    assert core.parse_tag_list(b" v = 1 ;\r\n\ta=rsa-sha256; b=ab\r\n cd ;") == {"v": b"1", "a": b"rsa-sha256", "b": b"ab\r\n cd"}
    assert core.parse_tag_list(b"a=;b=2; \r\n ") == {"a": b"", "b": b"2"}
    assert core.parse_tag_list(b"a=;b=2;") == {"a": b"", "b": b"2"}
    # RFC 6376 section 3.2: tag-spec *( ";" tag-spec ) [ ";" ]: one ';' may end the list, no more
    for bad, msg in ((b"", "empty"), (b"x", "without '='"), (b"1a=2", "invalid tag name"),
                     (b"a=1; a=2", "duplicate"), (b"a=1;b=2;c=3", "more than 2"), (b"a=;b=2;;", "empty tag-spec"),
                     (b";a=1", "empty tag-spec"), (b"a=1; ;b=2", "empty tag-spec"), (b" ; ", "empty tag-spec"),
                     (b"a=1;\r\n ;", "empty tag-spec")):
        with pytest.raises(ValueError, match=msg):
            core.parse_tag_list(bad, 2)


field_lists = st.lists(
    st.tuples(st.sampled_from([b"from", b"to", b"subject", b"x"]), header_blobs), max_size=8)
name_lists = st.lists(st.sampled_from([b"from", b"to", b"subject", b"date"]), max_size=10)


@SETTINGS
@given(fields=field_lists, names=name_lists, own=header_blobs, relaxed=st.booleans())
def test_header_hash_input_twins_agree(compiled_core, pure_core, fields, names, own, relaxed):
    assert compiled_core.header_hash_input(fields, names, own, relaxed) == pure_core.header_hash_input(fields, names, own, relaxed)


def test_header_hash_input_bottom_up_and_oversigned(core):
    fields = [(b"to", b"To: one\r\n"), (b"from", b"From:  A \r\n"), (b"to", b"To: two\r\n")]
    own = b"DKIM-Signature: v=1; b=\r\n"
    # the second "to" takes the upper instance; the surplus "to" and "from" add nothing
    assert core.header_hash_input(fields, [b"to", b"to", b"to", b"from", b"from"], own, False) == (
        b"To: two\r\nTo: one\r\nFrom:  A \r\nDKIM-Signature: v=1; b=")
    assert core.header_hash_input(fields, [b"from"], own, True) == b"from:A\r\ndkim-signature:v=1; b="


# -- the signature field and base64 values --------------------------------------------

signature_fields = st.tuples(
    st.sampled_from([b"DKIM-Signature:", b"dkim-signature :", b"DKIM-Signature", b""]), tag_lists,
    st.sampled_from([b"", b"\r\n"])).map(b"".join)


@SETTINGS
@given(field=signature_fields, max_tags=st.integers(1, 8))
def test_parse_signature_twins_agree(compiled_core, pure_core, field, max_tags):
    got = _outcome(compiled_core.parse_signature, field, max_tags)
    assert got == _outcome(pure_core.parse_signature, field, max_tags)
    assert _outcome(compiled_core.parse_signature, bytearray(field), max_tags) == got
    if got[0] == "ok":
        tags, unsigned = got[1]
        assert tags == pure_core.parse_tag_list(field[field.find(b":") + 1:], max_tags)
        if "b" in tags:
            # only the b= value went; the rest of the field is intact and parses the same
            again = pure_core.parse_tag_list(unsigned[unsigned.find(b":") + 1:], max_tags)
            assert again == dict(tags, b=b"")
        else:
            assert unsigned == field


def test_parse_signature_empties_b_value_with_its_whitespace(core):
    field = b"DKIM-Signature: v=1; bh=YWJj; b= ab\r\n\tcd ; d=example.com\r\n"
    tags, unsigned = core.parse_signature(field)
    assert tags["b"] == b"ab\r\n\tcd" and tags["bh"] == b"YWJj"
    assert unsigned == b"DKIM-Signature: v=1; bh=YWJj; b=; d=example.com\r\n"
    # b= last: the value runs to the end of the field, final CRLF included
    assert core.parse_signature(b"DKIM-Signature: v=1; b=\r\n  abc\r\n")[1] == b"DKIM-Signature: v=1; b="
    assert core.parse_signature(b"X: a=1")[1] == b"X: a=1"
    for bad in (b"no colon here", b"DKIM-Signature: a=1; a=2", b"DKIM-Signature: ;"):
        with pytest.raises(ValueError):
            core.parse_signature(bad)


B64_TOKENS = [b"A", b"Q", b"/", b"+", b"z", b"9", b"=", b"==", b" ", b"\r\n\t", b"QUJD", b"-", b"_", b"\x00", b"\xc3"]
b64_values = st.lists(st.sampled_from(B64_TOKENS), max_size=24).map(b"".join) | st.binary(max_size=40)


@SETTINGS
@given(value=b64_values)
def test_b64decode_twins_agree(compiled_core, pure_core, value):
    got = _outcome(compiled_core.b64decode, value)
    assert got == _outcome(pure_core.b64decode, value)
    assert _outcome(compiled_core.b64decode, memoryview(value)) == got
    stripped = value.translate(None, b" \t\r\n")
    if got[0] == "ok":
        assert got[1] == base64.b64decode(stripped, validate=True)
        assert len(base64.b64encode(got[1])) == len(stripped)  # nothing dropped or added
    if sys.version_info >= (3, 11):
        # the same verdict as the standard library's strict decoder
        try:
            binascii.a2b_base64(stripped, strict_mode=True)
            strict_ok = len(stripped) % 4 == 0 and not stripped.endswith(b"===")
        except binascii.Error:
            strict_ok = False
        assert (got[0] == "ok") == strict_ok


@pytest.mark.parametrize("length", [0, 1, 2, 3, 32, 64, 255, 256, 512, 1200, 1600, 5000])
def test_b64decode_round_trip(core, length):
    data = bytes(range(256)) * 20
    data = data[:length]
    enc = base64.b64encode(data)
    folded = b"\r\n\t".join(enc[i:i + 20] for i in range(0, len(enc), 20))
    assert core.b64decode(folded) == data
    for bad in (enc + b"=", b"=" + enc, enc[:-1] if enc else b"A", enc + b"!"):
        if bad != enc:
            with pytest.raises(ValueError, match="malformed base64"):
                core.b64decode(bad)


SIGNATURE_TAGS = {
    "v": [b"1"] * 6 + [b"2", b"", b" 1 "], "a": [b"rsa-sha256", b"ed25519-sha256", b""], "c": [b"relaxed/simple"],
    "d": [b"example.com"], "s": [b"sel"], "h": [b"from:to", b"From : To"], "i": [b"@example.com"],
    "q": [b"dns/txt"], "t": [b"1700000000"], "l": [b"12"], "z": [b"x"],
}


GOOD_B64 = [b"QUJD", b"YWJj\r\n ZGVm", b"YQ==", b"YWI=", b" QU JD ", b"YWJj" * 30]
BAD_B64 = [b"", b"QUJ", b"QU=D", b"Q===", b"YQ==YQ==", b"QUJD!", b"QUJD=", b"\xc3QUJ"]


def _signature_field(r):
    """A signature field drawn with *r*: each tag present (mostly) or
    absent, base64 values mostly valid, the tags in a random order."""
    specs = [b"%s=%s" % (name.encode(), r.choice(values)) for name, values in SIGNATURE_TAGS.items()
             if r.random() < 0.93]
    for name in (b"b", b"bh"):
        if r.random() < 0.93:
            specs.append(name + b"=" + r.choice(GOOD_B64 if r.random() < 0.8 else BAD_B64))
    r.shuffle(specs)
    return b"DKIM-Signature: " + b";".join(specs)


usable_fields = st.randoms(use_true_random=False).map(_signature_field)


@SETTINGS
@given(field=usable_fields | signature_fields)
def test_usable_signature_twins_agree(compiled_core, pure_core, field):
    got = compiled_core.usable_signature(field)
    assert got == pure_core.usable_signature(field)
    assert compiled_core.usable_signature(bytearray(field)) == got
    # the definition: what parse_signature and b64decode make of the field
    try:
        tags, unsigned = pure_core.parse_signature(field)
        usable = (tags.get("v") == b"1" and all(t in tags for t in ("a", "b", "bh", "d", "h", "s"))
                  and _outcome(pure_core.b64decode, tags["bh"])[0] == "ok"
                  and _outcome(pure_core.b64decode, tags["b"]) not in (("ok", b""),)
                  and _outcome(pure_core.b64decode, tags["b"])[0] == "ok")
    except ValueError:
        usable = False
    assert (got is not None) == usable
    if got is not None:
        assert got == (tags, unsigned, tuple(tags.get(t) for t in "a c d s h i q".split()),
                       base64.b64decode(tags["b"].translate(None, b" \t\r\n")),
                       base64.b64decode(tags["bh"].translate(None, b" \t\r\n")))


def test_usable_signature_examples(core):
    good = b"DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=sel; h=from; bh=YWJj; b=\r\n ZGVm\r\n"
    tags, unsigned, key, b, bh = core.usable_signature(good)
    assert (b, bh) == (b"def", b"abc") and unsigned == b"DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=sel; h=from; bh=YWJj; b="
    assert key == (b"rsa-sha256", None, b"example.com", b"sel", b"from", None, None)
    for bad in (good.replace(b"v=1", b"v=2"), good.replace(b"v=1; ", b""), good.replace(b"h=from; ", b""),
                good.replace(b"ZGVm", b""), good.replace(b"ZGVm", b"ZGV"), good.replace(b"YWJj", b"YW!j"),
                good.replace(b"d=", b"d"), b"no colon", good + b"; a=again"):
        assert core.usable_signature(bad) is None, bad


@SETTINGS
@given(data=st.binary(max_size=600), col=st.integers(0, 120), width=st.integers(9, 100))
def test_fold_base64_twins_agree(compiled_core, pure_core, data, col, width):
    got = compiled_core.fold_base64(data, col, width)
    assert got == pure_core.fold_base64(data, col, width)
    lines = got.split(b"\r\n")
    assert base64.b64decode(b"".join(line.lstrip(b" ") for line in lines)) == data
    assert all(line.startswith(b" ") and len(line) <= width for line in lines[1:])
    # the first line continues the one at column col: it fits, or it is empty
    assert col + len(lines[0]) <= width or lines[0] == b""


def test_fold_base64_examples(core):
    assert core.fold_base64(b"", 10) == b""
    assert core.fold_base64(b"abc", 10) == b"YWJj"
    assert core.fold_base64(b"abcdef", 72, 78) == b"\r\n YWJjZGVm"  # 6 columns left: start a new line
    assert core.fold_base64(b"abcdef", 68, 78) == b"YWJjZGVm"
    assert core.fold_base64(b"abcdefg", 60, 70) == b"YWJjZGVmZw\r\n =="
    with pytest.raises(ValueError):
        core.fold_base64(b"x", 0, 8)


@SETTINGS
@given(data=st.binary(max_size=300), col=st.integers(0, 120), width=st.integers(9, 100),
       prefix=st.binary(max_size=40), suffix=st.binary(max_size=4))
def test_fold_base64_between_prefix_and_suffix(compiled_core, pure_core, data, col, width, prefix, suffix):
    got = compiled_core.fold_base64(data, col, width, prefix, suffix)
    assert got == pure_core.fold_base64(data, col, width, prefix, suffix)
    assert got == prefix + pure_core.fold_base64(data, col, width) + suffix


def test_fold_base64_prefix_and_suffix_are_bytes(core):
    assert core.fold_base64(b"abc", 10, 78, b"b=", b"\r\n") == b"b=YWJj\r\n"
    for bad in ("b=", bytearray(b"b="), None):
        with pytest.raises(TypeError):
            core.fold_base64(b"abc", 10, 78, bad, b"")
        with pytest.raises(TypeError):
            core.fold_base64(b"abc", 10, 78, b"", bad)


def _body_hash_tags_oracle(head, col, bh, width):
    """The tags as a signer writes them, one fold decision per tag."""
    text = head
    for tag in (b" bh=" + base64.b64encode(bh) + b";", b" b="):
        if col + len(tag) <= width:
            col += len(tag)
        else:
            text += b"\r\n"
            col = len(tag)
        text += tag
    return text, col


@SETTINGS
@given(head=st.binary(max_size=80), col=st.integers(0, 100), bh=st.binary(max_size=40), width=st.integers(9, 100))
def test_body_hash_tags_twins_agree(compiled_core, pure_core, head, col, bh, width):
    got = compiled_core.body_hash_tags(head, col, bh, width)
    assert got == pure_core.body_hash_tags(head, col, bh, width)
    assert got == _body_hash_tags_oracle(head, col, bh, width)


def test_body_hash_tags_examples(core):
    bh = hashlib.sha256(b"").digest()
    b64 = base64.b64encode(bh)
    assert core.body_hash_tags(b"h=from;", 7, bh) == (b"h=from; bh=" + b64 + b"; b=", 7 + 49 + 3)
    # 49 columns of bh= do not fit after column 30 of a 78-column line; b= does after it
    assert core.body_hash_tags(b"x", 30, bh) == (b"x\r\n bh=" + b64 + b"; b=", 49 + 3)
    assert core.body_hash_tags(b"x", 0, bh, 50) == (b"x bh=" + b64 + b";\r\n b=", 3)
    assert core.body_hash_tags(b"x", 1, memoryview(bh)) == core.body_hash_tags(b"x", 1, bh)
    with pytest.raises(TypeError):
        core.body_hash_tags("x", 1, bh)
    with pytest.raises(TypeError):
        core.body_hash_tags(b"x", 1, "bh")


usual_messages = st.one_of(
    st.tuples(st.lists(header_blobs, max_size=5).map(b"".join), st.sampled_from([b"\r\n", b"\n", b""]), bodies)
    .map(lambda t: t[0] + t[1] + t[2]),
    st.binary(max_size=120),
)


@SETTINGS
@given(data=usual_messages, bare_lf=st.sampled_from([None, False, True]), max_bytes=st.integers(0, 400),
       max_fields=st.integers(0, 8), max_body=st.integers(0, 300))
def test_read_usual_twins_agree(compiled_core, pure_core, data, bare_lf, max_bytes, max_fields, max_body):
    got = compiled_core.read_usual(data, bare_lf, max_bytes, max_fields, max_body)
    want = pure_core.read_usual(data, bare_lf, max_bytes, max_fields, max_body)
    assert (got is None) == (want is None)
    if got is not None:
        assert (got[0].fields(), got[0].body_start(), got[1]) == (want[0].fields(), want[0].body_start(), want[1])
        assert got[0].defect() == (0, -1)


def test_read_usual_examples(core):
    msg = b"From: a\r\nTo: b\r\n\r\nbody\r\n"
    index, body = core.read_usual(msg, None, 1000, 10, 100)
    assert (index.fields(), body) == ([(b"from", b"From: a\r\n"), (b"to", b"To: b\r\n")], b"body\r\n")
    assert core.read_usual(msg, False, 1000, 10, 100) is not None
    assert core.read_usual(msg[:16], None, 1000, 10, 100)[1] == b""  # no body
    for refused in [(msg, True, 1000, 10, 100),                   # LF mail asked for
                    (msg.replace(b"\r\n", b"\n"), None, 1000, 10, 100),
                    (b"\n" + msg, None, 1000, 10, 100),            # the first line is a bare LF
                    (msg, None, len(msg) - 1, 10, 100),           # too large
                    (msg, None, 1000, 1, 100),                    # too many fields
                    (msg, None, 1000, 10, 5),                     # too large a body
                    (b" " + msg, None, 1000, 10, 100),            # a continuation line first
                    (msg.replace(b"To: b", b"To b"), None, 1000, 10, 100),
                    (msg.replace(b"To: b", b"To: \rb"), None, 1000, 10, 100)]:
        assert core.read_usual(*refused) is None, refused
    assert core.read_usual(msg, None, 1000, 10, 6) is not None  # (a body of exactly max_body)
    for bad in (bytearray(msg), memoryview(msg), "text"):
        with pytest.raises(TypeError):
            core.read_usual(bad, None, 1000, 10, 100)


def test_limits_must_be_integers_in_both_twins(compiled_core, pure_core):
    # a limit that is not an integer is refused alike (no float or text limit slips through one twin)
    msg = b"From: a\r\nTo: b\r\n\r\nbody\r\n"
    for bad in (2.5, "3"):
        for core in (compiled_core, pure_core):
            for call in (lambda: core.HeaderIndex(msg, bad), lambda: core.split_header_fields(msg, bad),
                         lambda: core.read_usual(msg, None, bad, 10, 100),
                         lambda: core.read_usual(msg, None, 1000, bad, 100),
                         lambda: core.read_usual(msg, None, 1000, 10, bad),
                         lambda: core.read_usual("text", None, bad, 10, 100)):
                with pytest.raises(TypeError, match="cannot be interpreted as an integer"):
                    call()
    for core in (compiled_core, pure_core):  # (bool is an int)
        assert core.HeaderIndex(b"From: a\r\n", True).fields() == [(b"from", b"From: a\r\n")]



# -- the verification lane's first half ---------------------------------------------

_LANE_SIG = (b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.com; s=sel;\r\n"
             b"\th=from:to; bh=YWJj; b=ZGVm%s\r\n")
_LANE_TAGS = [b"", b"; t=1000", b"; t=0001000", b"; t=1300", b"; t=1301", b"; t=", b"; t=1x",
              b"; t=" + b"0" * 73 + b"100", b"; t=" + b"0" * 74 + b"100", b"; l=3", b"; x=2000", b"; t=\xd9\xa1", b"; z=x", b"; v=2", b"; b="]


def _lane_messages() -> st.SearchStrategy[bytes]:
    sig = st.sampled_from(_LANE_TAGS).map(lambda t: _LANE_SIG % t)
    head = st.lists(st.one_of(sig, st.sampled_from([b"From: a\r\n", b"To: b\r\n", b"DKIM-Signature: v=1\r\n",
                                                    b"dkim-SIGNATURE :x\r\n", b"To b\r\n", b"X: \rb\r\n"])),
                    max_size=5).map(b"".join)
    return st.tuples(head, st.sampled_from([b"\r\nbody\r\n", b"\r\n", b"", b"\n\nbody"])).map(b"".join)


class _Statics:
    """What the lane is given for the static tags: a cache and the call
    that fills it (the same key gives the same answer; "bad" for d=bad)."""

    def __init__(self) -> None:
        self.cache: dict = {}
        self.calls: list = []

    def of(self, key: tuple, tags: dict) -> tuple:
        self.calls.append(key)
        static = ("bad", "refused") if tags.get("d") == b"bad" else ("ok", key, tags.get("s"))
        self.cache[key] = static
        return static


def _lane_run(core, data, now, skew, cached, max_sigs=1, max_fields=8):
    statics = _Statics()
    clock_calls: list = []

    def clock() -> float:
        clock_calls.append(1)
        return 1000.5

    if cached:
        statics.cache[(b"rsa-sha256", b"relaxed/relaxed", b"example.com", b"sel", b"from:to", None, None)] = ("pre",)
    lane, when = core.lane_start(data, None, 4000, max_fields, 300, now, clock, skew, statics.cache, statics.of,
                                 max_sigs)
    if lane is not None:
        index, body, sigs = lane
        lane = (index.fields(), body, sigs)
    return lane, when, statics.calls, len(clock_calls)


@SETTINGS
@given(data=_lane_messages(), now=st.sampled_from([None, 1000, 999.9, 0]), skew=st.sampled_from([0, 300, 301]),
       cached=st.booleans(), max_sigs=st.sampled_from([1, 2, 3, 10, 0, -1]))
def test_lane_start_twins_agree(compiled_core, pure_core, data, now, skew, cached, max_sigs):
    assert (_lane_run(compiled_core, data, now, skew, cached, max_sigs)
            == _lane_run(pure_core, data, now, skew, cached, max_sigs))


def test_lane_start_examples(core):
    msg = b"From: a\r\n" + _LANE_SIG % b"; t=1100" + b"\r\nbody\r\n"
    lane, when, calls, clocked = _lane_run(core, msg, None, 300, False)
    assert (when, clocked) == (1000, 1)
    fields, body, [(pos, tags, unsigned, b, bh, timestamp, static)] = lane
    assert (body, pos, b, bh, timestamp) == (b"body\r\n", 1, b"def", b"abc", 1100)
    assert tags["d"] == b"example.com" and b"b=;" in unsigned
    key = (b"rsa-sha256", b"relaxed/relaxed", b"example.com", b"sel", b"from:to", None, None)
    assert calls == [key] and static == ("ok", key, b"sel")
    # a static cached before: not asked again
    assert _lane_run(core, msg, None, 300, True)[0][2][0][6] == ("pre",) and _lane_run(core, msg, None, 300, True)[2] == []
    # at the edges: t= as late as the skew allows, t= of 76 digits
    for t, want in ((b"t=1300", 1300), (b"t=" + b"0" * 72 + b"1000", 1000), (b"t=0", 0)):
        assert _lane_run(core, msg.replace(b"t=1100", t), None, 300, False)[0][2][0][5] == want, t
    assert _lane_run(core, msg.replace(b"t=1100", b"t=" + b"0" * 73 + b"1000"), None, 300, False)[0] is None
    assert _lane_run(core, msg.replace(b"t=1100", b"t=1300"), None, 299, False)[0] is None
    # the time as given, whole seconds
    assert _lane_run(core, msg, 1234.9, 300, False)[1:] == (1234, [key], 0)
    left = [
        msg.replace(b"t=1100", b"t=1301"),          # beyond the skew
        msg.replace(b"t=1100", b"l=1"),             # l= and x= go to the phases
        msg.replace(b"t=1100", b"x=2000"),
        msg.replace(b"t=1100", b"t=11a"),           # t= not all digits
        msg.replace(b"d=example.com", b"d=bad"),    # a static that refuses
        msg.replace(b"From: a", b"DKIM-Signature: v=1"),  # two signatures
        msg.replace(b"DKIM-Signature", b"X-Signature"),  # none
        msg.replace(b"v=1;", b"v=2;"),             # not usable
    ]
    for data in left:
        lane, when, _, clocked = _lane_run(core, data, None, 300, False)
        assert (lane, when, clocked) == (None, 1000, 1), data
    # several signatures, up to max_sigs (and never more than 8), each checked as one is
    sig = _LANE_SIG % b"; t=1100"
    for n in (2, 8, 9):
        many = msg.replace(sig, sig * n)
        for max_sigs in (1, n - 1, n, 10):
            lane = _lane_run(core, many, None, 300, False, max_sigs, 20)[0]
            if n <= min(max_sigs, 8):
                assert [s[0] for s in lane[2]] == list(range(1, n + 1))
                assert all(s[1:] == lane[2][0][1:] for s in lane[2])
            else:
                assert lane is None, (n, max_sigs)
    two = msg.replace(sig, sig + sig.replace(b"t=1100", b"t=1301"))  # one beyond the skew: none taken
    assert _lane_run(core, two, None, 300, False, 2)[0] is None
    two = msg.replace(sig, sig + sig.replace(b"t=1100", b"l=1"))
    assert _lane_run(core, two, None, 300, False, 2)[0] is None
    for data in (msg.replace(b"\r\n", b"\n"), b"X: \rb\r\n" + msg, msg + b"x" * 300):
        assert _lane_run(core, data, None, 300, False)[1:] == (None, [], 0), data  # not the usual message: no clock
    with pytest.raises(TypeError):
        core.lane_start(bytearray(msg), None, 4000, 8, 300, 0, None, 0, {}, None)
    with pytest.raises(ZeroDivisionError):  # what the clock raises
        core.lane_start(msg, None, 4000, 8, 300, None, lambda: 1 / 0, 0, {}, None)
    for statics in (None, collections.OrderedDict()):
        with pytest.raises(TypeError):
            core.lane_start(msg, None, 4000, 8, 300, 0, None, 0, statics, None)

    def meddling(key: tuple, tags: dict) -> tuple:  # a static_of that changes the tags
        tags["t"] = "1100"
        return ("ok",)

    assert core.lane_start(msg, None, 4000, 8, 300, 1000, None, 300, {}, meddling) == (None, 1000)


def _lane_end_run(core, block, body, relaxed_b, hash_name, right, names, own, relaxed_h, skip):
    index = core.HeaderIndex(block, None, True)
    bh = core.body_digest(body, relaxed_b, None, False, hash_name)[0]
    return core.lane_end(index, body, relaxed_b, hash_name, bh if right else bh[::-1], names, own, relaxed_h, skip)


@SETTINGS
@given(fields=st.lists(st.tuples(st.sampled_from([b"From", b"to", b"X", b"dkim-signature"]), header_blobs),
                       max_size=6),
       body=bodies, relaxed_b=st.booleans(), relaxed_h=st.booleans(), hash_name=st.sampled_from(["sha256", "sha1"]),
       right=st.booleans(), names=st.lists(st.sampled_from([b"from", b"to", b"x", b"y"]), max_size=6),
       own=header_blobs, skip=st.integers(-1, 6))
def test_lane_end_twins_agree(compiled_core, pure_core, fields, body, relaxed_b, relaxed_h, hash_name, right, names,
                              own, skip):
    block = b"".join(n + b":" + v.replace(b"\r", b"").replace(b"\n", b"") + b"\r\n" for n, v in fields) + b"\r\n"
    args = (block, body, relaxed_b, hash_name, right, names, own, relaxed_h, skip)
    got = _lane_end_run(compiled_core, *args)
    assert got == _lane_end_run(pure_core, *args)
    if not right:
        assert got is None
    else:
        data = pure_core.HeaderIndex(block, None, True).hash_input(names, own, relaxed_h, skip)
        assert got == (data if hash_name == "sha1" else hashlib.sha256(data).digest())


def test_lane_end_examples(core):
    block = b"From: a\r\nTo:  b \r\n\r\n"
    index = core.HeaderIndex(block, None, True)
    bh = core.body_digest(b"hi  there \r\n\r\n", True)[0]
    got = core.lane_end(index, b"hi there\r\n", True, "sha256", bh, [b"to", b"from"], b"DKIM-Signature: b=", True, -1)
    assert got == hashlib.sha256(b"to:b\r\nfrom:a\r\ndkim-signature:b=").digest()
    assert core.lane_end(index, b"hi  there\r\n", False, "sha256", bh, [b"to"], b"X: y", True, -1) is None
    sha1 = core.body_digest(b"", False, None, False, "sha1")[0]
    assert core.lane_end(index, b"", False, "sha1", sha1, [b"to"], b"X: y", False, 1) == b"X: y"
    assert core.lane_end(index, b"", False, "sha1", sha1, [b"to"], b"X: y", False, -1) == b"To:  b \r\nX: y"
    with pytest.raises(ValueError, match="hash_name"):
        core.lane_end(index, b"", False, "md5", sha1, [b"to"], b"X: y", False, -1)
    with pytest.raises(TypeError):
        core.lane_end(index, "text", False, "sha256", sha1, [b"to"], b"X: y", False, -1)
    with pytest.raises(TypeError):
        core.lane_end(index, b"", False, "sha1", sha1, ["to"], b"X: y", False, -1)


@SETTINGS
@given(fields=st.lists(header_blobs, max_size=6), own=header_blobs, relaxed=st.booleans())
def test_canonical_headers_twins_agree(compiled_core, pure_core, fields, own, relaxed):
    got = compiled_core.canonical_headers(fields, own, relaxed)
    assert got == pure_core.canonical_headers(fields, own, relaxed)
    names = [b"n%d" % i for i in range(len(fields))]
    # header_hash_input is the selection followed by this
    assert compiled_core.header_hash_input(list(zip(names, fields)), names[::-1], own, relaxed) == \
        pure_core.canonical_headers(fields[::-1], own, relaxed)


@SETTINGS
@given(fields=field_lists, names=st.lists(st.sampled_from([b"from", b"to", b"subject", b"date", b"x"]), max_size=80),
       own=header_blobs, relaxed=st.booleans(), shape=st.sampled_from(["list", "tuple", "gen", "lists"]))
def test_header_hash_input_any_sequence_and_long_h(compiled_core, pure_core, fields, names, own, relaxed, shape):
    # long h= lists and other containers take the general selection path
    want = pure_core.header_hash_input(fields, names, own, relaxed)
    if shape == "tuple":
        args = (tuple(fields), tuple(names))
    elif shape == "gen":
        args = ((f for f in fields), iter(names))
    elif shape == "lists":
        args = ([list(f) for f in fields], list(names))
    else:
        args = (fields, names)
    assert compiled_core.header_hash_input(args[0], args[1], own, relaxed) == want


@pytest.mark.parametrize("col, width", [(-1, 78), (0, 8), (0, 70000), (70000, 78), (-(2 ** 62), 2 ** 62)])
def test_fold_base64_refuses_out_of_range_columns(core, col, width):
    with pytest.raises((ValueError, OverflowError)):
        core.fold_base64(b"abc", col, width)


def test_bytes_like_fields_and_non_buffers(core):
    assert core.canonical_headers([bytearray(b"A: b\r\n")], b"X: y\r\n", True) == b"a:b\r\nx:y"
    with pytest.raises(TypeError):
        core.b64decode(5)


# -- the header block as an index --------------------------------------------------

INDEX_TOKENS = HEADER_TOKENS + [b"From", b"TO", b"to", b"From:", b"\r\nTo:", b"\r\nfrom :", b"\r\nSubject:"]
index_blocks = st.one_of(_token_strings(INDEX_TOKENS, 40), st.binary(max_size=60))
index_names = st.lists(st.sampled_from([b"from", b"to", b"subject", b"x-y", b"", b"From", b"a"]), max_size=12)


def _index_outcome(fn, *args):
    try:
        return ("ok", fn(*args))
    except (ValueError, IndexError, TypeError) as exc:
        return (type(exc).__name__, str(exc))


@SETTINGS
@given(block=index_blocks, max_fields=st.one_of(st.none(), st.integers(0, 6)), kind=st.integers(0, 2))
def test_header_index_splits_as_split_header_fields(compiled_core, pure_core, block, max_fields, kind):
    want = _index_outcome(pure_core.split_header_fields, block, max_fields)
    for mod in (compiled_core, pure_core):
        got = _index_outcome(mod.HeaderIndex, _as_type(block, kind), max_fields)
        assert got[0] == want[0]
        if want[0] != "ok":
            assert got == want
            continue
        ix = got[1]
        assert ix.fields() == want[1] and len(ix) == len(want[1])
        assert [ix.raw(i) for i in range(len(ix))] == [raw for _, raw in want[1]]
        assert ix.names_key() == b"".join(name + b":" for name, _ in want[1])
        for name in (b"from", b"to", b"", b"subject"):
            assert ix.find(name) == [i for i, (n, _) in enumerate(want[1]) if n == name]
        bare, bad = pure_core.bare_line_break(block, False), pure_core.bad_field_line(block)
        assert ix.defect() == ((1, bare) if bare >= 0 else (2, bad) if bad >= 0 else (0, -1))


@SETTINGS
@given(data=st.one_of(index_blocks, st.tuples(index_blocks, bodies).map(b"\r\n\r\n".join)),
       max_fields=st.one_of(st.none(), st.integers(0, 6)))
def test_header_index_of_a_whole_message(compiled_core, pure_core, data, max_fields):
    # made of a whole message: the header block before the first empty line, as read_message cuts it
    start = pure_core.find_body_start(data, False)
    block = data if start < 0 else data[:start - 2]
    want = _index_outcome(pure_core.HeaderIndex, block, max_fields)
    for mod in (compiled_core, pure_core):
        got = _index_outcome(mod.HeaderIndex, data, max_fields, True)
        assert got[0] == want[0]
        if want[0] != "ok":
            assert got == want
            continue
        ix, ref = got[1], want[1]
        assert ix.body_start() == start and ref.body_start() == -1
        assert ix.fields() == ref.fields() and ix.defect() == ref.defect() and ix.names_key() == ref.names_key()
        names = [b"from", b"to", b"to", b"subject"]
        assert ix.hash_input(names, b"S: b=", True) == ref.hash_input(names, b"S: b=", True)


@SETTINGS
@given(block=index_blocks, names=index_names, own=header_blobs, relaxed=st.booleans(), skip=st.integers(-2, 8),
       data=st.data())
def test_header_index_selection_twins_agree(compiled_core, pure_core, block, names, own, relaxed, skip, data):
    c, p = compiled_core.HeaderIndex(block), pure_core.HeaderIndex(block)
    fields = pure_core.split_header_fields(block)
    got = c.hash_input(names, own, relaxed, skip)
    assert got == p.hash_input(names, own, relaxed, skip)
    kept = [f for i, f in enumerate(fields) if i != skip]
    assert got == pure_core.header_hash_input(kept, names, own, relaxed)
    if skip == -1:
        assert c.hash_input(names, own, relaxed) == compiled_core.header_hash_input(fields, names, own, relaxed)
    positions = data.draw(st.lists(st.integers(-1, len(fields)), max_size=6), label="positions")
    for fn in ("take", "raw_each"):
        if fn == "take":
            a, b = _index_outcome(c.take, positions), _index_outcome(p.take, positions)
        else:
            a = [_index_outcome(c.raw, i) for i in positions]
            b = [_index_outcome(p.raw, i) for i in positions]
        assert a == b
    assert _index_outcome(c.canonical, positions, own, relaxed) == _index_outcome(p.canonical, positions, own, relaxed)
    if all(0 <= i < len(fields) for i in positions):
        assert c.canonical(positions, own, relaxed) == \
            pure_core.canonical_headers([fields[i][1] for i in positions], own, relaxed)


def test_header_index_examples(core):
    block = b"From: a\r\nTo: b\r\n c\r\nno colon\r\nSubject : s\r\nTO: d\r\n"
    ix = core.HeaderIndex(block)
    assert len(ix) == 5 and ix.names_key() == b"from:to::subject:to:"
    assert ix.find(b"to") == [1, 4] and ix.find(b"TO") == [] and ix.find(b"") == [2]
    own = b"DKIM-Signature: b=\r\n"
    # bottom-up, one instance per entry, surplus entries add nothing; the skipped field is no candidate
    assert ix.hash_input([b"to", b"to", b"to", b"from"], own, False) == (
        b"TO: d\r\nTo: b\r\n c\r\nFrom: a\r\nDKIM-Signature: b=")
    assert ix.hash_input([b"to", b"from"], own, True, 4) == b"to:b c\r\nfrom:a\r\ndkim-signature:b="
    assert ix.canonical([4, 0], own, True) == b"to:d\r\nfrom:a\r\ndkim-signature:b="
    assert core.HeaderIndex(b"").fields() == [] and core.HeaderIndex(b"").names_key() == b""
    assert ix.body_start() == -1
    whole = core.HeaderIndex(b"A: b\r\n c\r\n\r\nB: body\r\n\r\n", None, True)
    assert whole.body_start() == 12 and whole.fields() == [(b"a", b"A: b\r\n c\r\n")]
    assert core.HeaderIndex(b"\r\nA: b\r\n", None, True).body_start() == 2
    assert core.HeaderIndex(b"\r\nA: b\r\n", None, True).fields() == []
    assert ix.defect() == (2, 20)  # "no colon"
    assert core.HeaderIndex(b"A: b\r\nC: d\re\r\nno colon\r\n").defect() == (1, 10)
    assert core.HeaderIndex(b"A: b\r\n\tc\nd\r\n").defect() == (1, 8)
    assert core.HeaderIndex(b"A: b\r\n c\r\nB:\r\n").defect() == (0, -1)
    assert core.HeaderIndex(b" A: b\r\n").defect() == (2, 0)
    with pytest.raises(ValueError, match="more than 2 header fields"):
        core.HeaderIndex(block, 2)
    with pytest.raises(ValueError):
        core.HeaderIndex(block, -1)
    with pytest.raises(IndexError):
        ix.raw(5)
    with pytest.raises(IndexError):
        ix.take([0, -1])
    with pytest.raises(TypeError):
        ix.find("to")
    with pytest.raises(TypeError):
        ix.hash_input(["to"], own, True)


def test_header_index_many_fields_and_names(core):
    # many distinct h= names over many fields: each name's instances taken bottom-up
    fields = [b"X-%d: v%d\r\n" % (i % 97, i) for i in range(3000)]
    block = b"".join(fields)
    names = [b"x-%d" % (i % 300) for i in range(600)]
    ix = core.HeaderIndex(block)
    want = core.header_hash_input(core.split_header_fields(block), names, b"S: b=", True)
    assert ix.hash_input(names, b"S: b=", True) == want


RELAXED_TOKENS = [b"word", b"W", b" ", b"  ", b"\t", b" \t ", b"\r\n ", b"\r\n\t", b"\r\n", b"\r", b"\n", b":",
                  b" : ", b"\x80", b"\xff", b"x-Y", b"\x00", b"\x7f", b"!", b"~"]
long_fields = st.lists(st.sampled_from(RELAXED_TOKENS), max_size=200).map(b"".join)


@SETTINGS
@given(field=long_fields, more=st.lists(long_fields, max_size=4))
def test_relaxed_header_long_fields_twins_agree(compiled_core, pure_core, field, more):
    # long runs of words, whitespace and folding reach the copying loops of the compiled core
    assert compiled_core.relaxed_header(field) == pure_core.relaxed_header(field)
    fields = [field] + more
    assert compiled_core.canonical_headers(fields, field, True) == pure_core.canonical_headers(fields, field, True)
    block = b"".join(f if f.endswith(b"\r\n") else f + b"\r\n" for f in fields)
    ix, ref = compiled_core.HeaderIndex(block), pure_core.HeaderIndex(block)
    names = [b"word", b"w", b"x-y", b"", b"word"]
    assert ix.hash_input(names, field, True) == ref.hash_input(names, field, True)
    assert ix.canonical(list(range(len(ix))), field, True) == ref.canonical(list(range(len(ref))), field, True)


# -- body_digest: a whole body canonicalized and hashed in one call -----------------


@pytest.mark.parametrize("hash_name", HASH_NAMES)
@SETTINGS
@given(body=bodies, relaxed=st.booleans(), bare_lf=st.booleans(), data=st.data())
def test_body_digest_twins_agree(compiled_core, pure_core, hash_name, body, relaxed, bare_lf, data):
    canon = pure_core.canonicalize_body(body, relaxed, bare_lf)
    limit = data.draw(st.one_of(st.none(), st.integers(0, len(canon) + 3)), label="limit")
    kind = data.draw(st.integers(0, 2), label="buffer type")
    want = (hashlib.new(hash_name, canon if limit is None else canon[:limit]).digest(), len(canon))
    assert pure_core.body_digest(body, relaxed, limit, bare_lf, hash_name) == want
    assert compiled_core.body_digest(_as_type(body, kind), relaxed, limit, bare_lf, hash_name) == want
    h = compiled_core.BodyHasher(relaxed, limit, bare_lf, hash_name)
    h.update(body)
    assert (h.digest(), h.length) == want


def test_body_digest_refuses_what_a_hasher_refuses(core):
    for kwargs in ({"limit": -1}, {"hash_name": "md5"}):
        with pytest.raises(ValueError):
            core.BodyHasher(True, **kwargs)
        with pytest.raises(ValueError):
            core.body_digest(b"x\r\n", True, **kwargs)
    with pytest.raises(TypeError):
        core.body_digest("text", True)  # type: ignore[arg-type]


@pytest.mark.parametrize("size", [0, 1, 55, 64, 16383, 16384, 16385, 100_000])
def test_body_digest_sizes_around_the_kept_context(core, size):
    """The compiled core hashes up to 16 KiB on one kept OpenSSL context and
    longer inputs on a context of their own without the GIL: every size,
    with and without l=, is hashlib's SHA-256 of the canonical body."""
    body = (b"ab  c \r\n" * (size // 8 + 1))[:size]
    canon = core.canonicalize_body(body, False)
    for limit in (None, 0, size // 2, size + 10):
        want = hashlib.sha256(canon if limit is None else canon[:limit]).digest()
        assert core.body_digest(body, False, limit) == (want, len(canon)), limit


# -- what is not bytes-like -------------------------------------------------------------

_NOT_OCTETS = [7, 0, 2.5, "text", None, object()]


def _octet_taking_calls(core, bad):
    """Every core entry that takes octets, given ``bad`` where the octets go."""
    field = b"DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=s; h=from; bh=; b="
    return {
        "canonicalize_body": lambda: core.canonicalize_body(bad, True),
        "body_digest": lambda: core.body_digest(bad, True),
        "relaxed_header": lambda: core.relaxed_header(bad),
        "find_body_start": lambda: core.find_body_start(bad),
        "split_header_fields": lambda: core.split_header_fields(bad),
        "bare_line_break": lambda: core.bare_line_break(bad, False),
        "bad_field_line": lambda: core.bad_field_line(bad),
        "normalize_line_endings": lambda: core.normalize_line_endings(bad),
        "parse_tag_list": lambda: core.parse_tag_list(bad),
        "parse_signature": lambda: core.parse_signature(bad),
        "usable_signature": lambda: core.usable_signature(bad),
        "canonical_headers field": lambda: core.canonical_headers([bad], field, True),
        "canonical_headers own": lambda: core.canonical_headers([b"From: a\r\n"], bad, False),
        "header_hash_input own": lambda: core.header_hash_input([(b"from", b"From: a\r\n")], [b"from"], bad, True),
        "HeaderIndex": lambda: core.HeaderIndex(bad),
        "BodyCanonicalizer.update": lambda: core.BodyCanonicalizer(True).update(bad),
        "BodyHasher.update": lambda: core.BodyHasher(True).update(bad),
    }


@pytest.mark.parametrize("bad", _NOT_OCTETS, ids=lambda v: type(v).__name__)
def test_what_is_not_bytes_like_is_a_type_error_in_both_cores(core, bad):
    """An int is not five NULs (``bytes(5)``), nor a str its encoding: every
    entry that takes octets refuses what has no buffer protocol, in the
    same words in both cores."""
    for name, call in _octet_taking_calls(core, bad).items():
        with pytest.raises(TypeError) as exc:
            call()
        assert str(exc.value) == "a bytes-like object is required, not '%s'" % type(bad).__name__, name


def test_bytes_like_objects_are_taken_as_their_octets(core):
    data = b"From: a\r\n\r\nbody  \r\n"
    for form in (bytearray(data), memoryview(data)):
        assert core.canonicalize_body(form, True) == core.canonicalize_body(data, True)
        assert core.find_body_start(form) == core.find_body_start(data)
        assert core.HeaderIndex(form[:9]).fields() == core.HeaderIndex(data[:9]).fields()
