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
for k, msg in ipairs({@MESSAGES@}) do
  local conn = mt.connect("@SOCKET@")
  if conn == nil then error("cannot connect") end
  check(mt.conninfo(conn, "localhost", "127.0.0.1"), "conninfo")
  check(mt.mailfrom(conn, msg[1]), "mailfrom")
  for _, h in ipairs(msg[2]) do check(mt.header(conn, h[1], h[2]), h[1]) end
  check(mt.eoh(conn), "eoh")
  if mt.getreply(conn) == SMFIR_CONTINUE then
    check(mt.bodystring(conn, "hello\r\n"), "body")
    check(mt.eom(conn), "eom")
    local n = 0
    while true do
      local v = mt.getheader(conn, "DKIM-Signature", n)
      if v == nil then break end
      mt.echo("SIG " .. k .. " " .. string.gsub(v, "[\r\n]", ""))
      n = n + 1
    end
  end
  mt.echo("END " .. k)
  mt.disconnect(conn)
end
"""


def _miltertest(conf: Path, lua: str) -> str:
    """The output of the ``miltertest`` script *lua* (``@SOCKET@`` in it:
    the milter's socket) run against the real OpenDKIM milter under ``conf``."""
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
        script = conf.parent / "script.lua"
        script.write_text(lua.replace("@SOCKET@", "inet:%d@127.0.0.1" % port))
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
    return out.stdout


def _opendkim_messages(conf: Path, messages: List[Tuple[str, List[Tuple[str, str]]]]) -> List[List[str]]:
    """The DKIM-Signature values the real OpenDKIM milter adds under
    ``conf`` to each message, given as (envelope sender, header fields)
    with the body ``hello``."""
    def lua(text: str) -> str:
        return '"%s"' % text.replace("\\", "\\\\").replace('"', '\\"')

    stdout = _miltertest(conf, _LUA.replace("@MESSAGES@", ", ".join(
        "{%s, {%s}}" % (lua(sender), ", ".join("{%s, %s}" % (lua(n), lua(v)) for n, v in headers))
        for sender, headers in messages)))
    found: List[List[str]] = [[] for _ in messages]
    ends = set()
    for line in stdout.splitlines():
        if line.startswith("SIG "):
            _, k, value = line.split(" ", 2)
            found[int(k) - 1].append(value)
        elif line.startswith("END "):
            ends.add(int(line[4:]))
    assert ends == set(range(1, len(messages) + 1)), stdout
    return found


def _opendkim_signs(conf: Path) -> Dict[str, List[Tuple[str, ...]]]:
    """What the real OpenDKIM milter signs each of :data:`ADDRESSES` with."""
    found = _opendkim_messages(conf, [(a, [("From", "Someone <%s>" % a), ("Subject", "tables")]) for a in ADDRESSES])
    return {a: [_tags(v) for v in values] for a, values in zip(ADDRESSES, found)}


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
    with pytest.raises(PolicyError, match="sets no KeyTable and SigningTable, nor Domain and Selector"):
        SigningPolicy.from_opendkim_conf(str(conf))
    conf.write_text("Mode sv\nKeyTable %s\n" % kt)
    with pytest.raises(PolicyError, match="a KeyTable but no SigningTable"):
        SigningPolicy.from_opendkim_conf(str(conf))


def test_plain_lookup_order(tmp_path):
    kt = tmp_path / "kt"
    kt.write_text("k example.com:sel:./k.pem\n")
    tables = OpenDKIMTables(str(kt), "csl:" + ",".join("%s=k:%s@o.example" % (x, x.replace("@", "+at+")) for x in (
        "*", "u@*", ".com", ".example.com", "u@.com", "u@.example.com", "sub.example.com", "u@sub.example.com")))
    order = [s.split("@")[0] for _, s in tables.requests("u", "sub.example.com", multiple=True)]
    # each parent in turn, user@.parent then .parent, as the real OpenDKIM tries them
    assert order == ["u+at+sub.example.com", "sub.example.com", "u+at+.example.com", ".example.com", "u+at+.com",
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


# -- settings beyond the tables, against the real OpenDKIM ----------------------------------------

HEADERS = [("From", "A <a@example.com>"), ("To", "b@example.org"), ("Cc", "c@example.org"),
           ("Subject", "settings"), ("Date", "Fri, 04 Dec 2026 06:00:00 +0000"), ("X-Custom", "1"),
           ("Received", "from x by y"), ("Message-ID", "<1@example.com>")]


def _opendkim_fields(conf: Path, headers: List[Tuple[str, str]] = HEADERS) -> List[Dict[str, str]]:
    """The tags of each DKIM-Signature the real OpenDKIM adds to a message
    with *headers* signed under ``conf``."""
    [found] = _opendkim_messages(conf, [("a@example.com", headers)])
    return [_all_tags(v) for v in found]


def _all_tags(value: str) -> Dict[str, str]:
    text = re.sub(r"\s+", "", value)
    return dict(t.split("=", 1) for t in text.split(";") if "=" in t)


def _fastdkim_fields(conf: Path, headers: List[Tuple[str, str]] = HEADERS) -> List[Dict[str, str]]:
    policy = SigningPolicy.from_opendkim_conf(str(conf))
    msg = "".join("%s: %s\r\n" % (n, v) for n, v in headers).encode() + b"\r\nhello\r\n"
    try:
        fields = policy.sign(msg).decode()
    except NoSigningKey:
        return []
    return [_all_tags(f.split(":", 1)[1]) for f in re.split(r"\r\n(?=\S)", fields.strip()) if f]


def _settings_conf(base: Path, keys: Path, extra: str, keytable: str = "k1 example.com:s1:%(k)s/s1.private\n",
                   signingtable: str = "*@example.com k1\n") -> Path:
    base.mkdir(parents=True, exist_ok=True)
    (base / "KeyTable").write_text(keytable % {"k": keys})
    (base / "SigningTable").write_text(signingtable)
    conf = base / "opendkim.conf"
    conf.write_text("Mode s\nSyslog no\nBackground no\nRequireSafeKeys no\nSocket inet:%d@127.0.0.1\n"
                    "KeyTable file:%s/KeyTable\nSigningTable refile:%s/SigningTable\n%s"
                    % (free_port(), base, base, extra))
    return conf


@pytest.mark.parametrize("extra", [
    "SignHeaders From,Subject,To,X-Custom\n",
    "SignHeaders From,Subject,To,Received,Cc\nOmitHeaders Cc\n",  # Received: in the default OmitHeaders
    "SignHeaders From,Subject,Date\nOversignHeaders From,Subject\n",
    "SignHeaders From,To,Received\nOmitHeaders *,-Received\n",
    "SignHeaders From,Subject\nSignatureTTL 3600\nCanonicalization relaxed/simple\n",
], ids=["sign", "omit", "oversign", "omit-delta", "ttl"])
def test_header_lists_and_ttl_as_opendkim(tmp_path, keys, extra):
    conf = _settings_conf(tmp_path, keys, extra)
    [theirs] = _opendkim_fields(conf)
    [mine] = _fastdkim_fields(conf)
    # the same names, as often (their order in h= is each signer's choice: OpenDKIM's
    # follows the message, fastdkim's the list)
    if "Oversign" in extra:
        assert sorted(mine["h"].lower().split(":")) == sorted(theirs["h"].lower().split(":"))
    else:  # (without OversignHeaders, fastdkim oversigns its defaults where OpenDKIM oversigns none)
        assert sorted(set(mine["h"].lower().split(":"))) == sorted(theirs["h"].lower().split(":"))
    assert (mine["c"], mine.get("x") is None) == (theirs.get("c", "simple/simple"), theirs.get("x") is None)
    if "x" in theirs:
        assert int(mine["x"]) - int(mine["t"]) == int(theirs["x"]) - int(theirs["t"]) == 3600


def test_key_names_are_case_sensitive_and_a_key_signs_once(tmp_path, keys):
    kt = "MyKey example.com:s1:%(k)s/s1.private\nmykey example.org:s2:%(k)s/s2.private\n"
    conf = _settings_conf(tmp_path, keys, "MultipleSignatures yes\n", keytable=kt,
                          signingtable="*@example.com mykey\n*@example.com mykey\n*@*.com MyKey\n")
    theirs = _opendkim_fields(conf)
    mine = _fastdkim_fields(conf)
    assert sorted((t["d"], t["s"]) for t in mine) == sorted((t["d"], t["s"]) for t in theirs) == [
        ("example.com", "s1"), ("example.org", "s2")]
    with pytest.raises(PolicyError, match="key name mykey is not in the KeyTable"):
        OpenDKIMTables("csl:MyKey=example.com:s1:./k.pem", "csl:example.com=mykey")


def test_star_lists_change_the_default(tmp_path, keys):
    from fastdkim.signing import DEFAULT_HEADERS

    conf = _settings_conf(tmp_path, keys, "SignHeaders *,+X-Custom,-Cc\nOversignHeaders *,-from\n")
    policy = SigningPolicy.from_opendkim_conf(str(conf))
    [signer] = policy.signers_for_address("a", "example.com")  # type: ignore[attr-defined]
    assert "x-custom" in signer.headers and "cc" not in signer.headers
    assert set(signer.headers) == (set(DEFAULT_HEADERS) | {"x-custom"}) - {"cc"}
    [mine] = _fastdkim_fields(conf)
    h = mine["h"].split(":")
    assert h.count("from") == 1 and "x-custom" in h and "cc" not in h  # (From signed, not oversigned)


def test_include_and_sender_headers(tmp_path, keys):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "more.conf").write_text("Canonicalization relaxed/relaxed\nSenderHeaders Sender,From\n")
    (tmp_path / "inc.conf").write_text("Include sub/more.conf\n")
    conf = _settings_conf(tmp_path, keys, "Include inc.conf\n",
                          signingtable="*@example.com k1\n*@example.org k2\n",
                          keytable="k1 example.com:s1:%(k)s/s1.private\nk2 example.org:s2:%(k)s/s2.private\n")
    policy = SigningPolicy.from_opendkim_conf(str(conf))
    msg = b"From: a@example.com\r\nSender: list@example.org\r\nSubject: s\r\n\r\nhi\r\n"
    fields = policy.sign(msg).decode()
    assert "d=example.org" in fields and "c=relaxed/relaxed" in fields  # picked by Sender, as OpenDKIM does
    assert "d=example.com" in policy.sign(msg.replace(b"Sender: list@example.org\r\n", b"")).decode()
    (tmp_path / "loop.conf").write_text("Include loop.conf\n")
    (tmp_path / "opendkim.conf").write_text((tmp_path / "opendkim.conf").read_text() + "Include loop.conf\n")
    with pytest.raises(PolicyError, match="nested more than 5 levels"):
        SigningPolicy.from_opendkim_conf(str(conf))


@pytest.mark.parametrize("extra, problem", [
    ("Canonicalisation relaxed\n", "Canonicalisation is not an opendkim.conf setting"),
    ("Canonicalization loose\n", "Canonicalization 'loose' is not simple or relaxed"),
    ("Canonicalization relaxed/\n", "is not simple or relaxed"),
    ("SignatureAlgorithm rsa-sha1\n", "RFC 8301"),
    ("SignatureTTL soon\n", "SignatureTTL must be a number of seconds"),
    ("DontSignMailTo a@example.org\n", "dontsignmailto, which fastdkim does not do"),
    ("ExemptDomains example.net\nResignAll yes\n", "exemptdomains, resignall"),
    ("Include missing.conf\n", "cannot read"),
    ("MaximumSignedBytes 1000\n", "maximumsignedbytes, which fastdkim does not do"),
    ("FixCRLF yes\n", "fixcrlf, which fastdkim does not do"),
])
def test_settings_fastdkim_cannot_honour_are_refused(tmp_path, keys, extra, problem):
    conf = _settings_conf(tmp_path, keys, extra)
    with pytest.raises(PolicyError, match=re.escape(problem)):
        SigningPolicy.from_opendkim_conf(str(conf))


@pytest.mark.parametrize("subdomains", ["yes", "no"])
@pytest.mark.parametrize("author", ["a@example.com", "b@mail.example.com", "c@example.org", "d@deep.sub.example.net"])
def test_domain_selector_and_keyfile_as_opendkim(tmp_path, keys, subdomains, author):
    conf = tmp_path / "opendkim.conf"
    conf.write_text("Mode s\nSyslog no\nBackground no\nRequireSafeKeys no\nSocket inet:%d@127.0.0.1\n"
                    "Domain example.com, sub.example.net\nSelector s1\nKeyFile %s/s1.private\nSubDomains %s\n"
                    % (free_port(), keys, subdomains))
    headers = [("From", "Someone <%s>" % author), ("Subject", "single key")]
    theirs = [(t["d"], t["s"]) for t in _opendkim_fields(conf, headers)]
    mine = [(t["d"], t["s"]) for t in _fastdkim_fields(conf, headers)]
    assert mine == theirs
    if author.startswith("a@"):
        assert mine == [("example.com", "s1")]


def test_settings_at_their_default_values_are_read(tmp_path, keys):
    conf = _settings_conf(tmp_path, keys, "SignatureTTL 0\nFixCRLF no\n")
    [mine] = _fastdkim_fields(conf)
    assert "x" not in mine  # (0: no expiration, OpenDKIM's default)
    conf.write_text(conf.read_text().replace("KeyTable file:", "# KeyTable file:"))
    with pytest.raises(PolicyError, match="a SigningTable but no KeyTable"):
        SigningPolicy.from_opendkim_conf(str(conf))


def test_a_streaming_session_chooses_as_the_tables_do(tmp_path, keys):
    """A SigningSession given an OpenDKIM policy picks the keys by the whole
    address, in the SenderHeaders field, as the policy's sign() does."""
    from fastdkim.streaming import SigningSession

    conf = _settings_conf(tmp_path, keys, "SenderHeaders Sender,From\n",
                          signingtable="ops@example.com k2\n*@example.com k1\n",
                          keytable="k1 example.com:s1:%(k)s/s1.private\nk2 example.org:s2:%(k)s/s2.private\n")
    policy = SigningPolicy.from_opendkim_conf(str(conf))
    for head, want in ((b"From: a@example.com\r\nSender: ops@example.com\r\n", "example.org"),
                       (b"From: ops@example.com\r\n", "example.org"), (b"From: a@example.com\r\n", "example.com")):
        session = SigningSession(policy=policy)
        for line in head.split(b"\r\n")[:-1]:
            name, _, value = line.partition(b":")
            session.header(name.decode(), value)
        [signer] = session.end_of_headers()
        assert signer.domain == want
