"""Many messages at once: reading files, directories, Maildirs and mboxes, and
writing signed copies safely.

Nothing is ever lost: a message that cannot be signed is reported and written
out unchanged, so the output holds as many messages as the input.  Outputs are
written through temporary files and renamed into place, so an interrupted run
leaves every file either as it was or completely signed.
"""
from __future__ import annotations

import errno
import os
import shutil
import threading
import time
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Iterator, List, Optional, Tuple

from ._files import atomic_write

__all__ = [
    "MboxLock",
    "MboxLockedError",
    "rewrite_in_place",
    "Source",
    "detect",
    "iter_mbox",
    "list_files",
    "atomic_write",
    "SignOutcome",
    "Summary",
]

MBOX, MAILDIR, DIRECTORY, FILE, STDIN = "mbox", "maildir", "directory", "file", "stdin"


@dataclass
class Source:
    """An input location and its kind."""

    path: str
    kind: str


def _is_mbox(path: str) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(5) == b"From "
    except OSError:
        return False


def detect(path: str) -> Source:
    """What ``path`` is: ``-`` (stdin), a Maildir, a directory, an mbox or one message file.

    :raises FileNotFoundError: ``path`` does not exist.
    """
    if path == "-":
        return Source(path, STDIN)
    if os.path.isdir(path):
        if os.path.isdir(os.path.join(path, "cur")) and os.path.isdir(os.path.join(path, "new")):
            return Source(path, MAILDIR)
        return Source(path, DIRECTORY)
    if not os.path.exists(path):
        raise FileNotFoundError("no such file or directory: %s" % path)
    return Source(path, MBOX if _is_mbox(path) else FILE)


def list_files(src: Source) -> List[str]:
    """Relative paths of the message files of a Maildir (``cur`` and ``new``) or directory.

    Hidden files and a Maildir's ``tmp`` (deliveries in progress) are skipped.
    """
    out: List[str] = []
    if src.kind == MAILDIR:
        for sub in ("cur", "new"):
            d = os.path.join(src.path, sub)
            out += [os.path.join(sub, n) for n in sorted(os.listdir(d))
                    if not n.startswith(".") and os.path.isfile(os.path.join(d, n))]
        return out
    for root, dirs, files in os.walk(src.path):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for n in sorted(files):
            if not n.startswith("."):
                out.append(os.path.relpath(os.path.join(root, n), src.path))
    return out


def iter_mbox(fh: BinaryIO) -> Iterator[Tuple[bytes, bytes]]:
    """Yield ``(separator_line, message)`` pairs of an mbox, byte for byte.

    A message starts at a line beginning ``From `` that opens the file or
    follows an empty line.  The message bytes are kept as stored (``>From``
    quoting included); the blank line that precedes the next separator is part
    of the message, as mbox writers add it.
    """
    sep: Optional[bytes] = None
    buf: List[bytes] = []
    prev_blank = True
    for line in fh:
        if line.startswith(b"From ") and prev_blank:
            if sep is not None:
                yield sep, b"".join(buf)
            sep, buf = line, []
            prev_blank = False
            continue
        if sep is None:
            raise ValueError("not an mbox: data before the first 'From ' line")
        buf.append(line)
        prev_blank = line in (b"\n", b"\r\n")
    if sep is not None:
        yield sep, b"".join(buf)


@dataclass
class SignOutcome:
    """What became of one message."""

    name: str
    size: int
    signed: bool
    reason: str = ""


@dataclass
class Summary:
    """Counts for the closing report."""

    signed: int = 0
    skipped: List[SignOutcome] = field(default_factory=list)
    bytes: int = 0

    def add(self, o: SignOutcome) -> None:
        self.bytes += o.size
        if o.signed:
            self.signed += 1
        else:
            self.skipped.append(o)

    @property
    def total(self) -> int:
        return self.signed + len(self.skipped)


class MboxLockedError(OSError):
    """Another program holds the mbox lock (a delivery in progress)."""


class MboxLock:
    """An exclusive lock on an mbox, taken the ways mail delivery agents take
    it: the ``PATH.lock`` dot-lock file (skipped where the directory is not
    writable), and ``fcntl`` and ``flock`` locks on the file itself.

    The locks are taken all at once or not at all: when one is busy, those
    already held are let go before trying again, so that an agent taking
    them in another order is never kept waiting on fastdkim while fastdkim
    waits on it.  While the lock is held, SIGTERM and SIGHUP end the program
    through an exception (``SystemExit``), so that the lock and any temporary
    file are cleaned up.

    ``fh`` is the file, open for reading and writing: read and rewrite the
    mbox through it only, since closing any other descriptor of the file
    would drop the ``fcntl`` lock.

    :raises MboxLockedError: the locks could not be had within ``timeout`` seconds.
    :raises OSError: the mbox cannot be opened for writing.
    """

    def __init__(self, path: str, timeout: float = 30.0) -> None:
        self.path = path
        self.timeout = timeout
        self.fh: Any = None
        self._dotlock: Optional[str] = None
        self._signals: List[Tuple[int, Any]] = []

    def __enter__(self) -> "MboxLock":
        deadline = time.monotonic() + self.timeout
        # the dot-lock goes beside the real file, also when named through a link
        dotlock = os.path.realpath(self.path) + ".lock"
        self.fh = open(self.path, "r+b")
        try:
            while True:
                busy = self._try_all(dotlock)
                if busy is None:
                    break
                if time.monotonic() >= deadline:
                    raise MboxLockedError("%s (waited %.1f s)" % (busy, self.timeout))
                time.sleep(0.1)
            self._catch_signals()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _try_all(self, dotlock: str) -> Optional[str]:
        """Take every lock; on a busy one, let the others go and say which."""
        import fcntl

        try:
            fd = os.open(dotlock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return "%s exists: another program holds the mbox" % dotlock
        except OSError:  # a read-only directory: no dot-lock possible
            fd = -1
        if fd >= 0:
            os.close(fd)
            self._dotlock = dotlock
        try:
            fcntl.lockf(self.fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            try:
                fcntl.flock(self.fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except (BlockingIOError, PermissionError):
                fcntl.lockf(self.fh.fileno(), fcntl.LOCK_UN)
                raise
        except (BlockingIOError, PermissionError):
            self._drop_dotlock()
            return "%s is locked by another program" % self.path
        return None

    def _catch_signals(self) -> None:
        import signal

        if threading.current_thread() is not threading.main_thread():
            return

        def stop(signum: int, frame: Any) -> None:
            raise SystemExit(128 + signum)

        for sig in (signal.SIGTERM, signal.SIGHUP):
            self._signals.append((sig, signal.signal(sig, stop)))

    def _drop_dotlock(self) -> None:
        if self._dotlock is not None:
            try:
                os.unlink(self._dotlock)
            except OSError:
                pass
            self._dotlock = None

    def __exit__(self, *exc: Any) -> None:
        import signal

        for sig, old in self._signals:
            signal.signal(sig, old)
        self._signals = []
        if self.fh is not None:
            self.fh.close()  # releases the fcntl and flock locks
            self.fh = None
        self._drop_dotlock()


class _HoldSignals:
    """Ctrl-C, SIGTERM and SIGHUP inside the block are held back and acted on
    when the block is done (in the main thread; elsewhere signals do not
    arrive anyway): Ctrl-C as KeyboardInterrupt, the others as SystemExit."""

    def __enter__(self) -> "_HoldSignals":
        import signal

        self.held: List[int] = []
        self.old: List[Tuple[int, Any]] = []
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                self.old.append((sig, signal.signal(sig, lambda signum, frame: self.held.append(signum))))
        return self

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        import signal

        for sig, old in self.old:
            signal.signal(sig, old)
        if exc_type is None and self.held:
            if signal.SIGINT in self.held:
                raise KeyboardInterrupt
            raise SystemExit(128 + self.held[0])


def rewrite_in_place(fh: BinaryIO, write: Any) -> None:
    """Replace the content of the open file ``fh`` with what ``write(out)`` writes.

    The new content goes to a temporary file first; only when that is
    complete, and the room for it is reserved on the disk, is it copied over
    ``fh`` (the file keeps its inode, owner, mode and locks, so that programs
    waiting on its lock see the new content).  Signals that would stop the
    program are held back during the copy.  Should the copy itself fail, the
    complete new content is left in the temporary file, whose name the error
    gives.

    :raises OSError: writing failed (if before the copy, ``fh`` is untouched).
    """
    import tempfile

    name = getattr(fh, "name", None)
    d = os.path.dirname(os.path.abspath(name)) if isinstance(name, str) else None
    try:
        tfd, tmp = tempfile.mkstemp(prefix=".fastdkim-", dir=d)
    except OSError:  # a directory we may not write to: the system's temporary directory
        tfd, tmp = tempfile.mkstemp(prefix="fastdkim-")
    keep = False
    try:
        with os.fdopen(tfd, "w+b") as out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
            size = out.tell()
            out.seek(0)
            with _HoldSignals():
                _reserve(fh, size)  # a full disk stops us here, before any overwriting
                try:
                    fh.seek(0)
                    shutil.copyfileobj(out, fh, 1 << 20)
                    fh.truncate()
                    fh.flush()
                    os.fsync(fh.fileno())
                except OSError as exc:
                    keep = True
                    raise OSError(exc.errno, "%s; the complete new content is kept in %s"
                                  % (exc.strerror or exc, tmp)) from exc
    finally:
        if not keep:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def _reserve(fh: BinaryIO, size: int) -> None:
    """Make sure the disk has room for ``fh`` to grow to ``size`` octets
    before anything in it is overwritten: the file is extended to ``size``
    (the copy that follows overwrites all of it).  On failure the file is
    left as it was."""
    fd = fh.fileno()
    old = os.fstat(fd).st_size
    if size <= old:
        return
    try:
        if hasattr(os, "posix_fallocate"):
            os.posix_fallocate(fd, old, size - old)
        else:  # pragma: no cover - write the room out
            fh.seek(old)
            fh.write(b"\0" * (size - old))
            fh.flush()
            os.fsync(fd)
    except OSError as exc:
        try:
            os.ftruncate(fd, old)
        except OSError:
            pass
        if exc.errno in (errno.EOPNOTSUPP, errno.EINVAL):
            return  # the file system cannot reserve room: go ahead without
        raise
