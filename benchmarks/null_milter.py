"""A milter that does nothing: it asks for every event a signing milter
needs (each header field, the end of the header block, the body, the end of
the message), answers each with "continue" and the message with "accept".
It is the floor of what any signing milter costs the MTA: the protocol's
round trips and packets on the MTA's side, with no work on this side
beyond libmilter's (C) and the smallest callbacks.

Built on pymilter (Python bindings of Sendmail's libmilter; PyPI
``pymilter``, which needs Debian's ``libmilter-dev`` to build)::

    python benchmarks/null_milter.py inet:8899@127.0.0.1
"""
from __future__ import annotations

import sys
from typing import Any

import Milter


class NullMilter(Milter.Base):
    def header(self, name: str, value: Any) -> int:
        return int(Milter.CONTINUE)

    def eoh(self) -> int:
        return int(Milter.CONTINUE)

    def body(self, chunk: bytes) -> int:
        return int(Milter.CONTINUE)

    def eom(self) -> int:
        return int(Milter.ACCEPT)


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: null_milter.py SOCKET (inet:PORT@HOST or unix:/path)", file=sys.stderr)
        return 2
    Milter.factory = NullMilter
    Milter.set_flags(Milter.ADDHDRS)  # what a signer asks for
    Milter.runmilter("null", sys.argv[1], 240)
    return 0


if __name__ == "__main__":
    sys.exit(main())
