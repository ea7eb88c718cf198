"""Signing: build ``DKIM-Signature`` header fields (RFC 6376 section 5, RFC 8463).

A :class:`Signer` is built once (key loaded, options checked) and signs any
number of messages.  :func:`sign_all` applies several signers to one message
(dual RSA + Ed25519 signing) and computes each distinct body hash once.
"""
from __future__ import annotations

import hashlib
import os
import time
from typing import Any, BinaryIO, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union, cast

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from . import _core
from ._cache import BoundedCache
from .canonicalization import ONE_CALL_MAX, digest_body, parse_canonicalization
from ._fold import LINE as _LINE, fold_tag as _fold_tag
from ._signfile import write_signed_copy
from .errors import SignerOptionError, SigningError, UnsignableMessageError
from .keys import KeyInput, PrivateKey, check_signing_key, key_algorithm, load_private_key
from ._canon_py import HeaderIndex
from .message import (MAX_HEADER_BYTES, MAX_HEADER_FIELDS, MessageInput, ParsedMessage, as_index, is_file,
                      read_message)
from .tags import FIELD_NAME, MAX_H_NAMES, is_h_name
from ._text import is_subdomain, qp_encode, to_a_label_domain

__all__ = ["Signer", "sign_all", "DEFAULT_HEADERS", "DEFAULT_OVERSIGN"]

#: Header fields signed when present (each instance), in this order.
DEFAULT_HEADERS: Tuple[str, ...] = (
    "from", "sender", "reply-to", "subject", "date", "message-id", "to", "cc",
    "in-reply-to", "references", "mime-version", "content-type",
    "content-transfer-encoding", "content-disposition", "content-language",
    "list-id", "list-help", "list-unsubscribe", "list-unsubscribe-post",
    "list-subscribe", "list-post", "list-owner", "list-archive",
    "resent-date", "resent-from", "resent-sender", "resent-to", "resent-cc",
    "resent-message-id", "feedback-id",
)
#: Header fields listed once more than they occur, so that adding another
#: instance after signing breaks the signature (section 8.15, "oversigning").
DEFAULT_OVERSIGN: Tuple[str, ...] = (
    "from", "sender", "reply-to", "subject", "date", "message-id", "to", "cc",
    "in-reply-to", "references", "mime-version", "content-type",
    "content-transfer-encoding", "content-disposition",
    "list-id", "list-help", "list-unsubscribe", "list-unsubscribe-post",
    "list-subscribe", "list-post", "list-owner", "list-archive",
)

_NAME = "DKIM-Signature"
_WSP = " \t\r\n"


def _header_names(names: Union[str, Iterable[str]]) -> Tuple[str, ...]:
    """The names to sign, lower-cased, surrounding whitespace removed.

    :raises SigningError: a name that is not a string.
    :raises SignerOptionError: a name that an ``h=`` list cannot hold
        (:func:`~fastdkim.tags.is_h_name`).
    """
    if isinstance(names, str):  # "from:to:subject", as in h=
        names = [n for n in names.split(":") if n.strip(_WSP)]
    out = []
    for n in names:
        if not isinstance(n, str):
            raise SigningError("header field names must be strings, not %r" % (n,))
        n2 = n.strip(_WSP)
        if not n2.isascii() or not is_h_name(n2.encode("ascii")):
            raise SignerOptionError("invalid header field name %r (printable US-ASCII other than ':' and ';', "
                                    "no spaces)" % n)
        out.append(n2.lower())
    return tuple(out)


def signed_names(headers: Union[str, Iterable[str]]) -> Tuple[str, ...]:
    """The names a :class:`Signer` given ``headers`` signs: lower-cased,
    From first where ``headers`` lacks it.

    :raises SigningError: a name that is not a string.
    :raises SignerOptionError: a name that an ``h=`` list cannot hold, or
        DKIM-Signature (the signature itself).
    """
    names = _header_names(headers)
    if "from" not in names:
        names = ("from",) + names
    if "dkim-signature" in names:
        raise SignerOptionError("DKIM-Signature cannot be listed in the signed headers")
    return names


class Signer:
    """Signs messages for one domain and selector with one key.

    :param domain: the signing domain (``d=``); U-labels become A-labels.
    :param selector: the selector (``s=``).
    :param private_key: a ``cryptography`` RSA or Ed25519 private key, PEM/DER
        bytes, or a path to a key file.
    :param algorithm: ``rsa-sha256`` or ``ed25519-sha256``; inferred from the
        key when omitted.  ``rsa-sha1`` is refused (RFC 8301).
    :param canonicalization: ``header/body``, each ``simple`` or ``relaxed``
        (default ``relaxed/relaxed``).
    :param headers: header field names to sign, every instance present (a
        sequence of names, or one string of names separated by colons);
        default :data:`DEFAULT_HEADERS`.  ``From`` is always signed.
    :param oversign: names of fields listed once more than they occur (once
        when the message has none), so that another instance added later
        breaks the signature (default :data:`DEFAULT_OVERSIGN`, restricted to
        fields that are signed).
    :param identity: the ``i=`` AUID, e.g. ``"user@example.com"`` or
        ``"@sub.example.com"``; its domain must be ``domain`` or a subdomain.
    :param timestamp: add ``t=`` (signing time).
    :param expiration: seconds of validity; adds ``x=``.
    :param body_length: add ``l=`` (the canonical body length).  Risky: it lets
        anyone append content to the signed message (RFC 6376 section 8.2).
    :param copy_headers: add ``z=`` with copies of the signed header fields.
    :param bare_lf: treat bare LF as CRLF; ``None``: yes for a message
        (bytes or file alike) whose first line ends in a bare LF (wire form
        cannot), no otherwise.  A message with a bare CR in its header block,
        or a bare LF in a wire-form header block, is refused.
    :param password: password of an encrypted private key.
    :param min_key_bits: smallest RSA key accepted (never below 1024).
    :param clock: the time source for ``t=`` (seconds since the epoch).
    :raises KeyFormatError: the key cannot be loaded or is of an unusable type.
    :raises KeyTooWeakError: an RSA key under ``min_key_bits``.
    :raises TypeError: an argument is not of its type (the key among them:
        neither a key object, bytes, nor a path).
    :raises SignerOptionError: invalid domain, selector, identity or option
        (an ``OptionError`` and a ``SigningError``).
    """

    def __init__(
        self,
        domain: str,
        selector: str,
        private_key: KeyInput,
        *,
        algorithm: Optional[str] = None,
        canonicalization: str = "relaxed/relaxed",
        headers: Optional[Union[str, Iterable[str]]] = None,
        oversign: Optional[Union[str, Iterable[str]]] = None,
        identity: Optional[str] = None,
        timestamp: bool = True,
        expiration: Optional[int] = None,
        body_length: bool = False,
        copy_headers: bool = False,
        bare_lf: Optional[bool] = None,
        password: Optional[bytes] = None,
        min_key_bits: int = 1024,
        clock: Callable[[], float] = time.time,
    ) -> None:
        for arg, name in (("domain", domain), ("selector", selector)):
            if not isinstance(name, str):
                raise TypeError("Signer: %s must be a str, not %s" % (arg, type(name).__name__))
        for arg, opt in (("algorithm", algorithm), ("identity", identity)):
            if opt is not None and not isinstance(opt, str):
                raise TypeError("Signer: %s must be a str or None, not %s" % (arg, type(opt).__name__))
        if not isinstance(canonicalization, str):
            raise TypeError("Signer: canonicalization must be a str such as 'relaxed/simple', not %s"
                            % type(canonicalization).__name__)
        if password is not None and not isinstance(password, (bytes, bytearray, memoryview)):
            raise TypeError("Signer: password must be bytes, not %s" % type(password).__name__)
        if expiration is not None and (isinstance(expiration, bool) or not isinstance(expiration, int)):
            raise TypeError("Signer: expiration must be an int (seconds), not %s" % type(expiration).__name__)
        for arg, flag in (("timestamp", timestamp), ("body_length", body_length), ("copy_headers", copy_headers)):
            if not isinstance(flag, bool):
                raise TypeError("Signer: %s must be True or False, not %s%s" % (
                    arg, type(flag).__name__, " (t= is the signing time, from clock)" if arg == "timestamp" else ""))
        if bare_lf is not None and not isinstance(bare_lf, bool):
            raise TypeError("Signer: bare_lf must be True, False or None, not %s" % type(bare_lf).__name__)
        for arg, names in (("headers", headers), ("oversign", oversign)):
            if names is not None and (isinstance(names, (bytes, bytearray, bool)) or
                                      not isinstance(names, (str, Iterable))):
                raise TypeError("Signer: %s must be a str of names separated by ':' or an iterable of str, not %s"
                                % (arg, type(names).__name__))
        try:
            self.domain = to_a_label_domain(domain)
        except (ValueError, AttributeError) as exc:
            raise SignerOptionError("invalid signing domain: %s" % exc) from None
        try:
            self.selector = to_a_label_domain(selector)
        except (ValueError, AttributeError) as exc:
            raise SignerOptionError("invalid selector: %s" % exc) from None
        self.key: PrivateKey = load_private_key(private_key, password)
        check_signing_key(self.key, min_key_bits)
        natural = key_algorithm(self.key)
        if algorithm is not None:
            alg = algorithm.strip().lower()
            if alg == "rsa-sha1":
                raise SignerOptionError("rsa-sha1 must not be used for signing (RFC 8301)")
            if alg not in ("rsa-sha256", "ed25519-sha256"):
                raise SignerOptionError("unknown algorithm %r: use rsa-sha256 or ed25519-sha256" % algorithm)
            if alg != natural:
                raise SignerOptionError("algorithm %s does not match the %s key" % (alg, natural.split("-")[0]))
        self.algorithm = natural
        try:
            hc, bc = parse_canonicalization(canonicalization)
        except (ValueError, AttributeError) as exc:
            raise SignerOptionError(str(exc)) from None
        self.header_canon, self.body_canon = hc, bc
        self._relaxed_headers = hc == "relaxed"
        self._relaxed_body = bc == "relaxed"
        names = signed_names(DEFAULT_HEADERS if headers is None else headers)
        self.headers = tuple(dict.fromkeys(names))
        over = _header_names(DEFAULT_OVERSIGN if oversign is None else oversign)
        self.oversign = frozenset(over) & frozenset(self.headers)
        self.identity: Optional[str] = None
        if identity is not None:
            local, at, idom = identity.rpartition("@")
            if not at:
                raise SignerOptionError("identity %r must contain '@'" % identity)
            try:
                idom = to_a_label_domain(idom)
            except ValueError as exc:
                raise SignerOptionError("invalid identity domain: %s" % exc) from None
            if not is_subdomain(idom, self.domain):
                raise SignerOptionError("identity domain %s is not %s or a subdomain of it" % (idom, self.domain))
            self.identity = local + "@" + idom
        if expiration is not None and (not isinstance(expiration, int) or expiration <= 0):
            raise SignerOptionError("expiration must be a positive number of seconds")
        self._h_plan = tuple((n, n.encode("ascii"), 1 if n in self.oversign else 0) for n in self.headers)
        self._fresh_caches()
        static = [("v", "1"), ("a", self.algorithm), ("c", "%s/%s" % (hc, bc)), ("d", self.domain), ("s", self.selector)]
        if self.identity is not None:
            static.append(("i", qp_encode(self.identity.encode("utf-8"))))
        parts: List[str] = [_NAME + ":"]
        col = len(parts[0])
        for tname, tvalue in static:
            col = _fold_tag(parts, col, tname, tvalue)
        self._prefix, self._prefix_col = "".join(parts), col
        self.timestamp = bool(timestamp)
        self.expiration = expiration
        self.body_length = bool(body_length)
        self.copy_headers = bool(copy_headers)
        self.bare_lf = bare_lf
        self._clock = clock

    def _fresh_caches(self) -> None:
        self._h_cache: BoundedCache[Tuple[str, ...], Tuple[str, int]] = BoundedCache(256)
        self._plans: BoundedCache[Union[bytes, Tuple[bytes, ...]], _Plan] = BoundedCache(256)
        self._time_text: Tuple[Any, str, int] = (None, "", 0)
        #: the names key and plan of the last block planned (one object:
        #: threads see a pair or the next one, never half of each)
        self._last_plan: Tuple[Union[bytes, Tuple[bytes, ...]], Optional[_Plan]] = (b"", None)
        #: (the core it belongs to, body_length and the key as they were, the
        #: core's SignLane for this signer, what an RSA key signs its output
        #: with), made at first use and again when any of the first three changes
        self._lane: Optional[Tuple[Any, bool, Any, Any, Any]] = None

    def _sign_data(self, data: bytes) -> bytes:
        key: Any = self.key
        if self.algorithm == "ed25519-sha256":  # RFC 8463 section 3: sign the SHA-256 of the data
            return key.sign(hashlib.sha256(data).digest())  # type: ignore[no-any-return]
        return key.sign(data, _PKCS1, _SHA256)  # type: ignore[no-any-return]

    def _new_lane(self) -> Tuple[Any, bool, Any, Any, Any]:
        """The active core's signing lane for this signer (kept with the core
        it belongs to, which the tests switch, with ``body_length`` and with
        the key; the lane reads wire form alone: sign() takes it only where
        ``bare_lf`` is not true, and LF mail goes on to the general reading).

        The lane gives the SHA-256 of what is signed, which Ed25519 signs
        (RFC 8463) and which cryptography's own RSA keys take prehashed;
        any other RSA key object (a wrapper around a key held elsewhere,
        say) is given the data and SHA-256, as the general reading gives it."""
        core = _core.core
        key = self.key
        rsa_hash: Any = None
        if self.algorithm != "ed25519-sha256":
            rsa_hash = _PREHASHED if type(key).__module__.startswith("cryptography.") else _SHA256
        lane = (core, self.body_length, key,
                core.SignLane(self._relaxed_headers, self._relaxed_body, self.body_length, rsa_hash is not _SHA256,
                              self._lane_plan, self._head, self._clock, None, MAX_HEADER_BYTES, MAX_HEADER_FIELDS,
                              ONE_CALL_MAX, _LINE),
                rsa_hash)
        self._lane = lane
        return lane

    def _lane_plan(self, index: "HeaderIndex") -> "_Plan":
        return self._plan_of(index, index)

    # -- pickling: the key travels as PKCS#8 DER, the caches are rebuilt --------------

    def __getstate__(self) -> Dict[str, Any]:
        from cryptography.hazmat.primitives import serialization

        state = {k: v for k, v in self.__dict__.items()
                 if k not in ("_h_cache", "_plans", "_time_text", "_last_plan", "_lane")}
        state["key"] = self.key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption())
        return state

    def __setstate__(self, state: Dict[str, Any]) -> None:
        from cryptography.hazmat.primitives import serialization

        state = dict(state)
        # The key was checked when the pickled Signer loaded it; checking an
        # RSA key again costs each worker process tens of milliseconds.  (A
        # pickle from an untrusted source is unsafe to load in any case.)
        key: Any = serialization.load_der_private_key(state.pop("key"), password=None,
                                                      unsafe_skip_rsa_key_validation=True)
        self.__dict__.update(state)
        self.key = key
        self._fresh_caches()

    def __repr__(self) -> str:
        return "Signer(domain=%r, selector=%r, algorithm=%r, canonicalization='%s/%s')" % (
            self.domain, self.selector, self.algorithm, self.header_canon, self.body_canon)

    # -- public API -----------------------------------------------------------------

    def sign(self, message: MessageInput) -> bytes:
        """Sign ``message`` (bytes or a binary file object read to its end).

        :returns: the ``DKIM-Signature`` header field, folded, ready to
            prepend to the message: its lines end as the message's do (CRLF,
            or LF for a message stored with Unix line endings).
        :raises MessageFormatError: the message has no From field or several
            (:class:`UnsignableMessageError`), its header block is malformed
            (a bare CR, or a bare LF in wire form) or too large.
        """
        if type(message) is bytes and not self.bare_lf and not self.copy_headers:
            # the usual message: the core's lane gives what is signed, in one call
            lane = self._lane
            if lane is None or lane[0] is not _core.core or lane[1] != self.body_length or lane[2] is not self.key:
                lane = self._new_lane()
            got = lane[3].start(message)
            if got is not None:
                key: Any = lane[2]
                sig = key.sign(got[0]) if lane[4] is None else key.sign(got[0], _PKCS1, lane[4])
                return lane[0].fold_base64(sig, got[2], _LINE, got[1], b"\r\n")  # type: ignore[no-any-return]
        pm = _read_signable(message, self.bare_lf)
        digest, length = digest_body(pm.body, self._relaxed_body, None, pm.bare_lf)
        field = self._finish(_fields_of(pm), digest, length if self.body_length else None)
        return field.replace(b"\r\n", b"\n") if pm.lf_endings else field

    def sign_message(self, message: MessageInput) -> bytes:
        """Return ``message`` with its new ``DKIM-Signature`` field prepended
        (a binary file is read whole; :meth:`sign_file` streams instead).

        :raises TypeError: ``message`` is neither bytes-like nor a binary file.

        The field takes the message's own line endings (LF for a message stored
        with Unix line endings, CRLF otherwise).
        """
        if is_file(message):  # a binary file: its whole content, signed
            read = message.read()  # type: ignore[union-attr]
            if not isinstance(read, (bytes, bytearray)):
                raise TypeError("sign_message: the file must be opened in binary mode")
            message = read
        elif not isinstance(message, (bytes, bytearray, memoryview)):
            raise TypeError("sign_message: message must be bytes-like or a binary file, not %s"
                            % type(message).__name__)
        data = bytes(message)
        headers, lf = _sign_all(data, [self], self.bare_lf)
        return _as_endings(headers, lf) + data

    def sign_file(
        self,
        src: Union[str, "os.PathLike[str]", BinaryIO],
        dst: Union[str, "os.PathLike[str]", BinaryIO],
        *,
        overwrite: bool = False,
    ) -> bytes:
        """Sign the message in ``src`` and write the signed message to ``dst``.

        Memory stays bounded whatever the size: a seekable ``src`` is read
        twice, anything else is spooled to a temporary file.  A path ``dst``
        is written through a temporary file and moved into place atomically;
        an existing ``dst`` is replaced only with ``overwrite=True``.

        :returns: the header field that was prepended.
        :raises FileExistsError: ``dst`` exists and ``overwrite`` is false.
        :raises SigningError: ``dst`` is the same file as ``src``.
        """
        return sign_file(src, dst, [self], bare_lf=self.bare_lf, overwrite=overwrite)

    # -- internals ------------------------------------------------------------------

    def _body_key(self) -> Tuple[bool, bool]:
        return (self._relaxed_body, self.body_length)

    def _select(self, fields: Sequence[Tuple[bytes, bytes]]) -> Tuple[Tuple[str, ...], List[bytes]]:
        """The ``h=`` list for these fields and the fields it selects, in order.

        :raises UnsignableMessageError: the header block is malformed, has no
            From field or several, or more fields to sign than a verifier accepts.
        """
        plan = self._plan_of(fields, as_index(fields))
        return plan.h, [fields[i][1] for i in plan.take]

    def _plan_of(self, fields: "Union[Sequence[Tuple[bytes, bytes]], HeaderIndex]",
                 index: "Optional[HeaderIndex]") -> "_Plan":
        """The plan (``h=`` list, which field each entry takes) for a header
        block given as ``(name, raw)`` pairs or as the core's index of it
        (then *index* is ``as_index(fields)``, else ``None``).

        :raises UnsignableMessageError: see :meth:`_select`.
        """
        # A sender's messages mostly share one sequence of field names: the
        # plan is computed once per sequence (an index gives it as one bytes
        # object; its names never hold a colon, so the key is unambiguous).
        key: Union[bytes, Tuple[bytes, ...]]
        pairs = cast("Sequence[Tuple[bytes, bytes]]", fields)
        # (checked at every message: such a first line gives its field the
        # name it would have without the leading whitespace)
        if index is not None:
            first = index.raw(0) if len(index) else b""
        else:
            first = pairs[0][1] if pairs else b""
        if first[:1] in (b" ", b"\t"):
            raise UnsignableMessageError("malformed header block: its first line is a continuation line")
        key = index.names_key() if index is not None else tuple([f[0] for f in pairs])
        # Most often the sequence is the last block's: a comparison, not a hash of it.
        last = self._last_plan
        if last[1] is not None and last[0] == key:
            return last[1]
        plan = self._plans.get(key)
        if plan is None:
            plan = self._new_plan(index.fields() if index is not None else pairs)
            self._plans.set(key, plan)
        self._last_plan = (key, plan)
        return plan

    def _new_plan(self, fields: Sequence[Tuple[bytes, bytes]]) -> "_Plan":
        if len(fields) >= MAX_HEADER_FIELDS:
            # (a reader's limit, this library's included: the signed copy would be refused)
            raise UnsignableMessageError("message has %d header fields: with its signature it would have more "
                                         "than a verifier reads (%d)" % (len(fields), MAX_HEADER_FIELDS))
        for name, raw in fields:
            if not FIELD_NAME.match(name):
                raise UnsignableMessageError("malformed header block: %s: %r" % (
                    "a line without a colon" if not name else "not a field name", raw[:60]))
        positions: Dict[bytes, List[int]] = {}
        for i, (name, _) in enumerate(fields):
            positions.setdefault(name, []).append(i)
        _check_froms(len(positions.get(b"from", ())))
        h: List[str] = []
        take: List[int] = []
        for hname, nb, over in self._h_plan:
            lst = positions.get(nb)
            if lst:
                h.extend([hname] * (len(lst) + over))
                take.extend(reversed(lst))  # h= picks instances from the bottom up
            elif over:  # absent: listed once, so that one added later breaks the signature
                h.append(hname)
        if len(h) > MAX_H_NAMES:
            raise UnsignableMessageError("%d header fields to sign: more than a verifier accepts (%d)"
                                         % (len(h), MAX_H_NAMES))
        return _Plan(tuple(h), take)

    def _folded_h(self, h: Tuple[str, ...]) -> Tuple[str, int]:
        # The h= tag always starts a line, so its folded text depends on the
        # list alone: messages with the same header set reuse it.
        hit = self._h_cache.get(h)
        if hit is None:
            out: List[str] = []
            col = _fold_tag(out, 0, "h", ":".join(h), newline=True)
            hit = ("".join(out), col)
            self._h_cache.set(h, hit)
        return hit

    def _head(self, plan: "_Plan", body_len: Optional[int], now: int) -> Tuple[bytes, int]:
        """The field's text up to its ``h=`` tag included (ASCII), and the
        column where it ends: the fixed tags, ``l=``, ``t=`` and ``x=`` (for
        the time *now*), ``h=``."""
        last = plan.text
        if body_len is None and last[0] == now:  # the same second, the same text
            return last[1], last[2]
        out = [self._prefix]
        col = self._prefix_col
        if body_len is not None:
            col = _fold_tag(out, col, "l", str(body_len))
        if self.timestamp or self.expiration is not None:
            # t= and x= change once a second: fold them once a second.
            cached = self._time_text
            if cached[0] != (now, col):
                parts: List[str] = []
                c = col
                if self.timestamp:
                    c = _fold_tag(parts, c, "t", str(now))
                if self.expiration is not None:
                    c = _fold_tag(parts, c, "x", str(now + self.expiration))
                cached = self._time_text = ((now, col), "".join(parts), c)
            out.append(cached[1])
            col = cached[2]
        h_text, col = self._folded_h(plan.h)
        out.append(h_text)
        head = "".join(out).encode("ascii")
        if body_len is None:
            plan.text = (now, head, col)  # one assignment: threads see all of it or none
        return head, col

    def _finish(self, fields: "Union[Sequence[Tuple[bytes, bytes]], HeaderIndex]", bh: bytes,
                body_len: Optional[int]) -> bytes:
        """The signature field (CRLF line endings) for a header block given as
        ``(name, raw)`` pairs or as the core's index of it.

        :raises UnsignableMessageError: see :meth:`_select`.
        """
        index = as_index(fields)
        return self._field(self._plan_of(fields, index), fields, index, bh, body_len)

    def _field(self, plan: "_Plan", fields: "Union[Sequence[Tuple[bytes, bytes]], HeaderIndex]",
               index: "Optional[HeaderIndex]", bh: bytes, body_len: Optional[int]) -> bytes:
        """:meth:`_finish` with the block's *plan* (and *index*, its
        ``as_index``) known."""
        head, col = self._head(plan, body_len, int(self._clock()))
        core = _core.core
        selected: List[bytes] = []
        if self.copy_headers or index is None:
            pairs = cast("Sequence[Tuple[bytes, bytes]]", fields)
            selected = index.take(plan.take) if index is not None else [pairs[i][1] for i in plan.take]
        if self.copy_headers:
            z = "|".join(qp_encode(raw.rstrip(b"\r\n").replace(b"\r\n", b""), b"|") for raw in selected)
            z_text: List[str] = []
            col = _fold_tag(z_text, col, "z", z)
            head += "".join(z_text).encode("ascii")
        unsigned, col = core.body_hash_tags(head, col, bh, _LINE)
        if index is not None:
            data = index.canonical(plan.take, unsigned, self._relaxed_headers)
        else:
            data = core.canonical_headers(selected, unsigned, self._relaxed_headers)
        return core.fold_base64(self._sign_data(data), col, _LINE, unsigned, b"\r\n")


class _Plan:
    """What a signer does with one sequence of field names: the ``h=`` list,
    the position of the field each entry takes, and the field's text up to
    ``h=`` as last made (for the second ``now``)."""

    __slots__ = ("h", "take", "text")

    def __init__(self, h: Tuple[str, ...], take: List[int]) -> None:
        self.h = h
        self.take = take
        #: (now, the text up to h= included, the column where it ends)
        self.text: Tuple[Optional[int], bytes, int] = (None, b"", 0)


_PKCS1, _SHA256 = padding.PKCS1v15(), hashes.SHA256()
_PREHASHED = Prehashed(_SHA256)


def _hash_bodies(pm: ParsedMessage, signers: Sequence[Signer], bare_lf: bool) -> Dict[Tuple[bool, bool], Any]:
    hashers: Dict[Tuple[bool, bool], Any] = {}
    for s in signers:
        k = s._body_key()
        if k not in hashers:
            hashers[k] = _core.core.BodyHasher(k[0], None, bare_lf)
    hs = list(hashers.values())
    for chunk in pm.body:
        for h in hs:
            h.update(chunk)
    return hashers


def sign_all(message: MessageInput, signers: Sequence[Signer], *, bare_lf: Optional[bool] = None) -> List[bytes]:
    """Sign one message with several signers, hashing each distinct body once.

    Signers with the same body canonicalization and ``l=`` setting share one
    body hash.  The returned header fields (in the message's line endings,
    as :meth:`Signer.sign` returns them) are in the order of ``signers``;
    prepend them in that order.

    :raises MessageFormatError: see :meth:`Signer.sign`.
    """
    fields, lf = _sign_all(message, signers, bare_lf)
    return [_as_endings([f], lf) for f in fields]


def _sign_all(message: MessageInput, signers: Sequence[Signer], bare_lf: Optional[bool]) -> Tuple[List[bytes], bool]:
    """The header fields, and whether the message uses bare LF line endings."""
    if isinstance(signers, Signer) or not isinstance(signers, Sequence) or \
            not all(isinstance(x, Signer) for x in signers):
        raise TypeError("signers must be a sequence of Signer objects, not %s" % type(signers).__name__)
    if not signers:
        raise SigningError("no signers given")
    if bare_lf is None:
        bare_lf = signers[0].bare_lf
    pm = _read_signable(message, bare_lf)
    return sign_parsed(pm, signers), pm.lf_endings


def _check_froms(count: int) -> None:
    """A message is signed with exactly one From field (RFC 6376 section
    5.4 signs it; RFC 5322 allows one, and readers would show either of two).

    :raises UnsignableMessageError: ``count`` (the message's From fields) is not 1.
    """
    if count == 0:
        raise UnsignableMessageError("message has no From header field; it cannot be DKIM signed")
    if count > 1:
        raise UnsignableMessageError("message has %d From header fields (RFC 5322 allows one; readers show "
                                     "either); it is not signed" % count)


def sign_parsed(pm: ParsedMessage, signers: Sequence[Signer]) -> List[bytes]:
    """The header fields (CRLF line endings) of ``signers`` for the message
    read as ``pm`` (its body stream is consumed).

    :raises UnsignableMessageError: the message has no From field, or several.
    """
    fields = _fields_of(pm)
    index = as_index(fields)
    _check_froms(len(index.find(b"from")) if index is not None else sum(name == b"from" for name, _ in pm.fields))
    if len(fields) + len(signers) > MAX_HEADER_FIELDS:
        raise UnsignableMessageError("message has %d header fields: with %d signatures it would have more than "
                                     "a verifier reads (%d)" % (len(fields), len(signers), MAX_HEADER_FIELDS))
    hashers = _hash_bodies(pm, signers, pm.bare_lf)
    out = []
    for s in signers:
        h = hashers[s._body_key()]
        out.append(s._finish(fields, h.digest(), h.length if s.body_length else None))
    return out


def _fields_of(pm: ParsedMessage) -> "Union[List[Tuple[bytes, bytes]], HeaderIndex]":
    """The header fields of ``pm``: the core's index while it has one, else the list."""
    index = pm.index
    return index if index is not None else pm.fields


def _read_signable(message: MessageInput, bare_lf: Optional[bool]) -> ParsedMessage:
    """The parsed message, refused when its header block is malformed."""
    pm = read_message(message, bare_lf=bare_lf)
    if pm.malformed is not None:
        raise UnsignableMessageError(pm.malformed)
    return pm


def _as_endings(headers: Sequence[bytes], lf: bool) -> bytes:
    """Header fields joined, in the line endings of the message they go on."""
    text = b"".join(headers)
    return text.replace(b"\r\n", b"\n") if lf else text


def sign_file(
    src: Union[str, "os.PathLike[str]", BinaryIO],
    dst: Union[str, "os.PathLike[str]", BinaryIO],
    signers: Sequence[Signer],
    *,
    bare_lf: Optional[bool] = None,
    overwrite: bool = False,
) -> bytes:
    """Sign the message in ``src`` with ``signers``; write the signed message to ``dst``.

    A path ``dst`` is written through a temporary file in the same directory
    and moved into place atomically, so it never holds a partial message; it
    replaces an existing file only with ``overwrite=True``.

    :returns: the header fields that were prepended (in the message's own
        line endings).
    :raises SigningError: ``dst`` is the same file as ``src``.
    :raises FileExistsError: ``dst`` exists and ``overwrite`` is false.
    :raises OSError: reading or writing failed (a path ``dst`` is left untouched).
    """
    return write_signed_copy(src, dst, lambda source: _as_endings(*_sign_all(source, signers, bare_lf)),
                             overwrite=overwrite)
