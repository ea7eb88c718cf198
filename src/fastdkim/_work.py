"""What runs where bulk work is done (a worker process, a thread, or the
calling thread): signing or verifying a chunk of messages, each failure
kept with its message."""
from __future__ import annotations

import os
import pickle
import stat
import threading
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from ._files import atomic_write, current_umask, write_signed
from .errors import DKIMError
from .policy import SigningPolicy
from .signing import Signer, sign_all
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


def _install(token: str, blob: bytes, main_pid: int = 0) -> None:
    """Pool initializer: unpickle the target once in this worker."""
    if main_pid:
        import signal

        from ._owner import exit_with

        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the calling process's to handle
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


def sign_file_into(signer: Any, src: str, dst: str) -> Tuple[str, str, bool, str]:
    """Sign the message file ``src`` into ``dst``, replacing ``dst`` atomically
    (a temporary file in its directory, renamed into place), with ``src``'s
    permissions; missing directories are created with those of ``src``'s.
    A message that cannot be signed is written unchanged.

    :param signer: a :class:`~fastdkim.Signer`, a sequence of them, or a
        :class:`~fastdkim.SigningPolicy`.
    :returns: ``(src, dst, signed, reason)``: ``reason`` says why the message
        was not signed, or why nothing was written (an I/O error).
    """
    target = (signer,) if isinstance(signer, Signer) else tuple(signer) if isinstance(signer, list) else signer
    try:
        with open(src, "rb") as fh:
            try:
                headers = _sign(target, fh)
                reason = ""
            except Exception as exc:  # written out unchanged
                headers, reason = b"", _describe(exc)
            fh.seek(0)
            st = os.fstat(fh.fileno())
            _make_dirs_like(os.path.dirname(os.path.abspath(dst)), os.path.dirname(os.path.abspath(src)))
            atomic_write(dst, lambda out: write_signed(out, headers, fh), overwrite=True, mode=stat.S_IMODE(st.st_mode))
        return src, dst, bool(headers), reason
    except OSError as exc:
        return src, dst, False, "I/O error: %s" % _describe(exc)


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
