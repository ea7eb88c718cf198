"""Canonicalization (RFC 6376 section 3.4).

The streaming body canonicalizers and the header primitives come from the
active core (compiled ``fastdkim._canon`` or its pure twin); this module adds
the small pieces shared by signing and verification.
"""
from __future__ import annotations

from typing import Any, Tuple

from . import _core
from .errors import OptionError

_CORE_NAMES = frozenset(
    ("BodyCanonicalizer", "BodyHasher", "canonicalize_body", "normalize_line_endings", "relaxed_header")
)


def __getattr__(name: str) -> Any:
    # The core's names resolve at access time: the active core may be switched.
    if name in _CORE_NAMES:
        return getattr(_core.core, name)
    if name == "ACCELERATED":
        return _core.ACCELERATED
    raise AttributeError("module %r has no attribute %r" % (__name__, name))

__all__ = [
    "ACCELERATED",
    "BodyCanonicalizer",
    "BodyHasher",
    "canonicalize_body",
    "normalize_line_endings",
    "parse_canonicalization",
    "relaxed_header",
    "CANONICALIZATIONS",
]

CANONICALIZATIONS = ("simple", "relaxed")


def parse_canonicalization(value: str) -> Tuple[str, str]:
    """``"relaxed/simple"`` → ``("relaxed", "simple")``.

    A single algorithm names the header canonicalization; the body one is then
    ``simple`` (section 3.5, ``c=``).

    :raises ValueError: an unknown algorithm or a malformed value.
    """
    parts = value.strip().lower().split("/")
    if len(parts) == 1:
        parts.append("simple")
    if len(parts) != 2 or not all(p in CANONICALIZATIONS for p in parts):
        raise OptionError("unknown canonicalization %r" % value)
    return parts[0], parts[1]
