"""Small in-memory caches with a bound on their size.

* :class:`BoundedCache`: a dictionary that is emptied when it is full and a
  new entry arrives.  For values that are cheap to compute again and are
  looked up far more often than they change (signing plans, parsed key
  records): no bookkeeping on a hit, and the working set refills at once.
* :class:`ExpiringLRUCache`: entries that expire at a given time, the least
  recently used dropped first when the cache is full (DNS answers).

Neither takes a lock: a caller shared by threads holds its own around them.
"""
from __future__ import annotations

import collections
from typing import Callable, Dict, Generic, Optional, Tuple, TypeVar

from .errors import OptionError

__all__ = ["BoundedCache", "ExpiringLRUCache"]

K = TypeVar("K")
V = TypeVar("V")


class BoundedCache(Generic[K, V]):
    """At most *limit* entries; storing one into a full cache empties it first.

    :raises TypeError: *limit* is not an integer.
    :raises OptionError: *limit* is less than 1.
    """

    __slots__ = ("_data", "limit")

    def __init__(self, limit: int) -> None:
        if isinstance(limit, bool) or not isinstance(limit, int):
            raise TypeError("limit must be an int, not %s" % type(limit).__name__)
        if limit < 1:
            raise OptionError("limit must be >= 1, got %r" % (limit,))
        self.limit = limit
        self._data: Dict[K, V] = {}

    def get(self, key: K, default: Optional[V] = None) -> Optional[V]:
        """The value stored for *key*, or *default*."""
        return self._data.get(key, default)

    def set(self, key: K, value: V) -> None:
        """Store *value* for *key*, first emptying the cache if it holds
        :attr:`limit` entries or more (even when *key* is one of them)."""
        data = self._data
        if len(data) >= self.limit:
            data.clear()
        data[key] = value

    def clear(self) -> None:
        """Forget every entry."""
        self._data.clear()

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __repr__(self) -> str:
        return "BoundedCache(<%d of %d entries>)" % (len(self._data), self.limit)


class ExpiringLRUCache(Generic[K, V]):
    """Entries that each expire at a time of *clock*, the least recently used
    dropped first when the cache is over the limit given to :meth:`put`."""

    __slots__ = ("_clock", "_data")

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._data: "collections.OrderedDict[K, Tuple[float, V]]" = collections.OrderedDict()

    def get(self, key: K) -> Optional[V]:
        """The value stored for *key* (now the most recently used), or ``None``
        when there is none or it has expired (an expired entry is removed)."""
        entry = self._data.get(key)
        if entry is None:
            return None
        if self._clock() < entry[0]:
            self._data.move_to_end(key)
            return entry[1]
        del self._data[key]
        return None

    def put(self, key: K, value: V, expires: float, limit: int) -> int:
        """Store *value* for *key* until the time *expires*, as the most
        recently used entry, then drop the least recently used ones until at
        most *limit* remain.

        :returns: how many entries were dropped.
        """
        data = self._data
        data[key] = (expires, value)
        data.move_to_end(key)
        dropped = 0
        while len(data) > limit:
            data.popitem(last=False)
            dropped += 1
        return dropped

    def clear(self) -> None:
        """Forget every entry."""
        self._data.clear()

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __repr__(self) -> str:
        return "ExpiringLRUCache(<%d entries>)" % len(self._data)
