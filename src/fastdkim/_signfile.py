"""Signing a message file into another: the source read as a stream (twice
when it can seek, else spooled to a temporary file), the signed copy written
atomically when it goes to a path.

What is prepended comes from a callable, so this module knows nothing of
signers; :func:`fastdkim.signing.sign_file` is the public entry point.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from typing import BinaryIO, Callable, Optional, Union

from ._files import atomic_write, write_signed
from .errors import SigningError

__all__ = ["write_signed_copy"]


def write_signed_copy(
    src: Union[str, "os.PathLike[str]", BinaryIO],
    dst: Union[str, "os.PathLike[str]", BinaryIO],
    header_for: Callable[[BinaryIO], bytes],
    *,
    overwrite: bool = False,
) -> bytes:
    """Write ``header_for(message)`` followed by the message in ``src`` to ``dst``.

    ``header_for`` reads the message from the stream it is given (to its
    end); the stream is then rewound and copied after the header.  A path
    ``src`` is opened and closed here; a file object is read from its
    current position and left open.  A path ``dst`` is written through a
    temporary file in the same directory and moved into place atomically, so
    it never holds a partial message; it replaces an existing file only with
    ``overwrite=True``.  Whatever ``header_for`` raises propagates, nothing
    having been written.

    :returns: what ``header_for`` returned.
    :raises SigningError: ``dst`` is the same file as ``src``.
    :raises FileExistsError: ``dst`` exists and ``overwrite`` is false.
    :raises OSError: reading or writing failed (a path ``dst`` is left untouched).
    """
    own = isinstance(src, (str, os.PathLike))
    fin: BinaryIO = open(src, "rb") if own else src  # type: ignore[arg-type, assignment]
    spool: Optional[BinaryIO] = None
    try:
        if isinstance(dst, (str, os.PathLike)) and os.path.exists(dst):
            if own and os.path.samefile(src, dst):  # type: ignore[arg-type]
                raise SigningError("refusing to write the signed message over its source %s"
                                   % os.fspath(src))  # type: ignore[arg-type]
            if not overwrite:
                raise FileExistsError("%s exists (pass overwrite=True to replace it)" % os.fspath(dst))
        try:
            start = fin.tell()
            fin.seek(start)
            seekable = fin.seekable() if hasattr(fin, "seekable") else True
        except (OSError, AttributeError, ValueError):
            seekable = False
        source: BinaryIO = fin
        if not seekable:
            spool = tempfile.SpooledTemporaryFile(max_size=8 << 20)  # type: ignore[assignment]
            shutil.copyfileobj(fin, spool, 1 << 20)  # type: ignore[arg-type]
            spool.seek(0)  # type: ignore[union-attr]
            source, start = spool, 0  # type: ignore[assignment]
        header = header_for(source)
        source.seek(start)
        if isinstance(dst, (str, os.PathLike)):
            atomic_write(os.fspath(dst), lambda out: write_signed(out, header, source), overwrite=overwrite)
        else:
            write_signed(dst, header, source)
        return header
    finally:
        if spool is not None:
            spool.close()
        if own:
            fin.close()
