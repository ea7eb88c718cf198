"""The interop matrix, both directions: each of fastdkim, OpenDKIM, Mail::DKIM
and dkimpy signs the message set (:mod:`messages`) with each algorithm it
supports and each of the four canonicalizations, and each verifies what the
others (and it) signed, keys coming from the Knot server.

Every outcome must be ``pass``, except the documented peer deviations of
:mod:`deviations`, where the peer's observed behaviour is asserted and
fastdkim is held to the RFC result:

* D1 OpenDKIM cannot sign, and reports a syntax error (permerror) for, a
  relaxed body that does not end in CRLF;
* D2 OpenDKIM's ed25519 signatures with simple header canonicalization are
  made over a differently folded DKIM-Signature field than it emits, so they
  fail everywhere (pinned down by ``test_opendkim_ed25519_simple_header_folding``);
* D3 Mail::DKIM adds no CRLF to a simple body that lacks one (RFC 6376
  section 3.4.3 says to), so its bh= differs from everybody else's;
* D4 Mail::DKIM 1.20230212 has no ed25519-sha256 (reported as permerror).

The 20 MB message is signed once per signer (rsa-sha256, relaxed/relaxed)
and verified once per verifier.
"""
from __future__ import annotations

import pytest

from fastdkim.message import read_message
from fastdkim.tags import parse_tag_list, strip_fws

from .deviations import signing_error
from .matrix import BIG, verify_corpus
from .peers import ED25519, PACKAGES, PEER_NAMES, RSA, Peer, SignJob, unavailable

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _signature_tags(path):
    with open(path, "rb") as fh:
        pm = read_message(fh.read(1 << 16))
    raw = next(r for n, r in pm.fields if n == b"dkim-signature")
    return parse_tag_list(raw[raw.index(b":") + 1:])


@pytest.mark.parametrize("signer", PEER_NAMES)
def test_signing(signer, corpus):
    """Every signer signs every job, except where a deviation says it cannot."""
    problems = []
    for s in corpus(signer):
        documented = signing_error(signer, s.message, s.algorithm, s.canon)
        if s.error is None and documented:
            problems.append("%s: signed, but documented to fail (%s)" % (s.label, documented))
        elif s.error is not None and not (documented and documented in s.error):
            problems.append("%s: %s" % (s.label, s.error))
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("signer", PEER_NAMES)
def test_signers_sign_repeated_and_oversign(signer, corpus):
    """Both To instances are signed, and From is oversigned (listed once more
    than it occurs), by every signer as configured."""
    s = next(x for x in corpus(signer) if x.message == "repeated-headers" and x.error is None)
    names = [strip_fws(n).lower() for n in _signature_tags(s.path)["h"].split(b":")]
    assert names.count(b"to") >= 2, names
    assert names.count(b"from") == 2, names


def test_peer_algorithms(peer):
    """The algorithms each peer offers, as found (see the peers table)."""
    assert peer("fastdkim").algorithms == {RSA, ED25519}
    assert peer("opendkim").algorithms == {RSA, ED25519}
    d = peer("dkimpy")
    if ED25519 not in d.algorithms:
        unavailable("dkimpy cannot use ed25519-sha256: install %s" % PACKAGES["dkimpy-ed25519"])
    assert RSA in peer("mail-dkim").algorithms


@pytest.mark.parametrize("verifier", PEER_NAMES)
@pytest.mark.parametrize("signer", PEER_NAMES)
def test_matrix(signer, verifier, peer, corpus, matrix):
    v = peer(verifier)
    results = verify_corpus(v, corpus(signer))
    problems = matrix.record(signer, verifier, results)
    assert results
    assert any(s.message == BIG for s, _ in results), "the 20 MB message is part of every cell"
    assert not problems, "\n".join(problems)


def test_mail_dkim_reports_ed25519_unsupported(peer, corpus):
    """D4: a Mail::DKIM without ed25519 reports such a signature as invalid."""
    m = peer("mail-dkim")
    if ED25519 in m.algorithms:
        pytest.skip("this Mail::DKIM supports ed25519-sha256; the matrix covers it")
    ed = [s for s in corpus("fastdkim") if s.algorithm == ED25519 and s.message == "plain"]
    outcomes = m.verify([s.path for s in ed])
    assert outcomes and all(o.status == "permerror" and "unsupported algorithm" in o.detail for o in outcomes), outcomes


@pytest.mark.parametrize("signer", PEER_NAMES)
def test_rsa4096_record_in_several_strings(signer, peer, peer_table, keys, dns_server, message_paths, interop_dir):
    """An RSA-4096 key record is served as several character-strings; every
    verifier joins them (signed by each signer, verified by every peer)."""
    strings = dns_server.txt_strings("rsa4096._domainkey.interop.example.")
    assert len(strings) == 1 and len(strings[0]) > 2 and all(len(x) <= 255 for x in strings[0])
    assert b"".join(strings[0]).decode() == keys["rsa4096"].record
    s = peer(signer)
    out = interop_dir / "rsa4096" / signer
    out.mkdir(parents=True, exist_ok=True)
    jobs = [SignJob(keys["rsa4096"], c, message_paths["plain"], out / ("plain.%s.eml" % c.replace("/", "-")))
            for c in ("relaxed/relaxed", "simple/simple")]
    assert s.sign(jobs) == [None, None]
    verifiers = [v for v in peer_table.values() if isinstance(v, Peer)]
    for v in verifiers:
        outcomes = v.verify([j.dst for j in jobs])
        assert [o.status for o in outcomes] == ["pass", "pass"], (v.name, outcomes)


def test_opendkim_ed25519_simple_header_folding(peer, peer_table, corpus, interop_dir):
    """D2: where OpenDKIM's ed25519 simple-header signature fails, it fails
    with every verifier (fastdkim included), and moving `` b=`` back onto the
    h= line, where OpenDKIM had it when it signed, makes it verify with every
    verifier; where it passes, it passes everywhere."""
    peer("opendkim")
    verifiers = [v for v in peer_table.values() if isinstance(v, Peer) and ED25519 in v.algorithms]
    items = [s for s in corpus("opendkim")
             if s.algorithm == ED25519 and s.canon.startswith("simple/") and s.error is None]
    assert items
    verdicts = {v.name: [o.status for o in v.verify([s.path for s in items])] for v in verifiers}
    broken = []
    for i, s in enumerate(items):
        seen = {name: vs[i] for name, vs in verdicts.items()}
        assert len(set(seen.values())) == 1, (s.label, seen)
        if seen["fastdkim"] == "fail":
            broken.append(s)
    assert broken, "D2 no longer happens: drop it from deviations.py"
    outdir = interop_dir / "d2"
    outdir.mkdir(exist_ok=True)
    repaired = []
    for s in broken:
        data = s.path.read_bytes()
        head, sep, rest = data.partition(b"\r\n\r\n")
        fixed = head.replace(b";\r\n\tb=", b"; b=", 1)
        assert fixed != head, s.label
        p = outdir / s.path.name
        p.write_bytes(fixed + sep + rest)
        repaired.append(p)
    for v in verifiers:
        assert [o.status for o in v.verify(repaired)] == ["pass"] * len(repaired), v.name
