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
(a user function).  :func:`as_key_source` turns whatever a caller passed as
``keys=`` into a key source.
"""
from __future__ import annotations

import collections
import collections.abc
import functools
import ipaddress
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Protocol, Sequence, Tuple, Union, runtime_checkable

# Absolute imports of the dnspython package (this module was once named
# fastdkim.dns, which is still importable as an alias).
import dns.exception
import dns.name
import dns.nameserver
import dns.rdataclass
import dns.rdatatype
import dns.resolver

from ._text import alabel
from .errors import KeyLookupError, OptionError, TemporaryLookupError

__all__ = [
    "CacheStats",
    "CallableKeySource",
    "DNSKeySource",
    "KeySource",
    "MappingKeySource",
    "as_key_source",
    "zone_file_key_source",
]

#: What a mapping value or a callback may return for one name.
RecordValue = Union[None, str, bytes, Sequence[Union[str, bytes]]]

_MAX_LABEL = 63
_MAX_NAME = 253  # text form without the trailing dot; 255 octets on the wire


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


# -- names -------------------------------------------------------------------------

def _show(name: str, limit: int = 80) -> str:
    """repr() of a name for an error message, shortened if very long."""
    return repr(name) if len(name) <= limit else repr(name[:limit]) + "... (%d characters)" % len(name)


def _clip(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _normalize(name: Any) -> Tuple[str, Tuple[bytes, ...]]:
    if isinstance(name, str):
        return _normalize_str(name)
    return _normalize_any(name)


@functools.lru_cache(maxsize=4096)
def _normalize_str(name: str) -> Tuple[str, Tuple[bytes, ...]]:
    # Verifiers look the same few names up again and again: remember them.
    return _normalize_any(name)


def _normalize_any(name: Any) -> Tuple[str, Tuple[bytes, ...]]:
    """Return ``(key, labels)`` for *name*: the lower-cased text form without a
    trailing dot, and the wire labels (without the root label).

    :raises KeyLookupError: *name* is not a valid DNS name.
    :raises TypeError: *name* is neither ``str`` nor ``bytes``.
    """
    if isinstance(name, (bytes, bytearray)):
        try:
            name = bytes(name).decode("ascii")
        except UnicodeDecodeError:
            raise KeyLookupError("invalid DNS name: not ASCII") from None
    elif not isinstance(name, str):
        raise TypeError("a DNS name must be str, not %s" % type(name).__name__)
    text = name[:-1] if name.endswith(".") else name
    if not text:
        raise KeyLookupError("invalid DNS name %s: empty" % _show(name))
    if len(text) > 4 * _MAX_NAME:  # far too long whatever IDNA does; spare the work
        raise KeyLookupError("invalid DNS name %s: longer than %d octets" % (_show(name), _MAX_NAME))
    labels: List[bytes] = []
    for label in text.split("."):
        if not label:
            raise KeyLookupError("invalid DNS name %s: empty label" % _show(name))
        if label.isascii():
            raw = label.lower().encode("ascii")
        elif len(label) > 4 * _MAX_LABEL:  # far too long for any A-label; spare the IDNA codec
            raise KeyLookupError("invalid DNS name %s: label of %d characters" % (_show(name), len(label)))
        else:
            try:
                raw = alabel(label).lower()
            except (UnicodeError, ValueError) as exc:
                raise KeyLookupError(
                    "invalid DNS name %s: label %s cannot be IDNA-encoded (%s)" % (_show(name), _show(label), _clip(str(exc)))
                ) from None
        if len(raw) > _MAX_LABEL:
            raise KeyLookupError("invalid DNS name %s: label of %d octets (at most %d)" % (_show(name), len(raw), _MAX_LABEL))
        labels.append(raw)
    total = sum(len(label) for label in labels) + len(labels) - 1
    if total > _MAX_NAME:
        raise KeyLookupError("invalid DNS name %s: %d octets (at most %d)" % (_show(name), total, _MAX_NAME))
    return b".".join(labels).decode("ascii"), tuple(labels)


def _normalize_key(name: Any) -> str:
    return _normalize(name)[0]


# -- values --------------------------------------------------------------------------

def _one_record(item: Any) -> bytes:
    if isinstance(item, str):
        return item.encode("utf-8")
    if isinstance(item, (bytes, bytearray, memoryview)):
        return bytes(item)
    raise TypeError("a TXT record must be str or bytes, not %s" % type(item).__name__)


def _records(value: Any) -> List[bytes]:
    """Convert a mapping value or callback result to a list of records.

    :raises TypeError: the value is of an unsupported type.
    :raises UnicodeEncodeError: a ``str`` cannot be encoded as UTF-8.
    """
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [_one_record(item) for item in value]
    return [_one_record(value)]


class MappingKeySource:
    """Key records from a mapping of name to value.

    Names are compared case-insensitively, with or without a trailing dot.  A
    value is a ``str`` or ``bytes`` (one TXT record), a list or tuple of them
    (several TXT records) or ``None`` (no record).  The mapping is copied when
    the source is created.

    :raises ValueError: a name in the mapping is not a valid DNS name, or two
        names differ only in case or a trailing dot.
    :raises TypeError: a name or value is of an unsupported type.
    """

    def __init__(self, mapping: "collections.abc.Mapping[Any, Any]") -> None:
        records: Dict[str, Sequence[bytes]] = {}
        for name, value in mapping.items():
            try:
                key = _normalize_key(name)
            except KeyLookupError as exc:
                raise OptionError("key mapping: %s" % exc) from None
            if key in records:
                raise OptionError("key mapping: %r appears twice (names are compared case-insensitively)" % key)
            try:
                records[key] = tuple(_records(value))
            except UnicodeError as exc:
                raise OptionError("key mapping: the value for %r cannot be encoded: %s" % (name, exc)) from None
            except TypeError as exc:
                raise TypeError("key mapping: the value for %r: %s" % (name, exc)) from None
        self._records: Dict[str, Sequence[bytes]] = records

    def lookup(self, name: str) -> list[bytes]:
        """Return the records stored for *name* (``[]`` if none).

        :raises KeyLookupError: *name* is not a valid DNS name.
        """
        return list(self._records.get(_normalize_key(name), ()))

    def __repr__(self) -> str:
        return "MappingKeySource(<%d names>)" % len(self._records)


class CallableKeySource:
    """Key records from a function ``f(name) -> str | bytes | list | None``.

    *f* receives the name lower-cased, without a trailing dot, with any
    non-ASCII label converted to an A-label.  Its result follows the
    :class:`MappingKeySource` value conventions.
    """

    def __init__(self, func: Callable[[str], RecordValue]) -> None:
        if not callable(func):
            raise TypeError("CallableKeySource needs a callable, not %s" % type(func).__name__)
        self.func = func

    def lookup(self, name: str) -> list[bytes]:
        """Call the function and convert its result.

        :raises KeyLookupError: *name* is not a valid DNS name, or the function
            raised :class:`KeyLookupError`.
        :raises TemporaryLookupError: the function raised it, raised any other
            exception, or returned a value of an unsupported type.
        """
        key = _normalize_key(name)
        try:
            value = self.func(key)
        except KeyLookupError:
            raise
        except Exception as exc:
            raise TemporaryLookupError(
                "key lookup callback failed for %s: %s: %s" % (key, type(exc).__name__, exc)
            ) from exc
        try:
            return _records(value)
        except (TypeError, UnicodeError) as exc:
            raise TemporaryLookupError("key lookup callback returned an unusable value for %s: %s" % (key, exc)) from exc

    def __repr__(self) -> str:
        return "CallableKeySource(%r)" % (self.func,)


# -- DNS -----------------------------------------------------------------------------

@dataclass(frozen=True)
class CacheStats:
    """Counters of a :class:`DNSKeySource` since creation or ``cache_clear()``.

    ``lookups == hits + misses``; every miss sent a DNS query.  A lookup that
    waited for the same query sent by another thread counts as a hit.
    """

    lookups: int
    hits: int
    misses: int
    evictions: int
    size: int


@dataclass(frozen=True)
class _Failure:
    """A remembered failure: raised again, as a fresh exception, on a hit."""

    kind: type
    message: str


class _Flight:
    """A query in progress, which other threads wanting the same name wait for."""

    __slots__ = ("done", "result")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: Any = None


def _answer(value: Any) -> List[bytes]:
    """A cached or shared answer: fresh records, or its failure raised afresh."""
    if isinstance(value, _Failure):
        raise value.kind(value.message)
    return list(value)


def _parse_port(text: str, entry: str) -> int:
    if not text.isdigit() or not text.isascii():
        raise OptionError("nameserver %r: invalid port %r" % (entry, text))
    port = int(text)
    if not 0 < port < 65536:
        raise OptionError("nameserver %r: port %d out of range" % (entry, port))
    return port


def _parse_nameserver(entry: str, default_port: int) -> Tuple[str, int]:
    """Parse ``"IP"``, ``"IPv4:PORT"``, ``"[IPv6]"`` or ``"[IPv6]:PORT"``.

    A bare IPv6 address (``"::1"``) uses *default_port*.

    :raises ValueError: the entry is not an IP address with an optional port.
    """
    if not isinstance(entry, str):
        raise TypeError("a nameserver must be a str, not %s" % type(entry).__name__)
    text = entry.strip()
    port = default_port
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise OptionError("nameserver %r: missing ']'" % (entry,))
        host, rest = text[1:end], text[end + 1:]
        if rest:
            if not rest.startswith(":"):
                raise OptionError("nameserver %r: expected ':PORT' after ']'" % (entry,))
            port = _parse_port(rest[1:], entry)
        version = 6
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        port = _parse_port(port_text, entry)
        version = 4
    else:
        host, version = text, 0
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise OptionError("nameserver %r: %r is not an IP address" % (entry, host)) from None
    if version and address.version != version:
        raise OptionError("nameserver %r: write IPv6 addresses with a port as [ADDRESS]:PORT" % (entry,))
    return host, port


class DNSKeySource:
    """TXT records from DNS, through dnspython, with a TTL-honouring LRU cache.

    :param nameservers: IP addresses of the resolvers to ask, each written
        ``"IP"``, ``"IPv4:PORT"``, ``"[IPv6]"`` or ``"[IPv6]:PORT"`` (a single
        string is accepted too).  ``None`` reads the system configuration
        (``/etc/resolv.conf``); if that is missing or unusable the source is
        still created, and every lookup raises :class:`TemporaryLookupError`.
    :param port: port used for nameservers written without one.
    :param timeout: total seconds one lookup may take (all retries included).
    :param cache_size: most names remembered; ``0`` disables caching.
    :param max_ttl: longest time, in seconds, an answer is cached.
    :param negative_ttl: longest time a "no such name" or "no TXT record"
        answer is cached; shorter if the SOA record in the answer says so.
    :param error_ttl: how long a failure is remembered (``0``: never), so that
        a failing domain is not queried once per message.
    :param clock: monotonic clock used for cache expiry (injectable for tests).
    :param resolver: a configured :class:`dns.resolver.Resolver` to use as is;
        *nameservers*, *port* and *timeout* are then not applied.

    Threads may share one source: a name that several threads look up at
    once is queried once, and they all get that answer.
    :raises ValueError: an invalid option, or *nameservers* together with
        *resolver*.
    """

    def __init__(
        self,
        *,
        nameservers: Optional[Union[str, Sequence[str]]] = None,
        port: int = 53,
        timeout: float = 5.0,
        cache_size: int = 4096,
        max_ttl: int = 86400,
        negative_ttl: int = 300,
        error_ttl: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        resolver: Optional[dns.resolver.Resolver] = None,
    ) -> None:
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise OptionError("port must be an integer from 1 to 65535, got %r" % (port,))
        if not timeout > 0:
            raise OptionError("timeout must be > 0, got %r" % (timeout,))
        for option, value in (("cache_size", cache_size), ("max_ttl", max_ttl),
                              ("negative_ttl", negative_ttl), ("error_ttl", error_ttl)):
            if not value >= 0:
                raise OptionError("%s must be >= 0, got %r" % (option, value))
        self.timeout = timeout
        self.cache_size = int(cache_size)
        self.max_ttl = max_ttl
        self.negative_ttl = negative_ttl
        self.error_ttl = error_ttl
        self._clock = clock
        self._config_error: Optional[str] = None

        if resolver is not None:
            if nameservers is not None:
                raise OptionError("pass either nameservers or resolver, not both")
            self.resolver: Optional[dns.resolver.Resolver] = resolver
        elif nameservers is not None:
            if isinstance(nameservers, str):
                nameservers = [nameservers]
            parsed = [_parse_nameserver(entry, port) for entry in nameservers]
            if not parsed:
                raise OptionError("nameservers is empty")
            self.resolver = self._new_resolver(configure=False)
            self.resolver.nameservers = [dns.nameserver.Do53Nameserver(host, p) for host, p in parsed]
        else:
            try:
                self.resolver = self._new_resolver(configure=True)
                self.resolver.port = port
            except Exception as exc:
                self._config_error = "no usable resolver configuration (%s: %s)" % (type(exc).__name__, exc)
                try:
                    self.resolver = self._new_resolver(configure=False)
                except Exception:  # pragma: no cover - e.g. an unparsable host name
                    self.resolver = None

        self._lock = threading.Lock()
        self._cache: "collections.OrderedDict[str, Tuple[float, Any]]" = collections.OrderedDict()
        self._lookups = self._hits = self._misses = self._evictions = 0
        # Names being queried right now: other threads wanting the same name
        # wait for that answer instead of sending the same query again.
        self._inflight: Dict[str, _Flight] = {}

    def _new_resolver(self, configure: bool) -> dns.resolver.Resolver:
        resolver = dns.resolver.Resolver(configure=configure)
        resolver.lifetime = self.timeout
        resolver.timeout = min(resolver.timeout, self.timeout)
        resolver.cache = None
        # EDNS0 with a 1232-octet payload: most key records fit without TCP.
        resolver.use_edns(0, 0, 1232)
        return resolver

    # -- the cache -----------------------------------------------------------------

    @property
    def stats(self) -> CacheStats:
        """A snapshot of the cache counters."""
        with self._lock:
            return CacheStats(self._lookups, self._hits, self._misses, self._evictions, len(self._cache))

    def cache_clear(self) -> None:
        """Forget every cached answer and failure, and reset :attr:`stats`."""
        with self._lock:
            self._cache.clear()
            self._lookups = self._hits = self._misses = self._evictions = 0

    def _store(self, key: str, value: Any, ttl: float) -> None:
        if self.cache_size <= 0 or not ttl > 0:
            return
        expires = self._clock() + ttl
        with self._lock:
            self._cache[key] = (expires, value)
            self._cache.move_to_end(key)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
                self._evictions += 1

    # -- lookups -------------------------------------------------------------------

    def lookup(self, name: str) -> list[bytes]:
        """Return the TXT records at *name*, from the cache or from DNS.

        :raises KeyLookupError: *name* is not a valid DNS name (not counted in
            :attr:`stats`), or the server answered YXDOMAIN.
        :raises TemporaryLookupError: timeout, SERVFAIL, REFUSED, no usable
            nameserver, a network error or no resolver configuration.
        """
        key, labels = _normalize(name)
        hit: Any = None
        flight: Optional[_Flight] = None
        leader = False
        with self._lock:
            self._lookups += 1
            entry = self._cache.get(key)
            if entry is not None:
                if self._clock() < entry[0]:
                    self._cache.move_to_end(key)
                    self._hits += 1
                    hit = entry[1]
                else:
                    del self._cache[key]
            if hit is None:
                flight = self._inflight.get(key)
                if flight is None:
                    flight = self._inflight[key] = _Flight()
                    leader = True
                    self._misses += 1
                else:
                    self._hits += 1  # answered by the query already on its way
        if hit is not None:
            return _answer(hit)
        assert flight is not None
        if not leader:
            # The query in progress is bounded by the resolver's lifetime; if
            # it somehow takes longer still, ask on our own rather than fail.
            lifetime = getattr(self.resolver, "lifetime", None) or 0.0
            if flight.done.wait(max(self.timeout, lifetime) + 5.0):
                return _answer(flight.result)
            records, _ttl = self._query(key, labels)
            return records
        result: Any = _Failure(TemporaryLookupError, "DNS query for %s TXT was interrupted" % key)
        try:
            try:
                records, ttl = self._query(key, labels)
            except KeyLookupError as exc:
                result = _Failure(type(exc), str(exc))
                self._store(key, result, self.error_ttl)
                raise
            result = tuple(records)
            self._store(key, result, ttl)
            return records
        finally:
            with self._lock:
                self._inflight.pop(key, None)
            flight.result = result
            flight.done.set()

    def _query(self, key: str, labels: Tuple[bytes, ...]) -> Tuple[List[bytes], float]:
        """Send the query; return ``(records, seconds to cache them)``."""
        what = "DNS query for %s TXT" % key
        if self._config_error is not None or self.resolver is None:
            raise TemporaryLookupError("%s not sent: %s" % (what, self._config_error or "no resolver"))
        try:
            qname = dns.name.Name(labels + (b"",))
            answer = self.resolver.resolve(
                qname, dns.rdatatype.TXT, dns.rdataclass.IN, raise_on_no_answer=False, search=False
            )
        except dns.resolver.NXDOMAIN as exc:
            response = None
            try:
                response = next(iter(exc.responses().values()), None)  # type: ignore[no-untyped-call]
            except Exception:  # pragma: no cover - defensive
                pass
            return [], self._negative_ttl(response)
        except dns.resolver.NoAnswer as exc:  # only from a resolver that ignores raise_on_no_answer
            return [], self._negative_ttl(exc.kwargs.get("response"))
        except dns.exception.Timeout as exc:
            raise TemporaryLookupError("%s timed out (%s)" % (what, exc)) from exc
        except dns.resolver.NoNameservers as exc:
            raise TemporaryLookupError("%s failed: no nameserver answered: %s" % (what, _summarize(exc))) from exc
        except dns.resolver.YXDOMAIN as exc:
            raise KeyLookupError("%s failed: YXDOMAIN (name too long after DNAME substitution)" % what) from exc
        except Exception as exc:
            raise TemporaryLookupError("%s failed: %s: %s" % (what, type(exc).__name__, exc)) from exc
        try:
            rrset = answer.rrset
            if rrset is None:
                return [], self._negative_ttl(answer.response)
            records = [b"".join(rdata.strings) for rdata in rrset]
            try:
                ttl = answer.chaining_result.minimum_ttl  # includes the TTLs of any CNAMEs
            except AttributeError:  # pragma: no cover - an unusual resolver
                ttl = rrset.ttl
        except Exception as exc:  # pragma: no cover - defensive
            raise TemporaryLookupError("%s failed: unusable answer: %s: %s" % (what, type(exc).__name__, exc)) from exc
        return records, min(ttl, self.max_ttl)

    def _negative_ttl(self, response: Any) -> float:
        """RFC 2308: min(SOA TTL, SOA MINIMUM) from the authority section,
        capped at ``negative_ttl``; ``negative_ttl`` when there is no SOA."""
        ttl = self.negative_ttl
        try:
            for rrset in response.authority:
                if rrset.rdtype == dns.rdatatype.SOA and len(rrset):
                    ttl = min(ttl, rrset.ttl, next(iter(rrset)).minimum)
                    break
        except Exception:
            pass
        return ttl

    def __repr__(self) -> str:
        servers = getattr(self.resolver, "nameservers", None)
        return "DNSKeySource(nameservers=%r, timeout=%r, cache_size=%r)" % (
            [str(s) for s in servers] if servers else None, self.timeout, self.cache_size)


def _summarize(exc: dns.resolver.NoNameservers) -> str:
    """One line per nameserver tried: address, transport, what went wrong."""
    parts = []
    for error in exc.kwargs.get("errors") or ():
        try:
            server, tcp, port, err = error[0], error[1], error[2], error[3]
        except (TypeError, IndexError):
            continue
        problem = err if isinstance(err, str) else "%s: %s" % (type(err).__name__, err)
        parts.append("%s port %s over %s: %s" % (server, port, "TCP" if tcp else "UDP", problem))
    return "; ".join(parts) if parts else (str(exc) or "no nameservers to ask")


# -- choosing a key source ---------------------------------------------------------------

_default: Optional[DNSKeySource] = None
_default_lock = threading.Lock()


def _default_source() -> DNSKeySource:
    global _default
    source = _default
    if source is None:
        with _default_lock:
            if _default is None:
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


def zone_file_key_source(path: str) -> MappingKeySource:
    """A key source serving the TXT records of a zone file (for offline checks).

    Names must be absolute or the file must set ``$ORIGIN``; every TXT record
    is served, its character-strings joined.

    :raises KeyLookupError: the file cannot be read or parsed.
    """
    import dns.zone

    try:
        with open(path, "r", encoding="utf-8") as fh:
            text = fh.read()
        zone = dns.zone.from_text(text, origin=dns.name.root, relativize=False, check_origin=False)
    except OSError as exc:
        raise KeyLookupError("cannot read zone file %s: %s" % (path, exc.strerror or exc)) from None
    except Exception as exc:  # dnspython's syntax errors have several types
        raise KeyLookupError("cannot parse zone file %s: %s" % (path, exc)) from None
    records: Dict[str, List[bytes]] = {}
    for name, _ttl, rdata in zone.iterate_rdatas(dns.rdatatype.TXT):
        key = name.to_text(omit_final_dot=True).lower()
        records.setdefault(key, []).append(b"".join(rdata.strings))  # type: ignore[attr-defined]
    return MappingKeySource(records)
