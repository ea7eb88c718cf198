"""DMARC (RFC 7489), the DKIM side: alignment, policy discovery and the result.

::

    results = fastdkim.verify(message)
    outcome = fastdkim.dmarc.evaluate(message, results, spf_result="pass", spf_domain="bounce.example.com")
    outcome.status, outcome.policy, outcome.from_domain   # ('pass', 'reject', 'example.com')

fastdkim does not evaluate SPF (RFC 7208).  A caller that has an SPF result
(from its MTA, or another library) passes it with the domain SPF
authenticated (the MAIL FROM domain, or the HELO name for a null sender);
without one, DMARC rests on DKIM alone.

* Organizational domains (section 3.2) come from the Public Suffix List, as
  the ``publicsuffixlist`` package ships it.  The list changes often;
  refresh it without a new fastdkim release by upgrading that package
  (``pip install -U publicsuffixlist``; its releases follow the list), by
  ``python -m publicsuffixlist.update`` (downloads the current list into the
  package; needs ``requests``), or by pointing :func:`load_public_suffix_list`
  at a copy of ``public_suffix_list.dat`` fetched by other means.
* Alignment (section 3.1): a signature's ``d=``, or the SPF domain, aligns
  strictly when it equals the From domain, relaxed when both have the same
  organizational domain.
* Policy discovery (section 6.6.3): the TXT records at ``_dmarc.<From
  domain>``, else at ``_dmarc.<organizational domain>``, through a key
  source (:mod:`fastdkim.keysources`: the shared DNS source and its cache by
  default; a mapping works for tests).  No record: ``none``; several:
  ``none``; a malformed one: ``permerror``; a DNS failure: ``temperror``.
* The result: ``pass`` when a passing DKIM signature (whose key is not in
  testing mode: RFC 6376 section 3.6.1 has a ``t=y`` domain's mail treated
  as unsigned), or a passing SPF result, aligns with the From domain in the record's modes (``adkim``,
  ``aspf``); else ``temperror`` when an aligned DKIM signature, or an
  aligned SPF domain, had a temporary error (a later attempt may pass: the
  policy is not applied and :meth:`DMARCResult.disposition` is ``none``;
  a receiver should defer such a message, with a 4xx reply, rather than
  deliver it as though it had passed, as for a DNS failure of the policy
  lookup); ``fail`` otherwise.  The policy to apply is the record's ``p``,
  or ``sp`` when the From domain is a subdomain whose record was found at
  its organizational domain; ``pct`` is reported, and applied only by
  :meth:`DMARCResult.disposition`.
* A message without exactly one From field whose addresses all have one
  domain is ``permerror`` (section 6.6.1), as is a malformed header block.
  The From field is read strictly by the RFC 5322 grammar
  (:mod:`fastdkim.dmarc_from`): a field a lenient reader would find some
  domain in (``bob@bank.example evil.example``, ``alice@evil.example
  <bob@bank.example>``) is ``permerror``, not a guess.
"""
from __future__ import annotations

import dataclasses
import inspect
import os
import random
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from ._text import to_a_label_domain
from ._txt import txt_records
from .dmarc_from import author_domain, every_author_domain
from .dmarc_record import POLICIES, DMARCRecord, is_dmarc_record, parse_dmarc_record
from .errors import (
    FromAddressError,
    KeyLookupError,
    MessageFormatError,
    OptionError,
    TagSyntaxError,
    TemporaryLookupError,
)
from .keysources import as_key_source
from .message import MessageInput, read_message
from .results import Verification

__all__ = [
    "DMARCRecord",
    "DMARCResult",
    "SPF_RESULTS",
    "SignatureAlignment",
    "evaluate",
    "evaluate_domain",
    "is_aligned",
    "is_dmarc_record",
    "load_public_suffix_list",
    "organizational_domain",
    "parse_dmarc_record",
]

#: SPF results a caller may pass (RFC 7208 section 2.6).
SPF_RESULTS = ("none", "neutral", "pass", "fail", "softfail", "temperror", "permerror")
#: DMARC results (RFC 7489 section 11.2, RFC 8601 section 2.7).
STATUSES = ("pass", "fail", "none", "temperror", "permerror")

# -- organizational domains -------------------------------------------------------------------

_psl: Any = None
_psl_lock = threading.Lock()


def _suffix_list() -> Any:
    """The Public Suffix List in use, loaded on first use."""
    global _psl
    psl = _psl
    if psl is None:
        with _psl_lock:
            if _psl is None:
                from publicsuffixlist import PublicSuffixList

                _psl = PublicSuffixList()
            psl = _psl
    return psl


def load_public_suffix_list(source: Optional[Union[str, "os.PathLike[str]"]] = None) -> None:
    """Replace the Public Suffix List in use: with the file ``source`` (a
    ``public_suffix_list.dat`` fetched by any means), or, with ``None``,
    with the one the ``publicsuffixlist`` package holds now (read again:
    after ``python -m publicsuffixlist.update``).  Takes effect for every
    thread at once.

    :raises OSError: the file cannot be read.
    :raises OptionError: the file holds no suffix rules.
    """
    global _psl
    from publicsuffixlist import PublicSuffixList

    if source is None:
        psl = PublicSuffixList()
    else:
        with open(os.fspath(source), "rb") as fh:
            data = fh.read()
        if not any(line.strip() and not line.lstrip().startswith(b"//") for line in data.splitlines()):
            raise OptionError("%s holds no public suffix rules" % os.fspath(source))
        psl = PublicSuffixList(data.decode("utf-8", "replace").splitlines())
    with _psl_lock:
        _psl = psl


def organizational_domain(domain: str) -> str:
    """The organizational domain of ``domain`` (RFC 7489 section 3.2): its
    public suffix and one label more (``mail.example.co.uk`` ->
    ``example.co.uk``); a domain that is itself a public suffix is its own.
    Lower case, A-labels.

    :raises OptionError: ``domain`` is not a valid domain name.
    """
    d = to_a_label_domain(domain)
    org = _suffix_list().privatesuffix(d)
    return org if isinstance(org, str) and org else d


def is_aligned(domain: str, from_domain: str, mode: str = "r") -> bool:
    """Whether ``domain`` (a ``d=``, an SPF domain) aligns with the From
    domain: ``mode`` ``"s"`` (strict) when they are equal, ``"r"`` (relaxed)
    when their organizational domains are.  An invalid name aligns with
    nothing.

    :raises OptionError: ``mode`` is neither ``"r"`` nor ``"s"``.
    """
    if mode not in ("r", "s"):
        raise OptionError("alignment mode must be 'r' (relaxed) or 's' (strict), got %r" % (mode,))
    try:
        a, b = to_a_label_domain(domain), to_a_label_domain(from_domain)
    except ValueError:
        return False
    if a == b:
        return True
    return mode == "r" and organizational_domain(a) == organizational_domain(b)


# -- results ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignatureAlignment:
    """A DKIM signature as DMARC sees it: its ``d=``, its result, and whether
    its domain aligns with the From domain strictly and relaxed."""

    domain: str
    selector: Optional[str]
    status: str
    strict: bool
    relaxed: bool
    #: its key record has ``t=y``: the domain is testing DKIM, and RFC 6376
    #: section 3.6.1 has such a message treated as unsigned, so a ``pass``
    #: does not count for DMARC
    testing: bool = False

    def aligned(self, mode: str) -> bool:
        """Aligned in ``mode`` (``"s"`` or ``"r"``)."""
        return self.strict if mode == "s" else self.relaxed

    @property
    def counts(self) -> bool:
        """A ``pass`` DMARC counts: not in testing mode."""
        return self.status == "pass" and not self.testing

    def as_dict(self) -> Dict[str, Any]:
        return {"domain": self.domain, "selector": self.selector, "status": str(self.status),
                "strict": self.strict, "relaxed": self.relaxed, "testing": self.testing}


@dataclass(frozen=True)
class DMARCResult:
    """The DMARC result of one message.

    ``status`` is ``pass``, ``fail``, ``none`` (no record, or several),
    ``temperror`` or ``permerror``; ``reason`` says why in words.
    ``policy`` is the policy published for the From domain (``p``, or ``sp``
    for a subdomain), ``None`` without a usable record.
    """

    status: str
    reason: str
    #: the RFC 5322 From domain (``header.from``), ``None`` when there is none
    from_domain: Optional[str] = None
    organizational_domain: Optional[str] = None
    #: the domain whose ``_dmarc`` record applied
    record_domain: Optional[str] = None
    record: Optional[DMARCRecord] = None
    policy: Optional[str] = None
    #: every DKIM signature with a ``d=``, in order
    dkim: Tuple[SignatureAlignment, ...] = ()
    spf_result: Optional[str] = None
    spf_domain: Optional[str] = None
    #: the SPF domain aligns (in the record's mode, relaxed without a record)
    spf_aligned: bool = False
    #: what the lookups met on their way (a name with no record, an invalid name)
    notes: Tuple[str, ...] = field(default=(), compare=False)

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    @property
    def pct(self) -> int:
        """The record's ``pct`` (100 without a record)."""
        return self.record.pct if self.record is not None else 100

    def disposition(self, draw: Optional[Callable[[], float]] = None) -> str:
        """What to do with the message: ``none`` unless the status is
        ``fail``; then the policy, applied to ``pct`` percent of messages as
        section 6.6.4 says (a message outside the sample gets the next lower
        policy: ``reject`` -> ``quarantine`` -> ``none``).  ``draw`` returns
        a number in [0, 1) (default :func:`random.random`).  Raises nothing."""
        if self.status != "fail" or self.policy is None:
            return "none"
        if self.pct >= 100 or (draw or random.random)() * 100 < self.pct:
            return self.policy
        return POLICIES[max(POLICIES.index(self.policy) - 1, 0)]

    def as_dict(self) -> Dict[str, Any]:
        """The result as plain JSON-ready values, in a fixed order.

        Keys: ``status``, ``reason``, ``header_from``, ``organizational_domain``,
        ``policy``, ``pct``, ``record_domain``, ``record`` (its tags, or
        ``None``), ``dkim`` (one object per signature), ``spf`` (``result``,
        ``domain``, ``aligned``).
        """
        return {
            "status": self.status, "reason": self.reason, "header_from": self.from_domain,
            "organizational_domain": self.organizational_domain, "policy": self.policy, "pct": self.pct,
            "record_domain": self.record_domain, "record": self.record.as_dict() if self.record else None,
            "dkim": [a.as_dict() for a in self.dkim],
            "spf": {"result": self.spf_result, "domain": self.spf_domain, "aligned": self.spf_aligned},
        }

    def __str__(self) -> str:
        return "dmarc=%s header.from=%s policy=%s (%s)" % (
            self.status, self.from_domain or "-", self.policy or "-", self.reason)


# -- discovery ----------------------------------------------------------------------------------


class _Lookup:
    """What policy discovery found: ``status`` ``found`` (with the record's
    text and domain), ``none``, ``temperror`` or ``permerror``."""

    def __init__(self, status: str, reason: str, domain: Optional[str] = None, txt: bytes = b"") -> None:
        self.status, self.reason, self.domain, self.txt = status, reason, domain, txt


def _sync_source(keys: Any) -> Any:
    """``keys`` as a key source this module can call (it looks records up
    synchronously).

    :raises TypeError: ``keys`` is not a key source, or an asynchronous one
        (an :class:`~fastdkim.aio.AsyncDNSKeySource`, whose lookups are
        awaited).
    """
    source = as_key_source(keys)
    if inspect.iscoroutinefunction(getattr(source, "lookup", None)):
        raise TypeError("keys is an asynchronous key source (%s): DMARC evaluation looks records up "
                        "synchronously; give it a DNSKeySource (or None), or run it in a thread"
                        % type(source).__name__)
    return source


def _records_at(source: Any, domain: str, notes: List[str]) -> Union[List[bytes], _Lookup]:
    """The DMARC records at ``_dmarc.<domain>``, or the failure to report."""
    name = "_dmarc." + domain
    try:
        records = txt_records(source.lookup(name))
    except TemporaryLookupError as exc:
        return _Lookup("temperror", "DNS lookup of %s failed: %s" % (name, exc))
    except KeyLookupError as exc:  # a name too long to look up, YXDOMAIN: no record there
        notes.append("%s: %s" % (name, exc))
        return []
    except Exception as exc:  # a broken key source must not crash evaluation
        return _Lookup("temperror", "lookup of %s failed: %s: %s" % (name, type(exc).__name__, exc))
    return [t for t in records if is_dmarc_record(t)]


def _discover(source: Any, from_domain: str, org: str, notes: List[str]) -> _Lookup:
    """Section 6.6.3, steps 1 to 5."""
    for domain in (from_domain, org) if org != from_domain else (from_domain,):
        found = _records_at(source, domain, notes)
        if isinstance(found, _Lookup):
            return found
        if len(found) > 1:
            return _Lookup("none", "%d DMARC records at _dmarc.%s: none applies (RFC 7489 section 6.6.3)"
                           % (len(found), domain), domain)
        if found:
            return _Lookup("found", "", domain, found[0])
        notes.append("no DMARC record at _dmarc.%s" % domain)
    where = "_dmarc.%s" % from_domain + ("" if org == from_domain else " or _dmarc.%s" % org)
    return _Lookup("none", "no DMARC record at %s" % where)


# -- evaluation ---------------------------------------------------------------------------------


def _check_spf(spf_result: Optional[str], spf_domain: Optional[str]) -> Tuple[Optional[str], Optional[str]]:
    if spf_result is None:
        if spf_domain is not None:
            raise OptionError("spf_domain given without spf_result")
        return None, None
    result = str(spf_result).lower()
    if result not in SPF_RESULTS:
        raise OptionError("spf_result must be one of %s, got %r" % (", ".join(SPF_RESULTS), spf_result))
    if spf_domain is None:
        if result == "pass":
            raise OptionError("spf_result 'pass' needs spf_domain (the domain SPF authenticated)")
        return result, None
    try:
        return result, to_a_label_domain(spf_domain)
    except ValueError as exc:
        raise OptionError("spf_domain: %s" % exc) from None


def _signatures(results: Sequence[Verification], from_domain: str, org: str) -> Tuple[SignatureAlignment, ...]:
    out = []
    for r in results:
        if not r.domain:
            continue
        try:
            d = to_a_label_domain(r.domain)
        except ValueError:
            out.append(SignatureAlignment(r.domain, r.selector, str(r.status), False, False, bool(r.testing)))
            continue
        strict = d == from_domain
        out.append(SignatureAlignment(d, r.selector, str(r.status), strict, strict or organizational_domain(d) == org,
                                      bool(r.testing)))
    return tuple(out)


def evaluate_domain(from_domain: str, results: Sequence[Verification], *, spf_result: Optional[str] = None,
                    spf_domain: Optional[str] = None, keys: Any = None) -> DMARCResult:
    """The DMARC result for a message whose RFC 5322 From domain is
    ``from_domain``, given its DKIM ``results`` (:func:`fastdkim.verify`'s)
    and, optionally, the caller's SPF result (fastdkim does not evaluate
    SPF): ``spf_result`` (``pass``, ``fail``, ``softfail``, ``neutral``,
    ``none``, ``temperror``, ``permerror``) for ``spf_domain``.

    ``keys`` is where TXT records come from, as for the verifier (``None``:
    the shared DNS source and its cache; a mapping of name to record; a
    callable; a :class:`~fastdkim.keysources.KeySource`).

    A DNS failure is a ``temperror`` result, never an exception.

    :raises OptionError: an invalid ``from_domain``, an unknown
        ``spf_result``, an invalid ``spf_domain``, ``spf_result="pass"``
        without ``spf_domain``, or ``spf_domain`` without ``spf_result``.
    :raises TypeError: ``keys`` is not a key source.
    """
    spf, spf_dom = _check_spf(spf_result, spf_domain)
    source = _sync_source(keys)
    frm = to_a_label_domain(from_domain)
    org = organizational_domain(frm)
    sigs = _signatures(results, frm, org)
    notes: List[str] = []
    found = _discover(source, frm, org, notes)
    base: Dict[str, Any] = dict(from_domain=frm, organizational_domain=org, dkim=sigs, spf_result=spf,
                                spf_domain=spf_dom)
    if found.status != "found":
        aligned = spf_dom is not None and is_aligned(spf_dom, frm, "r")
        return DMARCResult(found.status, found.reason, record_domain=found.domain, spf_aligned=aligned,
                           notes=tuple(notes), **base)
    assert found.domain is not None
    try:
        record = parse_dmarc_record(found.txt)
    except TagSyntaxError as exc:
        return DMARCResult("permerror", "malformed DMARC record at _dmarc.%s: %s" % (found.domain, exc),
                           record_domain=found.domain, notes=tuple(notes), **base)
    policy = record.policy_for(found.domain != frm)
    spf_aligned = spf_dom is not None and is_aligned(spf_dom, frm, record.aspf)
    mode = {"r": "relaxed", "s": "strict"}
    good = [s for s in sigs if s.counts and s.aligned(record.adkim)]
    if good:
        status, reason = "pass", "DKIM signature d=%s aligned (%s)" % (good[0].domain, mode[record.adkim])
    elif spf == "pass" and spf_aligned:
        status, reason = "pass", "SPF pass for %s aligned (%s)" % (spf_dom, mode[record.aspf])
    else:
        status = "fail"
        why = []
        passing = [s for s in sigs if s.counts]
        testing = [s for s in sigs if s.status == "pass" and s.testing and s.aligned(record.adkim)]
        if passing:
            why.append("DKIM d=%s not aligned (%s)" % (",".join(s.domain for s in passing), mode[record.adkim]))
        elif not testing:
            why.append("no passing DKIM signature")
        if testing:
            why.append("aligned DKIM d=%s passed with a key in testing mode (t=y), which counts as unsigned "
                       "(RFC 6376 section 3.6.1)" % testing[0].domain)
        stuck = [s for s in sigs if s.status == "temperror" and s.aligned(record.adkim)]
        if stuck:
            why.append("aligned DKIM d=%s temperror" % stuck[0].domain)
        if spf is None:
            why.append("no SPF result given")
        elif spf != "pass":
            why.append("SPF %s" % spf)
        else:
            why.append("SPF domain %s not aligned (%s)" % (spf_dom, mode[record.aspf]))
        if stuck or (spf == "temperror" and spf_aligned):
            # An aligned identifier that a later attempt may find passing:
            # no final result (and no policy to apply) until then.
            status = "temperror"
            why.append("a later attempt may pass")
        reason = "; ".join(why)
    return DMARCResult(status, reason, record_domain=found.domain, record=record, policy=policy,
                       spf_aligned=spf_aligned, notes=tuple(notes) + record.notes, **base)


def evaluate(message: MessageInput, results: Sequence[Verification], *, spf_result: Optional[str] = None,
             spf_domain: Optional[str] = None, keys: Any = None) -> DMARCResult:
    """The DMARC result of ``message`` (bytes, or a binary file of which only
    the header block is read) given its DKIM ``results``; see
    :func:`evaluate_domain` for the options.  fastdkim does not evaluate SPF:
    pass the caller's SPF result, or none.

    A From field with addresses in several domains, or several From fields,
    is checked for each domain (at most
    :data:`fastdkim.dmarc_from.MAX_AUTHOR_DOMAINS`), and the failing check
    with the strictest policy is the result (RFC 7489 section 6.6.1; without
    a failing one, the worst of the others): naming a second domain never
    takes a domain's policy away.  A message with no From domain to check
    (no From field, none that parses, too many domains) or with a malformed
    header block (see :func:`fastdkim.message.read_message`) is
    ``permerror``; a DNS failure is ``temperror``: neither raises.

    :raises OptionError: an unknown ``spf_result`` or an invalid
        ``spf_domain`` (see :func:`evaluate_domain`).
    :raises TypeError: ``message`` is neither bytes-like nor a binary file,
        or ``keys`` is not a key source.
    """
    spf, spf_dom = _check_spf(spf_result, spf_domain)
    base: Dict[str, Any] = dict(spf_result=spf, spf_domain=spf_dom)
    try:
        pm = read_message(message)
    except MessageFormatError as exc:
        return DMARCResult("permerror", "unreadable header block: %s" % exc, **base)
    if pm.malformed is not None:
        return DMARCResult("permerror", "From cannot be trusted: %s" % pm.malformed, **base)
    try:
        frm = author_domain(pm.fields)
    except FromAddressError as exc:
        try:
            domains = every_author_domain(pm.fields)
        except FromAddressError as why:
            return DMARCResult("permerror", "no From domain to check (RFC 7489 section 6.6.1): %s; %s"
                               % (exc, why), **base)
        # Several addresses in several domains, or several From fields (which
        # RFC 5322 forbids): each domain is checked, and the strictest policy
        # among the checks that fail applies (RFC 7489 section 6.6.1), so
        # that naming a second domain never takes a policy away.
        each = [evaluate_domain(d, results, spf_result=spf, spf_domain=spf_dom, keys=keys) for d in domains]
        return _strictest(each, str(exc))
    return evaluate_domain(frm, results, spf_result=spf, spf_domain=spf_dom, keys=keys)


#: Which of several results of one message speaks for it when none fails
#: (the first of the worst).
_WORST = ("temperror", "permerror", "none", "pass")


def _strictest(each: Sequence[DMARCResult], why: str) -> DMARCResult:
    """The result of a message checked for each of its From domains: the
    failing check with the strictest policy; without one, the worst of the
    others (a temperror first)."""
    failed = [r for r in each if r.status == "fail"]
    if failed:
        chosen = max(failed, key=lambda r: POLICIES.index(r.policy) if r.policy in POLICIES else -1)
    else:
        chosen = min(each, key=lambda r: _WORST.index(r.status) if r.status in _WORST else 0)
    others = ", ".join("%s %s" % (r.from_domain, r.status) for r in each if r is not chosen)
    return dataclasses.replace(chosen, reason="%s (%s; each From domain checked, RFC 7489 section 6.6.1; %s)"
                               % (chosen.reason, why, others or "no other"))
