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
from typing import TYPE_CHECKING, List, Optional, Sequence, Tuple

from .authres import _breakable, _check_field, _fold, _item, authentication_results, pvalue, quote
from .errors import OptionError
from .results import Verification
from ._text import printable

if TYPE_CHECKING:  # pragma: no cover
    from .arc_chain import ARCResult

__all__ = ["arc_resinfo", "arc_words", "arc_authentication_results"]

_STATUSES = ("pass", "fail", "none")
MAX_REASON = 256


def arc_words(result: "ARCResult", *, remote_ip: Optional[str] = None) -> List[Tuple[str, str]]:
    """The words of the ``arc=`` result of ``result`` (see :func:`arc_resinfo`),
    each with where the folder may break (:mod:`fastdkim.authres`).

    :raises OptionError: as :func:`arc_resinfo`.
    """
    status = str(result.status)
    if status not in _STATUSES:
        raise OptionError("an ARC result is pass, fail or none, not %r" % status[:40])
    words = _item("arc=%s" % status)
    if result.instances:
        words += _breakable("(i=%d)" % result.instances)
    if status == "fail" and result.reason:
        shown = printable(result.reason, ascii_only=True)
        if len(shown) > MAX_REASON:
            shown = shown[:MAX_REASON - 3].rstrip(" ") + "..."
        words += _breakable("reason=" + quote(shown))
    if status == "pass" and result.oldest_pass is not None and result.oldest_pass > 1:
        words += _item("header.oldest-pass=%d" % result.oldest_pass)
    if remote_ip is not None:
        try:
            ip = ipaddress.ip_address(remote_ip)
        except ValueError:
            raise OptionError("smtp.remote-ip must be an IP address, got %r" % remote_ip[:80]) from None
        words += _item("smtp.remote-ip=%s" % pvalue(ip.compressed))  # an IPv6 address is quoted (its colons)
    return words


def arc_resinfo(result: "ARCResult", *, remote_ip: Optional[str] = None) -> str:
    """The ``arc=`` result of ``result``: the status, the instance count as
    a comment (``(i=2)``), the reason for a failure, ``header.oldest-pass``
    when an older AMS no longer verifies, and ``smtp.remote-ip`` (the
    address the message came from) when given.

    :raises OptionError: ``remote_ip`` is not an IP address, or the status
        is not one of ``pass``, ``fail``, ``none``.
    """
    return " ".join(w for w, _ in arc_words(result, remote_ip=remote_ip))


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
    if dkim:
        return authentication_results(authserv_id, dkim, arc=result, remote_ip=remote_ip, linesep=linesep,
                                      width=width)
    _check_field(authserv_id, width)
    return _fold(authserv_id, [arc_words(result, remote_ip=remote_ip)], linesep, width)
