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

:func:`sign_files_into` signs message files into other files (or in place),
the workers writing the outputs, made durable and put in place in batches.
"""
from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, Generator, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

from ._engine import CHUNK_BYTES, CHUNK_COUNT, DEFAULT_WINDOW, LARGE, check_counts, run, usable_cores
from ._into import FileResult, files_into
from ._work import _describe, _sign_chunk, _verify_chunk, sign_file_into
from .errors import SigningError, WorkerLost
from .policy import SigningPolicy
from .signing import Signer

if TYPE_CHECKING:  # (verification loads where messages are verified)
    from .verification import Verification

__all__ = ["SignResult", "VerifyResult", "FileResult", "sign_many", "verify_many", "sign_files_into", "sign_file_into",
           "usable_cores", "WorkerLost", "LARGE", "CHUNK_BYTES", "CHUNK_COUNT", "DEFAULT_WINDOW"]

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
    return _sign_many(messages, target, jobs, executor, window, include_message)


def _sign_many(messages: Iterable[Any], target: Any, jobs: Optional[int], executor: Optional[Executor],
               window: Optional[int], include_message: bool = False,
               max_bytes: Optional[int] = None) -> Generator[SignResult, None, None]:
    """:func:`sign_many` for a target already checked (a tuple of signers, a
    policy, or anything that signs like one); ``max_bytes`` bounds the octets
    of messages in flight besides their number."""
    return _signed(run(_sign_chunk, _sign_failed, messages, target, jobs, executor, window, bool(include_message),
                       max_bytes=max_bytes))


def sign_files_into(
    pairs: Iterable[Any],
    signer: Union[Signer, Sequence[Signer], SigningPolicy],
    *,
    jobs: Optional[int] = None,
    executor: Optional[Executor] = None,
    window: Optional[int] = None,
    overwrite: bool = False,
    in_place: bool = False,
) -> Iterator[FileResult]:
    """Sign message files into output files; yield one :class:`FileResult`
    per input, in input order, once its output is in place for good.

    :param pairs: ``(source, destination)`` pairs of paths; with ``in_place``,
        paths (each file is replaced by its signed copy).  Consumed lazily.
        Name each file once.
    :param signer: as for :func:`sign_many`.
    :param jobs: as for :func:`sign_many` (the workers read, sign and write).
    :param executor: as for :func:`sign_many`; its workers must see the same
        files.
    :param window: at most this many files in flight.
    :param overwrite: replace existing destinations (else an existing one is
        reported and kept, even one that appears while the file is signed).
    :param in_place: replace each input with its signed copy; only the very
        file that was read is replaced: one that another program moved,
        removed or replaced meanwhile is reported
        (:class:`~fastdkim.errors.ReplacedMeanwhile`) and left alone.
    :raises TypeError: as for :func:`sign_many`.
    :raises OptionError: as for :func:`sign_many`.

    An output gets the permissions of its input (in place, its owner too);
    missing directories are created with those of the corresponding input
    directories.  A message that cannot be signed is written out unchanged
    (in place: left as it is); either way its result says why.  An input of
    the wrong type, a file that cannot be read or an output that cannot be
    written is reported in its result; nothing is raised for one file.

    Each output is written to a temporary file in its directory (named
    ``.fastdkim-HOST.PID.RANDOM.tmp``) and renamed into place.  The renames
    are done in batches, each after one flush of its file systems (``syncfs``)
    and followed by one flush of each directory, so that a file in place is
    there for good.  However the run ends, every output is either absent (or
    as it was) or complete and signed; what is signed when the iteration
    stops early is put in place first.  Temporary files of a killed run are
    removed by the next run that writes into their directory (or by
    ``fastdkim recover DIR``).
    """
    target = _sign_target(signer)
    check_counts(jobs, window, executor)
    return files_into(pairs, target, jobs, executor, window, bool(overwrite), bool(in_place))


def _sign_failed(index: int, error: BaseException) -> Any:
    return index, b"", error, None


def _verify_failed(index: int, error: BaseException) -> Any:
    return index, [], error


def _signed(rows: Iterator[Tuple[Any, Any]]) -> Generator[SignResult, None, None]:
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
