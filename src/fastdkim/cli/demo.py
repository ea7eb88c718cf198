"""``fastdkim demo``: bulk-sign and verify a generated corpus with in-memory keys."""
from __future__ import annotations

import argparse
import random
import sys
import time
from typing import List

from .. import __version__, _core
from ..keys import generate_private_key, public_key_record
from ..mailgen import generate_corpus
from ..signing import Signer, sign_all
from ..verification import Verifier
from ._common import _Progress, at_least


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    d = sub.add_parser(
        "demo",
        help="bulk-sign and verify a generated corpus with in-memory keys",
        description="Create throwaway RSA-2048 and Ed25519 keys, generate a corpus of realistic messages "
        "(2 KB to 1 MB), dual-sign every message, verify them against an in-memory key source, tamper "
        "with a few and show that they fail.",
        epilog="example: fastdkim demo --count 500",
    )
    d.add_argument("--count", type=at_least(1, "must be at least 1"), default=2000,
                   help="messages in the corpus (default 2000)")
    d.add_argument("--max-size", type=at_least(4096, "must be at least 4096 bytes"), default=1 << 20,
                   help="largest message body in bytes, before its header block and MIME parts (default 1 MiB)")
    d.add_argument("--seed", type=int, default=1, help="corpus seed (default 1)")
    d.add_argument("--quiet", action="store_true", help="no progress display")
    d.set_defaults(func=run)


def _messages(n: int) -> str:
    return "%d message%s" % (n, "" if n == 1 else "s")


def run(args: argparse.Namespace) -> int:
    out = sys.stdout
    show = (sys.stderr.isatty() and not args.quiet)
    print("fastdkim %s demo (%s core)" % (__version__, "compiled" if _core.ACCELERATED else "pure-Python"), file=out)
    t0 = time.perf_counter()
    ed = generate_private_key("ed25519")
    rk = generate_private_key("rsa", 2048)
    key_s = time.perf_counter() - t0
    domain = "demo.example"
    keys = {
        "ed._domainkey." + domain: public_key_record(ed),
        "rsa._domainkey." + domain: public_key_record(rk),
    }
    signers = [Signer(domain, "rsa", rk), Signer(domain, "ed", ed)]
    print("keys: RSA-2048 (s=rsa) and Ed25519 (s=ed) for d=%s, served from memory (made in %.2f s)"
          % (domain, key_s), file=out)
    tc = time.perf_counter()
    corpus: List[bytes] = list(generate_corpus(args.count, seed=args.seed, max_size=args.max_size))
    total = sum(len(m) for m in corpus)
    print("corpus: %s, %.1f MB (%d B to %d B), generated in %.1f s" % (
        _messages(len(corpus)), total / 1e6, min(len(m) for m in corpus), max(len(m) for m in corpus),
        time.perf_counter() - tc), file=out)

    prog = _Progress("signing", len(corpus), sys.stderr, show)
    signed: List[bytes] = []
    nbytes = 0
    t1 = time.perf_counter()
    for i, m in enumerate(corpus, 1):
        signed.append(b"".join(sign_all(m, signers)) + m)
        nbytes += len(m)
        prog.update(i, nbytes)
    prog.update(len(corpus), nbytes, True)
    prog.close()
    sign_s = time.perf_counter() - t1
    print("signed:   %s x 2 signatures in %.2f s: %.0f msg/s, %.1f MB/s" % (
        _messages(len(corpus)), sign_s, len(corpus) / sign_s, total / sign_s / 1e6), file=out)

    verifier = Verifier(keys=keys)
    prog = _Progress("verifying", len(signed), sys.stderr, show)
    t2 = time.perf_counter()
    passed = 0
    nbytes = 0
    for i, m in enumerate(signed, 1):
        res = verifier.verify(m)
        passed += all(r.status == "pass" for r in res) and len(res) == 2
        nbytes += len(m)
        prog.update(i, nbytes)
    prog.update(len(signed), nbytes, True)
    prog.close()
    ver_s = time.perf_counter() - t2
    print("verified: %d/%s with both signatures passing in %.2f s: %.0f msg/s, %.1f MB/s" % (
        passed, _messages(len(signed)), ver_s, len(signed) / ver_s, nbytes / ver_s / 1e6), file=out)

    rng = random.Random(args.seed + 1)
    caught = 0
    tampered_total = min(5, len(signed))
    for n in range(tampered_total):
        m = signed[rng.randrange(len(signed))]
        if n % 2:
            bad, what = m.replace(b"Subject: ", b"Subject: [forged] ", 1), "changed Subject"
        else:
            pos = len(m) - 10
            bad, what = m[:pos] + (b"X" if m[pos:pos + 1] != b"X" else b"Y") + m[pos + 1:], "changed body byte"
        res = verifier.verify(bad)
        ok = all(r.status == "fail" for r in res)
        caught += ok
        print("tampered: %-18s -> %s" % (what, ", ".join("%s (%s)" % (r.status, r.reason) for r in res)), file=out)
    good = passed == len(signed) and caught == tampered_total
    print("report:   %s; %d/%d tampered messages rejected; total %.1f s" % (
        "all signatures verified" if passed == len(signed) else "VERIFICATION FAILURES",
        caught, tampered_total, time.perf_counter() - t0), file=out)
    return 0 if good else 1
