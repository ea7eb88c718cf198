"""The command line: in this process through ``fastdkim.cli.main`` (fast), and
through its real entry point (``python -m fastdkim``) where a test needs a real
process: its own standard output file, a lock held by another process, the exit
status of the program."""
from __future__ import annotations

import io
import json
import os
import shutil
import stat
import subprocess
import sys

import pytest

import fastdkim
from fastdkim import cli
from fastdkim.cli import sign as cli_sign
from fastdkim.dns import zone_file_key_source
from fastdkim.keys import load_private_key, public_key_record

from fakedns import FakeDNS, Neg, Txt
from helpers_cli import run, run_process
from helpers_keys import rsa_key_of_bits, rsa_public_key_of_bits

MSG = b"From: Joe <joe@example.com>\nTo: x@example.org\nSubject: hi\n\nHello there.\n"


@pytest.fixture(scope="module")
def keyset(tmp_path_factory):
    """RSA and Ed25519 keys made by `fastdkim keygen`, with their zone file."""
    d = tmp_path_factory.mktemp("keys")
    for sel, alg in (("rsa", "rsa"), ("ed", "ed25519")):
        r = run("keygen", "--domain", "example.com", "--selector", sel, "--algorithm", alg, "--out", d)
        assert r.returncode == 0, r.stderr
    zone = d / "zone.txt"
    zone.write_text("".join((d / n).read_text() for n in ("rsa._domainkey.example.com.txt", "ed._domainkey.example.com.txt")))
    return {"dir": d, "rsa": d / "rsa._domainkey.example.com.pem", "ed": d / "ed._domainkey.example.com.pem", "zone": zone}


def sign_args(keyset):
    return ["--domain", "example.com", "--selector", "rsa", "--key", keyset["rsa"], "--selector", "ed", "--key", keyset["ed"]]


# -- keygen -------------------------------------------------------------------------------


def test_keygen_files_modes_and_round_trip(tmp_path):
    r = run("keygen", "--domain", "Example.COM", "--selector", "s1", "--out", tmp_path, "--bits", "3072")
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    key = tmp_path / "s1._domainkey.example.com.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert "v=DKIM1; k=rsa; p=" in out and "s1._domainkey.example.com. 3600 IN TXT (" in out and '"name"' in out
    priv = load_private_key(str(key))
    assert priv.key_size == 3072
    zone = tmp_path / "s1._domainkey.example.com.txt"
    # zone line -> parsed back -> verifies a message signed with the private key
    src = zone_file_key_source(str(zone))
    signed = fastdkim.Signer("example.com", "s1", priv).sign_message(MSG.replace(b"\n", b"\r\n"))
    assert fastdkim.verify(signed, keys=src)[0].status == "pass"
    # never overwritten without --force
    before = key.read_bytes()
    r = run("keygen", "--domain", "example.com", "--selector", "s1", "--out", tmp_path)
    assert r.returncode == 2 and b"--force" in r.stderr and key.read_bytes() == before
    r = run("keygen", "--domain", "example.com", "--selector", "s1", "--out", tmp_path, "--force")
    assert r.returncode == 0 and key.read_bytes() != before
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_keygen_formats(tmp_path):
    r = run("keygen", "--domain", "example.com", "--selector", "e", "--algorithm", "ed25519", "--out", tmp_path,
            "--format", "json")
    rec = json.loads(r.stdout)
    assert rec["name"] == "e._domainkey.example.com." and rec["value"].startswith("v=DKIM1; k=ed25519; p=")
    assert fastdkim.parse_key_record(rec["value"]).key_type == "ed25519"
    r = run("keygen", "--domain", "example.com", "--selector", "v", "--out", tmp_path, "--format", "value")
    assert r.stdout.decode().strip().startswith("v=DKIM1; k=rsa; p=")
    big = run("keygen", "--domain", "example.com", "--selector", "z", "--bits", "4096", "--out", tmp_path, "--format", "zone")
    line = big.stdout.decode().strip()
    assert line.count('" "') >= 2  # > 255 bytes: several character-strings
    assert all(len(p) <= 255 for p in line.split('"')[1::2])


@pytest.mark.parametrize(
    "args, msg",
    [
        (["--domain", "exa mple.com", "--selector", "s"], b"invalid domain"),
        (["--domain", "example.com", "--selector", "s", "--bits", "1024"], b"2048 bits or more"),
        (["--domain", "example.com", "--selector", "s", "--algorithm", "ed25519", "--bits", "2048"], b"RSA"),
        (["--domain", "example.com", "--selector", "s", "--algorithm", "dsa"], b"invalid choice"),
        (["--selector", "s"], b"required"),
    ],
)
def test_keygen_errors(tmp_path, args, msg):
    r = run("keygen", *args, "--out", tmp_path)
    assert r.returncode == 2 and msg in r.stderr, r.stderr


# -- sign and verify, one message ---------------------------------------------------------


def test_sign_stdin_to_stdout_and_verify(keyset, tmp_path):
    r = run("sign", *sign_args(keyset), input=MSG)
    assert r.returncode == 0, r.stderr
    assert r.stdout.endswith(MSG) and r.stdout.count(b"DKIM-Signature:") == 2
    f = tmp_path / "s.eml"
    f.write_bytes(r.stdout)
    v = run("verify", "--keys", keyset["zone"], f)
    assert v.returncode == 0, v.stdout + v.stderr
    lines = v.stdout.decode().splitlines()
    assert len(lines) == 2 and all(" pass d=example.com " in x for x in lines)
    assert "a=rsa-sha256" in lines[0] and "a=ed25519-sha256" in lines[1]


def test_sign_file_to_out_never_overwrites(keyset, tmp_path):
    src = tmp_path / "m.eml"
    src.write_bytes(MSG)
    out = tmp_path / "signed.eml"
    assert run("sign", *sign_args(keyset), src, "--out", out).returncode == 0
    first = out.read_bytes()
    r = run("sign", *sign_args(keyset), src, "--out", out)
    assert r.returncode == 2 and out.read_bytes() == first
    assert run("sign", *sign_args(keyset), src, "--out", out, "--force").returncode == 0


def test_verify_outputs_and_exit_codes(keyset, tmp_path):
    signed = run("sign", *sign_args(keyset), input=MSG).stdout
    good = tmp_path / "good.eml"
    good.write_bytes(signed)
    bad = tmp_path / "bad.eml"
    bad.write_bytes(signed.replace(b"Hello there.", b"Hello THERE."))
    plain = tmp_path / "plain.eml"
    plain.write_bytes(MSG)
    j = run("verify", "--keys", keyset["zone"], "--json", good, bad)
    assert j.returncode == 1
    docs = [json.loads(x) for x in j.stdout.decode().splitlines()]
    assert [d["pass"] for d in docs] == [True, False]
    assert docs[1]["signatures"][0]["status"] == "fail" and "body hash" in docs[1]["signatures"][0]["reason"]
    ar = run("verify", "--keys", keyset["zone"], "--ar", "mx.example.net", input=signed)
    text = ar.stdout.decode()
    assert ar.returncode == 0 and text.startswith("Authentication-Results: mx.example.net;")
    assert "dkim=pass" in text and "header.d=example.com" in text and "header.s=ed" in text and "header.b=" in text
    none = run("verify", "--keys", keyset["zone"], "--ar", "mx", plain)
    assert none.returncode == 1 and "dkim=none" in none.stdout.decode()
    assert run("verify", "--keys", keyset["zone"], tmp_path / "missing.eml").returncode == 2
    assert run("verify", "--keys", tmp_path / "nozone.txt", good).returncode == 2
    junk = tmp_path / "junk.zone"
    junk.write_text("this is ( not a zone\n\x00\n")
    r = run("verify", "--keys", junk, good)
    assert r.returncode == 2 and b"cannot parse zone file" in r.stderr
    assert run("verify", "--keys", keyset["zone"], "--dns", "127.0.0.1", good).returncode == 2


def test_verify_through_dns_server(keyset, tmp_path):
    priv = load_private_key(str(keyset["ed"]))
    zone = {"ed._domainkey.example.com": Txt([public_key_record(priv)], ttl=60),
            "rsa._domainkey.example.com": Neg(3)}
    srv = FakeDNS(zone)
    try:
        f = tmp_path / "m.eml"
        f.write_bytes(run("sign", *sign_args(keyset), input=MSG).stdout)
        r = run("verify", "--dns", srv.address, f)
        out = r.stdout.decode().splitlines()
        assert r.returncode == 0  # one passing signature is enough
        assert "permerror" in out[0] and "pass" in out[1]
    finally:
        srv.stop()
    dead = run("verify", "--dns", "127.0.0.1:9", "--timeout", "0.5", f)
    assert dead.returncode == 1 and b"temperror" in dead.stdout


def test_sign_usage_errors(keyset, tmp_path):
    src = tmp_path / "m.eml"
    src.write_bytes(MSG)
    cases = [
        (["--domain", "example.com", "--selector", "s", "--key", tmp_path / "nokey.pem", src], b"cannot read"),
        (["--domain", "example.com", "--selector", "s", src], b"--key"),
        (["--domain", "example.com", "--selector", "a", "--selector", "b", "--key", keyset["ed"], src], b"one --selector per --key"),
        (["--domain", "example.com", "--selector", "s", "--key", keyset["ed"], "--canonicalization", "loose", src], b"canonicalization"),
        (["--policy", tmp_path / "none.toml", src], b"cannot read policy"),
        ([*sign_args(keyset), tmp_path / "missing.eml"], b"no such file"),
        ([*sign_args(keyset), tmp_path], b"--out"),
    ]
    for args, msg in cases:
        r = run("sign", *args)
        assert r.returncode == 2 and msg in r.stderr, (args, r.stderr)
    enc = tmp_path / "enc.pem"
    from cryptography.hazmat.primitives import serialization

    enc.write_bytes(load_private_key(str(keyset["ed"])).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(b"pw")))
    r = run("sign", "--domain", "example.com", "--selector", "s", "--key", enc, src)
    assert r.returncode == 2 and b"password" in r.stderr
    pw = tmp_path / "pw"
    pw.write_bytes(b"wrong\n")
    r = run("sign", "--domain", "example.com", "--selector", "s", "--key", enc, "--password-file", pw, src)
    assert r.returncode == 2 and b"wrong password" in r.stderr
    pw.write_bytes(b"pw\n")
    r = run("sign", "--domain", "example.com", "--selector", "s", "--key", enc, "--password-file", pw, src)
    assert r.returncode == 0 and r.stdout.startswith(b"DKIM-Signature:")
    nofrom = tmp_path / "nofrom.eml"
    nofrom.write_bytes(b"Subject: x\n\nbody\n")
    r = run("sign", *sign_args(keyset), nofrom)
    # a filter never swallows mail: written out unchanged, reported, exit status 1
    assert r.returncode == 1 and b"From" in r.stderr and r.stdout == nofrom.read_bytes()


def test_help_everywhere():
    for cmd in ("keygen", "sign", "verify", "check-dns", "demo"):
        r = run(cmd, "--help")
        assert r.returncode == 0 and b"example" in r.stdout
    assert run().returncode == 2
    r = run_process()  # the real entry point: the exit status of the program
    assert r.returncode == 2 and b"usage: fastdkim" in r.stderr


def test_console_script_if_installed():
    exe = shutil.which("fastdkim")
    if exe is None:
        pytest.skip("the fastdkim console script is not on PATH (package not installed)")
    r = subprocess.run([exe, "--version"], capture_output=True)
    assert r.returncode == 0 and b"fastdkim" in r.stdout


# -- batch signing --------------------------------------------------------------------------


def _policy(tmp_path, keyset, fallback=False):
    p = tmp_path / "policy.toml"
    text = (
        '[domains."example.com"]\nkeys = [ { selector = "rsa", key = "%s" }, { selector = "ed", key = "%s" } ]\n'
        % (keyset["rsa"], keyset["ed"])
    )
    if fallback:
        text += '[fallback]\ndomain = "example.com"\nkeys = [ { selector = "ed", key = "%s" } ]\n' % keyset["ed"]
    p.write_text(text)
    return p


def _maildir(root, n):
    for sub in ("cur", "new", "tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (root / "new" / ("%d.host" % i)).write_bytes(MSG.replace(b"hi", b"hi %d" % i))
    (root / "cur" / "nofrom:2,S").write_bytes(b"Subject: orphan\n\nno author\n")
    (root / "cur" / "other:2,S").write_bytes(b"From: a@elsewhere.example\nSubject: x\n\nbody\n")


def test_sign_maildir_counts_and_reports(keyset, tmp_path):
    md = tmp_path / "Maildir"
    _maildir(md, 20)
    out = tmp_path / "signed"
    r = run("sign", "--policy", _policy(tmp_path, keyset), "--out", out, "--jobs", "2", md)
    assert r.returncode == 1  # some messages left unsigned
    err = r.stderr.decode()
    assert "signed 20 of 22 messages, 2 left unsigned" in err
    assert "cur/nofrom:2,S" in err and "no From" in err and "elsewhere.example" in err
    outs = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    ins = sorted(p.relative_to(md) for p in md.rglob("*") if p.is_file())
    assert outs == ins  # nothing lost
    assert (out / "cur" / "nofrom:2,S").read_bytes() == (md / "cur" / "nofrom:2,S").read_bytes()
    v = run("verify", "--keys", keyset["zone"], "--json", out / "new")
    assert v.returncode == 0 and len(v.stdout.splitlines()) == 20


def test_sign_mbox_and_fallback(keyset, tmp_path):
    box = tmp_path / "in.mbox"
    msgs = [MSG, b"From: a@elsewhere.example\nSubject: x\n\nbody\n\n>From the desk\n", b"Subject: x\n\nno from\n"]
    box.write_bytes(b"".join(b"From sender@example.com Mon Jan  1 00:00:00 2029\n" + m + b"\n" for m in msgs))
    out = tmp_path / "out.mbox"
    r = run("sign", "--policy", _policy(tmp_path, keyset, fallback=True), "--out", out, box)
    assert r.returncode == 1 and b"signed 2 of 3 messages, 1 left unsigned" in r.stderr
    data = out.read_bytes()
    assert data.count(b"\nFrom sender@example.com") + data.startswith(b"From sender") == 3
    v = run("verify", "--keys", keyset["zone"], "--json", out)
    docs = [json.loads(x) for x in v.stdout.splitlines()]
    assert [d["pass"] for d in docs] == [True, True, False]
    assert [s["selector"] for s in docs[1]["signatures"]] == ["ed"]  # the fallback key


def test_sign_directory_in_place(keyset, tmp_path):
    d = tmp_path / "queue"
    d.mkdir()
    for i in range(5):
        (d / ("m%d.eml" % i)).write_bytes(MSG)
    r = run("sign", *sign_args(keyset), "--in-place", "--jobs", "1", d)
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(d)) == ["m%d.eml" % i for i in range(5)]
    assert run("verify", "--keys", keyset["zone"], d).returncode == 0


def _signed_or_original(path, keyset):
    data = path.read_bytes()
    if data == MSG:
        return "original"
    assert data.endswith(MSG)
    res = fastdkim.verify(data, keys=zone_file_key_source(str(keyset["zone"])))
    assert [r.status for r in res] == ["pass", "pass"]
    return "signed"


def test_in_place_interrupted_leaves_every_file_intact(keyset, tmp_path, monkeypatch):
    d = tmp_path / "queue"
    d.mkdir()
    for i in range(6):
        (d / ("m%d.eml" % i)).write_bytes(MSG)
    box = tmp_path / "q.mbox"
    box.write_bytes(b"".join(b"From x@example.com Mon Jan  1 00:00:00 2029\n" + MSG + b"\n" for _ in range(6)))
    original_box = box.read_bytes()
    real = cli_sign.sign_all
    calls = {"n": 0}

    def failing(*a, **k):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt  # the operator presses Ctrl-C midway
        return real(*a, **k)

    monkeypatch.setattr(cli_sign, "sign_all", failing)
    assert cli.main(["sign", *map(str, sign_args(keyset)), "--in-place", "--jobs", "1", "--quiet", str(d)]) == 130
    states = [_signed_or_original(d / ("m%d.eml" % i), keyset) for i in range(6)]
    assert states == ["signed"] * 3 + ["original"] * 3
    calls["n"] = 0
    assert cli.main(["sign", *map(str, sign_args(keyset)), "--in-place", "--jobs", "1", "--quiet", str(box)]) == 130
    assert box.read_bytes() == original_box  # the mbox is replaced only when complete
    leftovers = [p for p in tmp_path.rglob(".fastdkim-*")]
    assert leftovers == []


# -- check-dns ------------------------------------------------------------------------------


def test_check_dns(keyset, tmp_path):
    ed = load_private_key(str(keyset["ed"]))
    rec = public_key_record(ed)
    big = public_key_record(rsa_public_key_of_bits(4096))  # (generating a private key would take seconds)
    weak = public_key_record(rsa_key_of_bits(768))
    zone = {
        "good._domainkey.example.com": Txt([rec]),
        "split._domainkey.example.com": Txt([big[:255], big[255:510], big[510:]]),
        "revoked._domainkey.example.com": Txt(["v=DKIM1; k=rsa; p="]),
        "two._domainkey.example.com": Txt([rec], [weak]),
        "testing._domainkey.example.com": Txt([rec.replace("k=ed25519", "k=ed25519; t=y")]),
        "quoted._domainkey.example.com": Txt(['v=DKIM1; k=rsa; " "p=MIIB']),
        "weak._domainkey.example.com": Txt([weak]),
    }
    srv = FakeDNS(zone)
    try:
        def check(sel, *extra):
            r = run("check-dns", "--domain", "example.com", "--selector", sel, "--dns", srv.address, "--timeout", "2", *extra)
            return r.returncode, r.stdout.decode()

        code, out = check("good", "--key", keyset["ed"])
        assert code == 0 and "matches" in out and "no problems found" in out
        code, out = check("good", "--key", keyset["rsa"])
        assert code == 1 and "does NOT match" in out
        code, out = check("split")
        assert code == 0 and "3 character-strings" in out and "4096" in out and "WARNING" in out
        code, out = check("revoked")
        assert code == 1 and "revoked" in out
        code, out = check("two")
        assert code == 1 and "2 DKIM records" in out
        code, out = check("testing")
        assert code == 0 and "t=y" in out
        code, out = check("quoted")
        assert code == 1 and "quote" in out
        code, out = check("weak")
        assert code == 1 and "768" in out
        code, out = check("missing")
        assert code == 1 and "NXDOMAIN" in out
    finally:
        srv.stop()
    r = run("check-dns", "--domain", "example.com", "--selector", "x", "--dns", "127.0.0.1:9", "--timeout", "0.5")
    assert r.returncode == 1 and b"temporary" in r.stdout
    r = run("check-dns", "--domain", "bad domain", "--selector", "x")
    assert r.returncode == 2


# -- demo -----------------------------------------------------------------------------------


def test_demo_small():
    r = run("demo", "--count", "40", "--max-size", "50000", "--quiet")
    out = r.stdout.decode()
    assert r.returncode == 0, out + r.stderr.decode()
    assert "40/40 messages with both signatures passing" in out
    assert "5/5 tampered messages rejected" in out


# -- files are written the way users expect -------------------------------------------------


def _sig_count(path):
    return path.read_bytes().count(b"DKIM-Signature:")


def test_out_follows_symlinks_and_keeps_mode_and_umask(keyset, tmp_path):
    msg = tmp_path / "m.eml"
    msg.write_bytes(MSG)
    target = tmp_path / "target.eml"
    target.write_bytes(b"old")
    target.chmod(0o640)
    link = tmp_path / "link.eml"
    link.symlink_to(target)
    r = run("sign", *sign_args(keyset), "--out", link, "--force", msg)
    assert r.returncode == 0, r.stderr
    assert link.is_symlink() and _sig_count(target) == 2  # written through the link
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    # a new file gets 0666 less the umask, like any file a program creates
    r = run("sign", *sign_args(keyset), "--out", tmp_path / "new.eml", msg)
    assert r.returncode == 0, r.stderr
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE((tmp_path / "new.eml").stat().st_mode) == 0o666 & ~mask


def test_in_place_through_symlink_keeps_link_and_target_mode(keyset, tmp_path):
    real = tmp_path / "real.eml"
    real.write_bytes(MSG)
    real.chmod(0o604)
    sym = tmp_path / "sym.eml"
    sym.symlink_to(real)
    r = run("sign", *sign_args(keyset), "--in-place", "--jobs", "1", "--quiet", sym)
    assert r.returncode == 0, r.stderr
    assert sym.is_symlink() and _sig_count(real) == 2
    assert stat.S_IMODE(real.stat().st_mode) == 0o604


def test_out_to_a_character_device_writes_into_it(keyset, tmp_path):
    msg = tmp_path / "m.eml"
    msg.write_bytes(MSG)
    r = run_process("sign", *sign_args(keyset), "--out", "/dev/stdout", "--force", msg)  # its own stdout
    assert r.returncode == 0, r.stderr
    assert r.stdout.count(b"DKIM-Signature:") == 2 and r.stdout.endswith(MSG)
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_same_file_named_twice_is_signed_once(keyset, tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    m = d / "a.eml"
    m.write_bytes(MSG)
    r = run("sign", *sign_args(keyset), "--in-place", "--jobs", "2", "--quiet", m, m, d / "." / "a.eml", d)
    assert r.returncode == 0, r.stderr
    assert _sig_count(m) == 2


def test_force_replaces_outputs_of_a_directory_run(keyset, tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    (d / "a.eml").write_bytes(MSG)
    out = tmp_path / "out"
    assert run("sign", *sign_args(keyset), "--out", out, "--jobs", "1", d).returncode == 0
    r = run("sign", *sign_args(keyset), "--out", out, "--jobs", "1", d)
    assert r.returncode == 1 and b"--force" in r.stderr
    r = run("sign", *sign_args(keyset), "--out", out, "--force", "--jobs", "1", d)
    assert r.returncode == 0, r.stderr
    assert _sig_count(out / "a.eml") == 2


def test_out_directory_for_one_message(keyset, tmp_path):
    msg = tmp_path / "m.eml"
    msg.write_bytes(MSG)
    r = run("sign", *sign_args(keyset), "--out", str(tmp_path / "outdir") + "/", msg)
    assert r.returncode == 0, r.stderr
    assert _sig_count(tmp_path / "outdir" / "m.eml") == 2
    r = run("sign", *sign_args(keyset), "--out", msg, "--force", msg)
    assert r.returncode == 2 and b"--in-place" in r.stderr and msg.read_bytes() == MSG


@pytest.mark.parametrize("case", ["keygen-out-file", "sign-out-in-proc", "maildir-out-file", "verify-now-nan",
                                  "verify-now-inf", "demo-max-size", "timeout-zero", "expiration-zero", "ar-empty",
                                  "ar-bad", "ttl"])
def test_bad_input_is_one_line_exit_2(keyset, tmp_path, case):
    msg = tmp_path / "m.eml"
    msg.write_bytes(MSG)
    afile = tmp_path / "afile"
    afile.write_bytes(b"x")
    md = tmp_path / "md"
    _maildir(md, 1)
    args = {
        "keygen-out-file": ["keygen", "--domain", "example.com", "--selector", "s", "--out", afile],
        "sign-out-in-proc": ["sign", *sign_args(keyset), "--out", "/proc/fastdkim-nope/x.eml", msg],
        "maildir-out-file": ["sign", "--policy", _policy(tmp_path, keyset), "--out", afile, md],
        "verify-now-nan": ["verify", "--keys", keyset["zone"], "--now", "nan", msg],
        "verify-now-inf": ["verify", "--keys", keyset["zone"], "--now", "inf", msg],
        "demo-max-size": ["demo", "--count", "3", "--max-size", "0"],
        "timeout-zero": ["verify", "--timeout", "0", msg],
        "expiration-zero": ["sign", *sign_args(keyset), "--expiration", "0", msg],
        "ar-empty": ["verify", "--keys", keyset["zone"], "--ar", "", msg],
        "ar-bad": ["verify", "--keys", keyset["zone"], "--ar", "a b;c", msg],
        "ttl": ["keygen", "--domain", "example.com", "--selector", "s", "--out", tmp_path, "--ttl", "-5"],
    }[case]
    r = run(*args)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert b"Traceback" not in r.stderr and r.stderr.strip(), r.stderr
    lines = r.stderr.decode().strip().splitlines()
    if lines[0].startswith("usage: "):  # a value the parser refused: the command's own usage first
        assert lines[0].startswith("usage: fastdkim %s " % args[0]), r.stderr
        lines = [x for x in lines if not x.startswith(("usage: ", " "))]
    assert len(lines) == 1 and lines[0].startswith("fastdkim %s: error: " % args[0]), r.stderr


def test_writing_to_a_full_disk_is_an_error_not_a_traceback(keyset, tmp_path):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    msg = tmp_path / "m.eml"
    msg.write_bytes(MSG)
    with open("/dev/full", "wb") as full:
        r = subprocess.run([sys.executable, "-m", "fastdkim", "sign", *map(str, sign_args(keyset)), str(msg)],
                           stdout=full, stderr=subprocess.PIPE, timeout=60)
    assert r.returncode == 2 and b"Traceback" not in r.stderr and b"No space left" in r.stderr, r.stderr


def test_policy_options_of_the_wrong_type(keyset, tmp_path):
    msg = tmp_path / "m.eml"
    msg.write_bytes(MSG)
    for opt, value in (("headers", '"from"'), ("oversign", '"subject"'), ("timestamp", '"no"'),
                       ("expiration", "true"), ("key", "5"), ("selector", "7")):
        entry = {"selector": '"rsa"', "key": '"%s"' % keyset["rsa"]}
        entry[opt] = value
        p = tmp_path / "p.toml"
        p.write_text('[domains."example.com"]\nkeys = [ { %s } ]\n' % ", ".join("%s = %s" % kv for kv in entry.items()))
        r = run("sign", "--policy", p, msg)
        assert r.returncode == 2 and opt.encode() in r.stderr and b"Traceback" not in r.stderr, (opt, r.stderr)


def test_password_file_applies_to_encrypted_keys_only(keyset, tmp_path):
    from cryptography.hazmat.primitives import serialization

    enc = tmp_path / "enc.pem"
    key = fastdkim.generate_private_key("ed25519")
    enc.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.BestAvailableEncryption(b"s3cret")))
    pw = tmp_path / "pw.txt"
    pw.write_bytes(b"s3cret\n")
    msg = tmp_path / "m.eml"
    msg.write_bytes(MSG)
    # dual signing: one key encrypted, one not, one password file
    r = run("sign", "--domain", "example.com", "--selector", "enc", "--key", enc, "--selector", "rsa",
            "--key", keyset["rsa"], "--password-file", pw, msg)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count(b"DKIM-Signature:") == 2
    # a policy with an encrypted key
    p = tmp_path / "p.toml"
    p.write_text('[domains."example.com"]\nkeys = [ { selector = "enc", key = "%s" } ]\n' % enc)
    assert run("sign", "--policy", p, msg).returncode == 2
    r = run("sign", "--policy", p, "--password-file", pw, msg)
    assert r.returncode == 0, r.stderr


def test_short_rsa_key_is_warned_about(tmp_path):
    from cryptography.hazmat.primitives import serialization

    k = rsa_key_of_bits(1024)
    path = tmp_path / "short.pem"
    path.write_bytes(k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()))
    msg = tmp_path / "m.eml"
    msg.write_bytes(MSG)
    r = run("sign", "--domain", "example.com", "--selector", "s", "--key", path, msg)
    assert r.returncode == 0 and b"warning" in r.stderr and b"1024" in r.stderr, r.stderr


def test_verify_goes_on_past_an_unreadable_file(keyset, tmp_path):
    d = tmp_path / "v"
    d.mkdir()
    (tmp_path / "m.eml").write_bytes(MSG)
    signed = run("sign", *sign_args(keyset), tmp_path / "m.eml").stdout
    (d / "a.eml").write_bytes(signed)
    (d / "b.eml").symlink_to(tmp_path / "missing")
    (d / "c.eml").write_bytes(signed)
    r = run("verify", "--keys", keyset["zone"], d)
    assert r.returncode == 2 and b"Traceback" not in r.stderr
    out = r.stdout.decode()
    assert "a.eml: pass" in out and "c.eml: pass" in out
    assert b"b.eml" in r.stderr and b"No such file" in r.stderr


def test_verify_output_escapes_what_the_message_wrote(keyset, tmp_path):
    hostile = (b"DKIM-Signature: v=1; a=rsa-\r\n\tsha999; d=example.com; s=rsa; h=from; bh=AAAA; b=AAAA\r\n"
               b"From: a@example.com\r\n\r\nbody\r\n")
    m = tmp_path / "h.eml"
    m.write_bytes(hostile)
    r = run("verify", "--keys", keyset["zone"], m)
    assert r.returncode == 1 and len(r.stdout.strip().splitlines()) == 1, r.stdout
    r = run("verify", "--keys", keyset["zone"], "--ar", "mx.example.net", m)
    assert b"\r" not in r.stdout.replace(b"\r\n", b"") and r.stdout.isascii()


def test_one_message_stored_with_its_from_line(keyset, tmp_path):
    m = tmp_path / "envelope.eml"
    m.write_bytes(b"From joe@example.com Mon Jan  1 00:00:00 2029\n" + MSG)
    r = run("sign", *sign_args(keyset), m)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(b"From joe@example.com") and r.stdout.count(b"DKIM-Signature:") == 2


def test_malformed_header_block_is_not_signed(keyset, tmp_path):
    m = tmp_path / "bad.eml"
    m.write_bytes(b"From: joe@example.com\nthis line has no colon\n\nbody\n")
    r = run("sign", *sign_args(keyset), m)
    assert r.returncode == 1 and b"colon" in r.stderr and r.stdout == m.read_bytes()  # written out unchanged


def test_mbox_in_place_waits_for_the_delivery_lock(keyset, tmp_path):
    import fcntl

    box = tmp_path / "q.mbox"
    box.write_bytes(b"From x@example.com Mon Jan  1 00:00:00 2029\n" + MSG + b"\n")
    before = box.read_bytes()
    with open(box, "r+b") as held:
        fcntl.lockf(held.fileno(), fcntl.LOCK_EX)  # a delivery agent appending
        # (another process: this one's fcntl locks never stop itself)
        r = run_process("sign", *sign_args(keyset), "--in-place", "--lock-timeout", "0.3", "--jobs", "1", box)
        assert r.returncode == 2 and b"locked" in r.stderr and box.read_bytes() == before, r.stderr
    (tmp_path / "q.mbox.lock").write_bytes(b"")
    r = run("sign", *sign_args(keyset), "--in-place", "--lock-timeout", "0.3", "--jobs", "1", box)
    assert r.returncode == 2 and b"q.mbox.lock" in r.stderr and box.read_bytes() == before
    (tmp_path / "q.mbox.lock").unlink()
    ino = box.stat().st_ino
    r = run("sign", *sign_args(keyset), "--in-place", "--jobs", "1", box)
    assert r.returncode == 0, r.stderr
    assert box.stat().st_ino == ino and _sig_count(box) == 2  # rewritten in place, same file
    assert not (tmp_path / "q.mbox.lock").exists()


def test_mbox_is_not_read_while_it_is_being_written(keyset, tmp_path):
    """Signing an mbox into --out and verifying it read it under shared
    locks: not while a delivery or an in-place run holds it (a torn copy)."""
    import fcntl

    box = tmp_path / "q.mbox"
    box.write_bytes(b"From x@example.com Mon Jan  1 00:00:00 2029\n" + MSG + b"\n")
    out = tmp_path / "out.mbox"
    with open(box, "r+b") as held:
        fcntl.lockf(held.fileno(), fcntl.LOCK_EX)  # being rewritten (another process: see above)
        r = run_process("sign", *sign_args(keyset), "--out", out, "--lock-timeout", "0.3", "--jobs", "1", box)
        assert r.returncode == 2 and b"locked" in r.stderr and not out.exists(), r.stderr
        r = run_process("verify", "--keys", keyset["zone"], "--lock-timeout", "0.3", box)
        assert r.returncode != 0 and b"locked" in r.stderr and b"pass" not in r.stdout, r.stderr
    with open(box, "rb") as reader:
        fcntl.lockf(reader.fileno(), fcntl.LOCK_SH)  # another reader: shared
        r = run_process("sign", *sign_args(keyset), "--out", out, "--lock-timeout", "0.3", "--jobs", "1", box)
        assert r.returncode == 0 and _sig_count(out) == 2, r.stderr
        r = run_process("verify", "--keys", keyset["zone"], "--lock-timeout", "0.3", out)
        assert r.returncode == 0 and r.stdout.count(b": pass") == 2, r.stdout + r.stderr


def test_an_interrupted_rewrite_is_completed_before_the_mbox_is_read(tmp_path, monkeypatch):
    """read_mbox completes a rewrite whose journal a killed run left (one
    taken between its check and its locks too)."""
    from fastdkim import mailstore

    box = tmp_path / "r.mbox"
    box.write_bytes(b"From x@example.com Mon Jan  1 00:00:00 2029\n" + MSG + b"\n")
    import fastdkim.journal as journal

    calls = []
    # journals seen: before the locks, under them; none left by the second round
    found = iter([True, True, True, False])
    monkeypatch.setattr(mailstore, "recover_mbox", lambda path, timeout=30.0: calls.append(path))
    monkeypatch.setattr(journal, "pending_journal", lambda p: "j" if next(found) else None)
    with mailstore.read_mbox(str(box), 1.0) as fh:
        assert fh.read() == box.read_bytes()
    assert calls == [str(box), str(box)]
    found = iter(lambda: True, None)  # a journal that stays (a rewrite being completed by another run)
    with pytest.raises(fastdkim.errors.MboxLockedError, match="not completed"):
        with mailstore.read_mbox(str(box), 0.0):
            pass


def test_check_dns_offline_with_a_zone_file(keyset):
    r = run("check-dns", "--domain", "example.com", "--selector", "rsa", "--keys", keyset["zone"], "--key", keyset["rsa"])
    assert r.returncode == 0 and b"matches" in r.stdout, r.stdout + r.stderr
    r = run("check-dns", "--domain", "example.com", "--selector", "ed", "--keys", keyset["zone"], "--key", keyset["rsa"])
    assert r.returncode == 1 and b"does NOT match" in r.stdout


def test_stdin_with_an_envelope_line_and_output_onto_the_input(keyset, tmp_path):
    env = b"From joe@example.com Mon Jan  1 00:00:00 2029\n" + MSG
    r = run("sign", *sign_args(keyset), input=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(b"From joe@example.com") and r.stdout.count(b"DKIM-Signature:") == 2
    v = run("verify", "--keys", keyset["zone"], input=r.stdout)
    assert v.returncode == 0 and v.stdout.count(b": pass") == 2, v.stdout
    # `fastdkim sign X >> X` would never end: refused
    m = tmp_path / "m.eml"
    m.write_bytes(MSG)
    with open(m, "ab") as out:
        r = subprocess.run([sys.executable, "-m", "fastdkim", "sign", *map(str, sign_args(keyset)), str(m)],
                           stdout=out, stderr=subprocess.PIPE, timeout=60)
    assert r.returncode == 2 and b"standard output is the input" in r.stderr and m.read_bytes() == MSG


def test_out_as_a_link_to_the_input_directory_is_refused(keyset, tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    (d / "a.eml").write_bytes(MSG)
    (tmp_path / "alias").symlink_to(d)
    r = run("sign", *sign_args(keyset), "--out", tmp_path / "alias", "--force", d)
    assert r.returncode == 2 and b"--in-place" in r.stderr and (d / "a.eml").read_bytes() == MSG


@pytest.mark.parametrize("value", ["", ":", " : "])
def test_headers_naming_no_field_is_refused(keyset, tmp_path, value):
    m = tmp_path / "m.eml"
    m.write_bytes(MSG)
    r = run("sign", *sign_args(keyset), "--headers", value, m)
    assert r.returncode == 2 and b"--headers: no field names given" in r.stderr, r.stderr


def test_out_inside_the_input_directory_is_refused(keyset, tmp_path):
    """Signed copies inside the directory being signed would be signed again
    by the next run (and, with --force, written over inputs not yet read)."""
    d = tmp_path / "d"
    (d / "sub").mkdir(parents=True)
    (d / "a.eml").write_bytes(MSG)
    (d / "sub" / "b.eml").write_bytes(MSG)
    for out in (d / "signed", d / "sub", d / "sub" / "deeper"):
        r = run("sign", *sign_args(keyset), "--out", out, "--force", d)
        assert r.returncode == 2 and b"inside the input" in r.stderr, r.stderr
    assert sorted(str(p.relative_to(d)) for p in d.rglob("*")) == ["a.eml", "sub", "sub/b.eml"]
    assert (d / "sub" / "b.eml").read_bytes() == MSG
    r = run("sign", *sign_args(keyset), "--out", tmp_path / "dd", d)  # a sibling named alike is outside
    assert r.returncode == 0, r.stderr


def test_field_name_with_inner_space_is_not_signed(keyset, tmp_path):
    m = tmp_path / "m.eml"
    m.write_bytes(b"From: joe@example.com\nSub ject: x\n\nbody\n")
    r = run("sign", *sign_args(keyset), m)
    assert r.returncode == 1 and b"not a field name" in r.stderr


def test_device_output_needs_no_force(keyset, tmp_path):
    m = tmp_path / "m.eml"
    m.write_bytes(MSG)
    r = run_process("sign", *sign_args(keyset), "--out", "/dev/stdout", m)  # its own stdout
    assert r.returncode == 0 and r.stdout.count(b"DKIM-Signature:") == 2, r.stderr


def test_stdin_mbox_into_out_file(keyset, tmp_path):
    box = b"".join(b"From x@example.com Mon Jan  1 00:00:00 2029\n" + MSG + b"\n" for _ in range(3))
    out = tmp_path / "out.mbox"
    r = run("sign", *sign_args(keyset), "--out", out, "--jobs", "1", input=box)
    assert r.returncode == 0 and r.stdout == b"", r.stderr
    assert out.read_bytes().count(b"DKIM-Signature:") == 6


def test_pool_workers_do_not_keep_the_mbox_locked(keyset, tmp_path):
    from fastdkim.batch import MboxLock

    args = cli.build_parser().parse_args(["sign", *map(str, sign_args(keyset))])
    setup = cli._SignSetup(args)
    box = tmp_path / "l.mbox"
    box.write_bytes(b"From x\nFrom: a\n\nb\n")
    probe = ("import fcntl, sys\nf = open(sys.argv[1], 'r+b')\ntry:\n fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
             " print('free')\nexcept BlockingIOError:\n print('held')")
    pool = cli._pool(2, setup)
    try:
        with MboxLock(str(box), timeout=1):
            pool.submit(os.getpid).result()  # a worker started while the lock is held
        r = subprocess.run([sys.executable, "-c", probe, str(box)], capture_output=True, text=True, timeout=30)
        assert r.stdout.strip() == "free"
    finally:
        pool.shutdown()


# -- findings of a new user's walkthrough ----------------------------------------------------


def test_verify_with_its_output_closed_early_exits_141(keyset, tmp_path):
    """`fastdkim verify big.mbox | head -1`: the messages after the first
    are not checked, so the status is that of SIGPIPE (141), never 0."""
    from conftest import child_env

    signed = run("sign", *sign_args(keyset), input=MSG).stdout
    box = tmp_path / "big.mbox"
    # (its report is larger than a pipe holds: the command is still writing when the reader goes)
    box.write_bytes(b"".join(b"From joe@example.com Thu Jan  1 00:00:00 2026\n" + signed + b"\n" for _ in range(1500)))
    p = subprocess.Popen([sys.executable, "-m", "fastdkim", "verify", "--keys", str(keyset["zone"]), str(box)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env())
    try:
        first = p.stdout.readline()
        p.stdout.close()  # `| head -1`
        err = p.stderr.read()
        p.wait(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
    assert b" pass d=example.com " in first
    assert p.returncode == 141, (p.returncode, err)
    assert b"Traceback" not in err and b"fastdkim verify: error: standard output was closed" in err, err


class _ClosedPipe(io.RawIOBase):
    def writable(self):
        return True

    def write(self, data):
        raise BrokenPipeError(32, "Broken pipe")


@pytest.mark.parametrize("command", ["verify", "keygen"])
def test_closed_output_is_never_success(keyset, tmp_path, monkeypatch, command):
    """Any command whose standard output is closed under it: 141, said on stderr."""
    f = tmp_path / "m.eml"
    f.write_bytes(run("sign", *sign_args(keyset), input=MSG).stdout)
    argv = {"verify": ["verify", "--keys", str(keyset["zone"]), str(f)],
            "keygen": ["keygen", "--domain", "example.com", "--selector", "k", "--algorithm", "ed25519",
                       "--out", str(tmp_path)]}[command]
    err = io.StringIO()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(io.BufferedWriter(_ClosedPipe()), write_through=True))
    monkeypatch.setattr(sys, "stderr", err)
    assert cli.main(argv) == 141
    assert "fastdkim %s: error: standard output was closed" % command in err.getvalue()


@pytest.mark.parametrize("args, option", [
    (["sign", "--canonicalization", "bogus"], "--canonicalization: unknown canonicalization 'bogus'"),
    (["sign", "--headers", "fr om:to"], "--headers: invalid header field name 'fr om'"),
    (["sign", "--headers", "from:DKIM-Signature"], "--headers: DKIM-Signature cannot be listed"),
    (["keygen", "--bits", "1024"], "--bits 1024: keygen makes RSA keys of 2048 bits or more"),
    (["verify", "--keys", "missing-zone.txt"], "--keys: cannot read zone file missing-zone.txt"),
])
def test_option_errors_name_the_option(keyset, tmp_path, monkeypatch, args, option):
    """A bad option value is blamed on the option, not on the key file."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.eml").write_bytes(MSG)
    command, extra = args[0], args[1:]
    full = {"sign": ["sign", "--domain", "example.com", "--selector", "rsa", "--key", keyset["rsa"], *extra, "m.eml"],
            "keygen": ["keygen", "--domain", "example.com", "--selector", "s", *extra],
            "verify": ["verify", *extra, "m.eml"]}[command]
    r = run(*full)
    err = r.stderr.decode()
    assert r.returncode == 2 and err == "fastdkim %s: error: %s" % (command, err.split(": error: ", 1)[1]), err
    assert err.startswith("fastdkim %s: error: %s" % (command, option)), err
    assert ".pem" not in err


@pytest.mark.parametrize("args, option, problem", [
    (["demo", "--count", "0"], "--count", "must be at least 1"),
    (["demo", "--max-size", "100"], "--max-size", "must be at least 4096 bytes"),
    (["sign", "--jobs", "-1"], "--jobs", "must be 1 or more"),
    (["sign", "--jobs", "0"], "--jobs", "must be 1 or more"),
    (["sign", "--lock-timeout", "-3"], "--lock-timeout", "must be 0 or more seconds"),
    (["sign", "--expiration", "-1"], "--expiration", "must be a positive number of seconds"),
    (["verify", "--max-signatures", "0"], "--max-signatures", "must be 1 or more"),
    (["verify", "--timeout", "0"], "--timeout", "must be a positive number of seconds"),
    (["verify", "--now", "-1"], "--now", "must be a Unix time"),
    (["verify", "--ar", "a b"], "--ar", "not an authserv-id"),
    (["keygen", "--domain", "example.com", "--selector", "s", "--ttl", "-1"], "--ttl", "must be from 0 to"),
    (["recover", "--lock-timeout", "-1"], "--lock-timeout", "must be 0 or more seconds"),
    (["check-dns", "--domain", "example.com", "--selector", "s", "--timeout", "0"], "--timeout", "must be a positive"),
    (["arc-seal", "--timeout", "0"], "--timeout", "must be a positive"),
])
def test_values_out_of_range_are_reported_by_the_command(args, option, problem):
    """The command's usage and name, as for any other error argparse finds;
    never the top-level usage."""
    r = run(*args)
    err = r.stderr.decode()
    command = args[0]
    assert r.returncode == 2, err
    assert err.startswith("usage: fastdkim %s " % command), err
    assert "fastdkim %s: error: argument %s: %s" % (command, option, problem) in err, err
    assert "usage: fastdkim [-h]" not in err and "\nfastdkim: error" not in err


def test_signatures_beyond_max_signatures_show_what_they_carry(keyset, tmp_path):
    f = tmp_path / "m.eml"
    f.write_bytes(run("sign", *sign_args(keyset), input=MSG).stdout)
    r = run("verify", "--keys", keyset["zone"], "--max-signatures", "1", f)
    lines = r.stdout.decode().splitlines()
    assert r.returncode == 0 and len(lines) == 2, r.stdout
    assert " pass d=example.com s=rsa a=rsa-sha256 " in lines[0]
    assert " neutral d=example.com s=ed a=ed25519-sha256 (not evaluated: " in lines[1]
    assert "1 signatures" not in lines[1]


def test_signer_options_are_not_ignored_beside_a_policy(keyset, tmp_path):
    """--canonicalization, --headers and --expiration set the signers of
    --domain/--selector/--key; beside --policy or --opendkim-conf, which set
    their own, they are refused rather than silently ignored."""
    f = tmp_path / "m.eml"
    f.write_bytes(MSG)
    policy = _policy(tmp_path, keyset)
    r = run("sign", "--policy", policy, "--canonicalization", "simple/simple", f)
    assert r.returncode == 2 and r.stderr.decode().startswith(
        "fastdkim sign: error: --canonicalization goes with --domain/--selector/--key: --policy sets it"), r.stderr
    r = run("sign", "--policy", policy, "--headers", "from", "--expiration", "60", f)
    assert r.returncode == 2 and b"--headers, --expiration go with --domain/--selector/--key" in r.stderr
    r = run("sign", "--domain", "example.com", "--selector", "rsa", "--key", keyset["rsa"],
            "--canonicalization", "simple", "--headers", "from:to", "--expiration", "60", f)
    sig = r.stdout.split(b"\nFrom:")[0]
    assert r.returncode == 0 and b"c=simple/simple;" in sig and b" x=" in sig, r.stderr
    assert b"h=from:" in sig and b"subject" not in sig


# -- inputs that are no regular file (a FIFO, a shell's <(...)) ----------------------------


def _fastdkim_reading_pipe(args, data: bytes):
    """``fastdkim ARGS`` where the argument ``PIPE`` is a pipe (as a shell's
    ``<(cat file)`` passes it, /dev/fd/N) holding ``data``."""
    r, w = os.pipe()
    argv = [sys.executable, "-m", "fastdkim", *[("/dev/fd/%d" % r) if a == "PIPE" else str(a) for a in args]]
    proc = subprocess.Popen(argv, pass_fds=(r,), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    os.close(r)
    with os.fdopen(w, "wb") as fh:
        fh.write(data)
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def test_a_pipe_given_by_name_is_read_once(keyset, tmp_path):
    r = _fastdkim_reading_pipe(["sign", *sign_args(keyset), "PIPE"], MSG)
    assert r.returncode == 0 and r.stdout.count(b"DKIM-Signature:") == 2 and r.stdout.endswith(MSG), r.stderr
    signed = r.stdout
    v = _fastdkim_reading_pipe(["verify", "--keys", keyset["zone"], "PIPE"], signed)
    assert v.returncode == 0 and v.stdout.count(b": pass") == 2, v.stdout + v.stderr
    box = b"".join(b"From x@example.com Mon Jan  1 00:00:00 2029\n" + MSG + b"\n" for _ in range(3))
    r = _fastdkim_reading_pipe(["sign", *sign_args(keyset), "--jobs", "1", "PIPE"], box)
    assert r.returncode == 0 and r.stdout.count(b"DKIM-Signature:") == 6, r.stderr
    v = _fastdkim_reading_pipe(["verify", "--keys", keyset["zone"], "PIPE"], r.stdout)
    assert v.returncode == 0 and v.stdout.count(b": pass") == 6, v.stdout + v.stderr
    out = tmp_path / "o.eml"
    r = _fastdkim_reading_pipe(["sign", *sign_args(keyset), "--out", out, "PIPE"], MSG)
    assert r.returncode == 0 and out.read_bytes().count(b"DKIM-Signature:") == 2 and out.read_bytes().endswith(MSG)
    r = _fastdkim_reading_pipe(["sign", *sign_args(keyset), "--in-place", "PIPE"], MSG)
    assert r.returncode == 2 and b"not a regular file" in r.stderr
    outdir = tmp_path / "outdir"
    outdir.mkdir()
    r = _fastdkim_reading_pipe(["sign", *sign_args(keyset), "--out", outdir, "PIPE"], MSG)
    assert r.returncode == 2 and b"is a directory: give a file name" in r.stderr and not os.listdir(outdir)


def test_a_fifo_by_name_and_a_fifo_in_a_directory(keyset, tmp_path):
    """A FIFO named on the command line is read once (not opened twice to
    see whether it is an mbox, which would wait for ever); one inside a
    directory is no message file and is skipped."""
    import threading

    fifo = tmp_path / "f"
    os.mkfifo(fifo)

    def feed():
        with open(fifo, "wb") as fh:
            fh.write(MSG)
    t = threading.Thread(target=feed, daemon=True)
    t.start()
    r = run_process("sign", *sign_args(keyset), fifo)
    t.join(30)
    assert r.returncode == 0 and r.stdout.count(b"DKIM-Signature:") == 2, r.stderr
    d = tmp_path / "d"
    d.mkdir()
    (d / "a.eml").write_bytes(r.stdout)
    os.mkfifo(d / "zz")  # nobody ever writes to it
    v = run_process("verify", "--keys", keyset["zone"], d)
    assert v.returncode == 0 and v.stdout.count(b": pass") == 2 and b"zz" not in v.stdout + v.stderr, v.stderr
    out = tmp_path / "out"
    s = run_process("sign", *sign_args(keyset), "--out", out, "--jobs", "1", d)
    assert s.returncode == 0 and sorted(os.listdir(out)) == ["a.eml"], s.stderr
