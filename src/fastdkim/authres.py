"""Authentication-Results header fields (RFC 8601) for DKIM results.

::

    results = fastdkim.verify(message)
    field = authentication_results("mx.example.net", results)
    # Authentication-Results: mx.example.net;
    #     dkim=pass header.d=example.com header.s=sel header.a=rsa-sha256 header.b=Qx7a0Fz1
"""
from __future__ import annotations

import re
from typing import Sequence

from ._text import printable
from .errors import OptionError
from .verification import Verification

__all__ = ["authentication_results", "is_authserv_id"]

# An authserv-id (RFC 8601 section 2.2): a value written as a token.
_AUTHSERV_ID = re.compile(r"[A-Za-z0-9!#$%&'*+\-.^_`{|}~]+\Z")


def is_authserv_id(text: str) -> bool:
    """Whether ``text`` can be written as an authserv-id (RFC 8601 section
    2.2) without quoting: a host name such as ``mx.example.net``."""
    return bool(_AUTHSERV_ID.match(text))


def _safe_value(value: str) -> bool:
    """A property value that needs no quoting or escaping."""
    return all(c.isascii() and c.isprintable() and c not in ' ;()"\\' for c in value)


def authentication_results(authserv_id: str, results: Sequence[Verification], *, linesep: str = "\n") -> str:
    """An ``Authentication-Results`` field for the DKIM ``results`` of one message.

    One ``dkim=`` result per signature, in order, with its reason (as a
    quoted string, in ASCII: anything else escaped) and the ``header.d``,
    ``header.i``, ``header.s`` and ``header.a`` properties whose values need
    no quoting, plus the first 8 characters of ``b=`` as ``header.b`` (RFC
    6008).  Without results (a message without signatures): ``dkim=none``.

    The field has no final line break; continuation lines start with a tab
    after ``linesep`` (``"\\r\\n"`` to prepend the field to a message in wire
    form).

    :raises OptionError: ``authserv_id`` is not a valid authserv-id (see
        :func:`is_authserv_id`).
    """
    if not is_authserv_id(authserv_id):
        raise OptionError("not an authserv-id: %r (a host name such as mx.example.net)" % authserv_id)
    if not results:
        return "Authentication-Results: %s; dkim=none" % authserv_id
    parts = []
    for r in results:
        p = "dkim=%s" % r.status
        if r.reason:
            p += ' reason="%s"' % printable(r.reason, ascii_only=True).replace("\\", "\\\\").replace('"', '\\"')
        for prop, val in (("header.d", r.domain), ("header.i", r.identity), ("header.s", r.selector),
                          ("header.a", r.algorithm)):
            if val and _safe_value(val):
                p += " %s=%s" % (prop, val)
        b = (r.tags.get("b") or "").replace(" ", "").replace("\t", "").replace("\r", "").replace("\n", "")
        if len(b) >= 8 and all(c.isalnum() or c in "+/=" for c in b[:8]):
            p += " header.b=%s" % b[:8]  # RFC 6008
        parts.append(p)
    fold = ";" + linesep + "\t"
    return "Authentication-Results: %s%s%s" % (authserv_id, fold, fold.join(parts))
