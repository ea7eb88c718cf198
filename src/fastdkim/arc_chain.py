"""ARC chain validation (RFC 8617 section 5.2).

:func:`verify_chain` reads a message's ARC sets (``ARC-Authentication-Results``,
``ARC-Message-Signature``, ``ARC-Seal``), checks their structure, verifies
the most recent ``ARC-Message-Signature`` (AMS), then the older ones (to
find the oldest that still verifies), then every ``ARC-Seal`` (AS), and
returns an :class:`ARCResult`: ``pass``, ``fail`` or ``none`` with a reason.

Two rules are stricter than the letter of RFC 8617, for fields that other
parsers would read differently: an ``i=`` is 1 to 50 in plain digits without
a leading zero (``i=01`` fails), and an AMS whose ``h=`` covers fewer
``From`` fields than the message has fails (a ``From`` put above the signed
one after sealing would otherwise ride on the chain's ``pass``; dkimpy
counts one ``From`` more than ``h=`` names to the same effect).

The tag checks of each AMS and AS are in :mod:`fastdkim.arc_tags`; the key
records are fetched from a DKIM key source and checked as DKIM keys are
(:meth:`fastdkim._checks.Checks.key_from`); bodies and header fields are
canonicalized and hashed by the active core.  A hostile chain (more than 50
instances, duplicates, gaps, malformed or enormous fields) gives ``fail``
with a reason, never an exception; the work is linear in the size of the
header block (each field is parsed once) plus one pass over the body per
distinct body canonicalization.
"""
from __future__ import annotations

import hashlib
import time
import re
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from . import _canon_py, _core
from ._checks import Checks, KeyOutcome, check_time, extra_reason, lookup_failure, shared_checks, signature_outcome
from .authres_parse import _DIGITS, _TOKEN, _Parser
from .arc_tags import AMSTags, ASTags, check_ams, check_as, instance_number, shown
from .errors import AuthResError, MessageFormatError
from .keys import MIN_RSA_BITS, KeyRecord
from .keysources import KeySource, as_key_source
from .message import Header, MessageInput, ParsedMessage, read_message
from .results import PERMERROR, TEMPERROR
from .tags import MAX_H_NAMES

__all__ = ["ARCResult", "ARCSet", "verify_chain", "MAX_INSTANCES", "ARC_FIELDS", "PASS", "FAIL", "NONE"]

PASS, FAIL, NONE = "pass", "fail", "none"

#: The most ARC sets a message may carry (RFC 8617 section 4.2.1).
MAX_INSTANCES = 50

AAR, AMS, AS = b"arc-authentication-results", b"arc-message-signature", b"arc-seal"
#: The names (lower case) of the three ARC header fields, in the order an
#: ARC-Seal covers them within a set.
ARC_FIELDS: Tuple[bytes, bytes, bytes] = (AAR, AMS, AS)

_UNFOLD = re.compile(rb"\r?\n(?=[ \t])")


@dataclass
class ARCSet:
    """What was found and checked for one ARC set (one instance).

    ``ams_status`` and ``seal_status`` are ``pass``, ``fail`` or ``""``
    (not evaluated: the chain failed before that step).
    """

    instance: int
    #: the ARC-Seal's d=, s= and cv= (``None`` where absent or unreadable)
    domain: Optional[str] = None
    selector: Optional[str] = None
    cv: Optional[str] = None
    #: the AMS's d= and s=
    ams_domain: Optional[str] = None
    ams_selector: Optional[str] = None
    ams_status: str = ""
    ams_reason: str = ""
    seal_status: str = ""
    seal_reason: str = ""
    #: the authserv-id of the ARC-Authentication-Results, if readable
    authserv_id: Optional[str] = None

    def as_dict(self) -> Dict[str, Any]:
        """The set as plain JSON-ready values."""
        return {k: getattr(self, k) for k in (
            "instance", "domain", "selector", "cv", "ams_domain", "ams_selector", "ams_status", "ams_reason",
            "seal_status", "seal_reason", "authserv_id")}


@dataclass
class ARCResult:
    """The chain validation status of a message (RFC 8617 section 5.2).

    ``status`` is ``pass``, ``fail`` or ``none`` (no ARC header fields);
    ``reason`` says why in words.  ``instances`` is the highest instance
    found (0 for none).  ``oldest_pass`` is the lowest instance from which
    every AMS up to the most recent one verifies (``instances`` itself when
    only the most recent does, 1 when all do; ``None`` when the chain
    failed before it was determined).  ``temporary`` tells that the
    failure came from a key lookup that may succeed later.
    """

    status: str
    reason: str
    instances: int = 0
    oldest_pass: Optional[int] = None
    temporary: bool = False
    sets: List[ARCSet] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.status == PASS

    @property
    def cv(self) -> str:
        """The ``cv=`` value a sealer writes on top of this chain (RFC 8617
        section 5.1: the chain validation status itself)."""
        return self.status

    def as_dict(self) -> Dict[str, Any]:
        """The result as plain JSON-ready values, in a fixed order."""
        return {"status": self.status, "reason": self.reason, "instances": self.instances,
                "oldest_pass": self.oldest_pass, "temporary": self.temporary,
                "sets": [s.as_dict() for s in self.sets]}

    def __str__(self) -> str:
        return "arc=%s i=%d (%s)" % (self.status, self.instances, self.reason)


class _Instance:
    """The fields of one instance as found, each kind in a list (a valid
    chain has exactly one of each)."""

    __slots__ = ("found", "ams", "seal", "outcome")

    def __init__(self, n: int) -> None:
        self.found: Dict[bytes, List[bytes]] = {AAR: [], AMS: [], AS: []}
        self.ams: Optional[AMSTags] = None
        self.seal: Optional[ASTags] = None
        self.outcome = ARCSet(n)


class Chain:
    """The ARC sets of one message, read and checked for structure.

    :attr:`result` is set when the chain is settled without keys or body
    (``none``, or ``fail`` for a structural problem); otherwise
    :meth:`body_keys` says which body hashes the AMS need and :meth:`verify`
    completes the validation.  :attr:`top` is the highest instance number
    found (0 when none could be read), for a sealer to number the next set.
    """

    def __init__(self, fields: Sequence[Header], malformed: Optional[str] = None,
                 max_header_names: int = MAX_H_NAMES) -> None:
        self.fields = fields
        self.result: Optional[ARCResult] = None
        self.top = 0
        self.top_cv: Optional[str] = None
        self.instances: Dict[int, _Instance] = {}
        #: how many From fields the message has (an AMS must cover them all)
        self.from_fields = 0
        self._read(malformed, max_header_names)

    def _fail(self, reason: str) -> None:
        self.result = ARCResult(FAIL, reason, self.top, sets=[self.instances[n].outcome
                                                              for n in sorted(self.instances)])

    def _read(self, malformed: Optional[str], max_header_names: int) -> None:
        arc = [(name, raw) for name, raw in self.fields if name in ARC_FIELDS]
        self.from_fields = sum(1 for name, _ in self.fields if name == b"from")
        if not arc:
            self.result = ARCResult(NONE, "no ARC header fields")
            return
        problems: List[str] = []
        for name, raw in arc:
            n = self._instance_of(name, raw, problems)
            if n is None:
                continue
            inst = self.instances.get(n)
            if inst is None:  # at most MAX_INSTANCES of them: n was checked
                self.top = max(self.top, n)
                inst = self.instances[n] = _Instance(n)
            inst.found[name].append(raw)
        if malformed is not None:
            return self._fail("message header block is malformed: %s" % malformed)
        if problems:
            return self._fail(problems[0])
        top = self.instances[self.top]
        if len(top.found[AS]) == 1:
            seal = check_as(top.found[AS][0])
            if isinstance(seal, ASTags):
                self.top_cv = seal.cv
                if seal.cv == FAIL:  # step 2: the most recent sealer found the chain failed
                    return self._fail("the most recent ARC-Seal (i=%d) has cv=fail" % self.top)
        self._check_structure(max_header_names)

    def _instance_of(self, name: bytes, raw: bytes, problems: List[str]) -> Optional[int]:
        """The instance number of an ARC field, or ``None`` (a problem noted)."""
        label = _LABELS[name]
        if name == AAR:
            head = _aar_head(raw)
            if head is None:
                problems.append("%s without a leading i= tag" % label)
                return None
            digits = head[0]
        else:
            try:
                tags = _core.core.parse_tag_list(raw[raw.find(b":") + 1:], 64)
            except ValueError as exc:
                problems.append("malformed %s: %s" % (label, exc))
                return None
            digits = tags.get("i", b"")
            if not digits:
                problems.append("%s without an i= tag" % label)
                return None
        n = instance_number(digits)
        if n is None or n > MAX_INSTANCES:
            problems.append("%s with instance i=%s outside 1..%d (plain digits, no leading zero)" % (
                label, shown(digits, 20), MAX_INSTANCES))
            return None
        return n

    def _check_structure(self, max_header_names: int) -> None:
        """Step 3: one of each field per instance, instances 1..N, the cv= values."""
        for n in range(1, self.top + 1):
            inst = self.instances.get(n)
            if inst is None:
                return self._fail("ARC instance i=%d is missing (instances must run 1..%d)" % (n, self.top))
            for name in ARC_FIELDS:
                count = len(inst.found[name])
                if count != 1:
                    return self._fail("%s %s for i=%d (exactly one is required)" % (
                        "no" if count == 0 else "%d" % count, _LABELS[name], n))
            out = inst.outcome
            aar = inst.found[AAR][0]
            head = _aar_head(aar)
            assert head is not None
            out.authserv_id = head[1]
            seal = check_as(inst.found[AS][0])
            if isinstance(seal, str):
                out.seal_status, out.seal_reason = FAIL, seal
                return self._fail("ARC-Seal i=%d: %s" % (n, seal))
            inst.seal = seal
            out.domain, out.selector, out.cv = seal.domain, seal.selector, seal.cv
            want = NONE if n == 1 else PASS
            if seal.cv != want:
                out.seal_status, out.seal_reason = FAIL, "cv=%s where cv=%s is required" % (seal.cv, want)
                return self._fail("ARC-Seal i=%d has cv=%s (i=%d requires cv=%s)" % (n, seal.cv, n, want))
            ams = check_ams(inst.found[AMS][0], max_header_names)
            if isinstance(ams, str):
                out.ams_status, out.ams_reason = FAIL, ams
                if n == self.top:
                    return self._fail("ARC-Message-Signature i=%d: %s" % (n, ams))
                continue  # an older AMS only bears on oldest_pass
            inst.ams = ams
            out.ams_domain, out.ams_selector = ams.domain, ams.selector

    def body_keys(self) -> List[Tuple[bool, Optional[int], str]]:
        """The body hashes the AMS need: (relaxed, length limit, hash name)."""
        keys = {i.ams.body_key(): None for i in self.instances.values() if i.ams is not None}
        return list(keys)

    def verify(self, hashes_: Dict[Tuple[bool, Optional[int], str], Tuple[bytes, int]],
               keys: "KeyLookup", now: Optional[int] = None, clock_skew: int = 300) -> ARCResult:
        """Steps 4 to 7: the AMS (most recent first), then every AS.

        :param hashes_: the digest and canonical length of each of
            :meth:`body_keys`.
        :param now: the time to validate at (``None``: now); a signature
            expired by then (``x=``), or made more than ``clock_skew``
            seconds after it (``t=``), fails.
        """
        if self.result is not None:
            return self.result
        # (what the time tags are checked against: the time, and the skew allowed)
        when = (int(time.time()) if now is None else int(now), clock_skew)
        n_top = self.top
        top = self.instances[n_top]
        status, reason = self._verify_ams(top, hashes_, keys, when)
        if status != PASS:
            self._fail("ARC-Message-Signature i=%d: %s" % (n_top, reason))
            assert self.result is not None
            self.result.temporary = status == TEMPERROR
            return self.result
        oldest = n_top
        for n in range(n_top - 1, 0, -1):
            status, _ = self._verify_ams(self.instances[n], hashes_, keys, when)
            if status != PASS:
                break
            oldest = n
        digests = self._seal_digests()
        for n in range(n_top, 0, -1):
            status, reason = self._verify_seal(self.instances[n], digests[n], keys, when)
            if status != PASS:
                self._fail("ARC-Seal i=%d: %s" % (n, reason))
                assert self.result is not None
                self.result.temporary = status == TEMPERROR
                return self.result
        self.result = ARCResult(PASS, "chain of %d ARC set%s verified" % (n_top, "" if n_top == 1 else "s"),
                                n_top, oldest, sets=[self.instances[n].outcome for n in range(1, n_top + 1)])
        return self.result

    def _verify_ams(self, inst: _Instance, hashes_: Dict[Tuple[bool, Optional[int], str], Tuple[bytes, int]],
                    keys: "KeyLookup", when: Tuple[int, int]) -> Tuple[str, str]:
        out = inst.outcome
        ams = inst.ams
        if ams is None:  # its tags were refused: the reason is recorded already
            return out.ams_status or FAIL, out.ams_reason
        status, reason = self._ams_status(inst, ams, hashes_, keys, when)
        out.ams_status, out.ams_reason = (PASS if status == PASS else FAIL), reason
        return status, reason

    def _ams_status(self, inst: _Instance, ams: AMSTags,
                    hashes_: Dict[Tuple[bool, Optional[int], str], Tuple[bytes, int]],
                    keys: "KeyLookup", when: Tuple[int, int]) -> Tuple[str, str]:
        signed_from = ams.h.count(b"from")
        if self.from_fields > signed_from:  # a From added above the signed one would pass unnoticed
            return FAIL, "the message has %d From fields, h= covers %d (a From field was added)" % (
                self.from_fields, signed_from)
        extra = _canon_py.extra_instance(self.fields, ams.h, _canon_py.SINGLE_FIELDS)
        if extra is not None:  # as for From: what a reader shows may be a field added above the signed one
            return FAIL, extra_reason(extra)
        late = ams.time_problem(*when)
        if late is not None:
            return FAIL, late
        key = keys.get(ams.key_name, ams.key_type, ams.hash_name)
        if isinstance(key, tuple):
            return key
        digest, length = hashes_[ams.body_key()]
        if ams.length is not None and ams.length > length:
            return FAIL, "l=%d exceeds the canonicalized body length %d" % (ams.length, length)
        if digest != ams.bh:
            return FAIL, "body hash mismatch"
        raw = inst.found[AMS][0]
        fields: Iterable[Header] = self.fields
        if AMS in ams.h:  # the AMS being verified did not exist when it was made
            fields = [f for f in self.fields if f[1] is not raw]
        data = _core.core.header_hash_input(list(fields), ams.h, ams.unsigned, ams.relaxed_h)
        return _check_signature(key, ams.b, hashlib.sha256(data).digest())

    def _seal_digests(self) -> Dict[int, bytes]:
        """The SHA-256 of what each ARC-Seal covers (section 5.1.1: the sets
        below it, its own AAR and AMS, itself without ``b=``), in one pass:
        each field is canonicalized and hashed once, the running hash of the
        sets below copied for each seal."""
        relaxed = _core.core.relaxed_header
        running = hashlib.sha256()
        out: Dict[int, bytes] = {}
        for n in range(1, self.top + 1):
            inst = self.instances[n]
            found = inst.found
            aar, ams = relaxed(found[AAR][0]), relaxed(found[AMS][0])
            if inst.seal is not None:
                h = running.copy()
                h.update(aar)
                h.update(ams)
                h.update(_core.core.canonical_headers((), inst.seal.unsigned, True))
                out[n] = h.digest()
            running.update(aar)
            running.update(ams)
            running.update(relaxed(found[AS][0]))
        return out

    def _verify_seal(self, inst: _Instance, digest: bytes, keys: "KeyLookup", when: Tuple[int, int]
                     ) -> Tuple[str, str]:
        seal = inst.seal
        assert seal is not None
        out = inst.outcome
        late = seal.time_problem(*when)
        if late is not None:
            out.seal_status, out.seal_reason = FAIL, late
            return FAIL, late
        key = keys.get(seal.key_name, seal.key_type, "sha256")
        if isinstance(key, tuple):
            out.seal_status, out.seal_reason = FAIL, key[1]
            return key
        status, reason = _check_signature(key, seal.b, digest)
        out.seal_status, out.seal_reason = (PASS if status == PASS else FAIL), reason
        return status, reason


_LABELS = {AAR: "ARC-Authentication-Results", AMS: "ARC-Message-Signature", AS: "ARC-Seal"}


def _aar_head(raw: bytes) -> Optional[Tuple[bytes, Optional[str]]]:
    """The instance of the ARC-Authentication-Results field *raw* (its
    digits, at most 16) and the authserv-id after it (``None`` where that
    is unreadable); ``None`` where the field's value does not start as RFC
    8617 section 4.1.1 has it: ``[CFWS] "i" [CFWS] "=" [CFWS] digits
    [CFWS] ";"``, comments included (as they are before the authserv-id).
    Raises nothing."""
    text = _UNFOLD.sub(b"", raw[raw.find(b":") + 1:]).decode("latin-1")
    p = _Parser(text)
    try:
        p.cfws()
        p.expect("i", "the instance tag i=")
        p.cfws()
        p.expect("=", "'=' after i")
        p.cfws()
        digits = p.match(_DIGITS)
        if digits is None or len(digits) > 16:
            return None
        p.cfws()
        p.expect(";", "';' after the instance")
    except AuthResError:
        return None
    servid: Optional[str]
    try:
        p.cfws()
        servid = p.quoted_string() if p.peek() == '"' else p.match(_TOKEN)
        p.cfws()
        if servid is not None and not p.at_end() and p.peek() != ";" and not p.peek().isdigit():
            servid = None  # (a token cut short by what no authserv-id holds: not a prefix of one)
        if servid is not None:
            servid = servid.encode("latin-1").decode("utf-8")  # (a quoted one in UTF-8, RFC 8601 with RFC 6532)
    except (AuthResError, UnicodeError):
        servid = None
    return digits.encode("ascii"), servid or None


def _check_signature(key: KeyRecord, b: bytes, digest: bytes) -> Tuple[str, str]:
    """Whether ``b`` is the signature under ``key`` of the data whose
    SHA-256 is ``digest``; raises nothing."""
    return signature_outcome(key, b, digest, "sha256", hashed=True, changed="fields", testing_note=False)


class KeyLookup:
    """Key records fetched from a key source for one message, each name once,
    parsed and checked as DKIM key records are."""

    def __init__(self, source: KeySource, checks: Checks) -> None:
        self.source = source
        self.checks = checks
        self._got: Dict[str, KeyOutcome] = {}

    def get(self, name: str, key_type: str, hash_name: str) -> "KeyRecord | Tuple[str, str]":
        """The key at ``name``, checked for use with ``key_type`` and
        ``hash_name``, or ``(status, reason)``.  Raises nothing."""
        got = self._got.get(name)
        if got is None:
            try:
                txts = self.source.lookup(name)
            except Exception as exc:  # a broken key source must not crash validation
                got = lookup_failure(exc)
            else:
                got = self.checks.key_from(name, txts)
            self._got[name] = got
        if isinstance(got, tuple):
            return got
        if got.key_type != key_type:
            return PERMERROR, "key type k=%s does not match the signature's algorithm" % got.key_type
        if got.hashes is not None and hash_name not in got.hashes:
            return PERMERROR, "key h=%s does not allow %s" % (":".join(sorted(got.hashes)), hash_name)
        return got


def body_hashes(pm: ParsedMessage, wanted: Iterable[Tuple[bool, Optional[int], str]]
                ) -> Dict[Tuple[bool, Optional[int], str], Tuple[bytes, int]]:
    """The digest and canonical length of the body of ``pm`` for each key
    (relaxed, limit, hash name), in one pass over the body.

    :raises OSError: reading the rest of a message file failed.
    """
    hashers = {k: _core.core.BodyHasher(k[0], k[1], pm.bare_lf, k[2]) for k in wanted}
    if not hashers:
        return {}
    hs = list(hashers.values())
    for chunk in pm.body:
        for h in hs:
            h.update(chunk)
    return {k: (h.digest(), h.length) for k, h in hashers.items()}


def validate(pm: ParsedMessage, source: KeySource, checks: Checks,
             extra: Sequence[Tuple[bool, Optional[int], str]] = (), now: Optional[float] = None
             ) -> Tuple[Chain, ARCResult, Dict[Tuple[bool, Optional[int], str], Tuple[bytes, int]]]:
    """Validate the chain of ``pm`` (at ``now``, ``None``: now), hashing its
    body once for the chain and for ``extra`` (the body hashes a sealer needs).

    :returns: the chain read, its result, and the body hashes computed.
    :raises OSError: reading the rest of a message file failed.
    """
    chain = Chain(pm.fields, pm.malformed, checks.max_header_names)
    wanted = dict.fromkeys(list(extra) + (chain.body_keys() if chain.result is None else []))
    hashes_ = body_hashes(pm, wanted)
    return chain, chain.verify(hashes_, KeyLookup(source, checks), None if now is None else int(now),
                               checks.clock_skew), hashes_


def verify_chain(
    message: MessageInput,
    keys: Any = None,
    *,
    min_key_bits: int = MIN_RSA_BITS,
    bare_lf: Optional[bool] = None,
    max_header_names: int = MAX_H_NAMES,
    now: Optional[float] = None,
    clock_skew: int = 300,
) -> ARCResult:
    """Validate the ARC chain of ``message`` (RFC 8617 section 5.2).

    :param keys: where public keys come from, as for :func:`fastdkim.verify`
        (``None``: DNS; a mapping, a callable or a key source).
    :param min_key_bits: smallest RSA key accepted.
    :param bare_lf: as for :func:`fastdkim.verify`.
    :param max_header_names: longest ``h=`` list an AMS may have.
    :param now: validate as of this Unix time (mail that sat in a queue);
        ``None``: now.  An ARC signature expired by then (``x=``), or made
        more than ``clock_skew`` seconds after it (``t=``), fails, as a
        DKIM signature would (RFC 8617 section 4.1.2 gives the AMS DKIM's
        semantics; the seal's time tags are read alike).
    :returns: the chain's :class:`ARCResult`; a hostile or malformed chain
        gives ``fail`` with a reason, never an exception.
    :raises TypeError: ``message`` is neither bytes-like nor a binary file,
        or ``keys`` is not a key source.
    :raises OSError: reading a message file failed.
    """
    source = as_key_source(keys)
    check_time(now, time.time)
    checks = shared_checks(10, False, min_key_bits, clock_skew, bare_lf, max_header_names)
    try:
        pm = read_message(message, bare_lf=bare_lf)
    except MessageFormatError as exc:
        return ARCResult(FAIL, "message cannot be parsed: %s" % exc)
    return validate(pm, source, checks, now=now)[1]
