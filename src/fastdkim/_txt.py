"""TXT record values as the rest of fastdkim sees them: one ``bytes`` each.

A TXT record is one or more character-strings; a DKIM key record is their
concatenation with nothing in between (RFC 6376, section 3.6.2.2).  Key
sources, the verifier and the key-record parser accept a record as ``bytes``
(or another bytes-like object) or as ``str``; the rule for turning it into
``bytes`` lives here.
"""
from __future__ import annotations

from typing import Iterable

__all__ = ["join_strings", "txt_bytes", "txt_records"]


def txt_bytes(value: object) -> bytes:
    """One TXT record as ``bytes``: a bytes-like object as it is, a ``str``
    encoded as UTF-8 (lone surrogates U+DC80 to U+DCFF, as ``surrogateescape``
    decoding leaves them, turned back into the octets they stand for).

    :raises TypeError: *value* is neither ``str`` nor bytes-like.
    :raises UnicodeEncodeError: a ``str`` holds any other lone surrogate.
    """
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError("a value of type %s where a TXT record (str or bytes) was expected" % type(value).__name__)


def txt_records(value: object) -> "list[bytes]":
    """What a key source answered, as a list of TXT records (bytes): a
    sequence of records, one record alone (text or bytes), or nothing
    (``None``, empty).

    :raises TypeError: a record of another type, or ``value`` is not iterable.
    :raises UnicodeError: text that cannot be encoded.
    """
    if isinstance(value, (str, bytes, bytearray, memoryview)):  # one record, not a list
        value = [value]
    return [txt_bytes(t) for t in (value or ())]  # type: ignore[attr-defined]


def join_strings(strings: Iterable[bytes]) -> bytes:
    """The record held by a TXT record's character-strings: their concatenation."""
    return b"".join(strings)
