"""The synthetic-mail generator (fastdkim.mailgen), and signed copies written with _files.write_signed."""
from __future__ import annotations

import io

import fastdkim
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
