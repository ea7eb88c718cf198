"""One MTA connection: the milter events of its messages, in order, turned
into the replies and header edits the MTA expects.

The protocol itself (framing, message parsing, which replies each event
allows) is :mod:`kilter.protocol`'s; this module decides what to do with
each message:

* mail from ``ignore_hosts`` is accepted untouched (at the connection when
  the MTA waits for a reply there, else at the end of each header block);
* mail from ``internal_hosts`` (or without a network address: submitted on
  this host), or with an ``{auth_authen}`` macro when ``sign_authenticated``
  is on, is signed by the policy, when there is one;
* other mail is verified, when there is an ``authserv_id``, and gets an
  ``Authentication-Results`` field;
* fields ``Authentication-Results`` that claim ``authserv_id`` are removed
  (``remove_forged``), and so is any field that hides one behind a bare CR
  or LF.

The body goes chunk by chunk into a streaming session
(:mod:`fastdkim.streaming`); nothing keeps it.  Key lookups start at the end
of the header block and run while the body arrives.
"""
from __future__ import annotations

import asyncio
import logging
import re
from typing import Any, Awaitable, Dict, List, Optional, Tuple, Union

from kilter.protocol import messages as m
from kilter.protocol.core import FilterProtocol

from ..aio import _key
from ..authres import authentication_results, claims_authserv_id
from ..authres_insert import _claims
from ..errors import FromAddressError, MessageFormatError, NoSigningKey, UnsignableMessageError
from ..streaming import SessionOrderError, SigningSession, VerificationSession
from .runtime import Address, Loaded, UnreadableAddress

__all__ = ["Connection", "PROTOCOL_VERSION"]

log = logging.getLogger("fastdkim.milter")

#: The milter protocol version spoken (Sendmail 8.14+, Postfix 2.6+).
PROTOCOL_VERSION = 6

_ACTIONS = m.ActionFlags.ADD_HEADERS | m.ActionFlags.CHANGE_HEADERS | m.ActionFlags.SETSYMLIST
# Events not needed (when the MTA can leave them out), replies not needed
# (so that the MTA need not wait for one at the connection, MAIL, each header
# field or body chunk: each reply costs a write and a wake-up of the MTA),
# and header values with their leading space (exact bytes for simple
# header canonicalization).
_PROTOCOL = (m.ProtocolFlags.NO_HELO | m.ProtocolFlags.NO_RECIPIENT | m.ProtocolFlags.NO_UNKNOWN
             | m.ProtocolFlags.NO_DATA | m.ProtocolFlags.NR_HEADER | m.ProtocolFlags.NR_BODY
             | m.ProtocolFlags.NR_CONNECT | m.ProtocolFlags.NR_SENDER
             | m.ProtocolFlags.NR_HELO | m.ProtocolFlags.NR_RECIPIENT | m.ProtocolFlags.NR_DATA
             | m.ProtocolFlags.NR_UNKNOWN | m.ProtocolFlags.HEADER_LEADING_SPACE)
# The macros wanted ({auth_authen} with MAIL, the queue id at the end of the
# header block); at every other stage one that no MTA defines, so that the macro
# packets MTAs send before each event come empty (less to parse).
_NONE = ["{fastdkim_none}"]
_MACROS = {m.Stage.CONNECT: _NONE, m.Stage.HELO: _NONE, m.Stage.ENVELOPE_FROM: ["{auth_authen}"],
           m.Stage.ENVELOPE_RECIPIENT: _NONE, m.Stage.DATA: _NONE, m.Stage.END_HEADERS: ["i"],
           m.Stage.END_MESSAGE: _NONE}
#: The macros the connection reads (the others are not kept).
_USED_MACROS = ("{auth_authen}", "i")
_AR = "authentication-results"
#: An Authentication-Results field name inside a value (one hidden behind a
#: bare CR or LF, which some readers take for a line break).
_AR_INSIDE = re.compile(rb"authentication-results[ \t]*:", re.IGNORECASE)
#: The reply to most events (the protocol's messages are not changed by packing).
_CONTINUE = m.Continue()
#: No reply (shared: never changed).
_NONE_DUE: List[Any] = []


class _Message:
    """One message under way."""

    __slots__ = ("loaded", "mode", "session", "failed", "forged", "seen", "size", "keys", "queue_id", "auth")

    def __init__(self, loaded: Loaded, auth: Optional[str]) -> None:
        self.loaded = loaded
        self.mode = ""  # sign, verify, pass or ignore (decided at the first header field)
        self.session: Any = None
        self.failed: Optional[str] = None
        # the fields to remove: name and index (1-based, among the fields of
        # that name, without regard to case, as MTAs count them)
        self.forged: List[Tuple[str, int]] = []
        self.seen: Dict[str, int] = {}  # fields seen so far, by name (lower case)
        self.size = 0  # the bytes of the header fields so far
        self.keys: "Optional[asyncio.Future[Any]]" = None
        self.queue_id = "-"
        self.auth = auth

    def drop(self) -> None:
        if self.keys is not None and not self.keys.done():
            self.keys.cancel()


class Connection:
    """The state of one MTA connection and its replies.

    :param current: returns the configuration in use now (each message
        keeps the one it started with).
    """

    def __init__(self, current: Any, peer: str = "-") -> None:
        self.current = current
        self.peer = peer
        self.proto = FilterProtocol(abort_on_unknown=True)
        self.leading_space = False
        self.address: Address = None
        #: the text of the CONNECT address the session could not read (see
        #: :func:`~fastdkim.milter.session.repair_packet`), for the CONNECT
        #: read next
        self.unreadable_address: Optional[str] = None
        self.client = "-"
        self.macros: Dict[str, str] = {}
        self.msg: Optional[_Message] = None
        self.closed = False
        # an abort since the last MAIL: the events of a message that follow
        # without a new MAIL are the rest of one cut short (the protocol
        # library turns an unknown command into an abort), not a new message
        self.aborted = False

    @property
    def in_transaction(self) -> bool:
        """Whether a message is under way (from MAIL to its end or abort)."""
        return self.msg is not None

    def _reply_due(self, event: Any) -> bool:
        # what FilterProtocol.needs_response says for the events that can
        # take a reply, without its pattern match over the message ABCs (some
        # forty events a message): the negotiated NR_* flags
        return event.ident not in self.proto.nr

    def _error_reply(self) -> Any:
        loaded: Loaded = self.msg.loaded if self.msg is not None else self.current()
        return m.TemporaryFailure() if loaded.config.on_error == "tempfail" else m.Accept()

    def handle(self, event: Any) -> Union[List[Any], "Awaitable[List[Any]]"]:
        """The messages to send back for ``event`` (none when it needs no
        reply), or, for the end of a message being verified, an awaitable of
        them (the key lookups may still be under way).  An internal error is
        logged in one line and answered with the ``on_error`` action (at
        once, or at the next event that takes a reply); it never ends the
        connection."""
        # by the event's class (the protocol's messages are ABCs: isinstance
        # costs more than this lookup, for each of some forty packets a message)
        try:
            handler = self._handlers.get(event.__class__)
            if handler is None:  # HELO, RCPT, DATA, unknown commands: nothing to do
                return [_CONTINUE] if self._reply_due(event) else _NONE_DUE
            return handler(self, event)  # type: ignore[no-any-return]
        except Exception as exc:  # an internal error: one line, and the configured answer
            return self._failed(event, exc)

    async def _finish_later(self, event: Any, pending: "Awaitable[List[Any]]") -> List[Any]:
        try:
            return await pending
        except Exception as exc:
            return self._failed(event, exc)

    def _failed(self, event: Any, exc: Exception) -> List[Any]:
        where = type(event).__name__
        qid = self.msg.queue_id if self.msg is not None else "-"
        action = "tempfail" if isinstance(self._error_reply(), m.TemporaryFailure) else "accept"
        # (events out of the order a message has, as the MTA sent them, are not the milter's fault)
        what = "milter events out of order" if isinstance(exc, SessionOrderError) else "internal error"
        log.error("%s: %s at %s from %s: %s: %s (answered %s)", qid, what, where, self.client,
                  type(exc).__name__, exc, action)
        if self.msg is not None:
            self.msg.failed = "%s: %s" % (type(exc).__name__, exc)
        if isinstance(event, (m.Abort, m.Close, m.Macro)):
            return []
        if not isinstance(event, m.Negotiate) and not self._reply_due(event):
            return []
        reply = self._error_reply()
        if isinstance(event, (m.EnvelopeFrom, m.Header, m.EndOfHeaders, m.Body, m.EndOfMessage)):
            self._end_message()
        return [reply]

    def _on_body(self, event: Any) -> List[Any]:
        msg = self.msg
        if msg is not None and msg.session is not None and msg.failed is None:
            msg.session.body(event.content)
        return _NONE_DUE if event.ident in self.proto.nr else [_CONTINUE]

    def _on_header(self, event: Any) -> List[Any]:
        self._header(event)
        return _NONE_DUE if event.ident in self.proto.nr else self._continue_or_failed()

    def _on_macro(self, event: Any) -> List[Any]:
        macros = event.macros
        if macros:  # (only the macros used are kept: a client sending others cannot grow this)
            for name in _USED_MACROS:
                if name in macros:
                    self.macros[name] = macros[name]
        return _NONE_DUE

    def _on_negotiate(self, event: Any) -> List[Any]:
        return [self._negotiate(event)]

    def _on_connect(self, event: Any) -> List[Any]:
        reply = self._connect(event)
        return [reply] if self._reply_due(event) else []

    def _on_mail(self, event: Any) -> List[Any]:
        self._end_message()
        self.aborted = False
        auth = self.macros.pop("{auth_authen}", None) or None  # this message's alone
        self.macros.pop("i", None)  # (the previous message's queue id)
        self.msg = _Message(self.current(), auth)
        return [_CONTINUE] if self._reply_due(event) else []

    def _on_abort(self, event: Any) -> List[Any]:
        self._end_message()
        self.aborted = True
        return []

    def _on_close(self, event: Any) -> List[Any]:
        self._end_message()
        self.closed = True
        return []

    _handlers: Dict[type, Any] = {
        m.Body: _on_body, m.Header: _on_header, m.Macro: _on_macro, m.Negotiate: _on_negotiate,
        m.Connect: _on_connect, m.EnvelopeFrom: _on_mail, m.Abort: _on_abort, m.Close: _on_close,
        m.EndOfHeaders: lambda self, event: self._end_of_headers(event),
        m.EndOfMessage: lambda self, event: self._end_of_message(event),
    }

    # -- connection events --------------------------------------------------------------

    def _negotiate(self, event: Any) -> Any:
        offered_p = event.protocol_flags
        offered_a = event.action_flags
        protocol = _PROTOCOL & offered_p
        actions = _ACTIONS & offered_a
        self.leading_space = bool(protocol & m.ProtocolFlags.HEADER_LEADING_SPACE)
        macros = _MACROS if actions & m.ActionFlags.SETSYMLIST else {}
        return m.Negotiate(min(event.version, PROTOCOL_VERSION), actions, protocol, macros)

    def _connect(self, event: Any) -> Any:
        address: Address = event.address
        if self.unreadable_address is not None and address is None:
            # (an address the packet had that could not be read: not this host)
            address = UnreadableAddress(self.unreadable_address)
        self.unreadable_address = None
        self.address = address
        self.client = "%s [%s]" % (event.hostname, address if address is not None else "local")
        if self.current().is_ignored(address):
            log.debug("connection from %s: in ignore_hosts, accepted untouched", self.client)
            return m.Accept()  # (without a reply here, each message is accepted at its header block's end)
        return _CONTINUE

    # -- message events -----------------------------------------------------------------

    def _continue_or_failed(self) -> List[Any]:
        if self.msg is not None and self.msg.failed is not None:
            reply = self._error_reply()
            self._end_message()
            return [reply]
        return [_CONTINUE]

    def _start(self) -> _Message:
        """The message's mode and session, decided at its first header field."""
        msg = self.msg
        if msg is None:  # no MAIL event (a client that leaves it out): a message all the same
            msg = self.msg = _Message(self.current(), self.macros.pop("{auth_authen}", None) or None)
            if self.aborted:  # (its header fields before the abort unseen: indexes and signature would be wrong)
                msg.failed = "message events after an abort (or an unknown milter command) without a new MAIL"
                action = "tempfail" if isinstance(self._error_reply(), m.TemporaryFailure) else "accept"
                log.error("-: %s from %s (answered %s)", msg.failed, self.client, action)
        if msg.mode:
            return msg
        loaded = msg.loaded
        config = loaded.config
        limit = config.max_header_bytes
        trusted = loaded.is_internal(self.address) or (config.sign_authenticated and msg.auth is not None)
        if loaded.is_ignored(self.address):
            msg.mode = "ignore"
        elif trusted and loaded.policy is not None:
            msg.mode = "sign"
            msg.session = SigningSession(policy=loaded.policy, max_header_bytes=limit)
        elif not trusted and config.authserv_id:
            msg.mode = "verify"
            msg.session = VerificationSession(loaded.checks, max_header_bytes=limit)
        else:
            msg.mode = "pass"
        return msg

    def _header(self, event: Any) -> None:
        msg = self._start()
        if msg.failed is not None or msg.mode == "ignore":
            return
        value = event.value
        if not self.leading_space:
            value = b" " + bytes(value)  # the MTA took the space after the colon away: give it back
        config = msg.loaded.config
        if config.authserv_id and config.remove_forged:
            self._check_forged(msg, event.name, value, config.authserv_id, config.max_header_bytes)
        if msg.session is not None:
            try:
                msg.session.header(event.name, value)
            except MessageFormatError as exc:  # the header block is too large to sign
                self._not_signed(msg, str(exc))

    @staticmethod
    def _check_forged(msg: _Message, name: str, value: Any, authserv_id: str, limit: int) -> None:
        """Count the field ``name`` and note it for removal when it claims
        ``authserv_id``: an Authentication-Results field (its name read
        without the whitespace before the colon, as MTAs and readers take
        it), or any field that hides one behind a bare CR or LF.  Past
        ``limit`` bytes of header fields (more than MTAs pass on as header
        fields), names not seen before are no longer counted (the counts
        stay within the size of the fields before), so a field of a new
        name hiding one there stays."""
        name = name.strip(" \t")
        key = name.lower()
        msg.size += len(name) + len(value)
        if msg.size > limit and key != _AR and key not in msg.seen:
            return
        index = msg.seen[key] = msg.seen.get(key, 0) + 1
        value = bytes(value)
        if key == _AR:
            if claims_authserv_id(value, authserv_id):
                msg.forged.append(("Authentication-Results", index))
        elif (b"\r" in value or b"\n" in value) and _AR_INSIDE.search(value) is not None:
            if _claims(name.encode("utf-8", "surrogateescape") + b":" + value, authserv_id):
                msg.forged.append((name, index))

    def _not_signed(self, msg: _Message, why: str) -> None:
        log.info("%s: not signed (from %s): %s", msg.queue_id, self.client, why)
        msg.mode = "pass"
        msg.session = None

    def _end_of_headers(self, event: Any) -> List[Any]:
        msg = self._start()
        msg.queue_id = self.macros.get("i", msg.queue_id)
        due = self._reply_due(event)
        if msg.failed is not None:
            return self._continue_or_failed() if due else []
        if msg.mode == "sign":
            try:
                msg.session.end_of_headers()
            except (NoSigningKey, FromAddressError, MessageFormatError) as exc:  # (too many fields included)
                self._not_signed(msg, str(exc))
        elif msg.mode == "verify":
            names = msg.session.end_of_headers()
            if names:
                msg.keys = asyncio.ensure_future(self._lookup(msg, names))
        if due and (msg.mode == "ignore" or (msg.mode == "pass" and not msg.forged)):
            self._end_message()
            return [m.Accept()]  # nothing to change: the MTA need not send the body
        return [_CONTINUE] if due else []

    @staticmethod
    async def _lookup(msg: _Message, names: List[str]) -> Dict[str, Any]:
        loaded = msg.loaded
        timeout = loaded.config.dns_timeout
        if len(names) == 1:
            return {names[0]: await _key(loaded.checks, loaded.source, loaded.bounded, timeout, names[0])}
        found = await asyncio.gather(*[_key(loaded.checks, loaded.source, loaded.bounded, timeout, n)
                                       for n in names])
        return dict(zip(names, found))

    def _value(self, field: str) -> bytes:
        """The value of a header field to add, as the MTA takes it: after
        the colon, lines joined by LF, the leading space only when the MTA
        keeps leading spaces."""
        value = field.split(":", 1)[1].replace("\r\n", "\n").rstrip("\n")
        if not self.leading_space and value.startswith(" "):
            value = value[1:]
        return value.encode("utf-8")

    def _end_of_message(self, event: Any) -> Union[List[Any], "Awaitable[List[Any]]"]:
        msg = self.msg
        if msg is None:
            if self.aborted:  # the end of a message cut short by an abort (or an unknown command)
                reply = self._error_reply()
                log.error("-: the end of a message after an abort (or an unknown milter command) without a new "
                          "MAIL, from %s (answered %s)", self.client,
                          "tempfail" if isinstance(reply, m.TemporaryFailure) else "accept")
                return [reply]
            return [_CONTINUE]
        if msg.failed is not None:
            self._end_message()
            return [self._error_reply()]
        try:
            msg.queue_id = self.macros.get("i", msg.queue_id)
            if event.content and msg.session is not None:
                msg.session.body(event.content)
            edits: List[Any] = []
            for name, index in reversed(msg.forged):  # (the last first: the indexes before stay right)
                edits.append(m.ChangeHeader(index, name, b""))
            if msg.forged:
                log.info("%s: removed %d Authentication-Results field(s) claiming %s", msg.queue_id,
                         len(msg.forged), msg.loaded.config.authserv_id)
            if msg.mode == "sign":
                edits.extend(self._signed(msg))
            elif msg.mode == "verify":
                if msg.keys is not None and not msg.keys.done():
                    self.msg = None  # the message is over; its answer waits for its keys
                    return self._finish_later(event, self._verified_later(msg, edits))
                edits.extend(self._verified(msg))
        except BaseException:
            self._end_message()
            raise
        self._end_message()
        return edits + [_CONTINUE]

    async def _verified_later(self, msg: _Message, edits: List[Any]) -> List[Any]:
        try:
            assert msg.keys is not None
            await asyncio.wait([msg.keys])
            return edits + self._verified(msg) + [_CONTINUE]
        finally:
            msg.drop()

    def _signed(self, msg: _Message) -> List[Any]:
        try:
            fields = msg.session.finish()
        except UnsignableMessageError as exc:
            self._not_signed(msg, str(exc))
            return []
        out = []
        for i, raw in enumerate(fields):
            out.append(m.InsertHeader(i, "DKIM-Signature", self._value(raw.decode("ascii"))))
        log.info("%s: signed (from %s%s): %s", msg.queue_id, self.client,
                 ", authenticated as %s" % msg.auth if msg.auth else "",
                 ", ".join("d=%s s=%s" % (s.domain, s.selector) for s in msg.session.signers))
        return out

    def _verified(self, msg: _Message) -> List[Any]:
        session: VerificationSession = msg.session
        if msg.keys is not None:
            session.set_keys(msg.keys.result())
        results = session.finish()
        config = msg.loaded.config
        assert config.authserv_id is not None
        field = authentication_results(config.authserv_id, results, linesep="\n", width=78)
        log.info("%s: verified (from %s): %s", msg.queue_id, self.client,
                 ", ".join("dkim=%s d=%s" % (r.status, r.domain or "-") for r in results) or "dkim=none")
        return [m.InsertHeader(0, "Authentication-Results", self._value(field))]

    def _end_message(self) -> None:
        if self.msg is not None:
            self.msg.drop()
            self.msg = None
