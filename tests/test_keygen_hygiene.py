"""``fastdkim keygen`` writing what each ecosystem reads (dkimpy's raw
Ed25519 key, opendkim-genkey's record flags), and private key hygiene as
``opendkim-testkey`` checks it (group/other access, another owner) in
``sign``, ``check-dns`` and the policy loader; selectors and domains given
wrongly reported as such.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import warnings
from pathlib import Path

import pytest

from fastdkim import SigningPolicy, verify
from fastdkim.key_hygiene import InsecureKeyError, InsecureKeyWarning, check_key_file, key_file_problems
from fastdkim.keys import load_private_key, parse_key_record, public_key_record
from helpers_cli import run

MESSAGE = (b"From: a@example.com\r\nTo: b@example.net\r\nSubject: keys\r\n"
           b"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <k@example.com>\r\n\r\nHello.\r\n")


def _keygen(tmp_path: Path, *extra: str) -> str:
    out = run("keygen", "--domain", "example.com", "--out", tmp_path, "--format", "value", *extra)
    assert out.returncode == 0, out.stderr
    return out.stdout.decode().strip()


def _tags(record: str) -> dict:
    return {t.split("=", 1)[0].strip(): t.split("=", 1)[1].strip() for t in record.split(";") if "=" in t}


def test_dkimpy_key_format_is_read_by_dkimsign(tmp_path):
    dkimsign = shutil.which("dkimsign")
    if dkimsign is None:
        pytest.skip("dkimpy's dkimsign not installed (pip install dkimpy pynacl)")
    pytest.importorskip("nacl.signing")
    value = _keygen(tmp_path, "--selector", "ed", "--algorithm", "ed25519", "--key-format", "dkimpy")
    key_file = tmp_path / "ed._domainkey.example.com.key"
    assert len(key_file.read_bytes().strip()) == 44 and oct(key_file.stat().st_mode & 0o777) == "0o600"
    signed = subprocess.run([dkimsign, "ed", "example.com", str(key_file), "--signalg", "ed25519-sha256"],
                            input=MESSAGE, capture_output=True, check=True).stdout
    assert signed.startswith(b"DKIM-Signature:") and b"a=ed25519-sha256" in signed
    records = {"ed._domainkey.example.com": value}
    assert verify(signed, keys=records)[0].passed
    # fastdkim reads the same file
    assert public_key_record(load_private_key(str(key_file))) == value
    # the default (PKCS#8 PEM) is what dkimsign refuses for Ed25519
    _keygen(tmp_path, "--selector", "pem", "--algorithm", "ed25519")
    refused = subprocess.run([dkimsign, "pem", "example.com", str(tmp_path / "pem._domainkey.example.com.pem"),
                              "--signalg", "ed25519-sha256"], input=MESSAGE, capture_output=True)
    assert refused.returncode != 0 or not refused.stdout.startswith(b"DKIM-Signature:")


def test_rsa_dkimpy_format_is_pkcs1(tmp_path):
    _keygen(tmp_path, "--selector", "r", "--key-format", "dkimpy")
    assert (tmp_path / "r._domainkey.example.com.key").read_bytes().startswith(b"-----BEGIN RSA PRIVATE KEY-----")


def test_record_flags_match_opendkim_genkey(tmp_path):
    value = _keygen(tmp_path, "--selector", "s1", "--testing", "--service-type", "email", "--hash", "sha256",
                    "--subdomains", "no")
    mine = _tags(value)
    assert (mine["t"], mine["s"], mine["h"]) == ("y:s", "email", "sha256")
    record = parse_key_record(value)
    assert record.testing and record.strict
    genkey = shutil.which("opendkim-genkey", path="/usr/sbin:/usr/bin")
    if genkey is None:
        pytest.skip("opendkim-genkey not found: install Debian package opendkim-tools")
    subprocess.run([genkey, "-D", str(tmp_path), "-d", "example.com", "-s", "g", "-t", "-S", "-r", "-h", "sha256"],
                   check=True)
    text = (tmp_path / "g.txt").read_text()
    theirs = _tags("".join(part.split('"')[1] for part in text.split("\n") if '"' in part))
    for tag in ("v", "k", "t", "s", "h"):
        assert mine[tag] == theirs[tag], tag
    plain = _tags(_keygen(tmp_path, "--selector", "s2"))
    assert set(plain) == {"v", "k", "p"}


def test_selector_holding_domainkey_is_refused(tmp_path):
    for args in (("keygen", "--domain", "example.com", "--selector", "s1._domainkey", "--out", tmp_path),
                 ("check-dns", "--domain", "example.com", "--selector", "s1._domainkey", "--keys", tmp_path / "z"),
                 ("sign", "--domain", "example.com", "--selector", "s1._domainkey", "--key", tmp_path / "k",
                  tmp_path / "m")):
        out = run(*args)
        assert out.returncode != 0
        assert b"holds _domainkey" in out.stderr and b"--selector s1" in out.stderr, out.stderr
    assert not list(tmp_path.iterdir())


def test_invalid_domain_is_a_domain_problem(tmp_path):
    _keygen(tmp_path, "--selector", "s1")
    key = tmp_path / "s1._domainkey.example.com.pem"
    msg = tmp_path / "m.eml"
    msg.write_bytes(MESSAGE)
    out = run("sign", "--domain", "bad..example", "--selector", "s1", "--key", key, msg)
    assert out.returncode != 0
    assert b"--domain" in out.stderr and b"not a valid domain" in out.stderr
    assert str(key).encode() not in out.stderr
    out = run("keygen", "--domain", "-bad-.example", "--selector", "s1", "--out", tmp_path)
    assert out.returncode != 0 and b"--domain" in out.stderr


@pytest.fixture
def key_files(tmp_path):
    _keygen(tmp_path, "--selector", "s1")
    key = tmp_path / "s1._domainkey.example.com.pem"
    zone = tmp_path / "s1._domainkey.example.com.txt"
    msg = tmp_path / "m.eml"
    msg.write_bytes(MESSAGE)
    return key, zone, msg


def test_private_key_is_quiet(key_files):
    key, zone, msg = key_files
    assert key_file_problems(key) == []
    out = run("sign", "--domain", "example.com", "--selector", "s1", "--key", key, msg)
    assert out.returncode == 0 and b"not secure" not in out.stderr
    out = run("check-dns", "--domain", "example.com", "--selector", "s1", "--keys", zone, "--key", key)
    assert out.returncode == 0, out.stdout


def test_readable_key_warned_or_refused(key_files, tmp_path):
    key, zone, msg = key_files
    os.chmod(key, 0o644)
    (problem,) = key_file_problems(key)
    assert "readable by group and others (mode 0644)" in problem
    out = run("sign", "--domain", "example.com", "--selector", "s1", "--key", key, msg)
    assert out.returncode == 0 and out.stdout.startswith(b"DKIM-Signature:")
    assert b"warning: private key not secure" in out.stderr
    out = run("sign", "--refuse-insecure-keys", "--domain", "example.com", "--selector", "s1", "--key", key, msg)
    assert out.returncode != 0 and b"not secure" in out.stderr and not out.stdout
    out = run("check-dns", "--domain", "example.com", "--selector", "s1", "--keys", zone, "--key", key)
    assert out.returncode == 1 and b"ERROR: private key not secure" in out.stdout
    out = run("check-dns", "--refuse-insecure-keys", "--domain", "example.com", "--selector", "s1", "--keys", zone,
              "--key", key)
    assert out.returncode != 0 and b"not secure" in out.stderr
    os.chmod(key, 0o620)
    assert "writable by group" in key_file_problems(key)[0]
    # the policy loader
    policy = tmp_path / "p.toml"
    policy.write_text('[domains."example.com"]\nkeys = [{ selector = "s1", key = "%s" }]\n' % key.name)
    with pytest.warns(InsecureKeyWarning, match="not secure"):
        SigningPolicy.from_file(str(policy))
    with pytest.raises(InsecureKeyError):
        SigningPolicy.from_file(str(policy), refuse_insecure_keys=True)
    out = run("sign", "--policy", policy, msg)
    assert out.returncode == 0 and b"not secure" in out.stderr
    os.chmod(key, 0o600)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        SigningPolicy.from_file(str(policy), refuse_insecure_keys=True)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="changing a file's owner needs root")
def test_foreign_owner(key_files):
    key, zone, msg = key_files
    os.chown(key, 1, -1)
    (problem,) = key_file_problems(key)
    assert "owned by uid 1" in problem
    with pytest.raises(InsecureKeyError):
        check_key_file(key, refuse=True)
    out = run("check-dns", "--domain", "example.com", "--selector", "s1", "--keys", zone, "--key", key)
    assert out.returncode == 1 and b"owned by uid 1" in out.stdout


def test_opendkim_testkey_agrees(key_files, tmp_path):
    """opendkim-testkey finds "unsafe permissions" in the same file, and
    none in the file fastdkim finds private."""
    testkey = shutil.which("opendkim-testkey", path="/usr/sbin:/usr/bin")
    if testkey is None:
        pytest.skip("opendkim-testkey not found: install Debian package opendkim-tools")
    key, zone, _ = key_files
    safe = tmp_path / "safe"
    safe.mkdir(mode=0o700)
    os.chmod(tmp_path, 0o700)
    k = safe / "s1.pem"
    shutil.copy(key, k)
    os.chmod(k, 0o600)

    def says(path: Path) -> str:
        """What opendkim-testkey says about the key, up to its DNS query
        (its key check comes first; the query itself is not waited for)."""
        proc = subprocess.Popen([testkey, "-x", str(tmp_path / "none.conf"), "-d", "example.com", "-s", "s1",
                                 "-k", str(path), "-vvv"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)
        lines = []
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.append(line)
                if "checking key" in line:
                    break
        finally:
            proc.kill()
            proc.wait()
        return "".join(lines)

    (tmp_path / "none.conf").write_text("Nameservers 127.0.0.1\n")
    before = says(k)
    os.chmod(k, 0o644)
    after = says(k)
    assert "unsafe permissions" in after, after
    assert "unsafe permissions" not in before, before
    assert key_file_problems(k) and not key_file_problems(key)
