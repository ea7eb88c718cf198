"""Signing on a Dask cluster: many machines, each signing with :func:`~fastdkim.bulk.sign_many`.

Needs the ``dask`` extra (``pip install 'fastdkim[dask]'``: ``dask[bag]`` and
``distributed``), and the same fastdkim version on every worker.

* :func:`sign_bag` signs a :class:`dask.bag.Bag` of messages into a bag of
  :class:`~fastdkim.bulk.SignResult` (each holding the signed message, or
  the message unchanged with the reason it could not be signed).
* :func:`sign_files` signs files on shared storage into an output directory.

The signers (or the policy) go to each worker once: they are part of the task
graph as one piece of data, which Dask sends to a worker the first time one
of its tasks needs it and keeps there.  A policy can also be given as the
path of its TOML file on storage every worker sees (:class:`PolicyFile`):
then no key travels over the network at all, each worker loads the file once.

Output files are named after their input (the same path relative to the
inputs' common directory) and written through a temporary file and a rename
(as :func:`fastdkim.bulk.sign_files_into` writes them), so a task that Dask
runs again after a worker died writes the same files again: nothing is lost,
nothing is duplicated.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from . import bulk
from .policy import SigningPolicy
from .signing import Signer

__all__ = ["sign_bag", "sign_files", "PolicyFile", "SignFilesSummary"]


class PolicyFile:
    """A signing policy given by the path of its TOML file, loaded where it is
    used (once per process): for clusters whose workers share storage, so
    that keys are read there and never sent over the network.

    :param path: the policy file, at the same path on every worker.
    :param password: password of encrypted key files (travels with the tasks).
    """

    def __init__(self, path: Union[str, "os.PathLike[str]"], password: Optional[bytes] = None) -> None:
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError("PolicyFile: path must be a str or path, not %s" % type(path).__name__)
        self.path = os.path.abspath(os.fspath(path))
        self.password = password

    def load(self) -> SigningPolicy:
        """The policy (loaded on first use in this process).

        :raises PolicyError: see :meth:`SigningPolicy.from_file`.
        """
        key = (self.path, self.password)
        with _LOADED_LOCK:
            policy = _LOADED.get(key)
            if policy is None:
                policy = _LOADED[key] = SigningPolicy.from_file(self.path, password=self.password)
        return policy

    def sign(self, message: Any) -> bytes:
        headers: bytes = self.load().sign(message)
        return headers

    def __repr__(self) -> str:
        return "PolicyFile(%r)" % self.path


_LOADED: Dict[Tuple[str, Optional[bytes]], SigningPolicy] = {}
_LOADED_LOCK = threading.Lock()


def _dask() -> Tuple[Any, Any]:
    """Dask's ``delayed`` and ``compute`` (imported when first needed: Dask is an optional extra)."""
    try:
        from dask.base import compute
        from dask.delayed import delayed
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ImportError("fastdkim.dask needs Dask: pip install 'fastdkim[dask]' (%s)" % exc) from None
    return delayed, compute


def _target(signer: Any) -> Any:
    if isinstance(signer, PolicyFile):
        return signer
    return bulk._sign_target(signer)


_WORKER_CHECKED = False


def _share_cores() -> None:
    """Once per process, on a ``distributed`` worker that runs fewer task
    threads than its host's cores (other worker processes take the rest, as
    clusters are sized): large relaxed bodies are hashed on the task's own
    thread.  A second hashing thread would take a core another worker runs
    on, which the compiled core's count of the cores in use, per process,
    cannot see.  ``FASTDKIM_HASH_THREAD`` set in the worker's environment
    decides instead, and a worker that has a thread per core keeps that count."""
    global _WORKER_CHECKED
    if _WORKER_CHECKED:
        return
    _WORKER_CHECKED = True
    import sys

    if "distributed" not in sys.modules or os.environ.get("FASTDKIM_HASH_THREAD") is not None:
        return
    from distributed import get_worker

    try:
        worker = get_worker()
    except ValueError:  # Dask's local schedulers run tasks in this process: its count sees them
        return
    nthreads = getattr(getattr(worker, "state", None), "nthreads", None) or getattr(worker, "nthreads", None)
    from ._engine import usable_cores

    if isinstance(nthreads, int) and nthreads < usable_cores():
        from ._work import hash_on_own_thread

        hash_on_own_thread()


def _sign_partition(items: Iterable[Any], target: Any, include_message: bool) -> List[bulk.SignResult]:
    _share_cores()
    if isinstance(target, PolicyFile):
        target = target.load()
    return list(bulk.sign_many(items, target, jobs=1, include_message=include_message))


def sign_bag(bag: Any, signer: Union[Signer, Sequence[Signer], SigningPolicy, PolicyFile], *,
             include_message: bool = True) -> Any:
    """Sign every message of ``bag`` (bytes, paths on shared storage, or
    ``(key, message)`` pairs).

    :returns: a bag of :class:`~fastdkim.bulk.SignResult`, one per element
        and in the same partitions and order; ``index`` counts within a
        partition, so give ``(key, message)`` pairs to tell results apart.
    :raises TypeError: ``bag`` is not a Dask bag, or ``signer`` is of the
        wrong type.
    """
    delayed, _ = _dask()
    from dask.bag import Bag

    if not isinstance(bag, Bag):
        raise TypeError("sign_bag: bag must be a dask.bag.Bag, not %s" % type(bag).__name__)
    target = delayed(_target(signer), pure=True, traverse=False)
    b: Any = bag
    return b.map_partitions(_sign_partition, target, bool(include_message))


@dataclass
class SignFilesSummary:
    """What :func:`sign_files` did: ``outputs`` maps each input path to its
    output path; ``unsigned`` maps the inputs written out unchanged (or not
    at all, when unreadable) to the reason."""

    total: int = 0
    signed: int = 0
    outputs: Dict[str, str] = field(default_factory=dict)
    unsigned: Dict[str, str] = field(default_factory=dict)


def _output_names(paths: Sequence[str], out_dir: str, root: Optional[str]) -> List[Tuple[str, str]]:
    srcs = [os.path.abspath(os.fspath(p)) for p in paths]
    if root is None:
        root = os.path.commonpath([os.path.dirname(s) for s in srcs]) if srcs else "."
    root = os.path.abspath(root)
    out_dir = os.path.abspath(out_dir)
    pairs = []
    for s in srcs:
        rel = os.path.relpath(s, root)
        if rel.startswith(os.pardir + os.sep) or rel == os.pardir:
            raise ValueError("%s is not under the root directory %s" % (s, root))
        dst = os.path.join(out_dir, rel)
        if os.path.exists(dst) and os.path.samefile(dst, s):
            raise ValueError("the output for %s would be the input itself" % s)
        pairs.append((s, dst))
    return pairs


def _sign_files_task(pairs: Sequence[Tuple[str, str]], target: Any) -> List[Tuple[str, str, bool, str]]:
    """One task: its files signed here, under the write rules of
    :func:`fastdkim.bulk.sign_files_into` (one flush of the task's outputs
    before they are renamed into place, not one per file)."""
    _share_cores()
    if isinstance(target, PolicyFile):
        target = target.load()
    rows = []
    for r in bulk.sign_files_into(pairs, target, jobs=1, overwrite=True):
        reason = r.reason if r.written or r.error is None else "I/O error: %s" % r.reason
        rows.append((r.src, r.dst, r.ok, reason))
    return rows


def sign_files(
    paths: Iterable[Union[str, "os.PathLike[str]"]],
    signer: Union[Signer, Sequence[Signer], SigningPolicy, PolicyFile],
    out_dir: Union[str, "os.PathLike[str]"],
    *,
    client: Any = None,
    root: Optional[str] = None,
    per_task: int = 256,
) -> SignFilesSummary:
    """Sign the message files ``paths`` into ``out_dir`` on a Dask cluster.

    Each output is ``out_dir`` joined with the input's path relative to
    ``root`` (default: the inputs' common directory), written through a
    temporary file and renamed into place, with the input's permissions.  A
    message that cannot be signed is written out unchanged and reported.
    Running it again, or Dask running a task again after a worker died,
    replaces outputs with freshly signed copies: never a second copy.

    :param client: a :class:`distributed.Client`; default: the current client
        if there is one, else Dask's default scheduler on this machine.
    :param per_task: messages per task.
    :raises ValueError: an input outside ``root``, or an input that would be
        its own output.
    :raises TypeError: ``signer`` of the wrong type.
    """
    delayed, compute = _dask()
    if not isinstance(per_task, int) or isinstance(per_task, bool) or per_task < 1:
        raise ValueError("per_task must be a positive int")
    seen = set()
    unique = []
    for p in paths:
        real = os.path.realpath(os.fspath(p))
        if real not in seen:  # each file once, however often it is named
            seen.add(real)
            unique.append(os.fspath(p))
    pairs = _output_names(unique, os.fspath(out_dir), root)
    target = delayed(_target(signer), pure=True, traverse=False)
    tasks = [delayed(_sign_files_task, pure=False)(pairs[i:i + per_task], target)
             for i in range(0, len(pairs), per_task)]
    if client is not None:
        rows = client.gather(client.compute(tasks))
    else:
        rows = compute(*tasks)
    summary = SignFilesSummary()
    for chunk in rows:
        for src, dst, ok, reason in chunk:
            summary.total += 1
            summary.outputs[src] = dst
            if ok:
                summary.signed += 1
            else:
                summary.unsigned[src] = reason
    # Temporary files of workers that died mid-write are removed (only those
    # whose process is gone).
    from ._owner import sweep_temporaries

    for d in {os.path.dirname(dst) for _, dst in pairs}:
        try:
            sweep_temporaries(d)
        except OSError:
            pass
    return summary
