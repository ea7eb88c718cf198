"""A signer that ends its process on a marked message: the stand-in for a
message that crashes a worker, for the bulk engine's recovery tests.  It
lives in a module of its own so that worker processes can import it."""
from __future__ import annotations

import os
from typing import Any

from fastdkim.signing import Signer


class CrashingSigner(Signer):
    def sign(self, message: Any) -> bytes:
        if b"\nX-Crash:" in bytes(message):
            os._exit(70)
        return super().sign(message)
