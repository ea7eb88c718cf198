"""dkimpy 1.1's ARC interface for :mod:`fastdkim.compat`: :func:`arc_sign`,
:func:`arc_verify` and the :class:`ARC` class, over fastdkim's
:class:`~fastdkim.arc.ARCSealer` and :func:`~fastdkim.arc.verify_chain`.

::

    import fastdkim.compat as dkim

    fields = dkim.arc_sign(message, b"arc", b"lists.example.org", key_pem, b"lists.example.org")
    sealed = b"".join(fields) + message
    cv, results, reason = dkim.arc_verify(sealed, dnsfunc=my_get_txt)

As in dkimpy, sealing reads the ``Authentication-Results`` fields written by
``srv_id`` (the authserv-id of the sealing ADMD): their results become the
ARC-Authentication-Results, and their ``arc=`` result the ``cv=`` of the
seal (``none`` without one, ``fail`` when there are several).  Without such
a field nothing is sealed (``[]``).  Verification returns dkimpy's three-tuple
``(cv, results, reason)``: ``cv`` is :data:`CV_Pass`, :data:`CV_Fail`,
:data:`CV_None`, or ``None`` for a chain a sealer already ended
(``cv=fail``); ``results`` holds one dictionary per ARC set, newest first,
with dkimpy's keys (``instance``, ``aar-value``, ``ams-domain``,
``ams-selector``, ``ams-valid``, ``as-domain``, ``as-selector``, ``cv``,
``as-valid``).

Deliberate differences from dkimpy 1.1 (besides those of DKIM signing listed
in :mod:`fastdkim.compat`, which apply to the keys and algorithms here too),
each asserted by ``tests/test_compat_arc.py``:

* the ARC-Message-Signature signs each named field present, every instance,
  once (no oversigning, no names of absent fields), as
  :class:`~fastdkim.arc.ARCSealer` does; the fields are laid out as fastdkim
  folds them (``h=from:to``);
* :func:`arc_sign` honours ``signature_algorithm`` (dkimpy seals with
  ``rsa-sha256`` whatever it says);
* an ``arc=`` result other than ``pass`` or ``none`` (``neutral``, a typo) is
  sealed as ``cv=fail`` (dkimpy writes it into ``cv=`` as found, a seal no
  validator accepts); a chain whose newest seal says ``cv=fail`` is not
  sealed again (``[]``; RFC 8617 section 5.1.2);
* ``Authentication-Results`` fields are found whatever the case of their
  name (dkimpy: only as spelt so);
* failure reasons are fastdkim's words (``"ARC-Message-Signature i=2: body
  hash mismatch"`` for dkimpy's ``"Most recent ARC-Message-Signature did
  not validate"``); the verdict and the per-set dictionaries are dkimpy's;
* a ``minkey`` below 1024 is taken as 1024 (RFC 8301);
* a seal's input is ordered by instance, wherever the sets stand in the
  header (RFC 8617 section 5.1.1); dkimpy's input depends on where the sets
  stand and it fails a chain whose sets were moved about.
"""
from __future__ import annotations

import logging
import re
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from . import errors as _engine
from .arc import ARCSealer
from .arc_chain import FAIL, NONE, PASS, ARCResult, ARCSet, verify_chain
from .authres_parse import MethodResult, parse_authentication_results
from .compat_dkim import DKIM, _as_bytes, _as_text
from .compat_errors import DKIMException, DnsTimeoutError, KeyFormatError, ParameterError
from .compat_fields import CV_Fail, CV_None, CV_Pass, canonicalize_headers
from .compat_keys import DnsFunc, dns_source, get_txt, signing_key
from .errors import AuthResError, KeyLookupError, TemporaryLookupError
from .keys import MIN_RSA_BITS

__all__ = ["ARC", "arc_sign", "arc_verify"]

#: Highest ARC instance (RFC 8617 section 4.2.1).
INSTANCE_LIMIT = 50
_INSTANCE = re.compile(rb"[\s;]?i\s*=\s*(\d+)", re.IGNORECASE)
_CV = re.compile(rb"(?:^|;)\s*cv\s*=\s*([A-Za-z]+)", re.IGNORECASE)
_ARC_FIELDS = (b"arc-seal", b"arc-message-signature", b"arc-authentication-results")
# A property value that needs no quotes (authres_parse's unquoted value).
_BARE_VALUE = re.compile(r"[^\x00-\x20\x7f()\";\\]+")


def _quoted(value: str) -> str:
    """``value`` as an Authentication-Results value: bare when it can be,
    else a quoted string.  Raises nothing."""
    if _BARE_VALUE.fullmatch(value):
        return value
    return '"%s"' % value.replace("\\", "\\\\").replace('"', '\\"')


def _resinfo(result: MethodResult) -> str:
    """One parsed result written back (``method=result reason=... ptype.prop=value``).
    Raises nothing."""
    out = result.method + ("/%d" % result.version if result.version is not None else "") + "=" + result.result
    if result.reason is not None:
        out += " reason=" + _quoted(result.reason)
    for p in result.properties:
        out += " %s=%s" % (p.key, _quoted(p.value))
    return out


class _DnsfuncKeys:
    """A fastdkim key source asking ``dnsfunc(b"name.", timeout=timeout)``
    for every key record (ARC looks up one per seal and per AMS).

    :attr:`error` holds the first exception ``dnsfunc`` raised that is to
    reach the caller (anything but :class:`DnsTimeoutError` and
    :class:`KeyFormatError`), as in dkimpy.
    """

    def __init__(self, dnsfunc: DnsFunc, timeout: float) -> None:
        self.dnsfunc = dnsfunc
        self.timeout = timeout
        self.error: Optional[BaseException] = None

    def lookup(self, name: str) -> List[bytes]:
        """The TXT records at ``name``.

        :raises TemporaryLookupError: ``dnsfunc`` raised.
        """
        try:
            if self.dnsfunc is get_txt:
                return list(dns_source(self.timeout).lookup(name))
            value = self.dnsfunc(name.encode("utf-8") + b".", timeout=self.timeout)
        except TemporaryLookupError:
            raise
        except KeyLookupError:
            return []
        except (DnsTimeoutError, KeyFormatError) as exc:
            raise TemporaryLookupError("%s: %s" % (type(exc).__name__, exc)) from None
        except Exception as exc:
            if self.error is None:
                self.error = exc
            raise TemporaryLookupError("dnsfunc raised %s: %s" % (type(exc).__name__, exc)) from None
        if not value:
            return []
        return [value.encode("utf-8") if isinstance(value, str) else bytes(value)]


class ARC(DKIM):
    """A message (``bytes``, CRLF or LF line endings) to seal or whose ARC
    chain to validate; the constructor is :class:`~fastdkim.compat.DKIM`'s.

    :raises ParameterError: an unknown ``signature_algorithm``, or ``tlsrpt``.
    :raises MessageFormatError: the header block holds a line that is neither
        a field nor a continuation line.
    """

    #: Header fields used by ARC.
    ARC_HEADERS: Tuple[bytes, ...] = _ARC_FIELDS
    #: Finds the ``i=`` value of an ARC header field.
    INSTANCE_RE = _INSTANCE

    def sorted_arc_headers(self) -> Tuple[int, List[Tuple[int, Tuple[bytes, bytes]]]]:
        """The message's ARC fields (relaxed-canonicalized) with their
        instance: ``(highest instance, [(instance, (name, value)), ...])``,
        the highest instance first (``(0, [])`` for none).  Raises nothing."""
        found: List[Tuple[int, Tuple[bytes, bytes]]] = []
        for name, value in canonicalize_headers([(n, v) for n, v in self.headers], True):
            if name in _ARC_FIELDS:
                m = _INSTANCE.search(value)
                if m is not None:
                    found.append((int(m.group(1)), (name, value)))
        if not found:
            return 0, []
        found.sort(key=lambda a: (a[0], a[1][0].lower(), a[1][1].lower()), reverse=True)
        return found[0][0], found

    def _own_results(self, srv_id: str) -> List[MethodResult]:
        """The results of the Authentication-Results fields ``srv_id`` wrote
        (unreadable fields skipped, as dkimpy does).  Raises nothing."""
        out: List[MethodResult] = []
        for name, value in self.headers:
            if name.lower() != b"authentication-results":
                continue
            try:
                ar = parse_authentication_results(b"Authentication-Results:" + value)
            except AuthResError:
                continue
            if ar.claims(srv_id):
                out.extend(ar.results)
        return out

    def sign(self, selector: Union[bytes, str], domain: Union[bytes, str], privkey: Any,  # type: ignore[override]
             srv_id: Union[bytes, str], include_headers: Optional[Sequence[Union[bytes, str]]] = None,
             timestamp: Optional[Union[int, str, bytes]] = None, standardize: bool = False) -> List[bytes]:
        """Seal the message: the next ARC set, ``[ARC-Seal,
        ARC-Message-Signature, ARC-Authentication-Results]``, each ending in
        :attr:`linesep`, to put on top of it in that order.

        :param srv_id: the authserv-id of the Authentication-Results fields
            to record (and of the ARC-Authentication-Results).
        :param include_headers: the fields the ARC-Message-Signature signs
            (default :meth:`default_sign_headers`; each field present is
            signed once).
        :param timestamp: ``t=`` (default now).
        :param standardize: accepted for compatibility (fastdkim's layout is
            always the same).
        :returns: the three fields, or ``[]`` when there is nothing to seal:
            no Authentication-Results field of ``srv_id``, a chain without an
            ``arc=`` result in them, or a chain already ended (``cv=fail``).
        :raises KeyFormatError: an unusable key.
        :raises ParameterError: From not signed; a field of
            :attr:`should_not_sign` named; more than 50 instances; an
            ``arc=`` result on a message without ARC sets; an invalid domain,
            selector, ``srv_id`` or field name; ``rsa-sha1``.
        """
        self.add_should_not((b"authentication-results",))
        alg = self.signature_algorithm
        if alg not in (b"rsa-sha256", b"ed25519-sha256"):
            raise ParameterError("%s must not be used for signing (RFC 8301)" % alg.decode())
        key = signing_key(privkey, alg)
        sid = _as_text(srv_id, "srv_id")
        results = self._own_results(sid)
        if not results:
            self.logger.debug("no AR headers found, chain terminated")
            return []
        arc = [r for r in results if r.method == "arc"]
        if not arc:
            cv = NONE
        elif len(arc) > 1:
            self.logger.debug("multiple AR arc stamps found, failing chain")
            cv = FAIL
        else:
            cv = arc[0].result.lower()
            if cv not in (PASS, NONE):
                cv = FAIL
        names = [_as_bytes(x, "header field name").lower()
                 for x in (self.default_sign_headers() if include_headers is None else include_headers)]
        self.include_headers = tuple(names)
        if b"from" not in names:
            raise ParameterError("The From header field MUST be signed")
        for x in set(names) & self.should_not_sign:
            raise ParameterError("The %s header field SHOULD NOT be signed" % x.decode("ascii", "replace"))
        top, _ = self.sorted_arc_headers()
        instance = top + 1
        if instance > INSTANCE_LIMIT:
            raise ParameterError("Maximum instance tag value exceeded")
        if instance == 1 and cv != NONE:
            raise ParameterError("No existing chain found on message, cv should be none")
        if instance != 1 and cv == NONE:
            self.logger.debug("no previous AR arc results found and instance > 1, chain terminated")
            return []
        when = float(int(timestamp)) if timestamp is not None else time.time()
        try:
            sealer = ARCSealer(_as_text(domain, "domain"), _as_text(selector, "selector"), key, authserv_id=sid,
                               headers=[n.decode("ascii", "replace") for n in dict.fromkeys(names)],
                               clock=lambda: when)
            fields = sealer.seal(self._message, results=[_resinfo(r) for r in results],
                                 chain=ARCResult(cv, "as recorded by %s" % sid, instances=top))
        except _engine.KeyFormatError as exc:
            raise KeyFormatError(str(exc)) from None
        except (_engine.SigningError, _engine.OptionError, _engine.MessageFormatError) as exc:
            raise ParameterError(str(exc)) from None
        fields = [f.replace(b"\r\n", b"\n").replace(b"\n", self.linesep) for f in fields]
        self.domain = _as_bytes(domain, "domain")
        self.selector = _as_bytes(selector, "selector")
        self.logger.debug("sealed instance %d, cv=%s" % (instance, cv))
        return fields

    def verify(self, dnsfunc: DnsFunc = get_txt) -> Tuple[Optional[bytes], List[Dict[str, Any]], str]:  # type: ignore[override]
        """Validate the message's ARC chain (RFC 8617 section 5.2).

        Key records come from ``dnsfunc(b"sel._domainkey.example.org.",
        timeout=timeout)``.

        :returns: ``(cv, results, reason)``: ``cv`` is :data:`CV_Pass`,
            :data:`CV_Fail`, :data:`CV_None` (no ARC fields), or ``None``
            when a seal in the chain says ``cv=fail``; ``results`` one
            dictionary per ARC set, newest first (see the module); ``reason``
            in words (``"success"`` for a pass).
        :raises Exception: whatever ``dnsfunc`` raised, other than
            :class:`DnsTimeoutError` and :class:`KeyFormatError`.
        """
        if not any(n.lower() in _ARC_FIELDS for n, _ in self.headers):
            return CV_None, [], "Message is not ARC signed"
        source = _DnsfuncKeys(dnsfunc, self.timeout)
        result = verify_chain(self._message, keys=source, min_key_bits=max(MIN_RSA_BITS, self.minkey),
                              bare_lf=True)
        if source.error is not None:
            raise source.error
        data = self._results(result.sets)
        if result.status == PASS:
            return CV_Pass, data, "success"
        if result.status == NONE:
            return CV_None, data, "Message is not ARC signed"
        newest = max(result.sets, key=lambda s: s.instance) if result.sets else None
        if newest is None or newest.ams_status != "fail":
            for n, cv in self._seal_cvs():
                if cv == CV_Fail:
                    return None, data, "ARC-Seal[%d] reported failure, the chain is terminated" % n
        self.logger.error("ARC chain: %s" % result.reason)
        return CV_Fail, data, result.reason

    def _seal_cvs(self) -> List[Tuple[int, bytes]]:
        """``(instance, cv)`` of each ARC-Seal, newest first.  Raises nothing."""
        out = []
        for n, (name, value) in self.sorted_arc_headers()[1]:
            m = _CV.search(value) if name == b"arc-seal" else None
            if m is not None:
                out.append((n, m.group(1).lower()))
        return out

    def _results(self, sets: Sequence[ARCSet]) -> List[Dict[str, Any]]:
        """dkimpy's result dictionaries for ``sets``, newest first.  Raises nothing."""
        aars: Dict[int, bytes] = {}
        for n, (name, value) in self.sorted_arc_headers()[1]:
            if name == b"arc-authentication-results":
                aars.setdefault(n, value)

        def b(value: Optional[str]) -> Optional[bytes]:
            return None if value is None else value.encode("utf-8")

        return [{"instance": s.instance, "aar-value": aars.get(s.instance),
                 "ams-domain": b(s.ams_domain), "ams-selector": b(s.ams_selector), "ams-valid": s.ams_status == PASS,
                 "as-domain": b(s.domain), "as-selector": b(s.selector), "cv": b(s.cv),
                 "as-valid": s.seal_status == PASS}
                for s in sorted(sets, key=lambda s: s.instance, reverse=True)]


def arc_sign(message: bytes, selector: Union[bytes, str], domain: Union[bytes, str], privkey: Any,
             srv_id: Union[bytes, str], signature_algorithm: bytes = b"rsa-sha256",
             include_headers: Optional[Sequence[Union[bytes, str]]] = None,
             timestamp: Optional[Union[int, str, bytes]] = None, logger: Optional[logging.Logger] = None,
             standardize: bool = False, linesep: bytes = b"\r\n") -> List[bytes]:
    """Seal an RFC 822 message: the next ARC set (see :meth:`ARC.sign`).

    :raises: as :meth:`ARC.sign`, and :class:`ParameterError` for an unknown
        ``signature_algorithm``; :class:`MessageFormatError` for a header line
        that is not a field.
    """
    a = ARC(message, logger=logger, signature_algorithm=signature_algorithm, linesep=linesep)
    return a.sign(selector, domain, privkey, srv_id, include_headers=include_headers or None,
                  timestamp=timestamp, standardize=standardize)


def arc_verify(message: bytes, logger: Optional[logging.Logger] = None, dnsfunc: DnsFunc = get_txt,
               minkey: int = 1024, timeout: float = 5) -> Tuple[Optional[bytes], List[Dict[str, Any]], str]:
    """Validate the ARC chain of an RFC 822 message: ``(cv, results,
    reason)`` as :meth:`ARC.verify` returns it; a message that cannot be
    read gives ``(CV_Fail, [], reason)``.

    :raises Exception: whatever ``dnsfunc`` raised, other than
        :class:`DnsTimeoutError` and :class:`KeyFormatError`.
    """
    try:
        a = ARC(message, logger=logger, minkey=minkey, timeout=timeout)
        return a.verify(dnsfunc=dnsfunc)
    except DKIMException as exc:
        if logger is not None:
            logger.error("%s" % exc)
        return CV_Fail, [], "%s" % exc
