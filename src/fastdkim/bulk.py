"""Bulk signing and verification: many messages, every core, in bounded memory.

:func:`sign_many` and :func:`verify_many` take any iterable of messages (an
iterable far larger than memory streams through) and yield one result per
input, in input order.  A message that cannot be signed or read yields a
result that says why; nothing is dropped and nothing is raised for one bad
message.

Where the work runs:

* ``jobs=1``: in the calling thread;
* by default, or ``jobs=N``: a pool of worker processes (one per usable
  core by default).  The signers reach each worker once, when it starts;
  small messages travel in chunks, so that the traffic between processes
  does not outweigh the signing; large ones go one at a time, and files
  are passed as paths and read by the worker;
* ``executor=``: any :class:`concurrent.futures.Executor`.  Threads pay off
  for large messages, since the compiled core releases the GIL while it
  hashes; for a process-based executor the signers travel pickled with each
  chunk (a few kilobytes) and are unpickled once per worker process.

At most ``window`` messages are in flight (submitted and not yet yielded),
which bounds the memory whatever the length of the input.
"""
from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

from ._engine import CHUNK_BYTES, CHUNK_COUNT, DEFAULT_WINDOW, LARGE, check_counts, run, usable_cores
from ._work import _describe, _sign_chunk, _verify_chunk, sign_file_into
from .errors import SigningError, WorkerLost
from .policy import SigningPolicy
from .signing import Signer
from .verification import Verification

__all__ = ["SignResult", "VerifyResult", "sign_many", "verify_many", "sign_file_into", "usable_cores", "WorkerLost",
           "LARGE", "CHUNK_BYTES", "CHUNK_COUNT", "DEFAULT_WINDOW"]

_Target = Union[Tuple[Signer, ...], SigningPolicy]


@dataclass(frozen=True)
class SignResult:
    """What :func:`sign_many` made of one input.

    ``key`` is the key given with the message (a ``(key, message)`` pair),
    else the message's index.  ``headers`` holds the ``DKIM-Signature``
    field(s) to prepend, in the message's own line endings (``b""`` when it
    could not be signed).  ``error`` says why it could not be signed.
    ``message`` is the signed message when ``include_message=True`` was
    asked for, or the message unchanged when it could not be signed (and
    ``None`` when the input itself could not be read).
    """

    index: int
    key: Any
    headers: bytes = b""
    error: Optional[BaseException] = None
    message: Optional[bytes] = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        """Whether the message was signed."""
        return self.error is None

    @property
    def reason(self) -> str:
        """Why the message was not signed (``""`` when it was)."""
        return "" if self.error is None else _describe(self.error)


@dataclass(frozen=True)
class VerifyResult:
    """What :func:`verify_many` made of one input: ``results`` holds one
    :class:`~fastdkim.Verification` per ``DKIM-Signature`` field (empty for
    an unsigned message); ``error`` is set only when the input could not be
    read at all (a missing file, say)."""

    index: int
    key: Any
    results: List[Verification] = field(default_factory=list)
    error: Optional[BaseException] = None

    @property
    def passed(self) -> bool:
        """Whether at least one signature verified."""
        return any(r.passed for r in self.results)

    @property
    def reason(self) -> str:
        return "" if self.error is None else _describe(self.error)


def _sign_target(signer: Any) -> _Target:
    if isinstance(signer, Signer):
        return (signer,)
    if isinstance(signer, SigningPolicy):
        return signer
    if isinstance(signer, Sequence) and not isinstance(signer, (str, bytes)) and signer \
            and all(isinstance(s, Signer) for s in signer):
        return tuple(signer)
    if isinstance(signer, Sequence) and not isinstance(signer, (str, bytes)) and not signer:
        raise SigningError("no signers given")
    raise TypeError("signer must be a Signer, a sequence of Signers or a SigningPolicy, not %s"
                    % type(signer).__name__)


def sign_many(
    messages: Iterable[Any],
    signer: Union[Signer, Sequence[Signer], SigningPolicy],
    *,
    jobs: Optional[int] = None,
    executor: Optional[Executor] = None,
    window: Optional[int] = None,
    include_message: bool = False,
) -> Iterator[SignResult]:
    """Sign every message of ``messages``; yield one :class:`SignResult` per
    input, in input order.

    :param messages: an iterable of messages (bytes-like, paths, binary file
        objects) or of ``(key, message)`` pairs; it is consumed lazily.
    :param signer: a :class:`~fastdkim.Signer`, a sequence of signers (each
        message gets one field per signer, each distinct body hash computed
        once), or a :class:`~fastdkim.SigningPolicy` (signers chosen by each
        message's From domain).
    :param jobs: ``1``: sign in the calling thread; ``N``: in ``N`` worker
        processes; default: one worker process per usable core (in the
        calling thread on a single core).
    :param executor: sign on this executor instead (not with ``jobs``).
    :param window: at most this many messages in flight (default 2048 for
        a pool); memory use is bounded by ``window`` times the size of a
        message (files are passed as paths and streamed).
    :param include_message: also return each signed message whole
        (:attr:`SignResult.message`).
    :raises TypeError: ``signer``, ``jobs``, ``window`` or ``executor`` of the
        wrong type (a wrong message type is reported in its result).
    :raises OptionError: ``jobs`` or ``window`` below 1, or both ``jobs`` and
        ``executor``.

    A message that cannot be signed yields a result whose ``error`` says why
    (no From field, no key for its domain, a malformed header block, an
    unreadable file); the others are signed.  The results are produced as
    the iteration goes; stopping it early cancels what was not yet done.
    """
    target = _sign_target(signer)
    check_counts(jobs, window, executor)
    return _signed(run(_sign_chunk, _sign_failed, messages, target, jobs, executor, window, bool(include_message)))


def _sign_failed(index: int, error: BaseException) -> Any:
    return index, b"", error, None


def _verify_failed(index: int, error: BaseException) -> Any:
    return index, [], error


def _signed(rows: Iterator[Tuple[Any, Any]]) -> Iterator[SignResult]:
    for item, (_, headers, error, message) in rows:
        yield SignResult(item.index, item.key, headers, error, message)


def verify_many(
    messages: Iterable[Any],
    keys: Any = None,
    *,
    jobs: Optional[int] = None,
    executor: Optional[Executor] = None,
    window: Optional[int] = None,
    **options: Any,
) -> Iterator[VerifyResult]:
    """Verify every message of ``messages``; yield one :class:`VerifyResult`
    per input, in input order (the same contract as :func:`sign_many`).

    :param keys: the key source, as for :class:`~fastdkim.Verifier` (default:
        DNS).  Each worker builds one :class:`~fastdkim.Verifier` from it, so
        its key lookups share one cache per worker; it must pickle to go to
        worker processes (mappings and :class:`~fastdkim.DNSKeySource` do).
    :param options: further :class:`~fastdkim.Verifier` options.
    :raises TypeError: as for :func:`sign_many`, or an unknown option.
    """
    from .verification import Verifier

    Verifier(keys=keys, **options)  # options checked here, once, before any work
    check_counts(jobs, window, executor)
    return _verified(run(_verify_chunk, _verify_failed, messages, _VerifySpec(keys, options), jobs, executor, window))


def _verified(rows: Iterator[Tuple[Any, Any]]) -> Iterator[VerifyResult]:
    for item, (_, results, error) in rows:
        yield VerifyResult(item.index, item.key, results, error)


class _VerifySpec:
    """How to build the verifier: built where the work runs (once per
    process, so one key cache per worker), shipped as its options."""

    def __init__(self, keys: Any, options: Dict[str, Any]) -> None:
        self.keys, self.options = keys, options
        self._verifier: Any = None

    def verify(self, message: Any) -> List[Verification]:
        if self._verifier is None:
            from .verification import Verifier

            self._verifier = Verifier(keys=self.keys, **self.options)
        result: List[Verification] = self._verifier.verify(message)
        return result

    def __getstate__(self) -> Dict[str, Any]:
        return {"keys": self.keys, "options": self.options, "_verifier": None}
