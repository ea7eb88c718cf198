"""Fetching DKIM public key records (RFC 6376, section 3.6.2).

A verifier asks a :class:`KeySource` for the TXT records published at
``selector._domainkey.domain``.  The conventions every key source follows:

* ``lookup(name)`` takes the name as text (``sel._domainkey.example.com``; a
  trailing dot is optional, case does not matter) and returns a ``list`` of
  ``bytes``: one item per TXT record, each the concatenation of the record's
  character-strings with nothing in between (RFC 6376, section 3.6.2.2).
* A name that does not exist (NXDOMAIN) or has no TXT records (NODATA) gives
  ``[]``; the verifier reports that as ``permerror`` ("no key").
* A transient failure (timeout, SERVFAIL, REFUSED, no nameserver answered, a
  network error) raises :class:`~fastdkim.errors.TemporaryLookupError`; the
  verifier reports ``temperror``.
* A name that cannot be a DNS name (an empty label, a label longer than 63
  octets, more than 253 octets in all, a label that IDNA cannot encode)
  raises :class:`~fastdkim.errors.KeyLookupError`, which is permanent.

Non-ASCII labels are converted to A-labels before lookup (IDNA 2008 with
UTS 46 mapping when the ``idna`` package is installed, Python's built-in
IDNA 2003 codec otherwise); names are otherwise taken literally (no
backslash escapes are interpreted).

Three implementations are provided: :class:`DNSKeySource` (real DNS through
dnspython, with an LRU cache that honours TTLs), :class:`MappingKeySource`
(a fixed mapping, for tests and offline use) and :class:`CallableKeySource`
(a user function), with :func:`zone_file_key_source` serving a zone file.
:func:`as_key_source` turns whatever a caller passed as ``keys=`` into a key
source.

This module holds the protocol and that choice; the sources themselves live
in :mod:`fastdkim.dns_source` and :mod:`fastdkim.local_sources` (names in
:mod:`fastdkim._dnsname`) and are importable from here.  For an event loop,
:class:`fastdkim.aio.AsyncDNSKeySource` follows the same conventions with an
``async`` ``lookup``.
"""
from __future__ import annotations

import collections.abc
import threading
from typing import TYPE_CHECKING, Any, Optional, Protocol, runtime_checkable

from .local_sources import CallableKeySource, MappingKeySource, zone_file_key_source
from .local_sources import RecordValue as RecordValue

if TYPE_CHECKING:
    from ._dnsbase import parse_nameserver as _parse_nameserver  # noqa: F401
    from .dns_source import CacheStats, DNSKeySource

#: Names of the DNS key source, loaded (with dnspython) when first used: a
#: program that signs, or verifies with keys of its own, never pays for it.
_LAZY = {"DNSKeySource": ".dns_source", "CacheStats": ".dns_source", "_parse_nameserver": "._dnsbase"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError("module %r has no attribute %r" % (__name__, name))
    import importlib

    value = getattr(importlib.import_module(module, __package__), "parse_nameserver" if name == "_parse_nameserver"
                    else name)
    globals()[name] = value
    return value


__all__ = [
    "CacheStats",
    "CallableKeySource",
    "DNSKeySource",
    "KeySource",
    "MappingKeySource",
    "as_key_source",
    "zone_file_key_source",
]


@runtime_checkable
class KeySource(Protocol):
    """Anything with a ``lookup`` method returning TXT records."""

    def lookup(self, name: str) -> list[bytes]:
        """Return the TXT records at *name*, each joined into one ``bytes``.

        Returns ``[]`` when the name does not exist or has no TXT records.

        :raises TemporaryLookupError: on a transient failure.
        :raises KeyLookupError: when *name* is not a valid DNS name, or on
            another permanent failure.
        """
        ...  # pragma: no cover


# -- choosing a key source ---------------------------------------------------------------

_default: Optional["DNSKeySource"] = None
_default_lock = threading.Lock()


def _default_source() -> "DNSKeySource":
    global _default
    source = _default
    if source is None:
        with _default_lock:
            if _default is None:
                from .dns_source import DNSKeySource

                _default = DNSKeySource()
            source = _default
    return source


def as_key_source(keys: Any) -> KeySource:
    """Turn the ``keys=`` argument of the verifier into a :class:`KeySource`.

    * ``None``: the process-wide default :class:`DNSKeySource` (created on
      first use, shared by all threads);
    * an object with a callable ``lookup`` method: used as is;
    * a :class:`collections.abc.Mapping`: a :class:`MappingKeySource`;
    * any other callable: a :class:`CallableKeySource`.

    :raises TypeError: anything else (including a class rather than an instance).
    :raises ValueError: a mapping holds an invalid name.
    """
    if keys is None:
        return _default_source()
    if isinstance(keys, type):
        raise TypeError("keys must be a key source instance, not the class %s" % keys.__name__)
    if callable(getattr(keys, "lookup", None)):
        return keys  # type: ignore[no-any-return]
    if isinstance(keys, collections.abc.Mapping):
        return MappingKeySource(keys)
    if callable(keys):
        return CallableKeySource(keys)
    raise TypeError(
        "keys must be None (DNS), a mapping of name to TXT value, a callable taking a name, "
        "or an object with a lookup(name) method; got %s" % type(keys).__name__
    )

