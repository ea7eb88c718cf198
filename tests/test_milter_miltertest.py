"""The milter driven by OpenDKIM's ``miltertest`` (a milter client not written
here) with Lua scripts: bodies in many small chunks, CRLF split across
chunks, clients that disconnect mid-body, an abort and a new message on the
same connection, verification results, forged Authentication-Results, and
the signals (reload, stop)."""
from __future__ import annotations

import signal
import socket

import pytest

import fastdkim
from fastdkim.authres import parse_authentication_results
from fastdkim.mailgen import message as make_message
from fastdkim.message import read_message

from milter_harness import (
    AUTHSERV_ID,
    DOMAIN,
    MilterProcess,
    added_fields,
    assemble,
    lua_headers,
    lua_string,
    make_keys,
    need_miltertest,
    run_miltertest,
    verify_both,
)

pytest.importorskip("kilter.protocol", reason="the milter needs kilter.protocol (the milter extra; Python 3.10+)")

HEADERS = [("From", b" Alice <alice@example.com>"), ("To", b" Bob <bob@example.org>,\n\tCarol <c@example.org>"),
           ("Subject", b"  Quarterly   report "), ("Date", b" Tue, 1 Jan 2030 00:00:00 +0000"),
           ("Message-ID", b" <1234@example.com>")]


def _body(size: int = 3000) -> bytes:
    pm = read_message(make_message(size, seed=11), bare_lf=False)
    return b"".join(pm.body) + b"trailing  \t\r\n\r\n\r\n"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    need_miltertest()
    d = tmp_path_factory.mktemp("milter")
    keys = make_keys(d)
    milter = MilterProcess(d, ["--policy", keys.policy, "--authserv-id", AUTHSERV_ID, "--keys", keys.zone,
                               "--internal-hosts", "127.0.0.0/8", "--ignore-hosts", "198.51.100.0/24"])
    yield d, keys, milter
    assert milter.stop() == 0, milter.log()


def _sign_script(socket_spec: str, headers, body: bytes, sizes, client: str = "127.0.0.1", macro: str = "") -> str:
    return """
conn = mt.connect(%s)
if conn == nil then error("cannot connect") end
check(mt.conninfo(conn, "client.example", %s), "conninfo")
%s
check(mt.mailfrom(conn, "alice@example.com"), "mailfrom")
send_headers(conn, %s)
check(mt.eoh(conn), "eoh")
send_chunks(conn, %s, {%s})
check(mt.eom(conn), "eom")
if mt.getreply(conn) ~= SMFIR_CONTINUE then error("reply " .. mt.getreply(conn)) end
show(conn, "DKIM-Signature")
show(conn, "Authentication-Results")
mt.disconnect(conn)
""" % (lua_string(socket_spec.encode()), lua_string(client.encode()), macro, lua_headers(headers),
       lua_string(body), ", ".join(map(str, sizes)))


def test_body_in_many_small_chunks_is_signed(setup):
    d, keys, milter = setup
    body = _body()
    out = run_miltertest(_sign_script(milter.socket, HEADERS, body, [1, 2, 3, 5, 7, 11, 64]), d, "chunks")
    added = added_fields(out)
    assert [n for n, _ in added] == ["DKIM-Signature", "DKIM-Signature"]
    signed = assemble(added, HEADERS, body)
    statuses, dkimpy = verify_both(signed, keys)
    assert statuses == ["pass", "pass"]
    assert dkimpy in (True, None)
    assert sorted(r.selector for r in fastdkim.verify(signed, keys=keys.records)) == ["ed1", "rsa1"]


def test_crlf_split_across_chunks(setup):
    d, keys, milter = setup
    body = b"line  one\t\r\n" * 40 + b"\r\n \r\n\r\n"
    # chunks of 11 bytes end between the CR and the LF of each line
    out = run_miltertest(_sign_script(milter.socket, HEADERS, body, [11]), d, "crlf")
    signed = assemble(added_fields(out), HEADERS, body)
    statuses, dkimpy = verify_both(signed, keys)
    assert statuses == ["pass", "pass"] and dkimpy in (True, None)


def test_authenticated_session_from_outside_is_signed(setup):
    d, keys, milter = setup
    macro = 'check(mt.macro(conn, SMFIC_MAIL, "{auth_authen}", "alice"), "macro")'
    body = b"Hi.\r\n"
    out = run_miltertest(_sign_script(milter.socket, HEADERS, body, [3], client="192.0.2.7", macro=macro), d,
                         "auth")
    assert [n for n, _ in added_fields(out)] == ["DKIM-Signature", "DKIM-Signature"]
    assert "authenticated as alice" in milter.log()
    # without the macro, the same client's mail is verified instead
    out = run_miltertest(_sign_script(milter.socket, HEADERS, body, [3], client="192.0.2.7"), d, "unauth")
    assert [n for n, _ in added_fields(out)] == ["Authentication-Results"]


def _signed(keys, selector: str = "rsa1", body: bytes = b"Hello there.\r\n"):
    signer = fastdkim.Signer(DOMAIN, selector, keys.rsa)
    head = b"".join(n.encode() + b":" + v.replace(b"\n", b"\r\n") + b"\r\n" for n, v in HEADERS)
    field = signer.sign(head + b"\r\n" + body)
    name, _, value = field[:-2].partition(b":")
    return [(name.decode(), value.replace(b"\r\n", b"\n"))] + HEADERS, body


def test_verification_results_and_forged_fields(setup):
    d, keys, milter = setup
    good_h, good_b = _signed(keys)
    bad_b = good_b.replace(b"Hello", b"Jello")
    unknown_h, unknown_b = _signed(keys, selector="gone")
    forged = [("Authentication-Results", b" %s; dkim=pass header.d=example.com" % AUTHSERV_ID.encode()),
              ("Authentication-Results", b" other.example.net; dkim=fail")]
    cases = [(good_h, good_b), (good_h, bad_b), (unknown_h, unknown_b), (forged + good_h, good_b)]
    parts = ["""
conn = mt.connect(%s)
check(mt.conninfo(conn, "outside.example", "192.0.2.1"), "conninfo")
""" % lua_string(milter.socket.encode())]
    for i, (h, b) in enumerate(cases):
        parts.append("""
check(mt.mailfrom(conn, "x@example.com"), "mailfrom")
send_headers(conn, %s)
send_chunks(conn, %s, {4, 1, 9})
check(mt.eom(conn), "eom")
mt.echo("CASE %d")
show(conn, "Authentication-Results")
if mt.eom_check(conn, MT_HDRDELETE, "Authentication-Results") or
   mt.eom_check(conn, MT_HDRCHANGE, "Authentication-Results") then mt.echo("REMOVED") end
""" % (lua_headers(h), lua_string(b), i))
    parts.append("mt.disconnect(conn)\n")
    out = run_miltertest("".join(parts), d, "verify")
    blocks = out.split("CASE ")[1:]
    statuses = []
    for block in blocks:
        (field,) = added_fields(block)
        ar = parse_authentication_results(b"Authentication-Results:" + field[1].replace(b"\n", b"\r\n"))
        assert ar.authserv_id == AUTHSERV_ID
        statuses.append([(r.method, r.result) for r in ar.results])
    assert statuses == [[("dkim", "pass")], [("dkim", "fail")], [("dkim", "permerror")], [("dkim", "pass")]]
    assert ["REMOVED" in b for b in blocks] == [False, False, False, True]
    assert "removed 1 Authentication-Results field(s) claiming %s" % AUTHSERV_ID in milter.log()


def test_client_disconnecting_mid_body(setup):
    d, keys, milter = setup
    before = milter.log().count("ended in the middle of a message")
    body = _body(2000)
    script = """
conn = mt.connect(%s)
check(mt.conninfo(conn, "localhost", "127.0.0.1"), "conninfo")
check(mt.mailfrom(conn, "alice@example.com"), "mailfrom")
send_headers(conn, %s)
check(mt.eoh(conn), "eoh")
send_chunks(conn, %s, {7})
mt.disconnect(conn, false)
""" % (lua_string(milter.socket.encode()), lua_headers(HEADERS), lua_string(body[:1000]))
    run_miltertest(script, d, "disconnect")
    milter.wait_log("ended in the middle of a message", before + 1)
    assert milter.proc.poll() is None
    out = run_miltertest(_sign_script(milter.socket, HEADERS, body, [100]), d, "after")
    statuses, _ = verify_both(assemble(added_fields(out), HEADERS, body), keys)
    assert statuses == ["pass", "pass"]


def test_abort_then_new_message_on_the_same_connection(setup):
    d, keys, milter = setup
    first = [("From", b" Mallory <m@example.com>"), ("Subject", b" first")]
    body = _body(1500)
    script = """
conn = mt.connect(%s)
check(mt.conninfo(conn, "localhost", "127.0.0.1"), "conninfo")
check(mt.mailfrom(conn, "m@example.com"), "mailfrom")
send_headers(conn, %s)
check(mt.eoh(conn), "eoh")
send_chunks(conn, %s, {5})
check(mt.abort(conn), "abort")
check(mt.mailfrom(conn, "alice@example.com"), "mailfrom 2")
send_headers(conn, %s)
check(mt.eoh(conn), "eoh 2")
send_chunks(conn, %s, {13, 2})
check(mt.eom(conn), "eom")
show(conn, "DKIM-Signature")
mt.disconnect(conn)
""" % (lua_string(milter.socket.encode()), lua_headers(first), lua_string(b"this body is abandoned\r\n"),
       lua_headers(HEADERS), lua_string(body))
    out = run_miltertest(script, d, "abort")
    statuses, dkimpy = verify_both(assemble(added_fields(out), HEADERS, body), keys)
    assert statuses == ["pass", "pass"] and dkimpy in (True, None)


def test_ignored_hosts_are_accepted_untouched(setup):
    d, keys, milter = setup
    script = """
conn = mt.connect(%s)
check(mt.conninfo(conn, "peer.example", "198.51.100.9"), "conninfo")
if mt.test_option(conn, SMFIP_NR_CONN) then
  -- no reply at the connection: each message is accepted at the end of its header block
  check(mt.mailfrom(conn, "x@example.com"), "mailfrom")
  send_headers(conn, %s)
  check(mt.eoh(conn), "eoh")
end
if mt.getreply(conn) ~= SMFIR_ACCEPT then error("reply " .. mt.getreply(conn)) end
mt.disconnect(conn)
""" % (lua_string(milter.socket.encode()), lua_headers(HEADERS))
    run_miltertest(script, d, "ignored")


def test_mail_without_a_key_passes_unsigned(setup):
    d, keys, milter = setup
    headers = [("From", b" someone@elsewhere.example"), ("Subject", b" hi")]
    script = """
conn = mt.connect(%s)
check(mt.conninfo(conn, "localhost", "127.0.0.1"), "conninfo")
check(mt.mailfrom(conn, "someone@elsewhere.example"), "mailfrom")
send_headers(conn, %s)
check(mt.eoh(conn), "eoh")
if mt.getreply(conn) ~= SMFIR_ACCEPT then error("reply " .. mt.getreply(conn)) end
mt.disconnect(conn)
""" % (lua_string(milter.socket.encode()), lua_headers(headers))
    run_miltertest(script, d, "nokey")
    assert "not signed (from localhost [127.0.0.1]): no signing key for elsewhere.example" in milter.log()


def _in_thread(script: str, workdir, name: str, started, timeout: float = 60.0):
    """Run ``script`` in a thread; return it and its result holder once the
    file ``started`` exists (the script got that far)."""
    import threading

    result = {}
    t = threading.Thread(target=lambda: result.setdefault("out", run_miltertest(script, workdir, name)))
    t.start()
    for _ in range(int(timeout / 0.05)):
        if started.exists() or not t.is_alive():
            break
        t.join(0.05)
    assert started.exists(), "the script did not get to %s" % started.name
    return t, result


def test_reload_on_sighup_keeps_connections(tmp_path):
    need_miltertest()
    keys = make_keys(tmp_path)
    policy = tmp_path / "live.toml"
    policy.write_text(keys.policy_rsa.read_text())
    milter = MilterProcess(tmp_path, ["--policy", policy])
    try:
        first_done, go = tmp_path / "first", tmp_path / "go"
        script = """
conn = mt.connect(%(sock)s)
check(mt.conninfo(conn, "localhost", "127.0.0.1"), "conninfo")
check(mt.mailfrom(conn, "alice@example.com"), "mailfrom")
send_headers(conn, %(h)s)
send_chunks(conn, "one\\r\\n", {2})
check(mt.eom(conn), "eom")
show(conn, "DKIM-Signature")
touch(%(first)s)
wait_for(%(go)s)
check(mt.mailfrom(conn, "alice@example.com"), "mailfrom 2")
send_headers(conn, %(h)s)
send_chunks(conn, "two\\r\\n", {2})
check(mt.eom(conn), "eom 2")
mt.echo("SECOND")
show(conn, "DKIM-Signature")
mt.disconnect(conn)
""" % dict(sock=lua_string(milter.socket.encode()), h=lua_headers(HEADERS),
           first=lua_string(str(first_done).encode()), go=lua_string(str(go).encode()))
        t, result = _in_thread(script, tmp_path, "reload", first_done)
        # key rotation: the policy now signs with both keys; reload while the connection stays open
        policy.write_text(keys.policy.read_text())
        milter.signal(signal.SIGHUP)
        milter.wait_log("reloaded")
        go.touch()
        t.join(60)
        assert not t.is_alive()
        first, second = result["out"].split("SECOND")
        assert [len(added_fields(first)), len(added_fields(second))] == [1, 2]
        statuses, _ = verify_both(assemble(added_fields(second), HEADERS, b"two\r\n"), keys)
        assert statuses == ["pass", "pass"]
        # a broken configuration is refused and the one in use kept
        policy.write_text("not toml [")
        milter.signal(signal.SIGHUP)
        milter.wait_log("reload failed, configuration unchanged")
        out = run_miltertest(_sign_script(milter.socket, HEADERS, b"x\r\n", [1]), tmp_path, "kept")
        assert len(added_fields(out)) == 2
    finally:
        assert milter.stop() == 0


def test_a_reload_asked_for_while_starting_is_done_once_serving(tmp_path):
    """SIGHUP as soon as the milter runs its own code (systemd's reload just
    after the start) does not end it (SIGHUP's default action): it reloads
    once serving; with Type=notify it tells systemd when it is ready."""
    import subprocess
    import sys
    import time

    from milter_harness import child_env, free_port

    keys = make_keys(tmp_path)
    notify = tmp_path / "notify.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(notify))
    listener.settimeout(60)
    port = free_port()
    env = dict(child_env(), NOTIFY_SOCKET=str(notify))
    log = tmp_path / "early.log"
    with open(log, "wb") as out:
        # the milter's own code marks its start on stderr before it loads anything
        proc = subprocess.Popen([sys.executable, "-X", "importtime", "-m", "fastdkim.milter", "--socket",
                                 "inet:%d@127.0.0.1" % port, "--log-level", "debug", "--policy", str(keys.policy)],
                                stdout=out, stderr=subprocess.STDOUT, env=env, cwd=str(tmp_path))
    try:
        deadline = time.monotonic() + 60
        while b"fastdkim.milter._hup" not in log.read_bytes():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text(errors="replace")
            time.sleep(0.005)
        proc.send_signal(signal.SIGHUP)  # (before it listens: loading the policy and keys takes longer)
        assert listener.recv(100) == b"READY=1"
        deadline = time.monotonic() + 60
        while b"reloaded" not in log.read_bytes():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text(errors="replace")
            time.sleep(0.02)
        text = log.read_text(errors="replace")
        assert text.index("listening on") < text.index("reloaded")
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        listener.close()


def test_a_key_file_warning_is_one_line_of_the_milters_log(tmp_path):
    """A key file others may read is warned about in the milter's own log
    format (not Python's warning text with its source line)."""
    import os

    keys = make_keys(tmp_path)
    os.chmod(tmp_path / "rsa1.pem", 0o644)
    milter = MilterProcess(tmp_path, ["--policy", keys.policy])
    try:
        milter.wait_log("listening on")
        lines = [line for line in milter.log().splitlines() if "private key not secure" in line]
        assert len(lines) == 1 and "fastdkim-milter[" in lines[0] and "WARNING" in lines[0], milter.log()
        assert "warnings.warn" not in milter.log() and "InsecureKeyWarning" not in milter.log()
    finally:
        assert milter.stop() == 0


def test_sigterm_lets_the_message_under_way_finish(tmp_path):
    need_miltertest()
    keys = make_keys(tmp_path)
    milter = MilterProcess(tmp_path, ["--policy", keys.policy])
    mid, go = tmp_path / "mid", tmp_path / "go"
    body = _body(1000)
    script = """
conn = mt.connect(%(sock)s)
check(mt.conninfo(conn, "localhost", "127.0.0.1"), "conninfo")
check(mt.mailfrom(conn, "alice@example.com"), "mailfrom")
send_headers(conn, %(h)s)
check(mt.eoh(conn), "eoh")
send_chunks(conn, %(b1)s, {9})
touch(%(mid)s)
wait_for(%(go)s)
send_chunks(conn, %(b2)s, {9})
check(mt.eom(conn), "eom")
show(conn, "DKIM-Signature")
mt.disconnect(conn)
""" % dict(sock=lua_string(milter.socket.encode()), h=lua_headers(HEADERS), b1=lua_string(body[:500]),
           b2=lua_string(body[500:]), mid=lua_string(str(mid).encode()), go=lua_string(str(go).encode()))
    t, result = _in_thread(script, tmp_path, "term", mid)
    milter.signal(signal.SIGTERM)
    milter.wait_log("stopping: 1 connection(s) open")
    with pytest.raises(OSError):  # no longer listening
        socket.create_connection(("127.0.0.1", milter.port), timeout=5).close()
    go.touch()
    t.join(60)
    assert milter.proc.wait(30) == 0
    statuses, _ = verify_both(assemble(added_fields(result["out"]), HEADERS, body), keys)
    assert statuses == ["pass", "pass"]
    assert milter.stop() == 0


def test_unix_socket_with_mode(tmp_path):
    import stat

    need_miltertest()
    keys = make_keys(tmp_path)
    path = tmp_path / "milter.sock"
    milter = MilterProcess(tmp_path, ["--policy", keys.policy, "--socket-mode", "0660"], unix=path)
    try:
        assert stat.S_IMODE(path.stat().st_mode) == 0o660
        out = run_miltertest(_sign_script(milter.socket, HEADERS, b"over a unix socket\r\n", [4]), tmp_path, "unix")
        statuses, _ = verify_both(assemble(added_fields(out), HEADERS, b"over a unix socket\r\n"), keys)
        assert statuses == ["pass", "pass"]
    finally:
        assert milter.stop() == 0
    assert not path.exists()  # removed at the stop
