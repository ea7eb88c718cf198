"""Bare CR and bare LF in the header block (RFC 5322 section 2.2).

CR and LF may appear in a header block only together, as CRLF.  Parsers that
take a lone LF (or CR) for a line break would otherwise read header fields that
fastdkim never saw: a From above or below the signature, an early end of the
header block.  Such a message is malformed: every signature is ``permerror``,
and signing refuses it.  Whether a message is LF mail (bare LF is its line
ending) or in wire form is decided by its first line, the same way for bytes
and for files.
"""
from __future__ import annotations

import email
import email.policy
import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastdkim
from fastdkim.errors import MessageFormatError
from fastdkim.keys import public_key_record, zone_file_line
from fastdkim.message import MAX_HEADER_FIELDS, TooManyHeaderFields, read_message

from helpers import NEWSLETTER, SMUGGLED, keys_for
from helpers_cli import run

pytestmark = pytest.mark.usefixtures("core")

KINDS = ["bytes", "bytearray", "memoryview", "BytesIO", "file", "Verifier"]


@pytest.fixture(scope="module")
def records(rsa_key):
    return keys_for("example.com", "rsa", rsa_key)


@pytest.fixture(scope="module")
def signed(rsa_key):
    return fastdkim.Signer("example.com", "rsa", rsa_key).sign_message(NEWSLETTER)


def verify_as(kind, data, records, tmp_path, **opts):
    """verify() with ``data`` given as ``kind``."""
    if kind == "bytes":
        return fastdkim.verify(data, keys=records, **opts)
    if kind == "bytearray":
        return fastdkim.verify(bytearray(data), keys=records, **opts)
    if kind == "memoryview":
        return fastdkim.verify(memoryview(data), keys=records, **opts)
    if kind == "BytesIO":
        return fastdkim.verify(io.BytesIO(data), keys=records, **opts)
    if kind == "file":
        path = tmp_path / "message.eml"
        path.write_bytes(data)
        with open(path, "rb") as fh:
            return fastdkim.verify(fh, keys=records, **opts)
    assert kind == "Verifier"
    return fastdkim.Verifier(keys=records, **opts).verify(data)


def assert_permerror(results, what="bare LF", count=1):
    assert len(results) == count, results
    for r in results:
        assert r.status == "permerror", (r.status, r.reason)
        assert what in r.reason and "header block" in r.reason, r.reason


def after_signature(signed, insert):
    """``signed`` with ``insert`` placed right below its DKIM-Signature field."""
    at = signed.index(b"\r\nFrom: alice") + 2
    return signed[:at] + insert + signed[at:]


# -- the smuggling, in every input form ------------------------------------------


def test_reproduction_is_what_other_parsers_see(signed):
    evil = SMUGGLED + signed
    m = email.message_from_bytes(evil, policy=email.policy.default)
    assert str(m["From"]) == "CEO <ceo@example.com>" and str(m["Subject"]) == "urgent"
    assert m.get_content().startswith("Please wire $10k today.\n")


@pytest.mark.parametrize("kind", KINDS)
def test_smuggled_fields_above_the_signature_are_permerror(kind, signed, records, tmp_path):
    assert verify_as(kind, signed, records, tmp_path)[0].status == "pass"
    [r] = verify_as(kind, SMUGGLED + signed, records, tmp_path)
    assert_permerror([r])
    assert "offset 30" in r.reason  # the LF that ends "X-Relay: 1"
    assert (r.domain, r.selector, r.algorithm, r.index) == ("example.com", "rsa", "rsa-sha256", 0)


@pytest.mark.parametrize("kind", KINDS)
def test_smuggled_fields_below_the_signature_are_permerror(kind, signed, records, tmp_path):
    evil = after_signature(signed, b"X-Relay: 1\nFrom: CEO <ceo@example.com>\nSubject: urgent\n\n"
                                   b"Please wire $10k today.\n\r\n")
    m = email.message_from_bytes(evil, policy=email.policy.default)
    assert str(m["From"]) == "CEO <ceo@example.com>"
    assert_permerror(verify_as(kind, evil, records, tmp_path))


@pytest.mark.parametrize("kind", KINDS)
def test_empty_lf_line_cutting_the_header_block_short(kind, signed, records, tmp_path):
    evil = after_signature(signed, b"X-Spam: no\n\n")
    m = email.message_from_bytes(evil, policy=email.policy.default)
    assert m["From"] is None and "From: alice" in m.get_content()  # the signed fields became body
    assert_permerror(verify_as(kind, evil, records, tmp_path))
    # At the very top, below a first line in wire form, the signature's first
    # line joins the X-Spam line as wire form reads it (lines only at CRLF);
    # it is still reported, as the parsers that break lines at LF see it.
    assert_permerror(verify_as(kind, b"Received: by relay\r\nX-Spam: no\n\n" + signed, records, tmp_path))
    assert_permerror(verify_as(kind, b"Received: by relay\r\nX-Spam: no\n\n\r\n" + signed, records, tmp_path))


@pytest.mark.parametrize("kind", KINDS)
def test_bare_cr_is_malformed_in_wire_form(kind, signed, records, tmp_path):
    evil = b"Received: by relay\r\nX: a\rFrom: CEO <ceo@example.com>\r\n" + signed
    assert_permerror(verify_as(kind, evil, records, tmp_path), "bare CR")
    assert_permerror(verify_as(kind, after_signature(signed, b"X: a\rFrom: CEO <ceo@example.com>\r\n"),
                               records, tmp_path), "bare CR")


@pytest.mark.parametrize("kind", KINDS)
def test_bare_cr_is_malformed_in_lf_mail(kind, rsa_key, records, tmp_path):
    signed = fastdkim.Signer("example.com", "rsa", rsa_key).sign_message(NEWSLETTER.replace(b"\r\n", b"\n"))
    assert b"\r" not in signed and verify_as(kind, signed, records, tmp_path)[0].status == "pass"
    evil = signed.replace(b"\nFrom: alice", b"\nX: a\rFrom: CEO <ceo@example.com>\nFrom: alice")
    assert_permerror(verify_as(kind, evil, records, tmp_path), "bare CR")


@pytest.mark.parametrize("kind", KINDS)
def test_lf_inside_the_b_value(kind, signed, records, tmp_path):
    at = signed.index(b" b=") + 3 + 10
    evil = signed[:at] + b"\n" + signed[at:]
    assert_permerror(verify_as(kind, evil, records, tmp_path))
    # a fold made of a bare LF
    at = signed.index(b"\r\n ", signed.index(b" b="))
    folded = signed[:at] + signed[at + 1:]
    assert_permerror(verify_as(kind, folded, records, tmp_path))


@pytest.mark.parametrize("kind", KINDS)
def test_lf_inside_the_bh_value(kind, signed, records, tmp_path):
    at = signed.index(b"bh=") + 3 + 10
    evil = signed[:at] + b"\n" + signed[at:]
    assert_permerror(verify_as(kind, evil, records, tmp_path))


def test_every_signature_is_permerror_and_nothing_is_looked_up(rsa_key, ed_key, records):
    keys = dict(records, **keys_for("example.com", "ed", ed_key))
    rsa_signer = fastdkim.Signer("example.com", "rsa", rsa_key)
    ed_signer = fastdkim.Signer("example.com", "ed", ed_key)
    signed = b"".join(fastdkim.sign_all(NEWSLETTER, [rsa_signer, ed_signer])) + NEWSLETTER
    assert [r.status for r in fastdkim.verify(signed, keys=keys)] == ["pass", "pass"]
    asked = []

    def lookup(name):
        asked.append(name)
        return keys.get(name)

    results = fastdkim.verify(SMUGGLED + signed, keys=lookup)
    assert_permerror(results, count=2)
    assert [(r.index, r.selector) for r in results] == [(0, "rsa"), (1, "ed")]
    assert asked == []
    # a malformed message without a signature has nothing to report
    assert fastdkim.verify(SMUGGLED + NEWSLETTER, keys=lookup) == []


def test_explicit_bare_lf_option_overrides_the_detection(signed, records):
    evil = SMUGGLED + signed
    # read as LF mail, the header block ends where other parsers end it: no signature there
    assert fastdkim.verify(evil, keys=records, bare_lf=True) == []
    # LF mail read as wire form: its bare LFs are malformed
    lf = signed.replace(b"\r\n", b"\n")
    assert fastdkim.verify(lf, keys=records)[0].status == "pass"
    assert_permerror(fastdkim.verify(lf, keys=records, bare_lf=False))


# -- signing refuses a malformed header block --------------------------------------


@pytest.mark.parametrize("evil, what", [
    (b"From: alice@example.com\r\nX: 1\nSubject: hi\r\n\r\nbody\r\n", "bare LF"),
    (b"From: alice@example.com\r\nX: 1\rSubject: hi\r\n\r\nbody\r\n", "bare CR"),
    (b"From: alice@example.com\r\nX: 1\n\nbody\r\n\r\nmore\r\n", "bare LF"),
    (b"From: alice@example.com\nX: 1\rSubject: hi\n\nbody\n", "bare CR"),  # LF mail
    (b"From: alice@example.com\r\nSubject: no body, no end\n", "bare LF"),
])
def test_signing_refuses_bare_line_breaks(rsa_key, tmp_path, evil, what):
    signer = fastdkim.Signer("example.com", "rsa", rsa_key)
    src = tmp_path / "in.eml"
    src.write_bytes(evil)
    attempts = [
        lambda: signer.sign(evil),
        lambda: signer.sign(io.BytesIO(evil)),
        lambda: signer.sign(memoryview(evil)),
        lambda: signer.sign_message(evil),
        lambda: fastdkim.sign_all(evil, [signer]),
        lambda: fastdkim.sign_all(io.BytesIO(evil), [signer]),
        lambda: signer.sign_file(str(src), str(tmp_path / "out.eml")),
    ]
    for attempt in attempts:
        with pytest.raises(MessageFormatError, match=what + " at offset"):
            attempt()
    assert not (tmp_path / "out.eml").exists()


# -- LF mail and wire form: the same answer for bytes and for files ----------------


def test_lf_mail_signs_and_verifies_as_bytes_and_as_file(rsa_key, records, tmp_path):
    signer = fastdkim.Signer("example.com", "rsa", rsa_key)
    lf = NEWSLETTER.replace(b"\r\n", b"\n") + b"second line\n\n\n"
    from_bytes = signer.sign(lf)
    from_file = signer.sign(io.BytesIO(lf))
    assert b"\r" not in from_bytes + from_file
    for header in (from_bytes, from_file):
        msg = header + lf
        for kind in KINDS:
            assert verify_as(kind, msg, records, tmp_path)[0].status == "pass", kind
        assert fastdkim.verify(msg.replace(b"\n", b"\r\n"), keys=records)[0].status == "pass"
    out = tmp_path / "signed.eml"
    signer.sign_file(io.BytesIO(lf), str(out))
    assert b"\r" not in out.read_bytes()
    assert fastdkim.verify(out.read_bytes(), keys=records)[0].status == "pass"


def test_first_lf_beyond_the_first_read_of_a_file(rsa_key, records, tmp_path):
    """The form is decided by the first LF, however far into the file it is."""
    signer = fastdkim.Signer("example.com", "rsa", rsa_key)
    long_line = b"X-Long: " + b"x" * 300_000
    for eol in (b"\n", b"\r\n"):
        msg = long_line + eol + NEWSLETTER.replace(b"\r\n", eol)
        header = signer.sign(io.BytesIO(msg))
        assert header.endswith(eol) and (eol == b"\r\n") == (b"\r" in header)
        for kind in KINDS:
            assert verify_as(kind, header + msg, records, tmp_path)[0].status == "pass", (eol, kind)
        pm = read_message(io.BytesIO(msg))
        assert pm.bare_lf == pm.lf_endings == (eol == b"\n") and pm.malformed is None
    # a wire-form file whose first CRLF is split across two reads
    msg = b"X-Long: " + b"x" * ((1 << 16) - 9) + b"\r\n" + NEWSLETTER
    assert msg[(1 << 16) - 1:(1 << 16) + 1] == b"\r\n"
    pm = read_message(io.BytesIO(msg))
    assert not pm.bare_lf and pm.malformed is None and [n for n, _ in pm.fields][-1] == b"subject"


def test_stray_lf_in_a_wire_body_signed_from_a_file_verifies_as_bytes(rsa_key, records, tmp_path):
    signer = fastdkim.Signer("example.com", "rsa", rsa_key, canonicalization="simple/simple")
    msg = NEWSLETTER + b"odd\nline\r\nend\r\n"
    from_file = signer.sign(io.BytesIO(msg)) + msg
    from_bytes = signer.sign(msg) + msg
    bh = [read_message(m).fields[0][1].split(b"bh=")[1].split(b";")[0] for m in (from_file, from_bytes)]
    assert bh[0] == bh[1]  # the same body hash: the bare LF is content either way
    for signed in (from_file, from_bytes):
        for kind in KINDS:
            assert verify_as(kind, signed, records, tmp_path)[0].status == "pass", kind
        # the bare LF is body content, not a line ending
        assert fastdkim.verify(signed.replace(b"odd\nline", b"odd\r\nline"), keys=records)[0].status == "fail"
    src, dst = tmp_path / "in.eml", tmp_path / "out.eml"
    src.write_bytes(msg)
    signer.sign_file(str(src), str(dst))
    assert fastdkim.verify(dst.read_bytes(), keys=records)[0].status == "pass"


# -- the header field limit ------------------------------------------------------------


def _many_fields(n):
    """A message of exactly ``n`` header fields (From, then X- fields)."""
    return b"From: alice@example.com\r\n" + b"".join(b"X-F%d: v\r\n" % i for i in range(n - 1)) + b"\r\nbody\r\n"


@pytest.mark.parametrize("kind", ["bytes", "memoryview", "BytesIO"])
def test_header_field_limit(kind, ed_key, tmp_path):
    keys = keys_for("example.com", "ed", ed_key)
    signer = fastdkim.Signer("example.com", "ed", ed_key, headers=["from"])
    wrap = {"bytes": bytes, "memoryview": memoryview, "BytesIO": io.BytesIO}[kind]
    assert MAX_HEADER_FIELDS == 10_000
    at_limit = _many_fields(MAX_HEADER_FIELDS - 1)  # the signature makes it 10,000
    signed = signer.sign(wrap(at_limit)) + at_limit
    assert len(read_message(wrap(signed)).fields) == 10_000
    assert fastdkim.verify(wrap(signed), keys=keys)[0].status == "pass"
    over = _many_fields(MAX_HEADER_FIELDS)
    with pytest.raises(MessageFormatError, match="more than a verifier reads"):
        signer.sign(wrap(over))  # signed, its 10,000 fields would be 10,001
    over_signed = signer.sign(wrap(at_limit)) + b"X-Late: 1\r\n" + at_limit  # 10,001 fields
    [r] = fastdkim.verify(wrap(over_signed), keys=keys)
    assert r.status == "permerror" and "more than 10000 fields" in r.reason
    with pytest.raises(TooManyHeaderFields, match="more than 10000 fields"):
        read_message(wrap(over_signed))
    with pytest.raises(MessageFormatError, match="more than 10000 fields"):
        signer.sign(wrap(_many_fields(MAX_HEADER_FIELDS + 1)))
    # LF mail and a header block without an end count the same way
    lf = _many_fields(MAX_HEADER_FIELDS + 1).replace(b"\r\n", b"\n")
    with pytest.raises(TooManyHeaderFields):
        read_message(wrap(lf))
    assert len(read_message(wrap(lf), max_header_fields=MAX_HEADER_FIELDS + 1).fields) == MAX_HEADER_FIELDS + 1
    with pytest.raises(TooManyHeaderFields):
        read_message(wrap(_many_fields(MAX_HEADER_FIELDS + 1).split(b"\r\n\r\n")[0] + b"\r\n"))
    folded = b"From: a@example.com\r\n" + b"X: 1\r\n" + b" folded\r\n" * 20_000 + b"\r\n"
    assert len(read_message(wrap(folded)).fields) == 2  # continuation lines are not fields


# -- the command line ---------------------------------------------------------------


@pytest.fixture(scope="module")
def zone(tmp_path_factory, rsa_key):
    path = tmp_path_factory.mktemp("zone") / "zone.txt"
    path.write_text(zone_file_line("rsa", "example.com", public_key_record(rsa_key)) + "\n")
    return path


def test_command_line_verify_reports_permerror(core, signed, zone, tmp_path):
    """In this process, with each core active in turn."""
    good = tmp_path / "good.eml"
    good.write_bytes(signed)
    r = run("verify", "--keys", zone, good)
    assert r.returncode == 0 and " pass " in r.stdout.decode(), r.stdout + r.stderr
    evil = tmp_path / "evil.eml"
    evil.write_bytes(SMUGGLED + signed)
    for r in (run("verify", "--keys", zone, evil), run("verify", "--keys", zone, input=SMUGGLED + signed)):
        out = r.stdout.decode()
        assert r.returncode == 1, out + r.stderr.decode()
        assert " permerror d=example.com s=rsa " in out and "bare LF at offset 30" in out, out
    j = run("verify", "--keys", zone, "--json", evil)
    assert j.returncode == 1 and '"status": "permerror"' in j.stdout.decode()


# -- property: a pass means other parsers read what was signed ------------------------

WORDS = ["alpha", "beta", "gamma", "report", "hello", "x", "Q3", "re:", "urgent", "(note)"]
# Inserted anywhere in the header block (a CRLF mid-line makes a line without
# a colon, or a field name cut in two: Python's email ends the header block there).
INSERTS = [b"\r", b"\n", b"\n\n", b"\r\r", b"\n\r", b"\nFrom: CEO <ceo@example.com>\n", b"\rSubject: urgent\r",
           b"\nSubject: urgent\n\n", b"\n From: folded\n", b"\nX-Added: 1\r\n", b"\r\n", b"\r\n ", b" ", b"\r\nX Y: z",
           b"\r\nFrom : CEO <ceo@example.com>"]
# Inserted at the start of a line: whole fields, some well-formed (the signature
# may still pass), some with a bare CR or LF.
FIELDS = [b"X-Added: 1\r\n", b"X-Added: 1\r\n", b"From: CEO <ceo@example.com>\r\n", b"Subject: urgent\r\n",
          b"X-A: a\rFrom: CEO <ceo@example.com>\r\n", b"X-B: a\nSubject: urgent\r\n", b"X-C: 1\n\r\n",
          b"no colon here\r\n", b"Subject : urgent\r\n", b"X A: 1\r\n", b"\xe9X: 1\r\n", b": empty name\r\n",
          b"From ceo@example.com Mon Jan  1 00:00:00 2029\r\n", b" continued\r\n"]
SMUGGLE_TOP = [b"X-Relay: 1\nFrom: CEO <ceo@example.com>\n", b"Received: by relay\r\nX-Relay: 1\nFrom: CEO <ceo@example.com>\n",
               b"Received: by relay\r\nX: a\rFrom: CEO <ceo@example.com>\r\n", b"Received: by relay\r\nX-Spam: no\n\n",
               b"Received: by relay\r\nX-Added: 1\r\n", b"Received: by relay\r\nFrom: CEO <ceo@example.com>\r\n"]


@st.composite
def header_blocks(draw):
    """Random wire-form header blocks: From, Subject, To and X- fields, some folded."""
    def value(n):
        words = draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=n))
        seps = draw(st.lists(st.sampled_from([" ", " ", "\r\n ", "\r\n\t"]), min_size=len(words) - 1,
                             max_size=len(words) - 1))
        return "".join(w + s for w, s in zip(words, seps + [""]))

    local = draw(st.sampled_from(["alice", "bob", "carol.d", "e_f"]))
    name = draw(st.sampled_from(["", "Alice Example ", '"Example, Alice" ']))
    fields = [("From", "%s<%s@example.com>" % (name, local) if name else "%s@example.com" % local),
              ("Subject", value(6)), ("To", "bob@example.net")]
    fields += [("X-%s" % draw(st.sampled_from(["A", "Tag", "Mailer"])), value(4))
               for _ in range(draw(st.integers(0, 3)))]
    order = draw(st.permutations(fields))
    return "".join("%s: %s\r\n" % f for f in order).encode("ascii")


def _read_back(msg):
    """From and Subject values as Python's email package reads them (None: it cannot), with
    runs of whitespace taken as one space and none at the ends: relaxed canonicalization lets
    whitespace change, and a change of whitespace alone is not a different reading."""
    def norm(h):
        return " ".join(str(h).split())

    try:
        m = email.message_from_bytes(msg, policy=email.policy.default)
        return [norm(h) for h in m.get_all("From") or []], [norm(h) for h in m.get_all("Subject") or []]
    except Exception:
        return None


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(head=header_blocks(), data=st.data())
def test_pass_only_when_other_parsers_read_the_signed_from_and_subject(ed_key, head, data):
    keys = keys_for("example.com", "ed", ed_key)
    msg = head + b"\r\nthe body\r\n"
    signed = fastdkim.Signer("example.com", "ed", ed_key).sign_message(msg)
    signed_values = _read_back(signed)
    assert signed_values is not None and len(signed_values[0]) == len(signed_values[1]) == 1
    end = signed.index(b"\r\n\r\n") + 2  # the header block, with its last CRLF
    block = bytearray(signed[:end])
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        kind = data.draw(st.sampled_from(["insert", "insert", "field", "crlf-to-lf", "crlf-to-cr"]), label="kind")
        if kind == "insert":
            at = data.draw(st.integers(0, len(block)), label="at")
            block[at:at] = data.draw(st.sampled_from(INSERTS), label="insert")
        elif kind == "field":  # a whole field at the start of a line
            starts = [0] + [i + 2 for i in range(len(block) - 1) if block[i:i + 2] == b"\r\n"]
            at = data.draw(st.sampled_from(starts), label="at")
            block[at:at] = data.draw(st.sampled_from(FIELDS), label="field")
        else:
            ends = [i for i in range(len(block) - 1) if block[i:i + 2] == b"\r\n"]
            at = data.draw(st.sampled_from(ends), label="at")
            block[at:at + 2] = b"\n" if kind == "crlf-to-lf" else b"\r"
    if data.draw(st.booleans(), label="smuggle on top"):
        block[0:0] = data.draw(st.sampled_from(SMUGGLE_TOP), label="top")
    evil = bytes(block) + signed[end:]
    results = fastdkim.verify(evil, keys=keys)
    assert [(r.status, r.reason) for r in fastdkim.verify(io.BytesIO(evil), keys=keys)] == \
        [(r.status, r.reason) for r in results]
    if any(r.status == "pass" for r in results):
        assert _read_back(evil) == signed_values, (evil, results)


# -- lines that are neither fields nor continuations ---------------------------------------


@pytest.mark.parametrize("line", [
    b"no colon at all", b"Subject : urgent", b"X Y: 1", b"\xe9X: 1", b": empty name",
    b"From ceo@example.com Mon Jan  1 00:00:00 2029"])
@pytest.mark.parametrize("where", ["top", "above-signature", "below-signature", "bottom"])
def test_line_that_is_not_a_field_is_permerror(core, signed, records, rsa_key, line, where):
    """Python's email ends the header block at such a line (what follows is body to it), so the
    fields fastdkim checks are not the ones a mail client shows."""
    block_end = signed.index(b"\r\n\r\n") + 2
    evil_line = line + b"\r\n"
    if where == "top":
        evil = b"From: CEO <ceo@example.com>\r\n" + evil_line + signed
    elif where == "above-signature":
        evil = evil_line + signed
    elif where == "below-signature":
        evil = after_signature(signed, evil_line)
    else:
        evil = signed[:block_end] + evil_line + signed[block_end:]
    results = fastdkim.verify(evil, keys=records)
    assert [r.status for r in results] == ["permerror"], [(r.status, r.reason) for r in results]
    assert "malformed header block" in results[0].reason
    assert [r.status for r in fastdkim.verify(io.BytesIO(evil), keys=records)] == ["permerror"]
    with pytest.raises(fastdkim.MessageFormatError, match="malformed header block"):
        fastdkim.Signer("example.com", "rsa", rsa_key).sign(evil)


def test_continuation_of_nothing_is_permerror(core, signed, records):
    evil = b" From: CEO <ceo@example.com>\r\n" + signed
    results = fastdkim.verify(evil, keys=records)
    assert [r.status for r in results] == ["permerror"] and "continuation" in results[0].reason
