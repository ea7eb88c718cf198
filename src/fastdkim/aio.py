"""Verification inside an event loop (asyncio).

::

    import fastdkim.aio

    results = await fastdkim.aio.verify(message)            # keys from DNS

    verifier = fastdkim.aio.AsyncVerifier(keys=fastdkim.aio.AsyncDNSKeySource(nameservers=["127.0.0.1"]))
    results = await verifier.verify(message)

The results are those of :func:`fastdkim.verify`, computed by the same
checks (:mod:`fastdkim._checks`); only the key lookup differs.  Keys come
from DNS through :class:`AsyncDNSKeySource` (one shared TTL-honouring cache,
one query for any number of tasks wanting the same name, a bound on the
queries in flight, a timeout per lookup), or from any key source: a mapping,
a sync or async callable, a :class:`~fastdkim.KeySource`, or an object with
``async def lookup(name)``.  A lookup that fails, is cancelled by the key
source itself, or takes longer than the timeout makes its signatures
``temperror``; nothing is raised for it.

The loop is not blocked for long: a message larger than :data:`LARGE` and a
message given as a binary file are read, canonicalized and hashed in the
loop's default executor (the compiled core releases the GIL while it
hashes); smaller messages are checked inline.
"""
from __future__ import annotations

import asyncio
import collections.abc
import inspect
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from ._checks import Checks, KeyOutcome, check_time, lookup_failure, shared_checks
from ._dnsname import normalize_key
from .async_dns_source import AsyncDNSKeySource, CacheStats
from .dns_source import DNSKeySource
from .errors import KeyLookupError, OptionError
from .keys import MIN_RSA_BITS
from .local_sources import callback_failed, callback_records
from .message import MessageInput, is_file
from .results import TEMPERROR, Verification
from .tags import MAX_H_NAMES
from .verification import _source_of

__all__ = ["AsyncDNSKeySource", "AsyncVerifier", "CacheStats", "LARGE", "verify"]

#: Messages larger than this many bytes are read and hashed off the loop.
LARGE = 256 * 1024

#: Default for ``lookup_timeout``: seconds a lookup from a key source that
#: does not bound its own may take.
LOOKUP_TIMEOUT = 10.0

_default: Optional[AsyncDNSKeySource] = None
_default_lock = threading.Lock()


def _default_source() -> AsyncDNSKeySource:
    """The process-wide :class:`AsyncDNSKeySource` (system resolver
    configuration), created on first use and shared by every event loop."""
    global _default
    source = _default
    if source is None:
        with _default_lock:
            if _default is None:
                _default = AsyncDNSKeySource()
            source = _default
    return source


class _Callback:
    """A key source calling a function, sync or async, with
    :class:`~fastdkim.keysources.CallableKeySource`'s conventions."""

    __slots__ = ("func",)

    def __init__(self, func: Callable[[str], Any]) -> None:
        self.func = func

    def lookup(self, name: str) -> Any:
        """The records (a list of bytes), or an awaitable of them when the
        function returned one.

        :raises KeyLookupError: *name* is not a valid DNS name, or the function
            raised it.
        :raises TemporaryLookupError: the function raised anything else or
            returned an unusable value.
        """
        key = normalize_key(name)
        try:
            value = self.func(key)
        except KeyLookupError:
            raise
        except Exception as exc:
            raise callback_failed(key, exc) from exc
        if inspect.isawaitable(value):
            return self._later(key, value)
        return callback_records(key, value)

    @staticmethod
    async def _later(key: str, pending: Any) -> List[bytes]:
        try:
            value = await pending
        except KeyLookupError:
            raise
        except Exception as exc:
            raise callback_failed(key, exc) from exc
        return callback_records(key, value)

    def __repr__(self) -> str:
        return "CallableKeySource(%r)" % (self.func,)


class _InThread:
    """A blocking key source (:class:`~fastdkim.DNSKeySource`), asked from a
    thread of the loop's default executor."""

    __slots__ = ("source",)

    def __init__(self, source: Any) -> None:
        self.source = source

    def lookup(self, name: str) -> Any:
        return asyncio.get_running_loop().run_in_executor(None, self.source.lookup, name)

    def __repr__(self) -> str:
        return "%r (in a thread)" % (self.source,)


def _async_source(keys: Any) -> Tuple[Any, bool]:
    """``(source, bounded)`` for the ``keys=`` of an async verifier: an object
    whose ``lookup(name)`` returns records or an awaitable of them, and
    whether that bounds its own time (an :class:`AsyncDNSKeySource`).

    :raises TypeError: *keys* is not a key source.
    :raises ValueError: a mapping holds an invalid name.
    """
    if keys is None:
        return _default_source(), True
    if isinstance(keys, AsyncDNSKeySource):
        return keys, True
    if isinstance(keys, DNSKeySource):
        return _InThread(keys), False
    if (isinstance(keys, type) or callable(getattr(keys, "lookup", None))
            or isinstance(keys, collections.abc.Mapping) or not callable(keys)):
        return _source_of(keys), False  # a mapping or a key source (sync or async lookup), or a TypeError
    return _Callback(keys), False


async def _key(checks: Checks, source: Any, bounded: bool, timeout: float, name: str) -> KeyOutcome:
    """What looking *name* up in *source* comes to; raises nothing but
    the cancellation of the task that awaits it."""
    try:
        got = source.lookup(name)
        if inspect.isawaitable(got):
            got = await (got if bounded else asyncio.wait_for(got, timeout))
    except asyncio.TimeoutError:
        return (TEMPERROR, "key lookup for %s timed out after %g s" % (name, timeout))
    except asyncio.CancelledError:
        # A key source whose own task was cancelled (a session closed under
        # it) is a failed lookup; only this task's own cancellation goes on.
        # (Before Python 3.11 the two cannot be told apart: it goes on.)
        task = asyncio.current_task()
        cancelling = getattr(task, "cancelling", None)
        if cancelling is None or cancelling():
            raise
        return (TEMPERROR, "key lookup for %s failed: the key source's lookup was cancelled" % name)
    except Exception as exc:  # a broken key source must not crash verification
        return lookup_failure(exc)
    return checks.key_from(name, got)


def _size(message: Any) -> int:
    if isinstance(message, memoryview):
        return message.nbytes
    if isinstance(message, (bytes, bytearray)):
        return len(message)
    return 0


async def _keys(checks: Checks, source: Any, bounded: bool, timeout: float, names: List[str]) -> Dict[str, Any]:
    """What :func:`_key` makes of each of *names*, looked up concurrently."""
    if len(names) == 1:
        return {names[0]: await _key(checks, source, bounded, timeout, names[0])}
    found = await asyncio.gather(*[_key(checks, source, bounded, timeout, name) for name in names])
    return dict(zip(names, found))


async def _run(checks: Checks, message: MessageInput, source: Any, bounded: bool, timeout: float,
               now: Optional[float], clock: Callable[[], float]) -> List[Verification]:
    """The three phases of *checks*: the first and last off the loop for a
    file or a large message, the key lookups on it, concurrently; the usual
    message as bytes takes their lane (``Checks._quick_start`` and
    ``_quick_end``, its keys looked up here in between)."""
    off = is_file(message) or _size(message) > LARGE
    if type(message) is bytes and not off:
        lane, when = checks._quick_start(message, now, clock)
        if lane is not None:
            assert when is not None
            return checks._quick_end(message, when, lane, await _keys(checks, source, bounded, timeout,
                                                                      checks.lane_names(lane)))
        if when is not None:  # (the time is read once)
            now = when
    if off:
        loop = asyncio.get_running_loop()
        job = await loop.run_in_executor(None, checks.begin, message, now, clock)
    else:
        job = checks.begin(message, now, clock)
    if isinstance(job, list):
        return job
    keys = await _keys(checks, source, bounded, timeout, job.names)
    if off:
        return await loop.run_in_executor(None, checks.finish, job, keys)
    return checks.finish(job, keys)


def _check_timeout(lookup_timeout: float) -> None:
    if not lookup_timeout > 0:
        raise OptionError("lookup_timeout must be > 0, got %r" % (lookup_timeout,))


class AsyncVerifier(Checks):
    """Verification options, set once and used for many messages, in an
    event loop.

    The options are :class:`~fastdkim.Verifier`'s, and:

    :param keys: where public keys come from: ``None`` for DNS (the
        process-wide :class:`AsyncDNSKeySource`), an
        :class:`AsyncDNSKeySource`, a mapping of
        ``selector._domainkey.domain`` to the TXT value, a function taking
        that name and returning the value or ``None`` (or an awaitable of
        it: ``async def`` functions are welcome), a
        :class:`~fastdkim.KeySource`, or an object whose ``lookup(name)`` is
        ``async``.  A sync function or key source is called on the loop and
        must not block (a :class:`~fastdkim.DNSKeySource` is asked from a
        thread of the loop's default executor).
    :param lookup_timeout: the longest a lookup may take from a key source
        other than an :class:`AsyncDNSKeySource` (which has a ``timeout``
        of its own); past it, the signatures needing that key are
        ``temperror``.

    :raises TypeError: *keys* is not a key source.
    :raises OptionError: an option has an unusable value.
    """

    def __init__(
        self,
        *,
        keys: Any = None,
        max_signatures: int = 10,
        allow_sha1: bool = False,
        min_key_bits: int = MIN_RSA_BITS,
        clock_skew: int = 300,
        now: Optional[float] = None,
        clock: Callable[[], float] = time.time,
        bare_lf: Optional[bool] = None,
        max_header_names: int = MAX_H_NAMES,
        lookup_timeout: float = LOOKUP_TIMEOUT,
    ) -> None:
        super().__init__(max_signatures=max_signatures, allow_sha1=allow_sha1, min_key_bits=min_key_bits,
                         clock_skew=clock_skew, bare_lf=bare_lf, max_header_names=max_header_names)
        _check_timeout(lookup_timeout)
        self.keys, self._bounded = _async_source(keys)
        check_time(now, clock)
        self.now = now
        self.clock = clock
        self.lookup_timeout = lookup_timeout

    async def verify(self, message: MessageInput) -> List[Verification]:
        """Verify every ``DKIM-Signature`` of ``message``.

        :returns: one :class:`~fastdkim.Verification` per signature field,
            top to bottom; an empty list when the message has none.
        :raises TypeError: ``message`` is neither bytes-like nor a binary file.
        :raises OSError: reading a message file failed.
        """
        return await _run(self, message, self.keys, self._bounded, self.lookup_timeout, self.now, self.clock)


async def verify(
    message: MessageInput,
    *,
    keys: Any = None,
    max_signatures: int = 10,
    allow_sha1: bool = False,
    min_key_bits: int = MIN_RSA_BITS,
    clock_skew: int = 300,
    now: Optional[float] = None,
    clock: Callable[[], float] = time.time,
    bare_lf: Optional[bool] = None,
    max_header_names: int = MAX_H_NAMES,
    lookup_timeout: float = LOOKUP_TIMEOUT,
) -> List[Verification]:
    """Verify every ``DKIM-Signature`` of ``message``; the options are
    :class:`AsyncVerifier`'s.  Like :func:`fastdkim.verify`, calls with the
    same options share what a verifier remembers between messages, and
    nothing else: ``keys``, ``now`` and ``clock`` are this call's alone.

    :returns: one :class:`~fastdkim.Verification` per signature field, top
        to bottom.
    :raises TypeError: ``message`` is neither bytes-like nor a binary file,
        or ``keys`` is not a key source.
    :raises OptionError: an option has an unusable value.
    :raises OSError: reading a message file failed.
    """
    check_time(now, clock)
    checks = shared_checks(max_signatures, allow_sha1, min_key_bits, clock_skew, bare_lf, max_header_names)
    _check_timeout(lookup_timeout)
    source, bounded = _async_source(keys)
    return await _run(checks, message, source, bounded, lookup_timeout, now, clock)
