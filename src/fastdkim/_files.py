"""Writing files safely: through a temporary file in the same directory, moved into place."""
from __future__ import annotations

import errno
import functools
import os
import stat
from typing import BinaryIO, Callable, Optional, Tuple

from . import _owner
from .errors import ReplacedMeanwhile

__all__ = ["atomic_write", "current_umask", "ReplacedMeanwhile"]


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


def _replace_same(tmp: str, path: str, expect: Tuple[int, int]) -> None:
    """Move ``tmp`` over ``path`` only if ``path`` is still the file
    ``expect`` (device, inode); otherwise :class:`ReplacedMeanwhile`."""
    try:
        swapped = _exchange(tmp, path)
    except FileNotFoundError:
        raise ReplacedMeanwhile(errno.ENOENT, "moved or removed by another program while being signed", path)
    if not swapped:  # check, then replace: a short window remains where the system cannot swap
        st = os.lstat(path)
        if (st.st_dev, st.st_ino) != expect:
            raise ReplacedMeanwhile(errno.ESTALE, "replaced by another program while being signed", path)
        os.replace(tmp, path)
        return
    st = os.lstat(tmp)  # what was at path
    if (st.st_dev, st.st_ino) != expect:
        _exchange(tmp, path)  # someone else's file: put it back
        raise ReplacedMeanwhile(errno.ESTALE, "replaced by another program while being signed", path)
    os.unlink(tmp)


def atomic_write(path: str, write: Callable[[BinaryIO], None], *, overwrite: bool, mode: Optional[int] = None,
                 expect: Optional[Tuple[int, int]] = None) -> None:
    """Write ``path`` through a temporary file in its directory, then move it into place.

    Readers see the old file or the complete new one, never a partial write.
    Without ``overwrite`` an existing ``path`` is never replaced, even one that
    appears while writing (the final step is a hard link, which fails if the
    name exists).

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

    ``expect`` (device, inode): replace ``path`` only if it is still that file
    (an atomic swap where Linux allows, so that a file another program moved
    away meanwhile is not written back under its old name).

    :raises ReplacedMeanwhile: with ``expect``, ``path`` was moved, removed or
        replaced meanwhile; nothing was written.
    :raises FileExistsError: ``path`` exists and ``overwrite`` is false.
    :raises IsADirectoryError: ``path`` is a directory.
    :raises OSError: the file cannot be written.
    """
    try:
        st: Optional[os.stat_result] = os.stat(path)  # (through any symbolic link)
    except FileNotFoundError:  # (or a link to nowhere: the link is checked below)
        st = None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError("%s is a directory" % path)
    if st is not None and not stat.S_ISREG(st.st_mode):
        # /dev/stdout, a FIFO, a device: nothing to replace, write into it
        with open(path, "wb") as out:
            write(out)
        return
    if not overwrite and (st is not None or os.path.lexists(path)):
        raise FileExistsError("%s exists" % path)
    if overwrite and os.path.islink(path):
        path = os.path.realpath(path)
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    try:
        fd, tmp = _owner.mkstemp(d)  # named so that a later run removes it should this process be killed
    except OSError as exc:  # name the file the user asked for, not the temporary one
        raise type(exc)(exc.errno, exc.strerror, path) from None
    try:
        if mode is not None:
            os.fchmod(fd, mode)
        elif st is not None:
            os.fchmod(fd, stat.S_IMODE(st.st_mode))
            if (st.st_uid, st.st_gid) != (os.geteuid(), os.getegid()):
                try:
                    os.fchown(fd, st.st_uid, st.st_gid)
                except OSError:  # not allowed: the file becomes ours
                    pass
        else:
            os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, "wb") as out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
        if overwrite and expect is not None:
            _replace_same(tmp, path, expect)
            return
        if overwrite:
            os.replace(tmp, path)
            return
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise
        except OSError:  # no hard links on this file system
            if os.path.lexists(path):
                raise FileExistsError("%s exists" % path) from None
            os.replace(tmp, path)
        else:
            os.unlink(tmp)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_signed(out: BinaryIO, header: bytes, message: BinaryIO) -> None:
    """Write ``header`` (the signature fields) to ``out``, then the message in
    the binary file ``message`` from its current position to its end, copied
    in blocks of 1 MiB (memory stays bounded whatever the size)."""
    import shutil

    out.write(header)
    shutil.copyfileobj(message, out, 1 << 20)
