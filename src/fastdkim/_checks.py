"""The checks of RFC 6376 section 6.1 (with RFC 8463 and RFC 8301), in three
phases that every verifier shares; only the key lookup between them differs:

1. :meth:`Checks.begin`: read the header block, check each signature's
   tags (section 6.1.1) and collect the names of the key records needed;
2. the caller looks those names up (in the calling thread, in an event
   loop, ...) and turns each answer into a key with :meth:`Checks.key_from`
   or :func:`lookup_failure`;
3. :meth:`Checks.finish`: check the keys against the signatures (section
   6.1.2), hash the body and verify the signatures (section 6.1.3).

A hostile or malformed message never raises: whatever is wrong becomes a
result with a reason.
"""
from __future__ import annotations

import hashlib
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from . import _canon_py, _core
from ._cache import BoundedCache
from ._pkcs1 import verify_sha256
from ._text import is_subdomain, qp_decode, to_a_label_domain
from ._txt import txt_records
from .canonicalization import ONE_CALL_MAX, digest_body, parse_canonicalization
from .errors import KeyLookupError, MessageFormatError, OptionError, TemporaryLookupError
from .keys import MIN_RSA_BITS, KeyRecord, KeyRecordError, counts_as_key_record, parse_key_record
from .message import MAX_HEADER_BYTES, MAX_HEADER_FIELDS, MessageInput, ParsedMessage, read_message
from .results import FAIL, NEUTRAL, PASS, PERMERROR, TEMPERROR, Verification
from .results import all_permerror as _all_permerror, as_written as _as_written
from .tags import FWS, MAX_H_NAMES, is_h_name

__all__ = ["Checks", "Job", "KeyOutcome", "check_time", "lookup_failure", "shared_checks"]

_ALGORITHMS = {"rsa-sha256": ("rsa", "sha256"), "ed25519-sha256": ("ed25519", "sha256"), "rsa-sha1": ("rsa", "sha1")}

#: What a key lookup comes to: the key, or ``(status, reason)`` for every
#: signature that needed it.
KeyOutcome = Union[KeyRecord, Tuple[str, str]]


def _digits(v: bytes) -> bool:
    """1*76DIGIT (``bytes.isdigit`` is ASCII-only)."""
    return v.isdigit() and len(v) <= 76


_STATIC_TAGS = _canon_py.STATIC_TAGS
_SINGLE_FIELDS = _canon_py.SINGLE_FIELDS
_STATIC_LIMIT = 1024
_PKCS1, _SHA256, _SHA1 = padding.PKCS1v15(), hashes.SHA256(), hashes.SHA1()


def extra_reason(name: str) -> str:
    """Why a signature whose ``h=`` lists fewer *name* fields than the
    message has does not pass (RFC 6376 section 8.15; ARC message
    signatures alike)."""
    return ("the message has more \"%s\" fields than the signature covers: the one a reader shows may be "
            "unsigned (RFC 6376 section 8.15)" % name)


class _Sig:
    """Working state for one signature while the message is verified."""

    __slots__ = ("result", "raw", "pos", "unsigned", "alg", "hash_name", "key_type", "relaxed_h", "relaxed_b",
                 "h", "b", "bh", "l", "key", "key_name", "signs_dkim")
    # (set once the signature's tags are checked)
    alg: str
    hash_name: str
    key_type: str
    relaxed_h: bool
    relaxed_b: bool
    h: List[bytes]
    b: bytes
    bh: bytes
    l: Optional[int]  # noqa: E741 (the tag's name)
    key_name: str
    signs_dkim: bool

    def __init__(self, result: Verification, raw: bytes, pos: int) -> None:
        self.result = result
        self.raw = raw
        self.pos = pos  # the field's position in the header block
        self.unsigned = b""  # the field with its b= value deleted (section 3.7)
        self.key: Optional[KeyRecord] = None

    def done(self, status: str, reason: str) -> None:
        self.result.status = status
        self.result.reason = reason


class Job:
    """One message between the phases: its signatures, and :attr:`names`,
    the key records they wait for (each once, in order of first use)."""

    __slots__ = ("message", "sigs", "names")

    def __init__(self, message: ParsedMessage, sigs: List[_Sig], names: List[str]) -> None:
        self.message, self.sigs, self.names = message, sigs, names


def lookup_failure(exc: BaseException) -> Tuple[str, str]:
    """The result of the signatures whose key lookup raised *exc*:
    ``temperror`` for a :class:`TemporaryLookupError` and for anything a
    broken key source may raise, ``permerror`` for a :class:`KeyLookupError`.
    Raises nothing."""
    if isinstance(exc, TemporaryLookupError):
        return (TEMPERROR, "key lookup failed: %s" % exc)
    if isinstance(exc, KeyLookupError):
        return (PERMERROR, "key lookup failed: %s" % exc)
    return (TEMPERROR, "key lookup failed: %s: %s" % (type(exc).__name__, exc))


class Checks:
    """The verification options that shape the checks, and the checks.

    The options are :class:`~fastdkim.Verifier`'s, except ``keys``, ``now``
    and ``clock``, which each call gives.  What is remembered between
    messages (parsed key records by their bytes, what a signer's constant
    tags imply) depends only on these options and on the bytes it is keyed
    by, so one instance may serve any number of callers and threads.

    :raises TypeError: an option is not of its type (``int``; ``bool``;
        ``bool`` or ``None`` for ``bare_lf``).
    :raises OptionError: a number is negative.
    """

    def __init__(
        self,
        *,
        max_signatures: int = 10,
        allow_sha1: bool = False,
        min_key_bits: int = MIN_RSA_BITS,
        clock_skew: int = 300,
        bare_lf: Optional[bool] = None,
        max_header_names: int = MAX_H_NAMES,
    ) -> None:
        for arg, value in (("max_signatures", max_signatures), ("min_key_bits", min_key_bits),
                           ("clock_skew", clock_skew), ("max_header_names", max_header_names)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError("%s must be an int, not %s" % (arg, type(value).__name__))
            if value < 0:
                raise OptionError("%s must be >= 0, not %d" % (arg, value))
        if not isinstance(allow_sha1, bool):
            raise TypeError("allow_sha1 must be a bool, not %s" % type(allow_sha1).__name__)
        if bare_lf is not None and not isinstance(bare_lf, bool):
            raise TypeError("bare_lf must be a bool or None, not %s" % type(bare_lf).__name__)
        self.max_signatures = max_signatures
        self.allow_sha1 = allow_sha1
        self.min_key_bits = min_key_bits
        self.clock_skew = clock_skew
        self.bare_lf = bare_lf
        self.max_header_names = max_header_names
        self._records: BoundedCache[bytes, Any] = BoundedCache(1024)
        # The lane for the usual message (_quick) stands in for the phases:
        # only where a subclass has not changed them.
        cls = type(self)
        self._lane = cls.begin is Checks.begin and cls.finish is Checks.finish and cls.key_from is Checks.key_from
        # what a signer's constant tags imply, by their values: a plain dict
        # (looked up once per signature), emptied when it holds _STATIC_LIMIT
        self._static: Dict[Tuple[Any, ...], Tuple[Any, ...]] = {}

    # -- phase 1: the header block and the signature fields -------------------------

    def begin(self, message: MessageInput, now: Optional[float],
              clock: Callable[[], float]) -> Union[Job, List[Verification]]:
        """Read the header block of *message* and check its signatures as of
        *now* (``None``: ``clock()``).

        :returns: the results when the message is settled without keys (no
            signature, a malformed header block, every signature unusable),
            else the :class:`Job` to look keys up for.
        :raises TypeError: ``message`` is neither bytes-like nor a binary file.
        """
        try:
            pm = read_message(message, bare_lf=self.bare_lf)
        except MessageFormatError as exc:
            return [Verification(PERMERROR, "message cannot be parsed: %s" % exc)]
        if pm.malformed is not None:
            return _all_permerror(pm.fields, pm.malformed)
        when = int(clock() if now is None else now)
        sigs: List[_Sig] = []
        names: Dict[str, None] = {}
        index = pm.index
        found: Sequence[Tuple[int, bytes]]
        if index is not None:
            positions = index.find(b"dkim-signature")
            if not positions:
                return []
            found = [(i, index.raw(i)) for i in positions]
        else:
            found = [(i, raw) for i, (name, raw) in enumerate(pm.fields) if name == b"dkim-signature"]
        max_signatures = self.max_signatures
        check = self._check_signature
        for pos, raw in found:
            s = _Sig(Verification("", "", index=len(sigs)), raw, pos)
            if len(sigs) >= max_signatures:
                s.done(NEUTRAL, "not evaluated: the message has more than %d signature%s"
                       % (max_signatures, "" if max_signatures == 1 else "s"))
                try:  # (what it says, for the report)
                    tags, _ = _core.core.parse_signature(raw)
                except ValueError:
                    pass
                else:
                    s.result.raw_tags = tags
                    _as_written(s.result, tags)
            else:
                check(s, when)
                if not s.result.status:
                    names[s.key_name] = None
            sigs.append(s)
        if not names:
            return [s.result for s in sigs]
        return Job(pm, sigs, list(names))

    def _quick(self, data: bytes, now: Optional[float], clock: Callable[[], float],
               source: Any) -> Tuple[Optional[List[Verification]], Optional[int]]:
        """The results for *data*, a message as bytes, as of *now* (``None``:
        ``clock()``), with its keys from *source*, when it is the usual case:
        a few signatures (at most ``max_signatures``) whose every check
        before the key lookup passes, a small body, a wire-form header block
        without defect; and the time read (``None`` if it was not).  For any
        other message the results are ``None``, before anything is looked
        up: :meth:`begin` (given the time read, if any) and :meth:`finish`
        take it.

        The same checks as the three phases, and the same results (what the
        lane does not handle itself, once the keys are in, it hands to
        :meth:`finish` with those keys); without their per-signature objects,
        which are most of the time of a small message's checks beside the
        signature's arithmetic.  The lane's two halves are
        :meth:`_quick_start` and :meth:`_quick_end`; between them, the keys
        are looked up here in the calling thread.
        """
        lane, when = self._quick_start(data, now, clock)
        if lane is None:
            return None, when
        outcomes: Dict[str, Any] = {}
        for sig in lane[2]:
            name = sig[6][11]
            if name in outcomes:
                continue
            try:
                txts = source.lookup(name)
            except Exception as exc:  # a broken key source must not crash verification
                outcomes[name] = lookup_failure(exc)
                continue
            # one record, parsed before (key_from's first step, without its calls)
            outcome = self._records._data.get(txts[0]) if (
                type(txts) is list and len(txts) == 1 and type(txts[0]) is bytes) else None
            outcomes[name] = outcome if type(outcome) is KeyRecord else self.key_from(name, txts)
        assert when is not None
        return self._quick_end(data, when, lane, outcomes), when

    def _quick_start(self, data: bytes, now: Optional[float],
                     clock: Callable[[], float]) -> Tuple[Optional[Tuple[Any, ...]], Optional[int]]:
        """The lane up to the key lookups: ``None`` for a message it leaves
        to the phases, else what :meth:`_quick_end` takes, ``(index, body,
        sigs)``: per signature, its last item is what its static tags imply,
        the key's name at 11 (:meth:`lane_names`); and the time it read, as
        :meth:`begin` reads it (once the header block is known to be
        sound), or ``None`` if it did not.  One call of the core's
        ``lane_start``, which reads the message as
        :func:`~fastdkim.message.read_usual` does.  Raises nothing but what
        ``clock`` raises."""
        if not self._lane or not self.max_signatures:
            return None, None
        return _core.core.lane_start(data, self.bare_lf, MAX_HEADER_BYTES, MAX_HEADER_FIELDS, ONE_CALL_MAX,
                                     now, clock, self.clock_skew, self._static, self._static_of,
                                     self.max_signatures)

    @staticmethod
    def lane_names(lane: Tuple[Any, ...]) -> List[str]:
        """The key records the signatures of *lane* need, each once, in
        order of first use (as :attr:`Job.names`)."""
        return list(dict.fromkeys(sig[6][11] for sig in lane[2]))

    def _quick_end(self, data: bytes, now: int, lane: Tuple[Any, ...],
                   outcomes: Dict[str, Any]) -> List[Verification]:
        """The lane from the key lookups on: the results for *data*, whose
        :meth:`_quick_start` gave *lane*, with *outcomes*, by key name (what
        :meth:`key_from` or :func:`lookup_failure` made of each lookup).
        Signatures with the same body canonicalization, hash and ``bh=``
        share the body's hash.

        :raises TypeError: see :meth:`finish` (not for bytes).
        """
        index, body, sigs = lane
        for sig in sigs:
            static = sig[6]
            outcome = outcomes[static[11]]
            if (not isinstance(outcome, KeyRecord) or outcome.key_type != static[1] or outcome.flags
                    or (outcome.hashes is not None and static[2] not in outcome.hashes)):
                # what the lane leaves to the phases, with the keys it has
                job = self.begin(data, now, _no_clock)
                return self.finish(job, outcomes) if isinstance(job, Job) else job
        results: List[Verification] = []
        checked: Optional[Tuple[bool, str, bytes]] = None  # a body hash found right
        for i, (pos, tags, unsigned, b, bh, timestamp, static) in enumerate(sigs):
            (alg, key_type, hash_name, canonicalization, relaxed_h, relaxed_b,
             domain, selector, h, signed_headers, identity, name, signs_dkim) = static
            outcome = outcomes[name]
            signed = _core.core.lane_end(index, body, relaxed_b, hash_name, bh, h, unsigned, relaxed_h,
                                         pos if signs_dkim else -1, _SINGLE_FIELDS,
                                         checked is not None and checked == (relaxed_b, hash_name, bh))
            status: str
            if signed is None:
                status, reason = FAIL, "body hash mismatch"
            else:
                checked = (relaxed_b, hash_name, bh)
                if isinstance(signed, str):
                    status, reason = FAIL, extra_reason(signed)
                else:
                    status, reason = signature_outcome(outcome, b, signed, hash_name, hash_name == "sha256")
            results.append(Verification(status, reason, domain, selector, alg, identity, canonicalization,
                                        signed_headers, timestamp, None, None, False, False, outcome.key_bits, i,
                                        tags))
        return results

    def _check_signature(self, s: _Sig, now: int) -> None:
        got = _core.core.usable_signature(s.raw)
        if got is None:
            return self._refuse(s)
        tags, s.unsigned, key, s.b, s.bh = got
        r = s.result
        r.raw_tags = tags
        static = self._static_of(key, tags)
        if len(static) == 2:
            return self._refuse_static(s, tags, static)
        (s.alg, s.key_type, s.hash_name, r.canonicalization, s.relaxed_h, s.relaxed_b,
         r.domain, r.selector, s.h, r.signed_headers, r.identity, s.key_name, s.signs_dkim) = static
        r.algorithm = s.alg
        s.l = None
        v = tags.get("l")
        if v is not None:
            if not _digits(v):
                return s.done(PERMERROR, "malformed l= value")
            s.l = r.body_length = int(v)
        v = tags.get("t")
        if v is not None:
            if not (v.isdigit() and len(v) <= 76):  # _digits, inlined: nearly every signature has t=
                return s.done(PERMERROR, "malformed t= value")
            r.timestamp = int(v)
        v = tags.get("x")
        if v is not None:
            if not _digits(v):
                return s.done(PERMERROR, "malformed x= value")
            r.expiration = x = int(v)
            if r.timestamp is not None and x <= r.timestamp:  # section 3.5: x MUST be greater than t
                return s.done(PERMERROR, "x= (%d) is not later than t= (%d)" % (x, r.timestamp))
            if x < now:
                return s.done(FAIL, "signature expired (x=%d)" % x)
        if r.timestamp is not None and r.timestamp > now + self.clock_skew:
            return s.done(PERMERROR, "signature timestamp t=%d is in the future" % r.timestamp)

    def _static_of(self, key: Tuple[Optional[bytes], ...], tags: Dict[str, bytes]) -> Tuple[Any, ...]:
        """What the static tags *key* (their values, in ``STATIC_TAGS``
        order) of the signature with *tags* imply: :meth:`_check_static`,
        remembered."""
        cache = self._static
        static = cache.get(key)
        if static is None:
            static = self._check_static(tags)
            if len(cache) >= _STATIC_LIMIT:
                cache.clear()
            cache[key] = static
        return static

    def _refuse(self, s: _Sig) -> None:
        """The result of a signature that ``usable_signature`` turned down:
        the first of the section 6.1.1 checks it fails, in their order."""
        try:
            tags, s.unsigned = _core.core.parse_signature(s.raw)
        except ValueError as exc:
            return s.done(PERMERROR, "malformed signature: %s" % exc)
        r = s.result
        r.raw_tags = tags
        if "v" in tags and tags["v"] != b"1":
            _as_written(r, tags)
            return s.done(PERMERROR, "unsupported signature version v=%s" % tags["v"].decode("utf-8", "replace"))
        for t in _canon_py.REQUIRED_TAGS:  # (v first)
            if t not in tags:
                _as_written(r, tags)
                return s.done(PERMERROR, "required tag %s= missing" % t)
        static = self._static_of(tuple(map(tags.get, _STATIC_TAGS)), tags)
        if len(static) == 2:
            return self._refuse_static(s, tags, static)
        # (what the results of usable signatures say too)
        (r.algorithm, _, _, r.canonicalization, _, _, r.domain, r.selector, _, r.signed_headers, r.identity,
         _, _) = static
        try:
            b = _core.core.b64decode(tags["b"])
            _core.core.b64decode(tags["bh"])
        except ValueError:
            return s.done(PERMERROR, "malformed base64 value")
        if not b:
            return s.done(PERMERROR, "empty signature b=")
        # (usable_signature and these checks agree: nothing is left)
        return s.done(PERMERROR, "malformed signature")  # pragma: no cover

    @staticmethod
    def _refuse_static(s: _Sig, tags: Dict[str, bytes], static: Tuple[Any, ...]) -> None:
        """The result of a signature whose static tags are unusable (*static*
        is ``(status, reason)``, or ``("alg", a)`` for an unknown algorithm)."""
        r = s.result
        _as_written(r, tags)
        if static[0] == "alg":
            r.algorithm = static[1]
            return s.done(PERMERROR, "unsupported algorithm a=%s" % tags["a"].decode("utf-8", "replace"))
        return s.done(*static)

    def _check_static(self, tags: Dict[str, bytes]) -> Tuple[Any, ...]:
        """Checks of the tags a signer keeps the same from message to message.

        Returns ``(status, reason)`` for an unusable signature (``("alg", a)``
        for an unknown algorithm), else the derived values.
        """
        text = {k: v.decode("utf-8", "replace") for k, v in tags.items()}
        alg = tags["a"].lower().decode("ascii", "replace")
        if alg not in _ALGORITHMS:
            return ("alg", alg)
        if alg == "rsa-sha1" and not self.allow_sha1:
            return (PERMERROR, "rsa-sha1 is not accepted (RFC 8301)")
        key_type, hash_name = _ALGORITHMS[alg]
        try:
            hc, bc = parse_canonicalization(tags["c"].decode("ascii")) if "c" in tags else ("simple", "simple")
        except (ValueError, UnicodeDecodeError):
            return (PERMERROR, "unknown canonicalization c=%s" % text.get("c"))
        # (domain-name and selector, section 3.5: no trailing dot, which
        # to_a_label_domain would take away)
        try:
            if tags["d"].endswith(b"."):
                raise ValueError
            d = to_a_label_domain(tags["d"].decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return (PERMERROR, "invalid signing domain d=%s" % text["d"])
        try:
            if tags["s"].endswith(b"."):
                raise ValueError
            sel = to_a_label_domain(tags["s"].decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return (PERMERROR, "invalid selector s=%s" % text["s"])
        # FWS may surround the names (section 3.5), not split them.
        names = [n.strip(FWS).lower() for n in tags["h"].split(b":")]
        if not all(is_h_name(n) for n in names):
            return (PERMERROR, "malformed h= list")
        if len(names) > self.max_header_names:
            return (PERMERROR, "h= lists %d fields (limit %d)" % (len(names), self.max_header_names))
        if b"from" not in names:
            return (PERMERROR, "From field not signed (h= lacks from)")
        signed = tuple(b":".join(names).decode("ascii", "replace").split(":"))
        if "i" in tags:
            try:
                ident = qp_decode(tags["i"]).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                return (PERMERROR, "malformed i= value")
            local, at, idom = ident.rpartition("@")
            if not at:
                return (PERMERROR, "i= %r lacks '@'" % ident)
            if "@" in local and not (len(local) > 1 and local.startswith('"') and local.endswith('"')):
                # (an '@' is part of a Local-part only within a quoted string)
                return (PERMERROR, "i= %r holds more than one '@'" % ident)
            try:
                if idom.endswith("."):
                    raise ValueError
                idom = to_a_label_domain(idom)
            except ValueError:
                return (PERMERROR, "invalid i= domain %r" % idom)
            if not is_subdomain(idom, d):
                return (PERMERROR, "i= domain %s is not d=%s or a subdomain of it" % (idom, d))
            identity = local + "@" + idom
        else:
            identity = "@" + d
        if "q" in tags:
            methods = [m.strip(FWS).lower() for m in tags["q"].split(b":")]
            if b"dns/txt" not in methods:
                return (PERMERROR, "no supported query method in q=%s" % text["q"])
        return (alg, key_type, hash_name, "%s/%s" % (hc, bc), hc == "relaxed", bc == "relaxed", d, sel, names,
                signed, identity, "%s._domainkey.%s" % (sel, d), b"dkim-signature" in names)

    # -- phase 2 (the caller's): what a key source answered ---------------------------

    def key_from(self, name: str, txts: Any) -> KeyOutcome:
        """The key that the TXT records *txts* (what a key source returned
        for *name*) give, or ``(status, reason)``.  Raises nothing."""
        if not (type(txts) is list and len(txts) == 1 and type(txts[0]) is bytes):
            # anything else a key source may hand back: other sequences, a lone
            # record, text, a generator (which may itself fail)
            try:
                txts = txt_records(txts)
            except (TypeError, UnicodeError) as exc:  # a key source breaking its protocol
                return (TEMPERROR, "key lookup failed: the key source returned %s" % exc)
            except Exception as exc:
                return lookup_failure(exc)
        if not txts:
            return (PERMERROR, "no key record at %s" % name)
        if len(txts) == 1:  # the usual case: one record, parsed once and remembered
            chosen = self._parse_record(txts[0])
            if isinstance(chosen, KeyRecordError):
                return (PERMERROR, str(chosen))
            return chosen  # type: ignore[no-any-return]
        # Several TXT records: the DKIM key records count (section 3.6.2.2:
        # several make the result undefined, here a permerror), the records a
        # verifier ignores or discards (section 3.6.1) and other TXT records not.
        parsed = [(txt, self._parse_record(txt)) for txt in txts]
        dkim = [p for p in parsed if counts_as_key_record(p[0], p[1])]
        if len(dkim) > 1:
            return (PERMERROR, "%d DKIM key records at %s" % (len(dkim), name))
        if len(dkim) == 1:
            chosen = dkim[0][1]
            if isinstance(chosen, KeyRecordError):
                return (PERMERROR, str(chosen))
            return chosen  # type: ignore[no-any-return]
        ignored = [str(p[1]) for p in parsed if isinstance(p[1], KeyRecordError) and p[1].ignored]
        return (PERMERROR, "no DKIM key record among %d TXT records at %s%s"
                % (len(parsed), name, " (%s)" % "; ".join(ignored) if ignored else ""))

    def _parse_record(self, txt: bytes) -> Any:
        """The parsed record (or its KeyRecordError), remembered by its text:
        loading a public key costs more than the rest of a verification."""
        hit = self._records.get(txt)
        if hit is None:
            try:
                hit = parse_key_record(txt, min_rsa_bits=self.min_key_bits)
            except KeyRecordError as exc:
                hit = exc
            self._records.set(txt, hit)
        return hit

    # -- phase 3: keys against signatures, bodies, signatures ---------------------------

    def finish(self, job: Job, keys: Dict[str, KeyOutcome]) -> List[Verification]:
        """Complete *job* with *keys* (an outcome for each of ``job.names``):
        the results, one per signature field, top to bottom.

        :raises TypeError: the message is a text-mode file (its body gives ``str``).
        :raises OSError: reading the rest of a message file failed.
        """
        sigs = job.sigs
        pending: List[_Sig] = []
        for s in sigs:
            if not s.result.status:
                self._use_key(s, keys[s.key_name])
                if not s.result.status:
                    pending.append(s)
        if pending:
            pm = job.message
            self._check_bodies(pending, pm.body, pm.bare_lf)
            index = pm.index
            for s in pending:
                if not s.result.status:
                    if index is not None:
                        skip = s.pos if s.signs_dkim else -1
                        extra = index.extra_instance(s.h, skip, _SINGLE_FIELDS)
                        if extra is not None:
                            s.done(FAIL, extra_reason(extra))
                        else:
                            self._verify_data(s, index.hash_input(s.h, s.unsigned, s.relaxed_h, skip))
                    else:
                        self._check_header_signature(s, pm.fields)
        return [s.result for s in sigs]

    def _use_key(self, s: _Sig, got: KeyOutcome) -> None:
        if isinstance(got, tuple):
            return s.done(*got)
        key: KeyRecord = got
        r = s.result
        r.key_bits = key.key_bits
        r.testing = key.testing
        if key.key_type != s.key_type:
            return s.done(PERMERROR, "key type k=%s does not match a=%s" % (key.key_type, s.alg))
        if key.hashes is not None and s.hash_name not in key.hashes:
            return s.done(PERMERROR, "key h=%s does not allow %s" % (":".join(sorted(key.hashes)), s.hash_name))
        if key.strict and r.identity is not None:
            idom = r.identity.rpartition("@")[2].lower()
            if idom != r.domain:
                return s.done(PERMERROR, "key t=s requires the i= domain to equal d=, got %s" % idom)
        s.key = key

    def _check_bodies(self, sigs: Sequence[_Sig], body: Any, lf_mode: bool) -> None:
        if len(sigs) == 1:  # the usual case, without the bookkeeping
            s = sigs[0]
            return self._compare_digest(s, *digest_body(body, s.relaxed_b, s.l, lf_mode, s.hash_name))
        hashers: Dict[Tuple[bool, Optional[int], str], Any] = {}
        for s in sigs:
            k = (s.relaxed_b, s.l, s.hash_name)
            if k not in hashers:
                hashers[k] = _core.core.BodyHasher(s.relaxed_b, s.l, lf_mode, s.hash_name)
        hs = list(hashers.values())
        for chunk in body:
            for h in hs:
                h.update(chunk)
        for s in sigs:
            self._compare_body(s, hashers[(s.relaxed_b, s.l, s.hash_name)])

    @classmethod
    def _compare_body(cls, s: _Sig, h: Any) -> None:
        """Check the body hash of *s* against the finished hasher *h*.  Raises nothing."""
        digest = h.digest()
        cls._compare_digest(s, digest, h.length)

    @staticmethod
    def _compare_digest(s: _Sig, digest: bytes, length: int) -> None:
        """Check the body hash of *s* against *digest* of a canonical body
        of *length* octets.  Raises nothing."""
        if s.l is not None:
            if s.l > length:
                return s.done(PERMERROR, "l=%d exceeds the canonicalized body length %d" % (s.l, length))
            s.result.body_truncated = length > s.l
        if digest != s.bh:
            s.done(FAIL, "body hash mismatch")

    @classmethod
    def _check_header_signature(cls, s: _Sig, fields: Sequence[Tuple[bytes, bytes]]) -> None:
        """Verify the signature of *s* over the header block *fields* (the
        message's, in which *s* is the field at ``s.pos``)."""
        if s.signs_dkim:
            # Other signatures may be signed; the one being verified is not a
            # candidate (it did not exist when it was made).
            fields = [f for i, f in enumerate(fields) if i != s.pos]
        extra = _canon_py.extra_instance(fields, s.h, _SINGLE_FIELDS)
        if extra is not None:
            return s.done(FAIL, extra_reason(extra))
        cls._verify_data(s, _core.core.header_hash_input(fields, s.h, s.unsigned, s.relaxed_h))

    @staticmethod
    def _verify_data(s: _Sig, data: bytes) -> None:
        """Verify the signature of *s* over its header hash input *data*.  A
        signature that verifies but whose ``l=`` leaves part of the body
        unsigned is ``neutral``: readers show that part too."""
        assert s.key is not None
        status, reason = signature_outcome(s.key, s.b, data, s.hash_name)
        if status == PASS and s.result.body_truncated:
            status, reason = NEUTRAL, (
                "signature verified over the first %s octets of the body only (l=): the rest, which readers "
                "show, is not signed (RFC 6376 section 8.2)" % (s.l,))
        s.done(status, reason)

def signature_outcome(key: KeyRecord, b: bytes, data: bytes, hash_name: str, hashed: bool = False,
                      changed: str = "headers", testing_note: bool = True) -> Tuple[str, str]:
    """The status and reason of the signature *b* over the header hash
    input *data* (with *hashed*, its SHA-256: *hash_name* is sha256) with
    *key*; a failed one's reason says *changed* (what was signed) may have
    changed, and a passed one's notes a key in testing mode (t=y) unless
    not *testing_note* (ARC's).  Raises nothing."""
    pub: Any = key.public_key
    try:
        if key.key_type == "rsa":
            if hashed:
                if not verify_sha256(pub, b, data):
                    raise InvalidSignature
            else:
                pub.verify(b, data, _PKCS1, _SHA256 if hash_name == "sha256" else _SHA1)
        else:  # ed25519: RFC 8463 signs the SHA-256 of the data
            pub.verify(b, data if hashed else hashlib.sha256(data).digest())
    except InvalidSignature:
        return (FAIL, "signature did not verify (%s changed or wrong key)" % changed)
    except ValueError as exc:
        return (FAIL, "signature did not verify: %s" % exc)
    if testing_note and key.flags and key.testing:
        return (PASS, "signature verified (key in testing mode, t=y)")
    return (PASS, "signature verified")


def check_time(now: Any, clock: Any) -> None:
    """Check the ``now`` and ``clock`` options of a verifier.

    :raises TypeError: ``now`` is neither a number nor ``None``, or
        ``clock`` is not callable.
    """
    if now is not None and (isinstance(now, bool) or not isinstance(now, (int, float))):
        raise TypeError("now must be a number (Unix time) or None, not %s" % type(now).__name__)
    if not callable(clock):
        raise TypeError("clock must be callable, not %s" % type(clock).__name__)


def _no_clock() -> float:
    raise AssertionError("the time was given")  # pragma: no cover


#: Checks shared by calls with the same options (the module-level verify functions).
_SHARED: BoundedCache[Tuple[Any, ...], Checks] = BoundedCache(64)


def shared_checks(max_signatures: int, allow_sha1: bool, min_key_bits: int, clock_skew: int,
                  bare_lf: Optional[bool], max_header_names: int) -> Checks:
    """The :class:`Checks` for these options, shared by every caller that
    gives the same ones (by equality: options that compare equal check
    alike), so that what they remember is remembered across calls.

    :raises OptionError: an option has an unusable value.
    """
    options = (max_signatures, allow_sha1, min_key_bits, clock_skew, bare_lf, max_header_names)
    try:
        checks = _SHARED.get(options)
    except TypeError:  # an unhashable option: checks of this call's own
        checks = None
        cache = False
    else:
        cache = True
    if checks is None:
        checks = Checks(max_signatures=max_signatures, allow_sha1=allow_sha1, min_key_bits=min_key_bits,
                        clock_skew=clock_skew, bare_lf=bare_lf, max_header_names=max_header_names)
        if cache:
            _SHARED.set(options, checks)
    return checks
