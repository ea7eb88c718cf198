"""The ``fastdkim`` command line.

``fastdkim demo`` bulk-signs and verifies a generated corpus with throwaway
keys served from memory: a self-contained tour that needs no DNS and no files.
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import time
from typing import Iterator, List, Optional, Sequence, TextIO, Tuple

from . import __version__
from . import _core
from .keys import generate_private_key, public_key_record
from .signing import Signer, sign_all
from .verification import Verifier

__all__ = ["main", "generate_corpus"]

_WORDS = (
    "the of and to in is for on that with as was at by be this from or have are an not but which "
    "invoice order shipment account meeting schedule report update review quarterly budget team "
    "customer support release notes please find attached regards thanks tomorrow today project"
).split()


def _text_pool(rng: random.Random, size: int) -> bytes:
    lines = []
    total = 0
    while total < size:
        n = rng.randrange(0, 14)
        line = " ".join(rng.choice(_WORDS) for _ in range(n))
        if rng.random() < 0.05:
            line += "  \t "  # trailing whitespace, as mail clients leave it
        lines.append(line)
        total += len(line) + 2
    return "\r\n".join(lines).encode("ascii") + b"\r\n"


def _b64_pool(rng: random.Random, size: int) -> bytes:
    import base64

    raw = rng.getrandbits(8 * (size * 3 // 4)).to_bytes(size * 3 // 4, "little")
    enc = base64.b64encode(raw)
    return b"\r\n".join(enc[i:i + 76] for i in range(0, len(enc), 76)) + b"\r\n"


def generate_corpus(count: int, seed: int = 1, min_size: int = 2048, max_size: int = 1 << 20) -> Iterator[bytes]:
    """Yield ``count`` deterministic, realistic messages of log-uniform sizes.

    Plain text, HTML and multipart messages with base64 attachments, with
    folded headers, trailing whitespace and UTF-8 subjects.
    """
    rng = random.Random(seed)
    text = _text_pool(rng, 2 * max_size)
    b64 = _b64_pool(rng, 2 * max_size)
    import math

    lo, hi = math.log(min_size), math.log(max_size)
    for i in range(count):
        size = int(math.exp(rng.uniform(lo, hi)))
        kind = rng.random()
        subject = rng.choice(["Quarterly report", "Re: order #%d" % i, "Grüße aus Köln ✓", "Your invoice"])
        head = (
            "From: Sender %d <sender%d@example.com>\r\n"
            "To: recipient%d@example.org,\r\n\tcc-list@example.org\r\n"
            "Subject: %s\r\n"
            "Date: Mon, 02 Mar 2026 10:%02d:00 +0000\r\n"
            "Message-ID: <%d.%d@example.com>\r\n"
            "MIME-Version: 1.0\r\n" % (i, i, i, subject, i % 60, i, seed)
        ).encode("utf-8")
        off = rng.randrange(0, max_size)
        if kind < 0.5:
            body = text[off:off + size]
            head += b"Content-Type: text/plain; charset=utf-8\r\n"
        elif kind < 0.75:
            body = b"<html><body>\r\n<p>" + text[off:off + size].replace(b"\r\n\r\n", b"</p>\r\n<p>") + b"</p></body></html>\r\n"
            head += b"Content-Type: text/html; charset=utf-8\r\n"
        else:
            part = text[off:off + min(size // 4, 4096)]
            att = b64[off:off + size]
            body = (
                b"--b1\r\nContent-Type: text/plain\r\n\r\n" + part
                + b"--b1\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n"
                + b"Content-Disposition: attachment; filename=doc.pdf\r\n\r\n" + att + b"--b1--\r\n"
            )
            head += b'Content-Type: multipart/mixed; boundary="b1"\r\n'
        yield head + b"\r\n" + body


class _Progress:
    """A one-line progress display on a terminal; silent otherwise."""

    def __init__(self, label: str, total: int, out: TextIO, enabled: bool) -> None:
        self.label, self.total, self.out, self.enabled = label, total, out, enabled
        self.start = time.perf_counter()
        self.last = 0.0

    def update(self, done: int, nbytes: int, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if not force and now - self.last < 0.1:
            return
        self.last = now
        el = max(now - self.start, 1e-9)
        width = 30
        fill = int(width * done / max(self.total, 1))
        self.out.write(
            "\r%-8s [%s%s] %d/%d  %.0f msg/s  %.1f MB/s" % (
                self.label, "#" * fill, "." * (width - fill), done, self.total, done / el, nbytes / el / 1e6)
        )
        self.out.flush()

    def close(self) -> None:
        if self.enabled:
            self.out.write("\n")
            self.out.flush()


def _demo(args: argparse.Namespace) -> int:
    out = sys.stdout
    show = (sys.stderr.isatty() and not args.quiet)
    print("fastdkim %s demo (%s core)" % (__version__, "compiled" if _core.ACCELERATED else "pure-Python"), file=out)
    t0 = time.perf_counter()
    ed = generate_private_key("ed25519")
    rk = generate_private_key("rsa", 2048)
    domain = "demo.example"
    keys = {
        "ed._domainkey." + domain: public_key_record(ed),
        "rsa._domainkey." + domain: public_key_record(rk),
    }
    signers = [Signer(domain, "rsa", rk), Signer(domain, "ed", ed)]
    print("keys: RSA-2048 (s=rsa) and Ed25519 (s=ed) for d=%s, served from memory" % domain, file=out)
    corpus: List[bytes] = list(generate_corpus(args.count, seed=args.seed, max_size=args.max_size))
    total = sum(len(m) for m in corpus)
    print("corpus: %d messages, %.1f MB (%d B to %d B), generated in %.1f s" % (
        len(corpus), total / 1e6, min(len(m) for m in corpus), max(len(m) for m in corpus), time.perf_counter() - t0), file=out)

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
    print("signed:   %d messages x 2 signatures in %.2f s: %.0f msg/s, %.1f MB/s" % (
        len(corpus), sign_s, len(corpus) / sign_s, total / sign_s / 1e6), file=out)

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
    print("verified: %d/%d messages with both signatures passing in %.2f s: %.0f msg/s, %.1f MB/s" % (
        passed, len(signed), ver_s, len(signed) / ver_s, total / ver_s / 1e6), file=out)

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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fastdkim", description="Fast DKIM signing and verification (RFC 6376, RFC 8463).")
    p.add_argument("--version", action="version", version="fastdkim %s" % __version__)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    d = sub.add_parser(
        "demo",
        help="bulk-sign and verify a generated corpus with in-memory keys",
        description="Create throwaway RSA-2048 and Ed25519 keys, generate a corpus of realistic messages "
        "(2 KB to 1 MB), dual-sign every message, verify them against an in-memory key source, tamper "
        "with a few and show that they fail.",
        epilog="example: fastdkim demo --count 500",
    )
    d.add_argument("--count", type=int, default=2000, help="messages in the corpus (default 2000)")
    d.add_argument("--max-size", type=int, default=1 << 20, help="largest message body in bytes (default 1 MiB)")
    d.add_argument("--seed", type=int, default=1, help="corpus seed (default 1)")
    d.add_argument("--quiet", action="store_true", help="no progress display")
    d.set_defaults(func=_demo)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    if getattr(args, "count", 1) < 1:
        parser.error("--count must be at least 1")
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
