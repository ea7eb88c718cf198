"""The bulk engine's driver: inputs prepared and grouped into chunks, chunks
sent to the calling thread, a process pool or an executor, at most
``window`` messages in flight, rows handed back in input order."""
from __future__ import annotations

import itertools
import os
import pickle
from collections import deque
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Deque, Iterable, Iterator, List, Optional, Sequence, Sized, Tuple

from ._work import _install, _is_file, _is_message, _Shipped
from .errors import OptionError, WorkerLost

#: A message of size at least this goes to a worker alone (never chunked).
LARGE = 1 << 20
#: A chunk of small messages holds at most this many bytes ...
CHUNK_BYTES = 1 << 20
#: ... and at most this many messages (fewer where the messages left are
#: known to be few, see :func:`_chunks`) ...
CHUNK_COUNT = 256
#: ... and, of small messages, never fewer than this many (but the last, or
#: where ``count`` is smaller).
CHUNK_MIN = 8
#: Default bound on messages in flight for a pool.
DEFAULT_WINDOW = 2048


def usable_cores() -> int:
    """The number of cores this process may run on (its CPU affinity)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _is_path(obj: Any) -> bool:
    return isinstance(obj, (str, os.PathLike))


def _split_item(item: Any, index: int) -> Tuple[Any, Any]:
    """``(key, message)`` of one input."""
    if isinstance(item, tuple):
        if len(item) != 2:
            raise TypeError("a tuple input must be a (key, message) pair, not a %d-tuple" % len(item))
        return item[0], item[1]
    return index, item


class _Item:
    __slots__ = ("index", "key", "payload", "size", "error")

    def __init__(self, index: int, key: Any, payload: Any, size: int, error: Optional[BaseException]) -> None:
        self.index, self.key, self.payload, self.size, self.error = index, key, payload, size, error


def _prepare(messages: Iterable[Any], in_process: bool, sizes: bool = True) -> Iterator[_Item]:
    """Each input as something a worker can take: bytes or a path (a binary
    file is read here unless the work stays in this process).  ``sizes``:
    find the size of each file named (else it counts as small: the worker
    reads it, streaming it if it is large)."""
    for index, item in enumerate(messages):
        try:
            key, msg = _split_item(item, index)
        except TypeError as exc:
            yield _Item(index, index, None, 0, exc)
            continue
        if _is_message(msg):
            if isinstance(msg, memoryview) and not in_process:
                msg = msg.tobytes()
            yield _Item(index, key, msg, len(msg), None)
        elif _is_path(msg):
            path = os.fspath(msg)
            if isinstance(path, bytes):
                path = os.fsdecode(path)
            try:
                size = os.stat(path).st_size if sizes else 0
            except OSError:
                size = 0  # the worker reports the error
            yield _Item(index, key, path, size, None)
        elif _is_file(msg):
            if in_process:
                yield _Item(index, key, msg, LARGE, None)  # streamed, never chunked with others
                continue
            try:
                data = msg.read()
            except OSError as exc:
                yield _Item(index, key, None, 0, exc)
                continue
            if not isinstance(data, (bytes, bytearray)):
                yield _Item(index, key, None, 0, TypeError("message %r is a text-mode file: open it in binary mode ('rb')"
                                                           % (key,)))
                continue
            yield _Item(index, key, bytes(data), len(data), None)
        else:
            yield _Item(index, key, None, 0, TypeError(
                "message %r must be bytes, a path or a binary file, not %s" % (key, type(msg).__name__)))


def _chunks(items: Iterator[_Item], count: int, total: Optional[int] = None,
            workers: int = 1) -> Iterator[List[_Item]]:
    """Small items grouped (up to ``count`` messages, CHUNK_BYTES bytes); large
    ones and unreadable ones alone.  Where the number of items is known
    (``total``), chunks shrink as the end nears (a quarter of what is left
    per worker, never below CHUNK_MIN), so that the workers finish together
    instead of one of them signing a last large chunk while the others wait;
    large chunks elsewhere keep the cost of sending work and results small."""
    chunk: List[_Item] = []
    size = 0
    left = total
    least = min(CHUNK_MIN, count)
    limit = count if left is None else max(least, min(count, left // (4 * workers)))
    for it in items:
        if left is not None:
            left -= 1
        if it.error is not None or it.size >= LARGE:
            if chunk:
                yield chunk
                chunk, size = [], 0
            yield [it]
            continue
        chunk.append(it)
        size += it.size
        if len(chunk) >= limit or size >= CHUNK_BYTES:
            yield chunk
            chunk, size = [], 0
            if left is not None:
                limit = max(least, min(count, left // (4 * workers)))
    if chunk:
        yield chunk


def check_counts(jobs: Optional[int], window: Optional[int], executor: Optional[Executor]) -> None:
    for name, v in (("jobs", jobs), ("window", window)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int)):
            raise TypeError("%s must be an int, not %s" % (name, type(v).__name__))
        if v is not None and v < 1:
            raise OptionError("%s must be at least 1, not %d" % (name, v))
    if executor is not None and not isinstance(executor, Executor):
        raise TypeError("executor must be a concurrent.futures.Executor, not %s" % type(executor).__name__)
    if executor is not None and jobs is not None:
        raise OptionError("give jobs or executor, not both")


def _context(fork: bool = False) -> Any:
    """How worker processes start.  By default they are not forked from the
    caller: they must not inherit its open files (an mbox locked with flock
    would stay locked in them) or its threads; they are forked from a server
    process started for the purpose (or spawned where there is none).  With
    ``fork``, the caller says that it holds nothing its workers must not
    inherit: they are then forked from it directly (no server to start, and
    the workers start with everything the caller has loaded), provided it
    runs no other thread at that moment (else as by default)."""
    import multiprocessing
    import threading

    methods = multiprocessing.get_all_start_methods()
    if fork and "fork" in methods and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    ctx: Any = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    if "forkserver" in methods:  # workers forked from a server that has fastdkim imported already
        ctx.set_forkserver_preload(["fastdkim._work"])  # what a worker runs, and no more
    return ctx


def warm_up() -> None:
    """Start the server that worker processes are forked from (where there
    is one) now, so that a pool started a moment later is ready sooner: the
    server imports fastdkim while the caller does something else."""
    ctx = _context()
    if ctx.get_start_method() == "forkserver":
        from multiprocessing import forkserver

        forkserver.ensure_running()


def _start_pool(jobs: int, token: str, blob: bytes, fork: bool = False) -> Executor:
    """A pool of ``jobs`` worker processes (started as :func:`_context` says),
    the pickled target ``blob`` installed in each under ``token``.  With a
    worker on every core, each hashes large bodies on its own thread only."""
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(max_workers=jobs, mp_context=_context(fork), initializer=_install,
                               initargs=(token, blob, os.getpid(), jobs >= usable_cores()))


Work = Callable[[Any, Sequence[Tuple[Any, ...]], Any], List[Any]]
FailedRow = Callable[[int, BaseException], Any]


def run(work: Work, failed_row: FailedRow, messages: Iterable[Any], target: Any, jobs: Optional[int],
        executor: Optional[Executor], window: Optional[int], option: Any = None,
        send_key: bool = False, max_bytes: Optional[int] = None, fork: bool = False,
        sizes: bool = True, total: Optional[int] = None) -> Iterator[Tuple["_Item", Any]]:
    """``(item, row)`` per input, in input order.

    ``work(target, items, option)`` runs where the work is done (a function
    of a module, so that it pickles by name): ``items`` are ``(index,
    payload)`` pairs, or ``(index, payload, key)`` with ``send_key``, and it
    returns one row per item, in order, never raising for one item.
    ``failed_row(index, error)`` is the row of an input that never reached
    a worker (a wrong type, an unreadable file object) or whose worker was
    lost.  ``max_bytes``: besides ``window``, at most this many octets of
    messages in flight (a chunk or a large message goes alone when nothing
    else is).  ``fork``: the caller holds nothing its workers must not
    inherit (see :func:`_context`).  ``sizes``: look up the size of each
    file named, so that large ones go to a worker alone (without, the
    caller's work learns sizes from the workers, and a system call a file
    is saved here).  ``total``: how many inputs there are, where the caller
    knows (else the length of ``messages`` where it has one), so that the
    last chunks are small.
    """
    def task(it: _Item) -> Tuple[Any, ...]:
        return (it.index, it.payload, it.key) if send_key else (it.index, it.payload)

    if executor is None and (jobs == 1 or (jobs is None and usable_cores() == 1)):
        for item in _prepare(messages, True, sizes):
            if item.error is not None:
                yield item, failed_row(item.index, item.error)
            else:
                (row,) = work(target, [task(item)], option)
                yield item, row
        return

    threads = isinstance(executor, ThreadPoolExecutor)
    own = executor is None
    workers = (jobs or usable_cores()) if own else max(1, getattr(executor, "_max_workers", 0) or usable_cores())
    win = window or DEFAULT_WINDOW
    count = max(1, min(CHUNK_COUNT, win // (2 * workers)))
    blob = b"" if threads else _pickled(target)
    token = "%d-%d" % (os.getpid(), next(_TOKENS))
    ref: Any = target if threads else (token if own else _Shipped(token, blob))
    pool: Executor = _start_pool(workers, token, blob, fork) if own else executor  # type: ignore[assignment]
    pending: Deque[Tuple[List[_Item], "Future[Any]", int]] = deque()
    in_flight = in_bytes = 0

    def submit(chunk: List[_Item]) -> None:
        nonlocal in_flight, in_bytes
        try:
            fut = pool.submit(work, ref, [task(it) for it in chunk], option)
        except BrokenProcessPool as exc:
            if not own:
                raise
            # The pool broke while earlier work was pending: the chunk goes
            # through the recovery in drain_one with everything else pending.
            fut = Future()
            fut.set_exception(exc)
        size = sum(it.size for it in chunk)
        pending.append((chunk, fut, size))
        in_flight += len(chunk)
        in_bytes += size

    def failed(it: _Item, error: BaseException) -> Tuple[_Item, Any]:
        return it, failed_row(it.index, error)

    ever_ok = False  # whether a worker ever returned work: if not, workers cannot start at all

    def drain_one() -> Iterator[Any]:
        nonlocal in_flight, in_bytes, pool, ever_ok
        chunk, fut, size = pending.popleft()
        try:
            rows = fut.result()
            ever_ok = True
        except BrokenProcessPool:
            if not own:
                raise
            # A worker died (killed, or crashed on a message) and took the
            # pool with it.  Start another and do what was pending again,
            # one message at a time, so that a message that kills a worker
            # is known for sure: it is reported, not retried forever.
            items = list(chunk)
            for c, _, _ in pending:
                items.extend(c)
            pending.clear()
            in_flight = in_bytes = 0
            pool.shutdown(wait=False, cancel_futures=True)
            pool = _start_pool(workers, token, blob, fork)
            for it in items:
                if it.error is not None:
                    yield failed(it, it.error)
                    continue
                try:
                    rows1: List[Any] = pool.submit(work, ref, [task(it)], option).result()
                    row = rows1[0]
                    ever_ok = True
                except BrokenProcessPool:
                    pool.shutdown(wait=False, cancel_futures=True)
                    if not ever_ok:
                        raise WorkerLost(
                            "worker processes end as soon as they start (their error output says why); a "
                            "script that starts them must guard its entry point with "
                            "`if __name__ == \"__main__\":`, or sign with jobs=1") from None
                    pool = _start_pool(workers, token, blob, fork)
                    yield failed(it, WorkerLost("a worker process died while it handled this message"))
                    continue
                yield it, row
            return
        in_flight -= len(chunk)
        in_bytes -= size
        for it, row in zip(chunk, rows):
            yield it, row

    try:
        if total is None and isinstance(messages, Sized):
            total = len(messages)
        for chunk in _chunks(_prepare(messages, threads, sizes), count, total, workers):
            while pending and (in_flight + len(chunk) > win or (
                    max_bytes is not None and in_bytes + sum(it.size for it in chunk) > max_bytes)):
                yield from drain_one()
            error = chunk[0].error
            if len(chunk) == 1 and error is not None:
                done: "Future[Any]" = Future()
                done.set_result([failed_row(chunk[0].index, error)])
                pending.append((chunk, done, 0))
                in_flight += 1
            else:
                submit(chunk)
        while pending:
            yield from drain_one()
    finally:
        for _, fut, _ in pending:
            fut.cancel()
        if own:
            pool.shutdown(wait=True, cancel_futures=True)


_TOKENS = itertools.count()


def _pickled(target: Any) -> bytes:
    try:
        return pickle.dumps(target, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        raise TypeError("the signers or key source must pickle to go to worker processes (%s); "
                        "use jobs=1 or a thread executor" % exc) from None
