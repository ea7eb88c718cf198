"""Small text helpers: domain names (RFC 8616 A-labels) and dkim-quoted-printable."""
from __future__ import annotations

import functools
import re
from typing import Any

from .errors import OptionError

#: The ``idna`` package, loaded when a first non-ASCII label is met (most
#: runs meet none); ``None`` where it is missing.
_idna: Any = NotImplemented


def _idna_package() -> Any:
    global _idna
    if _idna is NotImplemented:
        try:
            import idna as package
        except ImportError:  # pragma: no cover - a declared dependency, but degrade gracefully
            _idna = None
        else:
            _idna = package
    return _idna

__all__ = ["alabel", "to_a_label_domain", "is_valid_domain", "qp_encode", "qp_decode", "is_subdomain"]

_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\Z")


def is_valid_domain(name: str) -> bool:
    """A syntactically valid ASCII domain name (labels of letters, digits, ``-``, ``_``)."""
    if not name or len(name) > 253 or name.endswith("."):
        return False
    return all(_LABEL.match(label) for label in name.split("."))


def alabel(label: str) -> bytes:
    """IDNA-encode one non-ASCII label (RFC 8616: domains travel as A-labels).

    IDNA 2008 with UTS 46 mapping through the ``idna`` package; Python's
    built-in IDNA 2003 codec only if that package is missing.

    :raises UnicodeError: the label cannot be encoded.
    """
    idna = _idna_package()
    if idna is not None:
        try:
            return bytes(idna.alabel(idna.uts46_remap(label, False, False)))
        except idna.IDNAError as exc:
            raise UnicodeError(str(exc)) from None
    import encodings.idna

    return encodings.idna.ToASCII(label)


@functools.lru_cache(maxsize=4096)
def to_a_label_domain(name: str) -> str:
    """Lower-case ASCII form of a domain; U-labels are converted to A-labels (RFC 8616).

    :raises ValueError: the name is not a valid domain name.
    """
    n = name.strip().rstrip(".")
    if not n.isascii():
        try:
            n = ".".join(label if label.isascii() else alabel(label).decode("ascii") for label in n.split("."))
        except (UnicodeError, ValueError) as exc:
            raise OptionError("invalid internationalized domain name %r: %s" % (name, exc)) from None
    n = n.lower()
    if not is_valid_domain(n):
        raise OptionError("invalid domain name %r" % name)
    return n


def is_subdomain(child: str, parent: str) -> bool:
    """``child`` equals ``parent`` or lies under it (case-insensitive)."""
    c, p = child.lower().rstrip("."), parent.lower().rstrip(".")
    return c == p or c.endswith("." + p)


def qp_encode(data: bytes, extra: bytes = b"") -> str:
    """dkim-quoted-printable (RFC 6376 section 2.11) of ``data``.

    Safe characters are ``!``..``:``, ``<``, ``>``..``~`` (everything printable
    except ``;`` and ``=``); ``extra`` lists further octets to encode (``|``
    for ``z=``).
    """
    out = []
    for b in data:
        if 0x21 <= b <= 0x7E and b not in (0x3B, 0x3D) and b not in extra:
            out.append(chr(b))
        else:
            out.append("=%02X" % b)
    return "".join(out)


_QP = re.compile(rb"=([0-9A-Fa-f]{2})")


def qp_decode(value: bytes) -> bytes:
    """Decode dkim-quoted-printable: whitespace is dropped, ``=XX`` decoded.

    :raises ValueError: a ``=`` not followed by two hex digits.
    """
    v = re.sub(rb"[ \t\r\n]+", b"", value)
    decoded = _QP.sub(lambda m: bytes([int(m.group(1), 16)]), v)
    if b"=" in _QP.sub(b"", v):
        raise OptionError("invalid quoted-printable %r" % value[:40])
    return decoded


def printable(text: str, ascii_only: bool = False) -> str:
    """``text`` on one line, safe to show: what a message put in a tag value
    (control characters, line breaks; with ``ascii_only`` anything beyond
    ASCII) escaped as ``\\xNN``, ``\\uNNNN`` or ``\\UNNNNNNNN``."""
    def ok(c: str) -> bool:
        return c.isprintable() and (c.isascii() or not ascii_only)

    if all(ok(c) for c in text):
        return text
    return "".join(c if ok(c) else "\\x%02x" % ord(c) if ord(c) < 0x100 else
                   "\\u%04x" % ord(c) if ord(c) < 0x10000 else "\\U%08x" % ord(c) for c in text)
