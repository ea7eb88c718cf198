"""The tags of ``ARC-Message-Signature`` and ``ARC-Seal`` fields (RFC 8617
sections 4.1.2 and 4.1.3), checked before any key is fetched.

An AMS is a DKIM signature without ``v=`` whose ``i=`` is the instance
number; an AS has ``a``, ``b``, ``cv``, ``d``, ``i``, ``s`` (and ``t``)
and no ``h=``.  Each check returns the parsed tags, or the reason (a
``str``) the field is unusable.  Neither raises.
"""
from __future__ import annotations

from functools import lru_cache
import re
from typing import Dict, List, Optional, Tuple, Union

from . import _core
from ._text import printable, to_a_label_domain
from .tags import FWS, MAX_H_NAMES, is_h_name

__all__ = ["AMSTags", "ASTags", "check_ams", "check_as", "instance_number", "shown", "ALGORITHMS", "CV_VALUES"]

#: Signing algorithms accepted in ARC fields: (key type, hash).  RFC 8617
#: names rsa-sha256; ed25519-sha256 (RFC 8463) is accepted as DKIM accepts
#: it.  rsa-sha1 is refused (RFC 8301).
ALGORITHMS = {"rsa-sha256": ("rsa", "sha256"), "ed25519-sha256": ("ed25519", "sha256")}
#: The values of an ARC-Seal's cv= tag.
CV_VALUES = ("none", "pass", "fail")

_AMS_REQUIRED = ("a", "b", "bh", "d", "h", "i", "s")
_AS_REQUIRED = ("a", "b", "cv", "d", "i", "s")
_MAX_TAGS = 64  # no valid ARC field has more; a guard against crafted ones
#: The longest d=, s= or h= value whose checks are remembered (bounds the
#: memory the caches hold, whatever the messages).
_CACHED_MAX = 1024
# An empty tag-spec: a semicolon right after the colon or after another one.
_EMPTY_SPEC = re.compile(rb"[:;][ \t\r\n]*;")


class _Signed:
    """Tags shared by both signatures."""

    __slots__ = ("instance", "algorithm", "key_type", "hash_name", "domain", "selector", "b", "unsigned",
                 "timestamp", "expiration", "key_name")

    def __init__(self) -> None:
        self.instance = 0
        self.algorithm = self.key_type = self.hash_name = self.domain = self.selector = self.key_name = ""
        self.b = self.unsigned = b""
        self.timestamp: Optional[int] = None
        self.expiration: Optional[int] = None

    def time_problem(self, now: int, clock_skew: int) -> Optional[str]:
        """Why the time tags make this signature fail at ``now`` (RFC 6376
        section 3.5, whose semantics the ARC signatures have: expired, or
        made more than ``clock_skew`` seconds in the future), or ``None``."""
        if self.expiration is not None and self.expiration < now:
            return "signature expired (x=%d)" % self.expiration
        if self.timestamp is not None and self.timestamp > now + clock_skew:
            return "signature timestamp t=%d is in the future" % self.timestamp
        return None


class AMSTags(_Signed):
    """A readable ARC-Message-Signature: what its tags say."""

    __slots__ = ("bh", "h", "relaxed_h", "relaxed_b", "length", "canonicalization")

    def __init__(self) -> None:
        super().__init__()
        self.bh = b""
        self.h: List[bytes] = []
        self.relaxed_h = self.relaxed_b = False
        self.length: Optional[int] = None
        self.canonicalization = "simple/simple"

    def body_key(self) -> Tuple[bool, Optional[int], str]:
        """(relaxed, length limit, hash name): what its body hash depends on."""
        return (self.relaxed_b, self.length, self.hash_name)


class ASTags(_Signed):
    """A readable ARC-Seal: what its tags say."""

    __slots__ = ("cv",)

    def __init__(self) -> None:
        super().__init__()
        self.cv = ""


def _number(v: bytes) -> Optional[int]:
    """1*DIGIT of at most 76 digits (ASCII only), or ``None``."""
    return int(v) if v.isdigit() and v.isascii() and len(v) <= 76 else None


def shown(value: bytes, limit: int) -> str:
    """At most ``limit`` bytes of a tag value as text safe to show in a
    reason: control characters and anything beyond ASCII escaped (a reason
    ends up in logs, terminals and Authentication-Results).  Raises nothing."""
    return printable(value[:limit].decode("utf-8", "replace"), ascii_only=True)


def instance_number(value: bytes) -> Optional[int]:
    """The instance an ``i=`` value names: 1 to 50 written as plain ASCII
    digits without a sign or leading zero (RFC 8617 section 4.2.1), or
    ``None``.  ``01`` is refused although it reads as 1: parsers that
    compare the text and parsers that compare the number would disagree
    about which set it belongs to.  Raises nothing."""
    if not (value.isdigit() and value.isascii() and len(value) <= 2) or value[:1] == b"0":
        return None
    return int(value)


def _common(raw: bytes, out: _Signed, required: Tuple[str, ...], what: str
            ) -> Union[str, Dict[str, bytes]]:
    """Parse ``raw`` into ``out``'s common tags; the tags, or the reason."""
    try:
        tags, out.unsigned = _core.core.parse_signature(raw, _MAX_TAGS)
    except ValueError as exc:
        return "malformed %s: %s" % (what, exc)
    if _EMPTY_SPEC.search(raw, raw.find(b":")):  # RFC 6376 section 3.2: no empty tag-spec but the last
        return "malformed %s: an empty tag-spec (;;)" % what
    for t in required:
        if t not in tags:
            return "required tag %s= missing" % t
    inst = instance_number(tags["i"])
    if inst is None or inst > 50:
        return "invalid instance i=%s" % shown(tags["i"], 20)
    out.instance = inst
    alg = tags["a"].decode("ascii", "replace")
    if alg not in ALGORITHMS:
        if alg.lower() == "rsa-sha1":
            return "rsa-sha1 is not accepted (RFC 8301)"
        return "unsupported algorithm a=%s" % shown(tags["a"], 40)
    out.algorithm = alg
    out.key_type, out.hash_name = ALGORITHMS[alg]
    domain, selector = _name(tags["d"]), _name(tags["s"])
    if domain is None:
        return "invalid signing domain d=%s" % shown(tags["d"], 80)
    if selector is None:
        return "invalid selector s=%s" % shown(tags["s"], 80)
    out.domain, out.selector = domain, selector
    out.key_name = "%s._domainkey.%s" % (out.selector, out.domain)
    try:
        out.b = _core.core.b64decode(tags["b"])
    except ValueError:
        return "malformed base64 in b="
    if not out.b:
        return "empty signature b="
    if "t" in tags:
        out.timestamp = _number(tags["t"])
        if out.timestamp is None:
            return "malformed t= value"
    if "x" in tags:
        out.expiration = _number(tags["x"])
        if out.expiration is None:
            return "malformed x= value"
        if out.timestamp is not None and out.expiration <= out.timestamp:  # (x MUST be greater than t)
            return "x= (%d) is not later than t= (%d)" % (out.expiration, out.timestamp)
    return tags


def _name(value: bytes) -> Optional[str]:
    """``d=`` or ``s=`` as an A-label name, or ``None`` (remembered: a
    sealer's names repeat from message to message; values too long for a
    name are refused without being remembered)."""
    return None if len(value) > _CACHED_MAX else _cached_name(value)


@lru_cache(maxsize=1024)
def _cached_name(value: bytes) -> Optional[str]:
    try:
        return to_a_label_domain(value.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None


def _h_names(value: bytes) -> Union[Tuple[bytes, ...], str]:
    """The names of an AMS ``h=`` list, lower case, or why it is unusable
    (remembered when short, as :func:`_name`)."""
    return _parse_h(value) if len(value) > _CACHED_MAX else _cached_h(value)


@lru_cache(maxsize=1024)
def _cached_h(value: bytes) -> Union[Tuple[bytes, ...], str]:
    return _parse_h(value)


def _parse_h(value: bytes) -> Union[Tuple[bytes, ...], str]:
    names = tuple(n.strip(FWS).lower() for n in value.split(b":"))
    if not all(is_h_name(n) for n in names):
        return "malformed h= list"
    if b"from" not in names:
        return "From field not signed (h= lacks from)"
    if b"arc-seal" in names:
        return "h= lists ARC-Seal (RFC 8617 section 4.1.2 forbids it)"
    return names


def check_ams(raw: bytes, max_header_names: int = MAX_H_NAMES) -> Union[AMSTags, str]:
    """The tags of the ARC-Message-Signature field ``raw``, or why it is unusable."""
    out = AMSTags()
    tags = _common(raw, out, _AMS_REQUIRED, "ARC-Message-Signature")
    if isinstance(tags, str):
        return tags
    # (RFC 8617 section 4.1.2 defines no v= for the AMS: one written anyway
    # is an unknown tag, ignored as RFC 6376 section 3.2 has unknown tags)
    try:
        out.bh = _core.core.b64decode(tags["bh"])
    except ValueError:
        return "malformed base64 in bh="
    if not out.bh:
        return "empty body hash bh="
    c = tags.get("c", b"simple")
    parts = c.split(b"/")
    if len(parts) == 1:
        parts.append(b"simple")
    if len(parts) != 2 or not all(p in (b"simple", b"relaxed") for p in parts):
        return "unknown canonicalization c=%s" % shown(c, 40)
    out.relaxed_h, out.relaxed_b = parts[0] == b"relaxed", parts[1] == b"relaxed"
    out.canonicalization = b"/".join(parts).decode("ascii")
    names = _h_names(tags["h"])
    if isinstance(names, str):
        return names
    if len(names) > max_header_names:
        return "h= lists %d fields (limit %d)" % (len(names), max_header_names)
    out.h = list(names)
    if "l" in tags:
        out.length = _number(tags["l"])
        if out.length is None:
            return "malformed l= value"
    return out


def check_as(raw: bytes) -> Union[ASTags, str]:
    """The tags of the ARC-Seal field ``raw``, or why it is unusable."""
    out = ASTags()
    tags = _common(raw, out, _AS_REQUIRED, "ARC-Seal")
    if isinstance(tags, str):
        return tags
    if "h" in tags:
        return "an ARC-Seal has no h= tag (RFC 8617 section 4.1.3)"
    cv = tags["cv"].decode("ascii", "replace")
    if cv not in CV_VALUES:
        return "invalid cv=%s" % shown(tags["cv"], 20)
    out.cv = cv
    return out
