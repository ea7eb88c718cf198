"""``fastdkim sign`` of an mbox: its messages go through the bulk engine in
input order, and come out onto standard output, into ``--out``, or back
into the mbox itself (``--in-place``, under the mbox lock, through the
journal)."""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections import deque
from typing import Any, BinaryIO, Deque, Iterator, Optional, Tuple

from ..mailstore import SignOutcome, Summary
from ._common import UsageError, _Progress, _said

#: At most this many octets of an mbox's messages are in flight (besides
#: their number, the engine's window): a message of any size is read once
#: into memory, and only a few of them at a time.
MBOX_BYTES_IN_FLIGHT = 16 << 20
#: Input smaller than this is signed in this process: starting worker
#: processes would take longer than the signing (a filter signing one
#: message stored with its "From " line).
IN_PROCESS_BYTES = 1 << 20


def sign_onto(fh: BinaryIO, out: Any, target: Any, jobs: int, summary: Summary, label: str,
              prog: _Progress) -> None:
    """Sign every message of the mbox read from ``fh`` onto ``out``, in
    order, each after its separator line; a message that cannot be signed is
    written unchanged and counted as skipped in ``summary``.

    :raises MessageFormatError: ``fh`` is not an mbox.
    """
    from ..bulk import _sign_many
    from ..mailstore import iter_mbox

    held: Deque[Tuple[bytes, bytes]] = deque()  # the messages in flight, in order

    def messages() -> Iterator[bytes]:
        for sep, msg in iter_mbox(fh):
            held.append((sep, msg))
            yield msg

    done = count = 0
    with contextlib.closing(_sign_many(messages(), target, jobs, None, None, max_bytes=MBOX_BYTES_IN_FLIGHT)) as results:
        for r in results:
            sep, msg = held.popleft()
            out.write(sep)
            out.write(r.headers)
            out.write(msg)
            done += len(sep) + len(msg)
            count += 1
            summary.add(SignOutcome("%s#%d" % (label, count), len(msg), r.ok, r.reason))
            prog.update(count, done)
    prog.update(count, done, True)


def sign_mbox(path: str, args: argparse.Namespace, target: Any, jobs: int, summary: Summary, show: bool,
              to: Optional[BinaryIO] = None, label: Optional[str] = None, fh_in: Optional[BinaryIO] = None) -> None:
    """Sign every message of the mbox at ``path`` (or in the seekable file
    ``fh_in``, shown as ``label``): in place (under the mbox lock, rewriting
    the file itself through a journal), into ``--out``, or onto the stream
    ``to``.  Progress is shown by octets read, out of the mbox's size.

    :raises UsageError: the mbox is locked by another program, is not an
        mbox, or is its own ``--out``.
    """
    import stat

    from .._files import atomic_write
    from ..mailstore import JournalError, MboxLock, MboxLockedError, read_mbox, recover_mbox, rewrite_in_place

    in_place = bool(args.in_place) and to is None and fh_in is None
    if not in_place and to is None and fh_in is None and os.path.exists(args.out) \
            and os.path.samefile(args.out, path):
        raise UsageError("--out is the input mbox: use --in-place to sign in place")
    name = label or os.path.basename(path)
    try:
        if fh_in is None and not in_place:
            _said(recover_mbox(path, timeout=args.lock_timeout))  # a rewrite left half done by a killed run
        lock = MboxLock(path, timeout=args.lock_timeout) if in_place else None
        with lock if lock is not None else contextlib.nullcontext():
            if lock is not None:
                _said(lock.recovered)

            def write(out: Any) -> None:
                # In place, the mbox is read through the locked descriptor only.
                # Otherwise while no fastdkim run rewrites it (shared locks).
                fh: Any = lock.fh if lock is not None else fh_in
                if fh is not None:
                    fh.seek(0)
                    source: Any = contextlib.nullcontext(fh)
                else:
                    source = read_mbox(path, timeout=args.lock_timeout)
                with source as fh:
                    size = os.fstat(fh.fileno()).st_size
                    prog = _Progress("signing", size, sys.stderr, show, by_bytes=True)
                    try:
                        sign_onto(fh, out, target, 1 if size < IN_PROCESS_BYTES else jobs, summary, name, prog)
                    finally:
                        prog.close()

            if to is not None:
                write(to)
                to.flush()
            elif lock is not None:
                rewrite_in_place(lock.fh, write, path)
            else:
                mode = None
                if fh_in is None and not os.path.lexists(args.out):  # a new file: the input's permissions
                    mode = stat.S_IMODE(os.stat(path).st_mode)
                    make_dirs_for(args.out, os.path.dirname(os.path.abspath(path)))
                try:
                    atomic_write(args.out, write, overwrite=bool(args.force), mode=mode)
                except FileExistsError as exc:
                    raise UsageError("%s (use --force to replace it)" % exc)
    except (MboxLockedError, JournalError) as exc:
        raise UsageError("%s; nothing was changed" % exc)
    except ValueError as exc:  # not an mbox after all
        raise UsageError("%s: %s" % (path, exc))


def make_dirs_for(out: str, like: Optional[str]) -> None:
    """Create the missing directory of the output file ``out``: its missing
    parents as any program would, the directory itself with the permissions
    of ``like`` (the input's directory).

    :raises OSError: a directory cannot be created.
    """
    from .._work import _make_dirs_like

    d = os.path.dirname(os.path.abspath(out))
    if os.path.isdir(d):
        return
    os.makedirs(os.path.dirname(d), exist_ok=True)
    _make_dirs_like(d, like)
