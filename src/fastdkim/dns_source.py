"""Key records from DNS (RFC 6376, section 3.6.2.2): :class:`DNSKeySource`,
which asks through dnspython from the calling thread and keeps the answers
in a cache that honours their TTLs.  What it shares with the event-loop
source (options, cache, the reading of answers, the parsing of nameserver
addresses) is :mod:`fastdkim._dnsbase`'s."""
from __future__ import annotations

import threading
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

# Absolute imports of the dnspython package (fastdkim.dns, the former name
# of fastdkim.keysources, is still importable as an alias).
import dns.rdataclass
import dns.rdatatype
import dns.resolver

from ._dnsbase import CacheStats, DNSSourceBase, Failure, answer_of
from ._dnsbase import parse_nameserver as _parse_nameserver  # noqa: F401 (imported from here)
from ._dnsname import normalize
from .errors import KeyLookupError, TemporaryLookupError

__all__ = ["CacheStats", "DNSKeySource"]


class _Flight:
    """A query in progress, which other threads wanting the same name wait for."""

    __slots__ = ("done", "result")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: Any = None


class DNSKeySource(DNSSourceBase):
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
        super().__init__(nameservers=nameservers, port=port, timeout=timeout, cache_size=cache_size,
                         max_ttl=max_ttl, negative_ttl=negative_ttl, error_ttl=error_ttl, clock=clock,
                         resolver=resolver, resolver_class=dns.resolver.Resolver)
        # Names being queried right now: other threads wanting the same name
        # wait for that answer instead of sending the same query again.
        self._inflight: Dict[str, _Flight] = {}

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
            return answer_of(hit)
        assert flight is not None
        if not leader:
            # The query in progress is bounded by the resolver's lifetime; if
            # it somehow takes longer still, ask on our own rather than fail.
            lifetime = getattr(self.resolver, "lifetime", None) or 0.0
            if flight.done.wait(max(self.timeout, lifetime) + 5.0):
                return answer_of(flight.result)
            records, _ttl = self._query(key, labels)
            return records
        result: Any = Failure(TemporaryLookupError, "DNS query for %s TXT was interrupted" % key)
        try:
            try:
                records, ttl = self._query(key, labels)
            except KeyLookupError as exc:
                result = self._remember(key, exc)
                raise
            result = self._remember(key, (records, ttl))
            return records
        finally:
            with self._lock:
                self._inflight.pop(key, None)
            flight.result = result
            flight.done.set()

    def _query(self, key: str, labels: Tuple[bytes, ...]) -> Tuple[List[bytes], float]:
        """Send the query; return ``(records, seconds to cache them)``.

        :raises TemporaryLookupError: see :meth:`lookup`.
        :raises KeyLookupError: YXDOMAIN.
        """
        what = self._what(key)
        try:
            answer = self.resolver.resolve(
                self._qname(labels), dns.rdatatype.TXT, dns.rdataclass.IN, raise_on_no_answer=False, search=False
            )
        except Exception as exc:
            return self._failed(exc, what)
        return self._answered(answer, what)
