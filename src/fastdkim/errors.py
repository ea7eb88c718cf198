"""Every exception fastdkim defines, in one tree under :class:`DKIMError`.

What fastdkim raises is one of these, an :class:`OSError` from the file system
(a file that cannot be read or written), or a :class:`TypeError` for an
argument of the wrong type.  Verification never raises for a hostile or
malformed message: such input becomes a ``permerror`` (or ``temperror``)
result.

::

    DKIMError
    ├── KeyFormatError (ValueError)          a private or public key is unusable
    │   └── KeyTooWeakError                  an RSA key below the minimum (RFC 8301)
    ├── KeyRecordError (ValueError)          a DNS key record is malformed
    ├── TagSyntaxError (ValueError)          a tag-list is malformed
    ├── KeyLookupError                       a public key could not be fetched
    │   └── TemporaryLookupError             ... for now (timeout, SERVFAIL)
    ├── MessageFormatError (ValueError)      a message cannot be read as one
    │   ├── HeaderTooLarge                   its header block is too large
    │   ├── TooManyHeaderFields              ... or has too many fields
    │   └── UnsignableMessageError (SigningError)  and therefore cannot be signed
    ├── SigningError                         a message could not be signed
    │   ├── FromAddressError                 no single usable From address
    │   └── NoSigningKey                     no key for the From domain
    ├── PolicyError (ValueError)             a signing policy is invalid
    ├── OptionError (ValueError)             an argument has a value outside its range
    ├── AuthResError (ValueError)            an Authentication-Results field is malformed
    ├── MboxLockedError (OSError)            another program holds an mbox lock
    ├── JournalError (OSError)               an interrupted rewrite cannot be completed
    ├── ReplacedMeanwhile (OSError)          a file changed under fastdkim's feet
    └── WorkerLost                           a worker process died on a message (bulk)
"""
from __future__ import annotations

__all__ = [
    "DKIMError",
    "KeyFormatError",
    "KeyTooWeakError",
    "KeyRecordError",
    "TagSyntaxError",
    "KeyLookupError",
    "TemporaryLookupError",
    "MessageFormatError",
    "HeaderTooLarge",
    "TooManyHeaderFields",
    "UnsignableMessageError",
    "SigningError",
    "SignerOptionError",
    "FromAddressError",
    "NoSigningKey",
    "PolicyError",
    "OptionError",
    "AuthResError",
    "MboxLockedError",
    "JournalError",
    "ReplacedMeanwhile",
    "WorkerLost",
]


class DKIMError(Exception):
    """Base class of every exception fastdkim defines."""


class KeyFormatError(DKIMError, ValueError):
    """A private or public key could not be loaded or is of an unsupported type."""


class KeyTooWeakError(KeyFormatError):
    """An RSA key is shorter than the minimum allowed (RFC 8301)."""


class KeyRecordError(DKIMError, ValueError):
    """A DKIM key record (the TXT value at ``selector._domainkey.domain``) is
    malformed or unusable (RFC 6376 section 3.6.1).  ``ignored`` is true for
    a record that section has verifiers ignore or discard (a ``v=`` other
    than ``DKIM1``, ``s=`` without ``email``)."""

    ignored: bool = False


class TagSyntaxError(DKIMError, ValueError):
    """A tag-list (RFC 6376 section 3.2) is malformed."""


class KeyLookupError(DKIMError):
    """A public key could not be fetched."""


class TemporaryLookupError(KeyLookupError):
    """A transient failure fetching a key (timeout, SERVFAIL, network error).

    Verification reports it as ``temperror``.
    """


class MessageFormatError(DKIMError, ValueError):
    """A message cannot be read as one (a header block too large, with too
    many fields, a file not opened in binary mode), or, when signing, is
    malformed in a way that prevents signing it."""


class HeaderTooLarge(MessageFormatError):
    """The header block is larger than the configured limit."""


class TooManyHeaderFields(MessageFormatError):
    """The header block has more fields than the configured limit."""


class SigningError(DKIMError):
    """A message could not be signed (bad options, unusable message)."""


class UnsignableMessageError(MessageFormatError, SigningError):
    """The message is malformed in a way that prevents signing it (no From
    field, a header block other parsers would read differently)."""


class FromAddressError(SigningError):
    """The From field does not give exactly one usable address."""


class NoSigningKey(SigningError):
    """The signing policy has no key for the From domain."""


class PolicyError(DKIMError, ValueError):
    """A signing policy (TOML file or mapping) is invalid."""


class OptionError(DKIMError, ValueError):
    """An argument has the right type but a value fastdkim cannot use (a
    negative count, an unknown canonicalization, a malformed nameserver)."""


class SignerOptionError(OptionError, SigningError):
    """A :class:`~fastdkim.Signer` option has the right type but a value it
    cannot use (a domain, selector, algorithm, canonicalization, identity,
    header list or expiration): an :class:`OptionError`, and a
    :class:`SigningError` as it always was."""


class AuthResError(DKIMError, ValueError):
    """An ``Authentication-Results`` field (RFC 8601) is malformed: the
    message says what was expected, and where."""


class MboxLockedError(DKIMError, OSError):
    """Another program holds the mbox lock (a delivery in progress)."""


class JournalError(DKIMError, OSError):
    """An interrupted rewrite that cannot be completed safely (the message says
    why, and where the complete new content is kept)."""


class ReplacedMeanwhile(DKIMError, OSError):
    """The file to be replaced was moved, removed or replaced by another
    program while its new content was being written (a mail client filing a
    Maildir message): nothing was written, so the message is not duplicated.
    Where the other program's file could not be put back under its name (it
    was moved again meanwhile), ``theirs`` says where it is kept; else it
    is ``None``."""

    theirs: "str | None" = None


class WorkerLost(DKIMError):
    """A worker process died while it handled this message; the message was
    tried again alone in a new worker, which died too (bulk signing reports
    it instead of retrying it forever)."""
