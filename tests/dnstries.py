"""The tries a DNS lookup makes, for tests about timeouts that must not
measure time.

Each query dnspython's resolver sends goes through ``dns.query.udp`` or
``dns.query.tcp``; :func:`count_tries` wraps both and records, for each try,
the transport, the timeout the resolver gave it and how it ended.  A test
then asserts how many tries a lookup made (a lookup bounded by its timeout
makes one or two; one that ignored it would keep trying), that no try was
given longer than the lookup's timeout, and which tries timed out (waited
for an answer that never came) and which were answered.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Optional

import dns.exception
import dns.query
import pytest


@dataclass
class Try:
    transport: str
    #: the seconds the resolver allowed this try
    timeout: Optional[float]
    #: what the try raised (``None``: it was answered)
    error: Optional[BaseException] = None

    @property
    def timed_out(self) -> bool:
        return isinstance(self.error, dns.exception.Timeout)


class Tries(List[Try]):
    """The tries made since :func:`count_tries`, in order."""

    @property
    def timed_out(self) -> List[Try]:
        return [t for t in self if t.timed_out]

    @property
    def answered(self) -> List[Try]:
        return [t for t in self if t.error is None]

    def longest_timeout(self) -> float:
        return max(t.timeout for t in self if t.timeout is not None)


def count_tries(monkeypatch: pytest.MonkeyPatch) -> Tries:
    """Record every query dnspython sends in this process from now on (until
    ``monkeypatch`` undoes its changes at the end of the test)."""
    tries = Tries()
    for transport in ("udp", "tcp"):
        real = getattr(dns.query, transport)

        def send(*args: Any, _real: Any = real, _transport: str = transport, **kwargs: Any) -> Any:
            t = Try(_transport, kwargs.get("timeout"))
            tries.append(t)
            try:
                return _real(*args, **kwargs)
            except BaseException as exc:
                t.error = exc
                raise

        monkeypatch.setattr(dns.query, transport, send)
    return tries
