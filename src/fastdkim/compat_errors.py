"""The exception classes of :mod:`fastdkim.compat`, with dkimpy 1.1's names
and base classes, so that ``except dkim.ValidationError`` (and so on) in code
written for dkimpy catches what :mod:`fastdkim.compat` raises::

    DKIMException (Exception)
    ├── InternalError
    ├── KeyFormatError
    ├── MessageFormatError
    ├── ParameterError
    │   └── InvalidCanonicalizationPolicyError   (dkimpy: Exception only)
    ├── ValidationError
    ├── AuthresNotFoundError
    ├── NaClNotFoundError
    ├── UnknownKeyTypeError
    └── DnsTimeoutError
    InvalidTagValueList (Exception)
    ├── DuplicateTag
    └── InvalidTagSpec

They are distinct from fastdkim's own tree (:mod:`fastdkim.errors`): the
compatibility layer translates fastdkim's exceptions into these.
"""
from __future__ import annotations

__all__ = [
    "DKIMException",
    "InternalError",
    "KeyFormatError",
    "MessageFormatError",
    "ParameterError",
    "ValidationError",
    "AuthresNotFoundError",
    "NaClNotFoundError",
    "UnknownKeyTypeError",
    "DnsTimeoutError",
    "InvalidCanonicalizationPolicyError",
    "InvalidTagValueList",
    "DuplicateTag",
    "InvalidTagSpec",
]


class DKIMException(Exception):
    """Base class for DKIM errors."""


class InternalError(DKIMException):
    """Internal error in the DKIM module (never raised by fastdkim.compat)."""


class KeyFormatError(DKIMException):
    """A private or public key cannot be parsed or used."""


class MessageFormatError(DKIMException):
    """An RFC 822 message (or a signature field in it) is malformed."""


class ParameterError(DKIMException):
    """An input parameter is invalid."""


class ValidationError(DKIMException):
    """A signature is invalid (bad tags, body hash mismatch)."""


class AuthresNotFoundError(DKIMException):
    """The authres package is missing (kept for ``except`` clauses; never raised)."""


class NaClNotFoundError(DKIMException):
    """The pynacl package is missing (kept for ``except`` clauses; fastdkim
    signs Ed25519 without it, so it is never raised)."""


class UnknownKeyTypeError(DKIMException):
    """The key type (``k=``) is not known (kept for ``except`` clauses; an
    unknown ``k=`` makes verification return ``False``)."""


class DnsTimeoutError(DKIMException):
    """A DNS query for a public key timed out (or failed for another
    transient reason).  A ``dnsfunc`` raises it; verification returns ``False``."""


class InvalidCanonicalizationPolicyError(ParameterError):
    """The canonicalization given for signing is not ``simple`` or ``relaxed``
    (dkimpy derives it from ``Exception`` alone; here it is also a
    :class:`ParameterError`, so ``except DKIMException`` catches it too)."""


class InvalidTagValueList(Exception):
    """A tag=value list cannot be parsed."""


class DuplicateTag(InvalidTagValueList):
    """A tag appears twice in a tag=value list."""


class InvalidTagSpec(InvalidTagValueList):
    """A tag=value list holds a spec that is not ``name=value``."""
