"""Signing and verifying a message as it arrives, the way a milter sees it:
header fields one at a time, the end of the header block, then the body in
chunks of any size, then the end of the message.

::

    session = SigningSession(policy=policy)        # or SigningSession(signers)
    for name, value in fields:
        session.header(name, value)
    session.end_of_headers()                       # chooses the signers
    for chunk in body_chunks:
        session.body(chunk)                        # straight into the body hashers
    new_fields = session.finish()                  # DKIM-Signature fields, CRLF

    session = VerificationSession(checks)
    ... header() ...
    names = session.end_of_headers()               # key records to look up
    session.set_keys({name: checks.key_from(name, records) for ...})
    ... body() ...
    results = session.finish()                     # one Verification per signature

Only the header block is kept (at most ``max_header_bytes``); each body chunk
goes straight into the compiled body hashers (``BodyHasher.update``, one per
distinct body canonicalization and length) and is not kept, so the memory a
session holds is the header block plus a few hundred bytes per hasher,
whatever the size of the body.  The results are those of
:meth:`Signer.sign` / :func:`~fastdkim.sign_all` and of
:func:`~fastdkim.verify` for the same message in wire form (CRLF line
endings): the same checks (:mod:`fastdkim._checks`), the same field builder.
"""
from __future__ import annotations

import functools
import re
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from . import _core
from ._checks import Checks, Job, KeyOutcome
from .errors import HeaderTooLarge, UnsignableMessageError
from .keys import KeyRecord
from .message import ParsedMessage, read_message
from .policy import SigningPolicy, from_domain
from .results import PERMERROR, Verification
from .signing import Signer, _check_froms

__all__ = ["SigningSession", "VerificationSession", "MAX_HEADER_BYTES", "SessionOrderError", "field_from_milter"]


class SessionOrderError(RuntimeError):
    """A session's method called out of the order a message has (a header
    field after the end of the header block, the body before it, ``finish``
    twice): a :class:`RuntimeError`, as the methods document, that a
    server driving a session from an MTA's events can tell from its own
    faults."""


#: The largest header block a session keeps, by default (Postfix's own
#: ``header_size_limit`` is 100 KiB).
MAX_HEADER_BYTES = 1 << 20

_LONE_LF = re.compile(rb"(?<!\r)\n")


#: The longest From field whose domain is remembered (see :func:`_author_domain`).
_REMEMBERED_FROM = 512


@functools.lru_cache(maxsize=1024)
def _remembered_domain(froms: Tuple[bytes, ...]) -> str:
    return from_domain([(b"from", raw) for raw in froms])


def _author_domain(froms: Tuple[bytes, ...]) -> str:
    """:func:`~fastdkim.policy.from_domain` of the From fields ``froms``
    (raw, ``From:`` included).  A single From field of at most
    ``_REMEMBERED_FROM`` bytes is remembered (the last 1024 distinct ones, so
    at most some 600 KB): a milter signs mail of a few authors over and over,
    and the address parser costs more than the rest of choosing the signers.

    :raises FromAddressError: as :func:`~fastdkim.policy.from_domain` (not remembered).
    """
    if len(froms) == 1 and len(froms[0]) <= _REMEMBERED_FROM:
        return _remembered_domain(froms)
    return from_domain([(b"from", raw) for raw in froms])


def field_from_milter(name: Union[str, bytes], value: Union[bytes, bytearray, memoryview]) -> bytes:
    """The header field in wire form (``name:value`` and CRLF) from the name
    and value a milter is given.  MTAs join the lines of a folded field with
    a bare LF: each one not preceded by CR becomes CRLF.  The value is taken
    as it is after the colon (give the leading space back when the MTA
    removed it).  Raises nothing."""
    raw_name = name.encode("utf-8", "surrogateescape") if isinstance(name, str) else bytes(name)
    raw_value = bytes(value)
    if b"\n" in raw_value:
        raw_value = _LONE_LF.sub(b"\r\n", raw_value)
    return raw_name + b":" + raw_value + b"\r\n"


class _HeaderBlock:
    """The header fields of one message, in wire form, up to a size."""

    __slots__ = ("fields", "size", "limit", "ended")

    def __init__(self, limit: int) -> None:
        self.fields: List[bytes] = []
        self.size = 0
        self.limit = limit
        self.ended = False

    def add(self, raw: bytes) -> None:
        if self.ended:
            raise SessionOrderError("a header field after the end of the header block")
        self.size += len(raw)
        if self.size > self.limit:
            raise HeaderTooLarge("header block larger than %d bytes" % self.limit)
        self.fields.append(raw)

    def take(self) -> bytes:
        """The header block with the empty line that ends it; the fields are
        released.

        :raises RuntimeError: the block was taken already.
        """
        if self.ended:
            raise SessionOrderError("end_of_headers called twice")
        self.ended = True
        block = b"".join(self.fields) + b"\r\n"
        self.fields = []
        return block

    def parse(self) -> ParsedMessage:
        """The fields as :func:`~fastdkim.message.read_message` reads them
        (with :attr:`~ParsedMessage.malformed` set for a bare CR).

        :raises RuntimeError: the block was taken already.
        """
        return read_message(self.take(), bare_lf=False, max_header_bytes=self.limit + 2)


def _check_limit(max_header_bytes: int) -> int:
    if isinstance(max_header_bytes, bool) or not isinstance(max_header_bytes, int) or max_header_bytes < 1:
        raise ValueError("max_header_bytes must be a positive int, not %r" % (max_header_bytes,))
    return max_header_bytes


class SigningSession:
    """One message signed as it arrives.

    :param signers: the signers to use, or ``None`` to choose them by the
        From domain with ``policy``.
    :param policy: a :class:`~fastdkim.SigningPolicy` (when ``signers`` is ``None``).
    :param max_header_bytes: the largest header block accepted.
    :raises TypeError: neither or both of ``signers`` and ``policy``, or
        ``signers`` holds something else than :class:`~fastdkim.Signer` objects.
    :raises ValueError: ``max_header_bytes`` is not a positive int.
    """

    __slots__ = ("_signers", "_policy", "_head", "_fields", "_chosen", "_hashers", "_by_key", "_done")

    def __init__(self, signers: Optional[Sequence[Signer]] = None, *, policy: Optional[SigningPolicy] = None,
                 max_header_bytes: int = MAX_HEADER_BYTES) -> None:
        if (signers is None) == (policy is None):
            raise TypeError("SigningSession needs either signers or a policy")
        if signers is not None:
            signers = tuple(signers)
            if not signers or not all(isinstance(s, Signer) for s in signers):
                raise TypeError("signers must be a non-empty sequence of Signer objects")
        self._signers = signers
        self._policy = policy
        self._head = _HeaderBlock(_check_limit(max_header_bytes))
        self._fields: List[Tuple[bytes, bytes]] = []
        self._chosen: Tuple[Signer, ...] = ()
        self._hashers: List[Any] = []
        self._by_key: Dict[Tuple[bool, bool], Any] = {}
        self._done = False

    @property
    def signers(self) -> Tuple[Signer, ...]:
        """The signers :meth:`end_of_headers` chose (none before it)."""
        return self._chosen

    def header(self, name: Union[str, bytes], value: Union[bytes, bytearray, memoryview]) -> None:
        """Add a header field given as a milter receives it (see :func:`field_from_milter`).

        :raises HeaderTooLarge: the header block grew past ``max_header_bytes``.
        :raises RuntimeError: called after :meth:`end_of_headers`.
        """
        self._head.add(field_from_milter(name, value))

    def field(self, raw: bytes) -> None:
        """Add a header field in wire form (``Name: value`` with its CRLF).

        :raises HeaderTooLarge: the header block grew past ``max_header_bytes``.
        :raises RuntimeError: called after :meth:`end_of_headers`.
        """
        self._head.add(bytes(raw))

    def end_of_headers(self) -> Tuple[Signer, ...]:
        """End the header block and choose the signers.

        :returns: the signers that will sign the message.
        :raises UnsignableMessageError: the header block is malformed (a bare
            CR, a line that is not a field) or has no From field (or, with
            signers, several).
        :raises FromAddressError: with a policy: the From field names no
            single address with a valid domain.
        :raises NoSigningKey: with a policy: no rule covers the From domain.
        :raises RuntimeError: called twice.
        """
        pm = self._head.parse()
        if pm.malformed is not None:
            raise UnsignableMessageError(pm.malformed)
        froms = sum(name == b"from" for name, _ in pm.fields)
        if self._signers is not None:
            _check_froms(froms)
            chosen = self._signers
        else:
            if not froms:
                _check_froms(froms)
            assert self._policy is not None  # (which refuses several From fields with FromAddressError)
            if type(self._policy).signers_for_fields is SigningPolicy.signers_for_fields:
                chosen = self._policy.signers_for_domain(  # (by From domain, remembered)
                    _author_domain(tuple(raw for name, raw in pm.fields if name == b"from")))
            else:  # a policy that chooses otherwise (OpenDKIM's tables: by whole address, SenderHeaders)
                chosen = self._policy.signers_for_fields(pm.fields)
        for s in chosen:
            key = s._body_key()
            if key not in self._by_key:
                h = _core.core.BodyHasher(key[0], None, False)
                self._by_key[key] = h
                self._hashers.append(h)
        self._fields = pm.fields
        self._chosen = chosen
        return chosen

    def body(self, chunk: Union[bytes, bytearray, memoryview]) -> None:
        """Hash the next piece of the body (wire form: CRLF line endings);
        pieces may split lines, and CRLF pairs, anywhere.

        :raises RuntimeError: before :meth:`end_of_headers` or after :meth:`finish`.
        """
        if not self._hashers or self._done:
            raise SessionOrderError("body() called before end_of_headers() or after finish() (it belongs between them)")
        for h in self._hashers:
            h.update(chunk)

    def finish(self) -> List[bytes]:
        """The ``DKIM-Signature`` fields (CRLF line endings, each ending in
        CRLF), in the order of the signers; add them at the top of the
        message in that order.

        :raises UnsignableMessageError: the header fields cannot be signed
            (too many to list in ``h=``, a malformed field name).
        :raises RuntimeError: before :meth:`end_of_headers`, or called twice.
        """
        if not self._hashers or self._done:
            raise SessionOrderError("finish() is called once, after end_of_headers()")
        self._done = True
        out = []
        for s in self._chosen:
            h = self._by_key[s._body_key()]
            out.append(s._finish(self._fields, h.digest(), h.length if s.body_length else None))
        return out


class VerificationSession:
    """One message verified as it arrives.

    :param checks: the verification options and checks: a
        :class:`~fastdkim.Verifier`, an :class:`~fastdkim.aio.AsyncVerifier`
        or any :class:`~fastdkim._checks.Checks` (one may serve any number of
        sessions at once).
    :param now: verify as of this Unix time; ``None``: ``clock()`` at
        :meth:`end_of_headers`.
    :param max_header_bytes: the largest header block kept; a larger one
        makes the result a single ``permerror``.
    :raises ValueError: ``max_header_bytes`` is not a positive int.
    """

    __slots__ = ("_checks", "_now", "_clock", "_head", "_job", "_results", "_hashers", "_keys", "_done",
                 "_too_large")

    def __init__(self, checks: Checks, *, now: Optional[float] = None, clock: Callable[[], float] = time.time,
                 max_header_bytes: int = MAX_HEADER_BYTES) -> None:
        if not isinstance(checks, Checks):
            raise TypeError("checks must be a Verifier (or Checks), not %s" % type(checks).__name__)
        self._checks = checks
        self._now = now
        self._clock = clock
        self._head = _HeaderBlock(_check_limit(max_header_bytes))
        self._job: Optional[Job] = None
        self._results: Optional[List[Verification]] = None
        self._hashers: Dict[Tuple[bool, Optional[int], str], Any] = {}
        self._keys: Optional[Mapping[str, KeyOutcome]] = None
        self._done = False
        self._too_large: Optional[str] = None

    def header(self, name: Union[str, bytes], value: Union[bytes, bytearray, memoryview]) -> None:
        """Add a header field given as a milter receives it (see
        :func:`field_from_milter`).  A header block that grows past
        ``max_header_bytes`` is not kept further: the message then gets one
        ``permerror`` result.

        :raises RuntimeError: called after :meth:`end_of_headers`.
        """
        self.field(field_from_milter(name, value))

    def field(self, raw: bytes) -> None:
        """Add a header field in wire form (``Name: value`` with its CRLF).

        :raises RuntimeError: called after :meth:`end_of_headers`.
        """
        if self._too_large is not None:
            return
        try:
            self._head.add(bytes(raw))
        except HeaderTooLarge as exc:
            self._too_large = str(exc)
            self._head.fields = []

    def end_of_headers(self) -> List[str]:
        """End the header block and check each signature's tags.

        :returns: the names of the key records to look up (each once), for
            :meth:`set_keys`; empty when the results are settled already (no
            signature, a malformed header block, no usable signature).
        :raises RuntimeError: called twice.
        """
        if self._too_large is not None:
            self._head.ended = True
            self._results = [Verification(PERMERROR, "message cannot be parsed: %s" % self._too_large)]
            return []
        job = self._checks.begin(self._head.take(), self._now, self._clock)
        if isinstance(job, list):
            self._results = job
            return []
        self._job = job
        for s in job.sigs:
            if not s.result.status:
                k = (s.relaxed_b, s.l, s.hash_name)
                if k not in self._hashers:
                    self._hashers[k] = _core.core.BodyHasher(s.relaxed_b, s.l, False, s.hash_name)
        return list(job.names)

    def set_keys(self, keys: Mapping[str, Any]) -> None:
        """Give, by name, the key records :meth:`end_of_headers` asked for,
        any time before :meth:`finish`: each as a key source answers (the
        TXT records, a list of ``bytes`` or ``str``, or ``None`` for no
        record), or as what a lookup came to (a
        :class:`~fastdkim.KeyRecord`, or ``(status, reason)`` for a failed
        lookup, as :func:`~fastdkim._checks.lookup_failure` makes it).

        :raises KeyError: a name that :meth:`end_of_headers` returned is missing.
        :raises TypeError: ``keys`` is not a mapping.
        """
        if not isinstance(keys, Mapping):
            raise TypeError("keys must be a mapping of key names to TXT records, not %s" % type(keys).__name__)
        if self._job is not None:
            missing = [n for n in self._job.names if n not in keys]
            if missing:
                raise KeyError("no key outcome for %s" % ", ".join(missing))
        self._keys = {name: _outcome(self._checks, name, got) for name, got in keys.items()}

    def lookup_keys(self, source: Any) -> None:
        """Look the keys up in ``source`` (a :class:`~fastdkim.KeySource`)
        in the calling thread and :meth:`set_keys` them.  Raises nothing:
        a failed lookup becomes the result of its signatures."""
        from ._checks import lookup_failure

        keys: Dict[str, KeyOutcome] = {}
        for name in self._job.names if self._job is not None else ():
            try:
                txts = source.lookup(name)
            except Exception as exc:  # a broken key source must not crash verification
                keys[name] = lookup_failure(exc)
            else:
                keys[name] = self._checks.key_from(name, txts)
        self.set_keys(keys)

    def body(self, chunk: Union[bytes, bytearray, memoryview]) -> None:
        """Hash the next piece of the body (wire form: CRLF line endings);
        pieces may split lines, and CRLF pairs, anywhere.

        :raises RuntimeError: before :meth:`end_of_headers` or after :meth:`finish`.
        """
        if not self._head.ended or self._done:
            raise SessionOrderError("body() called before end_of_headers() or after finish() (it belongs between them)")
        for h in self._hashers.values():
            h.update(chunk)

    def finish(self) -> List[Verification]:
        """The results, one per signature field, top to bottom (those of
        :func:`~fastdkim.verify` for the same message).

        :raises RuntimeError: before :meth:`end_of_headers`, keys missing
            (:meth:`set_keys` not called while some were needed), or called twice.
        """
        if not self._head.ended or self._done:
            raise SessionOrderError("finish() is called once, after end_of_headers()")
        if self._results is not None:
            self._done = True
            return self._results
        job = self._job
        assert job is not None
        if self._keys is None:
            raise SessionOrderError("finish() needs the keys: call set_keys() or lookup_keys() first")
        self._done = True
        checks = self._checks
        for s in job.sigs:
            if not s.result.status:
                checks._use_key(s, self._keys[s.key_name])
        fields = job.message.fields
        for s in job.sigs:
            if not s.result.status:
                checks._compare_body(s, self._hashers[(s.relaxed_b, s.l, s.hash_name)])
                if not s.result.status:
                    checks._check_header_signature(s, fields)
        return [s.result for s in job.sigs]


def _outcome(checks: Any, name: str, got: Any) -> KeyOutcome:
    """What :meth:`VerificationSession.set_keys` was given for ``name``, as a
    key outcome: a key record or ``(status, reason)`` as it is, TXT records
    through ``key_from``."""
    if isinstance(got, KeyRecord) or (type(got) is tuple and len(got) == 2
                                      and all(isinstance(x, str) for x in got)):
        return got
    return checks.key_from(name, got)  # type: ignore[no-any-return]
