"""Tampering, judged by every verifier.

Each signer signs one message with two To fields, two Received fields and an
unsigned Comments field (rsa-sha256 with relaxed/relaxed and simple/simple,
and ed25519-sha256 relaxed/relaxed where the signer has it).  Then:

* a changed body byte, a changed signed header (Subject), an added From
  field (above the original; every signer oversigns From), and the two
  signed To fields swapped (bottom-up selection of repeated fields, RFC 6376
  section 5.4.2, then pairs each h= entry with the other instance) must make
  every verifier, fastdkim and the peers, report ``fail``;
* a changed header that no signer signed (Comments, Received) must not:
  every verifier reports ``pass``.

No peer deviates here.  One does elsewhere: with From signed once (not
oversigned), an extra From added above it leaves the signature valid under
RFC 6376 section 5.4.2 (bottom-up selection picks the signed one), and
fastdkim, OpenDKIM and Mail::DKIM say ``pass``; dkimpy says ``fail``, since
it hashes one more From than h= lists (deviation D5).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Dict, List, Tuple

import pytest

import fastdkim
from fastdkim.message import read_message
from fastdkim.tags import parse_tag_list, strip_fws

from .messages import DOMAIN
from .peers import ED25519, PEER_NAMES, RSA, Peer, SignJob

BASE = (
    b"Received: from mx2.example.net by mx1.interop.example; Tue, 01 Jan 2030 10:00:02 +0000\r\n"
    b"Received: from client.example.net by mx2.example.net; Tue, 01 Jan 2030 10:00:01 +0000\r\n"
    b"From: Alice <alice@interop.example>\r\n"
    b"To: Bob <bob@example.org>\r\n"
    b"To: Carol <carol@example.org>\r\n"
    b"Subject: quarterly figures\r\n"
    b"Date: Tue, 01 Jan 2030 10:00:00 +0000\r\n"
    b"Message-ID: <tamper@interop.example>\r\n"
    b"Comments: not signed by anyone\r\n"
    b"\r\n"
    b"Revenue: 1000 EUR\r\n"
    b"Costs:    900 EUR\r\n"
)


def _replace_once(data: bytes, old: bytes, new: bytes) -> bytes:
    assert data.count(old) == 1, old
    return data.replace(old, new)


def _swap_to(data: bytes) -> bytes:
    a, b = b"To: Bob <bob@example.org>\r\n", b"To: Carol <carol@example.org>\r\n"
    return _replace_once(data, a + b, b + a)


#: name -> (change, verdict every verifier must give)
TAMPERING: Dict[str, Tuple[Callable[[bytes], bytes], str]] = {
    "body-byte": (lambda d: _replace_once(d, b"1000 EUR", b"9000 EUR"), "fail"),
    "signed-header": (lambda d: _replace_once(d, b"Subject: quarterly figures", b"Subject: quarterly fixtures"), "fail"),
    "added-from": (lambda d: b"From: Mallory <mallory@evil.example>\r\n" + d, "fail"),
    "reordered-to": (_swap_to, "fail"),
    "unsigned-comments": (lambda d: _replace_once(d, b"not signed by anyone", b"changed in transit"), "pass"),
    "unsigned-received": (lambda d: _replace_once(d, b"by mx1.interop.example", b"by relay.example.net"), "pass"),
    "untouched": (lambda d: d, "pass"),
}

SIGNINGS = [(RSA, "relaxed/relaxed"), (RSA, "simple/simple"), (ED25519, "relaxed/relaxed")]


@pytest.fixture(scope="module")
def tampered(peer_table, keys, interop_dir) -> Dict[str, List[Tuple[str, str, str, Path]]]:
    """signer -> [(algorithm/canon, tampering, expected verdict, path)]."""
    work = interop_dir / "tamper"
    work.mkdir(exist_ok=True)
    src = work / "base.eml"
    src.write_bytes(BASE)
    out: Dict[str, List[Tuple[str, str, str, Path]]] = {}
    for name, signer in peer_table.items():
        if not isinstance(signer, Peer):
            continue
        jobs = [SignJob(keys["rsa2048" if alg == RSA else "ed25519"], canon, src,
                        work / ("%s.%s.%s.eml" % (name, alg, canon.replace("/", "-"))))
                for alg, canon in SIGNINGS if alg in signer.algorithms]
        errors = signer.sign(jobs)
        assert errors == [None] * len(jobs), errors
        items = []
        for job in jobs:
            signed = job.dst.read_bytes()
            _check_signed_fields(name, signed)
            for t, (change, verdict) in TAMPERING.items():
                p = work / ("%s.%s" % (job.dst.stem, t))
                p.write_bytes(change(signed))
                items.append(("%s %s" % (job.key.algorithm, job.canon), t, verdict, p))
        out[name] = items
    return out


def _check_signed_fields(signer: str, signed: bytes) -> None:
    """The premises: both To instances signed, From oversigned, Comments and
    Received not signed."""
    pm = read_message(signed)
    raw = next(r for n, r in pm.fields if n == b"dkim-signature")
    h = [strip_fws(n).lower() for n in parse_tag_list(raw[raw.index(b":") + 1:])["h"].split(b":")]
    assert h.count(b"to") >= 2 and h.count(b"from") >= 2, (signer, h)
    assert b"comments" not in h and b"received" not in h, (signer, h)


@pytest.mark.parametrize("verifier", PEER_NAMES)
@pytest.mark.parametrize("signer", PEER_NAMES)
def test_tampering(signer, verifier, peer, tampered):
    peer(signer)
    v = peer(verifier)
    items = [i for i in tampered[signer] if i[0].split()[0] in v.algorithms]
    outcomes = v.verify([p for *_, p in items])
    wrong = ["%s %s: %s, expected %s" % (sig, t, o, verdict)
             for (sig, t, verdict, _), o in zip(items, outcomes) if o.status != verdict]
    assert not wrong, "\n".join(wrong)


#: What each verifier reports for a From field added above a signature
#: that signed From once (not oversigned).  RFC 6376 section 5.4.2 selects
#: the bottom-most From, the one signed, so the hash still matches (that is
#: why signers oversign); but readers show the added one.  dkimpy hashes one
#: extra From and fails it; fastdkim fails any field RFC 5322 allows once that
#: the message has more of than h= lists (section 8.15; README, policy).
ADDED_FROM_NOT_OVERSIGNED = {"fastdkim": "fail", "opendkim": "pass", "mail-dkim": "pass", "dkimpy": "fail"}


@pytest.mark.parametrize("verifier", PEER_NAMES)
def test_added_from_without_oversigning(verifier, peer, keys, interop_dir):
    v = peer(verifier)
    signer = fastdkim.Signer(DOMAIN, "rsa2048", keys["rsa2048"].private, oversign=())
    signed = signer.sign_message(BASE)
    raw = next(r for n, r in read_message(signed).fields if n == b"dkim-signature")
    h = [strip_fws(n).lower() for n in parse_tag_list(raw[raw.index(b":") + 1:])["h"].split(b":")]
    assert h.count(b"from") == 1, h
    work = interop_dir / "tamper"
    work.mkdir(exist_ok=True)
    plain, added = work / "no-oversign.eml", work / "no-oversign.added-from.eml"
    plain.write_bytes(signed)
    added.write_bytes(b"From: Mallory <mallory@evil.example>\r\n" + signed)
    got = [o.status for o in v.verify([plain, added])]
    assert got == ["pass", ADDED_FROM_NOT_OVERSIGNED[verifier]], v.verify([plain, added])
