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
"""
from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType
from typing import Dict, Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from hypothesis import HealthCheck, settings

from fastdkim import _core

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
