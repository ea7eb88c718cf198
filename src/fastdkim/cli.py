"""The ``fastdkim`` command line: keygen, sign, verify, check-dns, demo.

Exit status: 0 on success, 1 when something was checked and found wanting
(a message without a passing signature, a message left unsigned, a DNS
record with problems), 2 for usage and I/O errors.
"""
from __future__ import annotations

import argparse
import os
import random
import re
import sys
import time
from typing import Any, Callable, Iterable, Iterator, List, Optional, Sequence, TextIO, Tuple

from . import __version__
from . import _core
from .keys import generate_private_key, public_key_record
from .signing import Signer, _as_endings, _sign_all, sign_all
from .verification import Verifier

__all__ = ["main", "generate_corpus"]

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2

# An authserv-id (RFC 8601 section 2.2): a value written as a token.
_AUTHSERV_ID = re.compile(r"[A-Za-z0-9!#$%&'*+\-.^_`{|}~]+\Z")


class UsageError(Exception):
    """A user error: reported in one line, exit status 2."""

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


# -- keygen -----------------------------------------------------------------------------


def _domain_and_selector(args: argparse.Namespace) -> Tuple[str, str]:
    """--domain and --selector as A-label names, or a usage error."""
    from ._text import to_a_label_domain

    out = []
    for option, value in (("--domain", args.domain), ("--selector", args.selector)):
        try:
            out.append(to_a_label_domain(value))
        except ValueError as exc:
            raise UsageError("%s: %s" % (option, exc))
    return out[0], out[1]


def _keygen(args: argparse.Namespace) -> int:
    import json

    from .keys import record_name, txt_strings, write_private_key, zone_file_line

    domain, selector = _domain_and_selector(args)
    alg = args.algorithm
    bits = args.bits if args.bits is not None else 2048
    if alg == "ed25519" and args.bits is not None:
        raise UsageError("--bits applies to RSA keys only")
    if alg == "rsa" and bits < 2048:
        raise UsageError("RSA keys of %d bits are refused: use 2048 or more (RFC 8301)" % bits)
    if alg == "rsa" and bits not in (2048, 3072, 4096):
        raise UsageError("--bits %d: use 2048, 3072 or 4096 (larger records do not fit DNS well)" % bits)
    from .errors import KeyFormatError

    try:
        key = generate_private_key(alg, bits)
    except KeyFormatError as exc:
        raise UsageError(str(exc))
    value = public_key_record(key)
    name = record_name(selector, domain)
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise UsageError("--out %s is not a directory" % args.out)
    os.makedirs(args.out, exist_ok=True)
    key_path = os.path.join(args.out, name + ".pem")
    txt_path = os.path.join(args.out, name + ".txt")
    if not args.force:
        for p in (key_path, txt_path):
            if os.path.exists(p):
                raise UsageError("%s exists: not overwriting it (use --force to replace it)" % p)
    zone = zone_file_line(selector, domain, value, args.ttl)
    try:
        write_private_key(key_path, key, force=args.force)
        with open(txt_path + ".tmp", "w", encoding="ascii") as fh:
            fh.write(zone + "\n")
        os.replace(txt_path + ".tmp", txt_path)
    except FileExistsError as exc:
        raise UsageError("%s: not overwriting it (use --force to replace it)" % exc)
    record = {"name": name + ".", "type": "TXT", "ttl": args.ttl, "value": value, "strings": txt_strings(value)}
    if args.format == "json":
        print(json.dumps(dict(record, private_key=os.path.abspath(key_path)), indent=2))
    elif args.format == "value":
        print(value)
    elif args.format == "zone":
        print(zone)
    else:
        kind = "Ed25519" if alg == "ed25519" else "RSA-%d" % bits
        print("private key (%s, mode 0600): %s" % (kind, key_path))
        print("zone-file line:                %s" % txt_path)
        print()
        print("Publish this TXT record at %s:" % name)
        print()
        print("  value (for web DNS consoles):")
        print("    " + value)
        print()
        print("  zone file:")
        print("    " + zone)
        print()
        print("  JSON:")
        print("    " + json.dumps(record))
    return EXIT_OK


# -- sign ------------------------------------------------------------------------------


class _SignSetup:
    """What a worker needs to sign: rebuilt in each process (keys are not picklable)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.policy_path = args.policy
        self.domain = args.domain
        self.selectors = list(args.selector or [])
        self.keys = list(args.key or [])
        self.options = {"canonicalization": args.canonicalization}
        if args.headers:
            self.options["headers"] = [h for h in args.headers.split(":") if h]
        if args.expiration:
            self.options["expiration"] = args.expiration
        self.password: Optional[bytes] = None
        if args.password_file:
            self.password = _read_password(args.password_file)
        self._built: Any = None

    def validate(self) -> None:
        if self.policy_path:
            if self.domain or self.selectors or self.keys:
                raise UsageError("use either --policy or --domain/--selector/--key, not both")
        else:
            if not (self.domain and self.selectors and self.keys):
                raise UsageError("signing needs --policy FILE, or --domain, --selector and --key")
            if len(self.selectors) != len(self.keys):
                raise UsageError("give one --selector per --key (%d selectors, %d keys)" % (len(self.selectors), len(self.keys)))
        self.build(report=True)

    def build(self, report: bool = False) -> Any:
        """The signers (or the policy); ``report``: show warnings about the
        keys (short RSA keys) on standard error, as the main process does."""
        if self._built is None:
            import warnings

            from .errors import DKIMError
            from .keys import load_private_key_with
            from .policy import SigningPolicy

            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    if self.policy_path:
                        self._built = SigningPolicy.from_file(self.policy_path, password=self.password)
                    else:
                        signers = []
                        for sel, path in zip(self.selectors, self.keys):
                            try:
                                key = load_private_key_with(path, self.password)
                                signers.append(Signer(self.domain, sel, key, **self.options))
                            except DKIMError as exc:
                                text = str(exc)
                                raise UsageError(text if path in text else "%s: %s" % (path, text))
                        self._built = tuple(signers)
                except (DKIMError, ValueError) as exc:
                    raise UsageError(str(exc))
            if report:
                for w in caught:
                    print("fastdkim sign: warning: %s" % w.message, file=sys.stderr)
        return self._built

    def __getstate__(self) -> dict:
        d = dict(self.__dict__)
        d["_built"] = None
        return d

    def signers_for(self, fields: Sequence[Tuple[bytes, bytes]]) -> Tuple[Signer, ...]:
        built = self.build()
        if isinstance(built, tuple):
            return built
        from .policy import from_domain

        return built.signers_for_domain(from_domain(fields))


def _read_password(path: str) -> bytes:
    """The password held in the file at ``path`` (its first line)."""
    try:
        with open(path, "rb") as fh:
            return fh.read().rstrip(b"\r\n")
    except OSError as exc:
        raise UsageError("cannot read password file %s: %s" % (path, exc.strerror or exc))


_SETUP: Optional[_SignSetup] = None


def _init_worker(setup: _SignSetup, worker: bool = False, main_pid: int = 0) -> None:
    global _SETUP
    if worker:
        # Ctrl-C is the main process's to handle: a worker finishes the
        # message in hand (each is written atomically) and is then stopped.
        import signal

        from ._owner import exit_with

        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if main_pid:
            exit_with(main_pid)  # a killed main process takes its workers along
    _SETUP = setup
    setup.build()


def _sign_stream(setup: _SignSetup, fh: Any) -> bytes:
    """Headers to prepend to the message in the seekable binary ``fh``; raises DKIMError if it cannot be signed."""
    from .errors import MessageFormatError
    from .message import read_message

    start = fh.tell()
    pm = read_message(fh)
    if pm.malformed is not None:  # (before the From domain, which such a block cannot vouch for)
        raise MessageFormatError(pm.malformed)
    signers = setup.signers_for(pm.fields)
    fh.seek(start)
    headers, lf = _sign_all(fh, signers, None)
    return _as_endings(headers, lf)


def _sign_path_task(task: Tuple[str, str, str, bool, bool]) -> Any:
    """Worker: sign file ``src`` (named ``name``) into ``dst`` (``src`` itself for
    in-place; an existing ``dst`` is replaced only with ``force``)."""
    import shutil

    from ._files import ReplacedMeanwhile
    from .batch import SignOutcome, atomic_write
    from .errors import DKIMError

    name, src, dst, in_place, force = task
    assert _SETUP is not None
    try:
        size = os.path.getsize(src)
        with open(src, "rb") as fh:
            try:
                headers = _sign_stream(_SETUP, fh)
                reason = ""
            except DKIMError as exc:
                headers, reason = b"", str(exc)
            if headers or not in_place:
                def write(out: Any) -> None:
                    out.write(headers)
                    fh.seek(0)
                    shutil.copyfileobj(fh, out, 1 << 20)

                st = os.fstat(fh.fileno())
                try:  # in place: only over the very file read (a mail client may have filed it meanwhile)
                    atomic_write(dst, write, overwrite=in_place or force,
                                 expect=(st.st_dev, st.st_ino) if in_place else None)
                except ReplacedMeanwhile as exc:
                    return SignOutcome(name, size, False, "not signed: %s" % _os_error(exc))
        return SignOutcome(name, size, bool(headers), reason)
    except FileExistsError:
        return SignOutcome(name, 0, False, "%s exists (use --force to replace it)" % dst)
    except OSError as exc:
        return SignOutcome(name, 0, False, "I/O error: %s" % _os_error(exc))


def _sign_mbox_task(task: Tuple[str, bytes, bytes]) -> Any:
    import io

    from .batch import SignOutcome
    from .errors import DKIMError

    name, _sep, data = task
    assert _SETUP is not None
    try:
        return SignOutcome(name, len(data), True), _sign_stream(_SETUP, io.BytesIO(data))
    except DKIMError as exc:
        return SignOutcome(name, len(data), False, str(exc)), b""


def _pool(jobs: int, setup: _SignSetup) -> Any:
    if jobs <= 1:
        _init_worker(setup)
        return None
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # Workers must not inherit open files by fork: an mbox locked with flock
    # would stay locked in them after fastdkim is done with it.
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    return ProcessPoolExecutor(max_workers=jobs, initializer=_init_worker, initargs=(setup, True, os.getpid()),
                               mp_context=ctx)


def _map(pool: Any, fn: Callable[[Any], Any], items: Iterable[Any], window: int = 16) -> Iterator[Tuple[Any, Any]]:
    """``(item, fn(item))`` in input order, with at most ``window`` items in flight
    (so an mbox of any size is never read into memory whole)."""
    if pool is None:
        for item in items:
            yield item, fn(item)
        return
    from collections import deque

    pending: Any = deque()
    for item in items:
        pending.append((item, pool.submit(fn, item)))
        if len(pending) >= window:
            it, fut = pending.popleft()
            yield it, fut.result()
    while pending:
        it, fut = pending.popleft()
        yield it, fut.result()


def _sign(args: argparse.Namespace) -> int:
    import shutil
    import tempfile

    from .batch import FILE, MAILDIR, MBOX, STDIN, Summary, atomic_write, detect, list_files
    from .errors import DKIMError

    setup = _SignSetup(args)
    setup.validate()
    inputs = args.inputs or ["-"]
    try:
        sources = [detect(p) for p in inputs]
    except FileNotFoundError as exc:
        raise UsageError(str(exc))
    jobs = max(1, args.jobs or os.cpu_count() or 1)
    single = len(sources) == 1 and sources[0].kind in (FILE, STDIN)
    if args.in_place and any(s.kind == STDIN for s in sources):
        raise UsageError("--in-place needs files, not standard input")
    if args.in_place and args.out:
        raise UsageError("use either --out or --in-place")
    summary = Summary()
    t0 = time.perf_counter()
    show = sys.stderr.isatty() and not args.quiet

    if len(sources) == 1 and sources[0].kind == STDIN and not args.in_place:
        stdin_copy = tempfile.TemporaryFile(prefix="fastdkim-stdin-")  # unnamed: nothing is left behind
        shutil.copyfileobj(sys.stdin.buffer, stdin_copy, 1 << 20)
        stdin_copy.flush()
        stdin_copy.seek(0)
        if stdin_copy.read(5) == b"From ":  # an mbox, or one message with its envelope line
            with stdin_copy:
                if args.out and (os.path.isdir(args.out) or args.out.endswith(("/", os.sep))):
                    raise UsageError("--out %s is a directory: give a file name for standard input" % args.out)
                return _sign_mbox_out("-", "-", args, setup, summary, t0, jobs, fh=stdin_copy)
        stdin_copy.seek(0)
    else:
        stdin_copy = None
    for src in sources:
        if src.kind != STDIN and _is_stdout(src.path) and not (args.out or args.in_place):
            raise UsageError("standard output is the input file %s: use --out or --in-place" % src.path)

    if len(sources) == 1 and sources[0].kind == MBOX and not args.in_place and not args.out:
        # an mbox (or one message stored with its "From " line) to standard output
        return _sign_mbox_out(sources[0].path, sources[0].path, args, setup, summary, t0, jobs)

    if single and not args.in_place:
        src = sources[0]
        out_path = args.out
        if out_path and (os.path.isdir(out_path) or out_path.endswith(("/", os.sep))):
            if src.kind == STDIN:
                raise UsageError("--out %s is a directory: give a file name for standard input" % out_path)
            out_path = os.path.join(out_path, os.path.basename(src.path))
        if out_path and src.kind == FILE and os.path.exists(out_path) and os.path.samefile(out_path, src.path):
            raise UsageError("--out is the input file: use --in-place to sign in place")
        fh: Any = stdin_copy if src.kind == STDIN else open(src.path, "rb")
        with fh:
            try:
                headers = _sign_stream(setup, fh)
            except DKIMError as exc:
                print("fastdkim sign: %s: not signed: %s" % (_printable(src.path), exc), file=sys.stderr)
                return EXIT_FAIL
            fh.seek(0)

            def write(out: Any) -> None:
                out.write(headers)
                shutil.copyfileobj(fh, out, 1 << 20)

            if out_path:
                try:
                    atomic_write(out_path, write, overwrite=args.force)
                except FileExistsError as exc:
                    raise UsageError("%s (use --force to replace it)" % exc)
            else:
                write(sys.stdout.buffer)
                sys.stdout.buffer.flush()
        return EXIT_OK

    if not args.in_place and not args.out:
        raise UsageError("signing several messages needs --out LOCATION (or --in-place)")
    if args.out and len(sources) > 1:
        raise UsageError("give one input location with --out (got %d)" % len(sources))
    if any(s.kind == STDIN for s in sources):
        raise UsageError("standard input holds one message: use it alone")
    if args.out and sources[0].kind in (MAILDIR, "directory") and os.path.exists(args.out) \
            and not os.path.isdir(args.out):
        raise UsageError("--out %s is not a directory (the input is a directory)" % args.out)
    pool = _pool(jobs, setup)
    seen = set()  # each file once, however often it is named
    try:
        for src in sources:
            real = os.path.realpath(src.path)
            if src.kind == MBOX:
                if real not in seen:
                    seen.add(real)
                    _sign_mbox(src.path, args, pool, summary, show)
                continue
            if src.kind == FILE:
                names = [os.path.basename(src.path)]
                base = os.path.dirname(src.path)
            else:
                names = list_files(src)
                base = src.path
            if args.out and os.path.realpath(args.out) == os.path.realpath(src.path):
                raise UsageError("--out is the input location: use --in-place to sign in place")
            if src.kind == MAILDIR and args.out:
                for sub in ("cur", "new", "tmp"):
                    os.makedirs(os.path.join(args.out, sub), exist_ok=True)
            tasks = []
            for n in names:
                s_path = os.path.join(base, n)
                real = os.path.realpath(s_path)
                if real in seen:
                    continue
                seen.add(real)
                d_path = s_path if args.in_place else (
                    args.out if src.kind == FILE else os.path.join(args.out, n))
                tasks.append((n, s_path, d_path, bool(args.in_place), bool(args.force)))
            _sweep(os.path.dirname(os.path.realpath(t[2])) for t in tasks)
            prog = _Progress("signing", len(tasks), sys.stderr, show)
            for i, (_, outcome) in enumerate(_map(pool, _sign_path_task, tasks, 4 * jobs), 1):
                summary.add(outcome)
                prog.update(i, summary.bytes)
            prog.update(len(tasks), summary.bytes, True)
            prog.close()
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return _report(summary, args, t0, jobs)


def _said(what: Optional[str]) -> None:
    """Report what recovering an interrupted run did (nothing when ``None``)."""
    if what:
        print("fastdkim: %s" % _printable(what), file=sys.stderr)


def _sweep(directories: Iterable[str]) -> None:
    """Remove the temporary files that killed fastdkim runs left in ``directories``."""
    from ._owner import sweep_temporaries

    n = sum(sweep_temporaries(d) for d in set(directories))
    if n:
        _said("removed %d temporary file%s left by an interrupted run" % (n, "s" if n > 1 else ""))


def _is_stdout(path: str) -> bool:
    """Is standard output the regular file at ``path`` (``sign X >> X``)?"""
    import stat

    try:
        out = os.fstat(sys.stdout.fileno())
        st = os.stat(path)
    except (OSError, ValueError, AttributeError):
        return False
    return stat.S_ISREG(out.st_mode) and (out.st_dev, out.st_ino) == (st.st_dev, st.st_ino)


def _sign_mbox_out(path: str, label: str, args: argparse.Namespace, setup: Any, summary: Any, t0: float,
                   jobs: int, fh: Any = None) -> int:
    """Sign the mbox at ``path`` (or in the seekable file ``fh``; shown as
    ``label``) into ``--out``, or onto standard output."""
    pool = _pool(jobs, setup)
    try:
        _sign_mbox(path, args, pool, summary, False, to=None if args.out else sys.stdout.buffer, label=label,
                   fh_in=fh)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return _report(summary, args, t0, jobs)


def _report(summary: Any, args: argparse.Namespace, t0: float, jobs: int) -> int:
    """The closing lines of a batch: what was skipped and why, and the counts."""
    el = max(time.perf_counter() - t0, 1e-9)
    err = sys.stderr
    if not args.quiet or summary.skipped:
        for o in summary.skipped:
            print("skipped %s: %s" % (_printable(o.name), _printable(o.reason)), file=err)
    print("signed %d of %d messages, %d left unsigned; %.0f msg/s, %.1f MB/s (%d job%s)" % (
        summary.signed, summary.total, len(summary.skipped), summary.total / el, summary.bytes / el / 1e6,
        jobs, "s" if jobs > 1 else ""), file=err)
    return EXIT_OK if not summary.skipped else EXIT_FAIL


def _sign_mbox(path: str, args: argparse.Namespace, pool: Any, summary: Any, show: bool, to: Any = None,
               label: Optional[str] = None, fh_in: Any = None) -> None:
    """Sign every message of the mbox at ``path`` (or in the seekable file
    ``fh_in``): in place (under the mbox lock, rewriting the file itself
    through a journal), into ``--out``, or onto the stream ``to``."""
    import contextlib

    from .batch import MboxLock, MboxLockedError, atomic_write, iter_mbox, recover_mbox, rewrite_in_place

    in_place = bool(args.in_place) and to is None and fh_in is None
    if not in_place and to is None and fh_in is None and os.path.exists(args.out) \
            and os.path.samefile(args.out, path):
        raise UsageError("--out is the input mbox: use --in-place to sign in place")
    try:
        if fh_in is None and not in_place:
            _said(recover_mbox(path, timeout=args.lock_timeout))  # a rewrite left half done by a killed run
        lock = MboxLock(path, timeout=args.lock_timeout) if in_place else None
        with lock if lock is not None else contextlib.nullcontext():
            if lock is not None:
                _said(lock.recovered)

            def source() -> Any:
                # In place, the mbox is read through the locked descriptor only.
                if lock is not None or fh_in is not None:
                    f = lock.fh if lock is not None else fh_in
                    f.seek(0)
                    return contextlib.nullcontext(f)
                return open(path, "rb")

            total = 0
            with source() as fh:
                for _ in iter_mbox(fh):
                    total += 1
            prog = _Progress("signing", total, sys.stderr, show)

            def write(out: Any) -> None:
                with source() as fh:
                    tasks = (("%s#%d" % (label or os.path.basename(path), i), sep, msg)
                             for i, (sep, msg) in enumerate(iter_mbox(fh), 1))
                    window = 4 * max(1, args.jobs or os.cpu_count() or 1)
                    for i, ((_, sep, msg), (outcome, headers)) in enumerate(
                            _map(pool, _sign_mbox_task, tasks, window), 1):
                        summary.add(outcome)
                        out.write(sep)
                        out.write(headers)
                        out.write(msg)
                        prog.update(i, summary.bytes)

            if to is not None:
                write(to)
                to.flush()
            elif lock is not None:
                rewrite_in_place(lock.fh, write, path)
            else:
                try:
                    atomic_write(args.out, write, overwrite=bool(args.force))
                except FileExistsError as exc:
                    raise UsageError("%s (use --force to replace it)" % exc)
    except MboxLockedError as exc:
        raise UsageError("%s; nothing was changed" % exc)
    except ValueError as exc:  # not an mbox after all
        raise UsageError("%s: %s" % (path, exc))
    prog.update(total, summary.bytes, True)
    prog.close()


# -- verify ----------------------------------------------------------------------------


def _key_source(args: argparse.Namespace) -> Any:
    from .dns import DNSKeySource, zone_file_key_source
    from .errors import KeyLookupError

    if args.keys and args.dns:
        raise UsageError("use either --keys FILE or --dns SERVER")
    if args.keys:
        try:
            return zone_file_key_source(args.keys)
        except KeyLookupError as exc:
            raise UsageError(str(exc))
    try:
        if args.dns:
            return DNSKeySource(nameservers=[args.dns], timeout=args.timeout)
        return DNSKeySource(timeout=args.timeout)
    except ValueError as exc:
        raise UsageError("--dns: %s" % exc)


def _printable(text: str, ascii_only: bool = False) -> str:
    """``text`` on one line: what a message put in a tag value (control
    characters, line breaks; with ``ascii_only`` anything beyond ASCII)
    shown escaped."""
    def ok(c: str) -> bool:
        return c.isprintable() and (c.isascii() or not ascii_only)

    if all(ok(c) for c in text):
        return text
    return "".join(c if ok(c) else "\\x%02x" % ord(c) if ord(c) < 0x100 else
                   "\\u%04x" % ord(c) if ord(c) < 0x10000 else "\\U%08x" % ord(c) for c in text)


def _ar_header(servid: str, results: Sequence[Any]) -> str:
    """An Authentication-Results field (RFC 8601) for the DKIM results."""
    if not results:
        return "Authentication-Results: %s; dkim=none" % servid
    parts = []
    for r in results:
        p = "dkim=%s" % r.status
        if r.reason:
            p += ' reason="%s"' % _printable(r.reason, ascii_only=True).replace("\\", "\\\\").replace('"', '\\"')
        for prop, val in (("header.d", r.domain), ("header.i", r.identity), ("header.s", r.selector),
                          ("header.a", r.algorithm)):
            if val and all(c.isascii() and c.isprintable() and c not in ' ;()"\\' for c in val):
                p += " %s=%s" % (prop, val)
        b = (r.tags.get("b") or "").replace(" ", "").replace("\t", "").replace("\r", "").replace("\n", "")
        if len(b) >= 8 and all(c.isalnum() or c in "+/=" for c in b[:8]):
            p += " header.b=%s" % b[:8]  # RFC 6008
        parts.append(p)
    return "Authentication-Results: %s;\n\t%s" % (servid, ";\n\t".join(parts))


def _verify(args: argparse.Namespace) -> int:
    import json
    import shutil
    import tempfile

    from .batch import MBOX, STDIN, JournalError, MboxLockedError, detect, iter_mbox, list_files, recover_mbox
    from .verification import Verifier

    try:
        verifier = Verifier(keys=_key_source(args), now=args.now, allow_sha1=args.allow_sha1,
                            max_signatures=args.max_signatures)
    except ValueError as exc:
        raise UsageError(str(exc))
    inputs = args.inputs or ["-"]
    try:
        sources = [detect(p) for p in inputs]
    except FileNotFoundError as exc:
        raise UsageError(str(exc))
    all_pass = True
    count = 0

    io_errors = 0

    def messages() -> Iterator[Tuple[str, Any]]:
        nonlocal io_errors
        for src in sources:
            if src.kind == STDIN:
                # spooled, to see whether it is an mbox (bounded memory: large input goes to disk)
                with tempfile.SpooledTemporaryFile(max_size=16 << 20) as spool:
                    shutil.copyfileobj(sys.stdin.buffer, spool, 1 << 20)
                    spool.seek(0)
                    is_mbox = spool.read(5) == b"From "
                    spool.seek(0)
                    if is_mbox:
                        for i, (_, msg) in enumerate(iter_mbox(spool), 1):
                            yield "-#%d" % i, msg
                    else:
                        yield "-", spool
                continue
            if src.kind == MBOX:
                paths = [src.path]
                try:
                    _said(recover_mbox(src.path))  # a rewrite left half done by a killed run
                except (MboxLockedError, JournalError) as exc:
                    io_errors += 1
                    print("fastdkim verify: error: %s: %s" % (_printable(src.path), exc), file=sys.stderr)
                    continue
            elif src.kind in ("maildir", "directory"):
                paths = [os.path.join(src.path, n) for n in list_files(src)]
            else:
                paths = [src.path]
            for path in paths:
                # one unreadable file is reported and the others still checked
                try:
                    fh = open(path, "rb")
                except OSError as exc:
                    io_errors += 1
                    print("fastdkim verify: error: %s" % _os_error(exc), file=sys.stderr)
                    continue
                with fh:
                    if src.kind == MBOX:
                        try:
                            for i, (_, msg) in enumerate(iter_mbox(fh), 1):
                                yield "%s#%d" % (path, i), msg
                        except ValueError as exc:
                            io_errors += 1
                            print("fastdkim verify: error: %s: %s" % (path, exc), file=sys.stderr)
                    else:
                        yield path, fh

    several = len(sources) > 1 or any(s.kind not in (STDIN, "file") for s in sources)
    try:
        for name, msg in messages():
            count += 1
            results = verifier.verify(msg)
            ok = any(r.status == "pass" for r in results)
            all_pass = all_pass and ok
            if args.json:
                print(json.dumps({
                    "source": name,
                    "pass": ok,
                    "signatures": [{
                        "status": r.status, "reason": r.reason, "domain": r.domain, "selector": r.selector,
                        "algorithm": r.algorithm, "identity": r.identity, "canonicalization": r.canonicalization,
                        "body_length": r.body_length, "body_truncated": r.body_truncated, "testing": r.testing,
                        "key_bits": r.key_bits, "signed_headers": list(r.signed_headers),
                        "timestamp": r.timestamp, "expiration": r.expiration,
                    } for r in results],
                }))
            elif args.ar is not None:
                if several:  # which message each header belongs to
                    print("# %s" % _printable(name))
                print(_ar_header(args.ar, results))
            else:
                shown = _printable(name)
                if not results:
                    print("%s: none (no DKIM-Signature)" % shown)
                for r in results:
                    print("%s: %s d=%s s=%s a=%s (%s)" % (
                        shown, r.status, _printable(r.domain or "-"), _printable(r.selector or "-"),
                        _printable(r.algorithm or "-"), _printable(r.reason)))
            sys.stdout.flush()
    except BrokenPipeError:
        _quiet_stdout()
        return EXIT_OK if all_pass else EXIT_FAIL
    # (any other OSError is reported by main(), as for every command)
    if io_errors:
        return EXIT_USAGE
    if count == 0:
        print("fastdkim verify: no messages found", file=sys.stderr)
        return EXIT_FAIL
    return EXIT_OK if all_pass else EXIT_FAIL


# -- recover ---------------------------------------------------------------------------


def _recover(args: argparse.Namespace) -> int:
    from .batch import MAILDIR, MBOX, MboxLock, MboxLockedError, detect, recover_all
    from .journal import JournalError

    problems = 0
    done = 0

    def one(path: str, what: Optional[str]) -> None:
        nonlocal done
        if what:
            done += 1
            print("%s: %s" % (_printable(path), _printable(what)))

    if not args.inputs:
        for path, what in recover_all(args.lock_timeout):
            if what and what.startswith(("not recovered", "the mbox is gone")):
                print("fastdkim recover: error: %s: %s" % (_printable(path), _printable(what)), file=sys.stderr)
                problems += 1
            else:
                one(path, what)
    for path in args.inputs:
        try:
            src = detect(path)
        except FileNotFoundError as exc:
            print("fastdkim recover: error: %s" % exc, file=sys.stderr)
            problems += 1
            continue
        if src.kind == MBOX or (src.kind == "file" and os.path.isfile(path)):
            try:
                with MboxLock(path, timeout=args.lock_timeout) as lock:  # (breaks a stale dot-lock)
                    one(path, lock.recovered)
                    if lock.stale_lock_removed:
                        one(path, "removed the dot-lock of a process that is gone")
            except (MboxLockedError, JournalError) as exc:
                print("fastdkim recover: error: %s: %s" % (_printable(path), _printable(str(exc))), file=sys.stderr)
                problems += 1
            dirs = [os.path.dirname(os.path.realpath(path))]
        elif src.kind == MAILDIR:
            dirs = [os.path.join(path, d) for d in ("cur", "new", "tmp")]
        else:
            dirs = [root for root, _, _ in os.walk(path)]
        from ._owner import sweep_temporaries

        n = sum(sweep_temporaries(d) for d in dirs)
        if n:
            done += 1
            print("%s: removed %d temporary file%s left by an interrupted run" % (
                _printable(path), n, "s" if n > 1 else ""))
    if not done and not problems and not args.quiet:
        print("nothing to recover", file=sys.stderr)
    return EXIT_USAGE if problems else EXIT_OK


# -- check-dns -------------------------------------------------------------------------


def _check_dns(args: argparse.Namespace) -> int:
    import dns.exception
    import dns.name
    import dns.resolver

    from .dns import DNSKeySource
    from .keys import KeyRecordError, load_private_key_with, parse_key_record, record_name
    from .errors import KeyFormatError

    domain, selector = _domain_and_selector(args)
    priv = None
    if args.key:
        password = _read_password(args.password_file) if args.password_file else None
        try:
            priv = load_private_key_with(args.key, password)
        except KeyFormatError as exc:
            raise UsageError(str(exc))
    name = record_name(selector, domain)
    problems: List[Tuple[str, str]] = []
    wire_size = 0
    if args.keys:
        if args.dns:
            raise UsageError("use either --keys FILE or --dns SERVER")
        from .dns import zone_file_key_source
        from .errors import KeyLookupError

        print("checking %s TXT in %s" % (name, args.keys))
        try:
            joined = zone_file_key_source(args.keys).lookup(name)
        except KeyLookupError as exc:
            raise UsageError(str(exc))
        if not joined:
            print("ERROR: %s has no TXT record in %s" % (name, args.keys))
            return EXIT_FAIL
        strings = [0] * len(joined)
        for j in joined:
            print("record: %s" % j.decode("ascii", "replace"))
    else:
        try:
            src = DNSKeySource(nameservers=[args.dns] if args.dns else None, timeout=args.timeout, cache_size=0)
        except ValueError as exc:
            raise UsageError("--dns: %s" % exc)
        resolver = src.resolver
        print("checking %s TXT" % name)
        if resolver is None:
            raise UsageError("no DNS resolver configured: use --dns SERVER")
        try:
            answer = resolver.resolve(dns.name.from_text(name), "TXT", raise_on_no_answer=False, search=False)
        except dns.resolver.NXDOMAIN:
            print("ERROR: %s does not exist (NXDOMAIN): the record is not published" % name)
            return EXIT_FAIL
        except (dns.exception.Timeout, dns.resolver.NoNameservers) as exc:
            print("ERROR: DNS lookup failed (temporary): %s" % exc)
            return EXIT_FAIL
        except dns.exception.DNSException as exc:
            print("ERROR: DNS lookup failed: %s" % exc)
            return EXIT_FAIL
        if answer.rrset is None:
            print("ERROR: %s exists but has no TXT record" % name)
            return EXIT_FAIL
        rdatas = list(answer.rrset)
        wire_size = len(answer.response.to_wire())
        joined = [b"".join(r.strings) for r in rdatas]
        strings = [len(r.strings) for r in rdatas]
        for j, n in zip(joined, strings):
            print("record (%d character-string%s, TTL %d): %s" % (
                n, "" if n == 1 else "s", answer.rrset.ttl, j.decode("ascii", "replace")))
    dkim = [j for j in joined if j.lstrip().startswith(b"v=DKIM1") or b"p=" in j]
    if len(dkim) > 1:
        problems.append(("ERROR", "%d DKIM records at %s: verifiers reject the key (publish exactly one)" % (len(dkim), name)))
    if not dkim:
        problems.append(("ERROR", "no DKIM record among the TXT records"))
    for n in strings:
        if n > 1:
            problems.append(("OK", "served as %d character-strings, which verifiers join" % n))
    for j in dkim:
        if b'"' in j or b"\\" in j:
            problems.append(("ERROR", "record contains quote or backslash characters: the strings were pasted "
                                      "with their zone-file quotes and are not joined"))
        try:
            rec = parse_key_record(j, min_rsa_bits=1)
        except KeyRecordError as exc:
            problems.append(("ERROR", str(exc)))
            continue
        bits = rec.key_bits
        if rec.key_type == "rsa":
            if bits < 1024:
                problems.append(("ERROR", "RSA key of %d bits: verifiers must reject it (RFC 8301)" % bits))
            elif bits < 2048:
                problems.append(("WARNING", "RSA key of %d bits: RFC 8301 recommends 2048 or more" % bits))
            else:
                problems.append(("OK", "RSA key of %d bits" % bits))
        else:
            problems.append(("OK", "Ed25519 key (RFC 8463)"))
        if rec.testing:
            problems.append(("WARNING", "t=y: the domain is testing DKIM; remove it once signing works"))
        if priv is not None:
            if rec.matches(priv):
                problems.append(("OK", "the private key %s matches the published record" % args.key))
            else:
                problems.append(("ERROR", "the private key %s does NOT match the published record" % args.key))
    if wire_size > 1232:
        problems.append(("WARNING", "the DNS answer is %d bytes: larger than a safe UDP answer (1232); "
                                    "resolvers must retry over TCP" % wire_size))
    elif wire_size > 512:
        problems.append(("WARNING", "the DNS answer is %d bytes: over 512, it needs EDNS0 (or TCP)" % wire_size))
    for level, msg in problems:
        print("%s: %s" % (level, msg))
    errors = sum(1 for lv, _ in problems if lv == "ERROR")
    print("%s" % ("no problems found" if not errors else "%d problem%s found" % (errors, "" if errors == 1 else "s")))
    return EXIT_OK if not errors else EXIT_FAIL


# -- parser ----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    fmt = argparse.RawDescriptionHelpFormatter
    p = argparse.ArgumentParser(prog="fastdkim", description="Fast DKIM signing and verification (RFC 6376, RFC 8463).",
                                epilog="Run 'fastdkim COMMAND --help' for a command's options and examples.")
    p.add_argument("--version", action="version", version="fastdkim %s" % __version__)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    k = sub.add_parser("keygen", help="create a key pair and the DNS record to publish", formatter_class=fmt,
                       description="Create a private key (written with mode 0600, never over an existing file unless "
                                   "--force) and print the TXT record to publish at SELECTOR._domainkey.DOMAIN as a "
                                   "plain value, a zone-file line and JSON.",
                       epilog="examples:\n  fastdkim keygen --domain example.com --selector s2026\n"
                              "  fastdkim keygen --domain example.com --selector ed2026 --algorithm ed25519 --out /etc/dkim\n"
                              "  fastdkim keygen --domain example.com --selector big --bits 4096 --format zone")
    k.add_argument("--domain", required=True, help="signing domain (d=)")
    k.add_argument("--selector", required=True, help="selector (s=)")
    k.add_argument("--algorithm", choices=["rsa", "ed25519"], default="rsa", help="key type (default rsa)")
    k.add_argument("--bits", type=int, help="RSA key size: 2048 (default), 3072 or 4096")
    k.add_argument("--out", default=".", help="directory for the key files (default: current directory)")
    k.add_argument("--ttl", type=int, default=3600, help="TTL in the zone-file line (default 3600)")
    k.add_argument("--format", choices=["all", "value", "zone", "json"], default="all", help="what to print")
    k.add_argument("--force", action="store_true", help="replace existing key files")
    k.set_defaults(func=_keygen)

    s = sub.add_parser("sign", help="sign a message, a directory, a Maildir or an mbox", formatter_class=fmt,
                       description="Sign one message (a file or standard input, written to standard output or --out) "
                                   "or many (a directory, a Maildir or an mbox, written to --out, or replaced "
                                   "atomically with --in-place). Messages that cannot be signed are reported and "
                                   "written out unchanged: nothing is dropped.",
                       epilog="examples:\n  fastdkim sign --domain example.com --selector s1 --key s1.pem msg.eml > signed.eml\n"
                              "  fastdkim sign --domain example.com --selector rsa --key rsa.pem --selector ed --key ed.pem msg.eml\n"
                              "  fastdkim sign --policy dkim.toml --out signed/ Maildir/\n"
                              "  fastdkim sign --policy dkim.toml --in-place outgoing.mbox")
    s.add_argument("inputs", nargs="*", metavar="INPUT", help="message file, directory, Maildir or mbox; '-' or none: standard input")
    s.add_argument("--domain", help="signing domain (d=)")
    s.add_argument("--selector", action="append", help="selector (s=); repeat with --key for dual signing")
    s.add_argument("--key", action="append", help="private key file (PEM or DER); one per --selector")
    s.add_argument("--password-file", metavar="FILE", help="file holding the password of encrypted --key files")
    s.add_argument("--policy", help="TOML signing policy: keys per From domain (see fastdkim.policy)")
    s.add_argument("--canonicalization", default="relaxed/relaxed", help="header/body canonicalization (default relaxed/relaxed)")
    s.add_argument("--headers", help="colon-separated header fields to sign (default: the usual set)")
    s.add_argument("--expiration", type=int, help="signature lifetime in seconds (x=)")
    s.add_argument("--out", help="output file (one message) or location (directory, Maildir or mbox)")
    s.add_argument("--in-place", action="store_true", help="replace the inputs, each atomically")
    s.add_argument("--force", action="store_true", help="replace an existing --out file")
    s.add_argument("--jobs", type=int, default=0, help="worker processes (default: all cores)")
    s.add_argument("--lock-timeout", type=float, default=30.0, metavar="SECONDS",
                   help="how long --in-place waits for an mbox lock held by a delivery (default 30)")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=_sign)

    v = sub.add_parser("verify", help="verify the DKIM signatures of messages", formatter_class=fmt,
                       description="Verify every DKIM-Signature of each message and print one line per signature. "
                                   "Exit status: 0 when every message has a passing signature, 1 otherwise, 2 for "
                                   "usage or I/O errors.",
                       epilog="examples:\n  fastdkim verify message.eml\n  fastdkim verify --json Maildir/\n"
                              "  fastdkim verify --ar mx.example.net < message.eml\n"
                              "  fastdkim verify --dns 127.0.0.1:5353 message.eml\n"
                              "  fastdkim verify --keys zone.txt message.eml")
    v.add_argument("inputs", nargs="*", metavar="INPUT", help="message file, directory, Maildir or mbox; '-' or none: standard input")
    v.add_argument("--json", action="store_true", help="one JSON object per message")
    v.add_argument("--ar", metavar="SERVID", help="print an Authentication-Results header (RFC 8601)")
    v.add_argument("--dns", metavar="IP[:PORT]", help="resolver to ask for keys")
    v.add_argument("--keys", metavar="FILE", help="serve keys from a zone file instead of DNS")
    v.add_argument("--timeout", type=float, default=5.0, help="DNS timeout in seconds (default 5)")
    v.add_argument("--now", type=float, help="verify as of this Unix time")
    v.add_argument("--allow-sha1", action="store_true", help="accept rsa-sha1 (refused by default, RFC 8301)")
    v.add_argument("--max-signatures", type=int, default=10, help="signatures evaluated per message (default 10)")
    v.set_defaults(func=_verify)

    r = sub.add_parser("recover", help="complete runs that were killed halfway", formatter_class=fmt,
                       description="Complete the in-place rewrite of each mbox that a killed 'fastdkim sign "
                                   "--in-place' left half done (from its journal, under the mbox lock), remove stale "
                                   "dot-locks and the temporary files such runs left in the given mboxes' directories, "
                                   "Maildirs and directories. Without INPUT, the journals in fastdkim's state "
                                   "directory. Every fastdkim command that reads or writes an mbox does this for it "
                                   "first; this command is for doing it at once (say, at boot).",
                       epilog="examples:\n  fastdkim recover /var/mail/alice\n  fastdkim recover Maildir/\n"
                              "  fastdkim recover")
    r.add_argument("inputs", nargs="*", metavar="INPUT", help="mbox, Maildir or directory")
    r.add_argument("--lock-timeout", type=float, default=30.0, metavar="SECONDS",
                   help="how long to wait for an mbox lock held by a delivery (default 30)")
    r.add_argument("--quiet", action="store_true", help="say nothing when there is nothing to do")
    r.set_defaults(func=_recover)

    c = sub.add_parser("check-dns", help="check a published key record", formatter_class=fmt,
                       description="Look up SELECTOR._domainkey.DOMAIN, parse it and report problems: syntax, "
                                   "revoked key, testing flag, short key, several records, strings pasted with "
                                   "quotes, an answer too large for UDP; with --key, whether the private key matches.",
                       epilog="examples:\n  fastdkim check-dns --domain example.com --selector s2026\n"
                              "  fastdkim check-dns --domain example.com --selector s2026 --key s2026.pem --dns 127.0.0.1:5353")
    c.add_argument("--domain", required=True)
    c.add_argument("--selector", required=True)
    c.add_argument("--key", help="private key file to compare with the record")
    c.add_argument("--password-file", metavar="FILE", help="file holding the password of an encrypted --key")
    c.add_argument("--dns", metavar="IP[:PORT]", help="resolver to ask")
    c.add_argument("--keys", metavar="FILE", help="check the record in a zone file instead of DNS (offline)")
    c.add_argument("--timeout", type=float, default=5.0, help="DNS timeout in seconds (default 5)")
    c.set_defaults(func=_check_dns)

    d = sub.add_parser(
        "demo",
        help="bulk-sign and verify a generated corpus with in-memory keys",
        description="Create throwaway RSA-2048 and Ed25519 keys, generate a corpus of realistic messages "
        "(2 KB to 1 MB), dual-sign every message, verify them against an in-memory key source, tamper "
        "with a few and show that they fail.",
        epilog="example: fastdkim demo --count 500",
    )
    d.add_argument("--count", type=int, default=2000, help="messages in the corpus (default 2000)")
    d.add_argument("--max-size", type=int, default=1 << 20, help="largest message in bytes (default 1 MiB)")
    d.add_argument("--seed", type=int, default=1, help="corpus seed (default 1)")
    d.add_argument("--quiet", action="store_true", help="no progress display")
    d.set_defaults(func=_demo)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    problem = _check_numbers(args)
    if problem:
        parser.error(problem)
    try:
        return int(args.func(args))
    except UsageError as exc:
        print("fastdkim %s: error: %s" % (args.command, exc), file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("fastdkim: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        _quiet_stdout()
        return EXIT_OK
    except OSError as exc:
        if exc.filename is None:  # a write to standard output (a full disk, a closed pipe)
            _quiet_stdout()
        print("fastdkim %s: error: %s" % (args.command, _os_error(exc)), file=sys.stderr)
        return EXIT_USAGE


def _os_error(exc: OSError) -> str:
    """An OSError in one line: what went wrong, and with which file."""
    text = exc.strerror or str(exc) or type(exc).__name__
    if exc.filename is not None:
        text = "%s: %s" % (exc.filename, text)
    return text


def _quiet_stdout() -> None:
    """Standard output failed: point it at /dev/null so that the flush at exit
    does not fail again with a traceback."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def _check_numbers(args: argparse.Namespace) -> Optional[str]:
    """Numeric options out of range, as a message for the parser (or None)."""
    import math

    cmd = args.command
    if cmd == "demo":
        if args.count < 1:
            return "--count must be at least 1"
        if args.max_size < 4096:
            return "--max-size must be at least 4096 bytes"
    if getattr(args, "jobs", 0) and args.jobs < 0:
        return "--jobs must be positive"
    lock_timeout = getattr(args, "lock_timeout", None)
    if lock_timeout is not None and not (math.isfinite(lock_timeout) and lock_timeout >= 0):
        return "--lock-timeout must be 0 or more seconds"
    if getattr(args, "expiration", None) is not None and args.expiration <= 0:
        return "--expiration must be a positive number of seconds"
    timeout = getattr(args, "timeout", None)
    if timeout is not None and not (math.isfinite(timeout) and timeout > 0):
        return "--timeout must be a positive number of seconds"
    now = getattr(args, "now", None)
    if now is not None and not (math.isfinite(now) and 0 <= now < 2 ** 62):
        return "--now must be a Unix time (seconds since 1970)"
    if getattr(args, "max_signatures", 0) < 0:
        return "--max-signatures must be 0 or more"
    if cmd == "keygen" and not 0 <= args.ttl <= 2147483647:
        return "--ttl must be from 0 to 2147483647 seconds (RFC 2181)"
    if cmd == "verify" and args.ar is not None and not _AUTHSERV_ID.match(args.ar):
        return "--ar needs an authserv-id: a host name such as mx.example.net"
    return None


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
