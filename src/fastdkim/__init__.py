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
from .keysources import DNSKeySource, KeySource
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


def __getattr__(name: str) -> object:
    # ACCELERATED follows the core in use (the test suite switches it); read at access time.
    if name == "ACCELERATED":
        return _core.ACCELERATED
    if name == "aio":  # verification in an event loop; dnspython's async resolver loads with it
        import importlib

        return importlib.import_module(".aio", __name__)
    raise AttributeError("module 'fastdkim' has no attribute %r" % name)

__all__ = [
    "ACCELERATED",
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
    "sign_many",
    "verify_many",
    "WorkerLost",
]
