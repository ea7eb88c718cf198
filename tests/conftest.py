"""Shared fixtures, the core switches and the Hypothesis profiles.

The two canonicalization cores.  Tests that exercise the core through the
library use the ``core`` fixture (``pytestmark = pytest.mark.usefixtures("core")``):
they run once against the compiled core and once against the pure-Python twin.
Property tests that compare the two side by side take ``compiled_core`` and
``pure_core``.  ``FASTDKIM_REQUIRE_EXTENSIONS`` is read here only (as
:data:`fastdkim._core.REQUIRE_EXTENSIONS`): with it set, a missing compiled
core fails instead of skipping.  Tests that start a process of their own take
its environment from :func:`child_env`.

Hypothesis profiles, chosen with ``HYPOTHESIS_PROFILE``:

* ``quick`` (the default): enough examples to catch a regression while
  working, in a fraction of the time;
* ``ci``: what continuous integration runs (``.ci/run`` sets it);
* ``thorough``: many more examples, for a run before a release or after a
  change to the compiled core (``HYPOTHESIS_PROFILE=thorough python -m pytest``).

No profile has a deadline: the machine may be busy, and a test must not fail
for being slow.

The suite runs in parallel where pytest-xdist is installed (``-n auto --dist
loadgroup``, set by :func:`pytest_cmdline_main` unless ``-n`` is given;
``-n 0`` runs it in one process).  Tests that share session fixtures that are
costly to make are one ``xdist_group`` (the interop tests, see
:mod:`interop.report`, which also brings the interop matrix of the worker that
ran them to the summary; the Dask tests and their cluster), and the longest
tests are collected first (:data:`LONGEST`).
"""
from __future__ import annotations

import getpass
import os
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any, Dict, Iterator, List

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from hypothesis import HealthCheck, settings

from fastdkim import _core

pytest_plugins = ["interop.report"]


def user_tag() -> str:
    """This user, for names of caches kept in the shared temporary directory."""
    return str(os.getuid()) if hasattr(os, "getuid") else getpass.getuser()


def _keep_bytecode() -> None:
    """Where ``PYTHONDONTWRITEBYTECODE`` is set, every process the tests start
    (each signer the kill harness kills, each pool worker, each parallel
    worker) would compile fastdkim's modules anew: keep the bytecode instead,
    outside the source tree (``PYTHONPYCACHEPREFIX``, in the temporary
    directory), for this process, the processes it starts and the next run.
    Left alone where a prefix is set already or bytecode is written anyway."""
    if not os.environ.get("PYTHONDONTWRITEBYTECODE") or os.environ.get("PYTHONPYCACHEPREFIX"):
        return
    prefix = os.path.join(tempfile.gettempdir(), "fastdkim-pycache-%s" % user_tag())
    os.environ.pop("PYTHONDONTWRITEBYTECODE")
    os.environ["PYTHONPYCACHEPREFIX"] = prefix
    sys.pycache_prefix = prefix
    sys.dont_write_bytecode = False


_keep_bytecode()

REQUIRE_ENV = "FASTDKIM_REQUIRE_EXTENSIONS"
NO_EXTENSIONS_ENV = "FASTDKIM_NO_EXTENSIONS"
#: whether the compiled core must be there (``FASTDKIM_REQUIRE_EXTENSIONS=1``)
REQUIRE_EXT: bool = _core.REQUIRE_EXTENSIONS
CONFORMANCE = Path(__file__).resolve().parent.parent.parent / "shared" / "conformance"

_PROFILE_DEFAULTS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("quick", max_examples=100, **_PROFILE_DEFAULTS)
settings.register_profile("ci", max_examples=200, **_PROFILE_DEFAULTS)
settings.register_profile("thorough", max_examples=1000, **_PROFILE_DEFAULTS)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "quick"))


#: what a worker is told (``workerinput``) when the tests are run with ``--dist loadgroup``
_LOADGROUP = "fastdkim_loadgroup"


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    """In parallel by default, where pytest-xdist is installed: ``-n auto``
    unless ``-n`` is given (``-n 0``: in this process), ``--dist loadgroup``
    unless ``--dist`` is given.

    Set here rather than in ``addopts`` so that the suite also runs (in one
    process) without pytest-xdist, and so that the project's other pytest
    runs (the benchmarks, whose extra has no pytest-xdist) are left alone.
    A worker, which reads the options from the command line, learns that
    the run is ``--dist loadgroup`` from :func:`pytest_configure_node`."""
    opt = config.option
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:  # a worker
        if workerinput.get(_LOADGROUP):
            opt.loadgroup = True  # the worker then marks the grouped tests' node ids for the scheduler
    elif hasattr(opt, "numprocesses"):
        if opt.numprocesses is None:
            opt.numprocesses = "auto"
        if opt.numprocesses and opt.dist == "no":  # no --dist given
            opt.dist = "loadgroup"
    if (workerinput is not None or getattr(opt, "numprocesses", 0)) and getattr(opt, "benchmark_disable", None) is False:
        opt.benchmark_disable = True  # the suite times nothing: no warning that parallel runs cannot


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """(pytest-xdist, in the controlling process) a worker is being started."""
    node.workerinput[_LOADGROUP] = node.config.getoption("dist") == "loadgroup"


#: The tests that take longest, by node id (from ``tests/``) or its start:
#: collected first, so that a parallel run starts them early instead of ending
#: with one worker busy with one of them while the others wait.
LONGEST = (
    "test_packaging.py",
    "test_kill_harness.py",
    "test_bulk.py::test_memory_flat_over_a_long_stream",
    "test_static.py::test_mypy",
)


def pytest_collection_modifyitems(config: pytest.Config, items: List[pytest.Item]) -> None:
    """The :data:`LONGEST` tests first (in that order); the others as collected."""
    def rank(item: pytest.Item) -> int:
        rel = item.nodeid.split("tests/", 1)[-1]
        return next((i for i, start in enumerate(LONGEST) if rel.startswith(start)), len(LONGEST))

    items.sort(key=rank)


def compiled_or_skip() -> ModuleType:
    """The compiled core (``fastdkim._canon``).

    Skips the calling test when it is not built, or fails it when
    ``FASTDKIM_REQUIRE_EXTENSIONS=1`` says it must be.
    """
    if _core.compiled is None:
        msg = "compiled core fastdkim._canon is not built"
        if REQUIRE_EXT:
            pytest.fail("%s=1 but the %s" % (REQUIRE_ENV, msg))
        pytest.skip(msg + "; build it with `python setup.py build_ext --inplace`")
    return _core.compiled


def child_env(*, require_compiled: bool = False, pure: bool = False) -> Dict[str, str]:
    """This process's environment for a child process, with the core switches
    set only as asked: ``FASTDKIM_REQUIRE_EXTENSIONS=1`` with
    ``require_compiled``, ``FASTDKIM_NO_EXTENSIONS=1`` with ``pure``, neither
    otherwise (whatever this process was started with)."""
    env = dict(os.environ)
    env.pop(REQUIRE_ENV, None)
    env.pop(NO_EXTENSIONS_ENV, None)
    if require_compiled:
        env[REQUIRE_ENV] = "1"
    if pure:
        env[NO_EXTENSIONS_ENV] = "1"
    return env


@pytest.fixture(params=["compiled", "pure"])
def core(request: pytest.FixtureRequest) -> Iterator[ModuleType]:
    """Each core in turn, made the active one for the test (the previous one restored after)."""
    if request.param == "compiled":
        compiled_or_skip()
    previous = "compiled" if _core.core is _core.compiled else "pure"
    mod = _core.use(request.param)
    yield mod
    _core.use(previous)


@pytest.fixture(scope="session")
def compiled_core() -> ModuleType:
    """The compiled core, for tests that hold it against the pure twin (the active core is left alone)."""
    return compiled_or_skip()


@pytest.fixture(scope="session")
def pure_core() -> ModuleType:
    """The pure-Python core (``fastdkim._canon_py``), the specification of the compiled one."""
    return _core.pure


@pytest.fixture(scope="session")
def extensions_required() -> bool:
    """Whether ``FASTDKIM_REQUIRE_EXTENSIONS=1`` asks for the compiled core."""
    return REQUIRE_EXT


@pytest.fixture(scope="session")
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def ed_key():
    return ed25519.Ed25519PrivateKey.generate()


@pytest.fixture(scope="session")
def conformance_dir():
    if not (CONFORMANCE / "manifest.json").exists():
        pytest.skip("conformance corpus not found at %s (it lives beside the project in ../shared)" % CONFORMANCE)
    return CONFORMANCE


@pytest.fixture(autouse=True)
def _own_state_directory(tmp_path, monkeypatch):
    """fastdkim's default state directories (journals, and the notes of
    journals elsewhere) are the test's own, not the machine's: what one
    test's killed runs leave there is no other test's business."""
    from fastdkim import journal_location

    own = str(tmp_path / "default-state" / "journals")
    monkeypatch.setattr(journal_location, "SYSTEM_STATE_DIR", own)
    monkeypatch.setattr(journal_location, "_home_of", lambda uid: None)
