"""Canonicalization (RFC 6376 section 3.4).

The streaming body canonicalizers and the header primitives come from the
active core (compiled ``fastdkim._canon`` or its pure twin); this module adds
the small pieces shared by signing and verification.
"""
from __future__ import annotations

from typing import Any, Iterable, Optional, Tuple

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
    "digest_body",
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


#: bodies up to this long, in one chunk, are canonicalized and hashed in one
#: call; longer ones stream through a hasher (no canonical copy of them)
ONE_CALL_MAX = 16384


def digest_body(chunks: Iterable[Any], relaxed: bool, limit: Optional[int] = None, bare_lf: bool = False,
                hash_name: str = "sha256") -> Tuple[bytes, int]:
    """The digest of the canonical body that *chunks* (bytes-like pieces of
    a message body) make, and its length, as the active core's
    ``BodyHasher`` gives them; a small body in one piece is hashed in one
    call, without a hasher's fixed cost.

    :raises ValueError: ``hash_name`` is neither ``sha256`` nor ``sha1``,
        or ``limit`` is negative.
    :raises TypeError: a chunk is not bytes-like.
    """
    core = _core.core
    it = iter(chunks)
    first: Any = next(it, b"")
    second = next(it, None)
    if second is None and len(first) <= ONE_CALL_MAX:
        return core.body_digest(first, relaxed, limit, bare_lf, hash_name)
    h = core.BodyHasher(relaxed, limit, bare_lf, hash_name)
    h.update(first)
    if second is not None:
        h.update(second)
    for chunk in it:
        h.update(chunk)
    return h.digest(), h.length
