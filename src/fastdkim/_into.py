"""Signing message files into place, many at a time: workers sign each file
into a temporary file beside its destination (not flushed), and this process
puts them in place in batches: one flush of the batch's file systems, then
one rename per file, then one flush per directory.  Every output is thus
either absent (or as it was) or complete and signed, whenever the run ends;
the cost of making it durable is paid once a batch, not once a file."""
from __future__ import annotations

import os
import secrets
import time
from collections import deque
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Deque, Generator, Iterable, Iterator, List, Optional, Set, Sized, Tuple, cast

from . import _owner
from ._engine import run
from ._files import FileIdentity, discard, fsync_directory, put_in_place, sync_file_systems
from ._work import _describe, _sign_into_chunk

#: The first batch is put in place after this many files (so that the first
#: outputs appear soon), each next one after twice as many as the one
#: before, up to BATCH_MAX; and a batch never waits longer than BATCH_SECONDS.
BATCH_FIRST = 16
BATCH_MAX = 512
BATCH_SECONDS = 1.0
#: Threads removing the old copies of files replaced in place.
REMOVERS = 4


@dataclass(frozen=True)
class FileResult:
    """What :func:`~fastdkim.bulk.sign_files_into` made of one input file.

    ``signed``: the output holds the signed message.  ``written``: the output
    was written (signed, or unchanged because the message cannot be signed);
    in place, a message that cannot be signed is left as it was and
    ``written`` is false.  ``error`` says why the message was not signed or
    the output not written (``None`` when all went well).  ``size`` is the
    size of the input file.
    """

    index: int
    src: str
    dst: str
    signed: bool = False
    written: bool = False
    error: Optional[BaseException] = None
    size: int = 0

    @property
    def ok(self) -> bool:
        """Whether the output holds the signed message and all went well."""
        return self.signed and self.error is None

    @property
    def reason(self) -> str:
        """Why the message was not signed or not written (``""`` when it was)."""
        return "" if self.error is None else _describe(self.error)


class _Row:
    """One file on its way: a result, and the temporary file to put in place."""

    __slots__ = ("result", "tmp", "final", "folder", "expect")

    def __init__(self, result: FileResult, tmp: Optional[str] = None, final: str = "", folder: str = "",
                 expect: Optional[FileIdentity] = None) -> None:
        self.result, self.tmp, self.final, self.folder, self.expect = result, tmp, final, folder, expect


def _failed(r: FileResult, error: BaseException) -> FileResult:
    return FileResult(r.index, r.src, r.dst, False, False, error, r.size)


class _Batch:
    """Files signed into temporary files, waiting to be put in place together."""

    def __init__(self, overwrite: bool, in_place: bool) -> None:
        self.overwrite, self.in_place = overwrite, in_place
        self.rows: List[_Row] = []
        self.limit = BATCH_FIRST
        self.started = 0.0
        self._remover: Optional[ThreadPoolExecutor] = None

    def add(self, row: _Row) -> bool:
        """Add ``row``; whether the batch is due to be put in place."""
        if not self.rows:
            self.started = time.monotonic()
        self.rows.append(row)
        return len(self.rows) >= self.limit or time.monotonic() - self.started >= BATCH_SECONDS

    def commit(self) -> List[FileResult]:
        """Put the batch in place (signals that would stop the program wait
        until it is done); the results, in order.  Never raises for an I/O
        error: it becomes the result of the files it concerns."""
        from .journal import HoldSignals

        rows, self.rows = self.rows, []
        if not rows:
            return []
        self.limit = min(2 * self.limit, BATCH_MAX)
        with HoldSignals():
            return self._commit(rows)

    def _commit(self, rows: List[_Row]) -> List[FileResult]:
        waiting = [r for r in rows if r.tmp is not None]
        if waiting:
            try:
                sync_file_systems({r.folder for r in waiting})
            except OSError as exc:
                for r in waiting:
                    discard(r.tmp or "")
                    r.tmp, r.result = None, _failed(r.result, exc)
            dirs: Set[str] = set()
            for r in waiting:
                if r.tmp is None:
                    continue
                try:
                    put_in_place(r.tmp, r.final, overwrite=self.overwrite or self.in_place,
                                 expect=r.expect if self.in_place else None, remove=self._remove)
                    dirs.add(r.folder)
                except OSError as exc:
                    r.result = _failed(r.result, exc)
                r.tmp = None
            broken = {}
            for d in dirs:
                try:
                    fsync_directory(d)
                except OSError as exc:
                    broken[d] = exc
            if broken:  # in place, but perhaps not for good
                for r in waiting:
                    problem = broken.get(r.folder)
                    if problem is not None and r.result.error is None:
                        res = r.result
                        r.result = FileResult(res.index, res.src, res.dst, res.signed, res.written, problem, res.size)
        return [r.result for r in rows]

    def _remove(self, old: str) -> None:
        """Remove a replaced file (in place: the old message, left under a
        temporary name by the swap) in the background: freeing its blocks
        can take a while (a file system that discards them at once), and
        nothing waits on it."""
        try:
            if self._remover is None:
                self._remover = ThreadPoolExecutor(REMOVERS, thread_name_prefix="fastdkim-remove")
            self._remover.submit(discard, old)
        except RuntimeError:  # no new thread now (the interpreter is exiting): at once
            discard(old)

    def abandon(self) -> None:
        """Remove the temporary files of a batch that will not be put in
        place, and wait for the removals under way."""
        for r in self.rows:
            if r.tmp is not None:
                discard(r.tmp)
        self.rows = []
        if self._remover is not None:
            self._remover.shutdown(wait=True)
            self._remover = None


def _inputs(pairs: Iterable[Any], in_place: bool, order: Deque[Any], dirs: Set[str]) -> Iterator[Tuple[str, str]]:
    """``(destination, source)`` of each usable input, for the engine; each
    input's place is noted in ``order`` (an engine index, or the result of an
    unusable input), and each new destination directory is swept of the
    temporary files that killed runs left there."""
    n = 0
    seen: Set[str] = set()  # destination directories as given
    for index, item in enumerate(pairs):
        try:
            if in_place:
                if not isinstance(item, (str, bytes, os.PathLike)):
                    raise TypeError("in place, each input must be a path, not %s" % type(item).__name__)
                src = dst = _path(item)
            else:
                if not isinstance(item, tuple) or len(item) != 2:
                    raise TypeError("each input must be a (source, destination) pair of paths, not %s"
                                    % type(item).__name__)
                src, dst = _path(item[0]), _path(item[1])
        except TypeError as exc:
            order.append(FileResult(index, str(item), "", error=exc))
            continue
        given = os.path.dirname(dst)
        if given not in seen:
            seen.add(given)
            d = os.path.dirname(os.path.abspath(dst))
            if d not in dirs:
                dirs.add(d)
                _owner.sweep_temporaries(d)
        order.append((n, index, src, dst))
        n += 1
        yield dst, src


def _path(p: Any) -> str:
    if not isinstance(p, (str, bytes, os.PathLike)):
        raise TypeError("a path must be a str or a path, not %s" % type(p).__name__)
    path = os.fspath(p)
    return os.fsdecode(path) if isinstance(path, bytes) else path


def _failed_row(index: int, error: BaseException) -> Any:
    return index, None, "", False, False, error, None, 0


def files_into(pairs: Iterable[Any], target: Any, jobs: Optional[int], executor: Optional[Executor],
               window: Optional[int], overwrite: bool, in_place: bool,
               fork: bool = False, total: Optional[int] = None) -> Generator[FileResult, None, None]:
    """The work of :func:`fastdkim.bulk.sign_files_into`, for a target
    already checked (a tuple of signers, a policy, or anything that signs
    like one).  ``fork``: workers may be forked from this process (it holds
    no file they must not inherit; see :func:`fastdkim._engine._context`).
    ``total``: how many ``pairs`` there are (at most), where known."""
    if total is None and isinstance(pairs, Sized):
        total = len(pairs)
    order: Deque[Any] = deque()
    dirs: Set[str] = set()
    # The temporary files are named after this process, which puts them in
    # place (a later run removes them only once it is gone, whatever became
    # of the workers), and after this run, whose leftovers are known by name.
    prefix = "%s%s_" % (_owner.temp_prefix(), secrets.token_hex(4))
    rows = cast("Generator[Tuple[Any, Any], None, None]", run(
        _sign_into_chunk, _failed_row, _inputs(pairs, in_place, order, dirs), target, jobs, executor, window,
        (in_place, overwrite, prefix), send_key=True, fork=fork, sizes=False, total=total))
    batch = _Batch(overwrite, in_place)
    done = False
    try:
        for item, (_, tmp, final, signed, written, error, expect, size) in rows:
            while not isinstance(order[0], tuple):  # unusable inputs before this one
                if batch.add(_Row(order.popleft())):
                    yield from batch.commit()
            _, index, src, dst = order.popleft()
            # (a file named without a directory is in the current one)
            folder = (os.path.dirname(final) or os.curdir) if tmp is not None else ""
            if folder:
                dirs.add(folder)
            res = FileResult(index, src, dst, signed, written, error, size)
            if batch.add(_Row(res, tmp, final, folder, expect)):
                yield from batch.commit()
        while order:
            batch.add(_Row(order.popleft()))
        yield from batch.commit()
        done = True
    finally:
        try:
            if not done:
                # Stopped early (an exception, the caller stopping, a signal):
                # what is signed is put in place first.
                batch.commit()
        finally:
            batch.abandon()
            rows.close()  # the workers end (each finishes what it holds)
            # What workers were writing when they ended, or what a worker
            # that died left half written, is this run's to remove.
            for d in dirs:
                _remove_leftovers(d, prefix)


def _remove_leftovers(directory: str, prefix: str) -> None:
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        if name.startswith(prefix):
            discard(os.path.join(directory, name))
