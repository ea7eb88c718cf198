"""Mail stores: reading files, directories, Maildirs and mboxes, locking an
mbox as delivery agents do, and writing signed copies safely.

Nothing is ever lost: a message that cannot be signed is reported and written
out unchanged, so the output holds as many messages as the input.  Outputs are
written through temporary files and renamed into place, so an interrupted run
leaves every file either as it was or completely signed.
"""
from __future__ import annotations

import contextlib
import errno
import os
import stat
import threading
import time
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Dict, Iterator, List, Optional, Set, Tuple

from . import _owner
from ._files import _rename_noreplace, atomic_write, current_umask, write_all
from .errors import MboxLockedError, MessageFormatError
from .journal import JournalError, recover, rewrite_in_place

__all__ = [
    "MboxLock",
    "read_mbox",
    "MboxLockedError",
    "JournalError",
    "recover",
    "rewrite_in_place",
    "Source",
    "detect",
    "iter_mbox",
    "list_files",
    "scan_files",
    "scan_groups",
    "atomic_write",
    "SignOutcome",
    "Summary",
]

MBOX, MAILDIR, DIRECTORY, FILE, STDIN = "mbox", "maildir", "directory", "file", "stdin"
#: a named file that is no regular file (a FIFO, a pipe such as a shell's
#: ``<(...)``, a device): read once, from start to end, like standard input
STREAM = "stream"


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
    """What ``path`` is: ``-`` (stdin), a Maildir, a directory, an mbox, one
    message file, or a stream (:data:`STREAM`: a FIFO, a pipe, a device,
    which is not opened here: what it holds can be read only once).

    :raises FileNotFoundError: ``path`` does not exist.
    """
    if path == "-":
        return Source(path, STDIN)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise FileNotFoundError("no such file or directory: %s" % path) from None
    except OSError:  # (not readable: said when it is opened)
        return Source(path, FILE)
    if stat.S_ISDIR(st.st_mode):
        if os.path.isdir(os.path.join(path, "cur")) and os.path.isdir(os.path.join(path, "new")):
            return Source(path, MAILDIR)
        return Source(path, DIRECTORY)
    if not stat.S_ISREG(st.st_mode):
        return Source(path, STREAM)
    return Source(path, MBOX if _is_mbox(path) else FILE)


def list_files(src: Source) -> List[str]:
    """Relative paths of the message files of a Maildir (``cur`` and ``new``) or directory.

    Hidden files, a Maildir's ``tmp`` (deliveries in progress) and what is
    no regular file (a FIFO, a socket, a device, or a link to one) are
    skipped; a directory's links to nothing are listed.
    """
    return [name for name, _ in scan_files(src)]


def scan_files(src: Source) -> List[Tuple[str, bool]]:
    """:func:`list_files`, each path with whether it is a symbolic link (read
    from the directory listing, without a system call per file where the
    file system tells).  Subdirectories of a directory are walked in name
    order, after its files; symbolic links to directories are not followed,
    and directories that cannot be listed are skipped."""
    return [(os.path.join(rel, name), link) for rel, entries in scan_groups(src) for name, link in entries]


def scan_groups(src: Source) -> List[Tuple[str, List[Tuple[str, bool]]]]:
    """:func:`scan_files` by directory: ``(directory, entries)`` in the same
    order, ``directory`` relative to ``src`` (``""`` for itself), each entry
    a file's name in it and whether it is a symbolic link.  (A caller
    building paths joins each directory once, not each file.)"""
    out: List[Tuple[str, List[Tuple[str, bool]]]] = []
    if src.kind == MAILDIR:
        for sub in ("cur", "new"):
            with os.scandir(os.path.join(src.path, sub)) as it:
                entries = sorted((e.name, e) for e in it if not e.name.startswith(".") and _is_file(e))
            out.append((sub, [(name, e.is_symlink()) for name, e in entries]))
        return out

    def walk(rel: str) -> None:
        files: List[Tuple[str, "os.DirEntry[str]"]] = []
        dirs: List[Tuple[str, "os.DirEntry[str]"]] = []
        try:
            with os.scandir(os.path.join(src.path, rel)) as it:
                for e in it:
                    if e.name.startswith("."):
                        continue
                    try:
                        is_dir = e.is_dir()
                    except OSError:
                        is_dir = False
                    if is_dir:
                        dirs.append((e.name, e))
                    elif _is_file(e) or (e.is_symlink() and not os.path.exists(e.path)):
                        # (not a FIFO, a socket or a device, which may never end;
                        # a link to nothing is listed, to be reported when read)
                        files.append((e.name, e))
        except OSError:
            return
        out.append((rel, [(name, e.is_symlink()) for name, e in sorted(files)]))
        for name, e in sorted(dirs):
            if not e.is_symlink():
                walk(os.path.join(rel, name))

    walk("")
    return out


def _is_file(entry: "os.DirEntry[str]") -> bool:
    try:
        return entry.is_file()
    except OSError:
        return False


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
            raise MessageFormatError("not an mbox: data before the first 'From ' line")
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
        if o.signed:
            self.add_signed(o.size)
        else:
            self.bytes += o.size
            self.skipped.append(o)

    def add_signed(self, size: int) -> None:
        """Count a message of ``size`` octets signed (:meth:`add` of a signed
        outcome, without making one)."""
        self.signed += 1
        self.bytes += size

    @property
    def total(self) -> int:
        return self.signed + len(self.skipped)


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

    The dot-lock holds ``PID`` and ``HOST`` on two lines (a pid first, as
    delivery agents write it), then, where the system tells it (Linux), the
    process's identity: its pid space (boot, pid and time namespaces) and start
    time (see :mod:`fastdkim._owner`).  It is never there without them: it
    is written under another name first, then linked (or renamed, where
    there are no hard links) to its own.  A dot-lock whose process is gone
    is stale: it is removed and the lock taken.  Gone means: of this host
    and pid space, and its pid is not running or runs a process that
    started at another time; without an identity, its pid is not running
    on this machine or was started after the lock was made; or it names
    this process (pid and identity, or a pid alone) but this process does
    not hold it (an earlier process of the same number, as in containers).
    A lock of a running process is waited for; one of another machine or
    pid space, or without a pid, is waited for until it has not been
    touched for ``UNCHECKED_LOCK_AGE`` seconds (fastdkim touches its own
    every 60 s).  A stale lock is judged and broken under an ``flock`` of
    the mbox, so that two fastdkim processes never break it at once; two
    :class:`MboxLock` of one process (threads) take the mbox in turn,
    without opening it meanwhile.

    Once locked, an interrupted rewrite of the mbox (a journal left by a
    fastdkim process that was killed) is completed before anything else
    (:func:`fastdkim.journal.recover`); ``recovered`` says what was done.  The
    temporary files that killed fastdkim processes left beside the mbox are
    removed.

    ``fh`` is the file, open for reading and writing: read and rewrite the
    mbox through it only, since closing any other descriptor of the file
    would drop the ``fcntl`` lock.

    :raises MboxLockedError: the locks could not be had within ``timeout`` seconds.
    :raises JournalError: an interrupted rewrite cannot be completed safely.
    :raises OSError: the mbox cannot be opened for writing or locked with
        ``flock``, or the dot-lock cannot be made for a reason other than a
        directory that does not allow one (an I/O error, a full disk).
    """

    def __init__(self, path: str, timeout: float = 30.0, *, recover: bool = True, shared: bool = False) -> None:
        self.path = path
        self.timeout = timeout
        #: a reader's lock (:func:`read_mbox`): the file open for reading only,
        #: under shared ``fcntl`` and ``flock`` locks that writers holding an
        #: exclusive :class:`MboxLock` exclude; no dot-lock, no recovery, no
        #: signal handlers, nothing removed
        self.shared = shared
        self.fh: Any = None
        self.recovered: Optional[str] = None
        #: whether a dot-lock left by a process that is gone was removed
        self.stale_lock_removed = False
        #: how many temporary files of killed fastdkim runs were removed beside the mbox
        self.temporaries_removed = 0
        self._recover = recover
        self._dotlock: Optional[str] = None
        self._dotlock_id: Tuple[int, int] = (0, 0)
        self._box: Optional[Tuple[int, int]] = None
        self._refresh_stop: Optional[threading.Event] = None
        self._signals: List[Tuple[int, Any]] = []

    def __enter__(self) -> "MboxLock":
        deadline = time.monotonic() + self.timeout
        # the dot-lock goes beside the real file, also when named through a link
        dotlock = os.path.realpath(self.path) + ".lock"
        self.fh = open(self.path, "rb" if self.shared else "r+b")
        try:
            self._claim(deadline)
            while True:
                busy = self._try_shared() if self.shared else self._try_all(dotlock)
                if busy is None:
                    break
                if time.monotonic() >= deadline:
                    raise MboxLockedError("%s (waited %.1f s)" % (busy, self.timeout))
                time.sleep(0.1)
            if self.shared:
                return self
            self._catch_signals()
            if self._dotlock is not None:
                self._start_refresh()
            if self._recover:
                self.recovered = recover(self.fh, self.path)
            self.temporaries_removed = _owner.sweep_temporaries(os.path.dirname(dotlock))
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _claim(self, deadline: float) -> None:
        """Wait until no other :class:`MboxLock` of this process holds the
        file ``fh`` is open on, and mark it held.  Should the wait end (a
        timeout, a signal), ``fh`` is not closed while the other holds the
        file (:meth:`_let_go_of_file`): closing it would let go of the
        holder's ``fcntl`` lock (locks of a process on a file go with any of
        its descriptors)."""
        st = os.fstat(self.fh.fileno())
        box = (st.st_dev, st.st_ino)
        while True:
            with _HELD_LOCK:
                if box not in _BOXES:
                    self._box = box
                    _BOXES[box] = []
                    return
            if time.monotonic() >= deadline:
                raise MboxLockedError("%s is locked by this process (waited %.1f s)" % (self.path, self.timeout))
            time.sleep(0.1)

    def _let_go_of_file(self) -> None:
        """Close ``fh`` (letting go of its locks), unless another
        :class:`MboxLock` of this process holds the file: then it is closed
        when that one lets go."""
        fh, self.fh = self.fh, None
        if fh is None:
            return
        if self._box is None:
            try:
                st = os.fstat(fh.fileno())
            except OSError:
                st = None
            with _HELD_LOCK:
                parked = _BOXES.get((st.st_dev, st.st_ino)) if st is not None else None
                if parked is not None:
                    parked.append(fh)
                    return
        fh.close()  # releases the fcntl and flock locks

    def _try_all(self, dotlock: str, retry: bool = True) -> Optional[str]:
        """Take every lock; on a busy one, let the others go and say which."""
        import fcntl

        try:
            made = _make_dotlock(dotlock)
        except FileExistsError:
            broken = _break_stale_lock(dotlock, self.fh.fileno()) if retry else False
            if broken is True:  # left by a process that is gone
                self.stale_lock_removed = True
                return self._try_all(dotlock, retry=False)
            if broken is not None:
                return "%s exists: another program holds the mbox" % dotlock
            made = None  # stale, in a directory we may not write to: as if no dot-lock were possible
        except OSError as exc:
            if exc.errno not in _NOT_HERE:
                raise
            made = None  # a directory we may not write to: no dot-lock possible
        if made is not None:
            self._dotlock = dotlock
            self._dotlock_id = made
        if not _lock_both(self.fh.fileno(), fcntl.LOCK_EX):
            self._drop_dotlock()
            return "%s is locked by another program" % self.path
        return None

    def _try_shared(self) -> Optional[str]:
        """A reader's locks, both or neither (see :meth:`_try_all`)."""
        import fcntl

        try:
            if not _lock_both(self.fh.fileno(), fcntl.LOCK_SH):
                return "%s is locked by another program" % self.path
        except OSError as exc:
            if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL):
                return None  # a file system without these locks: read as readers did before them
            raise
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
            self._stop_refresh()
            try:
                st = os.lstat(self._dotlock)
                with open(self._dotlock, "rb") as fh:
                    mine = fh.read(256) == _owner.lock_content()
                if mine and (st.st_dev, st.st_ino) == self._dotlock_id:  # never another program's lock
                    os.unlink(self._dotlock)
            except OSError:
                pass
            _let_go(self._dotlock_id)
            self._dotlock = None

    def _start_refresh(self) -> None:
        """Touch the dot-lock every 60 s while it is held: agents that break
        dot-locks by age (Postfix after 500 s) then see it is alive."""
        stop = threading.Event()
        path = self._dotlock
        assert path is not None

        def refresh() -> None:
            while not stop.wait(60):
                try:
                    os.utime(path)
                except OSError:
                    pass

        threading.Thread(target=refresh, name="fastdkim-lock-refresh", daemon=True).start()
        self._refresh_stop = stop

    def _stop_refresh(self) -> None:
        if self._refresh_stop is not None:
            self._refresh_stop.set()
            self._refresh_stop = None

    def __exit__(self, *exc: Any) -> None:
        import signal

        for sig, old in self._signals:
            signal.signal(sig, old)
        self._signals = []
        self._let_go_of_file()
        self._drop_dotlock()
        if self._box is not None:
            with _HELD_LOCK:
                waiting = _BOXES.pop(self._box, [])
            self._box = None
            for fh in waiting:  # (descriptors of the file that other MboxLocks gave up on)
                fh.close()


def _lock_both(fd: int, mode: int) -> bool:
    """Take the ``fcntl`` and the ``flock`` lock of ``mode`` (``LOCK_EX`` or
    ``LOCK_SH``) on ``fd``, both or neither, without waiting; ``False`` if
    another holds either.

    :raises OSError: the file system has no such locks (``ENOLCK``), or another error.
    """
    import fcntl

    try:
        fcntl.lockf(fd, mode | fcntl.LOCK_NB)
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
        except (BlockingIOError, PermissionError):
            fcntl.lockf(fd, fcntl.LOCK_UN)
            raise
    except (BlockingIOError, PermissionError):
        return False
    return True


def _make_dotlock(dotlock: str) -> Tuple[int, int]:
    """Create the dot-lock ``dotlock`` holding this process's pid and host,
    never empty even for a moment: the content is written to a temporary
    file that is then linked to the lock's name, or renamed to it without
    replacing (RENAME_NOREPLACE) where there are no hard links.  A process
    killed before that leaves a temporary file that
    :func:`_owner.sweep_temporaries` removes, never a lock without an owner.
    Only where neither is possible (or no temporary file may be made) is
    the lock created and then written.  The lock is among ``_HELD`` from
    before it has its name.  Returns its ``(st_dev, st_ino)``.

    :raises FileExistsError: the lock exists.
    :raises OSError: the directory does not let the lock be made.
    """
    content = _owner.lock_content()
    try:
        fd, temp = _owner.mkstemp(os.path.dirname(dotlock))
    except OSError:  # (a directory we may not write to: the lock itself says whether it exists)
        temp = None
    if temp is not None:
        try:
            try:
                os.fchmod(fd, 0o644 & ~current_umask())  # (as the lock were made by open)
                write_all(fd, content)
                st = os.fstat(fd)
            finally:
                os.close(fd)
            made = (st.st_dev, st.st_ino)
            with _HELD_LOCK:  # (held before it has the lock's name: see _break_stale_lock)
                _HELD.add(made)
            named = False
            try:
                named = _give_name(temp, dotlock)
            finally:
                if not named:
                    _let_go(made)
            if named:
                return made
        finally:
            try:
                os.unlink(temp)  # (its second name, or nothing once renamed)
            except OSError:
                pass
    # Neither (or no temporary file here): made, then written.  A process killed
    # between the two leaves a lock without an owner, broken once it is old.
    with _HELD_LOCK:
        fd = os.open(dotlock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            st = os.fstat(fd)
            _HELD.add((st.st_dev, st.st_ino))
            try:
                write_all(fd, content)
            except BaseException:
                _HELD.discard((st.st_dev, st.st_ino))
                os.unlink(dotlock)
                raise
        finally:
            os.close(fd)
    return (st.st_dev, st.st_ino)


def _give_name(temp: str, dotlock: str) -> bool:
    """Give the written lock ``temp`` the name ``dotlock``, by a link, or by
    a rename that replaces nothing where there are no hard links: whether
    it has it (``False``: neither is possible here).

    :raises FileExistsError: ``dotlock`` exists.
    :raises OSError: the link failed otherwise.
    """
    try:
        os.link(temp, dotlock)
        return True
    except OSError as exc:
        # Over NFS a link that was made may still be reported failed
        # (a retried request): the temporary file's two links say so.
        try:
            if os.lstat(temp).st_nlink == 2:
                return True
        except OSError:
            pass
        if exc.errno not in _NO_LINKS:
            raise
    return _rename_noreplace(temp, dotlock)


#: the dot-locks this process holds, by (st_dev, st_ino): a lock naming this
#: process's pid that is not among them was left by an earlier process of the
#: same number (a container's processes often all have the same few pids)
_HELD: Set[Tuple[int, int]] = set()
#: the mboxes MboxLocks of this process hold, by (st_dev, st_ino), each with
#: the files of it that other MboxLocks gave up on, to close once it is let go
_BOXES: Dict[Tuple[int, int], List[Any]] = {}
_HELD_LOCK = threading.Lock()


def _forget_in_child() -> None:
    """In a child of fork(), the parent's locks are not the child's (fcntl
    locks are a process's own; a dot-lock names its maker's pid)."""
    global _HELD_LOCK
    _HELD.clear()
    _BOXES.clear()
    _HELD_LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)
#: a dot-lock whose owner cannot be checked (no pid, another host's or pid
#: space's) is stale once it has not been touched for this long: fastdkim
#: touches its own every 60 s, and Postfix breaks dot-locks after 500 s
UNCHECKED_LOCK_AGE = _owner.UNCHECKED_AGE


def _let_go(made: Tuple[int, int]) -> None:
    with _HELD_LOCK:
        _HELD.discard(made)


#: what making a dot-lock fails with in a directory that does not allow one
_NOT_HERE = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})
#: what ``link`` fails with on a file system without hard links
_NO_LINKS = frozenset({errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK, errno.ENOSYS})


def _break_stale_lock(dotlock: str, fd: int) -> Optional[bool]:
    """Remove the dot-lock ``dotlock`` if the process that made it is gone
    (see :class:`MboxLock`): ``True`` if removed, ``False`` if it is not
    stale (or was replaced meanwhile), ``None`` if stale but in a directory
    that does not let it be removed.

    The lock is judged and broken under an ``flock`` of the mbox (``fd``,
    its descriptor), so that two fastdkim processes never break it at once
    (the second would judge the first's stale lock, then move aside the new
    lock the first took meanwhile); a busy ``flock`` (another breaker, or an
    agent at work on the mbox) is ``False``: wait.

    :raises OSError: the file system has no ``flock`` (nor can an
        :class:`MboxLock`, which takes one, be had there).
    """
    import fcntl

    try:
        st = os.lstat(dotlock)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    with _HELD_LOCK:
        if (st.st_dev, st.st_ino) in _HELD:  # this process's own: waited for (and no flock of ours
            return False  # is let go: over NFS that would let go of the holder's fcntl lock)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except (BlockingIOError, PermissionError):
        return False
    # (any other error: no flock here, and no MboxLock either, which takes one)
    try:
        return _judge_and_break(dotlock)
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


def _judge_and_break(dotlock: str) -> Optional[bool]:
    """:func:`_break_stale_lock` without its serialization."""
    try:
        st = os.lstat(dotlock)
        with open(dotlock, "rb") as fh:
            content = fh.read(256)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    pid, owner, ident = _owner.lock_owner(content)
    if pid == os.getpid() and owner == _owner.host() and ident in (None, _owner.identity()):
        with _HELD_LOCK:
            if (st.st_dev, st.st_ino) in _HELD:  # this process's own (another MboxLock): waited for
                return False
        # else an earlier process of this number (as in containers): stale
    elif not _owner.left_behind(pid, owner, ident, st.st_mtime):
        # (one without a pid, or with another machine's (a shared spool),
        # another pid space's (a container of the same host name) or a bare
        # one is waited for until untouched for UNCHECKED_LOCK_AGE seconds)
        return False
    # Move it aside and check that it is the lock just judged (another program
    # may have broken it and taken a new one meanwhile): if not, put it back.
    try:
        fd, aside = _owner.mkstemp(os.path.dirname(dotlock))
    except OSError:  # a directory we may not write to: the lock cannot be removed (nor taken)
        return None
    os.close(fd)
    try:
        os.replace(dotlock, aside)
    except FileNotFoundError:
        os.unlink(aside)
        return True
    except OSError:
        os.unlink(aside)
        return False
    try:
        moved = os.lstat(aside)
        with open(aside, "rb") as fh:
            now = fh.read(256)
        if (moved.st_dev, moved.st_ino, moved.st_mtime_ns, now) != (st.st_dev, st.st_ino, st.st_mtime_ns, content):
            try:  # another program took a new lock meanwhile: put it back
                os.link(aside, dotlock)
            except OSError:
                pass
            return False
        return True
    finally:
        os.unlink(aside)



def recover_mbox(path: str, timeout: float = 30.0) -> Optional[str]:
    """Complete an interrupted in-place rewrite of the mbox ``path``, if one
    was left (a journal exists), under the mbox lock.  Cheap when there is
    nothing to do (two ``lstat`` calls, no lock).

    :returns: what was done, or ``None``.
    :raises MboxLockedError: a journal exists but the lock could not be had.
    :raises JournalError: the rewrite cannot be completed safely.
    """
    from .journal import find_journal

    if find_journal(path) is None:
        return None
    with MboxLock(path, timeout=timeout) as lock:
        return lock.recovered


@contextlib.contextmanager
def read_mbox(path: str, timeout: float = 30.0) -> Iterator[BinaryIO]:
    """``with read_mbox(path) as fh``: the mbox at ``path`` open for reading,
    while no fastdkim run rewrites it: under shared ``fcntl`` and ``flock``
    locks (which a rewrite's exclusive ones exclude, and which other readers
    share), taken once an interrupted rewrite is completed
    (:func:`recover_mbox`).  Read the mbox through ``fh`` only: closing
    another descriptor of the file would let go of its ``fcntl`` lock.

    :raises MboxLockedError: the locks could not be had within ``timeout``
        seconds.
    :raises JournalError: an interrupted rewrite cannot be completed (also
        where the mbox may not be written by this process).
    :raises OSError: the mbox cannot be opened or locked.
    """
    from .journal import pending_journal

    deadline = time.monotonic() + timeout
    while True:
        if pending_journal(path) is not None:  # (another user's file at a journal's name is none)
            try:
                recover_mbox(path, max(0.0, deadline - time.monotonic()))
            except PermissionError as exc:
                raise JournalError("%s: a rewrite of this mbox was interrupted, and it must be completed "
                                   "before the mbox is read; run 'fastdkim recover' as a user who may "
                                   "write it (%s)" % (path, exc.strerror)) from None
        with MboxLock(path, max(0.0, deadline - time.monotonic()), shared=True) as lock:
            if pending_journal(path) is None:  # (not one left between the check and the lock)
                yield lock.fh
                return
        if time.monotonic() >= deadline:
            raise MboxLockedError("%s: a rewrite of this mbox was interrupted and is not completed yet" % path)
        time.sleep(0.1)


def recover_all(timeout: float = 30.0) -> List[Tuple[str, Optional[str]]]:
    """Complete every interrupted rewrite whose journal is in fastdkim's state
    directory (:func:`fastdkim.journal.state_dir`); journals kept beside their
    mbox are found through the mbox (:func:`recover_mbox`).

    :returns: ``(mbox path, what was done)`` pairs; an mbox that could not
        be recovered is reported in its pair and the others are still done.
    """
    from .journal import journal_paths_in_state_dir

    done: List[Tuple[str, Optional[str]]] = []
    for mbox in journal_paths_in_state_dir():
        try:
            done.append((mbox, recover_mbox(mbox, timeout)))
        except FileNotFoundError:
            done.append((mbox, "the mbox is gone; its journal is left where it is"))
        except (OSError, JournalError) as exc:  # one mbox's trouble does not stop the others
            done.append((mbox, "not recovered: %s" % exc))
    return done
