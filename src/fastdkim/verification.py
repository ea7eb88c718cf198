"""Verification (RFC 6376 section 6, RFC 8463, RFC 8301).

:func:`verify` returns one :class:`Verification` per ``DKIM-Signature`` field,
top to bottom.  Statuses are those of RFC 8601: ``pass``, ``fail``,
``neutral``, ``temperror``, ``permerror``.  A hostile or malformed message
never raises: whatever is wrong becomes a result with a reason.

The checks themselves are :mod:`fastdkim._checks`' (shared with
:mod:`fastdkim.aio`); this module looks the keys up in the calling thread.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from ._cache import BoundedCache
from ._checks import Checks, KeyOutcome, check_time, lookup_failure, shared_checks
from .keys import MIN_RSA_BITS
from .keysources import KeySource, as_key_source
from .message import MessageInput
from .results import FAIL, NEUTRAL, PASS, PERMERROR, TEMPERROR, Status, Verification
from .tags import MAX_H_NAMES

__all__ = ["Status", "Verification", "Verifier", "verify", "PASS", "FAIL", "NEUTRAL", "TEMPERROR", "PERMERROR"]


class Verifier(Checks):
    """Verification options, set once and used for many messages.

    :param keys: where public keys come from: ``None`` for DNS, a mapping of
        ``selector._domainkey.domain`` to the TXT value, a callable taking that
        name and returning the value (or ``None``), or a
        :class:`~fastdkim.keysources.KeySource`.
    :param max_signatures: signatures evaluated per message; later ones get a
        ``neutral`` result saying they were not evaluated.
    :param allow_sha1: accept ``rsa-sha1`` (refused by default, RFC 8301).
    :param min_key_bits: smallest RSA key accepted (RFC 8301: 1024).  Below
        1024 the verifier no longer conforms to RFC 8301 (like ``allow_sha1``,
        an opt-out for archives of old mail).
    :param clock_skew: seconds a ``t=`` may lie in the future.
    :param now: verify as of this Unix time (mail that sat in a queue);
        ``None`` uses ``clock()``.
    :param bare_lf: treat bare LF as CRLF; ``None``: yes for a message
        (bytes or file alike) whose first line ends in a bare LF (wire form
        cannot), no otherwise.  A bare CR in the header block, or a bare LF
        in a wire-form header block, makes every signature ``permerror``.
    :param max_header_names: longest ``h=`` list accepted.
    """

    def __init__(
        self,
        *,
        keys: Any = None,
        max_signatures: int = 10,
        allow_sha1: bool = False,
        min_key_bits: int = MIN_RSA_BITS,
        clock_skew: int = 300,
        now: Optional[float] = None,
        clock: Callable[[], float] = time.time,
        bare_lf: Optional[bool] = None,
        max_header_names: int = MAX_H_NAMES,
    ) -> None:
        super().__init__(max_signatures=max_signatures, allow_sha1=allow_sha1, min_key_bits=min_key_bits,
                         clock_skew=clock_skew, bare_lf=bare_lf, max_header_names=max_header_names)
        self.keys: KeySource = as_key_source(keys)
        check_time(now, clock)
        self.now = now
        self.clock = clock

    def verify(self, message: MessageInput) -> List[Verification]:
        """Verify every ``DKIM-Signature`` of ``message``.

        :returns: one :class:`Verification` per signature field, top to
            bottom; an empty list when the message has none.
        :raises TypeError: ``message`` is neither bytes-like nor a binary file.
        """
        return _run(self, message, self.keys, self.now, self.clock)


def _run(checks: Checks, message: MessageInput, source: KeySource, now: Optional[float],
         clock: Callable[[], float]) -> List[Verification]:
    """The three phases of *checks*, with the keys looked up in *source* in
    the calling thread (keys first, section 6.1.2, so that signatures
    without a usable key cost no body hashing); the usual message as bytes
    takes their lane (:meth:`Checks._quick`)."""
    if type(message) is bytes:
        results, when = checks._quick(message, now, clock, source)
        if results is not None:
            return results
        if when is not None:  # (the time is read once)
            now = when
    job = checks.begin(message, now, clock)
    if isinstance(job, list):
        return job
    keys: Dict[str, KeyOutcome] = {}
    for name in job.names:
        try:
            txts = source.lookup(name)
        except Exception as exc:  # a broken key source must not crash verification
            keys[name] = lookup_failure(exc)
        else:
            keys[name] = checks.key_from(name, txts)
    return checks.finish(job, keys)


def verify(
    message: MessageInput,
    *,
    keys: Any = None,
    max_signatures: int = 10,
    allow_sha1: bool = False,
    min_key_bits: int = MIN_RSA_BITS,
    clock_skew: int = 300,
    now: Optional[float] = None,
    clock: Callable[[], float] = time.time,
    bare_lf: Optional[bool] = None,
    max_header_names: int = MAX_H_NAMES,
) -> List[Verification]:
    """Verify every ``DKIM-Signature`` of ``message``; the options are
    :class:`Verifier`'s.

    As fast as a reused :class:`Verifier`: calls with the same options
    share what a verifier remembers between messages (parsed key records by
    their bytes, what a signer's constant tags imply), and calls with
    ``keys=None`` share the process-wide DNS source and its cache.  Nothing
    else is shared: ``keys``, ``now`` and ``clock`` are this call's alone.

    :returns: one :class:`Verification` per signature field, top to bottom.
    :raises TypeError: ``message`` is neither bytes-like nor a binary file,
        or ``keys`` is not a key source.
    :raises OptionError: an option has an unusable value.
    """
    check_time(now, clock)
    checks = shared_checks(max_signatures, allow_sha1, min_key_bits, clock_skew, bare_lf, max_header_names)
    return _run(checks, message, _source_of(keys), now, clock)


#: Key sources made from dicts, by the dicts' items: a key source is a pure
#: function of them, so equal items may share one.
_DICT_SOURCES: BoundedCache[Tuple[Any, ...], KeySource] = BoundedCache(16)


def _source_of(keys: Any) -> KeySource:
    """:func:`~fastdkim.keysources.as_key_source` of *keys*, without building
    the same mapping's key source again at every call: a dict whose items
    are equal to those of one seen before gets that one's source (which
    holds a copy of them, so it answers exactly as a new one would).

    :raises TypeError: *keys* is not a key source.
    :raises OptionError: a mapping holds an invalid name or value.
    """
    if type(keys) is not dict:
        return as_key_source(keys)
    items = tuple(keys.items())
    try:
        source = _DICT_SOURCES.get(items)
    except TypeError:  # unhashable values (lists of records)
        return as_key_source(keys)
    if source is None:
        source = as_key_source(keys)
        _DICT_SOURCES.set(items, source)
    return source
