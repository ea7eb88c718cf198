"""Shared fixtures.

Tests that exercise the canonicalization core use the ``core`` fixture
(``pytestmark = pytest.mark.usefixtures("core")``): they run once against the
compiled core and once against the pure-Python twin.  With
``FASTDKIM_REQUIRE_EXTENSIONS=1`` a missing compiled core fails instead of
skipping.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from fastdkim import _core

REQUIRE_EXT = _core.REQUIRE_EXTENSIONS
CONFORMANCE = Path(__file__).resolve().parent.parent.parent / "shared" / "conformance"


@pytest.fixture(params=["compiled", "pure"])
def core(request):
    if request.param == "compiled" and _core.compiled is None:
        if REQUIRE_EXT:
            pytest.fail("FASTDKIM_REQUIRE_EXTENSIONS=1 but the compiled core fastdkim._canon is not built")
        pytest.skip("compiled core fastdkim._canon is not built")
    previous = "compiled" if _core.core is _core.compiled else "pure"
    mod = _core.use(request.param)
    yield mod
    _core.use(previous)


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
