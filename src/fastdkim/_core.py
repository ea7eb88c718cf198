"""Pick the canonicalization core: compiled (``fastdkim._canon``) or pure Python.

``FASTDKIM_NO_EXTENSIONS=1`` forces the pure core.  ``FASTDKIM_REQUIRE_EXTENSIONS=1``
makes a missing compiled core an ImportError instead of a silent fallback (CI
sets it so that a build that quietly fell back cannot pass).

The rest of the package reaches the core through ``_core.core`` at call time,
so the test suite can run the same tests against both twins (:func:`use`).
To a type checker ``core`` is the pure twin, whose signatures are the declared
interface of both (``_canon.pyi`` repeats them for the compiled module).
"""
from __future__ import annotations

import os
from types import ModuleType
from typing import TYPE_CHECKING, Optional

from . import _canon_py

__all__ = ["core", "compiled", "pure", "use", "ACCELERATED", "NO_EXTENSIONS", "REQUIRE_EXTENSIONS"]

NO_EXTENSIONS = os.environ.get("FASTDKIM_NO_EXTENSIONS", "") not in ("", "0")
REQUIRE_EXTENSIONS = os.environ.get("FASTDKIM_REQUIRE_EXTENSIONS", "") not in ("", "0")

compiled: Optional[ModuleType] = None
try:
    from . import _canon as compiled
except ImportError:
    if REQUIRE_EXTENSIONS:
        raise
pure: ModuleType = _canon_py

if TYPE_CHECKING:
    from . import _canon_py as core
else:
    core = pure if (NO_EXTENSIONS or compiled is None) else compiled
ACCELERATED: bool = core is compiled


def use(name: str) -> ModuleType:
    """Switch the active core to ``"compiled"`` or ``"pure"`` (for tests and benchmarks).

    :raises ImportError: the compiled core was asked for but is not built.
    :raises ValueError: ``name`` is neither.
    """
    global ACCELERATED
    if name == "compiled":
        if compiled is None:
            raise ImportError("the compiled core fastdkim._canon is not built")
        chosen = compiled
    elif name == "pure":
        chosen = pure
    else:
        raise ValueError("core must be 'compiled' or 'pure'")
    globals()["core"] = chosen
    ACCELERATED = chosen is compiled
    return chosen
