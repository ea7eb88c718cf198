"""ARC (RFC 8617) both ways between fastdkim, dkimpy, Mail::DKIM and mailauth,
over the local Knot server.

Each sealer builds two chains from one DKIM-signed message: one hop, and
three hops where the second (a mailing list) validates the chain as the
message arrives, adds a footer (which breaks the DKIM signature and the
first ARC-Message-Signature) and seals with the ``cv=`` it found.  Every
verifier, fastdkim and the peers, then validates each chain, and the chains
with a signed header changed after sealing.  fastdkim is held to RFC 8617;
a peer's result is asserted equal to fastdkim's except for the deviations
recorded in :mod:`deviations` (A1 and after), each asserted as the peer's
observed behaviour.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

import fastdkim
from fastdkim import _core
from fastdkim.arc import verify_chain
from fastdkim.arc_chain import AAR, AMS, AS, Chain
from fastdkim.message import read_message

from .arc_peers import DOMAIN, ArcPeer, FastArc, SealJob, load_arc_peers
from .deviations import arc_expected
from .peers import KeySpec, unavailable

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

ARC_PEERS = ("fastdkim", "dkimpy", "mail-dkim", "mailauth")
ORIGINAL = (
    b"From: Alice <alice@interop.example>\r\n"
    b"To: list@lists.interop.example\r\n"
    b"Subject: ARC across implementations\r\n"
    b"Date: Tue, 01 Jan 2030 10:00:00 +0000\r\n"
    b"Message-ID: <arc-interop@interop.example>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=us-ascii\r\n"
    b"\r\n"
    b"Hello list,\r\n"
    b"a message that travels through three hops.\r\n"
)
FOOTER = b"-- \r\nYou are subscribed to list@lists.interop.example\r\n"
SRV_IDS = ("mx.origin.interop.example", "lists.interop.example", "mx.final.interop.example")


@pytest.fixture(scope="module")
def arc_peer(dns_server) -> Callable[[str], ArcPeer]:
    table = load_arc_peers(dns_server.address)

    def get(name: str) -> ArcPeer:
        p = table[name]
        if isinstance(p, str):
            unavailable(p)
        assert isinstance(p, ArcPeer)
        return p

    return get


@pytest.fixture(scope="module")
def arc_dir(interop_dir) -> Path:
    path = interop_dir / "arc"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture(scope="module")
def original(arc_dir, keys) -> Path:
    """The message, DKIM-signed by its author's domain (fastdkim, rsa2048)."""
    key = keys["rsa2048"]
    path = arc_dir / "original.eml"
    path.write_bytes(fastdkim.Signer(DOMAIN, key.selector, key.private).sign(ORIGINAL) + ORIGINAL)
    return path


def _seal(peer: ArcPeer, key: KeySpec, hop: int, arrival: Path, to_seal: Path, dst: Path) -> Path:
    error = peer.seal([SealJob(key, SRV_IDS[hop], arrival, to_seal, dst)])[0]
    assert error is None, "%s could not seal hop %d: %s" % (peer.name, hop + 1, error)
    return dst


@pytest.fixture(scope="module")
def chains(arc_peer, keys, original, arc_dir) -> Callable[[str], Dict[str, Path]]:
    """``chains(sealer)``: that sealer's chains (one hop, three hops with a
    footer, and each with its Subject changed afterwards), built on first use."""
    cache: Dict[str, Dict[str, Path]] = {}

    def get(name: str) -> Dict[str, Path]:
        if name not in cache:
            peer = arc_peer(name)
            key = keys["rsa2048"]
            d = arc_dir / name
            d.mkdir(exist_ok=True)
            one = _seal(peer, key, 0, original, original, d / "hop1.eml")
            footed = d / "hop1-footer.eml"
            footed.write_bytes(one.read_bytes() + FOOTER)
            two = _seal(peer, key, 1, one, footed, d / "hop2.eml")
            three = _seal(peer, key, 2, two, two, d / "hop3.eml")
            # a list that validates after adding its footer: the first AMS
            # fails, so it seals cv=fail (over its own set alone)
            failed = _seal(peer, key, 1, footed, footed, d / "hop2-cv-fail.eml")
            out = {"1-hop": one, "3-hops": three, "2-hops-cv-fail": failed}
            for label in ("1-hop", "3-hops"):
                tampered = d / ("%s-tampered.eml" % label)
                data = out[label].read_bytes()
                assert data.count(b"Subject: ARC across implementations") == 1
                tampered.write_bytes(data.replace(b"Subject: ARC across", b"Subject: ARC around"))
                out[label + "-tampered"] = tampered
            cache[name] = out
        return cache[name]

    return get


CASES = ("1-hop", "3-hops", "1-hop-tampered", "3-hops-tampered", "2-hops-cv-fail")


@pytest.mark.parametrize("sealer", ARC_PEERS)
def test_fastdkim_validates_the_peers_chains(sealer, chains, dns_server, keys):
    """fastdkim's own verdicts, by the RFC: untouched chains pass (three hops
    with the oldest passing AMS at i=2, as the footer broke the first),
    tampered ones fail."""
    paths = chains(sealer)
    spec = keys
    keys = FastArc(dns_server.address).key_source()
    one = verify_chain(paths["1-hop"].read_bytes(), keys)
    assert (one.status, one.instances, one.oldest_pass) == ("pass", 1, 1), one.reason
    three = verify_chain(paths["3-hops"].read_bytes(), keys)
    assert (three.status, three.instances) == ("pass", 3), three.reason
    assert three.oldest_pass == 2
    assert [s.seal_status for s in three.sets] == ["pass"] * 3
    assert fastdkim.verify(paths["3-hops"].read_bytes(), keys=keys)[0].status == "fail"  # the footer
    for case in ("1-hop-tampered", "3-hops-tampered"):
        r = verify_chain(paths[case].read_bytes(), keys)
        assert r.status == "fail" and "ARC-Message-Signature i=" in r.reason, (case, r.reason)
    r = verify_chain(paths["2-hops-cv-fail"].read_bytes(), keys)
    assert r.status == "fail" and "cv=fail" in r.reason
    # nothing more is sealed on it
    assert FastArc(dns_server.address).seal([SealJob(
        spec["rsa2048"], SRV_IDS[2], paths["2-hops-cv-fail"], paths["2-hops-cv-fail"],
        paths["2-hops-cv-fail"].with_suffix(".more"))])[0] is not None


@pytest.mark.parametrize("verifier", ARC_PEERS)
@pytest.mark.parametrize("sealer", ARC_PEERS)
def test_verifiers_agree_with_fastdkim(sealer, verifier, chains, arc_peer, dns_server):
    paths = chains(sealer)
    v = arc_peer(verifier)
    got = v.verify([paths[c] for c in CASES])
    keys = FastArc(dns_server.address).key_source()
    problems: List[Tuple[str, str, str]] = []
    for case, outcome in zip(CASES, got):
        ours = verify_chain(paths[case].read_bytes(), keys).status
        allowed, why = arc_expected(sealer, verifier, case, ours)
        if outcome.status not in allowed:
            problems.append((case, "%s says %s, expected %s%s" % (
                verifier, outcome, "/".join(sorted(allowed)), " (%s)" % why if why else ""), ours))
    assert not problems, problems


def test_the_peers_seal_what_they_should(chains):
    """Each sealer wrote cv=none, then cv=pass twice (the list validated on
    arrival, before its footer)."""
    pattern = {"1-hop": [b"cv=none"], "3-hops": [b"cv=pass", b"cv=pass", b"cv=none"],
               "2-hops-cv-fail": [b"cv=fail", b"cv=none"]}
    for name in ARC_PEERS:
        try:
            paths = chains(name)
        except pytest.skip.Exception:
            continue
        for label, cvs in pattern.items():
            head = paths[label].read_bytes().split(b"\r\n\r\n", 1)[0]
            seals = [f for f in _fields(head) if f.lower().startswith(b"arc-seal:")]
            found = [next(cv for cv in (b"cv=none", b"cv=pass", b"cv=fail") if cv in s.replace(b" ", b""))
                     for s in seals]
            assert found == cvs, (name, label, found)


def _fields(head: bytes) -> List[bytes]:
    out: List[bytes] = []
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and out:
            out[-1] += b"\r\n" + line
        else:
            out.append(line)
    return out


def _seal_covers(message: bytes, public_key: Any) -> str:
    """What the most recent ARC-Seal of ``message`` verifies over: ``own
    set`` (RFC 8617 section 5.1.2, for cv=fail), ``all sets`` (section
    5.1.1), or ``neither``."""
    chain = Chain(read_message(message).fields)
    top = chain.instances[chain.top].found
    tags, unsigned = _core.core.parse_signature(top[AS][0])
    b = _core.core.b64decode(tags["b"])
    below: List[bytes] = []
    for n in range(1, chain.top):
        below += [chain.instances[n].found[name][0] for name in (AAR, AMS, AS)]
    for label, covered in (("own set", [top[AAR][0], top[AMS][0]]), ("all sets", below + [top[AAR][0], top[AMS][0]])):
        try:
            public_key.verify(b, _core.core.canonical_headers(covered, unsigned, True), padding.PKCS1v15(),
                              hashes.SHA256())
        except InvalidSignature:
            continue
        return label
    return "neither"


@pytest.mark.parametrize("sealer", ARC_PEERS)
def test_cv_fail_seals_cover_their_own_set(sealer, chains, keys):
    """RFC 8617 section 5.1.2: a seal that records cv=fail signs its own set
    alone (validators need not check it, the chain having failed; this looks
    at what each sealer wrote).  Every sealer here does."""
    covers = _seal_covers(chains(sealer)["2-hops-cv-fail"].read_bytes(), keys["rsa2048"].private.public_key())
    assert covers == "own set"
    assert _seal_covers(chains(sealer)["3-hops"].read_bytes(), keys["rsa2048"].private.public_key()) == "all sets"


@pytest.mark.parametrize("verifier", ARC_PEERS)
def test_ed25519_chains(verifier, arc_peer, keys, arc_dir, dns_server):
    """fastdkim's Ed25519 seals (two hops): fastdkim validates them; what
    each peer says is deviation A3."""
    ed = keys["ed25519"]
    src = arc_dir / "ed25519-original.eml"
    src.write_bytes(fastdkim.Signer(DOMAIN, ed.selector, ed.private).sign(ORIGINAL) + ORIGINAL)
    fast = FastArc(dns_server.address)
    one = _seal(fast, ed, 0, src, src, arc_dir / "ed25519-hop1.eml")
    two = _seal(fast, ed, 1, one, one, arc_dir / "ed25519-hop2.eml")
    ours = verify_chain(two.read_bytes(), fast.key_source())
    assert (ours.status, ours.instances) == ("pass", 2), ours.reason
    [outcome] = arc_peer(verifier).verify([two])
    allowed, why = arc_expected("fastdkim", verifier, "ed25519-2-hops", ours.status)
    assert outcome.status in allowed, "%s says %s (%s)" % (verifier, outcome, why)
