"""Reading messages (fastdkim.message): the header block as fields, the body as
a stream of chunks, the line-ending form, and the limits.

Every kind of input (bytes, bytearray, memoryview, a binary file) gives the
same answer; bad input is a :class:`MessageFormatError` or a
:class:`TypeError`, never anything else.  Each test runs with each core.
"""
from __future__ import annotations

import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastdkim
from fastdkim.errors import HeaderTooLarge, MessageFormatError, TooManyHeaderFields
from fastdkim.message import CHUNK, ParsedMessage, is_file, read_message, read_usual

from helpers import NEWSLETTER, SMUGGLED

pytestmark = pytest.mark.usefixtures("core")

FORMS = {
    "bytes": bytes,
    "bytearray": bytearray,
    "memoryview": memoryview,
    "BytesIO": io.BytesIO,
}


@pytest.fixture(scope="module")
def signed(rsa_key):
    return fastdkim.Signer("example.com", "rsa", rsa_key).sign_message(NEWSLETTER)


def _read(data: bytes, form: str, **opts) -> ParsedMessage:
    return read_message(FORMS[form](data), **opts)


def _outcome(pm: ParsedMessage):
    """Everything a reader sees of a parsed message (the body joined)."""
    return pm.fields, b"".join(bytes(c) for c in pm.body), pm.lf_endings, pm.bare_lf, pm.malformed


# -- moved here from the bare line break tests: malformed is reported, not raised --


def test_read_message_reports_without_raising(signed):
    pm = read_message(SMUGGLED + signed)
    assert pm.malformed is not None and pm.malformed.startswith("bare LF at offset 30 in the header block")
    assert "RFC 5322" in pm.malformed and not pm.bare_lf
    assert read_message(signed).malformed is None
    assert read_message(signed.replace(b"\r\n", b"\n")).malformed is None
    # only the header block counts: bare CR and LF in the body are content
    assert read_message(NEWSLETTER + b"odd\rline\nhere\r\n").malformed is None


# -- shapes of a message --------------------------------------------------------------


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("data, fields, body", [
    (b"", [], b""),
    (b"\r\n", [], b""),
    (b"\r\nbody only", [], b"body only"),
    (b"From: a", [(b"from", b"From: a")], b""),  # no line ending at all
    (b"From: a\r\n", [(b"from", b"From: a\r\n")], b""),  # no empty line
    (b"From: a\r\n\r\n", [(b"from", b"From: a\r\n")], b""),
    (b"From: a\r\nSUBJECT:x\r\n\r\nbody\r\n\r\n", [(b"from", b"From: a\r\n"), (b"subject", b"SUBJECT:x\r\n")],
     b"body\r\n\r\n"),
    (b"A: 1\r\n B\r\n\t C\r\n\r\nb", [(b"a", b"A: 1\r\n B\r\n\t C\r\n")], b"b"),  # folding stays in the field
])
def test_fields_and_body_of_wire_form_messages(form, data, fields, body):
    pm = _read(data, form)
    assert _outcome(pm) == (fields, body, False, False, None)


@pytest.mark.parametrize("form", FORMS)
def test_lf_mail_is_recognised_by_its_first_line(form):
    pm = _read(b"From: a\nTo: b\n c\n\nbody\nmore\n", form)
    # the fields in wire form; the body as stored (the body canonicalizer handles the LFs)
    assert _outcome(pm) == ([(b"from", b"From: a\r\n"), (b"to", b"To: b\r\n c\r\n")], b"body\nmore\n", True, True, None)
    assert _outcome(_read(b"\n", form))[2:] == (True, True, None)  # an empty line first: LF mail
    # a first line in wire form makes every later bare LF content of a malformed block
    pm = _read(b"From: a\r\nX: b\n\nbody", form)
    assert not pm.bare_lf and pm.malformed is not None and "bare LF at offset 13" in pm.malformed


@pytest.mark.parametrize("form", FORMS)
def test_bare_lf_option_overrides_the_first_line(form):
    pm = _read(b"From: a\n\nbody\n", form, bare_lf=False)
    assert not pm.bare_lf and pm.malformed is not None and pm.malformed.startswith("bare LF at offset 7")
    pm = _read(b"From: a\r\n\r\nbo\ndy\n", form, bare_lf=True)
    assert pm.bare_lf and not pm.lf_endings and pm.malformed is None
    assert b"".join(bytes(c) for c in pm.body) == b"bo\ndy\n"


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("head, what", [
    (b"no colon\r\n", "a line without a colon"),
    (b" x: y\r\n", "its first line is a continuation line"),
    (b"X Y: z\r\n", "not a field name"),
    (b"A: 1\rB: 2\r\n", "bare CR at offset 4"),
])
def test_malformed_header_blocks_are_reported_with_the_line(form, head, what):
    pm = _read(head + b"\r\nbody\r\n", form)
    assert pm.malformed is not None and what in pm.malformed


def test_the_bad_line_is_shown_with_every_octet_escaped_alike():
    pm = _read(b"garbage\x00\xff\r\n\r\nbody\r\n", "bytes")
    assert "'garbage\\x00\\xff'" in pm.malformed


def test_a_file_is_read_from_where_it_stands():
    """An mbox reader hands over a file positioned past the envelope line."""
    fh = io.BytesIO(b"From sender@example.com Mon Jan  1 00:00:00 2029\nFrom: a\n\nbody\n")
    fh.readline()
    assert _outcome(read_message(fh)) == ([(b"from", b"From: a\r\n")], b"body\n", True, True, None)


def test_memoryview_of_other_item_sizes_and_shapes():
    import array

    data = b"From: a\r\n\r\nbody!"  # an even length
    want = _outcome(read_message(data))
    assert _outcome(read_message(memoryview(array.array("H", data)))) == want
    assert _outcome(read_message(memoryview(data).cast("B", (2, len(data) // 2)))) == want


def test_large_body_comes_in_bounded_chunks():
    head = b"From: a\r\n\r\n"
    body = bytes(range(256)) * ((3 * CHUNK + 5) // 256 + 1)
    for form in FORMS:
        chunks = [bytes(c) for c in _read(head + body, form).body]
        assert b"".join(chunks) == body, form
        assert len(chunks) > 1 and max(len(c) for c in chunks) <= CHUNK, form


# -- limits and bad input --------------------------------------------------------------


@pytest.mark.parametrize("form", FORMS)
def test_header_block_size_limit(form):
    msg = b"From: " + b"x" * 100 + b"\r\n\r\n" + b"body" * 1000
    with pytest.raises(HeaderTooLarge, match="larger than 50 bytes"):
        _read(msg, form, max_header_bytes=50)
    assert len(_read(msg, form, max_header_bytes=200).fields) == 1  # the body does not count
    with pytest.raises(HeaderTooLarge):
        _read(b"From: " + b"x" * 200_000, form, max_header_bytes=50)  # no end of the header block in sight
    assert issubclass(HeaderTooLarge, MessageFormatError) and issubclass(HeaderTooLarge, ValueError)


@pytest.mark.parametrize("form", FORMS)
def test_header_field_count_limit(form):
    with pytest.raises(TooManyHeaderFields, match="more than 2 fields"):
        _read(b"A: 1\r\nB: 2\r\nC: 3\r\n\r\n", form, max_header_fields=2)
    assert len(_read(b"A: 1\r\nB: 2\r\n\r\nC: 3\r\n", form, max_header_fields=2).fields) == 2


@pytest.mark.parametrize("message", ["From: a\r\n\r\n", 12, None, ["From: a"]])
def test_other_types_are_a_type_error(message):
    with pytest.raises(TypeError, match="bytes-like or a binary file"):
        read_message(message)  # type: ignore[arg-type]


def test_text_mode_files_are_a_type_error(tmp_path):
    with pytest.raises(TypeError, match="binary mode"):
        read_message(io.StringIO("From: a\n\nbody\n"))  # type: ignore[arg-type]
    p = tmp_path / "m.eml"
    p.write_bytes(b"From: a\n\nbody\n")
    with open(p) as fh, pytest.raises(TypeError, match="binary mode"):
        read_message(fh)  # type: ignore[arg-type]

    class TextAfterTheHead(io.RawIOBase):
        """A file that turns to text once the header block is read."""

        def __init__(self) -> None:
            self.reads = 0

        def readable(self) -> bool:
            return True

        def read(self, n=-1):
            self.reads += 1
            return {1: b"From: a\r\n\r\n", 2: "body"}.get(self.reads, b"")

    pm = read_message(TextAfterTheHead())
    with pytest.raises(TypeError, match="binary mode"):
        list(pm.body)


def test_is_file():
    assert is_file(io.BytesIO()) and is_file(io.StringIO())
    assert not any(is_file(x) for x in (b"", bytearray(), memoryview(b""), "text", 5))


# -- every form agrees ---------------------------------------------------------------------

TOKENS = [b"From: a", b"X: 1", b"\r\n", b"\n", b"\r", b" ", b"\t", b":", b"body", b"\r\n\r\n", b"\n\n", b"\xe9", b"x y"]


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.lists(st.sampled_from(TOKENS), max_size=30).map(b"".join), bare_lf=st.sampled_from([None, False, True]))
def test_every_input_form_reads_the_same(data, bare_lf):
    try:
        want = _outcome(read_message(data, bare_lf=bare_lf))
    except MessageFormatError as exc:  # (a limit: not with these sizes, but the forms must agree on it too)
        want = type(exc)
    for form in ("bytearray", "memoryview", "BytesIO"):
        try:
            got = _outcome(_read(data, form, bare_lf=bare_lf))
        except MessageFormatError as exc:
            got = type(exc)
        assert got == want, form
    if isinstance(want, tuple):
        fields, body = want[0], want[1]
        assert all(name == name.lower() for name, _ in fields)
        assert body == b"" or data.endswith(body)


@pytest.mark.parametrize("bare_lf", [None, False, True])
@pytest.mark.parametrize("message", [
    b"From: a\r\nTo: b\r\n\r\nbody\r\n",
    b"From: a\r\nTo: b\r\n",                                   # no body
    b"From: a\r\nTo: b\r\n\r\n",                               # an empty one
    b"From: a\nTo: b\n\nbody\n",                               # LF mail
    b"\nFrom: a\r\n\r\nbody",
    b"From: a\r\nTo: b\rc\r\n\r\nbody\r\n",                    # bare CR
    b"From: a\r\nTo: b\nc\r\n\r\nbody\r\n",                    # bare LF in wire form
    b" From: a\r\n\r\nbody\r\n",                               # a continuation line first
    b"From: a\r\nno colon\r\n\r\nbody\r\n",
    b"From: a\r\n\r\n" + b"x" * 20000,                         # a large body
    b"From: a\r\n\r\n" + b"x" * 16384,
])
def test_read_usual_reads_as_read_message(message, bare_lf):
    got = read_usual(message, bare_lf)
    pm = read_message(message, bare_lf=bare_lf)
    if got is None:
        # what the lanes leave to the general reading: other forms, defects, large bodies
        assert pm.malformed is not None or pm.bare_lf or len(b"".join(pm.body)) > 16384
        return
    index, body = got
    assert pm.malformed is None and not pm.bare_lf and not pm.lf_endings
    assert index.fields() == pm.fields
    assert body == b"".join(pm.body)
