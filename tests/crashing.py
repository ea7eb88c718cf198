"""A signer that ends its process on a marked message: the stand-in for a
message that crashes a worker, for the bulk engine's recovery tests.  It
lives in a module of its own so that worker processes can import it."""
from __future__ import annotations

import os

from fastdkim.signing import Signer


class CrashingSigner(Signer):
    def _finish(self, fields, bh, body_len):  # type: ignore[no-untyped-def]
        if any(name == b"x-crash" for name, _ in fields):
            os._exit(70)
        return super()._finish(fields, bh, body_len)
