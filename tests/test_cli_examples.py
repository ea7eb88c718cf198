"""Every example that a command's ``--help`` shows runs as written.

The files the examples name are made in a temporary directory (absolute
paths such as ``/etc/dkim`` are taken inside it), and the DNS the examples
would ask is a test server holding their keys, so that they run offline.
The milter's examples are run with ``--check`` (which loads everything the
milter would, without serving).
"""
from __future__ import annotations

import re
import shlex
import shutil

import pytest

from fastdkim import cli, keysources
from fastdkim.keys import generate_private_key, public_key_record, txt_strings, write_private_key, zone_file_line
from fastdkim.signing import Signer, sign_all

from fakedns import FakeDNS, Txt
from helpers_cli import run

MSG = b"From: Joe <joe@example.com>\nTo: x@example.org\nSubject: hi\n\nHello there.\n"

#: The keys the examples use: file name, domain, selector, algorithm.
KEYS = (("s1.pem", "example.com", "s1", "rsa"), ("rsa.pem", "example.com", "rsa", "rsa"),
        ("ed.pem", "example.com", "ed", "ed25519"), ("s2026.pem", "example.com", "s2026", "rsa"),
        ("arc.pem", "lists.example.org", "arc", "ed25519"))


def examples(command):
    """The command lines of the examples in ``fastdkim COMMAND --help``."""
    r = run(command, "--help")
    assert r.returncode == 0, r.stderr
    text = r.stdout.decode()
    epilog = re.search(r"^examples?:", text, re.MULTILINE)  # (after the options)
    assert epilog, text
    text = text[epilog.start():].replace("\\\n", " ")
    found = []
    for line in text.splitlines():
        for start in ("fastdkim ", "python -m fastdkim"):
            if start in line:
                found.append(line[line.index(start):].strip())
                break
    assert found, text
    return found


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("example-keys")
    made = {}
    for name, domain, selector, alg in KEYS:
        key = generate_private_key(alg)
        write_private_key(d / name, key)
        made[name] = (domain, selector, key)
    return d, made


@pytest.fixture()
def world(keys, tmp_path, monkeypatch):
    """The files the examples name, in the current directory; DNS from a test server."""
    key_dir, made = keys
    zone = {"_dmarc.example.com": Txt(["v=DMARC1; p=none"])}
    lines = []
    for name, (domain, selector, key) in made.items():
        shutil.copy(key_dir / name, tmp_path / name)
        (tmp_path / name).chmod(0o600)
        value = public_key_record(key)
        zone["%s._domainkey.%s" % (selector, domain)] = Txt(txt_strings(value))
        lines.append(zone_file_line(selector, domain, value) + "\n")
    (tmp_path / "zone.txt").write_text("".join(lines))
    signers = [Signer("example.com", "rsa", made["rsa.pem"][2]), Signer("example.com", "ed", made["ed.pem"][2])]

    def signed(text):
        return b"".join(sign_all(text, signers)).replace(b"\r\n", b"\n") + text

    (tmp_path / "msg.eml").write_bytes(MSG)
    for name in ("message.eml", "a.eml", "b.eml"):
        (tmp_path / name).write_bytes(signed(MSG.replace(b"hi", name.encode())))
    for sub in ("cur", "new", "tmp"):
        (tmp_path / "Maildir" / sub).mkdir(parents=True)
    (tmp_path / "Maildir" / "new" / "1.host").write_bytes(signed(MSG.replace(b"hi", b"new")))
    (tmp_path / "Maildir" / "cur" / "2.host:2,S").write_bytes(signed(MSG.replace(b"hi", b"cur")))
    mbox = b"".join(b"From joe@example.com Thu Jan  1 00:00:00 2026\n" + MSG.replace(b"hi", b"%d" % i) + b"\n"
                    for i in range(2))
    (tmp_path / "outgoing.mbox").write_bytes(mbox)
    (tmp_path / "var" / "mail").mkdir(parents=True)
    (tmp_path / "var" / "mail" / "alice").write_bytes(mbox)
    (tmp_path / "dkim.toml").write_text('[domains."example.com"]\nkeys = [ { selector = "s1", key = "%s" } ]\n'
                                        % (tmp_path / "s1.pem"))
    etc = tmp_path / "etc"
    (etc / "fastdkim").mkdir(parents=True)
    (etc / "KeyTable").write_text("k1 example.com:s1:%s\n" % (tmp_path / "s1.pem"))
    (etc / "SigningTable").write_text("example.com k1\n")
    (etc / "opendkim.conf").write_text("KeyTable file:%s\nSigningTable file:%s\n" % (
        etc / "KeyTable", etc / "SigningTable"))
    milter = 'policy = "%s"\nauthserv_id = "mx.example.net"\n' % (tmp_path / "dkim.toml")
    (etc / "fastdkim" / "milter.toml").write_text(milter)
    (tmp_path / "milter.toml").write_text(milter)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FASTDKIM_STATE_DIR", str(tmp_path / "state"))
    srv = FakeDNS(zone)
    real = keysources.DNSKeySource

    class ExampleDNS(real):
        """The DNS of the examples (whatever resolver they name): the test server."""

        def __init__(self, nameservers=None, **kw):
            super().__init__(nameservers=[srv.address], **kw)

    monkeypatch.setattr(keysources, "DNSKeySource", ExampleDNS)
    monkeypatch.setenv("COLUMNS", "250")  # (each example on a line of its own, however narrow the terminal)
    yield tmp_path
    srv.stop()


def run_example(line, root):
    """Run an example command line as a shell would (``<`` and ``>`` included)."""
    words = shlex.split(line)
    stdin = stdout = None
    argv = []
    it = iter(words)
    for w in it:
        if w == "<":
            stdin = next(it)
        elif w == ">":
            stdout = next(it)
        elif w.startswith("/"):
            argv.append(str(root / w.lstrip("/")))
        else:
            argv.append(w)
    if argv[:3] == ["python", "-m", "fastdkim.milter"]:
        argv = ["fastdkim", "milter"] + argv[3:]
    assert argv[0] == "fastdkim", line
    argv = argv[1:]
    if argv[0] == "milter" and "--check" not in argv:
        argv.append("--check")
    r = run(*argv, input=(root / stdin).read_bytes() if stdin else None)
    if stdout:
        (root / stdout).write_bytes(r.stdout)
    return r


@pytest.mark.parametrize("command", sorted(cli.COMMANDS))
def test_every_help_example_runs(command, world):
    for line in examples(command):
        r = run_example(line, world)
        assert r.returncode == 0, (line, r.stdout[-2000:], r.stderr)
        assert b"error" not in r.stderr, (line, r.stderr)


def test_arc_seal_example_records_the_remote_ip(world):
    """The example with --remote-ip: its address is in the ARC-Authentication-Results."""
    line = [x for x in examples("arc-seal") if "--remote-ip" in x]
    assert line
    r = run_example(line[0], world)
    assert r.returncode == 0, r.stderr
    assert b"smtp.remote-ip=192.0.2.1" in r.stdout
