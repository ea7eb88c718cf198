"""DMARC policy records (RFC 7489 section 6.3): recognizing and parsing them.

A record is a tag-list (the DKIM syntax, RFC 6376 section 3.2) published as
TXT at ``_dmarc.<domain>``, whose first tag is ``v=DMARC1``.  Tag names are
read without regard to case (RFC 7489's grammar spells them as
case-insensitive strings), as are the values of ``p``, ``sp``, ``adkim`` and
``aspf``; unknown tags are ignored.

What makes a record malformed (:class:`~fastdkim.errors.TagSyntaxError`,
which DMARC evaluation reports as ``permerror``): a missing or invalid
``p`` or an invalid ``sp`` without a usable ``rua``.  A spec that is no
tag (no ``=``, an invalid tag name) or that repeats a tag is a syntax error
in the remainder of the record, which section 6.3 has discarded: it is
ignored (the first spec of a tag is read), and :attr:`notes` says so.  Following section 6.6.3, a record whose ``p`` is
missing or invalid, or whose ``sp`` is invalid, but which has at least one
valid ``rua`` URI, is read as ``p=none`` (and ``sp`` as absent).  Invalid
values of the other tags (``adkim``, ``aspf``, ``pct``, and the reporting
tags ``rua``, ``ruf``, ``fo``, ``rf``, ``ri``) are dropped in favour of their
defaults, as section 6.3 asks; :attr:`notes` says what was dropped.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple, Union

from ._canon_py import _TAG_NAME  # (RFC 6376's tag-name, which RFC 7489's records use)
from .errors import TagSyntaxError

__all__ = ["POLICIES", "DMARCRecord", "is_dmarc_record", "parse_dmarc_record"]

#: The values of ``p`` and ``sp``.
POLICIES = ("none", "quarantine", "reject")

_VERSION = re.compile(rb"[ \t]*v[ \t]*=[ \t]*DMARC1[ \t]*(?:;|\Z)", re.IGNORECASE)
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[^\s,!]+(?:![0-9]+[kmgtKMGT]?)?\Z")
_KEYWORD = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\Z")
_MAX_RI = 2 ** 32 - 1


def is_dmarc_record(txt: Union[bytes, str]) -> bool:
    """Whether the TXT record ``txt`` is a DMARC record: its first tag is
    ``v=DMARC1`` (``DMARC1`` in capitals, as the grammar writes it; section
    6.6.3 discards any other record).  Raises nothing."""
    raw = txt.encode("utf-8", "surrogateescape") if isinstance(txt, str) else bytes(txt)
    m = _VERSION.match(raw)
    return m is not None and b"DMARC1" in m.group()


@dataclass(frozen=True)
class DMARCRecord:
    """A parsed DMARC record; defaults as RFC 7489 section 6.3 gives them."""

    #: requested policy for the domain: ``none``, ``quarantine`` or ``reject``
    p: str
    #: requested policy for its subdomains, ``None`` when absent (then ``p`` applies)
    sp: Optional[str] = None
    #: DKIM alignment mode: ``r`` (relaxed) or ``s`` (strict)
    adkim: str = "r"
    #: SPF alignment mode: ``r`` or ``s``
    aspf: str = "r"
    #: percentage of failing messages the policy is to be applied to
    pct: int = 100
    #: aggregate report URIs, as written (with any ``!size``)
    rua: Tuple[str, ...] = ()
    #: failure report URIs
    ruf: Tuple[str, ...] = ()
    #: failure reporting options (``0``, ``1``, ``d``, ``s``)
    fo: Tuple[str, ...] = ("0",)
    #: failure report formats
    rf: Tuple[str, ...] = ("afrf",)
    #: requested aggregate report interval, in seconds
    ri: int = 86400
    #: the record as published
    text: str = ""
    #: values that were invalid and dropped (section 6.3), in words
    notes: Tuple[str, ...] = field(default=(), compare=False)

    def policy_for(self, subdomain: bool) -> str:
        """The policy for the From domain: ``sp`` (or ``p`` when absent) when
        the record was found at the organizational domain of a subdomain,
        ``p`` otherwise."""
        return (self.sp or self.p) if subdomain else self.p

    def as_dict(self) -> Dict[str, Any]:
        """Plain JSON-ready values (the tags, lists for the lists, ``text``)."""
        return {"p": self.p, "sp": self.sp, "adkim": self.adkim, "aspf": self.aspf, "pct": self.pct,
                "rua": list(self.rua), "ruf": list(self.ruf), "fo": list(self.fo), "rf": list(self.rf),
                "ri": self.ri, "text": self.text}


def _uris(value: str, tag: str, notes: List[str]) -> Tuple[str, ...]:
    out = []
    for item in value.split(","):
        uri = item.strip(" \t\r\n")
        if _URI.match(uri):
            out.append(uri)
        else:
            notes.append("%s: %r is not a URI; ignored" % (tag, uri[:80]))
    return tuple(out)


_MAX_NOTES = 10
_FWS = b" \t\r\n"


def _read_tags(raw: bytes, notes: List[str]) -> Dict[str, str]:
    """The tags of the record *raw* by lower-cased name, values decoded.
    A spec that is no tag (no ``=``, an invalid name) or repeats a tag
    already read is a syntax error in the remainder of the record: section
    6.3 has it discarded, so it is left out, and said in *notes* (the first
    of two specs of one tag is the one read).  Raises nothing."""
    tags: Dict[str, str] = {}
    start = len(notes)
    for spec in raw.split(b";"):
        name, eq, value = spec.partition(b"=")
        name = name.strip(_FWS)
        if not eq:
            if name:
                notes.append("%r is not a tag (no '='); ignored" % _shown(name))
            continue
        if not _TAG_NAME.match(name):
            notes.append("%r is not a tag name; %r ignored" % (_shown(name), _shown(spec.strip(_FWS))))
            continue
        key = name.decode("ascii").lower()
        if key in tags:
            notes.append("a second %s= (names compared without regard to case); the first is read" % key)
            continue
        tags[key] = value.strip(_FWS).decode("utf-8", "replace")
    if len(notes) - start > _MAX_NOTES:  # (a record of junk says so without a note per spec)
        dropped = len(notes) - start - _MAX_NOTES
        del notes[start + _MAX_NOTES:]
        notes.append("and %d more specs ignored" % dropped)
    return tags


def _shown(b: bytes) -> str:
    text = b.decode("utf-8", "replace")
    return text if len(text) <= 40 else text[:40] + "..."


def parse_dmarc_record(txt: Union[bytes, str]) -> DMARCRecord:
    """Parse a DMARC record (the TXT value, as ``bytes`` or ``str``).

    :raises TagSyntaxError: the record is not a DMARC record, or is malformed
        (see the module documentation).
    """
    raw = txt.encode("utf-8", "surrogateescape") if isinstance(txt, str) else bytes(txt)
    text = raw.decode("utf-8", "replace")
    if not is_dmarc_record(raw):
        raise TagSyntaxError("not a DMARC record (the first tag must be v=DMARC1): %r" % text[:80])
    notes: List[str] = []
    tags = _read_tags(raw, notes)

    rua = _uris(tags["rua"], "rua", notes) if "rua" in tags else ()
    ruf = _uris(tags["ruf"], "ruf", notes) if "ruf" in tags else ()

    p = tags.get("p", "").lower()
    sp = tags["sp"].lower() if "sp" in tags else None
    if p not in POLICIES or (sp is not None and sp not in POLICIES):
        problem = ("p= is missing" if "p" not in tags else "p=%s is not none, quarantine or reject" % tags["p"]
                   if p not in POLICIES else "sp=%s is not none, quarantine or reject" % tags["sp"])
        if not rua:
            raise TagSyntaxError("DMARC record: %s" % problem)
        notes.append("%s; read as p=none, as the record has a rua (RFC 7489 section 6.6.3)" % problem)
        p, sp = "none", None

    # Section 6.3: "Syntax errors in the remainder of the record SHOULD be
    # discarded in favor of default values (if any) or ignored outright."
    modes = {}
    for tag in ("adkim", "aspf"):
        mode = tags.get(tag, "r").lower()
        if mode not in ("r", "s"):
            notes.append("%s=%s is neither r (relaxed) nor s (strict); the default r applies" % (tag, tags[tag]))
            mode = "r"
        modes[tag] = mode

    pct = 100
    if "pct" in tags:
        v = tags["pct"]
        if v.isascii() and v.isdigit() and len(v) <= 3 and int(v) <= 100:
            pct = int(v)
        else:
            notes.append("pct=%s is not a whole number from 0 to 100; the default 100 applies" % v)

    fo: Tuple[str, ...] = ("0",)
    if "fo" in tags:
        opts = tuple(o.strip(" \t\r\n") for o in tags["fo"].split(":"))
        if all(o in ("0", "1", "d", "s") for o in opts):
            fo = opts
        else:
            notes.append("fo=%s is not a list of 0, 1, d, s; the default 0 applies" % tags["fo"])
    rf: Tuple[str, ...] = ("afrf",)
    if "rf" in tags:
        formats = tuple(f.strip(" \t\r\n").lower() for f in tags["rf"].split(":"))
        if all(_KEYWORD.match(f) for f in formats):
            rf = formats
        else:
            notes.append("rf=%s is not a list of formats; the default afrf applies" % tags["rf"])
    ri = 86400
    if "ri" in tags:
        v = tags["ri"]
        if v.isascii() and v.isdigit() and int(v) <= _MAX_RI:
            ri = int(v)
        else:
            notes.append("ri=%s is not a number of seconds; the default 86400 applies" % v)

    return DMARCRecord(p=p, sp=sp, adkim=modes["adkim"], aspf=modes["aspf"], pct=pct, rua=rua, ruf=ruf,
                       fo=fo, rf=rf, ri=ri, text=text, notes=tuple(notes))
