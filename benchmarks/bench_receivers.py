"""Receivers: the module-level ``fastdkim.verify()``, and ``fastdkim.aio``
against a DNS server on 127.0.0.1.

Run from the project root (compiled core built in place)::

    python benchmarks/bench_receivers.py [--quick] [--only verify,aio] [--json receivers.json]

* ``verify``: 3 KB messages, RSA-2048, one in-memory key mapping:
  ``fastdkim.verify(signed, keys=mapping)`` beside a reused
  ``fastdkim.Verifier(keys=mapping)`` and the raw ``cryptography`` RSA
  verify rate (PKCS#1 v1.5, SHA-256, 64 bytes), their rounds taken by turns
  (``bench_timing.measure_interleaved``; best round of each).
* ``aio``: 10,000 generated messages (``fastdkim.mailgen``; ``--quick``:
  2,000) signed under 200 selectors (``--quick``: 40), RSA-2048 and Ed25519
  alternating, verified by ``fastdkim.aio.AsyncVerifier`` with at most 500 in
  flight, against the test suite's DNS server (``tests/fakedns.py``: it counts
  the queries it sees per name, and drops the ones it is told to): messages/s
  with a cold cache and a warm one, the queries the server saw in each pass,
  beside a sync loop over one ``Verifier`` with a ``DNSKeySource`` and
  ``fastdkim.verify_many`` (every core; one cache per worker process) on the
  same messages.  Then the same with the server dropping every query for a
  tenth of the selectors: how those messages came out, how the others came
  out, and the run time beside the lookup timeout.

Nothing passes or fails on speed; the numbers are printed (and written as
JSON with ``--json``).  The exit status is non-zero when a result is wrong
(a message that should pass does not, a query count is off).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if (ROOT / "src" / "fastdkim").is_dir():
    sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "tests"))

import fastdkim  # noqa: E402
import fastdkim.aio  # noqa: E402
from fastdkim import mailgen  # noqa: E402
from fastdkim.keys import txt_strings  # noqa: E402

import bench_workloads as W  # noqa: E402
from bench_timing import measure_interleaved  # noqa: E402
from fakedns import FakeDNS, Txt  # noqa: E402

DOMAIN = "example.com"
IN_FLIGHT = 500


def _fail(msg: str) -> None:
    raise SystemExit("error: %s" % msg)


# -- fastdkim.verify() beside a reused Verifier ------------------------------------------------


def bench_verify(quick: bool, out: Dict[str, Any]) -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    keys = W.make_keys()
    alg = "rsa-sha256"
    msg = W.small_message(3 * W.KB)
    signed = fastdkim.Signer(W.DOMAIN, W.SELECTORS[alg], keys.private[alg]).sign_message(msg)
    mapping = keys.mapping()
    verifier = fastdkim.Verifier(keys=mapping)
    key: Any = keys.private[alg]
    pub = key.public_key()
    data = b"DKIM benchmark: a short input signed by the raw primitive (64 bytes)!!"[:64]
    pk, sh = padding.PKCS1v15(), hashes.SHA256()
    sig = key.sign(data, pk, sh)
    # the three timed by turns (bench_timing.measure_interleaved), round after
    # round, so that the machine's drift weighs on them alike
    timed = measure_interleaved([lambda: pub.verify(sig, data, pk, sh), lambda: verifier.verify(signed),
                                 lambda: fastdkim.verify(signed, keys=mapping)],
                                min_time=0.05 if quick else 0.2, rounds=5 if quick else 9, max_time=60.0)
    for _, res in timed[1:]:
        if len(res) != 1 or res[0].status != "pass":
            _fail("the benchmark message does not verify: %s" % res)
    raw, reused, module = (t.rate() for t, _ in timed)
    out["verify"] = {"message_bytes": len(signed), "raw_rsa_verify_s": raw, "reused_verifier_s": reused,
                     "module_verify_s": module, "module_over_raw": module / raw, "reused_over_raw": reused / raw,
                     "module_over_reused": module / reused}
    print("verify() %d-byte message, RSA-2048, in-memory keys:" % len(signed))
    print("  %-44s %9.0f /s" % ("raw cryptography RSA verify", raw))
    print("  %-44s %9.0f /s  %.2fx raw" % ("Verifier(keys=mapping), reused", reused, reused / raw))
    print("  %-44s %9.0f /s  %.2fx raw  %.2fx reused Verifier" % ("fastdkim.verify(signed, keys=mapping)", module,
                                                               module / raw, module / reused))


# -- fastdkim.aio against a DNS server on 127.0.0.1 ---------------------------------------------


def _corpus(count: int, selectors: int) -> Tuple[List[bytes], List[str], Dict[str, Any]]:
    """``(signed messages, the selector of each, zone)``: selector ``sNNN``
    signs every ``selectors``-th message; even ones RSA-2048, odd ones Ed25519."""
    names = ["s%03d" % i for i in range(selectors)]
    zone: Dict[str, Any] = {}
    signers = []
    for i, sel in enumerate(names):
        key = fastdkim.generate_private_key("rsa", 2048) if i % 2 == 0 else fastdkim.generate_private_key("ed25519")
        zone["%s._domainkey.%s" % (sel, DOMAIN)] = Txt(txt_strings(fastdkim.public_key_record(key)), ttl=3600)
        signers.append(fastdkim.Signer(DOMAIN, sel, key))
    msgs, used = [], []
    for i in range(count):
        j = i % selectors
        body = mailgen.message(2000 + (i * 7919) % 6000, seed=i, total=True)
        msgs.append(signers[j].sign(body) + body)
        used.append(names[j])
    return msgs, used, zone


async def _verify_all(verifier: Any, msgs: Sequence[bytes], limit: int) -> List[Any]:
    """Every message, at most ``limit`` in flight, results in order."""
    results: List[Any] = [None] * len(msgs)
    todo = iter(enumerate(msgs))

    async def worker() -> None:
        for i, m in todo:
            results[i] = await verifier.verify(m)

    await asyncio.gather(*[worker() for _ in range(limit)])
    return results


def _serve(zone: Dict[str, Any], conn: Any) -> None:
    """In a process of its own: serve *zone*, answer "count" with the number
    of queries seen so far, stop at "stop"."""
    server = FakeDNS(zone)
    conn.send(server.address)
    while conn.recv() == "count":
        with server._lock:
            conn.send(sum(server.counts.values()))
    server.stop()
    conn.send(None)


class _Server:
    """The test suite's DNS server (``tests/fakedns.py``) in a process of its
    own, so that it does not compete for this process's GIL with the
    verifiers it answers."""

    def __init__(self, zone: Dict[str, Any]) -> None:
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(zone, child), daemon=True)
        self._proc.start()
        self.address: str = self._conn.recv()

    def queries(self) -> int:
        self._conn.send("count")
        n: int = self._conn.recv()
        return n

    def stop(self) -> None:
        self._conn.send("stop")
        self._conn.recv()
        self._proc.join(10)


def _queries(server: _Server) -> int:
    return server.queries()


def _check(results: Sequence[Any], expect: Sequence[str], what: str) -> None:
    for rs, want in zip(results, expect):
        if [r.status for r in rs] != [want]:
            _fail("%s: expected %s, got %s" % (what, want, [(r.status, r.reason) for r in rs]))


def bench_aio(quick: bool, out: Dict[str, Any], timeout: float) -> None:
    count, nsel = (2000, 40) if quick else (10_000, 200)
    t0 = time.perf_counter()
    msgs, used, zone = _corpus(count, nsel)
    print("aio      %d messages under %d selectors (RSA-2048 / Ed25519), at most %d in flight "
          "(set up in %.0f s):" % (count, nsel, IN_FLIGHT, time.perf_counter() - t0))
    row: Dict[str, Any] = {"messages": count, "selectors": nsel, "in_flight": IN_FLIGHT}
    server = _Server(zone)
    rounds = 5

    def dns_source() -> Any:
        return fastdkim.DNSKeySource(nameservers=[server.address], timeout=timeout)

    def async_verifier() -> Any:
        return fastdkim.aio.AsyncVerifier(
            keys=fastdkim.aio.AsyncDNSKeySource(nameservers=[server.address], timeout=timeout))

    def aio_run(v: Any) -> List[Any]:
        return asyncio.run(_verify_all(v, msgs, IN_FLIGHT))

    def sync_run(v: Any) -> List[Any]:
        return [v.verify(m) for m in msgs]

    def many_run(keys: Any) -> List[Any]:
        return [r.results for r in fastdkim.verify_many(msgs, keys=keys)]

    def sync_verifier() -> Any:
        return fastdkim.Verifier(keys=dns_source())

    # (label, run(state), fresh state, whether the state is made anew for each round)
    configs = [("aio, cold", aio_run, async_verifier, True), ("aio, warm", aio_run, async_verifier, False),
               ("sync loop, cold", sync_run, sync_verifier, True), ("sync loop, warm", sync_run, sync_verifier, False),
               ("verify_many (every core)", many_run, dns_source, True)]
    states: List[Any] = []
    for _, run, fresh, cold in configs:
        states.append(fresh())
        if not cold:
            run(states[-1])  # warms the cache; not timed
    best = [0.0] * len(configs)
    seen: List[set] = [set() for _ in configs]
    try:
        for _ in range(rounds):  # round by round, so that a slower spell of the machine hits every run alike
            for i, (label, run, fresh, cold) in enumerate(configs):
                if cold:
                    states[i] = fresh()
                before = _queries(server)
                t = time.perf_counter()
                results = run(states[i])
                best[i] = max(best[i], count / (time.perf_counter() - t))
                seen[i].add(_queries(server) - before)
                _check(results, ["pass"] * count, label)
    finally:
        server.stop()
    passes: List[Tuple[str, float, int]] = []
    for i, (label, _, _, _) in enumerate(configs):
        if len(seen[i]) != 1:
            _fail("%s: the query count changed from round to round: %s" % (label, sorted(seen[i])))
        passes.append((label, best[i], seen[i].pop()))
    aio_cold, aio_warm = passes[0][1], passes[1][1]
    sync_cold, sync_warm = passes[2][1], passes[3][1]
    if passes[0][2] != nsel or passes[1][2] != 0:
        _fail("aio queries: %d cold (expected %d), %d warm (expected 0)" % (passes[0][2], nsel, passes[1][2]))
    row["passes"] = [{"run": label, "msg_s": r, "queries": q} for label, r, q in passes]
    row["aio_cold_over_sync_cold"] = aio_cold / sync_cold
    row["aio_warm_over_sync_warm"] = aio_warm / sync_warm
    print("  %-32s %9s %9s %8s   (best of %d rounds; queries: what the server saw in one round)"
          % ("run", "msg/s", "x sync", "queries", rounds))
    for label, r, q in passes:
        base = sync_warm if "warm" in label else sync_cold
        print("  %-32s %9.0f %8.2fx %8d" % (label, r, r / base, q))

    # a tenth of the selectors dropped by the server
    dropped = set(sorted(set(used))[::10])
    lossy = {n: ("drop" if n.split(".")[0] in dropped else v) for n, v in zone.items()}
    server = _Server(lossy)
    try:
        source = fastdkim.aio.AsyncDNSKeySource(nameservers=[server.address], timeout=timeout)
        verifier = fastdkim.aio.AsyncVerifier(keys=source)
        t = time.perf_counter()
        results = asyncio.run(_verify_all(verifier, msgs, IN_FLIGHT))
        elapsed = time.perf_counter() - t
        queries = _queries(server)
    finally:
        server.stop()
    expect = ["temperror" if sel in dropped else "pass" for sel in used]
    _check(results, expect, "aio with dropped queries")
    affected = expect.count("temperror")
    row["dropped"] = {"selectors": len(dropped), "messages_temperror": affected, "messages_pass": count - affected,
                      "seconds": elapsed, "timeout": timeout, "queries": queries}
    clean = count / aio_cold
    row["dropped"]["clean_cold_seconds"] = clean
    print("  server dropping the queries for %d of %d selectors (lookup timeout %.1f s): %d messages temperror, "
          "%d pass; %d queries; in %.2f s, %.2f s more than a cold pass without drops (%.2f s)"
          % (len(dropped), nsel, timeout, affected, count - affected, queries, elapsed, elapsed - clean, clean))
    out["aio"] = row


def main(argv: Sequence[str] = ()) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer messages and selectors, shorter rounds")
    ap.add_argument("--only", default="verify,aio", help="comma-separated: verify, aio")
    ap.add_argument("--timeout", type=float, default=1.0, help="DNS lookup timeout in the aio runs (seconds)")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args(list(argv) or None)
    if not fastdkim.ACCELERATED:
        _fail("the compiled core is not in use: python setup.py build_ext --inplace")
    out: Dict[str, Any] = {}
    only = set(args.only.split(","))
    if "verify" in only:
        bench_verify(args.quick, out)
    if "aio" in only:
        bench_aio(args.quick, out, args.timeout)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
