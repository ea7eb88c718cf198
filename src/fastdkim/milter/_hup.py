"""SIGHUPs that come while the milter starts.

A reload asked for before the milter serves (``systemctl reload`` just after
``systemctl start``, a script's ``kill -HUP``) must not end it, as SIGHUP's
default action would: from :func:`defer` on, such signals are counted in
:data:`received`, and the server reloads once it serves (and owns SIGHUP).
"""
from __future__ import annotations

import signal
import threading
from typing import Any, List

__all__ = ["defer", "received", "restore"]

#: the SIGHUPs received since :func:`defer`, before the server took SIGHUP over
received: List[int] = []
_previous: List[Any] = []


def defer() -> None:
    """Count SIGHUPs in :data:`received` from now on (in the main thread; a
    second call changes nothing)."""
    if _previous or not hasattr(signal, "SIGHUP") or threading.current_thread() is not threading.main_thread():
        return
    _previous.append(signal.signal(signal.SIGHUP, lambda signum, frame: received.append(signum)))


def restore() -> None:
    """Give SIGHUP back the action it had before :func:`defer`."""
    if _previous:
        signal.signal(signal.SIGHUP, _previous.pop())
