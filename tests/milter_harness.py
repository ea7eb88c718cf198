"""What the milter tests share: keys and a signing policy, the milter as a
process of its own on a free port, OpenDKIM's ``miltertest`` driving it with
Lua scripts, and checks of what comes out (fastdkim and dkimpy)."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

import fastdkim
from fastdkim.keys import public_key_record, write_private_key, zone_file_line

from conftest import child_env

DOMAIN = "example.com"
AUTHSERV_ID = "mx.example.net"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Keys:
    """Keys for ``example.com`` (RSA-2048 ``rsa1``, Ed25519 ``ed1``), a
    policy signing with both (``policy``) or RSA alone (``policy_rsa``), and
    the zone file of their public keys."""

    dir: Path
    rsa: rsa.RSAPrivateKey
    ed: ed25519.Ed25519PrivateKey
    policy: Path
    policy_rsa: Path
    zone: Path
    records: Dict[str, str]


def make_keys(d: Path) -> Keys:
    d.mkdir(parents=True, exist_ok=True)
    rk = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ek = ed25519.Ed25519PrivateKey.generate()
    write_private_key(str(d / "rsa1.pem"), rk, force=True)
    write_private_key(str(d / "ed1.pem"), ek, force=True)
    records = {}
    lines = []
    for sel, k in (("rsa1", rk), ("ed1", ek)):
        value = public_key_record(k)
        records["%s._domainkey.%s" % (sel, DOMAIN)] = value
        lines.append(zone_file_line(sel, DOMAIN, value))
    (d / "zone.txt").write_text("\n".join(lines) + "\n")
    (d / "dkim.toml").write_text('[domains."%s"]\nkeys = [{ selector = "rsa1", key = "rsa1.pem" },\n'
                                 '        { selector = "ed1", key = "ed1.pem" }]\n' % DOMAIN)
    (d / "dkim-rsa.toml").write_text('[domains."%s"]\nkeys = [{ selector = "rsa1", key = "rsa1.pem" }]\n' % DOMAIN)
    return Keys(d, rk, ek, d / "dkim.toml", d / "dkim-rsa.toml", d / "zone.txt", records)


class MilterProcess:
    """``python -m fastdkim.milter`` with ``args``, on a free port; its log in a file."""

    def __init__(self, workdir: Path, args: Sequence[str], port: Optional[int] = None,
                 unix: Optional[Path] = None) -> None:
        self.port = port or free_port()
        self.unix = unix
        self.socket = "unix:%s" % unix if unix else "inet:%d@127.0.0.1" % self.port
        self.log_path = workdir / ("milter-%d.log" % self.port)
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "fastdkim.milter", "--socket", self.socket,
                                      "--log-level", "debug", *map(str, args)],
                                     stdout=self._log, stderr=subprocess.STDOUT, cwd=str(workdir),
                                     env=child_env())
        self.wait_listening()

    def wait_listening(self, timeout: float = 30.0) -> None:
        """Wait until the milter accepts connections (or fail if it exits)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.unix is not None:
                    with socket.socket(socket.AF_UNIX) as s:
                        s.connect(str(self.unix))
                else:
                    socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise AssertionError("milter exited (%s):\n%s" % (self.proc.returncode, self.log()))
                if time.monotonic() > deadline:
                    raise AssertionError("milter not listening within %g s:\n%s" % (timeout, self.log()))
                time.sleep(0.02)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_log(self, text: str, count: int = 1, timeout: float = 30.0) -> None:
        """Wait until the log holds ``text`` ``count`` times (or the process ends)."""
        deadline = time.monotonic() + timeout
        while self.log().count(text) < count:
            if self.proc.poll() is not None:
                raise AssertionError("milter exited (%s) before logging %r:\n%s" % (self.proc.returncode, text,
                                                                                   self.log()))
            if time.monotonic() > deadline:
                raise AssertionError("milter did not log %r within %g s:\n%s" % (text, timeout, self.log()))
            time.sleep(0.02)

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


def need_miltertest() -> str:
    path = shutil.which("miltertest")
    if path is None:
        pytest.skip("OpenDKIM's miltertest is not installed (Debian package miltertest; .ci/install-peers.sh)")
    return path


def lua_string(data: bytes) -> str:
    """A Lua string literal of ``data`` (any bytes)."""
    out = ['"']
    for b in data:
        c = chr(b)
        if c in '"\\' or not 32 <= b < 127:
            out.append("\\%03d" % b)
        else:
            out.append(c)
    out.append('"')
    return "".join(out)


#: Lua helpers every script starts with.
PRELUDE = r"""
function check(r, what) if r ~= nil then error(what .. ": " .. tostring(r)) end end
function leadspc(conn) return mt.test_option(conn, SMFIP_HDR_LEADSPC) end
function send_headers(conn, hs)
  for _, h in ipairs(hs) do
    local v = h[2]
    if not leadspc(conn) then v = string.sub(v, 2) end
    check(mt.header(conn, h[1], v), "header " .. h[1])
  end
end
function send_chunks(conn, s, sizes)
  local i, k = 1, 0
  while i <= #s do
    local n = sizes[k % #sizes + 1]
    check(mt.bodystring(conn, string.sub(s, i, i + n - 1)), "body")
    i, k = i + n, k + 1
  end
end
function show(conn, name)
  local n = 0
  while true do
    local v = mt.getheader(conn, name, n)
    if v == nil then return end
    if not leadspc(conn) then v = " " .. v end
    mt.echo("HDR " .. name .. ":" .. string.gsub(string.gsub(v, "\r", "\\r"), "\n", "\\n"))
    n = n + 1
  end
end
function touch(path) local f = io.open(path, "w") f:close() end
function wait_for(path)
  for i = 1, 1200 do
    local f = io.open(path, "r")
    if f then f:close() return end
    mt.sleep(0.05)
  end
  error("timed out waiting for " .. path)
end
"""


def lua_headers(headers: Sequence[Tuple[str, bytes]]) -> str:
    """A Lua table of (name, value) pairs; values start with their space."""
    return "{" + ", ".join("{%s, %s}" % (lua_string(n.encode()), lua_string(v)) for n, v in headers) + "}"


def run_miltertest(script: str, workdir: Path, name: str = "t", timeout: float = 120) -> str:
    """Run ``script`` (after :data:`PRELUDE`) with miltertest; its output.

    Fails the test when the script fails."""
    exe = need_miltertest()
    path = workdir / ("%s.lua" % name)
    # miltertest does not print a script's errors: the script runs under
    # pcall and prints them itself
    path.write_text(PRELUDE + "local ok, err = pcall(function()\n" + script + "\nend)\n"
                    "if not ok then mt.echo('FAILED: ' .. tostring(err)) error(err) end\n")
    r = subprocess.run([exe, "-s", str(path)], capture_output=True, timeout=timeout)
    out = r.stdout.decode(errors="replace")
    assert r.returncode == 0, "miltertest failed (%d):\n%s\n%s" % (r.returncode, out, r.stderr.decode(errors="replace"))
    return out


def added_fields(output: str) -> List[Tuple[str, bytes]]:
    """The header fields a script showed (``show()``), as (name, raw value after the colon)."""
    out = []
    for line in output.splitlines():
        if line.startswith("HDR "):
            name, _, value = line[4:].partition(":")
            out.append((name, value.replace("\\n", "\n").replace("\\r", "\r").encode()))
    return out


def assemble(added: Sequence[Tuple[str, bytes]], headers: Sequence[Tuple[str, bytes]], body: bytes) -> bytes:
    """The message as the MTA would pass it on: the added fields on top (lines
    joined by CRLF), the original fields, the body."""
    def field(name: str, value: bytes) -> bytes:
        return name.encode() + b":" + value.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n") + b"\r\n"

    return b"".join(field(n, v) for n, v in list(added) + list(headers)) + b"\r\n" + body


def verify_both(message: bytes, keys: Keys) -> Tuple[List[str], Optional[bool]]:
    """fastdkim's statuses for ``message`` and dkimpy's verdict on its first
    signature (``None`` when dkimpy is not installed)."""
    statuses = [r.status for r in fastdkim.verify(message, keys=keys.records)]
    try:
        import dkim
    except ImportError:
        return statuses, None

    def txt(name: bytes, timeout: float = 5) -> Optional[bytes]:
        value = keys.records.get(name.decode().rstrip("."))
        return value.encode() if value else None

    return statuses, bool(dkim.verify(message, dnsfunc=txt))




# -- a Postfix of the tests' own -------------------------------------------------------------

_MASTER_CF = """\
{port}  inet  n  -  n  -  -  smtpd
pickup    unix  n  -  n  60    1  pickup
cleanup   unix  n  -  n  -     0  cleanup
qmgr      unix  n  -  n  300   1  qmgr
rewrite   unix  -  -  n  -     -  trivial-rewrite
bounce    unix  -  -  n  -     0  bounce
defer     unix  -  -  n  -     0  bounce
trace     unix  -  -  n  -     0  bounce
verify    unix  -  -  n  -     1  verify
flush     unix  n  -  n  1000? 0  flush
proxymap  unix  -  -  n  -     -  proxymap
smtp      unix  -  -  n  -     -  smtp
relay     unix  -  -  n  -     -  smtp
showq     unix  n  -  n  -     -  showq
error     unix  -  -  n  -     -  error
retry     unix  -  -  n  -     -  error
discard   unix  -  -  n  -     -  discard
virtual   unix  -  n  n  -     -  virtual
anvil     unix  -  -  n  -     1  anvil
scache    unix  -  -  n  -     1  scache
postlog   unix-dgram n  -  n  -  1  postlogd
"""


def need_postfix() -> str:
    """The ``postfix`` command, or skip: it must be installed, and it runs as root."""
    path = shutil.which("postfix") or ("/usr/sbin/postfix" if Path("/usr/sbin/postfix").exists() else None)
    if path is None:
        pytest.skip("Postfix is not installed (Debian package postfix; .ci/install-peers.sh)")
    if os.geteuid() != 0:
        pytest.skip("starting a Postfix instance takes root (its master process runs as root)")
    try:
        import pwd

        pwd.getpwnam("postfix")
    except KeyError:
        pytest.skip("there is no postfix user (the Debian package creates it)")
    return path


class Postfix:
    """A Postfix instance on 127.0.0.1 with its own ``config_directory``,
    queue and log (in a new directory, removed by :meth:`stop`), its SMTP server on ``port``, mail for
    ``example.org`` delivered into the Maildir ``root/mail/sink/``, and
    ``milters`` (Postfix form: ``inet:127.0.0.1:PORT``) as ``smtpd_milters``
    and ``non_smtpd_milters``.  Clients on 127.0.0.0/8 may use XCLIENT (to
    act as another client address, or as an authenticated user)."""

    def __init__(self, milters: str = "", default_action: str = "tempfail",
                 port: Optional[int] = None, extra: Optional[Dict[str, str]] = None) -> None:
        import pwd
        import tempfile

        self.exe = need_postfix()
        # Postfix's own processes (user postfix) must reach the queue and the
        # Maildir: a directory of their own, not under a private temporary one
        root = self.root = Path(tempfile.mkdtemp(prefix="fastdkim-postfix-"))
        root.chmod(0o755)
        self.port = port or free_port()
        self.conf = root / "conf"
        self.maildir = root / "mail" / "sink"
        pw = pwd.getpwnam("postfix")
        for p in (self.conf, root / "queue", root / "data", root / "mail"):
            p.mkdir(parents=True, exist_ok=True)
        os.chown(root / "data", pw.pw_uid, pw.pw_gid)
        os.chown(root / "mail", pw.pw_uid, pw.pw_gid)
        settings = {
            "compatibility_level": "3.6",
            "queue_directory": str(root / "queue"),
            "data_directory": str(root / "data"),
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "myhostname": "mx.example.net",
            "mydomain": "example.net",
            "myorigin": "example.net",
            "mydestination": "",
            "mynetworks": "127.0.0.0/8",
            "relay_domains": "",
            "alias_maps": "",
            "alias_database": "",
            "local_recipient_maps": "",
            "smtpd_peername_lookup": "no",
            "smtpd_authorized_xclient_hosts": "127.0.0.0/8",
            "smtpd_relay_restrictions": "permit_mynetworks, reject_unauth_destination",
            "virtual_mailbox_domains": "example.org",
            "virtual_mailbox_base": str(root / "mail"),
            "virtual_mailbox_maps": "static:sink/",
            "virtual_uid_maps": "static:%d" % pw.pw_uid,
            "virtual_gid_maps": "static:%d" % pw.pw_gid,
            "virtual_minimum_uid": str(min(pw.pw_uid, 100)),
            "maillog_file": str(root / "maillog"),
            "maillog_file_prefixes": str(root),
            "smtpd_milters": milters,
            "non_smtpd_milters": milters,
            "milter_default_action": default_action,
            "milter_protocol": "6",
            "smtputf8_enable": "no",
            "biff": "no",
            "message_size_limit": str(50 << 20),
            "virtual_mailbox_limit": str(50 << 20),
            "default_process_limit": "100",
        }
        settings.update(extra or {})
        (self.conf / "main.cf").write_text("".join("%s = %s\n" % kv for kv in settings.items()))
        (self.conf / "master.cf").write_text(_MASTER_CF.format(port="127.0.0.1:%d" % self.port))
        self._run("check")
        self._run("start")
        try:
            self._wait_greeting()
        except BaseException:
            self.stop()
            raise

    def _wait_greeting(self) -> None:
        """Wait until the SMTP server greets (it starts at the first connection)."""
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
                    if s.recv(4).startswith(b"220"):
                        s.sendall(b"QUIT\r\n")
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("Postfix did not greet on port %d:\n%s" % (self.port, self.log()[-3000:]))
            time.sleep(0.1)

    def _run(self, command: str) -> None:
        # (Postfix reports to stderr only when it is a terminal; the log has the rest)
        r = subprocess.run([self.exe, "-c", str(self.conf), command], capture_output=True, timeout=60)
        if r.returncode != 0:
            raise AssertionError("postfix %s failed (%d): %s%s\n%s" % (command, r.returncode, r.stdout.decode(),
                                                                      r.stderr.decode(), self.log()[-3000:]))

    def log(self) -> str:
        p = self.root / "maillog"
        return p.read_text(errors="replace") if p.exists() else ""

    def delivered(self) -> List[Path]:
        new = self.maildir / "new"
        return sorted(new.iterdir()) if new.exists() else []

    def wait_delivered(self, count: int, timeout: float = 60.0) -> List[Path]:
        """The delivered messages, once there are ``count`` of them."""
        deadline = time.monotonic() + timeout
        while len(self.delivered()) < count:
            if time.monotonic() > deadline:
                raise AssertionError("%d of %d messages delivered within %g s; Postfix log:\n%s"
                                     % (len(self.delivered()), count, timeout, self.log()[-5000:]))
            time.sleep(0.05)
        return self.delivered()

    def stop(self) -> None:
        try:
            self._run("stop")
        except AssertionError:
            self._run("abort")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


__all__ = ["AUTHSERV_ID", "DOMAIN", "Keys", "MilterProcess", "added_fields", "assemble", "free_port",
           "lua_headers", "lua_string", "make_keys", "need_miltertest", "need_postfix", "Postfix", "run_miltertest", "verify_both"]
