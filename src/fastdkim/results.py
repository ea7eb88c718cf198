"""Verification results: the status words (RFC 8601), the :class:`Verification`
record given for each ``DKIM-Signature`` field, and the results for a message
too malformed to verify at all.

:mod:`fastdkim.verification` computes the results and re-exports these names.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Dict, List, Optional, Sequence, Tuple

from . import _core
from .message import MAX_HEADER_FIELDS

__all__ = ["Status", "Verification", "PASS", "FAIL", "NEUTRAL", "TEMPERROR", "PERMERROR"]


class Status(str, Enum):
    """The result of a signature (RFC 6376 section 6.1, RFC 8601 section 2.7.1).

    A ``str``: ``status == "pass"``, formatting and JSON give the plain word.
    """

    PASS = "pass"
    FAIL = "fail"
    NEUTRAL = "neutral"
    TEMPERROR = "temperror"
    PERMERROR = "permerror"

    __str__ = str.__str__
    __format__ = str.__format__  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(self.value)


PASS, FAIL, NEUTRAL, TEMPERROR, PERMERROR = Status.PASS, Status.FAIL, Status.NEUTRAL, Status.TEMPERROR, Status.PERMERROR


@dataclass
class Verification:
    """The result for one ``DKIM-Signature`` field.

    ``status`` is ``pass``, ``fail``, ``neutral``, ``temperror`` or
    ``permerror``; ``reason`` says why in words.  The remaining attributes
    are what the signature says (``None`` where absent or unparseable).
    """

    status: str
    reason: str
    domain: Optional[str] = None
    selector: Optional[str] = None
    algorithm: Optional[str] = None
    identity: Optional[str] = None
    canonicalization: Optional[str] = None
    signed_headers: Tuple[str, ...] = ()
    timestamp: Optional[int] = None
    expiration: Optional[int] = None
    body_length: Optional[int] = None
    #: ``l=`` left part of the body unsigned (content beyond ``l`` octets).
    body_truncated: bool = False
    #: the key record has ``t=y``: the domain is testing DKIM.
    testing: bool = False
    key_bits: Optional[int] = None
    index: int = 0
    #: the tags as written (values as bytes, surrounding whitespace removed)
    raw_tags: Dict[str, bytes] = field(default_factory=dict, repr=False)

    @property
    def tags(self) -> Dict[str, str]:
        """The signature's tags as text (d, s, a, i, l, t, x, h, ...); empty if unparseable."""
        return {k: v.decode("utf-8", "replace") for k, v in self.raw_tags.items()}

    @property
    def passed(self) -> bool:
        return self.status == PASS

    def as_dict(self) -> Dict[str, Any]:
        """The result as plain JSON-ready values (strings, numbers, booleans,
        ``None`` and a list), in a fixed order::

            json.dumps([r.as_dict() for r in fastdkim.verify(message)])

        Keys: ``status``, ``reason``, ``domain``, ``selector``, ``algorithm``,
        ``identity``, ``canonicalization``, ``body_length``,
        ``body_truncated``, ``testing``, ``key_bits``, ``signed_headers``,
        ``timestamp``, ``expiration``.
        """
        return {
            "status": str(self.status), "reason": self.reason, "domain": self.domain, "selector": self.selector,
            "algorithm": self.algorithm, "identity": self.identity, "canonicalization": self.canonicalization,
            "body_length": self.body_length, "body_truncated": self.body_truncated, "testing": self.testing,
            "key_bits": self.key_bits, "signed_headers": list(self.signed_headers),
            "timestamp": self.timestamp, "expiration": self.expiration,
        }

    def __str__(self) -> str:
        return "%s d=%s s=%s a=%s (%s)" % (self.status, self.domain, self.selector, self.algorithm, self.reason)


_ANY_LINE_BREAK = re.compile(rb"\r\n|\r|\n")


def all_permerror(fields: Sequence[Tuple[bytes, bytes]], reason: str) -> List[Verification]:
    """A ``permerror`` for every ``DKIM-Signature`` field of a malformed
    message (what its tags say kept where they parse); nothing is hashed and
    no key is looked up.  Raises nothing."""
    # Every signature a parser could see: lines split at any CR, LF or CRLF
    # (a smuggled line break may have hidden a field inside another).
    block = b"".join(raw for _, raw in fields)
    try:
        fields = _core.core.split_header_fields(_ANY_LINE_BREAK.sub(b"\r\n", block), MAX_HEADER_FIELDS)
    except ValueError:
        pass
    out: List[Verification] = []
    for name, raw in fields:
        if name != b"dkim-signature":
            continue
        r = Verification(PERMERROR, reason, index=len(out))
        try:
            tags, _ = _core.core.parse_signature(raw)
        except ValueError:
            pass
        else:
            r.raw_tags = tags
            as_written(r, tags)
        out.append(r)
    return out


def as_written(r: Verification, tags: Dict[str, bytes]) -> None:
    """Report d=, s= and a= as written, for a signature that fails its checks.
    Raises nothing."""
    for t, attr in (("d", "domain"), ("s", "selector"), ("a", "algorithm")):
        if t in tags:
            setattr(r, attr, tags[t].decode("utf-8", "replace"))
