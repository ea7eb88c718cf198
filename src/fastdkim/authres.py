"""Authentication-Results header fields (RFC 8601) for DKIM and DMARC results.

::

    results = fastdkim.verify(message)
    field = authentication_results("mx.example.net", results, width=78)
    # Authentication-Results: mx.example.net;
    #     dkim=pass reason="signature verified" header.d=example.com
    #     header.s=sel header.a=rsa-sha256 header.b=Qx7a0Fz1

    # with DMARC (fastdkim.dmarc; the SPF result is the caller's):
    outcome = fastdkim.dmarc.evaluate(message, results, spf_result="pass", spf_domain="example.com")
    field = authentication_results("mx.example.net", results, dmarc=outcome, width=78)

    # prepended to the message, earlier fields claiming mx.example.net removed:
    stamped = add_authentication_results(message, field, "mx.example.net")

Reading fields back: :func:`parse_authentication_results` (from
:mod:`fastdkim.authres_parse`); prepending them to messages and files:
:func:`add_authentication_results` and friends (from
:mod:`fastdkim.authres_insert`).  All are importable from here.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, List, Optional, Sequence, Tuple

from ._text import printable, to_a_label_domain
from .authres_insert import (
    add_authentication_results,
    claims_authserv_id,
    write_file_with_authentication_results,
    write_with_authentication_results,
)
from .authres_parse import AuthenticationResults, MethodResult, Property, parse_authentication_results
from .dmarc_record import POLICIES
from .errors import AuthResError, OptionError
from .results import Verification

if TYPE_CHECKING:  # pragma: no cover
    from .arc_chain import ARCResult
    from .dmarc import DMARCResult

__all__ = [
    "AuthResError",
    "AuthenticationResults",
    "MethodResult",
    "Property",
    "add_authentication_results",
    "authentication_results",
    "claims_authserv_id",
    "header_b_values",
    "is_authserv_id",
    "parse_authentication_results",
    "pvalue",
    "quote",
    "write_file_with_authentication_results",
    "write_with_authentication_results",
]

# An authserv-id (RFC 8601 section 2.2): a value written as a token.
_AUTHSERV_ID = re.compile(r"[A-Za-z0-9!#$%&'*+\-.^_`{|}~]+\Z")
_TOKEN_CHARS = r"[A-Za-z0-9!#$%&'*+\-.^_`{|}~]"  # RFC 2045 token
_LABEL_CHARS = r"[A-Za-z0-9!#$%&'*+\-^_`{|}~]"  # the same, without the dot
_TOKEN_VALUE = re.compile(_TOKEN_CHARS + r"+\Z")
_ADDRESS_VALUE = re.compile(_TOKEN_CHARS + "*@" + _LABEL_CHARS + r"+(?:\." + _LABEL_CHARS + r"+)*\Z")
_BASE64 = re.compile(r"[A-Za-z0-9+/=]+\Z")
_WSP = re.compile(r"[ \t\r\n]+")
# A result or policy word (RFC 8601 ``Keyword``, RFC 5321 Ldh-str).
_KEYWORD = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\Z")
#: What RFC 6008 asks ``header.b`` to hold at least.
HEADER_B_MIN = 8
#: The longest ``header.b``: signatures that share more of their ``b=`` were
#: made to look alike, and get none.
HEADER_B_MAX = 64
#: The longest reason written, in characters of its escaped (ASCII) form; a
#: longer one is cut there and ends in ``...``.
MAX_REASON = 256
#: The longest property value written; longer ones (only in a malformed
#: signature) are left out.
MAX_VALUE = 320
#: RFC 5322 section 2.1.1: no line longer than this, folded or not.
MAX_LINE = 998
#: A continuation line's leading tab, counted as the columns it takes on a terminal.
_TAB = 8


def is_authserv_id(text: str) -> bool:
    """Whether ``text`` can be written as an authserv-id (RFC 8601 section
    2.2) without quoting: a host name such as ``mx.example.net`` (at most
    255 characters, as a domain name)."""
    return len(text) <= 255 and bool(_AUTHSERV_ID.match(text))


def _safe_value(value: str) -> bool:
    """A property value that can be written as it is (RFC 8601 ``pvalue``):
    a token, or ``[local-part]@domain`` of token characters, of at most
    :data:`MAX_VALUE` characters."""
    return len(value) <= MAX_VALUE and bool(_TOKEN_VALUE.match(value) or _ADDRESS_VALUE.match(value))


def pvalue(value: str) -> str:
    """``value`` as an RFC 8601 property value (``pvalue``): as it is where
    it is a token or ``[local-part]@domain`` (:func:`_safe_value`), else as a
    quoted string (:func:`quote`), as an IPv6 address or a ``header.b``
    holding ``/`` or ``=`` must be written (RFC 2045 tspecials).  Raises
    nothing."""
    return value if _safe_value(value) else quote(value)


def _keyword(value: object, what: str) -> str:
    """``value`` as a result or policy word.

    :raises OptionError: it is not one (a word such as ``pass``: letters,
        digits and inner hyphens), which would let it write anything into
        the field.
    """
    text = str(value)
    if not _KEYWORD.match(text):
        raise OptionError("%s must be a word such as pass, got %r" % (what, text[:80]))
    return text


def _reason(text: str) -> str:
    """``reason=`` and ``text`` quoted (see :func:`quote`), cut to
    :data:`MAX_REASON` characters of its ASCII form."""
    shown = printable(text, ascii_only=True)
    if len(shown) > MAX_REASON:
        shown = shown[:MAX_REASON - 3].rstrip(" ") + "..."
    return "reason=" + quote(shown)


def quote(text: str) -> str:
    """``text`` as an RFC 5322 quoted string, in ASCII on one line: ``"`` and
    ``\\`` escaped, anything else that is not printable ASCII written as
    ``\\xNN``/``\\uNNNN`` first (see :func:`fastdkim._text.printable`).
    Raises nothing."""
    return '"%s"' % printable(text, ascii_only=True).replace("\\", "\\\\").replace('"', '\\"')


def header_b_values(results: Sequence[Verification]) -> List[Optional[str]]:
    """The ``header.b`` value of each result (RFC 6008): the first 8
    characters of its ``b=``, more where two different signatures share
    them, so that each names one signature; ``None`` where ``b=`` has fewer
    than 8 characters or is not base64, or where telling it from another
    signature would take more than :data:`HEADER_B_MAX` characters.  Raises
    nothing."""
    bs = [_WSP.sub("", r.tags.get("b") or "") for r in results]
    out: List[Optional[str]] = []
    for i, b in enumerate(bs):
        if len(b) < HEADER_B_MIN or not _BASE64.match(b):
            out.append(None)
            continue
        n = HEADER_B_MIN
        for j, other in enumerate(bs):
            if j != i and other != b:
                while n < len(b) and other[:n] == b[:n]:
                    n += 1
        out.append(b[:n] if n <= HEADER_B_MAX else None)
    return out


# -- the pieces of a result, then folded into lines --------------------------------------------

# A result is a list of words; each word says whether it may start a new line
# with a tab (between items: "item") or only with the space it already has
# (inside a quoted string or a comment, where the space is content: "inner").
_Word = Tuple[str, str]


def _item(text: str) -> List[_Word]:
    return [(text, "item")]


def _breakable(text: str) -> List[_Word]:
    """A quoted string or comment, split at its spaces (never before an empty
    word: a continuation line of whitespace alone would end the header)."""
    words: List[_Word] = []
    for i, w in enumerate(text.split(" ")):
        if i == 0:
            words.append((w, "item"))
        elif w and words[-1][0]:
            words.append((w, "inner"))
        else:  # around runs of spaces: kept on one line
            words[-1] = (words[-1][0] + " " + w, words[-1][1])
    return words


def _a_labels(domain: Optional[str]) -> Optional[str]:
    """A ``d=`` written in U-labels as A-labels (the same domain, in the
    ASCII a field can carry); anything else as it is."""
    if domain is None or domain.isascii():
        return domain
    try:
        return to_a_label_domain(domain)
    except ValueError:
        return domain


def _dkim_words(r: Verification, b: Optional[str]) -> List[_Word]:
    words = _item("dkim=%s" % _keyword(r.status, "a DKIM result"))
    if r.reason:
        words += _breakable(_reason(r.reason))
    for prop, val in (("header.d", _a_labels(r.domain)), ("header.i", r.identity), ("header.s", r.selector),
                      ("header.a", r.algorithm)):
        if val and _safe_value(val):
            words += _item("%s=%s" % (prop, val))
    if b is not None:
        words += _item("header.b=%s" % pvalue(b))  # RFC 6008
    return words


def _dmarc_words(d: "DMARCResult", disposition: Optional[str]) -> List[_Word]:
    words = _item("dmarc=%s" % _keyword(d.status, "the DMARC result"))
    rec = d.record
    if rec is not None:
        note = "p=%s" % _keyword(rec.p, "the record's p")
        if rec.sp is not None:
            note += " sp=%s" % _keyword(rec.sp, "the record's sp")
        if rec.pct != 100:
            note += " pct=%d" % int(rec.pct)
        words += _breakable("(%s)" % note)
    if d.reason:
        words += _breakable(_reason(d.reason))
    from_domain = _a_labels(d.from_domain)
    if from_domain and _safe_value(from_domain):
        words += _item("header.from=%s" % from_domain)
    applied = disposition
    if applied is None and d.status == "fail" and d.pct >= 100:
        applied = d.policy  # (with pct under 100, what applies is drawn: the caller's disposition)
    if applied is not None:
        if applied not in POLICIES:
            raise OptionError("a DMARC disposition is none, quarantine or reject, not %r" % str(applied)[:40])
        words += _item("policy.dmarc=%s" % applied)
    return words


def _check_field(authserv_id: str, width: Optional[int]) -> None:
    """:raises OptionError: ``authserv_id`` is not an authserv-id, or ``width``
    is out of range (see :func:`authentication_results`)."""
    if not is_authserv_id(authserv_id):
        raise OptionError("not an authserv-id: %r (a host name such as mx.example.net)" % authserv_id)
    if width is not None and not 20 <= width <= MAX_LINE:
        raise OptionError("width must be from 20 to %d columns, got %r" % (MAX_LINE, width))


def _fold(authserv_id: str, resinfos: List[List[_Word]], linesep: str, width: Optional[int]) -> str:
    """The field with one result per line; with ``width``, longer lines
    folded at the spaces between items (and inside quoted strings and
    comments), each continuation line within ``width`` columns where the
    words allow it (a tab counts 8); without, folded only where a line
    would pass :data:`MAX_LINE` characters."""
    if width is None:
        width = MAX_LINE - _TAB
    parts = ["Authentication-Results: %s;" % authserv_id]
    for n, words in enumerate(resinfos):
        if n + 1 < len(resinfos):
            words = words[:-1] + [(words[-1][0] + ";", words[-1][1])]
        parts.append(linesep + "\t")
        col = _TAB
        for i, (w, kind) in enumerate(words):
            if i == 0:
                pass
            elif col + 1 + len(w) <= width:
                parts.append(" ")
                col += 1
            elif kind == "item":
                parts.append(linesep + "\t")
                col = _TAB
            else:
                parts.append(linesep + " ")
                col = 1
            parts.append(w)
            col += len(w)
    return "".join(parts)


def authentication_results(authserv_id: str, results: Sequence[Verification], *, dmarc: "Optional[DMARCResult]" = None,
                           arc: "Optional[ARCResult]" = None, remote_ip: Optional[str] = None,
                           linesep: str = "\n", width: Optional[int] = None,
                           disposition: Optional[str] = None) -> str:
    """An ``Authentication-Results`` field for the DKIM ``results`` of one
    message, and its DMARC result if given.

    One ``dkim=`` result per signature, in order, with its reason (as a
    quoted string, in ASCII: anything else escaped; cut to
    :data:`MAX_REASON` characters) and the ``header.d``, ``header.i``,
    ``header.s`` and ``header.a`` properties whose values need no quoting
    (and are at most :data:`MAX_VALUE` characters long; a ``d=`` in
    U-labels is written in A-labels), plus ``header.b``,
    the first 8 characters of ``b=`` (RFC 6008; more when two signatures
    share them, see :func:`header_b_values`).
    Without results (a message without signatures): ``dkim=none``.

    ``dmarc`` (a :class:`fastdkim.dmarc.DMARCResult`) adds ``dmarc=`` with
    the record's policy as a comment (``(p=reject sp=none pct=50)``), its
    reason, ``header.from`` and ``policy.dmarc``: the policy applied, as
    the registry of these properties defines it (after ``sp=`` and ``pct=``
    are taken into account): ``disposition`` where given (what
    :meth:`~fastdkim.dmarc.DMARCResult.disposition` returned for the
    message: ``none``, ``quarantine`` or ``reject``); else, for a ``fail``
    whose record has no ``pct=`` below 100, the policy for the From domain
    (``p=``, or ``sp=`` for a subdomain); else none is written (no policy
    applies to ``pass``, ``none``, ``temperror`` or ``permerror``, and a
    ``pct=`` sample is the caller's draw).

    ``arc`` (a :class:`fastdkim.arc_chain.ARCResult`) adds ``arc=`` last (see
    :func:`fastdkim.arc_authres.arc_resinfo`; ``remote_ip`` gives its
    ``smtp.remote-ip``).

    Each result starts a line of its own.  ``width`` (78 is what RFC 5322
    section 2.1.1 recommends) folds longer lines; ``None`` leaves them whole
    up to the 998 characters RFC 5322 allows a line.
    The field has no final line break; continuation lines start with a tab
    (or, inside a quoted string, with the space they fold at) after
    ``linesep`` (``"\\r\\n"`` to prepend the field to a message in wire form).

    :raises OptionError: ``authserv_id`` is not a valid authserv-id (see
        :func:`is_authserv_id`), ``width`` is less than 20 or more than
        :data:`MAX_LINE`, or a result's status (or the DMARC policy) is not
        a word such as ``pass``; ``remote_ip`` is not an IP address;
        ``disposition`` is not ``none``, ``quarantine`` or ``reject``.
    """
    _check_field(authserv_id, width)
    if not results and dmarc is None and arc is None:
        return "Authentication-Results: %s; dkim=none" % authserv_id
    resinfos: List[List[_Word]] = []
    if not results:
        resinfos.append(_item("dkim=none"))
    for r, b in zip(results, header_b_values(results)):
        resinfos.append(_dkim_words(r, b))
    if dmarc is not None:
        resinfos.append(_dmarc_words(dmarc, disposition))
    if arc is not None:
        from .arc_authres import arc_words

        resinfos.append(arc_words(arc, remote_ip=remote_ip))
    return _fold(authserv_id, resinfos, linesep, width)

