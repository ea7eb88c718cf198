"""ARC (RFC 8617): sealing and validating a 3-hop chain of a 3 KB message.

Run from the project root (compiled core built in place)::

    python benchmarks/bench_arc.py [--quick] [--json arc.json]

The message (``bench_workloads.small_message``, 3 KB) is DKIM-signed, then
sealed by three hops (RSA-2048, in-memory keys).  Timed, beside the raw
``cryptography`` RSA-2048 sign and verify rates (PKCS#1 v1.5, SHA-256, 64
bytes) that bound them:

* ``seal``: the third hop's ``ARCSealer.seal`` with its own chain
  validation (the two sets below: two AMS and two AS verified) and two
  signatures (AMS, AS); limit: one seal costs at least 2 raw signs and 4 raw
  verifies.
* ``seal, chain given``: the same with the chain validated beforehand
  (``chain=``), so two signatures and the hashing; limit: 2 raw signs.
* ``verify_chain``: the 3-hop chain, 6 signatures verified (3 AMS, 3 AS);
  limit: 6 raw verifies.
* dkimpy's ``arc_sign`` (third hop: it validates nothing, it takes cv= from
  the Authentication-Results field it is given) and ``arc_verify`` on the
  same messages, when dkimpy and authres are installed.

Nothing passes or fails on speed; the figures are printed (and written as
JSON with ``--json``).  The exit status is non-zero when a result is wrong
(a chain that should validate does not).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable, Dict, Optional

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if (ROOT / "src" / "fastdkim").is_dir():
    sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(HERE))

import fastdkim  # noqa: E402
from fastdkim.arc import ARCSealer, verify_chain  # noqa: E402

import bench_workloads as W  # noqa: E402
from bench_timing import measure  # noqa: E402

ALG = "rsa-sha256"
SRV_IDS = ("mx.example.com", "lists.example.com", "mx.example.net")


def _fail(msg: str) -> None:
    raise SystemExit("error: %s" % msg)


def _dkimpy() -> Optional[Any]:
    try:
        import authres  # noqa: F401  (dkimpy's arc_sign needs it)
        import dkim
    except ImportError:
        return None
    return dkim


def run(quick: bool) -> Dict[str, Any]:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    keys = W.make_keys()
    mapping = keys.mapping()
    key: Any = keys.private[ALG]
    selector = W.SELECTORS[ALG]
    message = W.small_message(3 * W.KB)
    signed = fastdkim.Signer(W.DOMAIN, selector, key).sign(message) + message
    sealers = [ARCSealer(W.DOMAIN, selector, key, authserv_id=srv, keys=mapping) for srv in SRV_IDS]
    hops = [signed]
    for sealer in sealers:
        hops.append(sealer.seal_message(hops[-1], results="dkim=pass header.d=%s" % W.DOMAIN))
    two, three = hops[2], hops[3]
    check = verify_chain(three, mapping)
    if (check.status, check.instances) != ("pass", 3):
        _fail("the benchmark chain does not validate: %s" % check)
    before = verify_chain(two, mapping)

    timing = dict(min_time=0.05 if quick else 0.2, rounds=3 if quick else 5, max_time=10.0)

    def rate(fn: Callable[[], Any]) -> float:
        return measure(fn, **timing)[0].rate()

    data = b"ARC benchmark: a short input signed by the raw primitive (64 bytes)!!"[:64]
    pk, sh = padding.PKCS1v15(), hashes.SHA256()
    sig = key.sign(data, pk, sh)
    pub = key.public_key()
    raw_sign = rate(lambda: key.sign(data, pk, sh))
    raw_verify = rate(lambda: pub.verify(sig, data, pk, sh))
    third = sealers[2]
    seal = rate(lambda: third.seal(two, results="dkim=pass"))
    seal_given = rate(lambda: third.seal(two, results="dkim=pass", chain=before))
    validate = rate(lambda: verify_chain(three, mapping))
    out: Dict[str, Any] = {
        "message_bytes": len(message), "raw_rsa_sign_s": raw_sign, "raw_rsa_verify_s": raw_verify,
        "seal_s": seal, "seal_limit_s": 1 / (2 / raw_sign + 4 / raw_verify),
        "seal_chain_given_s": seal_given, "seal_chain_given_limit_s": raw_sign / 2,
        "verify_chain_s": validate, "verify_chain_limit_s": raw_verify / 6,
    }
    dkim = _dkimpy()
    if dkim is not None:
        records = {k.encode(): v.encode() for k, v in mapping.items()}

        def dnsfunc(name: bytes, timeout: float = 5) -> Optional[bytes]:
            return records.get(name.rstrip(b"."))

        ar = ("Authentication-Results: %s; arc=pass\r\n" % SRV_IDS[2]).encode() + two
        fields = dkim.arc_sign(ar, selector.encode(), W.DOMAIN.encode(), keys.pem[ALG], SRV_IDS[2].encode())
        if not fields:
            _fail("dkimpy sealed nothing")
        cv = dkim.arc_verify(three, dnsfunc=dnsfunc)[0]
        if cv != b"pass":
            _fail("dkimpy does not validate the benchmark chain: %r" % (cv,))
        out["dkimpy_arc_sign_s"] = rate(lambda: dkim.arc_sign(ar, selector.encode(), W.DOMAIN.encode(),
                                                              keys.pem[ALG], SRV_IDS[2].encode()))
        out["dkimpy_arc_verify_s"] = rate(lambda: dkim.arc_verify(three, dnsfunc=dnsfunc))
    return out


def report(r: Dict[str, Any]) -> None:
    print("ARC, %d-byte message, RSA-2048, in-memory keys (3rd hop sealed, 3-hop chain validated):"
          % r["message_bytes"])
    print("  %-46s %9.0f /s" % ("raw cryptography RSA sign", r["raw_rsa_sign_s"]))
    print("  %-46s %9.0f /s" % ("raw cryptography RSA verify", r["raw_rsa_verify_s"]))
    rows = (
        ("ARCSealer.seal (validates 2 sets, 2 signs)", "seal_s", "seal_limit_s", "dkimpy_arc_sign_s"),
        ("ARCSealer.seal, chain= given (2 signs)", "seal_chain_given_s", "seal_chain_given_limit_s",
         "dkimpy_arc_sign_s"),
        ("verify_chain (6 verifies)", "verify_chain_s", "verify_chain_limit_s", "dkimpy_arc_verify_s"),
    )
    for label, key, limit, peer in rows:
        line = "  %-46s %9.0f /s  %.2fx limit (%.0f /s)" % (label, r[key], r[key] / r[limit], r[limit])
        if peer in r:
            line += "  %.1fx dkimpy (%.0f /s)" % (r[key] / r[peer], r[peer])
        print(line)


def main(argv: Optional[list] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="shorter rounds")
    p.add_argument("--json", metavar="PATH", help="write the figures here")
    args = p.parse_args(argv)
    if not fastdkim.ACCELERATED:
        _fail("the compiled core is not in use: python setup.py build_ext --inplace")
    r = run(args.quick)
    report(r)
    if args.json:
        Path(args.json).write_text(json.dumps({"arc": r}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
