"""``--keys`` and :func:`fastdkim.keysources.zone_file_key_source` on the
files people have: the ``.txt`` records Debian's ``opendkim-genkey`` writes
(relative names, no TTL, no ``$ORIGIN``), and a real zone file (``$ORIGIN``,
``$TTL``, an SOA, records without TTL, ``$INCLUDE`` of opendkim-genkey's
output) that Knot loads and serves identically.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from fastdkim import Signer, verify
from fastdkim.errors import KeyLookupError
from fastdkim.keysources import DNSKeySource, zone_file_key_source
from helpers_cli import run
from interop.dnsserver import KnotServer, Zone, find_knot

MESSAGE = (b"From: a@example.com\r\nTo: b@example.net\r\nSubject: zone files\r\n"
           b"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <z@example.com>\r\n\r\nHello.\r\n")


def genkey(directory: Path, domain: str, selector: str, *options: str) -> Path:
    """Run ``opendkim-genkey``: the path of its ``.txt`` output."""
    tool = shutil.which("opendkim-genkey", path="/usr/sbin:/usr/bin:/sbin:/bin")
    if tool is None:
        pytest.skip("opendkim-genkey not found: install Debian package opendkim-tools")
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run([tool, "-D", str(directory), "-d", domain, "-s", selector, *options], check=True)
    return directory / ("%s.txt" % selector)


def signed(domain: str, selector: str, private: Path) -> bytes:
    return Signer(domain, selector, str(private)).sign(MESSAGE) + MESSAGE


@pytest.mark.parametrize("options", [(), ("-b", "2048", "-h", "sha256", "-t", "-r", "-S")],
                         ids=["default", "all-options"])
def test_opendkim_genkey_txt(tmp_path, options):
    txt = genkey(tmp_path, "example.com", "s1", *options)
    source = zone_file_key_source(str(txt))
    (record,) = source.lookup("s1._domainkey.example.com")
    assert record.startswith(b"v=DKIM1;") and b"p=MII" in record
    msg = tmp_path / "m.eml"
    msg.write_bytes(signed("example.com", "s1", tmp_path / "s1.private"))
    result = run("verify", "--keys", txt, msg)
    assert result.returncode == 0, result.stderr


def test_concatenated_genkey_files(tmp_path):
    a = genkey(tmp_path / "a", "example.com", "s1")
    b = genkey(tmp_path / "b", "example.org", "mail")
    both = tmp_path / "keys.txt"
    both.write_text(a.read_text() + b.read_text())
    source = zone_file_key_source(str(both))
    assert source.lookup("s1._domainkey.example.com") == zone_file_key_source(str(a)).lookup(
        "s1._domainkey.example.com")
    assert source.lookup("mail._domainkey.example.org") and not source.lookup("mail._domainkey.example.com")
    assert verify(signed("example.org", "mail", tmp_path / "b" / "mail.private"), keys=source)[0].passed


def test_explicit_origin(tmp_path):
    f = tmp_path / "z.txt"
    f.write_text('sel._domainkey TXT "v=DKIM1; p=abc"\n')
    assert zone_file_key_source(str(f), origin="example.net").lookup("sel._domainkey.example.net") == \
        [b"v=DKIM1; p=abc"]
    assert zone_file_key_source(str(f)).lookup("sel._domainkey") == [b"v=DKIM1; p=abc"]  # the root, as before
    with pytest.raises(KeyLookupError, match="origin"):
        zone_file_key_source(str(f), origin="bad..name")


def test_syntax_error_names_file_and_line(tmp_path):
    f = tmp_path / "broken.zone"
    f.write_text('$ORIGIN example.com.\n$TTL 60\na TXT "x"\nb TXT ( "y"\n')
    with pytest.raises(KeyLookupError, match=r"broken.zone.*unbalanced"):
        zone_file_key_source(str(f))
    assert run("verify", "--keys", f, tmp_path / "none.eml").returncode != 0


class _FixedZone(Zone):
    """A zone whose file is the given text, as an administrator wrote it."""

    def __init__(self, origin: str, text: str) -> None:
        super().__init__(origin)
        self._text = text

    def text(self) -> str:
        return self._text


def test_real_zone_file_loaded_by_knot(tmp_path):
    if find_knot() is None:
        pytest.skip("Knot DNS (knotd, knotc) not found: install Debian package knot")
    s1 = genkey(tmp_path / "keys", "example.com", "s1")
    genkey(tmp_path / "keys", "example.com", "s2", "-t", "-S")
    s2_text = (tmp_path / "keys" / "s2.txt").read_text()
    zone_text = (
        "; example.com, as a name server holds it\n"
        "$ORIGIN example.com.\n"
        "$TTL 1h\n"
        "@\tIN\tSOA\tns1 hostmaster (\n"
        "\t\t2024010101 ; serial\n"
        "\t\t3600 600 86400 60 )\n"
        "\tIN\tNS\tns1\n"
        "ns1\tIN\tA\t127.0.0.1\n"
        "www\t300\tIN\tA\t127.0.0.1\n"
        "@\tTXT\t\"v=spf1 -all\"\n"
        "$INCLUDE %s\n"          # opendkim-genkey's file, by reference
        "%s"                     # and pasted in
        "_dmarc\tTXT\t\"v=DMARC1; p=none\"\n" % (s1, s2_text))
    zone_file = tmp_path / "example.com.zone"
    zone_file.write_text(zone_text)
    local = zone_file_key_source(str(zone_file))
    with KnotServer(tmp_path / "knot", [_FixedZone("example.com", zone_text)]) as server:
        dns = DNSKeySource(nameservers=[server.address], timeout=2)
        for name in ("s1._domainkey.example.com", "s2._domainkey.example.com", "_dmarc.example.com",
                     "example.com"):
            assert local.lookup(name) == dns.lookup(name), name
        for selector in ("s1", "s2"):
            message = signed("example.com", selector, tmp_path / "keys" / ("%s.private" % selector))
            assert verify(message, keys=dns)[0].passed
            assert verify(message, keys=local)[0].passed
            path = tmp_path / ("%s.eml" % selector)
            path.write_bytes(message)
            assert run("verify", "--keys", zone_file, path).returncode == 0
            assert run("verify", "--dns", server.address, path).returncode == 0
