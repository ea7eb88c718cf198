"""Receivers' tools through a real authoritative DNS server (Knot, see
:mod:`dnsserver`): DMARC record discovery and alignment (RFC 7489) with From
domains under a multi-label public suffix, ``sp=`` against ``p=``, strict
against relaxed, a DNS failure on the DMARC lookup; ``fastdkim.aio`` with an
``AsyncDNSKeySource``; and the command line's ``verify --dmarc --ar``.

The unit tests (tests/test_dmarc.py, tests/test_aio.py) run the same rules
against the suite's own small DNS server, which can drop queries on demand;
here the answers come from the server mail receivers actually ask.
"""
from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Dict, Iterator

import pytest

import fastdkim
from fastdkim import dmarc
from fastdkim.aio import AsyncDNSKeySource, AsyncVerifier
from fastdkim.authres import parse_authentication_results
from fastdkim.keys import generate_private_key, public_key_record
from fastdkim.keysources import DNSKeySource

from helpers_cli import run

from .dnsserver import KnotServer, Zone, find_knot
from .peers import unavailable

NOW = 1_800_000_000
KEY = generate_private_key("ed25519")
RSA = generate_private_key("rsa", 2048)


def _zones() -> Dict[str, Zone]:
    uk = Zone("example.co.uk", {
        "_dmarc": ("v=DMARC1; p=reject; sp=quarantine; adkim=r", 300),
        "ed._domainkey": (public_key_record(KEY), 300),
        "rsa._domainkey": (public_key_record(RSA), 300),
    })
    com = Zone("example.com", {
        "_dmarc": ("v=DMARC1; p=quarantine; adkim=s", 300),
        "ed._domainkey": (public_key_record(KEY), 300),
        "_dmarc.own": ("v=DMARC1; p=none", 300),
    })
    bare = Zone("example.org", {"ed._domainkey": (public_key_record(KEY), 300)})  # no DMARC record
    return {"example.co.uk": uk, "example.com": com, "example.org": bare}


@pytest.fixture(scope="module")
def knot(tmp_path_factory) -> Iterator[KnotServer]:
    if find_knot() is None:
        unavailable("Knot DNS (knotd, knotc) not found: install Debian package knot")
    server = KnotServer(tmp_path_factory.mktemp("receivers-dns"), _zones().values(), broken=["broken.example"])
    server.start()
    try:
        yield server
    finally:
        server.stop()


def signed(from_domain: str, d: str, selector: str = "ed", key=KEY) -> bytes:
    msg = ("From: Someone <someone@%s>\r\nTo: you@example.net\r\nSubject: hello\r\n"
           "Date: Thu, 03 Dec 2026 10:00:00 +0000\r\n\r\nHello.\r\n" % from_domain).encode()
    signer = fastdkim.Signer(d, selector, key, clock=lambda: NOW - 60)
    return signer.sign(msg) + msg


def source(knot: KnotServer) -> DNSKeySource:
    return DNSKeySource(nameservers=[knot.address], timeout=2.0)


def test_relaxed_alignment_under_a_multi_label_suffix_takes_sp(knot):
    msg = signed("mail.example.co.uk", "example.co.uk")
    keys = source(knot)
    results = fastdkim.verify(msg, keys=keys, now=NOW)
    assert [r.status for r in results] == ["pass"]
    out = dmarc.evaluate(msg, results, keys=keys)
    assert (out.status, out.from_domain, out.organizational_domain) == ("pass", "mail.example.co.uk", "example.co.uk")
    # the record came from the organizational domain, so the subdomain policy applies
    assert (out.record_domain, out.policy) == ("example.co.uk", "quarantine")


def test_the_organizational_domain_itself_takes_p(knot):
    msg = signed("example.co.uk", "example.co.uk", "rsa", RSA)
    keys = source(knot)
    out = dmarc.evaluate(msg, fastdkim.verify(msg, keys=keys, now=NOW), keys=keys)
    assert (out.status, out.policy) == ("pass", "reject")


def test_strict_alignment_refuses_a_parent_domain_signature(knot):
    msg = signed("sub.example.com", "example.com")
    keys = source(knot)
    results = fastdkim.verify(msg, keys=keys, now=NOW)
    assert [r.status for r in results] == ["pass"]
    out = dmarc.evaluate(msg, results, keys=keys)
    assert out.status == "fail" and out.policy == "quarantine"
    assert out.dkim[0].relaxed and not out.dkim[0].strict


def test_a_subdomain_record_of_its_own_is_used_first(knot):
    msg = signed("own.example.com", "example.com")
    keys = source(knot)
    out = dmarc.evaluate(msg, fastdkim.verify(msg, keys=keys, now=NOW), keys=keys)
    # relaxed by default in own.example.com's record: d=example.com aligns
    assert (out.status, out.record_domain, out.policy) == ("pass", "own.example.com", "none")


def test_no_record_anywhere_is_none(knot):
    msg = signed("mail.example.org", "example.org")
    keys = source(knot)
    out = dmarc.evaluate(msg, fastdkim.verify(msg, keys=keys, now=NOW), keys=keys)
    assert out.status == "none" and out.policy is None


def test_servfail_on_the_dmarc_lookup_is_temperror(knot):
    out = dmarc.evaluate_domain("broken.example", [], keys=source(knot))
    assert out.status == "temperror"


def test_aio_verifier_against_knot(knot):
    good = signed("example.co.uk", "example.co.uk")
    unknown = signed("example.co.uk", "example.co.uk", "missing")

    async def main():
        verifier = AsyncVerifier(keys=AsyncDNSKeySource(nameservers=[knot.address], timeout=2.0), now=NOW)
        return await asyncio.gather(*[verifier.verify(m) for m in [good] * 20 + [unknown]])

    results = asyncio.run(main())
    assert [r[0].status for r in results] == ["pass"] * 20 + ["permerror"]


def test_command_line_dmarc_and_authentication_results(knot, tmp_path: Path):
    msg = tmp_path / "m.eml"
    msg.write_bytes(signed("mail.example.co.uk", "example.co.uk"))
    r = run("verify", "--dns", knot.address, "--now", str(NOW), "--dmarc", "--json", msg)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["dmarc"]["status"] == "pass" and doc["dmarc"]["policy"] == "quarantine"
    r = run("verify", "--dns", knot.address, "--now", str(NOW), "--dmarc", "--ar", "mx.example.net", msg)
    field = parse_authentication_results(r.stdout.decode().strip())
    assert [(m.method, m.result) for m in field.results] == [("dkim", "pass"), ("dmarc", "pass")]
    assert field.results[1].get("header.from") == "mail.example.co.uk"
