"""Pick the canonicalization core: compiled (``fastdkim._canon``) or pure Python.

``FASTDKIM_NO_EXTENSIONS=1`` forces the pure core.  ``FASTDKIM_REQUIRE_EXTENSIONS=1``
makes a missing compiled core an ImportError instead of a silent fallback (CI
sets it so that a build that quietly fell back cannot pass).
"""
from __future__ import annotations

import os

_NO_EXT = os.environ.get("FASTDKIM_NO_EXTENSIONS", "") not in ("", "0")
_REQUIRE = os.environ.get("FASTDKIM_REQUIRE_EXTENSIONS", "") not in ("", "0")

if _NO_EXT:
    from . import _canon_py as core
    ACCELERATED = False
else:
    try:
        from . import _canon as core  # type: ignore[no-redef]
        ACCELERATED = True
    except ImportError:
        if _REQUIRE:
            raise
        from . import _canon_py as core  # type: ignore[no-redef]
        ACCELERATED = False

BodyCanonicalizer = core.BodyCanonicalizer
BodyHasher = core.BodyHasher
canonicalize_body = core.canonicalize_body
relaxed_header = core.relaxed_header
find_body_start = core.find_body_start
split_header_fields = core.split_header_fields
normalize_line_endings = core.normalize_line_endings

__all__ = [
    "ACCELERATED",
    "BodyCanonicalizer",
    "BodyHasher",
    "canonicalize_body",
    "relaxed_header",
    "find_body_start",
    "split_header_fields",
    "normalize_line_endings",
]
