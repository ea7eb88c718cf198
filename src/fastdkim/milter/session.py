"""One MTA connection on the event loop: bytes in, milter events out
(:mod:`kilter.protocol` frames and parses them), the replies of
:class:`~fastdkim.milter.connection.Connection` back.

An :class:`asyncio.Protocol` rather than streams: the events of a packet are
handled as it arrives, without a task or a future per read.  Only the end of
a message whose keys are still being looked up waits; reading pauses until
its answer is written, so events are always answered in order.
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from typing import Any, Dict, Iterator, List, Optional

from kilter.protocol.buffer import SimpleBuffer
from kilter.protocol.core import FilterProtocol
from kilter.protocol.exceptions import InsufficientSpace
from kilter.protocol import messages as m

from .connection import Connection

__all__ = ["GrowingBuffer", "MAX_BUFFERED", "MAX_PACKET", "MilterSession", "pack", "repair_packet"]

log = logging.getLogger("fastdkim.milter")

#: Linux's TCP_QUICKACK (``None`` elsewhere).
_QUICKACK: Optional[int] = getattr(socket, "TCP_QUICKACK", None)

#: The largest milter packet accepted (MTAs send body chunks of at most
#: 64 KiB; a header field may be larger, up to the MTA's header size limit).
MAX_PACKET = (1 << 20) + 64
#: The most a connection buffers: a packet of :data:`MAX_PACKET` not yet
#: whole, and what one read brings behind it (the event loop reads at most
#: 256 KiB at a time; twice that, to be safe).
MAX_BUFFERED = MAX_PACKET + (1 << 19)


def _peer_text(peer: Any) -> str:
    """The MTA's end of a connection as a log shows it: ``127.0.0.1:47824``,
    ``[::1]:47824``, or ``local`` for a unix socket."""
    if isinstance(peer, tuple) and len(peer) >= 2:
        host, port = peer[0], peer[1]
        return ("[%s]:%s" if ":" in str(host) else "%s:%s") % (host, port)
    return str(peer) if peer else "local"


def repair_packet(buffer: bytearray, found: Optional[Dict[str, Any]] = None) -> Optional[str]:
    """Make the first packet of *buffer* readable where the protocol library
    refused it for what it cannot decode, and say what was changed (``None``:
    nothing could be, the connection cannot go on).  A CONNECT or HELO whose
    host name is not valid IDNA (a client's reverse DNS name such as
    ``xn--a.example``, which the MTA passes on as it is) gets ``unknown``,
    the name MTAs give a client without one; the 8-bit octets of a macro
    packet (a UTF-8 login name in ``{auth_authen}``) become ``?``; those of a
    header field's name become spaces, which no field name holds, so that
    the header block reads as malformed, as it is (not signed; ``permerror``
    when verified).  A CONNECT's address in Sendmail's form (``IPv6:`` and
    the address) is read without the prefix; any other address that is no
    IP address or path (Postfix's ``unknown`` for XCLIENT's
    ``ADDR=[UNAVAILABLE]``) is read as none, and its text is put in
    *found* under ``"unreadable_address"``: the connection must then be
    taken for a client outside every network the configuration names, never
    for mail submitted on this host (which MTAs report without an address).
    *found* gets ``"routine"`` for a repair of what an MTA always sends so
    (Sendmail's IPv6 form), not worth a warning.  Nothing else is changed:
    what is signed or verified is what the MTA delivers."""
    if len(buffer) < 5:
        return None
    size = int.from_bytes(buffer[:4], "big")
    if size < 1 or len(buffer) < 4 + size:
        return None
    cmd, payload = bytes(buffer[4:5]), bytes(buffer[5:4 + size])
    if cmd in (b"C", b"H"):
        host, sep, rest = payload.partition(b"\0")
        whats = []
        try:
            host.decode("idna")
        except UnicodeError:
            host = b"unknown"
            whats.append("the client's host name %r (not valid IDNA) read as unknown" % payload.partition(b"\0")[0][:100])
        if cmd == b"C" and sep and not _readable_address(rest):
            stripped = _without_ipv6_prefix(rest)
            if stripped is not None:  # (Sendmail's form of an IPv6 address)
                whats.append("the client's address %r read without Sendmail's IPv6: prefix" % rest[3:100])
                if found is not None and len(whats) == 1:
                    found["routine"] = True
                rest = stripped
            else:
                # an address the MTA could not give, such as XCLIENT's
                # ADDR=[UNAVAILABLE], sent as the text "unknown"
                text = rest[3:].partition(b"\0")[0] if len(rest) > 3 else rest
                whats.append("the client's address %r read as unknown (a client outside internal_hosts)"
                             % rest[:100])
                if found is not None:
                    found["unreadable_address"] = text[:100].decode("ascii", "backslashreplace") or "?"
                rest = b"U"
        if not whats:
            return None  # (neither was what was refused)
        fixed = host + sep + rest
        what = "; ".join(whats)
    elif cmd == b"D":
        fixed = bytes(c if c < 0x80 else 0x3F for c in payload)
        if fixed == payload:
            return None
        what = "8-bit octets of a macro (%r) read as '?'" % payload[:100]
    elif cmd == b"L":
        name, sep, rest = payload.partition(b"\0")
        fixed_name = bytes(c if c < 0x80 else 0x20 for c in name)
        if not sep or fixed_name == name:
            return None
        # a name no header field can have (spaces): the header block is malformed, as it is
        fixed = fixed_name + sep + rest
        what = "a header field name with 8-bit octets (%r): the header block is malformed" % name[:100]
    else:
        return None
    buffer[:4 + size] = (len(fixed) + 1).to_bytes(4, "big") + cmd + fixed
    return what


def _without_ipv6_prefix(rest: bytes) -> Optional[bytes]:
    """The address part of a CONNECT whose address is Sendmail's
    ``IPv6:ADDRESS``, as family 6 and the bare address; ``None`` for any other."""
    if rest[:1] not in (b"4", b"6") or len(rest) < 3:
        return None
    address, sep, tail = rest[3:].partition(b"\0")
    if not sep or address[:5].lower() != b"ipv6:":
        return None
    try:
        ipaddress.IPv6Address(address[5:].decode("ascii"))
    except ValueError:
        return None
    return b"6" + rest[1:3] + address[5:] + b"\0" + tail


def _readable_address(rest: bytes) -> bool:
    """Whether the address part of a CONNECT (family, port, address) is one
    the protocol library reads: an unknown family, or an IP address or a
    path it can decode after the port."""
    family = rest[:1]
    if family == b"U":
        return True
    if family not in (b"4", b"6", b"L") or len(rest) < 3:
        return False
    address, sep, _ = rest[3:].partition(b"\0")
    if not sep:
        return False
    try:
        text = address.decode()
        if family != b"L":
            ipaddress.ip_address(text)
    except ValueError:  # (UnicodeDecodeError is one)
        return False
    return True


class GrowingBuffer:
    """A buffer for :meth:`kilter.protocol.core.FilterProtocol.read_from`
    that holds only what has arrived and is not yet read (not its full
    capacity, as :class:`kilter.protocol.buffer.SimpleBuffer` does): an idle
    connection costs a few bytes, a busy one at most ``capacity``."""

    __slots__ = ("buffer", "capacity")

    def __init__(self, capacity: int) -> None:
        self.buffer = bytearray()
        self.capacity = capacity

    def __len__(self) -> int:
        return self.capacity

    @property
    def filled(self) -> int:
        return len(self.buffer)

    @property
    def available(self) -> int:
        return self.capacity - len(self.buffer)

    def __setitem__(self, items: slice, data: bytes) -> None:
        start = len(self.buffer) if items.start is None else items.start
        if start + len(data) > self.capacity:
            raise InsufficientSpace
        if start == len(self.buffer):
            self.buffer += data
        else:
            self.buffer[start:start + len(data)] = data

    def __getitem__(self, items: slice) -> memoryview:
        return memoryview(self.buffer)[items]  # (a slice past the end stops at it, as a bytearray's)

    def __delitem__(self, items: slice) -> None:
        del self.buffer[items]

    def get_free(self, size: int) -> memoryview:
        """Not used for reading; raises :class:`InsufficientSpace` (the
        buffer grows on writes instead)."""
        raise InsufficientSpace


def pack(proto: FilterProtocol, message: Any) -> bytes:
    """The packet of ``message``, checked by ``proto`` against the event it answers."""
    size = 64
    value = getattr(message, "value", None)
    if value is not None:
        size += len(value) + len(message.name)
    elif type(message) is m.Negotiate:  # (the messages are ABCs: isinstance costs more)
        size += 256
    buf = SimpleBuffer(size)
    proto.write_to(buf, message)
    return buf[:].tobytes()


class MilterSession(asyncio.Protocol):
    """The protocol of one MTA connection.

    :param server: the :class:`~fastdkim.milter.server.MilterServer` (its
        ``current`` configuration, its ``sessions`` and ``stopping`` flag).
    """

    def __init__(self, server: Any) -> None:
        self.server = server
        self.conn: Optional[Connection] = None
        self.buf = GrowingBuffer(MAX_BUFFERED)
        self.transport: Optional[asyncio.Transport] = None
        self.pending: "Optional[asyncio.Future[Any]]" = None
        self._loop = asyncio.get_running_loop()
        self.closed: "asyncio.Future[None]" = self._loop.create_future()
        self._sock: Any = None
        # the last read (loop time), and the timer that closes a connection
        # silent for idle_timeout (set again when it fires, not at each read)
        self._last = self._loop.time()
        self._idle: Optional[asyncio.TimerHandle] = None
        self._repaired = 0  # packets made readable (repair_packet)

    @property
    def busy(self) -> bool:
        """Whether a message is under way, or the answer to one is awaited."""
        return self.pending is not None or (self.conn is not None and self.conn.in_transaction)

    # -- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if _QUICKACK is not None and sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            self._sock = sock
        self.conn = Connection(self.server.current, _peer_text(transport.get_extra_info("peername")))
        self.server.sessions.add(self)
        if self.server.stopping:
            transport.close()
            return
        self._idle = self._loop.call_later(self.server.current().config.idle_timeout, self._check_idle)

    def data_received(self, data: bytes) -> None:
        self._last = self._loop.time()
        if self._sock is not None:
            # Acknowledge at once: the MTA sends packets that take no reply
            # (macros, header fields, body chunks), and with the acknowledgement
            # of one delayed its next small write would wait for it (Nagle's
            # algorithm): some 40 ms per message.
            try:
                self._sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
            except OSError:
                self._sock = None
        try:
            self.buf[:] = data
        except InsufficientSpace:
            log.error("connection %s closed: more than %d bytes of milter packets unread", self._peer(),
                      MAX_BUFFERED)
            self.abort()
            return
        if self._head_too_large():
            return
        if self.pending is None:
            self._process(None)

    def _head_too_large(self) -> bool:
        """Close the connection if the packet at the head of the buffer says
        it is larger than :data:`MAX_PACKET` (as soon as its length is in,
        not once that much has come)."""
        head = self.buf.buffer
        if len(head) >= 4 and int.from_bytes(head[:4], "big") > MAX_PACKET:
            log.error("connection %s closed: a milter packet of %d bytes (more than %d)", self._peer(),
                      int.from_bytes(head[:4], "big"), MAX_PACKET)
            self.abort()
            return True
        return False

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        conn = self.conn
        if conn is not None and conn.in_transaction:
            log.info("%s: connection from %s ended in the middle of a message", conn.peer, conn.client)
        if conn is not None:
            conn._end_message()
        if self.pending is not None:
            self.pending.cancel()
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        self.server.sessions.discard(self)
        if not self.closed.done():
            self.closed.set_result(None)

    # -- events -------------------------------------------------------------------------

    def _peer(self) -> str:
        return self.conn.peer if self.conn is not None else "-"

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def _check_idle(self) -> None:
        """Close the connection if nothing came for ``idle_timeout`` seconds
        (a client that stalls, in a message or between messages), else look
        again when that much time has passed since the last read.  An answer
        still awaited (key lookups) is not idleness."""
        self._idle = None
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        timeout = self.server.current().config.idle_timeout
        silent = self._loop.time() - self._last
        if silent < timeout or self.pending is not None:
            self._idle = self._loop.call_later(max(timeout - silent, 0.0) if self.pending is None else timeout,
                                               self._check_idle)
            return
        conn = self.conn
        log.warning("connection %s closed: nothing received for %g s%s", self._peer(), timeout,
                    " in the middle of a message" if conn is not None and conn.in_transaction else "")
        transport.close()

    def close_if_idle(self) -> None:
        """Close the connection unless a message is under way (a stop)."""
        if not self.busy and self.transport is not None:
            self.transport.close()

    def _process(self, events: Optional[Iterator[Any]]) -> None:
        """Handle the events buffered (continuing ``events`` if given), again
        after each packet made readable (a loop: a read of thousands of
        such packets costs no stack)."""
        while self._process_once(events):
            events = None

    def _process_once(self, events: Optional[Iterator[Any]]) -> bool:
        """:meth:`_process` up to a packet the protocol library cannot read:
        True when it was made readable (:func:`repair_packet`) and the rest
        is to be handled."""
        conn = self.conn
        transport = self.transport
        assert conn is not None and transport is not None
        # The replies to every event of this read go out in one write (one
        # system call, one wake-up of the MTA), before any answer that waits.
        out: List[bytes] = []
        handle = conn.handle
        proto = conn.proto
        failure: Optional[str] = None
        try:
            if events is None:
                events = proto.read_from(self.buf)
            for event in events:
                replies = handle(event)
                if replies.__class__ is not list:  # an answer that waits (key lookups)
                    if out:
                        transport.write(b"".join(out))
                    transport.pause_reading()
                    self.pending = asyncio.ensure_future(self._later(event, replies, events))
                    return False
                if replies:
                    for r in replies:
                        out.append(pack(proto, r))
                    if conn.closed:
                        break
                elif conn.closed:
                    break
        except Exception as exc:  # a packet the protocol library cannot read
            if out:
                transport.write(b"".join(out))
            failure = "%s: %s" % (type(exc).__name__, exc)
        if failure is not None:  # (out of the except block: the views of the buffer it held are gone)
            found: Dict[str, Any] = {}
            try:
                repaired = repair_packet(self.buf.buffer, found)
            except BufferError:  # (still viewed: cannot be changed)
                repaired = None
            if repaired is not None:  # what the library cannot decode, made readable: the connection goes on
                if "unreadable_address" in found:
                    conn.unreadable_address = found["unreadable_address"]  # (for the CONNECT read next)
                routine = found.get("routine", False)
                self._repaired += 0 if routine else 1
                # (the first of a connection's repairs at WARNING: a client sending thousands cannot flood the log)
                log.log(logging.WARNING if self._repaired == 1 and not routine else logging.DEBUG,
                        "connection %s: %s", self._peer(), repaired)
                return True
            log.error("connection %s closed: a milter packet that cannot be read (%s)", self._peer(), failure)
            self.abort()
            return False
        if out:
            transport.write(b"".join(out))
        if conn.closed:
            transport.close()
            return False
        if self._head_too_large():
            return False
        if not self.buf.buffer:
            self.buf.buffer = bytearray()  # give back what a large packet took
        if self.server.stopping:
            self.close_if_idle()
        return False

    async def _later(self, event: Any, replies: Any, events: Iterator[Any]) -> None:
        conn = self.conn
        transport = self.transport
        assert conn is not None and transport is not None
        try:
            answer: List[Any] = await replies
            if answer:
                transport.write(b"".join(pack(conn.proto, r) for r in answer))
        except Exception as exc:  # (a protocol error writing the answer)
            log.error("connection %s closed: %s: %s", self._peer(), type(exc).__name__, exc)
            self.abort()
            return
        finally:
            self.pending = None
        if transport.is_closing():
            return
        transport.resume_reading()
        self._process(events)
