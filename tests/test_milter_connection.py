"""What each milter event comes to (fastdkim.milter.connection), in process,
with the protocol's own message objects: negotiation, signing and
verification decisions, internal errors answered with ``on_error``, the
read buffer."""
from __future__ import annotations

import asyncio
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


def test_end_of_message_waits_for_slow_keys(keys):
    """Keys still being looked up at the end of the message: the answer
    waits for them (the body hashed meanwhile)."""
    from fastdkim.milter.runtime import Loaded

    class Slow:
        async def lookup(self, name):
            await asyncio.sleep(0.05)
            return [keys.records[name].encode()]

    config = load_config(None, {"authserv_id": AUTHSERV_ID})
    loaded = Loaded(config, None, Slow(), False)
    message = b"From: a@example.com\r\nSubject: hi\r\n\r\nbody line\r\n"
    field = fastdkim.Signer("example.com", "rsa1", keys.rsa).sign(message)
    name, _, value = field[:-2].partition(b":")
    headers = [(name.decode(), value.replace(b"\r\n", b"\n"))] + HEADERS
    conn = Connection(lambda: loaded)
    replies = _run(conn, _message("192.0.2.1", headers, b"body line\r\n"))
    insert, _ = replies[-1]
    assert b"dkim=pass" in insert.value
    assert not conn.in_transaction


def test_session_answers_in_order_across_a_wait(keys):
    """Through the asyncio protocol: an end of message that waits for its
    keys, with the next message's events already buffered behind it."""
    from fastdkim.milter.runtime import Loaded
    from fastdkim.milter.session import MilterSession

    class Slow:
        async def lookup(self, name):
            await asyncio.sleep(0.05)
            return [keys.records[name].encode()]

    config = load_config(None, {"authserv_id": AUTHSERV_ID})
    loaded = Loaded(config, None, Slow(), False)
    message = b"From: a@example.com\r\nSubject: hi\r\n\r\nbody line\r\n"
    field = fastdkim.Signer("example.com", "rsa1", keys.rsa).sign(message)
    name, _, value = field[:-2].partition(b":")
    headers = [(name.decode(), value.replace(b"\r\n", b"\n"))] + HEADERS
    events = _message("192.0.2.1", headers, b"body line\r\n")
    events += events[2:]  # a second message on the same connection
    wire = b""
    for e in events:
        buf = SimpleBuffer(1 << 16)
        e.pack(buf)
        wire += buf[:].tobytes()

    class Transport:
        def __init__(self):
            self.out = b""
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
            return False

        def close(self):
            pass

    class Server:
        stopping = False
        sessions = set()

        def current(self):
            return loaded

    async def go():
        session = MilterSession(Server())
        t = Transport()
        session.connection_made(t)
        session.data_received(wire)  # everything at once
        while session.pending is not None or t.out.count(b"Authentication-Results") < 2:
            await asyncio.sleep(0.01)
        return t

    t = asyncio.run(go())
    assert t.paused == 2
    got = GrowingBuffer(1 << 20)
    got[:] = t.out
    kinds = [type(msg).__name__ for msg, _ in _unpack_all(got)]
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
