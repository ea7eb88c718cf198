"""The bounded caches (fastdkim._cache): the clear-when-full dictionary and the
expiring least-recently-used one behind DNSKeySource."""
from __future__ import annotations

import pickle
import time

import pytest

from fastdkim._cache import BoundedCache, ExpiringLRUCache
from fastdkim.errors import OptionError

# -- BoundedCache -----------------------------------------------------------------------


def test_bounded_cache_stores_and_returns():
    cache: BoundedCache[str, int] = BoundedCache(4)
    assert cache.get("a") is None and cache.get("a", 7) == 7
    cache.set("a", 1)
    assert cache.get("a") == 1 and "a" in cache and "b" not in cache
    cache.set("a", 2)  # replaced, not added
    assert cache.get("a") == 2 and len(cache) == 1


def test_bounded_cache_is_emptied_when_full():
    cache: BoundedCache[int, int] = BoundedCache(3)
    for i in range(3):
        cache.set(i, i * 10)
    assert len(cache) == 3
    cache.set(3, 30)  # full: everything else is forgotten
    assert len(cache) == 1 and cache.get(3) == 30
    assert all(cache.get(i) is None for i in range(3))


def test_bounded_cache_is_emptied_even_when_the_key_is_already_there():
    cache: BoundedCache[int, int] = BoundedCache(2)
    cache.set(0, 0)
    cache.set(1, 1)
    cache.set(1, 11)  # the same policy as the dictionaries it replaces: full means emptied
    assert len(cache) == 1 and cache.get(1) == 11 and cache.get(0) is None


def test_bounded_cache_never_holds_more_than_its_limit():
    cache: BoundedCache[int, int] = BoundedCache(256)
    for i in range(10_000):
        cache.set(i, i)
        assert len(cache) <= 256
    assert cache.get(9_999) == 9_999


def test_bounded_cache_clear_and_repr():
    cache: BoundedCache[str, str] = BoundedCache(1024)
    cache.set("k", "v")
    assert repr(cache) == "BoundedCache(<1 of 1024 entries>)"
    cache.clear()
    assert len(cache) == 0 and cache.get("k") is None
    assert cache.limit == 1024


@pytest.mark.parametrize("limit, exc", [(0, OptionError), (-1, OptionError), (1.5, TypeError), (True, TypeError),
                                        ("8", TypeError)])
def test_bounded_cache_limit_checked(limit, exc):
    with pytest.raises(exc, match="limit"):
        BoundedCache(limit)


def test_bounded_cache_limit_of_one():
    cache: BoundedCache[str, int] = BoundedCache(1)
    cache.set("a", 1)
    cache.set("b", 2)
    assert len(cache) == 1 and cache.get("b") == 2 and cache.get("a") is None


def test_bounded_cache_pickles():
    # objects holding one (signers, verifiers) may be sent to worker processes
    cache: BoundedCache[str, tuple] = BoundedCache(8)
    cache.set("k", (1, "v"))
    copy = pickle.loads(pickle.dumps(cache))
    assert copy.get("k") == (1, "v") and copy.limit == 8 and len(copy) == 1


# -- ExpiringLRUCache -------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_expiring_cache_entries_expire():
    clock = Clock()
    cache: ExpiringLRUCache[str, bytes] = ExpiringLRUCache(clock)
    assert cache.put("a", b"x", clock.now + 10, limit=8) == 0
    assert cache.get("a") == b"x"
    clock.now += 9.9
    assert cache.get("a") == b"x"
    clock.now += 0.1  # expired at exactly its time: removed when looked up
    assert "a" in cache
    assert cache.get("a") is None
    assert "a" not in cache and len(cache) == 0


def test_expiring_cache_drops_the_least_recently_used():
    clock = Clock()
    cache: ExpiringLRUCache[str, int] = ExpiringLRUCache(clock)
    far = clock.now + 100
    assert cache.put("a", 1, far, 2) == 0
    assert cache.put("b", 2, far, 2) == 0
    assert cache.get("a") == 1  # a is now more recent than b
    assert cache.put("c", 3, far, 2) == 1  # b goes
    assert cache.get("b") is None and cache.get("a") == 1 and cache.get("c") == 3
    assert cache.put("a", 10, far, 2) == 0  # replacing is not adding
    assert cache.get("a") == 10 and len(cache) == 2


def test_expiring_cache_limit_given_per_put():
    clock = Clock()
    cache: ExpiringLRUCache[int, int] = ExpiringLRUCache(clock)
    for i in range(5):
        cache.put(i, i, clock.now + 1, 10)
    assert cache.put(5, 5, clock.now + 1, 2) == 4  # a smaller limit takes effect at once
    assert len(cache) == 2 and cache.get(4) == 4 and cache.get(5) == 5
    assert cache.put(6, 6, clock.now + 1, 0) == 3  # limit 0: nothing stays
    assert len(cache) == 0


def test_expiring_cache_clear_and_falsy_values():
    clock = Clock()
    cache: ExpiringLRUCache[str, tuple] = ExpiringLRUCache(clock)
    cache.put("nx", (), clock.now + 5, 4)  # an empty answer is a value, not a miss
    assert cache.get("nx") == ()
    assert repr(cache) == "ExpiringLRUCache(<1 entries>)"
    cache.clear()
    assert len(cache) == 0 and cache.get("nx") is None


def test_expiring_cache_clock_read_only_for_present_keys():
    calls = []

    def clock() -> float:
        calls.append(1)
        return 0.0

    cache: ExpiringLRUCache[str, int] = ExpiringLRUCache(clock)
    assert cache.get("missing") is None and calls == []
    cache.put("k", 1, 1.0, 4)
    assert cache.get("k") == 1 and len(calls) == 1


def test_expiring_cache_pickles():
    cache: ExpiringLRUCache[str, bytes] = ExpiringLRUCache(time.monotonic)
    cache.put("k", b"v", time.monotonic() + 60, 4)
    copy = pickle.loads(pickle.dumps(cache))
    assert copy.get("k") == b"v" and len(copy) == 1
