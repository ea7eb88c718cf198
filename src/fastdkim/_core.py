"""Pick the canonicalization core: compiled (``fastdkim._canon``) or pure Python.

``FASTDKIM_NO_EXTENSIONS=1`` forces the pure core.  ``FASTDKIM_REQUIRE_EXTENSIONS=1``
makes a missing compiled core an ImportError instead of a silent fallback (CI
sets it so that a build that quietly fell back cannot pass).

The rest of the package reaches the core through ``_core.core`` at call time,
so the test suite can run the same tests against both twins (:func:`use`).
"""
from __future__ import annotations

import os
from types import ModuleType
from typing import Optional

from . import _canon_py

_NO_EXT = os.environ.get("FASTDKIM_NO_EXTENSIONS", "") not in ("", "0")
_REQUIRE = os.environ.get("FASTDKIM_REQUIRE_EXTENSIONS", "") not in ("", "0")

compiled: Optional[ModuleType] = None
try:
    from . import _canon as compiled  # type: ignore[no-redef]
except ImportError:
    if _REQUIRE:
        raise
pure: ModuleType = _canon_py

core: ModuleType = pure if (_NO_EXT or compiled is None) else compiled
ACCELERATED: bool = core is compiled


def use(name: str) -> ModuleType:
    """Switch the active core to ``"compiled"`` or ``"pure"`` (for tests and benchmarks).

    :raises ImportError: the compiled core was asked for but is not built.
    """
    global core, ACCELERATED
    if name == "compiled":
        if compiled is None:
            raise ImportError("the compiled core fastdkim._canon is not built")
        core = compiled
    elif name == "pure":
        core = pure
    else:
        raise ValueError("core must be 'compiled' or 'pure'")
    ACCELERATED = core is compiled
    import fastdkim

    fastdkim.ACCELERATED = ACCELERATED
    return core
