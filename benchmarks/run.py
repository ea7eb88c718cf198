"""fastdkim benchmarks: one command, one table.

Run from the project root after building the compiled core in place::

    python setup.py build_ext --inplace
    python benchmarks/run.py [--quick] [--json results.json] [--peers dkimpy,opendkim,mail-dkim,mailauth]

It measures, in one run and on the same bytes:

* body hashing (canonicalization + SHA-256, fed in the chunks fastdkim reads
  messages in; a large relaxed body is hashed on a second thread, as in use) of plain, HTML, base64, typical mixed, whitespace-heavy and
  sloppy-text bodies at 3 KB, 100 KB, 10 MB and 50 MB, against raw ``hashlib.sha256`` fed
  the same chunks into one hash object (and, for reference, SHA-256 of a
  cache-resident 64 KiB buffer);
* signing a 10 MB typical message (simple and relaxed), with the peers;
* signing and verifying a 3 KB message per algorithm (RSA-2048, Ed25519) and
  per canonicalization, a 3 KB message with the seven fields of ordinary mail
  as the default ``Signer`` signs it (each field signed and oversigned), and
  messages with header blocks of 10 and 100 fields,
  against the raw ``cryptography`` sign and verify rate for the same key
  (RSA: PKCS#1 v1.5 SHA-256 over a short input; Ed25519: over a 32-byte digest,
  as RFC 8463 does; the raw Ed25519 verify beside a message's verify row checks
  that message's own signature and digest, as its time depends on them), with
  the peers; verification reuses one
  ``fastdkim.Verifier`` with an in-memory key source;
* the peers dkimpy (in-process), libopendkim (a C loop), Mail::DKIM (a Perl
  loop) and mailauth (a Node loop), each looping inside its own process, each
  checked for a correct result before it is timed.  A missing peer is reported
  as skipped, with the reason.  The peers' programs and how to find and build
  them are the interop tests' (``tests/interop/peers.py``); ``bench_peers.py``
  drives them.

The compiled core's kernel path (``fastdkim._canon.SIMD``: avx2, ssse3, sse2
or scalar; ``FASTDKIM_SIMD`` forces one) is printed with the machine.

It prints one table (figure, ratio to the hardware limit, ratio to each peer)
and writes every figure with the machine's description to JSON
(``benchmarks/results.json`` unless ``--json`` says otherwise).  ``--quick``
uses smaller sizes and shorter rounds (well under a minute); the full run
takes a few minutes on a 2-core machine.  Nothing passes or fails on speed:
the exit status is non-zero only when the benchmark itself cannot run (e.g.
the compiled core is not in use).
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import re
import ssl
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if (ROOT / "src" / "fastdkim").is_dir():
    sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(HERE))

import fastdkim  # noqa: E402
from fastdkim import _canon_py  # noqa: E402
from fastdkim import canonicalization as fd_canon  # noqa: E402
from fastdkim.message import CHUNK  # noqa: E402

import bench_peers as P  # noqa: E402
import bench_workloads as W  # noqa: E402
from bench_timing import Timing, measure, measure_interleaved  # noqa: E402

#: the compiled BodyHasher's first-update size that starts a hashing thread (0: none)
HASH_THREAD_MIN = getattr(fastdkim._core.core, "HASH_THREAD_MIN", 0)

SCHEMA = 1


@dataclass
class Mode:
    name: str
    sizes: Tuple[int, ...]
    peer_size: int  # the large message that the peers sign too
    min_time: float  # seconds per round
    rounds: int
    max_time: float  # seconds per measurement, at most (rounds are dropped to fit)
    peer_rounds: int
    peer_max_time: float


FULL = Mode("full", (3 * W.KB, 100 * W.KB, 10 * W.MB, 50 * W.MB), 10 * W.MB,
            min_time=0.1, rounds=9, max_time=3.0, peer_rounds=3, peer_max_time=5.0)
QUICK = Mode("quick", (3 * W.KB, 100 * W.KB, 1 * W.MB), 1 * W.MB,
             min_time=0.025, rounds=5, max_time=0.5, peer_rounds=3, peer_max_time=1.0)

#: ratio to the hardware limit that the project's performance targets ask for
TARGET_SIGN = {"rsa-sha256": 0.95, "ed25519-sha256": 0.85}
TARGET_VERIFY = {"rsa-sha256": 0.7, "ed25519-sha256": 0.9}
#: with 100 header fields: (operation, algorithm) -> target
TARGET_HEADERS_100 = {("verify", "rsa-sha256"): 0.6, ("sign", "ed25519-sha256"): 0.75}
#: body hash, by (canonicalization, body kind); "typical" mail (plain,
#: html, base64, mixed) relaxed at 0.95, whitespace-heavy and sloppy
#: text relaxed at 0.8, simple at 0.95 whatever the text
TARGET_BODY_RELAXED = {"whitespace": 0.8, "sloppy": 0.8}
TARGET_BODY_RELAXED_TYPICAL = 0.95
TARGET_BODY_SIMPLE = 0.95
#: relaxed body-hash targets apply from this size on (and at the run's largest);
#: simple ones at the largest only
TARGET_BODY_RELAXED_FROM = 10 * W.MB
#: where k x dkimpy on a large message would ask for more than this x limit, this
PEER_TARGET_CAP = {"relaxed": 0.8, "simple": 0.95}


def body_target(canon: str, kind: str) -> float:
    """The x-limit target of a body-hash row."""
    if canon == "simple":
        return TARGET_BODY_SIMPLE
    return TARGET_BODY_RELAXED.get(kind, TARGET_BODY_RELAXED_TYPICAL)
#: fastdkim / dkimpy that the project's performance targets ask for (other peers: faster, i.e. > 1)
TARGET_DKIMPY_SMALL = {("sign", "rsa-sha256"): 20, ("verify", "rsa-sha256"): 10,
                       ("sign", "ed25519-sha256"): 5, ("verify", "ed25519-sha256"): 2}
TARGET_DKIMPY_BIG = {"relaxed": 100, "simple": 20}


@dataclass
class Row:
    key: str
    section: str
    label: str
    unit: str  # "MB/s" or "ops/s"
    units: float = 1.0  # units per operation (MB per call for MB/s rows)
    timing: Optional[Timing] = None
    limit: Optional[float] = None  # rate of the hardware limit
    limit_name: str = ""
    target: Optional[float] = None  # target ratio to the limit
    peers: Dict[str, P.PeerResult] = field(default_factory=dict)
    peer_targets: Dict[str, float] = field(default_factory=dict)
    extra: Dict[str, Any] = field(default_factory=dict)
    figure: Optional[float] = None  # for limit rows: the figure itself

    @property
    def rate(self) -> Optional[float]:
        if self.figure is not None:
            return self.figure
        return self.timing.rate(self.units) if self.timing else None

    def ratio_limit(self) -> Optional[float]:
        if self.timing is None or not self.limit:
            return None
        return self.rate / self.limit  # type: ignore[operator]

    def peer_target(self, name: str) -> float:
        """The x-peer target; for dkimpy on large messages capped by the x-limit target
        (the targets: where k x dkimpy would exceed the raw-SHA-256 target, that target)."""
        k = self.peer_targets.get(name, 1.0)
        cap = self.extra.get("peer_target_cap")
        r = self.peers.get(name)
        if cap is not None and name in self.peer_targets and self.limit and r is not None and r.timing is not None:
            k = min(k, cap * self.limit / r.timing.rate(self.units))
        return k

    def ratio_peer(self, name: str) -> Optional[float]:
        r = self.peers.get(name)
        if r is None or r.status != "ok" or self.timing is None or r.timing is None:
            return None
        return self.rate / r.timing.rate(self.units)  # type: ignore[operator]


def _chunked(data: bytes) -> List[memoryview]:
    """``data`` in the CHUNK-sized pieces every body is fed in."""
    mv = memoryview(data)
    return [mv[i:i + CHUNK] for i in range(0, len(mv), CHUNK)]


def _raw_sha256(chunks: Sequence[memoryview]) -> Callable[[], bytes]:
    """The hardware limit of a body hash: raw SHA-256 of ``chunks``, in one hash object."""
    def raw() -> bytes:
        h = hashlib.sha256()
        for c in chunks:
            h.update(c)
        return h.digest()

    return raw


class Bench:
    def __init__(self, mode: Mode, peer_names: Sequence[str], npm_install: bool, verbose: bool) -> None:
        self.mode = mode
        self.verbose = verbose
        self.rows: List[Row] = []
        self.keys = W.make_keys()
        self.verifier = fastdkim.Verifier(keys=self.keys.mapping())
        #: is a peer's product right?  (fastdkim verifies what a peer signed.)
        self.check = P.checker(self.verifier)
        self.peers = P.make_peers(peer_names, npm_install)
        self.peer_settings = P.Settings(mode.min_time, mode.peer_rounds, mode.peer_max_time)
        self.sha_limits: Dict[Tuple[str, int], float] = {}
        self.crypto: Dict[str, float] = {}
        #: each algorithm's raw (sign, verify), timed beside each message row
        self.raw_ops: Dict[str, Tuple[Callable[[], Any], Callable[[], Any]]] = {}
        self.t0 = time.perf_counter()

    # -- helpers ------------------------------------------------------------------------

    def log(self, text: str) -> None:
        print("[%6.1fs] %s" % (time.perf_counter() - self.t0, text), file=sys.stderr, flush=True)

    def time(self, fn: Callable[[], Any]) -> Tuple[Timing, Any]:
        m = self.mode
        return measure(fn, min_time=m.min_time, rounds=m.rounds, max_time=m.max_time)

    def time_with(self, *fns: Callable[[], Any]) -> List[Tuple[Timing, Any]]:
        """Time ``fns`` with their rounds interleaved (a workload and the
        hardware limit it is compared with), so that the ratio holds while the
        machine's speed drifts."""
        m = self.mode
        return measure_interleaved(fns, min_time=m.min_time, rounds=m.rounds, max_time=m.max_time * len(fns))

    def run_peers(self, row: Row, job: P.Job) -> None:
        for peer in self.peers:
            if peer.skip_reason:
                continue
            res = peer.run(job, self.peer_settings, self.check)
            row.peers[peer.name] = res
            if self.verbose or res.status != "ok":
                extra = "%.1f %s" % (res.timing.rate(row.units), row.unit) if res.timing else res.reason
                self.log("    %-9s %s: %s" % (peer.name, res.status, extra))

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        parts = []
        if row.rate is not None:
            parts.append("%.1f %s" % (row.rate, row.unit))
        if row.ratio_limit() is not None:
            parts.append("%.3fx limit" % row.ratio_limit())
        for name in row.peers:
            r = row.ratio_peer(name)
            if r is not None:
                parts.append("%.2fx %s" % (r, name))
        self.log("%-52s %s" % (row.label, ", ".join(parts)))
        return row

    # -- workloads ----------------------------------------------------------------------

    def probe_peers(self, work: Path) -> None:
        for peer in self.peers:
            peer.probe(work, self.keys)
            self.log("peer %-9s %s" % (peer.name, ("skipped: " + peer.skip_reason) if peer.skip_reason
                                       else "ready (%s)" % peer.version))

    def limits(self) -> None:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        buf = bytes(range(256)) * 256  # 64 KiB, stays in cache
        count = max(1, (64 * W.MB) // len(buf)) if self.mode is FULL else 64

        def hot() -> bytes:
            h = hashlib.sha256()
            for _ in range(count):
                h.update(buf)
            return h.digest()

        t, _ = self.time(hot)
        self.sha_hot = t.rate(len(buf) * count / W.MB)
        self.add(Row("limit/sha256-hot", "limits", "raw SHA-256, cache-resident 64 KiB buffer", "MB/s",
                     figure=self.sha_hot, extra={"timing": t.as_json(len(buf) * count / W.MB)}))
        data = b"DKIM benchmark: a short input signed by the raw primitive (64 bytes)!!"[:64]
        digest = hashlib.sha256(data).digest()
        rsa_key = self.keys.private["rsa-sha256"]
        ed_key = self.keys.private["ed25519-sha256"]
        rsa_pub, ed_pub = rsa_key.public_key(), ed_key.public_key()
        rsa_sig = rsa_key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        ed_sig = ed_key.sign(digest)
        pk, sh = padding.PKCS1v15(), hashes.SHA256()
        cases = [
            ("rsa-sha256", "sign", "raw RSA-2048 sign (PKCS#1 v1.5, SHA-256, 64 B)", lambda: rsa_key.sign(data, pk, sh)),
            ("rsa-sha256", "verify", "raw RSA-2048 verify (PKCS#1 v1.5, SHA-256, 64 B)",
             lambda: rsa_pub.verify(rsa_sig, data, pk, sh)),
            ("ed25519-sha256", "sign", "raw Ed25519 sign (32-byte digest)", lambda: ed_key.sign(digest)),
            ("ed25519-sha256", "verify", "raw Ed25519 verify (32-byte digest)", lambda: ed_pub.verify(ed_sig, digest)),
        ]
        self.raw_ops = {alg: (cases[i][3], cases[i + 1][3]) for i, alg in ((0, "rsa-sha256"), (2, "ed25519-sha256"))}
        for alg, op, label, fn in cases:
            t, _ = self.time(fn)
            self.crypto["%s/%s" % (alg, op)] = t.rate()
            self.add(Row("limit/%s/%s" % (alg, op), "limits", label, "ops/s", figure=t.rate(),
                         extra={"timing": t.as_json()}))

    def bodies(self) -> None:
        BodyHasher = fd_canon.BodyHasher  # the active (compiled) core's
        largest = max(self.mode.sizes)
        for kind in W.BODY_KINDS:
            for size in self.mode.sizes:
                data = W.body(kind, size)
                mb = len(data) / W.MB
                chunks = _chunked(data)
                raw = _raw_sha256(chunks)

                def fd(relaxed: bool) -> bytes:
                    h = BodyHasher(relaxed)
                    for c in chunks:
                        h.update(c)
                    return h.digest()

                (t_raw, _), *timed = self.time_with(raw, lambda: fd(False), lambda: fd(True))
                limit = t_raw.rate(mb)
                self.sha_limits[(kind, size)] = limit
                for canon, (t, digest) in zip(("simple", "relaxed"), timed):
                    relaxed = canon == "relaxed"
                    if len(data) <= 1 * W.MB:  # the compiled and pure cores must agree on what was timed
                        ref = _canon_py.BodyHasher(relaxed)
                        for c in chunks:
                            ref.update(c)
                        if ref.digest() != digest:
                            raise SystemExit("error: compiled and pure body hashes differ (%s %s %s)" % (kind, size, canon))
                    # (the relaxed targets name 10 MB as well as the largest size)
                    target = body_target(canon, kind) if size == largest or (
                        relaxed and size >= TARGET_BODY_RELAXED_FROM) else None
                    self.add(Row("body/%s/%d/%s" % (kind, size, canon), "body hash (canonicalize + SHA-256)",
                                 "body %-10s %6s %-7s" % (kind, W.size_label(size), canon), "MB/s", units=mb,
                                 timing=t, limit=limit, limit_name="raw SHA-256, same bytes and chunks",
                                 target=target,
                                 extra={"bytes": len(data), "chunk": CHUNK, "limit_timing": t_raw.as_json(mb),
                                        "ratio_cache_resident": t.rate(mb) / self.sha_hot}))

    def big_sign(self) -> None:
        size, kind = self.mode.peer_size, "mixed"
        msg, body = W.big_message(kind, size)
        mb = len(body) / W.MB
        raw = _raw_sha256(_chunked(body))
        for canon in ("relaxed/relaxed", "simple/simple"):
            signer = fastdkim.Signer(W.DOMAIN, W.SELECTORS["rsa-sha256"], self.keys.private["rsa-sha256"],
                                     canonicalization=canon)
            (t, sig), (t_raw, _) = self.time_with(lambda: signer.sign(msg), raw)
            limit = t_raw.rate(mb)
            res = self.verifier.verify(sig + msg)
            assert res and res[0].status == "pass", res
            bc = canon.split("/")[1]
            row = Row("sign-big/%s/%d/%s" % (kind, size, canon), "sign a large message (RSA-2048; MB/s of body)",
                      "sign %s %s %s" % (kind, W.size_label(size), canon), "MB/s", units=mb, timing=t,
                      limit=limit, limit_name="raw SHA-256 of the body",
                      extra={"message_bytes": len(msg), "peer_target_cap": PEER_TARGET_CAP[bc]})
            row.peer_targets = {"dkimpy": TARGET_DKIMPY_BIG[bc]}
            self.run_peers(row, P.job_for("sign", "rsa-sha256", canon, msg, sig))
            self.add(row)

    def messages(self, section: str, key: str, label: str, msg: bytes, canons: Sequence[str]) -> None:
        for alg in W.ALGORITHMS:
            for canon in canons:
                signer = fastdkim.Signer(W.DOMAIN, W.SELECTORS[alg], self.keys.private[alg], canonicalization=canon)
                raw_sign, raw_verify = self.raw_ops[alg]
                (t_sign, sig), (t_raw_sign, _) = self.time_with(lambda: signer.sign(msg), raw_sign)
                signed = sig + msg
                verifier = self.verifier

                def verify() -> List[Any]:
                    return verifier.verify(signed)

                if alg == "ed25519-sha256":  # (its time depends on the signature and the digest)
                    raw_verify = W.raw_verify_of(verifier, signed, self.keys.private[alg].public_key())
                (t_ver, res), (t_raw_verify, _) = self.time_with(verify, raw_verify)
                limits = {"sign": t_raw_sign.rate(), "verify": t_raw_verify.rate()}
                if len(res) != 1 or res[0].status != "pass":
                    raise SystemExit("error: fastdkim does not verify its own signature: %s" % res)
                short = "rsa" if alg == "rsa-sha256" else "ed25519"
                small = key in ("small", "small-7")
                for op, t, message in (("sign", t_sign, msg), ("verify", t_ver, signed)):
                    row = Row("%s/%s/%s/%s" % (key, op, alg, canon), section,
                              "%-6s %s %-7s %s" % (op, label, short, canon), "ops/s", timing=t,
                              limit=limits[op], limit_name="raw %s %s, timed alongside" % (short, op),
                              target=((TARGET_SIGN if op == "sign" else TARGET_VERIFY)[alg] if small
                                      else TARGET_HEADERS_100.get((op, alg)) if key == "headers-100" else None),
                              extra={"message_bytes": len(msg)})
                    if small:
                        row.peer_targets = {"dkimpy": TARGET_DKIMPY_SMALL[(op, alg)]}
                    self.run_peers(row, P.job_for(op, alg, canon, message, sig))
                    self.add(row)

    def run(self) -> None:
        with P.workdir() as tmp:
            self.probe_peers(Path(tmp))
            self.limits()
            self.bodies()
            self.big_sign()
            self.messages("sign / verify a 3 KB message (verify: key cached in a reused Verifier)", "small",
                          "3 KB", W.small_message(3 * W.KB), W.CANONICALIZATIONS)
            # ordinary mail as the default Signer signs it: seven fields, every one signed and oversigned
            self.messages("sign / verify a 3 KB message with 7 header fields (default Signer: every field signed,"
                          " oversigned)", "small-7", "3 KB 7f", W.small_message(3 * W.KB, headers=7),
                          ("relaxed/relaxed",))
            for n in (10, 100):
                self.messages("header blocks (message with a 1 KB body)", "headers-%d" % n,
                              "%3d hdr" % n, W.header_message(n), ("relaxed/relaxed",))
            for peer in self.peers:
                peer.close()


# -- output -------------------------------------------------------------------------------


def _fmt_rate(x: Optional[float]) -> str:
    if x is None:
        return ""
    if x >= 10000:
        return "%.0f" % x
    if x >= 100:
        return "%.1f" % x
    return "%.2f" % x


def _fmt_ratio(x: Optional[float]) -> str:
    if x is None:
        return ""
    if x >= 100:
        return "%.0f" % x
    if x >= 10:
        return "%.1f" % x
    return "%.2f" % x


def table(bench: Bench, info: Dict[str, Any]) -> str:
    peers = [p.name for p in bench.peers]
    lines: List[str] = []
    m = info["machine"]
    v = info["versions"]
    lines.append("fastdkim %s (compiled core, %s kernels), mode %s, on %s (%s cores, %s); Python %s"
                 % (v["fastdkim"], v["fastdkim_kernels"], bench.mode.name, m["cpu"], m["cores"],
                    " ".join(m["cpu_flags"]) or "-", m["python"]))
    load = m.get("load_average_at_start")
    lines.append("hashlib: %s; cryptography %s: %s; load average at start %s"
                 % (v["python_ssl"], v["cryptography"], v["openssl"], "%.2f" % load[0] if load else "?"))
    legend = (
        "x limit = fastdkim / hardware limit: raw hashlib.sha256 of the same bytes in the same %d KiB chunks into"
        " one hash object, or raw cryptography sign/verify with the same key (Ed25519 verify: of the message's own"
        " signature and digest).  x peer = fastdkim / peer on the"
        " same messages.  Each figure and its limit are timed together, their rounds interleaved (the limit column"
        " shows the one timed beside it).  Figures are the best timed round.  '!' = below the project's target"
        " (target column: the"
        " x-limit one).  '*' = see the peer's note below.  Relaxed bodies of %d KiB and more are hashed on a"
        " second thread while the next block is canonicalized (the limit is one thread's SHA-256)%s."
        % (CHUNK // 1024, HASH_THREAD_MIN // 1024,
           "" if HASH_THREAD_MIN else "; not on this machine, where it is off"))
    lines.extend(textwrap.wrap(legend, 118))
    w = 54
    head = "%-*s %5s %10s %10s %7s %6s" % (w, "workload", "unit", "fastdkim", "limit", "x limit", "target")
    head += "".join(" %10s" % ("x " + p) for p in peers)
    lines.append("")
    lines.append(head)
    lines.append("-" * len(head))
    section = None
    for row in bench.rows:
        if row.section != section:
            section = row.section
            lines.append("%s:" % section)
        if row.figure is not None:  # a limit row: the figure is the limit itself
            lines.append("%-*s %5s %10s %10s" % (w, "  " + row.label, row.unit, "", _fmt_rate(row.figure)))
            continue
        rl = row.ratio_limit()
        mark = "!" if (rl is not None and row.target is not None and rl < row.target) else " "
        cells = "%-*s %5s %10s %10s %6s%s %6s" % (
            w, "  " + row.label, row.unit, _fmt_rate(row.rate), _fmt_rate(row.limit), _fmt_ratio(rl), mark,
            ("%.2f" % row.target) if row.target is not None else "")
        for p in peers:
            res = row.peers.get(p)
            if res is None:
                cell = ""
            elif res.status == "ok":
                r = row.ratio_peer(p)
                tgt = row.peer_target(p)
                suffix = ("!" if r is not None and r < tgt else "") + ("*" if res.note else "")
                cell = _fmt_ratio(r) + (suffix or " ")
            elif res.status == "skipped":
                cell = "skip "
            else:
                cell = "ERROR "
            cells += " %10s" % cell
        lines.append(cells.rstrip())
    lines.append("")
    lines.append("peers:")
    for peer in bench.peers:
        if peer.skip_reason:
            lines.append("  %-9s SKIPPED: %s" % (peer.name, peer.skip_reason))
            continue
        lines.append("  %-9s ran: %s; no DNS: %s" % (peer.name, peer.version, peer.how_no_dns))
        reasons: Dict[Tuple[str, str], int] = {}
        for row in bench.rows:
            res = row.peers.get(peer.name)
            if res is not None and res.status != "ok":
                reasons[(res.status, res.reason)] = reasons.get((res.status, res.reason), 0) + 1
            elif res is not None and res.note:
                reasons[("note", res.note)] = reasons.get(("note", res.note), 0) + 1
        for (status, reason), count in sorted(reasons.items()):
            word = {"skipped": "skipped", "note": "* (timed)"}.get(status, "FAILED")
            lines.append("  %-9s %s on %d workload%s: %s" % ("", word, count, "s" if count > 1 else "", reason))
    for name in P.PEER_NAMES:
        if name not in peers:
            lines.append("  %-9s not measured (left out with --peers)" % name)
    lines.append("")
    notes = (
        "Targets: dkimpy (x dkimpy): 3 KB sign RSA >= 20, Ed25519 >= 5; verify RSA >= 10, Ed25519 >= 2;"
        " 10 MB relaxed >= 100, simple >= 20, or, where that would exceed 0.8x / 0.95x raw SHA-256, that;"
        " other peers: > 1.  Body-hash x-limit targets apply at the largest size of the run (50 MB), and relaxed"
        " ones at 10 MB too;"
        " a body larger than the CPU caches makes raw SHA-256 of it memory-bound: compare with the"
        " cache-resident rate (JSON: ratio_cache_resident).")
    lines.extend(textwrap.wrap(notes, 118))
    return "\n".join(lines)


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=str(ROOT), capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def simd_path() -> str:
    """The compiled core's live kernel path (see ``fastdkim._canon``), or "-"."""
    try:
        from fastdkim import _canon
    except ImportError:
        return "-"
    return str(getattr(_canon, "SIMD", "-"))


def machine_info() -> Dict[str, Any]:
    cpu, flags = platform.processor() or platform.machine(), []
    try:
        text = Path("/proc/cpuinfo").read_text()
        mm = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
        if mm:
            cpu = mm.group(1).strip()
        mf = re.search(r"^flags\s*:\s*(.+)$", text, re.M)
        if mf:
            have = set(mf.group(1).split())
            flags = [f for f in ("sha_ni", "avx2", "avx512f", "avx512bw", "sse4_2", "ssse3") if f in have]
    except OSError:
        pass
    try:
        from cryptography.hazmat.backends.openssl.backend import backend

        crypto_ssl = backend.openssl_version_text()
    except Exception:  # pragma: no cover - depends on the cryptography build
        crypto_ssl = "unknown"
    from importlib.metadata import version

    return {
        "machine": {
            "cpu": cpu,
            "cpu_flags": flags,
            "cores": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "python_implementation": platform.python_implementation(),
            "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        },
        "versions": {
            "fastdkim": fastdkim.__version__,
            "fastdkim_accelerated": fastdkim.ACCELERATED,
            "fastdkim_kernels": simd_path(),
            "cryptography": version("cryptography"),
            "openssl": crypto_ssl,
            "python_ssl": ssl.OPENSSL_VERSION,
            "git_commit": _git("rev-parse", "HEAD"),
            "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
        },
    }


def to_json(bench: Bench, info: Dict[str, Any], argv: Sequence[str], started: str, duration: float) -> Dict[str, Any]:
    rows = []
    for row in bench.rows:
        d: Dict[str, Any] = {"id": row.key, "section": row.section, "label": row.label.split(), "unit": row.unit}
        d["label"] = " ".join(d["label"])
        if row.figure is not None:
            d["figure"] = row.figure
        if row.timing is not None:
            d["fastdkim"] = row.timing.as_json(row.units)
        if row.limit is not None:
            d["limit"] = {"name": row.limit_name, "rate": row.limit}
            d["ratio_limit"] = row.ratio_limit()
        if row.target is not None:
            d["target_ratio_limit"] = row.target
        if row.peers:
            d["peers"] = {}
            for name, res in row.peers.items():
                pd: Dict[str, Any] = {"status": res.status}
                if res.reason:
                    pd["reason"] = res.reason
                if res.note:
                    pd["note"] = res.note
                if res.timing is not None:
                    pd.update(res.timing.as_json(row.units))
                    pd["ratio"] = row.ratio_peer(name)
                if name in row.peer_targets:
                    pd["target_ratio"] = row.peer_targets[name]
                    pd["target_ratio_effective"] = row.peer_target(name)
                d["peers"][name] = pd
        d.update(row.extra)
        rows.append(d)
    m = bench.mode
    return {
        "schema": SCHEMA,
        "command": " ".join(argv),
        "mode": m.name,
        "started": started,
        "duration_seconds": duration,
        **info,
        "settings": {"sizes": list(m.sizes), "peer_size": m.peer_size, "min_round_seconds": m.min_time,
                     "rounds": m.rounds, "peer_rounds": m.peer_rounds, "max_seconds_per_measurement": m.max_time,
                     "peer_max_seconds_per_measurement": m.peer_max_time, "chunk_bytes": CHUNK,
                     "figure": "best round; median_rate beside it", "units": "MB = 10^6 bytes, KB = 10^3 bytes"},
        "peers": {p.name: ({"status": "skipped", "reason": p.skip_reason} if p.skip_reason
                           else {"status": "ran", "version": p.version, "no_dns": p.how_no_dns})
                  for p in bench.peers},
        "rows": rows,
    }


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller sizes, shorter rounds (well under a minute)")
    ap.add_argument("--json", metavar="PATH", default=str(HERE / "results.json"),
                    help="where to write the results (default: benchmarks/results.json)")
    ap.add_argument("--peers", default=",".join(P.PEER_NAMES),
                    help="comma-separated peers to measure, or 'none' (default: %(default)s)")
    ap.add_argument("--no-npm-install", action="store_true",
                    help="do not install mailauth with npm when it is missing (it is then skipped)")
    ap.add_argument("-v", "--verbose", action="store_true", help="log every peer figure as it is measured")
    args = ap.parse_args(argv)
    if not fastdkim.ACCELERATED:
        print("error: fastdkim.ACCELERATED is false: the compiled core is not in use "
              "(build it: python setup.py build_ext --inplace; unset FASTDKIM_NO_EXTENSIONS)", file=sys.stderr)
        return 2
    names = [] if args.peers.strip() in ("", "none") else [n.strip() for n in args.peers.split(",") if n.strip()]
    unknown = [n for n in names if n not in P.PEER_NAMES]
    if unknown:
        ap.error("unknown peer(s) %s; choose from %s" % (", ".join(unknown), ", ".join(P.PEER_NAMES)))
    mode = QUICK if args.quick else FULL
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    info = machine_info()
    bench = Bench(mode, names, not args.no_npm_install, args.verbose)
    bench.log("fastdkim %s, compiled core in use (%s kernels); mode %s"
              % (fastdkim.__version__, simd_path(), mode.name))
    bench.run()
    duration = time.perf_counter() - t0
    print(table(bench, info))
    print("\ncommand: %s   (%.0f s)" % (" ".join(["python", "benchmarks/run.py", *sys.argv[1:]]), duration))
    out = to_json(bench, info, ["python", "benchmarks/run.py", *sys.argv[1:]], started, duration)
    Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    print("results written to %s" % args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
