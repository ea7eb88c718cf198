"""fastdkim: fast, standards-exact DKIM signing and verification.

Sign::

    signer = fastdkim.Signer("example.com", "sel", open("key.pem", "rb").read())
    header = signer.sign(message)          # b"DKIM-Signature: ...\\r\\n"
    signed = header + message

Verify::

    for result in fastdkim.verify(signed):  # DNS by default
        print(result.status, result.domain, result.reason)

In an event loop: ``await fastdkim.aio.verify(signed)``.

``fastdkim.ACCELERATED`` tells whether the compiled core is in use.
"""
from __future__ import annotations

from . import _core
from .keysources import KeySource
from .errors import (
    AuthResError,
    DKIMError,
    FromAddressError,
    HeaderTooLarge,
    JournalError,
    KeyFormatError,
    KeyLookupError,
    KeyRecordError,
    KeyTooWeakError,
    MboxLockedError,
    MessageFormatError,
    NoSigningKey,
    OptionError,
    PolicyError,
    ReplacedMeanwhile,
    SigningError,
    TagSyntaxError,
    TemporaryLookupError,
    TooManyHeaderFields,
    UnsignableMessageError,
    WorkerLost,
)
from .keys import KeyRecord, generate_private_key, load_private_key, parse_key_record, public_key_record
from .bulk import sign_many, verify_many
from .policy import SigningPolicy
from .signing import Signer, sign_all, sign_file
from .verification import Status, Verification, Verifier, verify
from ._version import __version__ as __version__

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # (at run time, loaded when first used: see __getattr__)
    from .arc import ARCSealer as ARCSealer
    from .dns_source import DNSKeySource as DNSKeySource
    from .arc_chain import ARCResult as ARCResult
    from .arc_chain import verify_chain as verify_chain


#: Names reachable from the package root whose modules load when first used
#: (ARC; the DNS key source, with dnspython, for the programs that use it).
_LAZY = {"ARCSealer": ".arc", "ARCResult": ".arc_chain", "verify_chain": ".arc_chain",
         "DNSKeySource": ".dns_source"}


def __getattr__(name: str) -> object:
    # ACCELERATED follows the core in use (the test suite switches it); read at access time.
    if name == "ACCELERATED":
        return _core.ACCELERATED
    import importlib

    if name == "aio":  # verification in an event loop; dnspython's async resolver loads with it
        return importlib.import_module(".aio", __name__)
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError("module 'fastdkim' has no attribute %r" % name)

__all__ = [
    "ACCELERATED",
    "ARCResult",
    "ARCSealer",
    "AuthResError",
    "DKIMError",
    "DNSKeySource",
    "FromAddressError",
    "HeaderTooLarge",
    "JournalError",
    "KeyFormatError",
    "KeyLookupError",
    "KeyRecord",
    "KeyRecordError",
    "KeySource",
    "KeyTooWeakError",
    "MboxLockedError",
    "MessageFormatError",
    "NoSigningKey",
    "OptionError",
    "PolicyError",
    "ReplacedMeanwhile",
    "Signer",
    "SigningError",
    "SigningPolicy",
    "Status",
    "TagSyntaxError",
    "TemporaryLookupError",
    "TooManyHeaderFields",
    "UnsignableMessageError",
    "Verification",
    "Verifier",
    "generate_private_key",
    "load_private_key",
    "parse_key_record",
    "public_key_record",
    "sign_all",
    "sign_file",
    "verify",
    "verify_chain",
    "sign_many",
    "verify_many",
    "WorkerLost",
]
