"""DNS names as key sources take them (RFC 6376, section 3.6.2).

A name is given as text (``sel._domainkey.example.com``; a trailing dot is
optional, case does not matter) or as ASCII ``bytes``.  Non-ASCII labels are
converted to A-labels (IDNA 2008 with UTS 46 mapping when the ``idna``
package is installed, Python's built-in IDNA 2003 codec otherwise); names are
otherwise taken literally (no backslash escapes are interpreted).
"""
from __future__ import annotations

import functools
from typing import Any, List, Tuple

from ._text import alabel
from .errors import KeyLookupError

__all__ = ["MAX_LABEL", "MAX_NAME", "normalize", "normalize_key"]

MAX_LABEL = 63
MAX_NAME = 253  # text form without the trailing dot; 255 octets on the wire


def _show(name: str, limit: int = 80) -> str:
    """repr() of a name for an error message, shortened if very long."""
    return repr(name) if len(name) <= limit else repr(name[:limit]) + "... (%d characters)" % len(name)


def _clip(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def normalize(name: Any) -> Tuple[str, Tuple[bytes, ...]]:
    """Return ``(key, labels)`` for *name*: the lower-cased text form without a
    trailing dot, and the wire labels (without the root label).

    :raises KeyLookupError: *name* is not a valid DNS name.
    :raises TypeError: *name* is neither ``str`` nor ``bytes``.
    """
    if isinstance(name, str):
        return _normalize_str(name)
    return _normalize_any(name)


@functools.lru_cache(maxsize=4096)
def _normalize_str(name: str) -> Tuple[str, Tuple[bytes, ...]]:
    # Verifiers look the same few names up again and again: remember them.
    return _normalize_any(name)


def _normalize_any(name: Any) -> Tuple[str, Tuple[bytes, ...]]:
    """:func:`normalize`, without the memory of names already seen.

    :raises KeyLookupError: *name* is not a valid DNS name.
    :raises TypeError: *name* is neither ``str`` nor ``bytes``.
    """
    if isinstance(name, (bytes, bytearray)):
        try:
            name = bytes(name).decode("ascii")
        except UnicodeDecodeError:
            raise KeyLookupError("invalid DNS name: not ASCII") from None
    elif not isinstance(name, str):
        raise TypeError("a DNS name must be str, not %s" % type(name).__name__)
    text = name[:-1] if name.endswith(".") else name
    if not text:
        raise KeyLookupError("invalid DNS name %s: empty" % _show(name))
    if len(text) > 4 * MAX_NAME:  # far too long whatever IDNA does; spare the work
        raise KeyLookupError("invalid DNS name %s: longer than %d octets" % (_show(name), MAX_NAME))
    labels: List[bytes] = []
    for label in text.split("."):
        if not label:
            raise KeyLookupError("invalid DNS name %s: empty label" % _show(name))
        if label.isascii():
            raw = label.lower().encode("ascii")
        elif len(label) > 4 * MAX_LABEL:  # far too long for any A-label; spare the IDNA codec
            raise KeyLookupError("invalid DNS name %s: label of %d characters" % (_show(name), len(label)))
        else:
            try:
                raw = alabel(label).lower()
            except (UnicodeError, ValueError) as exc:
                raise KeyLookupError(
                    "invalid DNS name %s: label %s cannot be IDNA-encoded (%s)" % (_show(name), _show(label), _clip(str(exc)))
                ) from None
        if len(raw) > MAX_LABEL:
            raise KeyLookupError("invalid DNS name %s: label of %d octets (at most %d)" % (_show(name), len(raw), MAX_LABEL))
        labels.append(raw)
    total = sum(len(label) for label in labels) + len(labels) - 1
    if total > MAX_NAME:
        raise KeyLookupError("invalid DNS name %s: %d octets (at most %d)" % (_show(name), total, MAX_NAME))
    return b".".join(labels).decode("ascii"), tuple(labels)


def normalize_key(name: Any) -> str:
    """The lower-cased text form of *name*, without a trailing dot, any
    non-ASCII label as an A-label: what key sources compare names by.

    :raises KeyLookupError: *name* is not a valid DNS name.
    :raises TypeError: *name* is neither ``str`` nor ``bytes``.
    """
    return normalize(name)[0]

