"""Keys (fastdkim.keys): loading private keys in every form, generating them,
writing them, and publishing and parsing key records.

Every defect of a key given by the user is a :class:`KeyFormatError`, of a key
record a :class:`KeyRecordError`; neither function raises anything else for
bad data, whatever it is.
"""
from __future__ import annotations

import base64
import re
import os
import stat
import struct
import warnings

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from hypothesis import given
from hypothesis import strategies as st

import fastdkim
from fastdkim.errors import KeyFormatError, KeyRecordError, KeyTooWeakError, OptionError
from fastdkim.keys import (
    KeyRecord,
    check_signing_key,
    generate_private_key,
    key_algorithm,
    load_private_key,
    load_private_key_with,
    parse_key_record,
    private_key_pem,
    public_key_record,
    record_name,
    txt_strings,
    write_private_key,
    zone_file_line,
)

from helpers_keys import rsa_key_of_bits


@pytest.fixture(scope="module")
def ec_key():
    """A key of a type DKIM does not use."""
    return ec.generate_private_key(ec.SECP256R1())


def _pem(key, fmt=serialization.PrivateFormat.PKCS8, encryption=None):
    return key.private_bytes(serialization.Encoding.PEM, fmt, encryption or serialization.NoEncryption())


def _same_key(a, b) -> bool:
    return public_key_record(a) == public_key_record(b)


# -- loading: every form a key comes in ------------------------------------------------


def test_key_inputs(tmp_path, rsa_key, ed_key):
    pem = rsa_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
    der8 = ed_key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    p = tmp_path / "k.pem"
    p.write_bytes(pem)
    for k in (pem, der8, str(p), p):
        fastdkim.Signer("example.com", "s", k)
    enc = rsa_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.BestAvailableEncryption(b"pw"))
    fastdkim.Signer("example.com", "s", enc, password=b"pw")
    with pytest.raises(KeyFormatError, match="password"):
        fastdkim.Signer("example.com", "s", enc)
    with pytest.raises(KeyFormatError, match="password"):
        fastdkim.Signer("example.com", "s", enc, password=b"wrong")
    with pytest.raises(KeyFormatError, match="cannot read"):
        fastdkim.Signer("example.com", "s", str(tmp_path / "missing.pem"))
    with pytest.raises(KeyFormatError):
        fastdkim.Signer("example.com", "s", b"-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----\n")
    with pytest.raises(KeyFormatError):
        fastdkim.Signer("example.com", "s", b"")


def test_pem_text_as_a_string_and_no_key_material_in_errors(ed_key):
    pem = ed_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                               serialization.NoEncryption()).decode()
    s = fastdkim.Signer("example.com", "sel", pem)
    assert s.algorithm == "ed25519-sha256"
    bad = pem.replace("-----BEGIN", "-----BEGAN")  # neither PEM nor a file name
    with pytest.raises(KeyFormatError) as info:
        fastdkim.Signer("example.com", "sel", bad)
    assert "PRIVATE KEY" not in str(info.value) and len(str(info.value)) < 200


def test_raw_ed25519_seed_key_form(ed_key):
    seed = ed_key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    k = fastdkim.load_private_key(base64.b64encode(seed) + b"\n")
    assert k.public_key().public_bytes_raw() == ed_key.public_key().public_bytes_raw()


def test_every_bytes_like_form_and_the_key_object_itself(tmp_path, ed_key, rsa_key):
    der = ed_key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                               serialization.NoEncryption())
    for form in (der, bytearray(der), memoryview(der)):
        assert _same_key(load_private_key(form), ed_key)
    assert load_private_key(ed_key) is ed_key and load_private_key(rsa_key) is rsa_key
    openssh = ed_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                   serialization.NoEncryption())
    assert _same_key(load_private_key(openssh), ed_key)
    assert _same_key(load_private_key(_pem(rsa_key).decode()), rsa_key)  # PEM text as str
    seed = ed_key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                serialization.NoEncryption())
    if not seed.isascii():  # 32 raw octets (ASCII ones are read as base64 text)
        assert _same_key(load_private_key(seed), ed_key)
    p = tmp_path / "seed.txt"
    p.write_bytes(b"  " + base64.b64encode(seed) + b"\r\n")
    assert _same_key(load_private_key(p), ed_key)


@pytest.mark.parametrize("key, match", [
    (b"", "empty"),
    (b" \r\n\t", "empty"),
    (b"a" * 32, "cannot parse"),
    (b"\x30\x03\x02\x01\x00", "cannot parse"),
    (b"-----BEGIN OPENSSH PRIVATE KEY-----\ngarbage\n-----END OPENSSH PRIVATE KEY-----\n", "cannot parse"),
    ("-----BEGIN PRIVATE KEY-----\n\u00e9\n-----END PRIVATE KEY-----\n", "cannot parse"),
])
def test_unusable_key_data_is_a_key_format_error(key, match):
    with pytest.raises(KeyFormatError, match=match):
        load_private_key(key)


@pytest.mark.parametrize("key", [12, None, 1.5, ["-----BEGIN PRIVATE KEY-----"]])
def test_a_key_of_no_key_type_is_a_type_error(key):
    with pytest.raises(TypeError, match="the private key must be a key object, PEM or DER bytes, or a path, not "):
        load_private_key(key)


def test_unreadable_key_files_name_the_file_not_the_data(tmp_path):
    with pytest.raises(KeyFormatError, match="cannot read private key file '.*missing.pem': No such file"):
        load_private_key(str(tmp_path / "missing.pem"))
    with pytest.raises(KeyFormatError, match="Is a directory"):
        load_private_key(tmp_path)
    with pytest.raises(KeyFormatError, match="cannot read private key file"):
        load_private_key("key\0.pem")  # a NUL in the name
    with pytest.raises(KeyFormatError, match="given as a 300-character string") as info:
        load_private_key("x" * 300)  # too long to show
    assert "x" * 50 not in str(info.value)
    bad = tmp_path / "bad.pem"
    bad.write_bytes(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    with pytest.raises(KeyFormatError, match="bad.pem: cannot parse"):
        load_private_key(str(bad))


def test_key_types_other_than_rsa_and_ed25519_are_refused(ec_key):
    with pytest.raises(KeyFormatError, match="unsupported key type ECPrivateKey: DKIM uses RSA or Ed25519"):
        load_private_key(_pem(ec_key))
    with pytest.raises(KeyFormatError, match="unsupported private key type"):
        load_private_key(ec_key)
    with pytest.raises(KeyFormatError, match="unsupported key type"):
        key_algorithm(ec_key)
    with pytest.raises(KeyFormatError, match="unsupported key type"):
        public_key_record(ec_key)


def test_password_for_a_key_that_has_none_and_one_password_for_several_keys(ed_key):
    plain = _pem(ed_key)
    enc = _pem(ed_key, encryption=serialization.BestAvailableEncryption(b"pw"))
    with pytest.raises(KeyFormatError, match="not encrypted"):
        load_private_key(plain, b"pw")
    with pytest.raises(KeyFormatError, match="a password is required"):
        load_private_key(enc)
    # load_private_key_with: the password goes to the keys that are encrypted only
    assert _same_key(load_private_key_with(plain, b"pw"), ed_key)
    assert _same_key(load_private_key_with(enc, b"pw"), ed_key)
    with pytest.raises(KeyFormatError, match="wrong password"):
        load_private_key_with(enc, b"other")


def test_encrypted_openssh_key_is_a_clear_error_without_its_password(ed_key):
    """An encrypted OpenSSH key (cipher aes256-ctr, KDF bcrypt), built by hand
    since making one needs the bcrypt package: never a traceback."""
    def string(b):
        return struct.pack(">I", len(b)) + b

    pub = ed_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    blob = (b"openssh-key-v1\0" + string(b"aes256-ctr") + string(b"bcrypt")
            + string(string(b"\0" * 16) + struct.pack(">I", 16)) + struct.pack(">I", 1)
            + string(string(b"ssh-ed25519") + string(pub)) + string(b"\0" * 64))
    pem = (b"-----BEGIN OPENSSH PRIVATE KEY-----\n" + base64.encodebytes(blob)
           + b"-----END OPENSSH PRIVATE KEY-----\n")
    with pytest.raises(KeyFormatError, match="password|bcrypt"):
        load_private_key(pem)
    with pytest.raises(KeyFormatError, match="password|bcrypt|damaged"):
        load_private_key(pem, b"pw")


@pytest.mark.parametrize("kind", ["rsa-pkcs8-pem", "rsa-traditional-pem", "ed25519-pkcs8-der"])
def test_wrong_password_is_recognised_every_time(kind):
    """Decided from the key file's own structure: a wrong password that happens
    to decrypt to well-padded garbage is still reported as a wrong password."""
    if kind.startswith("rsa"):
        key = rsa.generate_private_key(public_exponent=65537, key_size=1024 + 1024)
    else:
        key = ed25519.Ed25519PrivateKey.generate()
    fmt = serialization.PrivateFormat.TraditionalOpenSSL if "traditional" in kind else serialization.PrivateFormat.PKCS8
    enc = serialization.Encoding.DER if kind.endswith("der") else serialization.Encoding.PEM
    data = key.private_bytes(enc, fmt, serialization.BestAvailableEncryption(b"right password"))
    n = 1000 if kind.startswith("ed25519") else 300
    for i in range(n):
        with pytest.raises(KeyFormatError, match="wrong password"):
            fastdkim.load_private_key(data, b"wrong %d" % i)
    assert fastdkim.load_private_key(data, b"right password").private_bytes(
        enc, fmt, serialization.NoEncryption()) == key.private_bytes(enc, fmt, serialization.NoEncryption())


def test_der_key_ending_in_a_whitespace_valued_octet_loads():
    """Binary DER is not stripped like text: its last octet may be 0x20 or 0x0a."""
    key = ed25519.Ed25519PrivateKey.generate()
    for _ in range(3000):
        data = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                 serialization.BestAvailableEncryption(b"pw"))
        if data[-1:] in (b" ", b"\t", b"\n", b"\r", b"\x0b", b"\x0c"):
            break
    else:  # pragma: no cover - vanishingly unlikely
        pytest.skip("no such key drawn")
    assert fastdkim.load_private_key(data, b"pw").public_key() == key.public_key()
    with pytest.raises(KeyFormatError, match="wrong password"):
        fastdkim.load_private_key(data, b"not pw")


@given(data=st.one_of(
    st.binary(max_size=200),
    st.binary(min_size=32, max_size=32),
    st.text(max_size=120).map(lambda s: "-----BEGIN PRIVATE KEY-----\n" + s + "\n-----END PRIVATE KEY-----\n"),
    st.text(max_size=120).map(lambda s: "-----BEGIN OPENSSH PRIVATE KEY-----\n" + s),
))
def test_any_data_loads_or_is_a_key_format_error(data):
    try:
        key = load_private_key(data)
    except KeyFormatError:
        return
    assert isinstance(key, (rsa.RSAPrivateKey, ed25519.Ed25519PrivateKey))


# -- the key's strength and algorithm -----------------------------------------------------


def test_refuses_short_rsa_and_warns_under_2048():
    with pytest.raises(KeyTooWeakError):
        fastdkim.Signer("example.com", "s", rsa_key_of_bits(768))
    k1024 = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.warns(UserWarning, match="2048"):
        fastdkim.Signer("example.com", "s", k1024)


def test_check_signing_key_limits(rsa_key, ed_key):
    with pytest.raises(KeyTooWeakError, match="768 bits is too short .*minimum 1024"):
        check_signing_key(rsa_key_of_bits(768))
    with pytest.raises(KeyTooWeakError, match="minimum 1024"):
        check_signing_key(rsa_key_of_bits(768), min_bits=512)  # never below 1024
    with pytest.raises(KeyTooWeakError, match="minimum 4096"):
        check_signing_key(rsa_key, min_bits=4096)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning for these
        check_signing_key(rsa_key)
        check_signing_key(ed_key)
    assert issubclass(KeyTooWeakError, KeyFormatError)


def test_key_algorithm_of_private_and_public_keys(rsa_key, ed_key):
    assert key_algorithm(rsa_key) == key_algorithm(rsa_key.public_key()) == "rsa-sha256"
    assert key_algorithm(ed_key) == key_algorithm(ed_key.public_key()) == "ed25519-sha256"


def test_generate_private_key_names_and_refusals():
    assert isinstance(generate_private_key("ed25519"), ed25519.Ed25519PrivateKey)
    assert isinstance(generate_private_key("ED25519-SHA256"), ed25519.Ed25519PrivateKey)
    for bits in (1024, 2047, 8193):
        with pytest.raises(KeyFormatError, match="between 2048 and 8192 bits, got %d" % bits):
            generate_private_key("rsa", bits)
    for name in ("dsa", "rsa-sha1", ""):
        with pytest.raises(KeyFormatError, match="unknown key algorithm"):
            generate_private_key(name)


# -- writing keys ---------------------------------------------------------------------------


def test_write_private_key_mode_and_no_overwrite(tmp_path, ed_key, rsa_key):
    p = tmp_path / "k.pem"
    write_private_key(p, ed_key)
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o600
    with pytest.raises(FileExistsError):
        write_private_key(p, rsa_key)
    assert fastdkim.load_private_key(str(p)).public_key().public_bytes_raw() == ed_key.public_key().public_bytes_raw()
    write_private_key(p, rsa_key, force=True)
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o600
    assert fastdkim.load_private_key(str(p)).key_size == rsa_key.key_size


def test_private_key_pem_round_trips_and_write_makes_directories(tmp_path, ed_key):
    pem = private_key_pem(ed_key)
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----\n") and _same_key(load_private_key(pem), ed_key)
    p = tmp_path / "new" / "dir" / "k.pem"
    write_private_key(str(p), ed_key)
    assert p.read_bytes() == pem
    with pytest.raises(IsADirectoryError):
        write_private_key(tmp_path / "new", ed_key, force=True)
    assert sorted(os.listdir(p.parent)) == ["k.pem"]  # no temporary file left behind


# -- publishing: records, names, zone files -------------------------------------------------


def test_public_key_record_forms(rsa_key, ed_key):
    rec = public_key_record(ed_key)
    assert rec.startswith("v=DKIM1; k=ed25519; p=")
    assert len(base64.b64decode(rec.split("p=")[1])) == 32  # the raw key (RFC 8463)
    assert public_key_record(ed_key.public_key()) == rec
    assert public_key_record(ed_key, testing=True).startswith("v=DKIM1; k=ed25519; t=y; p=")
    assert public_key_record(ed_key, strict=True).startswith("v=DKIM1; k=ed25519; t=s; p=")
    assert public_key_record(ed_key, testing=True, strict=True).startswith("v=DKIM1; k=ed25519; t=y:s; p=")
    rsa_rec = public_key_record(rsa_key)
    assert rsa_rec.startswith("v=DKIM1; k=rsa; p=MII")  # SubjectPublicKeyInfo
    parsed = parse_key_record(public_key_record(rsa_key, testing=True))
    assert parsed.key_type == "rsa" and parsed.key_bits == 2048 and parsed.testing and not parsed.strict
    assert parsed.matches(rsa_key) and not parsed.matches(ed_key)


def test_record_name_and_txt_strings():
    assert record_name("Sel.", ".Example.COM.") == "sel._domainkey.example.com"
    assert txt_strings("") == [""]
    assert [len(s) for s in txt_strings("a" * 600)] == [255, 255, 90]
    assert txt_strings("abcdef", 4) == ["abcd", "ef"]
    for limit in (0, 256, -1):
        with pytest.raises(OptionError, match="1..255"):
            txt_strings("abc", limit)
    with pytest.raises(ValueError):
        txt_strings("caf\u00e9")  # a record value is ASCII


def test_zone_file_line_quotes_and_splits():
    assert zone_file_line("s", "Example.com", "v=DKIM1; p=AB") == 's._domainkey.example.com. 3600 IN TXT "v=DKIM1; p=AB"'
    assert zone_file_line("s", "example.com", 'n="q\\"', ttl=60) == 's._domainkey.example.com. 60 IN TXT "n=\\"q\\\\\\""'
    line = zone_file_line("s", "example.com", "a" * 300)
    assert line == 's._domainkey.example.com. 3600 IN TXT ( "%s" "%s" )' % ("a" * 255, "a" * 45)


# -- parsing key records ----------------------------------------------------------------------


def test_parse_key_record_tags(ed_key):
    p = public_key_record(ed_key).split("p=")[1]
    r = parse_key_record("v=DKIM1; k=ed25519; h= sha256 : sha 1 ; s=email; t=y:s:; n=hi there; future=1; p=" + p)
    assert isinstance(r, KeyRecord)
    assert (r.key_type, r.key_bits, r.notes) == ("ed25519", 256, "hi there")
    assert r.hashes == frozenset({"sha256", "sha 1"})  # whitespace around items only, not inside
    assert r.services == frozenset({"email"}) and r.flags == frozenset({"y", "s"}) and r.testing and r.strict
    assert r.matches(ed_key) and not r.matches(ed25519.Ed25519PrivateKey.generate())
    plain = parse_key_record(public_key_record(ed_key))
    assert plain.hashes is None and plain.services is None and plain.flags == frozenset() and plain.notes == ""
    # h=, s= and t= name ABNF literals, which match in any case (RFC 5234 section 2.3), as k= does
    upper = parse_key_record("v=DKIM1; k=ed25519; h=SHA256; s=EMAIL; t=Y:S; p=" + p)
    assert upper.hashes == frozenset({"sha256"}) and upper.services == frozenset({"email"})
    assert upper.testing and upper.strict
    # bytes-like and str alike; k= is case-insensitive
    for rec in (public_key_record(ed_key).encode(), bytearray(public_key_record(ed_key).encode()),
                memoryview(public_key_record(ed_key).encode()), "k=ED25519; p=" + p, "s=*; k=ed25519; p=" + p):
        assert parse_key_record(rec).matches(ed_key)


def test_record_matches_no_key_of_another_type(ed_key, ec_key):
    r = parse_key_record(public_key_record(ed_key))
    assert r.matches(ec_key) is False


@pytest.mark.parametrize("record, match", [
    ("k=rsa; v=DKIM1; p=AAAA", "v= tag is not first"),
    ("v=DKIM2; p=AAAA", "not DKIM1"),
    ("v=DKIM1; k=dsa; p=AAAA", "unknown key type k=dsa"),
    ("v=DKIM1; k=rsa", "no p= tag"),
    ("v=DKIM1; p=", "revoked"),
    ("v=DKIM1; p= \r\n\t", "revoked"),
    ("v=DKIM1; p=!!!!", "not valid base64"),
    ("v=DKIM1; p=AAAA", "not an RSA public key"),
    ("v=DKIM1; k=ed25519; p=" + base64.b64encode(b"x" * 31).decode(), "32 raw bytes"),
    ("v=DKIM1; k=ed25519; s=chat; p=" + base64.b64encode(b"x" * 32).decode(), "does not allow email"),
    ("v=DKIM1; t; p=AAAA", "syntax error"),
    ("v=DKIM1; p=AAAA; p=AAAA", "syntax error"),
    ("v=DKIM1; p=\ud800", "not valid text"),
    ("", "syntax error"),
    ("v=DKIM1; p=" + base64.b64encode(b"x" * 32).decode(), r"without k= is k=rsa; an Ed25519 key needs k=ed25519"),
    ("v=DKIM1; k=ed25519; h=; p=" + base64.b64encode(b"x" * 32).decode(), "h= names no hash algorithm"),
    ("v=DKIM1; k=ed25519; h= : ; p=" + base64.b64encode(b"x" * 32).decode(), "h= names no hash algorithm"),
])
def test_bad_key_records_are_key_record_errors(record, match):
    with pytest.raises(KeyRecordError, match=match):
        parse_key_record(record)


def test_rsa_record_holding_another_key_type_or_a_short_key(ed_key, ec_key):
    for key in (ed_key, ec_key):
        spki = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        with pytest.raises(KeyRecordError, match="k=rsa but p= holds a"):
            parse_key_record("k=rsa; p=" + base64.b64encode(spki).decode())
    short = public_key_record(rsa_key_of_bits(768))
    with pytest.raises(KeyRecordError, match="768 bits is too short"):
        parse_key_record(short)
    assert parse_key_record(short, min_rsa_bits=512).key_bits == 768


def _der(tag: int, body: bytes) -> bytes:
    n = len(body)
    size = bytes([n]) if n < 128 else bytes([0x80 | ((n.bit_length() + 7) // 8)]) + n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag]) + size + body


def _spki(n: int, e: int) -> bytes:
    """An RSA SubjectPublicKeyInfo for any ``n`` and ``e`` (cryptography makes
    none of a key it would not use)."""
    def integer(v: int) -> bytes:
        return _der(0x02, v.to_bytes(v.bit_length() // 8 + 1, "big"))
    algorithm = _der(0x30, _der(0x06, bytes.fromhex("2a864886f70d010101")) + b"\x05\x00")
    return _der(0x30, algorithm + _der(0x03, b"\x00" + _der(0x30, integer(n) + integer(e))))


@pytest.mark.parametrize("bits, e, match", [(16392, 65537, "16392 bits is larger than verifiers can use"),
                                            (4096, (1 << 100) + 1, "exponent of 101 bits"),
                                            (2048, 1, r"unusable public exponent \(1\)"),
                                            (2048, 65536, r"unusable public exponent \(even\)"),
                                            (1024, (1 << 1030) + 1, "not below the modulus")])
def test_rsa_record_holding_a_key_openssl_cannot_use(bits, e, match):
    """A key no verifier can compute with is a key record error (permerror),
    not a signature that "did not verify" (fail)."""
    import random


    n = random.Random(bits).getrandbits(bits) | (1 << (bits - 1)) | 1
    der = _spki(n, e)
    record = "v=DKIM1; p=" + base64.b64encode(der).decode()
    if e < 3 or not e & 1 or e >= n:  # (newer cryptography releases refuse to load these at all)
        match = "(%s)|not an RSA public key" % match
    with pytest.raises(KeyRecordError, match=match):
        parse_key_record(record)
    msg = b"DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=sel; h=from; bh=AAAA; b=AAAA\r\n" \
          b"From: a@example.com\r\n\r\nbody\r\n"
    [r] = fastdkim.verify(msg, keys={"sel._domainkey.example.com": record})
    assert r.status == "permerror" and re.search(match, r.reason), r.reason


def test_parse_key_record_wrong_type():
    with pytest.raises(TypeError, match="int"):
        parse_key_record(12)  # type: ignore[arg-type]


@given(record=st.one_of(st.binary(max_size=200), st.text(max_size=200),
                        st.lists(st.sampled_from(["v=DKIM1", "k=rsa", "k=ed25519", "p=", "p=AAAA", "h=sha1", "s=*",
                                                  "t=y", ";", " ", "=", "\r\n ", "x"]), max_size=12).map("".join)))
def test_any_record_parses_or_is_a_key_record_error(record):
    try:
        parsed = parse_key_record(record)
    except KeyRecordError:
        return
    assert isinstance(parsed, KeyRecord) and parsed.key_type in ("rsa", "ed25519")
