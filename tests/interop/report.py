"""The interop matrix in the terminal summary, however the tests are run.

A pytest plugin (``pytest_plugins`` of ``tests/conftest.py``): the session's
:class:`~matrix.Matrix` is kept in the config's stash, filled by the interop
tests (the ``matrix`` fixture of ``conftest.py``) and printed at the end of the
run, whatever the capture settings.  Run in parallel (pytest-xdist), the
interop tests run in worker processes: each worker sends what it filled in to
the controlling process when it ends, and the controlling process prints the
matrix of them all.  The interop tests are one ``xdist_group``, so that one
worker starts the DNS server and signs the corpora once.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List

import pytest

from .matrix import Matrix

MATRIX_KEY = pytest.StashKey[Matrix]()
#: the key of a worker's matrix in what it sends back (``workeroutput``)
WORKER_OUTPUT = "fastdkim_interop_matrix"
GROUP = "interop"
HERE = Path(__file__).resolve().parent


def session_matrix(config: pytest.Config) -> Matrix:
    """The matrix of this session (of this worker, under pytest-xdist)."""
    return config.stash[MATRIX_KEY]


def to_wire(m: Matrix) -> Dict[str, Any]:
    """``m`` as plain lists, dicts and strings (what a worker can send back)."""
    return {
        "cells": [[s, v, list(c)] for (s, v), c in m.cells.items()],
        "deviations": [[s, v, dict(d)] for (s, v), d in m.deviations.items()],
        "unexpected": [[s, v, n] for (s, v), n in m.unexpected.items()],
        "missing": dict(m.missing),
        "algorithms": {p: list(a) for p, a in m.algorithms.items()},
    }


def merge(m: Matrix, wire: Dict[str, Any]) -> None:
    """Add what a worker filled in (:func:`to_wire`) to ``m``."""
    m.cells.update({(s, v): (int(c[0]), int(c[1])) for s, v, c in wire["cells"]})
    m.deviations.update({(s, v): dict(d) for s, v, d in wire["deviations"]})
    m.unexpected.update({(s, v): int(n) for s, v, n in wire["unexpected"]})
    m.missing.update(wire["missing"])
    m.algorithms.update(wire["algorithms"])


def _filled(m: Matrix) -> bool:
    return bool(m.cells or m.missing)


def pytest_configure(config: pytest.Config) -> None:
    config.stash[MATRIX_KEY] = Matrix()


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's worker reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: List[pytest.Item]) -> None:
    """The interop tests share session fixtures (a DNS server, the signed
    corpora): run in parallel, they go to one worker (``--dist loadgroup``)."""
    for item in items:
        if HERE in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.xdist_group(GROUP))


def pytest_sessionfinish(session: pytest.Session) -> None:
    workeroutput = getattr(session.config, "workeroutput", None)  # set in a pytest-xdist worker only
    m = session.config.stash.get(MATRIX_KEY, None)
    if workeroutput is not None and m is not None and _filled(m):
        workeroutput[WORKER_OUTPUT] = to_wire(m)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """(pytest-xdist, in the controlling process) a worker ended: take its matrix."""
    wire = getattr(node, "workeroutput", {}).get(WORKER_OUTPUT)
    if wire:
        merge(session_matrix(node.config), wire)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    m = config.stash.get(MATRIX_KEY, None)
    if m is None or not _filled(m):
        return
    terminalreporter.section("DKIM interop matrix")
    for line in m.format().splitlines():
        terminalreporter.write_line(line)
