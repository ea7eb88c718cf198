"""The package type-checks (mypy, strict) and lints clean (ruff): run as tests, so that the
README's test command checks them too.  Skipped where the tools are not installed."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _tool(module: str) -> None:
    try:
        __import__(module)
    except ImportError:
        pytest.skip("%s is not installed (it comes with the test extras: pip install '.[test]')" % module)


def test_mypy_strict_on_the_package():
    _tool("mypy")
    if not (ROOT / "src" / "fastdkim").is_dir():
        pytest.skip("no source tree beside the tests")
    r = subprocess.run([sys.executable, "-m", "mypy", "--no-incremental", "--config-file", str(ROOT / "pyproject.toml")],
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr


def test_ruff_lint():
    _tool("ruff")
    exe = shutil.which("ruff") or "ruff"
    r = subprocess.run([exe, "check", "src", "tests", "benchmarks"], cwd=ROOT, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
