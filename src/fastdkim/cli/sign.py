"""``fastdkim sign``: one message, a directory, a Maildir or an mbox.

The signers (or the policy) are built once, in this process, and handed to
the bulk engine (:mod:`fastdkim.bulk`), which sends them to each worker
process once.  Message files are signed and written by the workers and put
in place in batches (:func:`fastdkim.bulk.sign_files_into`); an mbox's
messages go through the engine in order (see ``_sign_mbox``).
"""
from __future__ import annotations

import argparse
import contextlib
import os
import stat
import sys
import time
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple

from .._files import atomic_write, write_signed
from .._work import _as_is
from ..errors import DKIMError, ReplacedMeanwhile
from ..mailstore import DIRECTORY, FILE, MAILDIR, MBOX, STDIN, STREAM, Summary
from ..signing import Signer, sign_all
from ._common import (
    EXIT_FAIL,
    EXIT_OK,
    EXIT_PIPE,
    FORMATTER,
    UsageError,
    _os_error,
    _printable,
    _quiet_stdout,
    at_least,
    check_canonicalization,
    check_domain,
    check_header_names,
    check_selector,
    read_password,
    seconds,
    stop_on_signals,
)
from ._sign_mbox import make_dirs_for, sign_mbox


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    s = sub.add_parser("sign", help="sign a message, a directory, a Maildir or an mbox", formatter_class=FORMATTER,
                       description="Sign one message (a file or standard input, written to standard output or --out) "
                                   "or many (a directory, a Maildir or an mbox, written to --out, or replaced "
                                   "atomically with --in-place). A message that cannot be signed is written out "
                                   "unchanged (with --in-place, left as it is) and reported, and the exit status is "
                                   "1: nothing is dropped. Outputs get the permissions of their inputs. Stopped by "
                                   "Ctrl-C, SIGTERM, SIGHUP or a closed standard output, it ends its worker "
                                   "processes, leaves each output either as it was or completely signed, and exits "
                                   "with 128 + the signal's number (141 for the closed output).",
                       epilog="examples:\n  fastdkim sign --domain example.com --selector s1 --key s1.pem msg.eml > signed.eml\n"
                              "  fastdkim sign --domain example.com --selector rsa --key rsa.pem --selector ed --key ed.pem msg.eml\n"
                              "  fastdkim sign --policy dkim.toml --out signed/ Maildir/\n"
                              "  fastdkim sign --policy dkim.toml --in-place outgoing.mbox\n"
                              "  fastdkim sign --opendkim-conf /etc/opendkim.conf msg.eml > signed.eml")
    s.add_argument("inputs", nargs="*", metavar="INPUT", help="message file, directory, Maildir or mbox; '-' or none: standard input")
    s.add_argument("--domain", help="signing domain (d=)")
    s.add_argument("--selector", action="append", help="selector (s=); repeat with --key for dual signing")
    s.add_argument("--key", action="append", help="private key file (PEM or DER); one per --selector")
    s.add_argument("--password-file", metavar="FILE", help="file holding the password of encrypted --key files")
    s.add_argument("--refuse-insecure-keys", action="store_true",
                   help="refuse key files readable or writable by group or others, or owned by another user "
                        "(default: a warning)")
    s.add_argument("--policy", help="TOML signing policy: keys per From domain (see fastdkim.policy)")
    s.add_argument("--opendkim-conf", metavar="FILE",
                   help="sign as OpenDKIM would: the KeyTable and SigningTable (and MultipleSignatures, "
                        "Canonicalization, SignHeaders, OmitHeaders, OversignHeaders, SenderHeaders, "
                        "SignatureTTL, Include) of this opendkim.conf")
    s.add_argument("--canonicalization", help="with --domain/--selector/--key: header/body canonicalization "
                                              "(default relaxed/relaxed)")
    s.add_argument("--headers", help="with --domain/--selector/--key: colon-separated header fields to sign "
                                     "(default: the usual set)")
    s.add_argument("--expiration", type=at_least(1, "must be a positive number of seconds"),
                   help="with --domain/--selector/--key: signature lifetime in seconds (x=)")
    s.add_argument("--out", help="output file (one message) or location (directory, Maildir or mbox)")
    s.add_argument("--in-place", action="store_true", help="replace the inputs, each atomically")
    s.add_argument("--force", action="store_true", help="replace an existing --out file")
    s.add_argument("--jobs", type=at_least(1, "must be 1 or more"),
                   help="worker processes, 1 or more (default: one per usable core; 1: no worker process)")
    s.add_argument("--lock-timeout", type=seconds("must be 0 or more seconds", zero=True), default=30.0,
                   metavar="SECONDS", help="how long to wait for an mbox that is being written (a delivery, or "
                                           "another fastdkim run signing it in place; default 30)")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=run)


# -- the signers -------------------------------------------------------------------------


class _SignSetup:
    """The signers (or the policy) of the command, built once from its
    options, their warnings shown once.  Here it signs through
    :func:`_sign_stream`; it travels to worker processes as what it built
    (nothing is rebuilt, no key file read again there)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.policy_path = args.policy
        self.opendkim_conf: Optional[str] = getattr(args, "opendkim_conf", None)
        self.refuse_insecure = bool(getattr(args, "refuse_insecure_keys", False))
        self.domain = args.domain
        self.selectors = list(args.selector or [])
        self.keys = list(args.key or [])
        # (each checked here, so that a bad value is blamed on its option, not on a key file)
        self.options: Dict[str, Any] = {"canonicalization": "relaxed/relaxed"}
        #: the options of the signers given on the command line, by name
        self.signer_options = [o for o, v in (("--canonicalization", args.canonicalization),
                                              ("--headers", args.headers), ("--expiration", args.expiration))
                               if v is not None]
        if args.canonicalization is not None:
            self.options["canonicalization"] = check_canonicalization(args.canonicalization)
        if args.headers is not None:
            self.options["headers"] = check_header_names(args.headers)
        if args.expiration:
            self.options["expiration"] = args.expiration
        self.password: Optional[bytes] = None
        if args.password_file:
            self.password = read_password(args.password_file)
        self._built: Any = None

    def validate(self) -> None:
        """Check the options and build the signers (or the policy) once.

        :raises UsageError: options that do not go together, or a key or the
            policy that cannot be loaded.
        """
        if self.opendkim_conf:
            if self.policy_path or self.domain or self.selectors or self.keys:
                raise UsageError("use either --opendkim-conf, --policy or --domain/--selector/--key")
        elif self.policy_path:
            if self.domain or self.selectors or self.keys:
                raise UsageError("use either --policy or --domain/--selector/--key, not both")
        if (self.opendkim_conf or self.policy_path) and self.signer_options:
            raise UsageError("%s go%s with --domain/--selector/--key: %s sets %s for its keys" % (
                ", ".join(self.signer_options), "es" if len(self.signer_options) == 1 else "",
                "--opendkim-conf" if self.opendkim_conf else "--policy",
                "them" if len(self.signer_options) > 1 else "it"))
        if not (self.opendkim_conf or self.policy_path):
            if not (self.domain and self.selectors and self.keys):
                raise UsageError("signing needs --policy FILE, --opendkim-conf FILE, or --domain, --selector and --key")
            if len(self.selectors) != len(self.keys):
                raise UsageError("give one --selector per --key (%d selectors, %d keys)" % (len(self.selectors), len(self.keys)))
            check_domain(self.domain)
            for sel in self.selectors:
                check_selector(sel)
        self.build(report=True)

    def build(self, report: bool = False) -> Any:
        """The signers (or the policy); ``report``: show warnings about the
        keys (short RSA keys) on standard error.

        :raises UsageError: a key or the policy cannot be loaded.
        """
        if self._built is None:
            import warnings

            from ..key_hygiene import check_key_file
            from ..keys import load_private_key_with
            from ..policy import SigningPolicy

            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    if self.opendkim_conf:
                        self._built = SigningPolicy.from_opendkim_conf(self.opendkim_conf,
                                                                       refuse_insecure_keys=self.refuse_insecure)
                    elif self.policy_path:
                        self._built = SigningPolicy.from_file(self.policy_path, password=self.password,
                                                              refuse_insecure_keys=self.refuse_insecure)
                    else:
                        signers = []
                        for sel, path in zip(self.selectors, self.keys):
                            try:
                                check_key_file(path, refuse=self.refuse_insecure)
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

    def sign(self, message: Any) -> bytes:
        """The ``DKIM-Signature`` field(s) for ``message`` (see :func:`_sign_stream`)."""
        return _sign_stream(self, message)

    def __reduce__(self) -> Tuple[Any, Tuple[Any]]:
        return _as_is, (self.build(),)


def _sign_stream(setup: _SignSetup, message: Any) -> bytes:
    """The field(s) to prepend to ``message`` (bytes, or a binary file read
    from its position, its header block once).

    :raises DKIMError: the message cannot be signed.
    """
    built = setup.build()
    if isinstance(built, tuple):
        return b"".join(sign_all(message, built))
    headers: bytes = built.sign(message)
    return headers


def _pool(jobs: int, setup: _SignSetup) -> Any:
    """A pool of ``jobs`` worker processes as the bulk engine starts them
    (forked from a server process, so that they inherit no open file, such
    as a locked mbox, and ending with this process), the signers of
    ``setup`` installed in each; ``None`` for one job.  (The command lets
    the engine start its own; this one is for callers that want a pool
    alike.)"""
    if jobs <= 1:
        return None
    import pickle

    from .._engine import _start_pool

    return _start_pool(jobs, "sign-%d" % os.getpid(), pickle.dumps(setup, protocol=pickle.HIGHEST_PROTOCOL))


# -- the command -------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    from ..bulk import usable_cores

    inputs = args.inputs or ["-"]
    jobs = max(1, args.jobs or usable_cores())
    if jobs > 1 and _mbox_needs_workers(inputs):
        from .._engine import warm_up

        warm_up()  # the server the workers are forked from starts while the keys are read
    setup = _SignSetup(args)
    setup.validate()
    with stop_on_signals():
        try:
            return _run(args, setup, inputs, jobs)
        except BrokenPipeError:  # the reader went away: stop (the workers have ended), say so, and fail
            _quiet_stdout()
            print("fastdkim sign: error: standard output was closed; stopped", file=sys.stderr)
            return EXIT_PIPE


def _mbox_needs_workers(inputs: List[str]) -> bool:
    """Whether signing ``inputs`` will likely start worker processes for an
    mbox (one that is not small; a guess, made before anything else is
    read).  They are forked from a server process, not from this one, which
    holds the mbox open and locked while they work; the workers for message
    files are forked from this process (it holds no message file open
    then)."""
    from ..mailstore import MBOX, detect
    from ._sign_mbox import IN_PROCESS_BYTES

    for p in inputs:
        try:
            st = os.stat(p)
            if stat.S_ISREG(st.st_mode) and st.st_size >= IN_PROCESS_BYTES and detect(p).kind == MBOX:
                return True
        except (OSError, ValueError):
            continue
    return False


def _run(args: argparse.Namespace, setup: _SignSetup, inputs: List[str], jobs: int) -> int:
    import shutil
    import tempfile

    from ..mailstore import detect

    try:
        sources = [detect(p) for p in inputs]
    except FileNotFoundError as exc:
        raise UsageError(str(exc))
    if args.in_place and any(s.kind == STDIN for s in sources):
        raise UsageError("--in-place needs files, not standard input")
    for src in sources:
        if src.kind == STREAM and (args.in_place or len(sources) > 1):
            raise UsageError("%s is not a regular file (a pipe or a device): it can be signed only alone, "
                             "not in place" % _printable(src.path))
    if args.in_place and args.out:
        raise UsageError("use either --out or --in-place")
    summary = Summary()
    t0 = time.perf_counter()

    if len(sources) == 1 and sources[0].kind in (STDIN, STREAM) and not args.in_place:
        stdin_copy = tempfile.TemporaryFile(prefix="fastdkim-stdin-")  # unnamed: nothing is left behind
        try:  # (a named pipe or device is read once, like standard input)
            with contextlib.nullcontext(sys.stdin.buffer) if sources[0].kind == STDIN \
                    else open(sources[0].path, "rb") as stream:
                shutil.copyfileobj(stream, stdin_copy, 1 << 20)
        except OSError as exc:
            stdin_copy.close()
            raise UsageError("%s: %s" % (_printable(sources[0].path), exc.strerror or exc))
        stdin_copy.flush()
        stdin_copy.seek(0)
        if stdin_copy.read(5) == b"From ":  # an mbox, or one message with its envelope line
            with stdin_copy:
                if args.out and (os.path.isdir(args.out) or args.out.endswith(("/", os.sep))):
                    raise UsageError("--out %s is a directory: give a file name for %s" % (
                        args.out, "standard input" if sources[0].kind == STDIN else sources[0].path))
                label = "-" if sources[0].kind == STDIN else sources[0].path
                sign_mbox(label, args, setup, jobs, summary, False, to=None if args.out else sys.stdout.buffer,
                          label=label, fh_in=stdin_copy)
                return _report(summary, args, t0, jobs)
        stdin_copy.seek(0)
    else:
        stdin_copy = None
    for src in sources:
        if src.kind != STDIN and _is_stdout(src.path) and not (args.out or args.in_place):
            raise UsageError("standard output is the input file %s: use --out or --in-place" % src.path)

    if len(sources) == 1 and sources[0].kind == MBOX and not args.in_place and not args.out:
        # an mbox (or one message stored with its "From " line) to standard output
        sign_mbox(sources[0].path, args, setup, jobs, summary, False, to=sys.stdout.buffer, label=sources[0].path)
        return _report(summary, args, t0, jobs)
    if len(sources) == 1 and sources[0].kind in (FILE, STDIN, STREAM) and not args.in_place:
        return _sign_one(sources[0], args, setup, stdin_copy)
    return _sign_many(sources, args, setup, summary, t0, jobs)


def _sign_one(src: Any, args: argparse.Namespace, setup: _SignSetup, stdin_copy: Any) -> int:
    """One message (a file, or standard input in ``stdin_copy``) to ``--out``
    or standard output; one that cannot be signed is written out unchanged,
    and reported (exit status 1)."""
    out_path = args.out
    if out_path and (os.path.isdir(out_path) or out_path.endswith(("/", os.sep))):
        if src.kind in (STDIN, STREAM):  # (a pipe's name, /dev/fd/63, is no name for a message)
            raise UsageError("--out %s is a directory: give a file name for %s" % (
                out_path, "standard input" if src.kind == STDIN else _printable(src.path)))
        out_path = os.path.join(out_path, os.path.basename(src.path))
    if out_path and src.kind == FILE and os.path.exists(out_path) and os.path.samefile(out_path, src.path):
        raise UsageError("--out is the input file: use --in-place to sign in place")
    fh: Any = stdin_copy if src.kind in (STDIN, STREAM) else open(src.path, "rb")
    with fh:
        try:
            headers = _sign_stream(setup, fh)
            reason = ""
        except DKIMError as exc:  # written out unchanged all the same: a filter never swallows mail
            headers, reason = b"", str(exc) or type(exc).__name__
        fh.seek(0)
        if out_path:
            mode = None
            if src.kind == FILE and not os.path.lexists(out_path):  # a new file: the input's permissions
                mode = stat.S_IMODE(os.fstat(fh.fileno()).st_mode)
                make_dirs_for(out_path, os.path.dirname(os.path.abspath(src.path)))
            try:
                atomic_write(out_path, lambda out: write_signed(out, headers, fh), overwrite=args.force, mode=mode)
            except FileExistsError as exc:
                raise UsageError("%s (use --force to replace it)" % exc)
        else:
            write_signed(sys.stdout.buffer, headers, fh)
            sys.stdout.buffer.flush()
    if reason:
        print("fastdkim sign: %s: not signed, written out unchanged: %s" % (
            _printable(src.path), _printable(reason)), file=sys.stderr)
        return EXIT_FAIL
    return EXIT_OK


def _sign_many(sources: Any, args: argparse.Namespace, setup: _SignSetup, summary: Summary, t0: float,
               jobs: int) -> int:
    """Several messages, Maildirs, directories or mboxes: to ``--out`` or in place."""
    import contextlib

    from .._into import files_into
    from ..mailstore import SignOutcome, scan_groups
    from ._common import _Progress

    if not args.in_place and not args.out:
        if len(sources) > 1:
            raise UsageError("signing several inputs needs --in-place (--out takes one input: a file, "
                             "directory, Maildir or mbox)")
        raise UsageError("signing several messages needs --out LOCATION (or --in-place)")
    if args.out and len(sources) > 1:
        raise UsageError("--out takes one input (got %d): put the messages in a directory and give it, "
                         "or use --in-place" % len(sources))
    if any(s.kind == STDIN for s in sources):
        raise UsageError("standard input holds one message: use it alone")
    if args.out and sources[0].kind in (MAILDIR, DIRECTORY) and os.path.exists(args.out) \
            and not os.path.isdir(args.out):
        raise UsageError("--out %s is not a directory (the input is a directory)" % args.out)
    show = sys.stderr.isatty() and not args.quiet
    seen = set()  # each file once, however often it is named
    mboxes = []
    names: List[str] = []
    # Each directory's files: (source directory, its real path, output
    # directory, name prefix, entries), the paths ending with a separator,
    # so that a file's paths are made by adding its name.
    groups: List[Tuple[str, str, str, str, List[Tuple[str, bool]]]] = []
    out_dirs = set()
    count = 0

    def output(o_dir: str, name: str) -> str:
        """Where the file ``name`` of a group with output directory ``o_dir``
        is written (a file given alone with --out: --out itself)."""
        return o_dir + name if o_dir or args.in_place else args.out
    for src in sources:
        real = os.path.realpath(src.path)
        if src.kind == MBOX:
            if real not in seen:
                seen.add(real)
                mboxes.append(src)
            continue
        if src.kind == FILE:
            base = os.path.dirname(src.path)
            listing = [("", [(os.path.basename(src.path), os.path.islink(src.path))])]
        else:
            listing = scan_groups(src)
            base = src.path
        if args.out and os.path.realpath(args.out) == real:
            raise UsageError("--out is the input location: use --in-place to sign in place")
        if args.out and src.kind in (MAILDIR, DIRECTORY) \
                and os.path.realpath(args.out).startswith(os.path.join(real, "")):
            # (its files would be among the inputs of the next run, or overwritten before read)
            raise UsageError("--out %s is inside the input %s: give a location outside it"
                             % (_printable(args.out), _printable(src.path)))
        if args.out and src.kind != FILE:
            _make_out_root(src.path, args.out, src.kind == MAILDIR)
        for rel, entries in listing:
            if not entries:
                continue
            s_dir = os.path.join(base, rel, "")
            r_dir = os.path.join(os.path.realpath(os.path.join(base, rel)), "")
            if args.in_place:
                o_dir = s_dir
            elif src.kind == FILE:
                o_dir = ""  # (the output is --out itself)
            else:
                o_dir = os.path.join(args.out, rel, "")
            out_dirs.add(os.path.dirname(output(o_dir, entries[0][0])))  # (where the temporary files go)
            groups.append((s_dir, r_dir, o_dir, os.path.join(rel, "") if rel else "", entries))
            count += len(entries)

    def inputs() -> Iterator[Any]:
        """Paths (in place) or (source, destination) pairs, made as the
        engine takes them: the workers start on the first ones while the
        rest are made."""
        for s_dir, r_dir, o_dir, prefix, entries in groups:
            for name, link in entries:
                s_path = s_dir + name
                r = os.path.realpath(s_path) if link else r_dir + name
                if r in seen:
                    continue
                seen.add(r)
                names.append(prefix + name)
                yield s_path if args.in_place else (s_path, output(o_dir, name))

    items: Iterable[Any] = inputs()
    r_dirs = [g[1] for g in groups]
    if count and (len(set(r_dirs)) < len(r_dirs) or any(link for g in groups for _, link in g[4])):
        # The same file may be listed twice (a directory named twice, a
        # file and its directory, links): listed now, each once, and counted.
        items = list(items)
        count = len(items)
    if count:
        _sweep(out_dirs)
        prog = _Progress("signing", count, sys.stderr, show)
        if count <= 16:  # (few: perhaps signed in this process)
            items = list(items)
            n_jobs = 1 if _small(items, args.in_place) else jobs
        else:
            n_jobs = jobs
        # (the workers are forked from this process: it holds no message file open while they start)
        results = files_into(items, setup, n_jobs, None, None, bool(args.force), bool(args.in_place), fork=True,
                             total=count)
        done = 0
        with contextlib.closing(results):
            for done, r in enumerate(results, 1):
                if r.ok:  # (most: counted, nothing kept)
                    summary.add_signed(r.size)
                else:
                    summary.add(SignOutcome(names[r.index], r.size, r.ok, _why(r)))
                if show:
                    prog.update(done, summary.bytes)
        prog.update(done, summary.bytes, True)
        prog.close()
    for src in mboxes:
        sign_mbox(src.path, args, setup, jobs, summary, show)
    return _report(summary, args, t0, jobs)


def _small(items: List[Any], in_place: bool) -> bool:
    """Whether the message files ``items`` are few and small enough to be
    signed in this process: starting worker processes would take longer than
    the signing (``fastdkim sign --in-place message.eml``)."""
    from ._sign_mbox import IN_PROCESS_BYTES

    if len(items) > 16:
        return False
    if len(items) < 2:  # (one file, however large: nothing to share among workers)
        return True
    total = 0
    for it in items:
        try:
            total += os.path.getsize(it if in_place else it[0])
        except OSError:
            pass
    return total < IN_PROCESS_BYTES


def _why(r: Any) -> str:
    """Why a file's output does not hold its signed message, in a line."""
    exc = r.error
    if exc is None:
        return ""
    if isinstance(exc, ReplacedMeanwhile):
        return "not signed: %s" % _os_error(exc)
    if isinstance(exc, FileExistsError):
        return "%s exists (use --force to replace it)" % r.dst
    if isinstance(exc, OSError):
        return "I/O error: %s" % _os_error(exc)
    return str(exc) or type(exc).__name__


def _make_out_root(src: str, out: str, maildir: bool) -> None:
    """Create the ``--out`` directory of the directory or Maildir ``src``
    (its missing parents as any program would), with the permissions of
    ``src``; for a Maildir also ``cur``, ``new`` and ``tmp``, each with those
    of its counterpart.  (Deeper directories are made by the workers, each
    like its counterpart.)"""
    from .._work import _make_dirs_like

    if not os.path.isdir(out):
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        _make_dirs_like(os.path.abspath(out), os.path.abspath(src))
    if maildir:
        for sub in ("cur", "new", "tmp"):
            _make_dirs_like(os.path.join(out, sub), os.path.join(src, sub))


def _sweep(directories: Any) -> None:
    """Remove the temporary files that killed fastdkim runs left in ``directories``."""
    from .._owner import sweep_temporaries
    from ._common import _said

    n = sum(sweep_temporaries(d) for d in {os.path.realpath(d or ".") for d in directories})
    if n:
        _said("removed %d temporary file%s left by an interrupted run" % (n, "s" if n > 1 else ""))


def _is_stdout(path: str) -> bool:
    """Is standard output the regular file at ``path`` (``sign X >> X``)?"""
    try:
        out = os.fstat(sys.stdout.fileno())
        st = os.stat(path)
    except (OSError, ValueError, AttributeError):
        return False
    return stat.S_ISREG(out.st_mode) and (out.st_dev, out.st_ino) == (st.st_dev, st.st_ino)


def _report(summary: Summary, args: argparse.Namespace, t0: float, jobs: int) -> int:
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
