"""One rule for the field names of an ``h=`` list (``fastdkim.tags.is_h_name``):
the signer refuses a name when it is built, the verifier a signature that
lists one."""
from __future__ import annotations

import pytest

import fastdkim
from fastdkim.errors import SigningError
from fastdkim.tags import FIELD_NAME, is_h_name

from helpers import MESSAGE, handmade, keys_for

BAD_NAMES = [
    "x\x01y",     # a control character
    "x\x7fy",     # DEL
    "x y",        # a space inside
    "x:y",        # a colon
    "x;y",        # a field-name, but ';' would end the h= tag
    "\u212a",     # KELVIN SIGN: not ASCII, though it lower-cases to "k"
    "caf\u00e9",  # not ASCII
    "\x0bfrom",   # whitespace Python strips but folding whitespace is not
    "",
    "   ",
]


@pytest.mark.parametrize("name", BAD_NAMES)
@pytest.mark.parametrize("option", ["headers", "oversign"])
def test_signer_refuses_a_bad_field_name_when_built(ed_key, option, name):
    with pytest.raises(SigningError, match="invalid header field name"):
        fastdkim.Signer("example.com", "sel", ed_key, **{option: ["from", name]})


def test_signer_takes_any_h_name_and_signs_it(ed_key):
    odd = "X-Odd_Name!#$%&'*+-.^`|~0"
    s = fastdkim.Signer("example.com", "sel", ed_key, headers=[" From\t", odd], oversign=[])
    assert s.headers == ("from", odd.lower())
    message = ("%s: value\r\n" % odd).encode() + MESSAGE
    signed = s.sign_message(message)
    [r] = fastdkim.verify(signed, keys=keys_for("example.com", "sel", ed_key))
    assert r.status == "pass", r.reason
    assert r.signed_headers == ("from", odd.lower())


@pytest.mark.parametrize("name", [n for n in BAD_NAMES if n.strip(" \t")])
def test_the_rule_is_the_field_name_rule_without_semicolon(name):
    raw = name.encode("utf-8")
    assert not is_h_name(raw)
    assert is_h_name(raw) == (FIELD_NAME.match(raw) is not None and b";" not in raw)
    assert is_h_name(b"x-odd!") and FIELD_NAME.match(b"x;y") and not is_h_name(b"x;y")


def test_verifier_refuses_an_h_list_outside_the_rule(ed_key):
    head, _, body = MESSAGE.partition(b"\r\n\r\n")
    keys = keys_for("example.com", "sel", ed_key)
    for h in ("from:x\x7fy", "from:caf\u00e9", "from:x y"):
        tags = ["v=1", "a=ed25519-sha256", "d=example.com", "s=sel", "h=" + h, "bh=AAAA"]
        [r] = fastdkim.verify(handmade(head + b"\r\n", body, tags, ed_key), keys=keys)
        assert r.status == "permerror" and "malformed" in r.reason, (h, r.reason)
