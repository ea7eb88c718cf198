"""``fastdkim recover``: complete the runs that were killed halfway."""
from __future__ import annotations

import argparse
import os
import sys
from typing import Optional

from ..mailstore import FILE, MAILDIR, MBOX
from ._common import EXIT_OK, EXIT_USAGE, FORMATTER, _printable, seconds


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    r = sub.add_parser("recover", help="complete runs that were killed halfway", formatter_class=FORMATTER,
                       description="Complete the in-place rewrite of each mbox that a killed 'fastdkim sign "
                                   "--in-place' left half done (from its journal, under the mbox lock), remove stale "
                                   "dot-locks and the temporary files such runs left in the given mboxes' directories, "
                                   "Maildirs and directories. Without INPUT, the journals in fastdkim's state "
                                   "directory. Every fastdkim command that reads or writes an mbox does this for it "
                                   "first; this command is for doing it at once (say, at boot).",
                       epilog="examples:\n  fastdkim recover /var/mail/alice\n  fastdkim recover Maildir/\n"
                              "  fastdkim recover")
    r.add_argument("inputs", nargs="*", metavar="INPUT", help="mbox, Maildir or directory")
    r.add_argument("--lock-timeout", type=seconds("must be 0 or more seconds", zero=True), default=30.0,
                   metavar="SECONDS", help="how long to wait for an mbox lock held by a delivery (default 30)")
    r.add_argument("--quiet", action="store_true", help="say nothing when there is nothing to do")
    r.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .._owner import sweep_temporaries
    from ..journal import JournalError
    from ..mailstore import MboxLock, MboxLockedError, detect, recover_all

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
        n = 0
        if src.kind == MBOX or (src.kind == FILE and os.path.isfile(path)):
            try:
                # (the lock breaks a stale dot-lock and sweeps the mbox's directory)
                with MboxLock(path, timeout=args.lock_timeout) as lock:
                    one(path, lock.recovered)
                    if lock.stale_lock_removed:
                        one(path, "removed the dot-lock of a process that is gone")
                    n = lock.temporaries_removed
            except (MboxLockedError, JournalError) as exc:
                print("fastdkim recover: error: %s: %s" % (_printable(path), _printable(str(exc))), file=sys.stderr)
                problems += 1
                n = sweep_temporaries(os.path.dirname(os.path.realpath(path)))
        elif src.kind == MAILDIR:
            n = sum(sweep_temporaries(os.path.join(path, d)) for d in ("cur", "new", "tmp"))
        else:
            n = sum(sweep_temporaries(root) for root, _, _ in os.walk(path))
        if n:
            done += 1
            print("%s: removed %d temporary file%s left by an interrupted run" % (
                _printable(path), n, "s" if n > 1 else ""))
    if not done and not problems and not args.quiet:
        print("nothing to recover", file=sys.stderr)
    return EXIT_USAGE if problems else EXIT_OK
