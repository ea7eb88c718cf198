"""What runs where bulk work is done (a worker process, a thread, or the
calling thread): signing or verifying a chunk of messages, each failure
kept with its message."""
from __future__ import annotations

import os
import pickle
import stat
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO, Dict, List, Optional, Sequence, Tuple, Union

from ._files import FileIdentity, current_umask, discard, file_identity, new_temporary, put_in_place, resolve_target, write_all, write_signed
from .errors import DKIMError
from .policy import SigningPolicy
from .signing import Signer, sign_all

if TYPE_CHECKING:  # (verification loads in the workers that verify)
    from .verification import Verification


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return "%s: %s" % (exc.filename, exc.strerror) if exc.filename else exc.strerror
    return str(exc) or type(exc).__name__


_Target = Union[Tuple[Signer, ...], SigningPolicy]

#: Targets (signer tuples, policies, verifiers) known in this process, by token.
_INSTALLED: Dict[str, Any] = {}
_INSTALL_LOCK = threading.Lock()


@dataclass(frozen=True)
class _Shipped:
    """A target travelling pickled with each task to an executor we did not
    start; it is unpickled once per process and kept under its token."""

    token: str
    blob: bytes


def hash_on_own_thread() -> None:
    """Large bodies are hashed on the calling thread from now on, in this
    process (a worker whose siblings take the other cores: a second hashing
    thread would only take another worker's core and poll against it)."""
    from . import _core

    set_min = getattr(_core.core, "_set_hash_thread_min", None)  # (the compiled core's)
    if set_min is not None:
        set_min(0)


def _install(token: str, blob: bytes, main_pid: int = 0, every_core: bool = False) -> None:
    """Pool initializer: unpickle the target once in this worker.  With
    ``every_core`` (the pool has a worker on every core), large bodies are
    hashed on this worker's own thread (:func:`hash_on_own_thread`)."""
    if every_core:
        hash_on_own_thread()
    if main_pid:
        import signal

        from ._owner import exit_with

        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the calling process's to handle
        for sig in (signal.SIGTERM, signal.SIGHUP):  # (a worker forked from the caller had its handlers)
            signal.signal(sig, signal.SIG_DFL)
        exit_with(main_pid)  # a killed caller takes its workers along
    _INSTALLED[token] = pickle.loads(blob)


def _resolve(ref: Any) -> Any:
    if isinstance(ref, str):
        return _INSTALLED[ref]
    if isinstance(ref, _Shipped):
        target = _INSTALLED.get(ref.token)
        if target is None:
            with _INSTALL_LOCK:
                target = _INSTALLED.get(ref.token)
                if target is None:
                    target = _INSTALLED[ref.token] = pickle.loads(ref.blob)
        return target
    return ref


def _as_is(target: Any) -> Any:
    """What an object that travels to workers as the signers or policy it
    wraps is unpickled as (see ``__reduce__``): that target itself."""
    return target


def _is_message(obj: Any) -> bool:
    return isinstance(obj, (bytes, bytearray, memoryview))


def _is_file(obj: Any) -> bool:
    return hasattr(obj, "read") and not _is_message(obj)


def _portable(exc: BaseException) -> BaseException:
    """``exc``, or a plain DKIMError saying the same where ``exc`` would not
    survive the trip back from a worker process."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return DKIMError("%s: %s" % (type(exc).__name__, exc))


def _sign_one(target: _Target, payload: Any, include_message: bool) -> Tuple[bytes, Optional[BaseException], Optional[bytes]]:
    if isinstance(payload, str):  # a path: streamed from the file
        try:
            fh = open(payload, "rb")
        except OSError as exc:
            return b"", exc, None
        with fh:
            try:
                headers = _sign(target, fh)
                error = None
            except Exception as exc:  # one bad message never stops the run
                headers, error = b"", exc
            if not include_message:
                return headers, error, None
            try:
                fh.seek(0)
                return headers, error, headers + fh.read()
            except OSError as exc:
                return b"", exc, None
    if include_message and _is_file(payload):  # (in the calling process only) read once, kept whole
        try:
            payload = payload.read()
        except OSError as exc:
            return b"", exc, None
        if not isinstance(payload, (bytes, bytearray)):
            return b"", TypeError("the message is a text-mode file: open it in binary mode ('rb')"), None
    try:
        headers = _sign(target, payload)
    except Exception as exc:
        return b"", exc, (bytes(payload) if include_message and _is_message(payload) else None)
    if include_message:
        return headers, None, headers + bytes(payload)
    return headers, None, None


def _sign(target: Any, message: Any) -> bytes:
    if isinstance(target, tuple):
        if len(target) == 1:  # one signer: its own path, as a loop over Signer.sign takes
            one: bytes = target[0].sign(message)
            return one
        return b"".join(sign_all(message, target))
    headers: bytes = target.sign(message)  # a SigningPolicy, or anything that signs like one
    return headers


def _make_dirs_like(d: str, like: Optional[str]) -> None:
    """Create directory ``d`` (and its missing parents), each with the
    permissions of the corresponding directory of ``like``."""
    if os.path.isdir(d):
        return
    parent = os.path.dirname(d)
    if parent and parent != d:
        _make_dirs_like(parent, os.path.dirname(like) if like else None)
    try:
        os.mkdir(d, 0o700)
    except FileExistsError:
        return
    try:
        os.chmod(d, stat.S_IMODE(os.stat(like).st_mode) if like and os.path.isdir(like) else 0o777 & ~current_umask())
    except OSError:
        pass


#: A message file of at most this size is copied into its output in one
#: read and one write (larger ones are streamed in blocks).
WHOLE = 1 << 20

#: What signing one file into its output gave: ``(temporary, destination,
#: signed, written, error, expect, size)``.  ``temporary`` holds the output, written
#: but neither flushed nor in place (``None`` when there is nothing to put in
#: place); ``destination`` is where it goes (a symbolic link followed);
#: ``written`` says the output was or is to be written (the message signed,
#: or unchanged); ``error`` why it was not signed or not written; ``expect``
#: the file read (its FileIdentity), which alone may be replaced in place, and only if unchanged;
#: ``size`` the size of the file read (0 when it could not be read).
Into = Tuple[Optional[str], str, bool, bool, Optional[BaseException], Optional[FileIdentity], int]


class _open_source:
    """``with _open_source(path) as (file, stat, data)``: a message file
    opened for reading.  A small one (at most WHOLE octets, or a FIFO) is
    read whole at once, through the bare descriptor, ``file`` then being
    ``None``; a larger one is left to be streamed from ``file`` (``data``
    ``None``)."""

    __slots__ = ("fd", "fh")

    def __init__(self, path: str) -> None:
        self.fh: Optional[BinaryIO] = None
        self.fd = os.open(path, _READ_FLAGS)

    def __enter__(self) -> Tuple[Optional[BinaryIO], os.stat_result, Optional[bytes]]:
        fd = self.fd
        try:
            st = os.fstat(fd)
            if st.st_size > WHOLE:
                self.fh = open(fd, "rb")  # (closes the descriptor when it is closed)
                return self.fh, st, None
            data = os.read(fd, st.st_size + 1)  # (short only at the end of the file)
            if len(data) > st.st_size:  # it grew meanwhile: read to its end
                parts = [data]
                while True:
                    more = os.read(fd, 1 << 20)
                    if not more:
                        break
                    parts.append(more)
                data = b"".join(parts)
            return None, st, data
        except BaseException:
            self.__exit__()
            raise

    def __exit__(self, *exc: Any) -> None:
        if self.fh is not None:
            self.fh.close()
        elif self.fd >= 0:
            os.close(self.fd)
        self.fd = -1


_READ_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)


def _sign_to_temporary(target: Any, src: str, dst: str, in_place: bool, overwrite: bool, sync: bool = False,
                       prefix: Optional[str] = None, umask: Optional[int] = None) -> Into:
    """Sign the message file ``src`` into a temporary file beside ``dst``
    (``src`` itself in place), with ``src``'s permissions (in place, also its
    owner); missing directories are created with those of ``src``'s.  A
    message that cannot be signed is copied unchanged, or left alone in
    place.  ``sync``: flush the temporary file to disk.  ``prefix``: how the
    temporary file is named; ``umask``: the process's, where known (see
    :func:`fastdkim._files.new_temporary`).  Never raises for an I/O error:
    it is returned."""
    tmp: Optional[str] = None
    try:
        with _open_source(src) as (fh, st, data):
            message: Any = fh if data is None else data
            try:
                headers = _sign(target, message)
                error: Optional[BaseException] = None
            except Exception as exc:  # copied unchanged
                headers, error = b"", exc
            if in_place and not headers:
                return None, dst, False, False, error, None, st.st_size
            final, there = resolve_target(dst, overwrite=overwrite or in_place)
            if data is None:  # streamed: copied from the start once more
                message.seek(0)
            if there is not None and not stat.S_ISREG(there.st_mode):  # a device, a FIFO: written into
                with open(final, "wb") as out:
                    if data is None:
                        write_signed(out, headers, message)
                    else:
                        out.write(headers + data)
                return None, final, bool(headers), True, error, None, st.st_size
            mode = None if in_place else stat.S_IMODE(st.st_mode)
            like = st if in_place else None
            try:
                fd, tmp = new_temporary(final, mode=mode, like=like, prefix=prefix, umask=umask)
            except FileNotFoundError:
                _make_dirs_like(os.path.dirname(os.path.abspath(final)), os.path.dirname(os.path.abspath(src)))
                fd, tmp = new_temporary(final, mode=mode, like=like, prefix=prefix, umask=umask)
            if data is not None:  # written in one call
                try:
                    write_all(fd, headers, data)
                    if sync:
                        os.fsync(fd)
                finally:
                    os.close(fd)
            else:
                with os.fdopen(fd, "wb") as out:
                    write_signed(out, headers, message)
                    if sync:
                        out.flush()
                        os.fsync(out.fileno())
            return tmp, final, bool(headers), True, error, file_identity(st), st.st_size
    except BaseException as exc:
        if tmp is not None:
            discard(tmp)
        if isinstance(exc, OSError):
            return None, dst, False, False, exc, None, 0
        raise


def sign_file_into(signer: Any, src: str, dst: str) -> Tuple[str, str, bool, str]:
    """Sign the message file ``src`` into ``dst``, replacing ``dst`` atomically
    (a temporary file in its directory, flushed to disk, renamed into place),
    with ``src``'s permissions; missing directories are created with those of
    ``src``'s.  A message that cannot be signed is written unchanged.

    :param signer: a :class:`~fastdkim.Signer`, a sequence of them, or a
        :class:`~fastdkim.SigningPolicy`.
    :returns: ``(src, dst, signed, reason)``: ``reason`` says why the message
        was not signed, or why nothing was written (an I/O error).
    """
    target = (signer,) if isinstance(signer, Signer) else tuple(signer) if isinstance(signer, list) else signer
    tmp, final, signed, written, error, _, _ = _sign_to_temporary(target, src, dst, False, True, sync=True)
    if tmp is not None:
        try:
            put_in_place(tmp, final, overwrite=True)
        except OSError as exc:
            signed, written, error = False, False, exc
    if not written:  # (an I/O error: an unsignable message is written unchanged)
        return src, dst, False, "I/O error: %s" % ("?" if error is None else _describe(error))
    return src, dst, signed, "" if error is None else _describe(error)


def _sign_into_chunk(ref: Any, items: Sequence[Tuple[int, Any, Any]],
                     option: Tuple[bool, bool, str]) -> List[Tuple[Any, ...]]:
    """Worker: sign each ``(index, source path, destination)`` into a
    temporary file beside its destination (see :func:`_sign_to_temporary`);
    ``option`` is ``(in_place, overwrite, prefix)``, the prefix naming the
    temporary files after the process that puts them in place.  Rows:
    ``(index,) + Into``."""
    target = _resolve(ref)
    in_place, overwrite, prefix = option
    umask = current_umask()  # (once a chunk: files the umask leaves whole are made with their mode at once)
    out: List[Tuple[Any, ...]] = []
    for i, src, dst in items:
        tmp, final, signed, written, error, expect, size = _sign_to_temporary(target, src, dst, in_place,
                                                                              overwrite, prefix=prefix, umask=umask)
        out.append((i, tmp, final, signed, written, None if error is None else _portable(error), expect, size))
    return out


def _sign_chunk(ref: Any, items: Sequence[Tuple[int, Any]], include_message: bool) -> List[Tuple[int, bytes, Optional[BaseException], Optional[bytes]]]:
    """Worker: sign each ``(index, payload)``; payloads are bytes, paths or
    (in the calling process only) binary files."""
    target = _resolve(ref)
    out = []
    for i, payload in items:
        headers, error, message = _sign_one(target, payload, include_message)
        out.append((i, headers, None if error is None else _portable(error), message))
    return out


def _verify_chunk(ref: Any, items: Sequence[Tuple[int, Any]], unused: bool) -> List[Tuple[int, List[Verification], Optional[BaseException]]]:
    verifier = _resolve(ref)
    out: List[Tuple[int, List[Verification], Optional[BaseException]]] = []
    for i, payload in items:
        try:
            if isinstance(payload, str):
                with open(payload, "rb") as fh:
                    out.append((i, verifier.verify(fh), None))
            else:
                out.append((i, verifier.verify(payload), None))
        except Exception as exc:
            out.append((i, [], _portable(exc)))
    return out
