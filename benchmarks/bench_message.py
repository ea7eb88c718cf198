"""Per-message cost around the crypto: medians of interleaved rounds.

Signs and verifies the messages of ``run.py``'s ``3 KB 7f`` rows (about
3 KB, the seven fields of ordinary mail, signed by the default ``Signer``,
which signs and oversigns each of them) and ``100 hdr`` rows (100 fields and
a 1 KB body), and times each against the raw ``cryptography`` call with the
same key in the same process (and, in its last row, the ``3 KB 7f`` message
signed by two RSA keys of two domains against the two raw verifies): RSA-2048 PKCS#1 v1.5 SHA-256 over 64 bytes,
Ed25519 over a 32-byte digest (what RFC 8463 signs); the raw Ed25519
verify checks the message's own signature over its own digest, since
Ed25519 verification time depends on them.  Verification reuses one
``fastdkim.Verifier`` with the key in an in-memory mapping.

The two are timed in interleaved rounds (``bench_timing.measure_interleaved``);
the figure is the median over the rounds of the per-round ratio (raw time
per call / fastdkim time per call, 1.0 = no cost beyond the crypto).  On a
machine whose speed drifts from one second to the next, that moves far less
than the best round of ``run.py``'s table.  Run from the project root after
building the compiled core::

    python benchmarks/bench_message.py [--rounds 40] [--only verify-rsa,...]

Nothing passes or fails on speed: it prints a report.
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if (ROOT / "src" / "fastdkim").is_dir():
    sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(HERE))

from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import padding  # noqa: E402

import fastdkim  # noqa: E402
from fastdkim.keys import generate_private_key, public_key_record  # noqa: E402

import bench_workloads as W  # noqa: E402
from bench_timing import measure_interleaved  # noqa: E402

NAME = "sel._domainkey.example.com"


def message(fields: int) -> bytes:
    """The message of ``run.py``'s rows with this many header fields (7 or 100)."""
    return W.small_message(3 * W.KB, headers=7) if fields == 7 else W.header_message(fields)


def jobs(fields: int, alg: str) -> Tuple[Callable[[], Any], Callable[[], Any], Callable[[], Any], Callable[[], Any]]:
    """``(sign, raw_sign, verify, raw_verify)`` for one algorithm, each checked once."""
    key: Any = generate_private_key("rsa", 2048) if alg == "rsa" else generate_private_key("ed25519")
    msg = message(fields)
    signer = fastdkim.Signer("example.com", "sel", key)
    signed = signer.sign(msg) + msg
    verifier = fastdkim.Verifier(keys={NAME: public_key_record(key.public_key())})
    [result] = verifier.verify(signed)
    if result.status != "pass":
        raise SystemExit("the benchmark's message does not verify: %s" % result.reason)
    pub = key.public_key()
    if alg == "rsa":
        pkcs1, sha256 = padding.PKCS1v15(), hashes.SHA256()
        data = b"x" * 64
        sig = key.sign(data, pkcs1, sha256)
        return (lambda: signer.sign(msg), lambda: key.sign(data, pkcs1, sha256),
                lambda: verifier.verify(signed), lambda: pub.verify(sig, data, pkcs1, sha256))
    digest = b"y" * 32
    return (lambda: signer.sign(msg), lambda: key.sign(digest),
            lambda: verifier.verify(signed), W.raw_verify_of(verifier, signed, pub))


def two_signatures() -> Tuple[Callable[[], Any], Callable[[], Any]]:
    """``(verify, raw_verify)`` for the ``3 KB 7f`` message signed by two RSA-2048
    keys of two domains (an author's and a sending service's, as bulk mail
    comes), each by the default ``Signer``: one ``Verifier.verify`` against
    the two raw verifies it implies."""
    keys = [generate_private_key("rsa", 2048) for _ in range(2)]
    msg = message(7)
    signed = msg
    for key, domain in zip(keys, ("example.com", "esp.example")):
        signed = fastdkim.Signer(domain, "sel", key).sign(signed) + signed
    verifier = fastdkim.Verifier(keys={"sel._domainkey.%s" % d: public_key_record(k.public_key())
                                       for k, d in zip(keys, ("example.com", "esp.example"))})
    if [r.status for r in verifier.verify(signed)] != ["pass", "pass"]:
        raise SystemExit("the benchmark's two-signature message does not verify")
    pkcs1, sha256 = padding.PKCS1v15(), hashes.SHA256()
    data = b"x" * 64
    pairs = [(k.public_key(), k.sign(data, pkcs1, sha256)) for k in keys]

    def raw() -> None:
        for pub, sig in pairs:
            pub.verify(sig, data, pkcs1, sha256)
    return lambda: verifier.verify(signed), raw


def interleaved(ours: Callable[[], Any], raw: Callable[[], Any], rounds: int,
                seconds: float) -> Dict[str, float]:
    """The median of the per-round ratios raw time / our time per call, its
    lowest and highest, and the median times per call, in us."""
    (mine, _), (theirs, _) = measure_interleaved([ours, raw], min_time=seconds, rounds=rounds,
                                                 max_time=float("inf"))
    per_mine = [t / mine.n for t in mine.times]
    per_theirs = [t / theirs.n for t in theirs.times]
    ratios = [b / a for a, b in zip(per_mine, per_theirs)]
    return {"ratio": statistics.median(ratios), "us": statistics.median(per_mine) * 1e6,
            "raw_us": statistics.median(per_theirs) * 1e6, "ratio_low": min(ratios), "ratio_high": max(ratios)}


ROWS = [(op, alg, fields) for fields in (7, 100) for op in ("verify", "sign") for alg in ("rsa", "ed25519")]
#: the two-signature row, after ROWS
TWO = "verify-rsa-2sig"


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--rounds", type=int, default=40, help="interleaved rounds per row (default 40)")
    ap.add_argument("--seconds", type=float, default=0.05, help="length of one side of a round (default 0.05)")
    ap.add_argument("--only", default="", help="rows to run, e.g. verify-rsa,sign-ed25519-100")
    args = ap.parse_args(argv)
    if not fastdkim.ACCELERATED:
        print("the compiled core is not in use: build it first (python setup.py build_ext --inplace)",
              file=sys.stderr)
        return 2
    wanted = {w for w in args.only.split(",") if w}
    print("fastdkim %s, compiled core (%s kernels); Python %s; %d rounds a row"
          % (fastdkim.__version__, fastdkim._canon.SIMD, sys.version.split()[0], args.rounds))
    print("%-22s %10s %10s %8s  %s" % ("row", "fastdkim", "raw", "x raw", "(lowest-highest round)"))
    made: Dict[Tuple[int, str], Tuple[Callable[[], Any], ...]] = {}
    for op, alg, fields in ROWS:
        label = "%s-%s%s" % (op, alg, "" if fields == 7 else "-%d" % fields)
        if wanted and label not in wanted:
            continue
        if (fields, alg) not in made:
            made[(fields, alg)] = jobs(fields, alg)
        sign, raw_sign, verify, raw_verify = made[(fields, alg)]
        got = interleaved(sign, raw_sign, args.rounds, args.seconds) if op == "sign" else \
            interleaved(verify, raw_verify, args.rounds, args.seconds)
        _report(label, got)
    if not wanted or TWO in wanted:
        _report(TWO, interleaved(*two_signatures(), args.rounds, args.seconds))
    return 0


def _report(label: str, got: Dict[str, float]) -> None:
    print("%-22s %8.1f us %7.1f us %8.2f  (%.2f-%.2f)" % (label, got["us"], got["raw_us"], got["ratio"],
                                                         got["ratio_low"], got["ratio_high"]))
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
