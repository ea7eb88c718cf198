"""fastdkim: fast, standards-exact DKIM signing and verification.

Sign::

    signer = fastdkim.Signer("example.com", "sel", open("key.pem", "rb").read())
    header = signer.sign(message)          # b"DKIM-Signature: ...\\r\\n"
    signed = header + message

Verify::

    for result in fastdkim.verify(signed):  # DNS by default
        print(result.status, result.domain, result.reason)

``fastdkim.ACCELERATED`` tells whether the compiled core is in use.
"""
from __future__ import annotations

from ._core import ACCELERATED
from .dns import DNSKeySource, KeySource
from .errors import (
    DKIMError,
    KeyFormatError,
    KeyLookupError,
    KeyTooWeakError,
    MessageFormatError,
    SigningError,
    TemporaryLookupError,
)
from .keys import KeyRecord, KeyRecordError, generate_private_key, load_private_key, parse_key_record, public_key_record
from .policy import SigningPolicy
from .signing import Signer, sign_all, sign_file
from .verification import Verification, Verifier, verify

__version__ = "0.1.0"

__all__ = [
    "ACCELERATED",
    "DKIMError",
    "DNSKeySource",
    "KeyFormatError",
    "KeyLookupError",
    "KeyRecord",
    "KeyRecordError",
    "KeySource",
    "KeyTooWeakError",
    "MessageFormatError",
    "Signer",
    "SigningError",
    "SigningPolicy",
    "TemporaryLookupError",
    "Verification",
    "Verifier",
    "generate_private_key",
    "load_private_key",
    "parse_key_record",
    "public_key_record",
    "sign_all",
    "sign_file",
    "verify",
]
