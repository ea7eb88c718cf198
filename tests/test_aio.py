"""fastdkim.aio: verification in an event loop, and AsyncDNSKeySource against a
small DNS server run by the tests on 127.0.0.1 (tests/fakedns.py)."""
from __future__ import annotations

import asyncio
import gc
import io
import logging
import pickle
import threading

import dns.asyncresolver
import dns.rcode
import dns.resolver
import pytest

import fastdkim
import fastdkim.aio as aio
from fastdkim import mailgen
from fastdkim.aio import AsyncDNSKeySource, AsyncVerifier
from fastdkim.errors import KeyLookupError, OptionError, TemporaryLookupError
from fastdkim.keys import txt_strings

from fakedns import FakeDNS, Neg, Txt
from helpers import MESSAGE

NOW = 2_000_000_000
DOMAIN = "example.com"


def name(selector):
    return "%s._domainkey.%s" % (selector, DOMAIN)


def record(key):
    return Txt(txt_strings(fastdkim.public_key_record(key)), ttl=300)


def signed(key, selector, message=MESSAGE):
    return fastdkim.Signer(DOMAIN, selector, key, clock=lambda: NOW).sign_message(message)


@pytest.fixture
def zone(rsa_key, ed_key):
    z = {
        name("rsa"): record(rsa_key),
        name("ed"): record(ed_key),
        name("bad"): Txt(["v=DKIM1; k=rsa; p=not base64!"], ttl=300),
        name("nx"): Neg(dns.rcode.NXDOMAIN, soa=(300, 300)),
        name("servfail"): dns.rcode.SERVFAIL,
        name("drop"): "drop",
    }
    for i in range(20):
        z[name("k%d" % i)] = record(ed_key)
    return z


@pytest.fixture
def server(zone):
    srv = FakeDNS(zone)
    yield srv
    srv.stop()


def source(server, **options):
    options.setdefault("timeout", 2.0)
    return AsyncDNSKeySource(nameservers=[server.address], **options)


class SlowResolver(dns.asyncresolver.Resolver):
    """An async resolver that takes its time (so that lookups overlap) and
    counts the queries it has on their way at once."""

    def __init__(self, delay, **kw):
        super().__init__(**kw)
        self.delay = delay
        self.calls = self.active = self.peak = 0
        self.started = None

    async def resolve(self, *args, **kwargs):
        self.calls += 1
        self.active += 1
        self.peak = max(self.peak, self.active)
        if self.started is not None:
            self.started.set()
        try:
            await asyncio.sleep(self.delay)
            return await super().resolve(*args, **kwargs)
        finally:
            self.active -= 1


def slow_source(server, delay=0.3, **options):
    resolver = SlowResolver(delay, configure=False)
    host, port = server.address.split(":")
    resolver.nameservers = [host]
    resolver.port = int(port)
    resolver.lifetime = 5.0
    options.setdefault("timeout", 5.0)
    return AsyncDNSKeySource(resolver=resolver, **options), resolver


def statuses(results):
    return [r.status for r in results]


# -- the same results as the sync verifier ------------------------------------------------


def test_results_equal_the_sync_verifiers(server, rsa_key, ed_key):
    good = [signed(rsa_key, "rsa"), signed(ed_key, "ed")]
    msgs = good + [
        good[0].replace(b"numbers", b"Numbers"),  # fail: body
        good[1].replace(b"Quarterly", b"quarterly"),  # fail: signature
        signed(ed_key, "bad"),  # permerror: key record
        signed(ed_key, "nx"),  # permerror: no key
        signed(ed_key, "servfail"),  # temperror
        b"".join(fastdkim.sign_all(MESSAGE, [fastdkim.Signer(DOMAIN, "rsa", rsa_key, clock=lambda: NOW),
                                             fastdkim.Signer(DOMAIN, "ed", ed_key, clock=lambda: NOW)])) + MESSAGE,
        MESSAGE,  # no signature
        b"From: a@example.com\r\nDKIM-Signature: v=1; a=rsa-sha256\r\n\r\n",  # permerror: tags
    ]
    sync = fastdkim.Verifier(keys=fastdkim.DNSKeySource(nameservers=[server.address]), now=NOW)
    expected = [[r.as_dict() for r in sync.verify(m)] for m in msgs]
    assert [statuses(sync.verify(m)) for m in msgs] == [
        ["pass"], ["pass"], ["fail"], ["fail"], ["permerror"], ["permerror"], ["temperror"], ["pass", "pass"], [],
        ["permerror"]]

    async def main():
        verifier = AsyncVerifier(keys=source(server), now=NOW)
        one = [await verifier.verify(m) for m in msgs]
        together = await asyncio.gather(*[verifier.verify(m) for m in msgs])
        module = [await aio.verify(m, keys=source(server), now=NOW) for m in msgs]
        return one, together, module

    for got in asyncio.run(main()):
        assert [[r.as_dict() for r in rs] for rs in got] == expected


def test_concurrent_verifications_under_one_selector_send_one_query(server, ed_key):
    msg = signed(ed_key, "ed")
    src = source(server)

    async def main():
        verifier = AsyncVerifier(keys=src, now=NOW)
        return await asyncio.gather(*[verifier.verify(msg) for _ in range(1000)])

    results = asyncio.run(main())
    assert all(statuses(r) == ["pass"] for r in results)
    assert server.count(name("ed")) == 1
    stats = src.stats
    assert (stats.lookups, stats.misses, stats.hits) == (1000, 1, 999)


def test_cold_cache_one_query_per_selector_warm_cache_none(server, ed_key):
    selectors = ["k%d" % i for i in range(20)]
    msgs = [signed(ed_key, s) for s in selectors] * 5
    src = source(server)

    async def run_all():
        verifier = AsyncVerifier(keys=src, now=NOW)
        return await asyncio.gather(*[verifier.verify(m) for m in msgs])

    assert all(statuses(r) == ["pass"] for r in asyncio.run(run_all()))
    assert [server.count(name(s)) for s in selectors] == [1] * 20
    # a second pass, in another event loop: the cache is the source's, not the loop's
    assert all(statuses(r) == ["pass"] for r in asyncio.run(run_all()))
    assert [server.count(name(s)) for s in selectors] == [1] * 20


def test_a_dropped_query_is_temperror_within_the_timeout_and_others_pass(server, ed_key):
    timeout = 0.5
    msgs = [signed(ed_key, "drop")] * 3 + [signed(ed_key, "k%d" % i) for i in range(5)]

    async def main():
        verifier = AsyncVerifier(keys=source(server, timeout=timeout), now=NOW)
        return await asyncio.gather(*[verifier.verify(m) for m in msgs])

    results = asyncio.run(main())
    assert [statuses(r) for r in results] == [["temperror"]] * 3 + [["pass"]] * 5
    assert "timed out" in results[0][0].reason
    # bounded by the timeout, told by the queries (not a clock): the three
    # messages waited on one lookup, which tried once (twice at most) and gave up
    assert 1 <= server.count(name("drop")) <= 2


def test_timeouts_and_cancellations_leave_no_task_and_no_warning(server, ed_key, caplog, recwarn):
    """Many waiters on dropped and answered selectors, some cancelled, under
    asyncio's debug mode: when the last verification ends, no query task is
    left on the loop, and nothing was logged or warned (a task destroyed
    while pending, a coroutine never awaited)."""
    msgs = [signed(ed_key, "drop"), signed(ed_key, "ed")] + [signed(ed_key, "k%d" % i) for i in range(10)]

    async def main():
        verifier = AsyncVerifier(keys=source(server, timeout=0.3), now=NOW)
        tasks = [asyncio.create_task(verifier.verify(m)) for m in msgs * 30]
        await asyncio.sleep(0)
        for t in tasks[::5]:
            t.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        left = asyncio.all_tasks() - {asyncio.current_task()}
        return results, left

    caplog.set_level("DEBUG", logger="asyncio")
    results, left = asyncio.run(main(), debug=True)
    gc.collect()
    assert not left
    done = [r for r in results if not isinstance(r, BaseException)]
    assert all(isinstance(r, asyncio.CancelledError) for r in results if isinstance(r, BaseException))
    assert len(done) == len(results) - len(results[::5])
    assert {statuses(r)[0] for r in done} == {"temperror", "pass"}
    # (leaving out debug mode's "Executing ... took 0.1 seconds", which a busy machine can cause)
    assert not [x for x in caplog.records if x.levelno >= logging.WARNING and not x.getMessage().startswith("Executing")]
    assert not [w for w in recwarn if issubclass(w.category, (RuntimeWarning, ResourceWarning))]


def test_cancelling_a_waiting_task_leaves_the_others_their_answer(server, ed_key):
    msg = signed(ed_key, "ed")
    src, resolver = slow_source(server)

    async def main():
        resolver.started = asyncio.Event()
        verifier = AsyncVerifier(keys=src, now=NOW)
        tasks = [asyncio.create_task(verifier.verify(msg)) for _ in range(10)]
        await resolver.started.wait()
        await asyncio.sleep(0)
        tasks[0].cancel()  # the task whose lookup started the query
        tasks[7].cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        # every waiter cancelled: the query still completes and is cached
        lone = asyncio.create_task(src.lookup(name("k1")))
        await asyncio.sleep(0.05)
        lone.cancel()
        with pytest.raises(asyncio.CancelledError):
            await lone
        while resolver.active:
            await asyncio.sleep(0.05)
        after = await src.lookup(name("k1"))
        return results, after

    results, after = asyncio.run(main())
    assert isinstance(results[0], asyncio.CancelledError) and isinstance(results[7], asyncio.CancelledError)
    assert [statuses(r) for i, r in enumerate(results) if i not in (0, 7)] == [["pass"]] * 8
    assert after == [fastdkim.public_key_record(ed_key).encode()]
    assert resolver.calls == 2 and server.count(name("ed")) == 1 and server.count(name("k1")) == 1


def test_queries_in_flight_are_bounded(server, ed_key):
    src, resolver = slow_source(server, delay=0.05, max_concurrent=3)
    msgs = [signed(ed_key, "k%d" % i) for i in range(20)]

    async def main():
        verifier = AsyncVerifier(keys=src, now=NOW)
        return await asyncio.gather(*[verifier.verify(m) for m in msgs])

    assert all(statuses(r) == ["pass"] for r in asyncio.run(main()))
    assert resolver.calls == 20 and resolver.peak == 3


def test_waiting_for_a_query_slot_is_bounded_by_the_timeout(server, ed_key):
    src, resolver = slow_source(server, delay=0.3, max_concurrent=1, timeout=0.5)

    async def main():
        return await asyncio.gather(*[src.lookup(name("k%d" % i)) for i in range(4)], return_exceptions=True)

    results = asyncio.run(main())
    assert results[0] == [fastdkim.public_key_record(ed_key).encode()]
    late = [r for r in results[1:] if isinstance(r, Exception)]
    assert late and all(isinstance(r, TemporaryLookupError) and "not sent" in str(r) for r in late)


def test_one_source_serves_event_loops_in_several_threads(server, ed_key):
    src = source(server)
    names = [name("k%d" % i) for i in range(10)]
    got = {}

    def run(t):
        async def main():
            return await asyncio.gather(*[src.lookup(n) for n in names * 5])
        got[t] = asyncio.run(main())

    threads = [threading.Thread(target=run, args=(t,)) for t in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    want = [fastdkim.public_key_record(ed_key).encode()]
    assert sorted(got) == [0, 1, 2] and all(r == want for rs in got.values() for r in rs)
    # each loop asks at most once per name, and the cache serves what another loop got
    assert all(1 <= server.count(n) <= 3 for n in names)
    before = server.count(names[0])
    assert asyncio.run(src.lookup(names[0])) == want and server.count(names[0]) == before


def test_failures_are_cached_for_error_ttl(server):
    src = source(server, timeout=0.3)

    async def main():
        out = []
        for _ in range(3):
            try:
                await src.lookup(name("servfail"))
            except TemporaryLookupError as exc:
                out.append(str(exc))
        return out

    errors = asyncio.run(main())
    assert len(errors) == 3 and all("SERVFAIL" in e for e in errors)
    assert server.count(name("servfail")) == 1
    with pytest.raises(KeyLookupError, match="empty label"):
        asyncio.run(src.lookup("a..example.com"))


# -- key sources -------------------------------------------------------------------------


def test_key_sources_sync_and_async(server, rsa_key, ed_key):
    msg = signed(ed_key, "ed")
    rec = fastdkim.public_key_record(ed_key)
    wrong = fastdkim.public_key_record(fastdkim.generate_private_key("ed25519"))
    asked = []

    def sync_cb(n):
        asked.append(("sync", n))
        return rec

    async def async_cb(n):
        asked.append(("async", n))
        await asyncio.sleep(0)
        return rec

    async def async_wrong(n):
        return wrong

    async def async_none(n):
        return None

    async def async_boom(n):
        raise RuntimeError("resolver bug")

    async def async_perm(n):
        raise KeyLookupError("no such thing")

    async def async_bad_value(n):
        return 42

    async def hang(n):
        await asyncio.Event().wait()

    class AsyncSource:
        async def lookup(self, n):
            return [rec.encode()]

    class SyncSource:
        def lookup(self, n):
            return [rec.encode()]

    cases = [
        (sync_cb, "pass"), (async_cb, "pass"), (async_wrong, "fail"), (async_none, "permerror"),
        (async_boom, "temperror"), (async_perm, "permerror"), (async_bad_value, "temperror"),
        (AsyncSource(), "pass"), (SyncSource(), "pass"), ({name("ed"): rec}, "pass"),
        (fastdkim.DNSKeySource(nameservers=[server.address]), "pass"), (source(server), "pass"),
        (hang, "temperror"),
    ]

    async def main():
        out = []
        for keys, _ in cases:
            [r] = await aio.verify(msg, keys=keys, now=NOW, lookup_timeout=0.3)
            [r2] = await AsyncVerifier(keys=keys, now=NOW, lookup_timeout=0.3).verify(msg)
            assert r == r2
            out.append(r)
        return out

    results = asyncio.run(main())
    assert [r.status for r in results] == [expected for _, expected in cases], [r.reason for r in results]
    assert asked == [("sync", name("ed"))] * 2 + [("async", name("ed"))] * 2
    assert "resolver bug" in results[4].reason and "timed out" in results[-1].reason
    with pytest.raises(TypeError):
        AsyncVerifier(keys=42)
    with pytest.raises(TypeError):
        asyncio.run(aio.verify(msg, keys=AsyncDNSKeySource))
    with pytest.raises(OptionError):
        AsyncVerifier(keys={}, lookup_timeout=0)


@pytest.mark.skipif(not hasattr(asyncio.Task, "cancelling"), reason="Task.cancelling() is Python 3.11+")
def test_a_key_source_cancelled_under_it_is_temperror_and_a_cancelled_task_stays_cancelled(ed_key):
    """A key source whose lookup raises CancelledError of its own (its
    session closed under it) is a failed lookup, not the end of the
    verifying task; cancelling that task still cancels it."""
    msg = signed(ed_key, "ed")

    class Closed:
        async def lookup(self, n):
            raise asyncio.CancelledError()

    async def inner_task_cancelled(n):
        t = asyncio.create_task(asyncio.sleep(10))
        await asyncio.sleep(0)
        t.cancel()
        return await t

    async def main():
        got = []
        for keys in (Closed(), inner_task_cancelled):
            [r] = await aio.verify(msg, keys=keys, now=NOW, lookup_timeout=5)
            got.append(r)
        started = asyncio.Event()

        async def hang(n):
            started.set()
            await asyncio.Event().wait()

        task = asyncio.create_task(aio.verify(msg, keys=hang, now=NOW, lookup_timeout=5))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return got

    got = asyncio.run(main())
    assert [r.status for r in got] == ["temperror", "temperror"] and "cancelled" in got[0].reason


def test_module_verify_keeps_each_calls_keys_and_options(ed_key):
    msg = fastdkim.Signer(DOMAIN, "sel", ed_key, expiration=60, clock=lambda: NOW).sign_message(MESSAGE)
    right = {name("sel"): fastdkim.public_key_record(ed_key)}
    wrong = {name("sel"): fastdkim.public_key_record(fastdkim.generate_private_key("ed25519"))}

    async def main():
        return [statuses(await aio.verify(msg, keys=k, now=t))
                for k, t in ((right, NOW), (wrong, NOW), (right, NOW + 61), (right, NOW))]

    assert asyncio.run(main()) == [["pass"], ["fail"], ["fail"], ["pass"]]


# -- the event loop is not blocked -----------------------------------------------------------


def _ticks_during(coro_fn):
    """Run ``coro_fn()`` beside a coroutine that counts its turns; returns
    (result, turns it got while the other ran)."""
    async def main():
        ticks = 0
        stop = False

        async def ticker():
            nonlocal ticks
            while not stop:
                ticks += 1
                await asyncio.sleep(0)

        t = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        before = ticks
        result = await coro_fn()
        during = ticks - before
        stop = True
        await t
        return result, during

    return asyncio.run(main())


def test_a_large_body_is_hashed_off_the_loop_a_small_one_inline(ed_key):
    keys = {name("sel"): fastdkim.public_key_record(ed_key)}
    signer = fastdkim.Signer(DOMAIN, "sel", ed_key)
    big = signer.sign_message(mailgen.message(20 * 1000 * 1000, kind="mixed", seed=3))
    small = signer.sign_message(MESSAGE)
    verifier = AsyncVerifier(keys=keys)
    results, turns = _ticks_during(lambda: verifier.verify(big))
    assert statuses(results) == ["pass"]
    assert turns > 20  # the loop kept running while the body was hashed
    results, turns = _ticks_during(lambda: verifier.verify(small))
    assert statuses(results) == ["pass"] and turns == 0  # checked inline, without a trip to a thread
    tampered = big[:-10] + b"tampered\r\n"
    assert statuses(asyncio.run(aio.verify(tampered, keys=keys))) == ["fail"]


def test_a_message_file_is_read_off_the_loop(ed_key):
    keys = {name("sel"): fastdkim.public_key_record(ed_key)}
    data = fastdkim.Signer(DOMAIN, "sel", ed_key).sign_message(mailgen.message(3000, seed=4))
    readers = set()

    class File(io.BytesIO):
        def read(self, *args):
            readers.add(threading.get_ident())
            return super().read(*args)

    async def main():
        return await aio.verify(File(data), keys=keys), threading.get_ident()

    results, loop_thread = asyncio.run(main())
    assert statuses(results) == ["pass"]
    assert readers and loop_thread not in readers


# -- AsyncDNSKeySource options -----------------------------------------------------------------


def test_async_source_options_and_pickling(server):
    src = source(server, max_concurrent=7, error_ttl=1.5)
    asyncio.run(src.lookup(name("k0")))
    assert src.stats.size == 1
    copy = pickle.loads(pickle.dumps(src))
    assert isinstance(copy, AsyncDNSKeySource) and copy is not src
    assert (copy.max_concurrent, copy.error_ttl, copy.timeout) == (7, 1.5, 2.0)
    assert copy.stats.size == 0 and "AsyncDNSKeySource" in repr(copy)
    assert asyncio.run(copy.lookup(name("k0"))) == asyncio.run(src.lookup(name("k0")))
    for bad in ({"max_concurrent": 0}, {"timeout": 0}, {"cache_size": -1}, {"port": 0}):
        with pytest.raises(ValueError):
            AsyncDNSKeySource(nameservers=["127.0.0.1"], **bad)
    with pytest.raises(TypeError):
        AsyncDNSKeySource(max_concurrent=1.5)
    with pytest.raises(TypeError):
        AsyncDNSKeySource(resolver=dns.resolver.Resolver(configure=False))  # a sync resolver


def test_fastdkim_aio_is_reachable_from_the_package():
    import importlib
    import sys

    assert fastdkim.aio is sys.modules["fastdkim.aio"] is importlib.import_module("fastdkim.aio")
    assert aio.AsyncDNSKeySource is fastdkim.async_dns_source.AsyncDNSKeySource
    # keys=None: one process-wide source (made from the system's configuration, asked only when used)
    assert isinstance(AsyncVerifier().keys, AsyncDNSKeySource) and AsyncVerifier().keys is AsyncVerifier().keys


def test_a_lookup_that_found_no_free_slot_is_not_remembered():
    """Queries of silent selectors (anyone may sign with one) holding every
    slot: a lookup of another name that waited out its time sent no query,
    so its failure is not cached; once a slot is free it is answered."""
    from fastdkim import async_dns_source

    src = AsyncDNSKeySource(nameservers=["127.0.0.1"], timeout=0.3, max_concurrent=2, error_ttl=60)
    asked = []

    async def query(key, labels):
        asked.append(key)
        return [b"v=DKIM1; p="], 300.0
    src._query = query

    async def go():
        state = src._loops[asyncio.get_running_loop()] = async_dns_source._LoopState(2)
        for _ in range(2):  # every slot held (by queries of silent names)
            await state.limit.acquire()
        with pytest.raises(TemporaryLookupError, match="not sent"):
            await src.lookup("good._domainkey.example.com")
        assert asked == []
        state.limit.release()
        return await src.lookup("good._domainkey.example.com")
    assert asyncio.run(go()) == [b"v=DKIM1; p="]


def test_one_source_over_many_event_loops_keeps_none_of_them():
    """A process-wide source used by asyncio.run after asyncio.run, with
    more queries than slots each time: no loop is kept once it is gone."""
    import gc

    src = AsyncDNSKeySource(nameservers=["127.0.0.1"], timeout=1.0, max_concurrent=2)

    async def query(key, labels):
        await asyncio.sleep(0.001)
        return [b"v=DKIM1; p="], 0.0  # (not cached: every run queries again)
    src._query = query

    async def run():
        return await asyncio.gather(*[src.lookup("k%d._domainkey.example.com" % i) for i in range(8)])
    for _ in range(30):
        assert asyncio.run(run()) == [[b"v=DKIM1; p="]] * 8
    gc.collect()
    assert len(src._loops) <= 1


def test_the_slots_hand_over_in_turn_and_survive_cancellation():
    from fastdkim.async_dns_source import _Slots

    async def go():
        slots = _Slots(1)
        await slots.acquire()
        order = []

        async def take(tag):
            await slots.acquire()
            order.append(tag)
            await asyncio.sleep(0.01)
            slots.release()
        a = asyncio.ensure_future(take("a"))
        b = asyncio.ensure_future(take("b"))
        c = asyncio.ensure_future(take("c"))
        await asyncio.sleep(0.01)
        b.cancel()  # a waiter that gives up leaves its turn
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(slots.acquire(), 0.01)
        slots.release()
        await asyncio.gather(a, c)
        assert order == ["a", "c"] and slots.free == 1 and not slots.waiters
    asyncio.run(go())
