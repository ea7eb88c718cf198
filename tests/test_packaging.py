"""Packaging: ``python -m build`` makes an sdist with the Cython sources and a wheel
that installs and imports in a fresh virtualenv with the compiled core active.

Slow (it compiles the extension and creates a virtualenv), so it runs where
FASTDKIM_TEST_PACKAGING=1 is set, as CI does.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from conftest import child_env

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(
    os.environ.get("FASTDKIM_TEST_PACKAGING", "") in ("", "0"),
    reason="packaging test runs with FASTDKIM_TEST_PACKAGING=1 (CI sets it)",
)


def _run(cmd, env=None, **kw):
    env = dict(os.environ if env is None else env)
    env.pop("PYTHONPATH", None)  # the fresh environments must see only what they installed
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, **kw)
    assert res.returncode == 0, "%s failed:\n%s\n%s" % (cmd, res.stdout[-3000:], res.stderr[-3000:])
    return res


def _clean_copy(tmp_path: Path) -> Path:
    """The source tree as a fresh checkout has it (no build products, no in-place .so)."""
    import shutil

    dst = tmp_path / "src-copy"
    shutil.copytree(
        ROOT, dst,
        ignore=shutil.ignore_patterns(".git", ".venv*", "build", "dist", "*.so", "*.pyd", "*.egg-info",
                                      "__pycache__", ".hypothesis", ".pytest_cache", ".mypy_cache", ".ruff_cache",
                                      ".benchmarks", "_canon.c"),
    )
    return dst


def test_sdist_and_wheel_build_install_and_import(tmp_path):
    pytest.importorskip("build", reason="the 'build' package is needed (pip install build)")
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "build", "--outdir", str(dist), str(_clean_copy(tmp_path))],
         env=child_env(require_compiled=True))
    sdists = list(dist.glob("fastdkim-*.tar.gz"))
    wheels = list(dist.glob("fastdkim-*.whl"))
    assert len(sdists) == 1 and len(wheels) == 1
    with tarfile.open(sdists[0]) as tf:
        names = tf.getnames()
    assert any(n.endswith("ext/_canon.pyx") for n in names)
    assert any(n.endswith("src/fastdkim/_canon.pyi") for n in names)
    assert not any(n.endswith(".so") for n in names)
    with zipfile.ZipFile(wheels[0]) as zf:
        wnames = zf.namelist()
    assert any(n.startswith("fastdkim/_canon") and n.endswith((".so", ".pyd")) for n in wnames)
    assert {"fastdkim/py.typed", "fastdkim/_canon.pyi"} <= set(wnames)

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)])
    py = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    _run([str(py), "-m", "pip", "install", "-q", str(wheels[0])])
    code = (
        "import fastdkim; assert fastdkim.ACCELERATED, 'compiled core not active';"
        "k = fastdkim.generate_private_key('ed25519');"
        "s = fastdkim.Signer('example.com', 's', k);"
        "m = s.sign_message(b'From: a@example.com\\r\\n\\r\\nhi\\r\\n');"
        "r = fastdkim.verify(m, keys={'s._domainkey.example.com': fastdkim.public_key_record(k)});"
        "assert r[0].status == 'pass', r; print('ok')"
    )
    out = _run([str(py), "-c", code], cwd=str(tmp_path))
    assert out.stdout.strip() == "ok"
    cli = _run([str(venv / "bin" / "fastdkim"), "--version"], cwd=str(tmp_path))
    assert "fastdkim" in cli.stdout


@pytest.mark.parametrize("how", ["FASTDKIM_NO_EXTENSIONS", "no-compiler"])
def test_pure_fallback_install(tmp_path, how):
    """Without a compiler (or when asked) the package installs with the pure core."""
    env = child_env(pure=how == "FASTDKIM_NO_EXTENSIONS")
    if how == "no-compiler":
        env["CC"] = "/bin/false"  # every compile fails, as on a machine without a compiler
        env["LDSHARED"] = "/bin/false"
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)])
    py = venv / "bin" / "python"
    _run([str(py), "-m", "pip", "install", "-q", str(_clean_copy(tmp_path))], env=env, cwd=str(tmp_path))
    out = _run([str(py), "-c", "import fastdkim; print(fastdkim.ACCELERATED)"], env=child_env(), cwd=str(tmp_path))
    assert out.stdout.strip() == "False"
