"""The synthetic-mail generator (fastdkim.mailgen), and signed copies written with _files.write_signed."""
from __future__ import annotations

import base64
import binascii
import io

import pytest

import fastdkim
from fastdkim import mailgen
from fastdkim._files import write_signed
from fastdkim.mailgen import generate_corpus
from fastdkim.message import read_message


def test_same_arguments_same_messages():
    a = list(generate_corpus(30, seed=5, max_size=40000))
    assert a == list(generate_corpus(30, seed=5, max_size=40000))
    assert len(a) == 30 and len(set(a)) == 30
    assert a != list(generate_corpus(30, seed=6, max_size=40000))
    assert a[:10] == list(generate_corpus(10, seed=5, max_size=40000))  # a prefix of a longer corpus


def test_messages_are_realistic_and_in_wire_form():
    corpus = list(generate_corpus(60, seed=2, min_size=2048, max_size=30000))
    kinds = set()
    for m in corpus:
        head = m[:m.index(b"\r\n\r\n") + 2]
        assert b"\n" not in head.replace(b"\r\n", b"")  # a header block in wire form
        assert len(m) < 30000 + 6000
        pm = read_message(m)
        names = [n for n, _ in pm.fields]
        assert pm.malformed is None and names.count(b"from") == 1 and b"to" in names
        ctype = dict(pm.fields)[b"content-type"]
        kinds.add(ctype.split(b":", 1)[1].split(b";")[0].strip())  # (a field is held whole: name and value)
    assert kinds == {b"text/plain", b"text/html", b"multipart/mixed"}


def test_generated_mail_signed_through_write_signed_verifies():
    key = fastdkim.generate_private_key("ed25519")
    signer = fastdkim.Signer("example.com", "ed", key)
    keys = {"ed._domainkey.example.com": fastdkim.public_key_record(key)}
    for m in generate_corpus(8, seed=9, max_size=20000):
        src = io.BytesIO(m)
        header = signer.sign(src)
        src.seek(0)
        out = io.BytesIO()
        write_signed(out, header, src)
        assert out.getvalue() == header + m
        assert [r.status for r in fastdkim.verify(out.getvalue(), keys=keys)] == ["pass"]


# -- bodies, header blocks and messages of a given shape -------------------------------------

@pytest.mark.parametrize("kind", mailgen.BODY_KINDS)
@pytest.mark.parametrize("size", [3000, 100_000])
def test_body_size_wire_form_and_determinism(kind, size):
    b = mailgen.body(kind, size)
    assert b == mailgen.body(kind, size)
    assert b != mailgen.body(kind, size, seed=99)
    assert b.endswith(b"\r\n") and b"\n" not in b.replace(b"\r\n", b"") and b"\r" not in b.replace(b"\r\n", b"")
    lines = b.split(b"\r\n")
    assert abs(len(b) - size) <= max(len(x) for x in lines) + 4  # within a line of the size asked for


def test_body_kinds_have_their_shape():
    ws = mailgen.body("whitespace", 50_000).split(b"\r\n")
    assert any(x.endswith(b" ") for x in ws) and any(x.startswith(b"\t") for x in ws)
    assert any(x and not x.strip() for x in ws)  # blank-only lines
    html = mailgen.body("html", 50_000)
    assert html.startswith(b"<!DOCTYPE html>") and b"=3D" in html and b"=\r\n" in html
    binascii.a2b_qp(html)
    b64 = mailgen.body("base64", 50_000).split(b"\r\n")[:-1]
    assert all(len(x) == 76 for x in b64[:-1]) and 0 < len(b64[-1]) <= 76
    base64.b64decode(b"".join(b64), validate=True)
    plain = mailgen.body("plain", 50_000)
    assert b"\r\n> " in plain and b"\r\n-- \r\n" in plain and "ß".encode() in plain
    mixed = mailgen.body("mixed", 100_000)
    assert mixed.count(b"Content-Transfer-Encoding: base64") >= 1 and mixed.endswith(b"--=_mixed_6376_8463--\r\n")
    assert b"Content-Disposition: attachment" not in mailgen.body("mixed", 10_000)  # attachments from 20 KB on


def test_header_fields_count_and_kind():
    for count in (0, 1, 10, 11, 100, 1000):
        fields = mailgen.header_fields(count, "mixed")
        assert len(fields) == count
        pm = read_message(mailgen.assemble(fields, b"x\r\n"))
        assert pm.malformed is None and len(pm.fields) == count
    fields = mailgen.header_fields(100)
    assert fields[0].startswith("From: ") and any("\r\n\t" in f for f in fields)
    assert mailgen.header_fields(100) == fields and mailgen.header_fields(100, seed=1) != fields
    assert 'boundary="=_mixed_6376_8463"' in mailgen.header_fields(10, "mixed")[7]


def test_message_sizes_headers_and_line_endings():
    m = mailgen.message(3000, total=True)
    assert 2800 < len(m) <= 3000
    m = mailgen.message(1000, headers=100, header_seed=7)
    pm = read_message(m)
    assert len(pm.fields) == 100
    head, _, content = m.partition(b"\r\n\r\n")
    assert 900 < len(content) <= 1000
    lf = mailgen.message(1000, headers=100, header_seed=7, line_ending=b"\n")
    assert b"\r" not in lf and lf == m.replace(b"\r\n", b"\n")
    assert len(mailgen.message(100, headers=50, total=True)) > 100  # the header block alone is larger: no body
    for kind in mailgen.BODY_KINDS:
        assert read_message(mailgen.message(5000, kind=kind)).malformed is None


def test_generated_messages_sign_and_verify_in_every_form():
    key = fastdkim.generate_private_key("ed25519")
    keys = {"ed._domainkey.example.com": fastdkim.public_key_record(key)}
    for canon in ("relaxed/relaxed", "simple/simple"):
        signer = fastdkim.Signer("example.com", "ed", key, canonicalization=canon)
        for kind in mailgen.BODY_KINDS:
            for eol in (b"\r\n", b"\n"):
                m = mailgen.message(30_000, kind=kind, headers=30, line_ending=eol)
                assert [r.status for r in fastdkim.verify(signer.sign(m) + m, keys=keys)] == ["pass"], (kind, eol)


def test_header_flood():
    pieces = list(mailgen.iter_header_flood(100_000, piece_size=64 * 1024))
    assert max(len(p) for p in pieces) <= 64 * 1024
    m = b"".join(pieces)
    assert m.startswith(b"From: a@example.com\r\nX:yyyy\r\n") and m.endswith(b"X:yyyy\r\n\r\nbody\r\n")
    assert len(m) == 21 + 100_000 * 8 + 8
    no_end = b"".join(mailgen.iter_header_flood(1000, end=False))
    assert no_end.endswith(b"X:yyyy\r\n") and b"\r\n\r\n" not in no_end
    lf = b"".join(mailgen.iter_header_flood(1000, line_ending=b"\n"))
    assert b"\r" not in lf and lf.count(b"X:yyyyy\n") == 1000 and lf.endswith(b"\n\nbody\n")
    big = b"".join(mailgen.iter_header_flood(10, field_size=3000))
    pm = read_message(big)
    assert pm.malformed is None and len(pm.fields) == 11 and all(len(r) == 3000 for n, r in pm.fields[1:])  # (a field is held whole, CRLF included)
    assert b"".join(mailgen.iter_header_flood(0)) == b"From: a@example.com\r\n\r\nbody\r\n"


@pytest.mark.parametrize("call", [
    lambda: mailgen.body("pdf", 100),
    lambda: mailgen.body("plain", -1),
    lambda: mailgen.header_fields(-1),
    lambda: mailgen.header_fields(5, "rtf"),
    lambda: mailgen.message(100, line_ending=b"\r"),
    lambda: mailgen.assemble([], b"", line_ending=b"\n\r"),
    lambda: list(mailgen.iter_header_flood(10, field_size=3)),
    lambda: list(mailgen.iter_header_flood(10, field_size=4, line_ending=b"\n", piece_size=0)),
    lambda: list(mailgen.iter_header_flood(-1)),
])
def test_bad_arguments_raise_value_error(call):
    with pytest.raises(ValueError):
        call()
