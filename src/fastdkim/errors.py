"""Exception hierarchy.  Everything fastdkim raises derives from :class:`DKIMError`.

Verification never raises for a hostile or malformed message: such input becomes
a ``permerror`` (or ``temperror``) result.  Exceptions are for API misuse,
unusable keys and signing failures.
"""
from __future__ import annotations

__all__ = [
    "DKIMError",
    "KeyFormatError",
    "KeyTooWeakError",
    "SigningError",
    "MessageFormatError",
    "KeyLookupError",
    "TemporaryLookupError",
]


class DKIMError(Exception):
    """Base class of every exception fastdkim raises."""


class KeyFormatError(DKIMError, ValueError):
    """A private or public key could not be loaded or is of an unsupported type."""


class KeyTooWeakError(KeyFormatError):
    """An RSA key is shorter than the minimum allowed (RFC 8301)."""


class SigningError(DKIMError):
    """A message could not be signed (bad options, unusable message)."""


class MessageFormatError(SigningError, ValueError):
    """The message is malformed in a way that prevents signing it."""


class KeyLookupError(DKIMError):
    """A public key could not be fetched."""


class TemporaryLookupError(KeyLookupError):
    """A transient failure fetching a key (timeout, SERVFAIL, network error).

    Verification reports it as ``temperror``.
    """
