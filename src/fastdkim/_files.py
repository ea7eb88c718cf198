"""Writing files safely: through a temporary file in the same directory, moved into place."""
from __future__ import annotations

import os
import tempfile
from typing import BinaryIO, Callable, Optional

__all__ = ["atomic_write"]


def atomic_write(path: str, write: Callable[[BinaryIO], None], *, overwrite: bool, mode: Optional[int] = None) -> None:
    """Write ``path`` through a temporary file in its directory, then move it into place.

    Readers see the old file or the complete new one, never a partial write.
    Without ``overwrite`` an existing ``path`` is never replaced, even one that
    appears while writing (the final step is a hard link, which fails if the
    name exists).  ``mode`` sets the permissions; by default a replaced file
    keeps its own.

    :raises FileExistsError: ``path`` exists and ``overwrite`` is false.
    :raises OSError: the file cannot be written.
    """
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    if not overwrite and os.path.lexists(path):
        raise FileExistsError("%s exists" % path)
    fd, tmp = tempfile.mkstemp(prefix=".fastdkim-", dir=d)
    try:
        if mode is not None:
            os.fchmod(fd, mode)
        elif os.path.exists(path):
            try:
                os.fchmod(fd, os.stat(path).st_mode & 0o7777)
            except OSError:
                pass
        with os.fdopen(fd, "wb") as out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
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
