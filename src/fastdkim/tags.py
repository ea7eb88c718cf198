"""Tag-list parsing (RFC 6376 section 3.2) for DKIM-Signature fields and key records.

A tag-list is ``name=value`` pairs separated by ``;`` with folding whitespace
allowed around names, ``=`` and values.  Tag names are case-sensitive; a
duplicated name makes the whole list invalid; a trailing ``;`` is allowed.
Values are bytes with surrounding whitespace removed; callers
interpret them (and strip internal whitespace where the tag allows it, such as
base64 values).
"""
from __future__ import annotations

import re
from typing import Dict

from . import _core
from .errors import TagSyntaxError

__all__ = [
    "TagSyntaxError", "parse_tag_list", "strip_fws", "FWS", "MAX_H_NAMES", "FIELD_NAME", "is_h_name",
]

FWS = b" \t\r\n"

#: Longest h= list a signature may have: the signer refuses to write a longer
#: one and the verifier, by default, to accept it (a guard against crafted
#: messages; no real message signs this many fields).
MAX_H_NAMES = 512

#: An RFC 5322 field-name (1*ftext: printable US-ASCII but colon), as bytes.
FIELD_NAME = re.compile(rb"[\x21-\x39\x3b-\x7e]+\Z")


def is_h_name(name: bytes) -> bool:
    """Whether ``name`` can be an entry of an ``h=`` list: an RFC 5322
    field-name (:data:`FIELD_NAME`) without ``;``, which would end the tag
    (section 3.2: no tag value holds one).

    The one rule for ``h=``: the verifier applies it to the names it reads,
    the signer to the names it is asked to sign.
    """
    return FIELD_NAME.match(name) is not None and b";" not in name


def strip_fws(value: bytes) -> bytes:
    """Remove every whitespace octet (for base64 values, which may be folded)."""
    return value.translate(None, FWS)


def parse_tag_list(data: bytes, *, max_tags: int = 1024) -> Dict[str, bytes]:
    """Parse a tag-list into ``{name: value}``, values without surrounding whitespace.

    One ``;`` may end the list (RFC 6376 section 3.2); an empty spec
    anywhere else (``;`` first, or two in a row) is a syntax error.  The
    work is done by the active core (compiled, or its pure twin).

    :raises TagSyntaxError: a spec without ``=``, an empty spec, an invalid
        tag name, a duplicate tag, an empty list, or more than ``max_tags``
        tags.
    """
    try:
        return _core.core.parse_tag_list(data, max_tags)
    except ValueError as exc:
        raise TagSyntaxError(str(exc)) from None
