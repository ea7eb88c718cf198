"""The package type-checks (mypy, strict) and lints clean (ruff): run as tests, so that the
README's test command checks them too.  Skipped where the tools are not installed.

mypy checks the package at every run, incrementally: its cache lives in the
system's temporary directory (one per user and source tree, kept from one run
to the next, out of the source tree), and only modules changed since (and
those that depend on them) are analysed again; a module with errors is never
cached, so its errors are reported at every run.
"""
from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conftest import user_tag

ROOT = Path(__file__).resolve().parent.parent


def _mypy_cache_dir() -> Path:
    """mypy's cache for this source tree, in the temporary directory."""
    tree = hashlib.sha256(str(ROOT).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / ("fastdkim-mypy-cache-%s-%s" % (user_tag(), tree))


def _tool(module: str) -> None:
    try:
        __import__(module)
    except ImportError:
        pytest.skip("%s is not installed (it comes with the test extras: pip install '.[test]')" % module)


def test_mypy_strict_on_the_package():
    _tool("mypy")
    if not (ROOT / "src" / "fastdkim").is_dir():
        pytest.skip("no source tree beside the tests")
    r = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(_mypy_cache_dir()),
                        "--config-file", str(ROOT / "pyproject.toml")],
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr


def test_ruff_lint():
    _tool("ruff")
    exe = shutil.which("ruff") or "ruff"
    r = subprocess.run([exe, "check", "src", "tests", "benchmarks"], cwd=ROOT, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
