"""What the DNS key sources share, whether they ask from a thread
(:class:`~fastdkim.dns_source.DNSKeySource`) or from an event loop
(:class:`~fastdkim.async_dns_source.AsyncDNSKeySource`): their options and
resolver set-up, the parsing of nameserver addresses, the cache of answers
and failures with its counters, and what a DNS answer or failure comes to
(records and how long to keep them, or the exception a lookup raises).

The caching rules:

* an answer is kept for its TTL (the smallest TTL of the chain when CNAMEs
  were followed), at most ``max_ttl``;
* "no such name" and "no TXT record" are kept for min(SOA TTL, SOA MINIMUM)
  of the answer's authority section (RFC 2308), at most ``negative_ttl``;
  without an SOA (RFC 2308 section 5: not to be cached), for ``error_ttl``;
* a failure is kept for ``error_ttl`` and raised afresh from the cache;
* nothing is kept with a TTL of 0 or ``cache_size=0``.
"""
from __future__ import annotations

import ipaddress
import threading
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Type, Union

import dns.exception
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver

from ._cache import ExpiringLRUCache
from ._txt import join_strings
from .errors import KeyLookupError, OptionError, TemporaryLookupError

__all__ = ["CacheStats", "DNSSourceBase", "Failure", "answer_of", "parse_nameserver"]


@dataclass(frozen=True)
class CacheStats:
    """Counters of a :class:`DNSKeySource` (or an ``AsyncDNSKeySource``) since
    creation or ``cache_clear()``.

    ``lookups == hits + misses``; every miss sent a DNS query.  A lookup that
    waited for the same query sent by another thread (or task) counts as a hit.
    """

    lookups: int
    hits: int
    misses: int
    evictions: int
    size: int


@dataclass(frozen=True)
class Failure:
    """A remembered failure: raised again, as a fresh exception, on a hit."""

    kind: type
    message: str


def answer_of(value: Any) -> List[bytes]:
    """A cached or shared answer: fresh records, or its failure raised afresh.

    :raises KeyLookupError: (or :class:`TemporaryLookupError`) the failure.
    """
    if isinstance(value, Failure):
        raise value.kind(value.message)
    return list(value)


def _parse_port(text: str, entry: str) -> int:
    if not text.isdigit() or not text.isascii():
        raise OptionError("nameserver %r: invalid port %r" % (entry, text))
    port = int(text)
    if not 0 < port < 65536:
        raise OptionError("nameserver %r: port %d out of range" % (entry, port))
    return port


def parse_nameserver(entry: str, default_port: int) -> Tuple[str, int]:
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


class DNSSourceBase:
    """Options, resolver, cache and the reading of answers, for a DNS key
    source whose subclass sends the queries.

    :param resolver_class: what to build a resolver from
        (:class:`dns.resolver.Resolver` or :class:`dns.asyncresolver.Resolver`).
    The other parameters are :class:`~fastdkim.DNSKeySource`'s.

    :raises ValueError: an invalid option, or *nameservers* together with
        *resolver*.
    """

    def __init__(
        self,
        *,
        nameservers: Optional[Union[str, Sequence[str]]],
        port: int,
        timeout: float,
        cache_size: int,
        max_ttl: int,
        negative_ttl: int,
        error_ttl: float,
        clock: Callable[[], float],
        resolver: Any,
        resolver_class: Type[dns.resolver.BaseResolver],
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
        self._resolver_class = resolver_class

        if resolver is not None:
            if nameservers is not None:
                raise OptionError("pass either nameservers or resolver, not both")
            self.resolver: Any = resolver
        elif nameservers is not None:
            if isinstance(nameservers, str):
                nameservers = [nameservers]
            parsed = [parse_nameserver(entry, port) for entry in nameservers]
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

    def __getstate__(self) -> Dict[str, Any]:
        """A pickled source carries its options, not its cache: each process
        that unpickles one (a worker of :func:`fastdkim.verify_many`) gets a
        source of its own, with its own cache, shared by its threads."""
        return dict(self._options)

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__init__(**state)  # type: ignore[misc]

    def _new_resolver(self, configure: bool) -> Any:
        resolver = self._resolver_class(configure=configure)
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

    def _remember(self, key: str, outcome: Union[Tuple[List[bytes], float], KeyLookupError]) -> Any:
        """Cache what a query came to (records for their TTL, a failure for
        ``error_ttl``) and return it as :func:`answer_of` takes it."""
        if isinstance(outcome, KeyLookupError):
            failure = Failure(type(outcome), str(outcome))
            self._store(key, failure, self.error_ttl)
            return failure
        records, ttl = outcome
        value = tuple(records)
        self._store(key, value, ttl)
        return value

    # -- queries and what they come to ---------------------------------------------------

    def _what(self, key: str) -> str:
        """How errors name the query for *key*; raises the failure of a source
        that cannot send any.

        :raises TemporaryLookupError: no usable resolver configuration.
        """
        what = "DNS query for %s TXT" % key
        if self._config_error is not None or self.resolver is None:
            raise TemporaryLookupError("%s not sent: %s" % (what, self._config_error or "no resolver"))
        return what

    @staticmethod
    def _qname(labels: Tuple[bytes, ...]) -> dns.name.Name:
        return dns.name.Name(labels + (b"",))

    def _failed(self, exc: Exception, what: str) -> Tuple[List[bytes], float]:
        """What the resolver raising *exc* comes to: no records (NXDOMAIN,
        NODATA) for the negative TTL, or the exception a lookup raises.

        :raises TemporaryLookupError: timeout, no nameserver answered, a
            network error, anything unexpected.
        :raises KeyLookupError: YXDOMAIN.
        """
        if isinstance(exc, dns.resolver.NXDOMAIN):
            response = None
            try:
                response = next(iter(exc.responses().values()), None)  # type: ignore[no-untyped-call]
            except Exception:  # pragma: no cover - defensive
                pass
            return [], self._negative_ttl(response)
        if isinstance(exc, dns.resolver.NoAnswer):  # only from a resolver that ignores raise_on_no_answer
            return [], self._negative_ttl(exc.kwargs.get("response"))
        if isinstance(exc, dns.exception.Timeout):
            raise TemporaryLookupError("%s timed out (%s)" % (what, exc)) from exc
        if isinstance(exc, dns.resolver.NoNameservers):
            raise TemporaryLookupError("%s failed: no nameserver answered: %s" % (what, _summarize(exc))) from exc
        if isinstance(exc, dns.resolver.YXDOMAIN):
            raise KeyLookupError("%s failed: YXDOMAIN (name too long after DNAME substitution)" % what) from exc
        raise TemporaryLookupError("%s failed: %s: %s" % (what, type(exc).__name__, exc)) from exc

    def _answered(self, answer: Any, what: str) -> Tuple[List[bytes], float]:
        """The records of *answer* and how long to keep them.

        :raises TemporaryLookupError: an answer that cannot be read.
        """
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
        capped at ``negative_ttl``.  Without an SOA (which section 5 says not
        to cache: a server's odd answer, such as records of another name),
        only as long as a failure, ``error_ttl`` (and never longer than
        ``negative_ttl``)."""
        try:
            for rrset in response.authority:
                if rrset.rdtype == dns.rdatatype.SOA and len(rrset):
                    return float(min(self.negative_ttl, rrset.ttl, next(iter(rrset)).minimum))
        except Exception:
            pass
        return min(self.negative_ttl, self.error_ttl)

    def __repr__(self) -> str:
        servers = getattr(self.resolver, "nameservers", None)
        return "%s(nameservers=%r, timeout=%r, cache_size=%r)" % (
            type(self).__name__, [str(s) for s in servers] if servers else None, self.timeout, self.cache_size)


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

