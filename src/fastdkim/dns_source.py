"""Key records from DNS (RFC 6376, section 3.6.2.2): :class:`DNSKeySource`,
which asks through dnspython and keeps the answers in a cache that honours
their TTLs, and the parsing of the nameserver addresses it is given."""
from __future__ import annotations

import ipaddress
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

# Absolute imports of the dnspython package (fastdkim.dns, the former name
# of fastdkim.keysources, is still importable as an alias).
import dns.exception
import dns.name
import dns.nameserver
import dns.rdataclass
import dns.rdatatype
import dns.resolver

from ._cache import ExpiringLRUCache
from ._dnsname import normalize
from ._txt import join_strings
from .errors import KeyLookupError, OptionError, TemporaryLookupError

__all__ = ["CacheStats", "DNSKeySource"]


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
        # What a copy in another process is built from (see __getstate__).
        self._options: Dict[str, Any] = dict(
            nameservers=nameservers, port=port, timeout=timeout, cache_size=cache_size, max_ttl=max_ttl,
            negative_ttl=negative_ttl, error_ttl=error_ttl, clock=clock, resolver=resolver)
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
        self._cache: ExpiringLRUCache[str, Any] = ExpiringLRUCache(clock)
        self._lookups = self._hits = self._misses = self._evictions = 0
        # Names being queried right now: other threads wanting the same name
        # wait for that answer instead of sending the same query again.
        self._inflight: Dict[str, _Flight] = {}

    def __getstate__(self) -> Dict[str, Any]:
        """A pickled source carries its options, not its cache: each process
        that unpickles one (a worker of :func:`fastdkim.verify_many`) gets a
        source of its own, with its own cache, shared by its threads."""
        return dict(self._options)

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__init__(**state)  # type: ignore[misc]

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
            self._evictions += self._cache.put(key, value, expires, self.cache_size)

    # -- lookups -------------------------------------------------------------------

    def lookup(self, name: str) -> list[bytes]:
        """Return the TXT records at *name*, from the cache or from DNS.

        :raises KeyLookupError: *name* is not a valid DNS name (not counted in
            :attr:`stats`), or the server answered YXDOMAIN.
        :raises TemporaryLookupError: timeout, SERVFAIL, REFUSED, no usable
            nameserver, a network error or no resolver configuration.
        """
        key, labels = normalize(name)
        flight: Optional[_Flight] = None
        leader = False
        with self._lock:
            self._lookups += 1
            hit: Any = self._cache.get(key)
            if hit is not None:
                self._hits += 1
            else:
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
            records = [join_strings(rdata.strings) for rdata in rrset]
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

