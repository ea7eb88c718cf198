"""What each milter event comes to (fastdkim.milter.connection), in process,
with the protocol's own message objects: negotiation, signing and
verification decisions, internal errors answered with ``on_error``, the
read buffer."""
from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging

import pytest

m = pytest.importorskip("kilter.protocol.messages",
                        reason="the milter needs kilter.protocol (the milter extra; Python 3.10+)")

from kilter.protocol.buffer import SimpleBuffer  # noqa: E402
from kilter.protocol.core import FilterProtocol  # noqa: E402
from kilter.protocol.exceptions import InsufficientSpace  # noqa: E402

import fastdkim  # noqa: E402
from fastdkim.milter.config import load_config  # noqa: E402
from fastdkim.milter.connection import Connection  # noqa: E402
from fastdkim.milter.runtime import load  # noqa: E402
from fastdkim.milter.session import GrowingBuffer, pack as _pack  # noqa: E402
from fastdkim.streaming import SigningSession  # noqa: E402

from milter_harness import AUTHSERV_ID, make_keys  # noqa: E402

OFFER = m.Negotiate(6, m.ActionFlags.ALL, m.ProtocolFlags(0x1FFFFF))


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return make_keys(tmp_path_factory.mktemp("keys"))


def _loaded(keys, **overrides):
    base = {"policy": str(keys.policy_rsa), "authserv_id": AUTHSERV_ID, "keys": str(keys.zone)}
    base.update(overrides)
    return load(load_config(None, base))


def _run(conn: Connection, events):
    """Each event packed as an MTA sends it, read back through the
    connection's protocol state machine, handled; the replies to each, packed
    and unpacked again (so that they are checked against what was negotiated)."""
    async def go():
        out = []
        for e in events:
            wire = SimpleBuffer(1 << 16)
            e.pack(wire)
            buf = GrowingBuffer(1 << 16)
            buf[:] = wire[:].tobytes()
            for event in conn.proto.read_from(buf):
                replies = conn.handle(event)
                if not isinstance(replies, list):
                    replies = await replies
                back = GrowingBuffer(1 << 16)
                for r in replies:
                    back[:] = _pack(conn.proto, r)
                out.append([msg for msg, _ in _unpack_all(back)])
        return out
    return asyncio.run(go())


def _unpack_all(buf):
    while buf.filled:
        msg, size = m.Message.unpack(buf)
        msg.freeze()
        yield msg, size
        del buf[:size]


def _message(client: str, headers, body: bytes, offer=OFFER):
    addr = ipaddress.ip_address(client)
    events = [offer, m.Connect("client.example", addr, 25000), m.EnvelopeFrom(b"<a@example.com>")]
    events += [m.Header(n, v) for n, v in headers]
    events += [m.EndOfHeaders(), m.Body(body[:5]), m.Body(body[5:]), m.EndOfMessage(b"")]
    return events


HEADERS = [("From", b" a@example.com"), ("Subject", b" hi")]


def test_negotiation_asks_only_what_is_offered(keys):
    conn = Connection(lambda: _loaded(keys))
    (reply,) = _run(conn, [OFFER])[0]
    assert reply.version == 6
    assert m.ProtocolFlags.HEADER_LEADING_SPACE in reply.protocol_flags
    assert m.ProtocolFlags.NR_BODY in reply.protocol_flags
    assert reply.action_flags == m.ActionFlags.ADD_HEADERS | m.ActionFlags.CHANGE_HEADERS | m.ActionFlags.SETSYMLIST
    assert conn.leading_space
    # an MTA offering little: nothing more is asked
    small = m.Negotiate(2, m.ActionFlags.ADD_HEADERS, m.ProtocolFlags.NO_HELO)
    (reply,) = _run(Connection(lambda: _loaded(keys)), [small])[0]
    assert (reply.version, reply.action_flags, reply.protocol_flags, dict(reply.macros)) == \
           (2, m.ActionFlags.ADD_HEADERS, m.ProtocolFlags.NO_HELO, {})


def test_sign_internal_and_verify_external(keys):
    loaded = _loaded(keys)
    conn = Connection(lambda: loaded)
    replies = _run(conn, _message("127.0.0.1", HEADERS, b"body line\r\n"))
    eom = replies[-1]
    assert isinstance(eom[-1], m.Continue)
    (insert,) = eom[:-1]
    assert isinstance(insert, m.InsertHeader) and insert.name == "DKIM-Signature"
    signed = b"DKIM-Signature:" + insert.value.replace(b"\n", b"\r\n") + b"\r\nFrom: a@example.com\r\nSubject: hi\r\n\r\n" \
        b"body line\r\n"
    assert [r.status for r in fastdkim.verify(signed, keys=keys.records)] == ["pass"]
    # the same message from outside: verified, its signature passes
    name, _, value = signed.partition(b"\r\nFrom")[0].partition(b":")
    headers = [(name.decode(), value.replace(b"\r\n", b"\n"))] + HEADERS
    replies = _run(Connection(lambda: loaded), _message("192.0.2.1", headers, b"body line\r\n"))
    (insert, cont) = replies[-1]
    assert insert.name == "Authentication-Results" and b"dkim=pass" in insert.value
    assert insert.value.startswith(b" %s;" % AUTHSERV_ID.encode())


def test_without_leading_space_the_space_is_given_back(keys):
    offer = m.Negotiate(6, m.ActionFlags.ALL, m.ProtocolFlags(0x1FFFFF) & ~m.ProtocolFlags.HEADER_LEADING_SPACE)
    loaded = _loaded(keys, policy=str(keys.policy_rsa))
    conn = Connection(lambda: loaded)
    replies = _run(conn, _message("127.0.0.1", [("From", b"a@example.com"), ("Subject", b"hi")], b"x\r\n",
                                  offer=offer))
    insert = replies[-1][0]
    assert insert.value.startswith(b"v=1;")  # the MTA adds the space after the colon
    signed = b"DKIM-Signature: " + insert.value.replace(b"\n", b"\r\n") + b"\r\nFrom: a@example.com\r\n" \
        b"Subject: hi\r\n\r\nx\r\n"
    assert [r.status for r in fastdkim.verify(signed, keys=keys.records)] == ["pass"]


def test_nothing_to_do_is_accepted_at_end_of_headers(keys):
    loaded = _loaded(keys, authserv_id=None)
    replies = _run(Connection(lambda: loaded), _message("192.0.2.1", HEADERS, b"x\r\n")[:6])
    assert isinstance(replies[-1][0], m.Accept)


@pytest.mark.parametrize("on_error, reply", [("accept", m.Accept), ("tempfail", m.TemporaryFailure)])
def test_internal_error_answered_with_on_error(keys, monkeypatch, caplog, on_error, reply):
    loaded = _loaded(keys, on_error=on_error)

    def broken(self, chunk):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(SigningSession, "body", broken)
    conn = Connection(lambda: loaded)
    with caplog.at_level(logging.ERROR, logger="fastdkim.milter"):
        replies = _run(conn, _message("127.0.0.1", HEADERS, b"body\r\n"))
    assert [type(r) for r in replies[-1]] == [reply]
    (line,) = [r.getMessage() for r in caplog.records if r.name == "fastdkim.milter"]
    assert "internal error at Body" in line and "disk on fire" in line and "answered %s" % on_error in line
    assert not conn.in_transaction
    # the connection goes on: the next message is signed
    monkeypatch.undo()
    replies = _run(conn, _message("127.0.0.1", HEADERS, b"body\r\n")[2:])
    assert isinstance(replies[-1][0], m.InsertHeader)


def test_abort_resets_the_message(keys):
    loaded = _loaded(keys)
    conn = Connection(lambda: loaded)
    events = _message("127.0.0.1", HEADERS, b"one\r\n")[:5] + [m.Abort()]
    _run(conn, events)
    assert not conn.in_transaction
    replies = _run(conn, [m.EnvelopeFrom(b"<a@example.com>"), m.Header("From", b" a@example.com"),
                          m.EndOfHeaders(), m.Body(b"two\r\n"), m.EndOfMessage(b"")])
    insert = replies[-1][0]
    signed = b"DKIM-Signature:" + insert.value.replace(b"\n", b"\r\n") + b"\r\nFrom: a@example.com\r\n\r\ntwo\r\n"
    assert [r.status for r in fastdkim.verify(signed, keys=keys.records)] == ["pass"]


def test_growing_buffer_and_packing():
    buf = GrowingBuffer(16)
    assert (buf.filled, buf.available, len(buf)) == (0, 16, 16)
    buf[:] = b"\x00\x00\x00\x01"
    buf[:] = b"A"
    assert bytes(buf[:]) == b"\x00\x00\x00\x01A"
    proto = FilterProtocol()
    assert [type(e) for e in proto.read_from(buf)] == [m.Abort]
    assert buf.filled == 0
    with pytest.raises(InsufficientSpace):
        buf[:] = b"x" * 17
    with pytest.raises(InsufficientSpace):
        buf.get_free(1)
    buf[:] = b"abcd"
    buf[1:] = b"Z"
    assert bytes(buf[:]) == b"aZcd"
    del buf[:2]
    assert bytes(buf[:]) == b"cd"
    # replies are checked against the event they answer
    proto = FilterProtocol()
    src = GrowingBuffer(1 << 10)
    src[:] = b"\x00\x00\x00\x01T"  # DATA
    list(proto.read_from(src))
    assert _pack(proto, m.Continue()) == b"\x00\x00\x00\x01c"


def _slow_keys(keys):
    """A verifying configuration whose key lookups take 50 ms, and the header
    fields of a message signed for it (its body: ``body line``)."""
    from fastdkim.milter.runtime import Loaded

    class Slow:
        async def lookup(self, name):
            await asyncio.sleep(0.05)
            return [keys.records[name].encode()]

    loaded = Loaded(load_config(None, {"authserv_id": AUTHSERV_ID}), None, Slow(), False)
    message = b"From: a@example.com\r\nSubject: hi\r\n\r\nbody line\r\n"
    field = fastdkim.Signer("example.com", "rsa1", keys.rsa).sign(message)
    name, _, value = field[:-2].partition(b":")
    return loaded, [(name.decode(), value.replace(b"\r\n", b"\n"))] + HEADERS


def test_end_of_message_waits_for_slow_keys(keys):
    """Keys still being looked up at the end of the message: the answer
    waits for them (the body hashed meanwhile)."""
    loaded, headers = _slow_keys(keys)
    conn = Connection(lambda: loaded)
    replies = _run(conn, _message("192.0.2.1", headers, b"body line\r\n"))
    insert, _ = replies[-1]
    assert b"dkim=pass" in insert.value
    assert not conn.in_transaction


class _Transport:
    def __init__(self):
        self.out = b""
        self.aborted = False
        self.closing = False
        self.paused = 0

    def get_extra_info(self, name):
        return None

    def write(self, data):
        self.out += data

    def pause_reading(self):
        self.paused += 1

    def resume_reading(self):
        pass

    def is_closing(self):
        return self.closing or self.aborted

    def close(self):
        self.closing = True

    def abort(self):
        self.aborted = True


def _packets(events) -> bytes:
    wire = b""
    for e in events:
        buf = SimpleBuffer(1 << 21)
        e.pack(buf)
        wire += buf[:].tobytes()
    return wire


def _raw_packet(cmd: bytes, payload: bytes) -> bytes:
    return (len(payload) + 1).to_bytes(4, "big") + cmd + payload


def _session(loaded, wire: bytes, chunks=None):
    """The replies (unpacked) a MilterSession writes for *wire*, fed in one
    read (or in *chunks* of that size), and its transport."""
    from fastdkim.milter.session import MilterSession

    class Server:
        stopping = False
        sessions = set()

        def current(self):
            return loaded

    async def go():
        session = MilterSession(Server())
        t = _Transport()
        session.connection_made(t)
        step = chunks or len(wire)
        for i in range(0, len(wire), step):
            if t.aborted:
                break
            session.data_received(wire[i:i + step])
        while session.pending is not None:
            await asyncio.sleep(0.01)
        if session._idle is not None:
            session._idle.cancel()
        return t

    t = asyncio.run(go())
    got = GrowingBuffer(1 << 22)
    got[:] = t.out
    return [msg for msg, _ in _unpack_all(got)], t


def test_session_answers_in_order_across_a_wait(keys):
    """Through the asyncio protocol: an end of message that waits for its
    keys, with the next message's events already buffered behind it."""
    loaded, headers = _slow_keys(keys)
    events = _message("192.0.2.1", headers, b"body line\r\n")
    events += events[2:]  # a second message on the same connection
    replies, t = _session(loaded, _packets(events))  # everything in one read
    assert t.paused == 2
    kinds = [type(msg).__name__ for msg in replies]
    # (no replies to the connection, MAIL, header fields and body chunks: negotiated away)
    assert kinds == ["Negotiate", "Continue", "InsertHeader", "Continue", "Continue", "InsertHeader", "Continue"]


@pytest.mark.parametrize("offer", [OFFER, m.Negotiate(6, m.ActionFlags.ALL, m.ProtocolFlags(0x17F))],
                         ids=["all-options", "no-NR-options"])
def test_reply_due_agrees_with_the_protocol(keys, offer):
    """The connection's own test of whether an event takes a reply (the
    negotiated NR_* flags, without the protocol's pattern match) gives what
    FilterProtocol.needs_response gives, for every event that can take one."""
    conn = Connection(lambda: _loaded(keys))
    _run(conn, [offer])
    addr = ipaddress.ip_address("192.0.2.1")
    events = [m.Connect("c.example", addr, 25), m.Helo("c.example"), m.EnvelopeFrom(b"<a@example.com>"),
              m.EnvelopeRecipient(b"<b@example.org>"), m.Data(), m.Unknown(b"XYZZY"), m.Header("From", b" a"),
              m.EndOfHeaders(), m.Body(b"x"), m.EndOfMessage(b""), offer]
    for event in events:
        assert conn._reply_due(event) == conn.proto.needs_response(event), type(event).__name__
    due = {type(e).__name__ for e in events if conn._reply_due(e)}
    if offer is OFFER:
        assert due == {"EndOfHeaders", "EndOfMessage", "Negotiate"}
    else:
        assert "Header" in due and "Body" in due


def test_replies_of_one_read_go_out_in_one_write(keys):
    """Events that arrive together are answered with one write (one system
    call, one wake-up of the MTA), in order."""
    from fastdkim.milter.session import MilterSession

    loaded = _loaded(keys)
    offer = m.Negotiate(6, m.ActionFlags.ALL, m.ProtocolFlags(0x17F))  # no NR_*: every event takes a reply
    events = _message("127.0.0.1", HEADERS, b"body line\r\n", offer=offer) + [m.Close()]
    wire = b""
    for e in events:
        buf = SimpleBuffer(1 << 16)
        e.pack(buf)
        wire += buf[:].tobytes()

    class Transport:
        def __init__(self):
            self.writes = []
            self.closed = False

        def get_extra_info(self, name):
            return None

        def write(self, data):
            self.writes.append(data)

        def close(self):
            self.closed = True

    class Server:
        stopping = False
        sessions = set()

        def current(self):
            return loaded

    async def go():
        session = MilterSession(Server())
        t = Transport()
        session.connection_made(t)
        session.data_received(wire)
        session.connection_lost(None)
        return t

    t = asyncio.run(go())
    assert len(t.writes) == 1 and t.closed
    got = GrowingBuffer(1 << 20)
    got[:] = t.writes[0]
    kinds = [type(msg).__name__ for msg, _ in _unpack_all(got)]
    assert kinds == ["Negotiate", "Continue", "Continue", "Continue", "Continue", "Continue", "Continue",
                     "Continue", "InsertHeader", "Continue"]


def test_forged_fields_removed_whatever_their_spelling(keys):
    """Forged Authentication-Results fields are removed however they are
    written (whitespace before the colon, case, a comment before the
    authserv-id, the authserv-id on a continuation line) and when another
    field hides one behind a bare CR or LF; each removal names the field
    and its index among the fields of that name, the last first, and other
    servers' fields stay."""
    loaded = _loaded(keys)
    a = AUTHSERV_ID.encode()
    headers = [("Authentication-Results", b" other.example.net; dkim=fail"),
               ("Authentication-Results ", b" %s; dkim=pass" % a),
               ("X-Note", b" a\rAuthentication-Results: %s; dkim=pass" % a),
               ("x-note", b" harmless\n folded"),
               ("authentication-results", b" (checked) %s ; dkim=pass" % a),
               ("X-Note", b" b\nAuthentication-Results : (c)\n %s; dkim=pass" % a.upper()),
               ("X-Other", b" c\rAuthentication-Results: other.example.net; dkim=pass"),
               ("AUTHENTICATION-RESULTS", b"\n %s.; dkim=pass" % a)] + HEADERS
    for client in ("192.0.2.1", "127.0.0.1"):  # verified and signed alike
        eom = _run(Connection(lambda: loaded), _message(client, headers, b"x\r\n"))[-1]
        if client == "192.0.2.1":
            assert type(eom[-2]) is m.InsertHeader and eom[-2].name == "Authentication-Results"
        removed = [(r.name.lower(), r.index) for r in eom if type(r) is m.ChangeHeader]
        assert removed == [("authentication-results", 4), ("x-note", 3), ("authentication-results", 3),
                           ("x-note", 1), ("authentication-results", 2)]
        assert all(r.value == b"" for r in eom if type(r) is m.ChangeHeader)
        assert type(eom[-1]) is m.Continue
    assert type(eom[-2]) is m.ChangeHeader  # (signed: nothing added, a bare CR is not signed)


@pytest.mark.parametrize("on_error, reply", [("accept", m.Accept), ("tempfail", m.TemporaryFailure)])
def test_unknown_command_mid_message_is_not_a_new_message(keys, caplog, on_error, reply):
    """An unknown command in the middle of a header block (the protocol
    library reads it as an abort): the header fields that follow are not
    taken for a new message (whose Authentication-Results indexes would
    name other servers' fields, whose signature would leave fields out);
    they are answered with ``on_error`` and logged, and the next MAIL
    starts afresh."""
    loaded = _loaded(keys, on_error=on_error)
    conn = Connection(lambda: loaded)
    a = AUTHSERV_ID.encode()
    head = [OFFER, m.Connect("client.example", ipaddress.ip_address("192.0.2.1"), 25000),
            m.EnvelopeFrom(b"<a@example.com>"), m.Header("Authentication-Results", b" %s; dkim=pass" % a)]
    wire = SimpleBuffer(1 << 16)
    for e in head:
        e.pack(wire)
    wire[wire.filled:] = b"\x00\x00\x00\x03Zxy"  # a command no milter protocol version has
    for e in [m.Header("Authentication-Results", b" other.example.net; dkim=pass"),
              m.Header("Authentication-Results", b" %s; dkim=pass" % a),
              m.Header("From", b" a@example.com"), m.EndOfHeaders()]:
        e.pack(wire)
    buf = GrowingBuffer(1 << 16)
    buf[:] = wire[:].tobytes()

    async def go():
        out = []
        for event in conn.proto.read_from(buf):
            replies = conn.handle(event)
            for r in replies:
                _pack(conn.proto, r)  # (the protocol's state follows the replies)
            out.append(replies)
        return out

    with caplog.at_level(logging.ERROR, logger="fastdkim.milter"):
        replies = asyncio.run(go())
    assert [type(r) for r in replies[-1]] == [reply]
    assert not any(type(r) is m.ChangeHeader for rs in replies for r in rs)
    assert "without a new MAIL" in caplog.text
    # the next message is handled as usual
    eom = _run(conn, _message("192.0.2.1", HEADERS, b"x\r\n")[2:])[-1]
    assert [type(r) for r in eom] == [m.InsertHeader, m.Continue]


def test_what_a_connection_keeps_is_bounded(keys):
    """A client sending macros never asked for, or a header block of many
    distinct field names, cannot grow what a connection keeps: only the
    macros used are kept, and past ``max_header_bytes`` new names are no
    longer counted (forged fields are still removed)."""
    loaded = _loaded(keys, max_header_bytes=4096)
    conn = Connection(lambda: loaded)
    a = AUTHSERV_ID.encode()
    events = _message("192.0.2.1", [], b"")[:3]
    events += [m.Macro(ord("M"), {"{junk%d}" % i: "x" * 100}) for i in range(500)]
    events += [m.Macro(ord("M"), {"i": "QUEUEID", "{auth_authen}": "alice"})]
    _run(conn, events)
    assert set(conn.macros) == {"i", "{auth_authen}"}
    events = [m.Header("X-Field-%d" % i, b" value") for i in range(2000)]
    events += [m.Header("Authentication-Results", b" %s; dkim=pass" % a), m.EndOfHeaders()]
    _run(conn, events)
    msg = conn.msg
    assert msg is not None and len(msg.seen) < 4096 // 10
    assert msg.forged == [("Authentication-Results", 1)]


def test_silent_connections_are_closed(keys, caplog):
    """A real listening milter: a client that stops sending in the middle
    of a message (never sends its end) and one that only connects are
    closed after ``idle_timeout`` with a log line; a client that keeps
    sending stays."""
    from fastdkim.milter.server import MilterServer

    import socket

    with socket.socket() as probe:  # a free port
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    loaded = _loaded(keys, idle_timeout=0.3, socket="inet:%d@127.0.0.1" % port)

    def packets(events):
        wire = SimpleBuffer(1 << 16)
        for e in events:
            e.pack(wire)
        return wire[:].tobytes()

    async def go():
        server = MilterServer(loaded)
        await server.start()
        serving = asyncio.ensure_future(server.serve())
        host, port = server.bound
        stalled = await asyncio.open_connection(host, port)
        stalled[1].write(packets(_message("192.0.2.1", HEADERS, b"x\r\n")[:5]))
        silent = await asyncio.open_connection(host, port)
        busy = await asyncio.open_connection(host, port)
        busy[1].write(packets([OFFER]))
        for _ in range(8):  # 0.8 s of a byte-sized macro packet every 0.1 s
            await asyncio.sleep(0.1)
            busy[1].write(packets([m.Macro(ord("C"), {})]))
        ends = [await asyncio.wait_for(r.read(), 2) for r, _ in (stalled, silent)]
        still_open = not busy[0].at_eof()
        for _, w in (stalled, silent, busy):
            w.close()
        await asyncio.sleep(0)
        server.stop()
        await asyncio.wait_for(serving, 10)
        return ends, still_open

    with caplog.at_level(logging.WARNING, logger="fastdkim.milter"):
        ends, still_open = asyncio.run(go())
    assert still_open
    assert ends[1] == b""
    assert "nothing received for 0.3 s in the middle of a message" in caplog.text
    assert caplog.text.count("nothing received for 0.3 s") == 2


def test_a_socket_owner_that_cannot_be_set_is_a_clear_error_and_leaves_no_socket(keys, tmp_path, monkeypatch):
    """A milter not running as root may not give its socket a group its user
    is not in: the error says so (not "cannot listen"), and no socket file
    is left behind."""
    from fastdkim.milter import server as server_mod
    from fastdkim.milter.config import ConfigError
    from fastdkim.milter.server import MilterServer

    path = tmp_path / "m.sock"
    loaded = _loaded(keys, socket="unix:%s" % path, socket_owner="root:root")

    def refused(*args):
        raise PermissionError(errno.EPERM, "Operation not permitted")
    monkeypatch.setattr(server_mod.os, "chown", refused)
    monkeypatch.setattr(server_mod.os, "geteuid", lambda: 1000)

    async def go():
        server = MilterServer(loaded)
        with pytest.raises(ConfigError) as info:
            await server.start()
        return str(info.value)
    message = asyncio.run(go())
    assert message.startswith("socket_owner root:root: cannot give %s that owner: Operation not permitted" % path)
    assert "a group its user is in" in message
    assert not path.exists()


# -- what the protocol library cannot decode, and packets at the limits ---------------------------


@pytest.mark.parametrize("host", [b"xn--a.evil.example", b"xn--.example", b"-bad-.xn--zz.example"])
def test_a_host_name_that_is_not_idna_does_not_end_the_connection(keys, caplog, host):
    """A client whose reverse DNS name is not valid IDNA (the MTA passes it
    on as it is): the connection goes on as for a client without a name, and
    an Authentication-Results claiming this server is removed all the same
    (a dropped connection would let the MTA deliver the message untouched)."""
    connect = _packets([m.Connect("placeholder.example", ipaddress.ip_address("192.0.2.1"), 25000)])
    connect = _raw_packet(b"C", connect[5:].replace(b"placeholder.example", host))
    _forged_results_removed_after(_loaded(keys), connect, caplog)
    assert "not valid IDNA" in caplog.text and "read as unknown" in caplog.text


def _forged_results_removed_after(loaded, connect: bytes, caplog):
    """A session opened by the packet ``connect``, then a message carrying
    an Authentication-Results that claims this server: the connection goes
    on and the forged field is removed (a dropped connection would let the
    MTA deliver the message untouched).  The replies."""
    forged = [("Authentication-Results", b" %s; dkim=pass" % AUTHSERV_ID.encode())] + HEADERS
    wire = _packets([OFFER]) + connect + _packets(_message("192.0.2.1", forged, b"x\r\n")[2:])
    with caplog.at_level(logging.WARNING, logger="fastdkim.milter"):
        replies, t = _session(loaded, wire)
    assert not t.aborted
    kinds = [type(r).__name__ for r in replies]
    assert kinds == ["Negotiate", "Continue", "ChangeHeader", "InsertHeader", "Continue"], kinds  # (EOH, EOM)
    assert replies[2].name == "Authentication-Results" and replies[2].value == b""
    return replies


@pytest.mark.parametrize("address", [b"4\x61\xa8unknown\x00", b"6\x00\x00[UNAVAILABLE]\x00", b"4\x00",
                                     b"L\x00\x00\xff\xfe\x00", b"Z\x00\x00x\x00", b"4\x00\x19192.0.2.1"])
def test_an_address_the_mta_could_not_give_does_not_end_the_connection(keys, caplog, address):
    """A CONNECT whose address is no IP address (Postfix sends "unknown"
    for XCLIENT's ADDR=[UNAVAILABLE]), a truncated one, an unknown family:
    the connection goes on, as a client outside internal_hosts (verified,
    never signed as mail submitted on this host), and a forged
    Authentication-Results is removed all the same."""
    loaded = _loaded(keys, internal_hosts=["0.0.0.0/0", "::/0"])
    replies = _forged_results_removed_after(loaded, _raw_packet(b"C", b"client.example\x00" + address), caplog)
    assert replies[3].name == "Authentication-Results", replies[3]  # verified, not signed
    assert "the client's address" in caplog.text and "read as unknown" in caplog.text


@pytest.mark.parametrize("inside, added", [(True, "DKIM-Signature"), (False, "Authentication-Results")])
def test_sendmails_ipv6_form_of_an_address_is_read(keys, caplog, inside, added):
    """Sendmail writes a client's IPv6 address as "IPv6:2001:db8::1": read
    as that address, inside or outside internal_hosts as it is."""
    loaded = _loaded(keys, internal_hosts=["2001:db8::/32"] if inside else ["10.0.0.0/8"])
    connect = _raw_packet(b"C", b"client.example\x006\x61\xa8IPv6:2001:db8::1\x00")
    wire = _packets([OFFER]) + connect + _packets(_message("192.0.2.1", HEADERS, b"x\r\n")[2:])
    with caplog.at_level(logging.INFO, logger="fastdkim.milter"):
        replies, t = _session(loaded, wire)
    assert not t.aborted
    inserted = [r.name for r in replies if type(r).__name__ == "InsertHeader"]
    assert inserted == [added], replies
    assert "read as unknown" not in caplog.text and "WARNING" not in caplog.text


def test_repair_leaves_readable_connects_alone():
    from fastdkim.milter.session import repair_packet

    for address in (b"4\x61\xa8192.0.2.1\x00", b"6\x00\x19::1\x00", b"U", b"L\x00\x00/run/x.sock\x00"):
        buf = bytearray(_raw_packet(b"C", b"client.example\x00" + address))
        assert repair_packet(buf) is None
    buf = bytearray(_raw_packet(b"C", b"xn--a.example\x00" + b"4\x00\x19unknown\x00"))
    found = {}
    what = repair_packet(buf, found)
    assert what is not None and "host name" in what and "address" in what
    assert found == {"unreadable_address": "unknown"}
    assert bytes(buf) == _raw_packet(b"C", b"unknown\x00U")


def test_an_8bit_login_name_still_signs(keys, caplog):
    """{auth_authen} holding a UTF-8 login (the protocol library reads macros
    as ASCII): the authenticated user's mail is signed."""
    loaded = _loaded(keys, sign_authenticated=True)
    macro = _raw_packet(b"D", b"M{auth_authen}\x00j\xc3\xb6rg\x00")
    events = _message("192.0.2.7", HEADERS, b"x\r\n")
    wire = _packets(events[:2]) + macro + _packets(events[2:])
    with caplog.at_level(logging.INFO, logger="fastdkim.milter"):
        replies, t = _session(loaded, wire)
    assert not t.aborted
    assert [type(r).__name__ for r in replies] == ["Negotiate", "Continue", "InsertHeader", "Continue"]
    assert replies[2].name == "DKIM-Signature" and "authenticated as j??rg" in caplog.text


@pytest.mark.parametrize("on_error, reply", [("accept", m.Accept), ("tempfail", m.TemporaryFailure)])
def test_an_abort_in_the_body_is_not_passed_over(keys, caplog, on_error, reply):
    """An abort (or an unknown command) in the body, then the rest of the
    message without a new MAIL: its end is answered with on_error and
    logged, not with continue."""
    loaded = _loaded(keys, on_error=on_error)
    conn = Connection(lambda: loaded)
    events = _message("127.0.0.1", HEADERS, b"body line\r\n")
    events = events[:-2] + [m.Abort()] + events[-2:]
    with caplog.at_level(logging.ERROR, logger="fastdkim.milter"):
        replies = _run(conn, events)
    assert [type(r) for r in replies[-1]] == [reply]
    assert "end of a message after an abort" in caplog.text


def test_the_packet_limit_is_per_packet(keys, caplog):
    """A packet just under the limit followed, in the same reads, by many
    small ones is read; a packet announcing more than the limit closes the
    connection at once (not once that much has come)."""
    from fastdkim.milter.session import MAX_PACKET

    loaded = _loaded(keys)
    big = ("X-Big", b" " + b"a" * (MAX_PACKET - 200))
    events = _message("192.0.2.1", [big] + HEADERS * 3000, b"x\r\n")
    wire = _packets(events)
    assert len(wire) > MAX_PACKET + 100_000
    replies, t = _session(loaded, wire, chunks=1 << 16)
    assert not t.aborted and type(replies[-1]).__name__ in ("Continue", "Accept")
    with caplog.at_level(logging.ERROR, logger="fastdkim.milter"):
        replies, t = _session(loaded, _packets([OFFER]) + (1 << 31).to_bytes(4, "big") + b"L")
    assert t.aborted and "a milter packet of 2147483648 bytes" in caplog.text


def test_too_many_header_fields_is_not_signed_not_an_error(keys, caplog):
    loaded = _loaded(keys, on_error="tempfail")
    conn = Connection(lambda: loaded)
    many = HEADERS + [("X-N", b" %d" % i) for i in range(10_001)]
    with caplog.at_level(logging.INFO, logger="fastdkim.milter"):
        replies = _run(conn, _message("127.0.0.1", many, b"x\r\n")[:-3])  # up to the end of the header block
    assert [type(r) for r in replies[-1]] == [m.Accept]
    assert "not signed" in caplog.text and "more than 10000 fields" in caplog.text
    assert "internal error" not in caplog.text


def test_events_out_of_order_are_named_so(keys, caplog):
    """A body before the end of the header block (bad MTA traffic) is
    answered with on_error and logged as events out of order, not as an
    internal error of the milter."""
    from fastdkim.streaming import SessionOrderError

    assert issubclass(SessionOrderError, RuntimeError)
    loaded = _loaded(keys)
    conn = Connection(lambda: loaded)
    events = _message("127.0.0.1", HEADERS, b"body\r\n")
    eoh = events.index(next(e for e in events if isinstance(e, m.EndOfHeaders)))
    events = events[:eoh] + [m.Body(b"early\r\n")] + events[eoh:]
    with caplog.at_level(logging.ERROR, logger="fastdkim.milter"):
        _run(conn, events)
    assert "milter events out of order at Body" in caplog.text and "internal error" not in caplog.text


@pytest.mark.parametrize("client, want", [("127.0.0.1", "not signed"), ("192.0.2.1", "verified")])
def test_an_8bit_header_name_makes_a_malformed_block_not_a_dropped_connection(keys, caplog, client, want):
    loaded = _loaded(keys)
    forged = [("Authentication-Results", b" %s; dkim=pass" % AUTHSERV_ID.encode())] + HEADERS
    events = _message(client, forged, b"x\r\n")
    odd = _raw_packet(b"L", _packets([m.Header("X-Fxo", b" v")])[5:].replace(b"X-Fxo", b"X-F\xc3\xb6o"))
    wire = _packets(events[:5]) + odd + _packets(events[5:])
    with caplog.at_level(logging.INFO, logger="fastdkim.milter"):
        replies, t = _session(loaded, wire)
    assert not t.aborted
    assert "8-bit octets" in caplog.text and want in caplog.text
    assert not any(type(r) is m.InsertHeader and r.name == "DKIM-Signature" for r in replies)
    if client != "127.0.0.1":  # the forged field is removed all the same
        assert any(type(r) is m.ChangeHeader and r.name == "Authentication-Results" for r in replies)


def test_thousands_of_packets_to_make_readable_in_one_read(keys, caplog):
    """Each packet made readable costs no stack (a loop), and only the
    connection's first is logged at WARNING."""
    loaded = _loaded(keys, sign_authenticated=True)
    macro = _raw_packet(b"D", b"M{auth_authen}\x00j\xc3\xb6rg\x00")
    events = _message("192.0.2.7", HEADERS, b"x\r\n")
    wire = _packets(events[:2]) + macro * 3000 + _packets(events[2:])
    with caplog.at_level(logging.WARNING, logger="fastdkim.milter"):
        replies, t = _session(loaded, wire)
    assert not t.aborted
    assert [type(r).__name__ for r in replies] == ["Negotiate", "Continue", "InsertHeader", "Continue"]
    assert caplog.text.count("read as '?'") == 1
