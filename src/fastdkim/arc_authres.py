"""The ``arc=`` method of Authentication-Results (RFC 8617 section 10.1,
RFC 8601), for an :class:`~fastdkim.arc_chain.ARCResult`::

    result = fastdkim.arc.verify_chain(message)
    arc_resinfo(result, remote_ip="192.0.2.1")
    # arc=pass (i=2) smtp.remote-ip=192.0.2.1
    arc_authentication_results("mx.example.net", result, dkim=fastdkim.verify(message))
    # Authentication-Results: mx.example.net;
    #     dkim=pass ...;
    #     arc=pass (i=2)

The quoting, reasons and folding are :mod:`fastdkim.authres`'s.
"""
from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Optional, Sequence

from .authres import authentication_results, quote
from .errors import OptionError
from .results import Verification
from ._text import printable

if TYPE_CHECKING:  # pragma: no cover
    from .arc_chain import ARCResult

__all__ = ["arc_resinfo", "arc_authentication_results"]

_STATUSES = ("pass", "fail", "none")
MAX_REASON = 256


def arc_resinfo(result: "ARCResult", *, remote_ip: Optional[str] = None) -> str:
    """The ``arc=`` result of ``result``: the status, the instance count as
    a comment (``(i=2)``), the reason for a failure, ``header.oldest-pass``
    when an older AMS no longer verifies, and ``smtp.remote-ip`` (the
    address the message came from) when given.

    :raises OptionError: ``remote_ip`` is not an IP address, or the status
        is not one of ``pass``, ``fail``, ``none``.
    """
    status = str(result.status)
    if status not in _STATUSES:
        raise OptionError("an ARC result is pass, fail or none, not %r" % status[:40])
    words = ["arc=%s" % status]
    if result.instances:
        words.append("(i=%d)" % result.instances)
    if status == "fail" and result.reason:
        shown = printable(result.reason, ascii_only=True)
        if len(shown) > MAX_REASON:
            shown = shown[:MAX_REASON - 3].rstrip(" ") + "..."
        words.append("reason=" + quote(shown))
    if status == "pass" and result.oldest_pass is not None and result.oldest_pass > 1:
        words.append("header.oldest-pass=%d" % result.oldest_pass)
    if remote_ip is not None:
        try:
            ip = ipaddress.ip_address(remote_ip)
        except ValueError:
            raise OptionError("smtp.remote-ip must be an IP address, got %r" % remote_ip[:80]) from None
        words.append("smtp.remote-ip=%s" % ip.compressed)
    return " ".join(words)


def arc_authentication_results(authserv_id: str, result: "ARCResult", *, dkim: Sequence[Verification] = (),
                               remote_ip: Optional[str] = None, linesep: str = "\n",
                               width: Optional[int] = None) -> str:
    """An ``Authentication-Results`` field with the ``dkim=`` results of
    ``dkim`` (as :func:`fastdkim.authres.authentication_results` writes
    them; none given: no ``dkim=`` result) and then ``arc=`` (see
    :func:`arc_resinfo`), each on a line of its own; without a final line
    break, continuation lines after ``linesep``.

    :raises OptionError: as :func:`~fastdkim.authres.authentication_results`
        and :func:`arc_resinfo`.
    """
    arc = arc_resinfo(result, remote_ip=remote_ip)
    if width is not None and len(arc) + 8 > width:
        arc = arc.replace(" reason=", linesep + "\treason=")
    if not dkim:
        field = authentication_results(authserv_id, [], linesep=linesep, width=width)
        head = field.split(";", 1)[0]  # "Authentication-Results: id", without dkim=none
        return "%s;%s\t%s" % (head, linesep, arc)
    field = authentication_results(authserv_id, dkim, linesep=linesep, width=width)
    return "%s;%s\t%s" % (field, linesep, arc)
