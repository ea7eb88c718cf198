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
from ._version import __version__ as __version__
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
    SignerOptionError,
    SigningError,
    TagSyntaxError,
    TemporaryLookupError,
    TooManyHeaderFields,
    UnsignableMessageError,
    WorkerLost,
)

from typing import TYPE_CHECKING, List

if TYPE_CHECKING:  # (at run time, loaded when first used: see __getattr__)
    from .arc import ARCSealer as ARCSealer
    from .arc_chain import ARCResult as ARCResult
    from .arc_chain import verify_chain as verify_chain
    from .bulk import sign_many as sign_many
    from .bulk import verify_many as verify_many
    from .dns_source import DNSKeySource as DNSKeySource
    from .keys import KeyRecord as KeyRecord
    from .keys import generate_private_key as generate_private_key
    from .keys import load_private_key as load_private_key
    from .keys import parse_key_record as parse_key_record
    from .keys import public_key_record as public_key_record
    from .keysources import KeySource as KeySource
    from .policy import SigningPolicy as SigningPolicy
    from .signing import Signer as Signer
    from .signing import sign_all as sign_all
    from .signing import sign_file as sign_file
    from .verification import Status as Status
    from .verification import Verification as Verification
    from .verification import Verifier as Verifier
    from .verification import verify as verify

#: Names reachable from the package root, by the module that holds them;
#: a module loads when one of its names is first used, so that a program
#: (or a worker process) pays only for what it uses: signing alone never
#: loads verification, ARC or dnspython.
_LAZY = {
    "ARCSealer": ".arc", "ARCResult": ".arc_chain", "verify_chain": ".arc_chain",
    "sign_many": ".bulk", "verify_many": ".bulk",
    "DNSKeySource": ".dns_source",
    "KeyRecord": ".keys", "generate_private_key": ".keys", "load_private_key": ".keys",
    "parse_key_record": ".keys", "public_key_record": ".keys",
    "KeySource": ".keysources",
    "SigningPolicy": ".policy",
    "Signer": ".signing", "sign_all": ".signing", "sign_file": ".signing",
    "Status": ".verification", "Verification": ".verification", "Verifier": ".verification",
    "verify": ".verification",
}


def __getattr__(name: str) -> object:
    # ACCELERATED follows the core in use (the test suite switches it); read at access time.
    if name == "ACCELERATED":
        return _core.ACCELERATED
    import importlib

    if name == "aio":  # verification in an event loop; dnspython's async resolver loads with it
        return importlib.import_module(".aio", __name__)
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value  # found directly from now on
        return value
    if not name.startswith("__"):  # a module of the package, used as ``fastdkim.keys`` after ``import fastdkim``
        try:
            return importlib.import_module("." + name, __name__)
        except ModuleNotFoundError as exc:
            if exc.name != "%s.%s" % (__name__, name):
                raise
    raise AttributeError("module 'fastdkim' has no attribute %r" % name)


def __dir__() -> List[str]:
    return sorted(set(globals()) | set(__all__) | {"aio"})


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
    "SignerOptionError",
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
