"""OpenDKIM's KeyTable and SigningTable read by
:meth:`fastdkim.SigningPolicy.from_opendkim` (and ``fastdkim sign
--opendkim-conf``), checked against OpenDKIM itself: the same tables and
opendkim.conf are loaded by the real ``opendkim`` milter (driven by
``miltertest``) and by fastdkim, and every From address comes out signed
with the same ``d=``, ``s=`` and ``i=`` (or not signed by either).
"""
from __future__ import annotations

import base64
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Dict, List, Tuple

import pytest
from cryptography.hazmat.primitives import serialization as ser

from fastdkim import SigningPolicy
from fastdkim.errors import NoSigningKey, PolicyError
from fastdkim.opendkim_tables import OpenDKIMTables, read_dataset
from helpers_cli import run
from interop.dnsserver import free_port

ADDRESSES = ["a@example.com", "A@EXAMPLE.COM", "alice@example.org", "bob@example.org", "x@sub.example.org",
             "y@deep.sub.example.org", "c@example.net", "d@example.info", "e@other.example", "ops@example.com"]


def _tool(name: str) -> str:
    path = shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")
    if path is None:
        pytest.skip("%s not found: install Debian packages opendkim, opendkim-tools and miltertest" % name)
    return path


def _genkey(directory: Path, domain: str, selector: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run([_tool("opendkim-genkey"), "-D", str(directory), "-d", domain, "-s", selector], check=True)
    return directory / ("%s.private" % selector)


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("opendkim-keys")
    _genkey(d, "example.com", "s1")
    _genkey(d, "example.org", "s2")
    _genkey(d / "example.net", "example.net", "default")
    _genkey(d / "example.info", "example.info", "default")
    return d


def _setup(base: Path, keys: Path, regex: bool, multiple: bool) -> Path:
    """Tables and an opendkim.conf under ``base``: the conf's path."""
    base.mkdir(parents=True, exist_ok=True)
    (base / "KeyTable").write_text(
        "# name  domain:selector:key\n"
        "k1   example.com:s1:%(k)s/s1.private\n"
        "k2   example.org:s2:%(k)s/s2.private   # a comment\n"
        "kp   %%:default:%(k)s/%%/default.private\n"
        "example.info  example.info:default:%(k)s/example.info/default.private\n" % {"k": keys})
    if regex:
        table = ("*@example.com      k1\n"
                 "ops@example.com    k2\n"
                 "alice@example.org  k2\n"
                 "*@*.example.org    k2:bounces@example.org\n"
                 "*@example.net      kp\n"
                 "*@example.info     %:postmaster@elsewhere.example\n")
    else:
        table = ("example.com        k1\n"
                 "ops@example.com    k2\n"
                 "alice@example.org  k2\n"
                 ".example.org       k2:bounces@%\n"
                 "example.net        kp\n"
                 "example.info       %:postmaster@%\n")
    (base / "SigningTable").write_text(table)
    conf = base / "opendkim.conf"
    conf.write_text(
        "Mode s\nSyslog no\nBackground no\nRequireSafeKeys no\n"
        "Socket inet:%(port)d@127.0.0.1\n"
        "KeyTable file:%(b)s/KeyTable\n"
        "SigningTable %(st)s%(b)s/SigningTable\n"
        "Canonicalization relaxed/relaxed\n"
        "InternalHosts 127.0.0.1, 10.0.0.0/8\n"
        "MultipleSignatures %(multi)s\n" % {"port": free_port(), "b": base, "st": "refile:" if regex else "file:",
                                             "multi": "yes" if multiple else "no"})
    return conf


def _tags(field: str) -> Tuple[str, ...]:
    """d=, s= and i= of a DKIM-Signature value ("" for no i=)."""
    text = re.sub(r"\s+", "", field)
    tags = dict(t.split("=", 1) for t in text.split(";") if "=" in t)
    return tags["d"], tags["s"], tags.get("i", "")


_LUA = r"""
mt.set_timeout(30)
function check(r, what) if r ~= nil then error(what .. ": " .. tostring(r)) end end
for _, from in ipairs({%s}) do
  local conn = mt.connect("%s")
  if conn == nil then error("cannot connect") end
  check(mt.conninfo(conn, "localhost", "127.0.0.1"), "conninfo")
  check(mt.mailfrom(conn, from), "mailfrom")
  check(mt.header(conn, "From", "Someone <" .. from .. ">"), "from")
  check(mt.header(conn, "Subject", "tables"), "subject")
  check(mt.eoh(conn), "eoh")
  if mt.getreply(conn) == SMFIR_CONTINUE then
    check(mt.bodystring(conn, "hello\r\n"), "body")
    check(mt.eom(conn), "eom")
    local n = 0
    while true do
      local v = mt.getheader(conn, "DKIM-Signature", n)
      if v == nil then break end
      mt.echo("SIG " .. from .. " " .. string.gsub(v, "[\r\n]", ""))
      n = n + 1
    end
  end
  mt.echo("END " .. from)
  mt.disconnect(conn)
end
"""


def _opendkim_signs(conf: Path) -> Dict[str, List[Tuple[str, ...]]]:
    """What the real OpenDKIM milter signs each of :data:`ADDRESSES` with."""
    opendkim, miltertest = _tool("opendkim"), _tool("miltertest")
    port = int(re.search(r"inet:(\d+)@", conf.read_text()).group(1))
    log = open(conf.parent / "opendkim.log", "wb")
    proc = subprocess.Popen([opendkim, "-f", "-x", str(conf)], stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("opendkim did not start: %s" % (conf.parent / "opendkim.log").read_text())
                time.sleep(0.05)
        script = conf.parent / "sign.lua"
        script.write_text(_LUA % (", ".join('"%s"' % a for a in ADDRESSES), "inet:%d@127.0.0.1" % port))
        out = subprocess.run([miltertest, "-s", str(script)], capture_output=True, timeout=120, text=True)
        assert out.returncode == 0, out.stdout + out.stderr
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
    found: Dict[str, List[Tuple[str, ...]]] = {a: [] for a in ADDRESSES}
    ends = set()
    for line in out.stdout.splitlines():
        if line.startswith("SIG "):
            _, addr, value = line.split(" ", 2)
            found[addr].append(_tags(value))
        elif line.startswith("END "):
            ends.add(line[4:])
    assert ends == set(ADDRESSES), out.stdout
    return found


def _fastdkim_signs(policy: SigningPolicy) -> Dict[str, List[Tuple[str, ...]]]:
    found: Dict[str, List[Tuple[str, ...]]] = {}
    for addr in ADDRESSES:
        msg = ("From: Someone <%s>\r\nSubject: tables\r\n\r\nhello\r\n" % addr).encode()
        try:
            fields = policy.sign(msg).decode()
        except NoSigningKey:
            found[addr] = []
            continue
        found[addr] = [_tags(f.split(":", 1)[1]) for f in re.split(r"\r\n(?=\S)", fields.strip()) if f]
    return found


@pytest.mark.parametrize("regex", [True, False], ids=["refile", "file"])
@pytest.mark.parametrize("multiple", [False, True], ids=["first-match", "multiple"])
def test_same_keys_as_opendkim(tmp_path, keys, regex, multiple):
    conf = _setup(tmp_path, keys, regex, multiple)
    theirs = _opendkim_signs(conf)
    policy = SigningPolicy.from_opendkim_conf(str(conf))
    mine = _fastdkim_signs(policy)
    for addr in ADDRESSES:  # OpenDKIM adds its signatures in reverse order
        assert sorted(mine[addr]) == sorted(theirs[addr]), addr
    assert theirs["a@example.com"] == [("example.com", "s1", "")]
    assert theirs["c@example.net"] == [("example.net", "default", "")]
    assert theirs["e@other.example"] == []
    assert theirs["d@example.info"] == [("example.info", "default", "" if regex else "postmaster@example.info")]
    if multiple:
        assert len(theirs["ops@example.com"]) == 2
    assert policy.is_internal("10.1.2.3") and policy.is_internal("127.0.0.1")  # type: ignore[attr-defined]
    assert not policy.is_internal("192.0.2.1")  # type: ignore[attr-defined]


def test_sign_command_with_opendkim_conf(tmp_path, keys):
    conf = _setup(tmp_path, keys, True, False)
    msg = tmp_path / "m.eml"
    msg.write_bytes(b"From: x@sub.example.org\r\nSubject: cli\r\n\r\nhello\r\n")
    out = run("sign", "--opendkim-conf", conf, msg)
    assert out.returncode == 0, out.stderr
    assert _tags(out.stdout.decode().split("\r\n\r\n")[0].split(":", 1)[1].split("\r\nFrom:")[0]) == \
        ("example.org", "s2", "bounces@example.org")
    both = run("sign", "--opendkim-conf", conf, "--policy", conf, msg)
    assert both.returncode != 0 and b"--opendkim-conf" in both.stderr


# -- the parts, without OpenDKIM -----------------------------------------------------------------

@pytest.mark.parametrize("spec, kind", [
    ("dsn:mysql://u:p@3306+db/odkim/table=keys?keycol=id?datacol=v", "SQL"),
    ("ldap://ldap.example.com/dc=example,dc=com?key", "LDAP"),
    ("ldaps://ldap.example.com/o=x", "LDAP"),
    ("ldapi:///o=x", "LDAP"),
    ("db:/etc/opendkim/keys.db", "Berkeley DB"),
    ("/etc/opendkim/keys.db", "Berkeley DB"),
    ("lua:/etc/opendkim/keys.lua", "Lua"),
    ("memcache:localhost/keys", "memcached"),
])
def test_unsupported_datasets_are_named(tmp_path, spec, kind):
    table = tmp_path / "SigningTable"
    table.write_text("example.com k\n")
    with pytest.raises(PolicyError, match=kind) as info:
        SigningPolicy.from_opendkim(spec, str(table))
    assert "KeyTable" in str(info.value)
    with pytest.raises(PolicyError, match=kind):
        read_dataset(spec, "SigningTable")


def test_inline_keys_and_lists(tmp_path, rsa_key):
    der = rsa_key.private_bytes(ser.Encoding.DER, ser.PrivateFormat.TraditionalOpenSSL, ser.NoEncryption())
    kt = tmp_path / "kt"
    kt.write_text("inline example.com:sel:%s\n" % base64.b64encode(der).decode())
    policy = SigningPolicy.from_opendkim(str(kt), "csl:example.com=inline,*=inline")
    assert [(s.domain, s.selector) for s in policy.signers_for_domain("example.com")] == [("example.com", "sel")]
    assert policy.signers_for_domain("else.example")  # "*"


def test_table_errors(tmp_path):
    kt = tmp_path / "kt"
    kt.write_text("k example.com:sel\n")
    with pytest.raises(PolicyError, match="domain:selector:key"):
        OpenDKIMTables(str(kt), "csl:example.com=k")
    kt.write_text("k example.com:sel:./none.pem\n")
    with pytest.raises(PolicyError, match="not in the KeyTable"):
        OpenDKIMTables(str(kt), "csl:example.com=other")
    with pytest.raises(PolicyError, match="cannot read SigningTable"):
        OpenDKIMTables(str(kt), "refile:%s/missing" % tmp_path)
    with pytest.raises(PolicyError, match="not an address"):
        OpenDKIMTables(str(kt), "csl:example.com=k:%")
    conf = tmp_path / "opendkim.conf"
    conf.write_text("Mode sv\nKeyFile /etc/dkim.key\n")
    with pytest.raises(PolicyError, match="KeyTable or SigningTable"):
        SigningPolicy.from_opendkim_conf(str(conf))


def test_plain_lookup_order(tmp_path):
    kt = tmp_path / "kt"
    kt.write_text("k example.com:sel:./k.pem\n")
    tables = OpenDKIMTables(str(kt), "csl:" + ",".join("%s=k:%s@o.example" % (x, x.replace("@", "+at+")) for x in (
        "*", "u@*", ".com", ".example.com", "u@.com", "u@.example.com", "sub.example.com", "u@sub.example.com")))
    order = [s.split("@")[0] for _, s in tables.requests("u", "sub.example.com", multiple=True)]
    assert order == ["u+at+sub.example.com", "sub.example.com", "u+at+.example.com", "u+at+.com", ".example.com",
                     ".com", "u+at+*", "*"]


def test_policy_travels_to_workers(tmp_path, keys):
    import pickle

    conf = _setup(tmp_path, keys, True, False)
    policy = SigningPolicy.from_opendkim_conf(str(conf))
    msg = b"From: c@example.net\r\nSubject: w\r\n\r\nhello\r\n"
    copy = pickle.loads(pickle.dumps(policy))
    assert _tags(copy.sign(msg).decode().split(":", 1)[1]) == ("example.net", "default", "")
    (tmp_path / "in").mkdir()
    for i in range(4):
        (tmp_path / "in" / ("%d.eml" % i)).write_bytes(msg)
    out = run("sign", "--opendkim-conf", conf, "--jobs", "2", "--quiet", "--out", tmp_path / "out", tmp_path / "in")
    assert out.returncode == 0, out.stderr
    assert all(p.read_bytes().startswith(b"DKIM-Signature:") for p in (tmp_path / "out").iterdir())


def test_relative_table_file(tmp_path, monkeypatch):
    (tmp_path / "kt").write_text("k example.com:sel:./k.pem\n")
    (tmp_path / "st").write_text("*@example.com k\n")
    monkeypatch.chdir(tmp_path)
    tables = OpenDKIMTables("kt", "refile:st")
    assert tables.requests("u", "example.com") == [("k", None)]
    assert OpenDKIMTables("kt", "st", base_dir=None).requests("u", "example.com") == []  # not refile: no "*"


@pytest.mark.parametrize("spec, secret", [
    ("dsn:mysql://user:S3cret@localhost/db/table=keys", "S3cret"),
    ("dsn:pgsql://user:p@ss/w0rd@3306+db.example/odkim/table=keys?keycol=id", "ss/w0rd"),
    ("ldap://cn=admin:S3cret@ldap.example.com/dc=example", "S3cret"),
    ("mysql://user:S3cret@localhost/db/table=keys", "S3cret"),  # (no dsn: prefix: read as a list, its item echoed)
])
def test_no_password_is_shown(tmp_path, spec, secret):
    """A data set naming a database with its password: the messages show
    ``user:***@``, never the password (nor the sign command's error)."""
    table = tmp_path / "SigningTable"
    table.write_text("example.com k\n")
    with pytest.raises(PolicyError) as info:
        SigningPolicy.from_opendkim(spec, str(table))
    text = str(info.value)
    assert secret not in text and ":***@" in text, text
    conf = tmp_path / "opendkim.conf"
    conf.write_text("KeyTable %s\nSigningTable %s\n" % (spec, table))
    msg = tmp_path / "m.eml"
    msg.write_bytes(b"From: a@example.com\n\nbody\n")
    r = run("sign", "--opendkim-conf", conf, msg)
    assert r.returncode == 2 and secret.encode() not in r.stderr and b":***@" in r.stderr, r.stderr


def test_redact_credentials():
    from fastdkim.opendkim_tables import redact_credentials

    assert redact_credentials("KeyTable dsn:mysql://user:pw@localhost/db/table=keys is an SQL database") == \
        "KeyTable dsn:mysql://user:***@localhost/db/table=keys is an SQL database"
    assert redact_credentials("'dsn:mysql://u:a@b/c@host/db' and ldap://h:u@x") == "'dsn:mysql://u:***@host/db' and ldap://h:***@x"
    for same in ("dsn:mysql://user@localhost/db", "/etc/opendkim/KeyTable", "refile:/etc/SigningTable"):
        assert redact_credentials(same) == same
