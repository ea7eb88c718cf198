"""Writing files safely: through a temporary file in the same directory, moved into place."""
from __future__ import annotations

import errno
import functools
import itertools
import os
import stat
from typing import BinaryIO, Callable, Iterable, Optional, Tuple

from . import _owner
from .errors import ReplacedMeanwhile

__all__ = ["atomic_write", "current_umask", "file_identity", "FileIdentity", "ReplacedMeanwhile", "resolve_target", "new_temporary", "put_in_place",
           "discard", "sync_file_systems", "fsync_directory", "write_signed", "write_all"]


def current_umask() -> int:
    """The process umask, read without changing it where the system allows."""
    try:
        with open("/proc/self/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # no other way: set and restore at once
    os.umask(mask)
    return mask


_RENAME_EXCHANGE = 2


@functools.lru_cache(maxsize=None)
def _renameat2() -> Optional[Callable[..., int]]:
    """The C library's ``renameat2``, looked up once (``None`` where there is none)."""
    try:
        import ctypes

        fn: Callable[..., int] = ctypes.CDLL(None, use_errno=True).renameat2
        return fn
    except (OSError, AttributeError):
        return None


def _exchange(a: str, b: str) -> bool:
    """Swap the files named ``a`` and ``b`` atomically (Linux ``renameat2``);
    False where the system or file system cannot."""
    fn = _renameat2()
    if fn is None:
        return False
    import ctypes

    at_fdcwd = -100
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), b)


#: What tells that a file is still the one that was read, unchanged:
#: ``(device, inode, size, modification time in ns)`` (:func:`file_identity`).
FileIdentity = Tuple[int, int, int, int]


def file_identity(st: os.stat_result) -> FileIdentity:
    """The :data:`FileIdentity` of the file whose status is ``st`` (taken
    before it was read: a file written to meanwhile then no longer matches).
    A rename changes none of it."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _not_as_read(st: os.stat_result, expect: FileIdentity) -> str:
    """Why the file whose status is ``st`` is not the file read (``expect``)."""
    if (st.st_dev, st.st_ino) != expect[:2]:
        return "replaced by another program while being signed"
    return "changed by another program while being signed"


def _replace_same(tmp: str, path: str, expect: FileIdentity, remove: Callable[[str], None] = os.unlink) -> None:
    """Move ``tmp`` over ``path`` only if ``path`` is still the file read,
    unchanged (``expect``, its :data:`FileIdentity`); otherwise
    :class:`ReplacedMeanwhile`, and ``path`` is left as it is.  The old
    file, left under the name ``tmp`` by the swap, is removed by
    ``remove``."""
    try:
        swapped = _exchange(tmp, path)
    except FileNotFoundError:
        raise ReplacedMeanwhile(errno.ENOENT, "moved or removed by another program while being signed", path)
    if not swapped:  # check, then replace: a short window remains where the system cannot swap
        st = os.lstat(path)
        if file_identity(st) != expect:
            raise ReplacedMeanwhile(errno.ESTALE, _not_as_read(st, expect), path)
        os.replace(tmp, path)
        return
    st = os.lstat(tmp)  # what was at path
    if file_identity(st) != expect:
        try:
            _exchange(tmp, path)  # someone else's file: put it back
        except OSError:  # path moved or changed again meanwhile: theirs must not go with tmp
            try:
                where = _keep_theirs(tmp, path)
            except OSError:
                where = tmp
            err = ReplacedMeanwhile(errno.ESTALE, "%s, then moved; its file is kept as %s"
                                    % (_not_as_read(st, expect), where), path)
            err.theirs = where  # (put_in_place must not remove it)
            raise err from None
        raise ReplacedMeanwhile(errno.ESTALE, _not_as_read(st, expect), path)
    remove(tmp)


def _keep_theirs(tmp: str, path: str) -> str:
    """Move another program's file, left under the temporary name ``tmp``
    (which is removed, and swept after a kill), to ``path`` if that name is
    free, else beside it under a name of its own; returns where it is.

    :raises OSError: it cannot be moved (it then stays as ``tmp``, which the
        caller must not remove).
    """
    try:
        if _rename_noreplace(tmp, path):
            return path
    except FileExistsError:
        pass
    for n in itertools.count():
        kept = "%s.fastdkim-kept-%d" % (path, n)
        try:
            os.link(tmp, kept)
        except FileExistsError:
            continue
        except OSError:  # no hard links: a rename (a name taken meanwhile could be replaced; none is expected)
            if os.path.lexists(kept):
                continue
            os.rename(tmp, kept)
            return kept
        os.unlink(tmp)
        return kept
    raise AssertionError("unreachable")  # pragma: no cover


def resolve_target(path: str, *, overwrite: bool) -> Tuple[str, Optional[os.stat_result]]:
    """Where a write to ``path`` goes, and what is there now: ``(path, stat)``,
    the path with a symbolic link followed when ``overwrite`` (the file it
    points to is replaced, the link stays), the stat ``None`` where nothing
    is.  A ``stat`` that is not a regular file (``/dev/stdout``, a FIFO, a
    device) means there is nothing to replace: write into it.

    :raises IsADirectoryError: ``path`` is a directory.
    :raises FileExistsError: ``path`` exists (even as a link to nothing) and
        ``overwrite`` is false.
    """
    try:
        lst = os.lstat(path)
    except FileNotFoundError:  # nothing there, not even a link
        return path, None
    st: Optional[os.stat_result] = lst
    link = stat.S_ISLNK(lst.st_mode)
    if link:
        try:
            st = os.stat(path)  # (through the link)
        except FileNotFoundError:  # a link to nowhere
            st = None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError("%s is a directory" % path)
    if st is not None and not stat.S_ISREG(st.st_mode):
        return path, st
    if not overwrite:
        raise FileExistsError("%s exists" % path)
    if link:
        path = os.path.realpath(path)
    return path, st


def new_temporary(path: str, *, mode: Optional[int] = None, like: Optional[os.stat_result] = None,
                  prefix: Optional[str] = None, umask: Optional[int] = None) -> Tuple[int, str]:
    """A new temporary file in the directory of ``path``, to be moved over
    ``path`` once written: ``(descriptor, name)``.  It is named so that a
    later run removes it should this process be killed; with ``prefix``, it
    is named with that prefix instead (:func:`fastdkim._owner.temp_prefix`
    of the process that will put it in place, and something of its own
    after it).  Its permissions are
    ``mode``, else those of ``like`` (the file it replaces, whose owner and
    group it also takes where the process may set them), else ``0666`` less
    the umask, as ``open()`` would give a new file.  ``umask``: the
    process's umask, where the caller knows it (with ``prefix`` and
    ``mode``, a file whose ``mode`` the umask leaves whole is made with it
    at once).

    :raises OSError: the file cannot be made (naming ``path``, not the
        temporary file).
    """
    d = os.path.dirname(path if path.startswith("/") else os.path.abspath(path))
    made = 0o600
    if prefix is not None and mode is not None and umask is not None and not mode & umask and not mode & ~0o777:
        made = mode  # (given to open(), which takes the umask away: nothing)
    try:
        fd, tmp = _owner.mkstemp(d) if prefix is None else _open_new(d, prefix, made)
    except OSError as exc:  # name the file the user asked for, not the temporary one
        raise type(exc)(exc.errno, exc.strerror, path) from None
    try:
        if mode is not None:
            if mode != made:
                os.fchmod(fd, mode)
        elif like is not None:
            os.fchmod(fd, stat.S_IMODE(like.st_mode))
            if (like.st_uid, like.st_gid) != (os.geteuid(), os.getegid()):
                try:
                    os.fchown(fd, like.st_uid, like.st_gid)
                except OSError:  # not allowed: the file becomes ours
                    pass
        else:
            os.fchmod(fd, 0o666 & ~current_umask())
    except BaseException:
        os.close(fd)
        discard(tmp)
        raise
    return fd, tmp


_NEW_FLAGS = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_NUMBERS = itertools.count()


def _open_new(d: str, prefix: str, mode: int = 0o600) -> Tuple[int, str]:
    """A new file (``mode`` less the umask) in directory ``d``, named
    ``PREFIX PID_N.tmp`` with a number ``N`` new in this process."""
    while True:
        name = os.path.join(d, "%s%d_%d.tmp" % (prefix, _pid(), next(_NUMBERS)))
        try:
            return os.open(name, _NEW_FLAGS, mode), name
        except FileExistsError:  # (left by an earlier process of the same number)
            continue


_PID = [0]


def _pid() -> int:
    """This process's id, asked of the system once per process."""
    pid = _PID[0]
    if not pid:
        pid = _PID[0] = os.getpid()
    return pid


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=lambda: _PID.__setitem__(0, 0))


def write_all(fd: int, *parts: bytes) -> None:
    """Write ``parts`` to the file descriptor ``fd``, whole.

    :raises OSError: the data cannot be written.
    """
    data = b"".join(parts) if len(parts) > 1 else parts[0]
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def discard(tmp: str) -> None:
    """Remove the temporary file ``tmp``, if it is still there."""
    try:
        os.unlink(tmp)
    except OSError:
        pass


_RENAME_NOREPLACE = 1
_AT_FDCWD = -100


def _rename_noreplace(a: str, b: str) -> bool:
    """Rename ``a`` to ``b`` unless ``b`` exists (Linux ``renameat2``); False
    where the system or file system cannot.

    :raises FileExistsError: ``b`` exists.
    """
    fn = _renameat2()
    if fn is None:
        return False
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_NOREPLACE) == 0:
        return True
    import ctypes

    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), b)


def put_in_place(tmp: str, path: str, *, overwrite: bool, expect: Optional[FileIdentity] = None,
                 remove: Callable[[str], None] = os.unlink) -> None:
    """Move the written temporary file ``tmp`` to ``path`` in one step (the
    last step of :func:`atomic_write`, whose rules it follows: without
    ``overwrite`` an existing ``path`` is never replaced, even one that
    appeared meanwhile; with ``expect``, only the file that was read,
    unchanged since (its :data:`FileIdentity`), is replaced, and the old file, then named ``tmp``, is removed
    by ``remove``).  ``tmp`` is removed whatever happens.

    :raises FileExistsError: ``path`` exists and ``overwrite`` is false.
    :raises ReplacedMeanwhile: with ``expect``: ``path`` is another file
        now, or was written to since it was read.
    :raises OSError: the file cannot be moved.
    """
    try:
        if overwrite and expect is not None:
            _replace_same(tmp, path, expect, remove)
            return
        if overwrite:
            os.replace(tmp, path)
            return
        if _rename_noreplace(tmp, path):
            return
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise
        except OSError:  # no hard links on this file system
            if os.path.lexists(path):
                raise FileExistsError(errno.EEXIST, "%s exists" % path, path) from None
            os.replace(tmp, path)
        else:
            os.unlink(tmp)
    except BaseException as exc:
        if getattr(exc, "theirs", None) != tmp:  # (never another program's file left under that name)
            discard(tmp)
        raise


def atomic_write(path: str, write: Callable[[BinaryIO], None], *, overwrite: bool, mode: Optional[int] = None,
                 expect: Optional[FileIdentity] = None) -> None:
    """Write ``path`` through a temporary file in its directory, then move it into place.

    Readers see the old file or the complete new one, never a partial write.
    Without ``overwrite`` an existing ``path`` is never replaced, even one that
    appears while writing (the final step fails if the name exists).

    With ``overwrite``:

    * a symbolic link is followed: the file it points to is replaced and the
      link stays;
    * a path that is not a regular file (``/dev/stdout``, a FIFO, a device)
      is opened and written directly, as there is nothing to replace (with
      or without ``overwrite``);
    * a replaced file keeps its permissions and, where the process may set
      them, its owner and group.  (A file with several hard links is replaced
      under this name only: the other names keep the old content.)

    ``mode`` sets the permissions; a new file otherwise gets ``0666`` less the
    umask, as ``open()`` would give it.

    ``expect`` (a :data:`FileIdentity`, from :func:`file_identity` of the
    status taken before the file was read): replace ``path`` only if it is
    still that file, unchanged (an atomic swap where Linux allows, so that a
    file another program moved away meanwhile is not written back under its
    old name, and one written to meanwhile keeps what was written).

    :raises ReplacedMeanwhile: with ``expect``, ``path`` was moved, removed,
        replaced or written to meanwhile; nothing was written.
    :raises FileExistsError: ``path`` exists and ``overwrite`` is false.
    :raises IsADirectoryError: ``path`` is a directory.
    :raises OSError: the file cannot be written.
    """
    path, st = resolve_target(path, overwrite=overwrite)
    if st is not None and not stat.S_ISREG(st.st_mode):
        # /dev/stdout, a FIFO, a device: nothing to replace, write into it
        with open(path, "wb") as out:
            write(out)
        return
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fd, tmp = new_temporary(path, mode=mode, like=st)
    try:
        with os.fdopen(fd, "wb") as out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        discard(tmp)
        raise
    put_in_place(tmp, path, overwrite=overwrite, expect=expect if overwrite else None)


def sync_file_systems(directories: Iterable[str]) -> None:
    """Make everything written so far to the file systems holding
    ``directories`` durable, with one ``syncfs`` per file system (Linux),
    else one ``sync`` of every file system.

    :raises OSError: the data could not be written out.
    """
    fn = _syncfs()
    if fn is None:
        os.sync()
        return
    import ctypes

    seen = set()
    for d in directories:
        fd = os.open(d, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            dev = os.fstat(fd).st_dev
            if dev in seen:
                continue
            seen.add(dev)
            if fn(fd) != 0:
                err = ctypes.get_errno()
                if err == errno.ENOSYS:
                    os.sync()
                    return
                raise OSError(err, os.strerror(err), d)
        finally:
            os.close(fd)


@functools.lru_cache(maxsize=None)
def _syncfs() -> Optional[Callable[..., int]]:
    """The C library's ``syncfs``, looked up once (``None`` where there is none)."""
    try:
        import ctypes

        fn: Callable[..., int] = ctypes.CDLL(None, use_errno=True).syncfs
        return fn
    except (OSError, AttributeError):
        return None


def fsync_directory(d: str) -> None:
    """Make the names in directory ``d`` durable (its entries, renames
    included); silently nothing where the system cannot open a directory.

    :raises OSError: the directory could not be flushed.
    """
    try:
        fd = os.open(d, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.EBADF):  # (a file system that cannot flush directories)
            raise
    finally:
        os.close(fd)


def write_signed(out: BinaryIO, header: bytes, message: BinaryIO) -> None:
    """Write ``header`` (the signature fields) to ``out``, then the message in
    the binary file ``message`` from its current position to its end, copied
    in blocks of 1 MiB (memory stays bounded whatever the size)."""
    import shutil

    out.write(header)
    shutil.copyfileobj(message, out, 1 << 20)
