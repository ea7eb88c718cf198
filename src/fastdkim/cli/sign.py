"""``fastdkim sign``: one message, a directory, a Maildir or an mbox.

Messages are signed in worker processes (``--jobs``); each worker rebuilds the
signers from a :class:`_SignSetup`, as keys cannot be pickled.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any, Callable, Dict, Iterable, Iterator, Optional, Tuple

from .._files import write_signed
from ..errors import DKIMError
from ..mailstore import DIRECTORY, FILE, MAILDIR, MBOX, STDIN, SignOutcome, Summary, atomic_write
from ..signing import Signer, sign_all
from ._common import (
    EXIT_FAIL,
    EXIT_OK,
    FORMATTER,
    UsageError,
    _os_error,
    _printable,
    _Progress,
    _said,
    at_least,
    read_password,
    seconds,
)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    s = sub.add_parser("sign", help="sign a message, a directory, a Maildir or an mbox", formatter_class=FORMATTER,
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
    s.add_argument("--expiration", type=at_least(1, "--expiration must be a positive number of seconds"),
                   help="signature lifetime in seconds (x=)")
    s.add_argument("--out", help="output file (one message) or location (directory, Maildir or mbox)")
    s.add_argument("--in-place", action="store_true", help="replace the inputs, each atomically")
    s.add_argument("--force", action="store_true", help="replace an existing --out file")
    s.add_argument("--jobs", type=at_least(0, "--jobs must be positive"), default=0,
                   help="worker processes (default: all cores)")
    s.add_argument("--lock-timeout", type=seconds("--lock-timeout must be 0 or more seconds", zero=True), default=30.0,
                   metavar="SECONDS", help="how long --in-place waits for an mbox lock held by a delivery (default 30)")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=run)


# -- what the workers run ----------------------------------------------------------------


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
            self.password = read_password(args.password_file)
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

            from ..keys import load_private_key_with
            from ..policy import SigningPolicy

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

    def __getstate__(self) -> Dict[str, Any]:
        d = dict(self.__dict__)
        d["_built"] = None
        return d

    def signers_for(self, fh: Any) -> Tuple[Signer, ...]:
        """The signers for the message in ``fh`` (a policy reads its header block)."""
        built = self.build()
        if isinstance(built, tuple):
            return built
        signers: Tuple[Signer, ...] = built.signers_for(fh)
        return signers


_SETUP: Optional[_SignSetup] = None


def _init_worker(setup: _SignSetup, worker: bool = False, main_pid: int = 0) -> None:
    global _SETUP
    if worker:
        # Ctrl-C is the main process's to handle: a worker finishes the
        # message in hand (each is written atomically) and is then stopped.
        import signal

        from .._owner import exit_with

        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if main_pid:
            exit_with(main_pid)  # a killed main process takes its workers along
    _SETUP = setup
    setup.build()


def _sign_stream(setup: _SignSetup, fh: Any) -> bytes:
    """Headers to prepend to the message in the seekable binary ``fh``; raises DKIMError if it cannot be signed."""
    start = fh.tell()
    signers = setup.signers_for(fh)
    fh.seek(start)
    return b"".join(sign_all(fh, signers))


def _sign_path_task(task: Tuple[str, str, str, bool, bool]) -> Any:
    """Worker: sign file ``src`` (named ``name``) into ``dst`` (``src`` itself for
    in-place; an existing ``dst`` is replaced only with ``force``)."""
    from ..errors import ReplacedMeanwhile

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
                    fh.seek(0)
                    write_signed(out, headers, fh)

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


# -- the command -------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    import shutil
    import tempfile

    from ..mailstore import detect

    setup = _SignSetup(args)
    setup.validate()
    inputs = args.inputs or ["-"]
    try:
        sources = [detect(p) for p in inputs]
    except FileNotFoundError as exc:
        raise UsageError(str(exc))
    jobs = max(1, args.jobs or os.cpu_count() or 1)
    if args.in_place and any(s.kind == STDIN for s in sources):
        raise UsageError("--in-place needs files, not standard input")
    if args.in_place and args.out:
        raise UsageError("use either --out or --in-place")
    summary = Summary()
    t0 = time.perf_counter()

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
    if len(sources) == 1 and sources[0].kind in (FILE, STDIN) and not args.in_place:
        return _sign_one(sources[0], args, setup, stdin_copy)
    return _sign_many(sources, args, setup, summary, t0, jobs)


def _sign_one(src: Any, args: argparse.Namespace, setup: _SignSetup, stdin_copy: Any) -> int:
    """One message (a file, or standard input in ``stdin_copy``) to ``--out`` or standard output."""
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
        if out_path:
            try:
                atomic_write(out_path, lambda out: write_signed(out, headers, fh), overwrite=args.force)
            except FileExistsError as exc:
                raise UsageError("%s (use --force to replace it)" % exc)
        else:
            write_signed(sys.stdout.buffer, headers, fh)
            sys.stdout.buffer.flush()
    return EXIT_OK


def _sign_many(sources: Any, args: argparse.Namespace, setup: _SignSetup, summary: Summary, t0: float,
               jobs: int) -> int:
    """Several messages, Maildirs, directories or mboxes: to ``--out`` or in place."""
    from ..mailstore import list_files

    if not args.in_place and not args.out:
        raise UsageError("signing several messages needs --out LOCATION (or --in-place)")
    if args.out and len(sources) > 1:
        raise UsageError("give one input location with --out (got %d)" % len(sources))
    if any(s.kind == STDIN for s in sources):
        raise UsageError("standard input holds one message: use it alone")
    if args.out and sources[0].kind in (MAILDIR, DIRECTORY) and os.path.exists(args.out) \
            and not os.path.isdir(args.out):
        raise UsageError("--out %s is not a directory (the input is a directory)" % args.out)
    show = sys.stderr.isatty() and not args.quiet
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


def _sweep(directories: Iterable[str]) -> None:
    """Remove the temporary files that killed fastdkim runs left in ``directories``."""
    from .._owner import sweep_temporaries

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

    from ..mailstore import MboxLock, MboxLockedError, iter_mbox, recover_mbox, rewrite_in_place

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
