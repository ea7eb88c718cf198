"""Small text helpers (fastdkim._text): domain names and A-labels,
dkim-quoted-printable, and text made safe to show.

A bad value is an :class:`OptionError` (a ``ValueError``) or, from
:func:`alabel`, a ``UnicodeError``; nothing else.
"""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastdkim._text import alabel, is_subdomain, is_valid_domain, printable, qp_decode, qp_encode, to_a_label_domain
from fastdkim.errors import OptionError

# -- domain names -----------------------------------------------------------------------


@pytest.mark.parametrize("name", [
    "example.com", "a.b.c.example", "_dmarc.example.com", "x", "1.2.3.4", "a-b.example", "a" * 63 + ".com",
    ".".join(["a" * 63] * 3) + "." + "a" * 61,  # 253 octets
])
def test_valid_domains(name):
    assert is_valid_domain(name)


@pytest.mark.parametrize("name", [
    "", "example.com.", ".example.com", "a..b", "-a.com", "a-.com", "ex ample.com", "a" * 64 + ".com",
    "b\u00fccher.example", "a;b.com", ".".join(["a" * 63] * 3) + "." + "a" * 62,  # 254 octets
])
def test_invalid_domains(name):
    assert not is_valid_domain(name)


def test_to_a_label_domain_normalises():
    assert to_a_label_domain(" B\u00fccher.Example. ") == "xn--bcher-kva.example"
    assert to_a_label_domain("EXAMPLE.com") == "example.com"
    assert to_a_label_domain("xn--bcher-kva.example") == "xn--bcher-kva.example"


@pytest.mark.parametrize("name, match", [
    ("", "invalid domain name ''"),
    ("exa mple.com", "invalid domain name"),
    ("a..b", "invalid domain name"),
    ("\u2603.example", "invalid internationalized domain name"),  # a snowman is no IDNA letter
    ("\u00e9" * 70 + ".example", "invalid internationalized domain name"),  # a label too long once encoded
])
def test_to_a_label_domain_refuses_with_an_option_error(name, match):
    with pytest.raises(OptionError, match=match):
        to_a_label_domain(name)
    with pytest.raises(ValueError):  # an OptionError is a ValueError
        to_a_label_domain(name)


def test_alabel():
    assert alabel("b\u00fccher") == alabel("B\u00fccher") == b"xn--bcher-kva"
    with pytest.raises(UnicodeError):
        alabel("")
    with pytest.raises(UnicodeError):
        alabel("\u2603")


@pytest.mark.parametrize("child, parent, result", [
    ("example.com", "example.com", True),
    ("A.Example.com.", "example.COM", True),
    ("a.b.example.com", "example.com", True),
    ("badexample.com", "example.com", False),  # a suffix, not a subdomain
    ("example.com", "a.example.com", False),
    ("example.org", "example.com", False),
])
def test_is_subdomain(child, parent, result):
    assert is_subdomain(child, parent) is result


# -- dkim-quoted-printable -----------------------------------------------------------------


def test_qp_encode_safe_characters_and_extra():
    assert qp_encode(b"a;b=c d|\x00\xff~!") == "a=3Bb=3Dc=20d|=00=FF~!"
    assert qp_encode(b"a|b", b"|") == "a=7Cb"  # z= encodes the bar too
    assert qp_encode(b"") == ""
    assert qp_encode(bytes(range(0x21, 0x7F))).count("=") == 2  # only ';' and '=' of the printable ones


def test_qp_decode_drops_whitespace_and_takes_either_case():
    assert qp_decode(b"a =3D\r\n\tb=3b=7c") == b"a=b;|"
    assert qp_decode(b"") == b""


@pytest.mark.parametrize("value", [b"=4", b"=ZZ", b"abc=", b"=", b"a=3", b"=G0"])
def test_qp_decode_refuses_a_bare_equals_sign(value):
    with pytest.raises(OptionError, match="invalid quoted-printable"):
        qp_decode(value)


@given(data=st.binary(max_size=200), extra=st.binary(max_size=3))
def test_qp_round_trip(data, extra):
    encoded = qp_encode(data, extra)
    assert encoded.isascii() and ";" not in encoded and " " not in encoded
    assert not any(chr(b) in encoded for b in extra if b not in b"=0123456789ABCDEF")
    assert qp_decode(encoded.encode("ascii")) == data


@given(value=st.binary(max_size=60))
def test_qp_decode_of_anything_decodes_or_is_an_option_error(value):
    try:
        assert isinstance(qp_decode(value), bytes)
    except OptionError:
        pass


# -- text safe to show ---------------------------------------------------------------------


@pytest.mark.parametrize("text, shown, shown_ascii", [
    ("plain text", "plain text", "plain text"),
    ("a\r\nb\x00", "a\\x0d\\x0ab\\x00", "a\\x0d\\x0ab\\x00"),
    ("caf\u00e9", "caf\u00e9", "caf\\xe9"),
    ("\u2028", "\\u2028", "\\u2028"),  # a line separator
    ("\U0001f600", "\U0001f600", "\\U0001f600"),
    ("\U000e0001", "\\U000e0001", "\\U000e0001"),
    ("\x7f", "\\x7f", "\\x7f"),
])
def test_printable(text, shown, shown_ascii):
    assert printable(text) == shown
    assert printable(text, ascii_only=True) == shown_ascii


@given(text=st.text(max_size=50))
def test_printable_is_one_safe_line(text):
    for ascii_only in (False, True):
        out = printable(text, ascii_only)
        assert out.isprintable() and (out.isascii() or not ascii_only)
        if text.isprintable() and (text.isascii() or not ascii_only):
            assert out == text
