"""ARC (RFC 8617): sealing messages and validating their chains.

Seal::

    sealer = fastdkim.arc.ARCSealer("lists.example.org", "arc", key_pem, authserv_id="lists.example.org")
    fields = sealer.seal(message)          # [ARC-Seal, ARC-Message-Signature, ARC-Authentication-Results]
    sealed = b"".join(fields) + message

Validate::

    result = fastdkim.arc.verify_chain(sealed)      # DNS by default
    print(result.status, result.instances, result.reason)

The sealer validates the chain already on the message (with the same key
sources, key checks and canonicalization as DKIM verification) and writes
the next set with the ``cv=`` that validation gave: ``none`` for the first
set, ``pass``, or ``fail``, in which case the seal covers only its own set
(RFC 8617 section 5.1.2) and later sealers add nothing more.
"""
from __future__ import annotations

from binascii import b2a_base64
import time
from typing import Any, Callable, Iterable, List, Optional, Sequence, Tuple, Union

from . import _core
from ._checks import shared_checks
from .arc_authres import arc_resinfo
from .arc_chain import (
    AAR, ARC_FIELDS, FAIL, MAX_INSTANCES, NONE, PASS, ARCResult, ARCSet, Chain, body_hashes, validate, verify_chain,
)
from .arc_fold import fold_fields, layout
from .authres import authentication_results, is_authserv_id
from .errors import OptionError, SigningError, TemporaryLookupError, UnsignableMessageError
from .keys import MIN_RSA_BITS, KeyInput
from .keysources import KeySource, as_key_source
from .message import MessageInput, read_message
from .signing import Signer, _header_names
from .tags import MAX_H_NAMES
from .verification import verify

__all__ = ["ARCSealer", "ARCResult", "ARCSet", "verify_chain", "PASS", "FAIL", "NONE", "DEFAULT_ARC_HEADERS"]

#: Header fields the ARC-Message-Signature signs when present (each
#: instance once, without oversigning: a forwarder's seal describes the
#: message as it leaves, and later hops may add list fields).
DEFAULT_ARC_HEADERS = (
    "from", "sender", "reply-to", "subject", "date", "message-id", "to", "cc", "in-reply-to", "references",
    "mime-version", "content-type", "content-transfer-encoding", "content-disposition", "content-language",
    "list-id", "list-help", "list-unsubscribe", "list-unsubscribe-post", "list-subscribe", "list-post",
    "list-owner", "list-archive",
)
#: Fields an ARC-Message-Signature must not sign (RFC 8617 section 4.1.2:
#: ARC-Seal never; Authentication-Results are removed by later hops).
_FORBIDDEN = frozenset(("arc-seal", "authentication-results"))


class ARCSealer:
    """Seals messages for one ADMD: adds the next ARC set.

    :param domain: the sealing domain (``d=`` of the AMS and AS).
    :param selector: the selector (``s=``) of the key record.
    :param private_key: as for :class:`fastdkim.Signer` (an RSA or Ed25519
        key, PEM/DER bytes or a path).
    :param authserv_id: the authserv-id written in the
        ARC-Authentication-Results (this ADMD's name, e.g. ``mx.example.org``).
    :param keys: where public keys come from to validate the existing
        chain and the DKIM signatures, as :func:`fastdkim.verify` takes it
        (``None``: DNS).
    :param headers: header field names the AMS signs (default
        :data:`DEFAULT_ARC_HEADERS`); ``From`` is always signed, and so
        are the DKIM-Signature fields present (RFC 8617 section 4.1.2: each
        listed in ``h=``, after the others); ARC-Seal and
        Authentication-Results cannot be.
    :param canonicalization: of the AMS (default ``relaxed/relaxed``; the
        AS is always relaxed, RFC 8617 section 4.1.3).
    :param timestamp: add ``t=`` to the AMS and AS.
    :param width: fold the fields into lines of at most this many columns
        (``None``: each field on one line, the layout the open ARC test
        suite expects).
    :param password: password of an encrypted private key.
    :param min_key_bits: smallest RSA key accepted, for signing and in the
        chain being validated.
    :param clock: the time source for ``t=``.
    :raises KeyFormatError: the key cannot be loaded or is of an unusable type.
    :raises SigningError: invalid domain, selector or header names.
    :raises OptionError: ``authserv_id`` is not a valid authserv-id, or
        ``width`` is out of range.
    :raises TypeError: ``keys`` is not a key source.
    """

    def __init__(
        self,
        domain: str,
        selector: str,
        private_key: KeyInput,
        *,
        authserv_id: str,
        keys: Any = None,
        headers: Optional[Union[str, Iterable[str]]] = None,
        canonicalization: str = "relaxed/relaxed",
        timestamp: bool = True,
        width: Optional[int] = 78,
        password: Optional[bytes] = None,
        min_key_bits: int = MIN_RSA_BITS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not isinstance(authserv_id, str) or not is_authserv_id(authserv_id):
            raise OptionError("not an authserv-id: %r (a host name such as mx.example.org)" % (authserv_id,))
        if width is not None and not 40 <= width <= 998:
            raise OptionError("width must be from 40 to 998 columns, got %r" % (width,))
        # DKIM-Signature fields are always signed (in seal, after the others):
        # a name the DKIM Signer refuses, since it would sign itself.
        names = DEFAULT_ARC_HEADERS if headers is None else tuple(
            n for n in _header_names(headers) if n != "dkim-signature")
        self._signer = Signer(domain, selector, private_key, canonicalization=canonicalization,
                              headers=names, oversign=(),
                              timestamp=False, password=password, min_key_bits=min_key_bits, clock=clock)
        bad = _FORBIDDEN.intersection(self._signer.headers)
        if bad:
            raise SigningError("an ARC-Message-Signature cannot sign %s" % ", ".join(sorted(bad)))
        self.domain = self._signer.domain
        self.selector = self._signer.selector
        self.algorithm = self._signer.algorithm
        self.authserv_id = authserv_id
        self.keys: KeySource = as_key_source(keys)
        self.timestamp = bool(timestamp)
        self.width = width
        self.min_key_bits = min_key_bits
        self._clock = clock
        key: Any = self._signer.key
        sig_bytes = 64 if self.algorithm == "ed25519-sha256" else (key.key_size + 7) // 8
        self._b_len = 4 * ((sig_bytes + 2) // 3)  # the length of b= in base64
        #: the chain validation of the message :meth:`seal` last saw (``None``
        #: before any; calls from several threads overwrite each other's)
        self.last_result: Optional[ARCResult] = None

    def __repr__(self) -> str:
        return "ARCSealer(domain=%r, selector=%r, algorithm=%r, authserv_id=%r)" % (
            self.domain, self.selector, self.algorithm, self.authserv_id)

    def seal(self, message: MessageInput, *, results: Optional[Union[str, Sequence[str]]] = None,
             chain: Optional[ARCResult] = None, remote_ip: Optional[str] = None) -> List[bytes]:
        """The next ARC set for ``message``: ``[ARC-Seal,
        ARC-Message-Signature, ARC-Authentication-Results]``, to prepend in
        that order (in the message's line endings, as
        :meth:`fastdkim.Signer.sign` writes them).

        :param results: the authentication results to record, as the
            ``resinfo`` part of an Authentication-Results field (one string,
            e.g. ``"spf=pass smtp.mailfrom=example.org; dkim=pass
            header.d=example.org"``, or one string per result); ``None``:
            the results of verifying the message's DKIM signatures and its
            chain now, with ``remote_ip`` as ``smtp.remote-ip``.
        :param chain: the chain's validation as the message arrived
            (:func:`verify_chain` before a mailing list changed it, say);
            ``None``: the chain is validated now.  Its ``cv`` is written
            unless the chain's structure is broken (then ``cv=fail``).
            Give ``results`` from arrival too: with ``results=None`` the
            DKIM results are those of the message as it is now.
        :returns: the three fields; an empty list when nothing may be
            sealed: the most recent seal already says ``cv=fail``, or the
            chain has :data:`~fastdkim.arc_chain.MAX_INSTANCES` sets.
            :attr:`last_result` holds the chain validation either way.
        :raises UnsignableMessageError: the message has no From field or
            its header block is malformed.
        :raises TemporaryLookupError: the chain could not be validated for a
            temporary failure (a key lookup timed out): no seal is made, as
            ``cv=fail`` would end the chain for good; seal the message later.
        :raises OptionError: ``results`` holds a line break that is not
            folding, or is empty; ``remote_ip`` is not an IP address, or is
            given with ``results``; ``chain`` says ``none`` for a message
            that carries ARC sets, or the opposite, or ``pass`` for another
            number of sets than the message carries.
        :raises TypeError: ``message`` is neither bytes-like nor a binary
            file, or ``chain`` is not an :class:`ARCResult`.
        """
        if chain is not None and not isinstance(chain, ARCResult):
            raise TypeError("chain must be an ARCResult, not %s" % type(chain).__name__)
        if results is not None and remote_ip is not None:
            raise OptionError("remote_ip goes with results=None: write smtp.remote-ip into results yourself")
        resinfo = None if results is None else _caller_results(results, "; " if self.width is None else ";\r\n\t")
        checks = shared_checks(10, False, self.min_key_bits, 300, None, MAX_H_NAMES)
        data: Optional[bytes] = None
        if resinfo is None:  # the DKIM results need the message again: read it once into memory
            data = _whole(message)
            message = data
        pm = read_message(message)
        if pm.malformed is not None:
            raise UnsignableMessageError(pm.malformed)
        s = self._signer
        own_key = (s._relaxed_body, None, "sha256")
        if chain is None:
            found, chain_result, hashes_ = validate(pm, self.keys, checks, [own_key], now=self._signer._clock())
        else:
            found = Chain(pm.fields, None, MAX_H_NAMES)
            hashes_ = body_hashes(pm, [own_key])
            if found.result is not None and found.result.status == FAIL:  # its structure is broken now
                chain_result = found.result
            elif (chain.status == NONE) != (found.result is not None):
                raise OptionError("chain says %s, but the message carries %s" % (
                    chain.status, "no ARC set" if found.result is not None else "ARC sets"))
            elif chain.status == PASS and chain.instances != found.top:  # a pass vouches for these sets only
                raise OptionError("chain says pass for %d ARC sets, but the message carries %d" % (
                    chain.instances, found.top))
            else:
                chain_result = chain
        self.last_result = chain_result
        if chain_result.status == FAIL and chain_result.temporary:
            # (a key lookup that timed out is no verdict: a cv=fail seal would end the chain for good)
            raise TemporaryLookupError("the ARC chain cannot be validated now (%s): seal the message later"
                                       % chain_result.reason)
        if found.top_cv == FAIL or found.top >= MAX_INSTANCES:
            return []
        n = found.top + 1
        cv = chain_result.cv
        if resinfo is None:
            assert data is not None
            dkim = verify(data, keys=self.keys, min_key_bits=self.min_key_bits)
            field = authentication_results(self.authserv_id, dkim, linesep="\r\n", width=self.width)
            resinfo = field.split(":", 1)[1].split(";", 1)[1].lstrip(" \t\r\n") + ";\r\n\t" + \
                arc_resinfo(chain_result, remote_ip=remote_ip)
        now = int(self._clock())
        aar = ("ARC-Authentication-Results: i=%d; %s;%s%s\r\n" % (
            n, self.authserv_id, " " if self.width is None else "\r\n\t", resinfo)).encode("utf-8")
        h, selected = s._select([(AAR, aar)] + pm.fields)
        # RFC 8617 section 4.1.2: the AMS SHOULD sign the DKIM-Signature
        # fields present, each listed once in h= and taken bottom-up.
        # (no more than an h= list may hold: past MAX_H_NAMES, the topmost are left out)
        dkim_fields = [raw for name, raw in pm.fields if name == b"dkim-signature"][::-1]
        dkim_fields = dkim_fields[:max(MAX_H_NAMES - len(h), 0)]
        if dkim_fields:
            h = tuple(h) + ("dkim-signature",) * len(dkim_fields)
            selected = selected + dkim_fields
        ams_tags: List[Tuple[str, str]] = [("a", self.algorithm), ("b", ""),
                    ("bh", _b64(hashes_[own_key][0])), ("c", "%s/%s" % (s.header_canon, s.body_canon)),
                    ("d", self.domain), ("h", ":".join(h)), ("i", str(n)), ("s", self.selector)]
        if self.timestamp:
            ams_tags.append(("t", str(now)))
        ams = self._signed("ARC-Message-Signature", ams_tags, selected, s._relaxed_headers)
        covered: List[bytes] = []
        if cv != FAIL:  # section 5.1.2: a cv=fail seal covers its own set alone
            for k in range(1, n):
                fields = found.instances[k].found
                covered += [fields[name][0] for name in ARC_FIELDS]
        covered += [aar, ams]
        as_tags: List[Tuple[str, str]] = [("a", self.algorithm), ("b", ""), ("cv", cv), ("d", self.domain), ("i", str(n)),
                   ("s", self.selector)]
        if self.timestamp:
            as_tags.append(("t", str(now)))
        seal = self._signed("ARC-Seal", as_tags, covered, True)
        out = [seal, ams, aar]
        if pm.lf_endings:
            out = [f.replace(b"\r\n", b"\n") for f in out]
        return out

    def _signed(self, name: str, tags: List[Tuple[str, str]], covered: Sequence[bytes], relaxed: bool) -> bytes:
        """The field ``name`` with ``tags``, its ``b=`` the signature of the
        ``covered`` fields and of itself (``b=`` empty), laid out alike
        signed and unsigned (as simple canonicalization requires)."""
        unsigned, index = fold_fields(name, tags, self.width, self._b_len)
        b = self._signer._sign_data(_core.core.canonical_headers(covered, unsigned, relaxed))
        tags = list(tags)
        tags[index] = ("b", _b64(b))
        return layout(name, tags, self.width)

    def seal_message(self, message: MessageInput, *, results: Optional[Union[str, Sequence[str]]] = None,
                     chain: Optional[ARCResult] = None, remote_ip: Optional[str] = None) -> bytes:
        """``message`` with its next ARC set prepended (unchanged when
        :meth:`seal` adds nothing).

        :raises: as :meth:`seal`.
        """
        data = _whole(message)
        return b"".join(self.seal(data, results=results, chain=chain, remote_ip=remote_ip)) + data


def _whole(message: MessageInput) -> bytes:
    """The whole message as bytes (a binary file read to its end).

    :raises TypeError: neither bytes-like nor a binary file opened in binary mode.
    """
    if isinstance(message, (bytes, bytearray, memoryview)):
        return bytes(message)
    read = getattr(message, "read", None)
    if read is None:
        raise TypeError("message must be bytes-like or a binary file object, not %s" % type(message).__name__)
    data = read()
    if not isinstance(data, (bytes, bytearray)):
        raise TypeError("message file must be opened in binary mode")
    return bytes(data)


def _b64(data: bytes) -> str:
    return b2a_base64(data, newline=False).decode("ascii")


def _caller_results(results: Union[str, Sequence[str]], separator: str) -> str:
    """The caller's results as the text after ``authserv-id;`` in the AAR,
    one result from the next by ``separator``.

    :raises OptionError: empty, or a line break not followed by whitespace
        (which would end the field), or not text.
    """
    items = [results] if isinstance(results, str) else list(results)
    if not items or not all(isinstance(x, str) for x in items):
        raise OptionError("results must be a non-empty string or sequence of strings")
    parts = []
    for item in items:
        text = item.replace("\r\n", "\n").strip(" \t\n;")
        if not text:
            raise OptionError("empty result in results")
        if "\r" in text or any(line[:1] not in (" ", "\t") or not line.strip()
                                  for line in text.split("\n")[1:]):
            raise OptionError("results may break lines only to fold them (a line break, then whitespace and more text)")
        parts.append(text.replace("\n", "\r\n"))
    return separator.join(parts)
