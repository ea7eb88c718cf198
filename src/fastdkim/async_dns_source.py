"""Key records from DNS for code running in an event loop (asyncio):
:class:`AsyncDNSKeySource`, over :mod:`dns.asyncresolver`.

It keeps :class:`~fastdkim.DNSKeySource`'s options, cache and caching rules
(:mod:`fastdkim._dnsbase`), and adds what an event loop needs: tasks that
want a name already being queried wait for that query (one query, however
many tasks), at most ``max_concurrent`` queries are on their way at once, and
no lookup takes longer than ``timeout``.
"""
from __future__ import annotations

import asyncio
import collections
import time
import weakref
from typing import Any, Callable, Deque, Dict, List, Optional, Sequence, Tuple, Union

import dns.asyncresolver
import dns.rdataclass
import dns.rdatatype

from ._dnsbase import CacheStats, DNSSourceBase, Failure, answer_of
from ._dnsname import normalize
from .errors import KeyLookupError, OptionError, TemporaryLookupError

__all__ = ["AsyncDNSKeySource", "CacheStats"]


class _Slots:
    """At most ``n`` holders at once, the others waiting in turn: a
    semaphore that keeps no reference to an event loop once nobody waits
    (``asyncio.Semaphore`` keeps one for good after its first waiter, and
    one is kept per loop, in a mapping whose keys are the loops, weakly)."""

    __slots__ = ("free", "waiters")

    def __init__(self, n: int) -> None:
        self.free = n
        self.waiters: Deque["asyncio.Future[None]"] = collections.deque()

    async def acquire(self) -> None:
        if self.free > 0 and not self.waiters:
            self.free -= 1
            return
        fut: "asyncio.Future[None]" = asyncio.get_running_loop().create_future()
        self.waiters.append(fut)
        try:
            await fut
        except BaseException:
            if fut.done() and not fut.cancelled():
                self.release()  # (handed a slot as it was cancelled: it goes to the next)
            else:
                try:
                    self.waiters.remove(fut)
                except ValueError:
                    pass
            raise

    def release(self) -> None:
        while self.waiters:
            fut = self.waiters.popleft()
            if not fut.done():
                fut.set_result(None)  # (the slot passes to it)
                return
        self.free += 1


class _LoopState:
    """What belongs to one event loop: the queries on their way, by name,
    and the bound on how many there are."""

    __slots__ = ("inflight", "limit")

    def __init__(self, max_concurrent: int) -> None:
        self.inflight: Dict[str, "asyncio.Task[Any]"] = {}
        self.limit = _Slots(max_concurrent)


class AsyncDNSKeySource(DNSSourceBase):
    """TXT records from DNS for an event loop, with a TTL-honouring LRU cache.

    The options are :class:`~fastdkim.DNSKeySource`'s, and:

    :param timeout: the longest one query waits for its answer, and the
        longest a lookup waits for a free query slot; past either the lookup
        raises :class:`~fastdkim.errors.TemporaryLookupError`.  A query not
        answered is remembered for ``error_ttl``; one never sent (the slots
        held by queries of other names) is not remembered.
    :param max_concurrent: most queries on their way at once (per event
        loop); the others wait for a slot.
    :param resolver: a configured :class:`dns.asyncresolver.Resolver` to use
        as is; *nameservers*, *port* and *timeout* are then not applied to it.

    ``await source.lookup(name)`` follows the :class:`~fastdkim.KeySource`
    conventions.  A thousand tasks wanting the same name at once cause one
    query; a task cancelled while it waits does not disturb the others (the
    query runs on, in a task of its own, and its answer is cached).  One
    source may serve several event loops (in several threads): they share
    the cache; each has its own queries and bound.  Pickled, a source
    carries its options, not its cache.

    :raises ValueError: an invalid option, or *nameservers* together with
        *resolver*.
    :raises TypeError: *resolver* is not a :class:`dns.asyncresolver.Resolver`,
        or *max_concurrent* is not an integer.
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
        max_concurrent: int = 64,
        clock: Callable[[], float] = time.monotonic,
        resolver: Optional[dns.asyncresolver.Resolver] = None,
    ) -> None:
        if isinstance(max_concurrent, bool) or not isinstance(max_concurrent, int):
            raise TypeError("max_concurrent must be an int, not %s" % type(max_concurrent).__name__)
        if max_concurrent < 1:
            raise OptionError("max_concurrent must be >= 1, got %r" % (max_concurrent,))
        if resolver is not None and not isinstance(resolver, dns.asyncresolver.Resolver):
            raise TypeError("resolver must be a dns.asyncresolver.Resolver, not %s" % type(resolver).__name__)
        super().__init__(nameservers=nameservers, port=port, timeout=timeout, cache_size=cache_size,
                         max_ttl=max_ttl, negative_ttl=negative_ttl, error_ttl=error_ttl, clock=clock,
                         resolver=resolver, resolver_class=dns.asyncresolver.Resolver)
        self._options["max_concurrent"] = max_concurrent
        self.max_concurrent = max_concurrent
        self._loops: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState]" = (
            weakref.WeakKeyDictionary())

    async def lookup(self, name: str) -> list[bytes]:
        """Return the TXT records at *name*, from the cache or from DNS.

        :raises KeyLookupError: *name* is not a valid DNS name (not counted in
            :attr:`stats`), or the server answered YXDOMAIN.
        :raises TemporaryLookupError: no answer within ``timeout``, SERVFAIL,
            REFUSED, no usable nameserver, a network error or no resolver
            configuration.
        """
        key, labels = normalize(name)
        loop = asyncio.get_running_loop()
        with self._lock:
            self._lookups += 1
            hit: Any = self._cache.get(key)
            if hit is not None:
                self._hits += 1
                return answer_of(hit)
            state = self._loops.get(loop)
            if state is None:
                state = self._loops[loop] = _LoopState(self.max_concurrent)
            task = state.inflight.get(key)
            if task is None:
                task = state.inflight[key] = loop.create_task(self._fetch(key, labels, state))
                self._misses += 1
            else:
                self._hits += 1  # answered by the query already on its way
        # The query is a task of its own: cancelling this lookup leaves it to
        # the other tasks waiting for it (and to the cache).
        return answer_of(await asyncio.shield(task))

    async def _fetch(self, key: str, labels: Tuple[bytes, ...], state: _LoopState) -> Any:
        """Query *key*, cache what that comes to, and return it (records, or
        a :class:`~fastdkim._dnsbase.Failure`); raises nothing but
        cancellation."""
        try:
            try:
                await asyncio.wait_for(state.limit.acquire(), self.timeout)
            except asyncio.TimeoutError:
                # Every slot held by queries of other names (which may never be
                # answered: anyone may sign with a selector whose server is
                # silent): no query was sent, so nothing is learnt of this
                # name, and nothing is cached; a later lookup tries again.
                return Failure(TemporaryLookupError, "DNS query for %s TXT not sent: %d queries of other names "
                               "held every slot for %g s" % (key, self.max_concurrent, self.timeout))
            try:
                outcome = await asyncio.wait_for(self._query(key, labels), self.timeout)
            except asyncio.TimeoutError:
                raise TemporaryLookupError("DNS query for %s TXT timed out (no answer within %g s)"
                                           % (key, self.timeout)) from None
            finally:
                state.limit.release()
            result = self._remember(key, outcome)
        except KeyLookupError as exc:
            result = self._remember(key, exc)
        except Exception as exc:  # pragma: no cover - defensive: _query converts failures
            result = Failure(TemporaryLookupError, "DNS query for %s TXT failed: %s: %s" % (key, type(exc).__name__, exc))
        finally:
            with self._lock:
                state.inflight.pop(key, None)
        return result

    async def _query(self, key: str, labels: Tuple[bytes, ...]) -> Tuple[List[bytes], float]:
        """Send the query; return ``(records, seconds to cache them)``.

        :raises TemporaryLookupError: see :meth:`lookup`.
        :raises KeyLookupError: YXDOMAIN.
        """
        what = self._what(key)
        try:
            answer = await self.resolver.resolve(
                self._qname(labels), dns.rdatatype.TXT, dns.rdataclass.IN, raise_on_no_answer=False, search=False
            )
        except Exception as exc:
            return self._failed(exc, what)
        return self._answered(answer, what)
