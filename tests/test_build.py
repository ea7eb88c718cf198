"""The compiled core is what ships: check it is built and active where required."""
import os
import subprocess
import sys

import fastdkim
from fastdkim import _core

from conftest import child_env


def test_accelerated_flag_matches_core():
    assert fastdkim.ACCELERATED is (_core.core is _core.compiled)


def test_compiled_core_active_when_required(extensions_required):
    if extensions_required:
        assert _core.compiled is not None, "fastdkim._canon was not built"
        assert fastdkim.ACCELERATED, "compiled core built but not active"


def test_no_extensions_env_forces_pure_core():
    code = "import fastdkim; print(fastdkim.ACCELERATED)"
    out = subprocess.run([sys.executable, "-c", code], env=child_env(pure=True), capture_output=True, text=True,
                         check=True, timeout=120)
    assert out.stdout.strip() == "False"


def test_stub_files_ship_for_compiled_modules():
    pkg = os.path.dirname(fastdkim.__file__)
    assert os.path.exists(os.path.join(pkg, "py.typed"))
    assert os.path.exists(os.path.join(pkg, "_canon.pyi"))
