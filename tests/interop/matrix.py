"""The interop matrix: who signs, who verifies, how many pass.

Rows are signers, columns verifiers, cells ``passed/total``.  Every signer
signs every message of :func:`messages.message_set` with every algorithm it
supports (RSA-2048 for rsa-sha256) and every canonicalization, plus the 20 MB
message once (rsa-sha256, relaxed/relaxed); every verifier then checks every
signature made with an algorithm it supports, fetching keys from a Knot
server on 127.0.0.1.

Run it alone (it starts and stops its own DNS server)::

    python tests/interop/matrix.py

The pytest run (``tests/interop/test_matrix.py``) fills the same matrix and
prints it at the end of the session.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

if __package__ in (None, ""):  # run as a script: make fastdkim and this package importable
    _root = Path(__file__).resolve().parents[2]
    sys.path[:0] = [str(_root / "src"), str(_root / "tests")]
    __package__ = "interop"  # noqa: A001

from .deviations import expected
from .dnsserver import KnotServer, Zone
from .messages import DOMAIN, big_message, message_set
from .peers import CANONS, ED25519, PEER_NAMES, RSA, KeySpec, Outcome, Peer, SignJob, load_peers, make_keys

#: Which key signs for each algorithm in the matrix.
MATRIX_KEYS = {RSA: "rsa2048", ED25519: "ed25519"}
BIG = "big-20MB"
SERVFAIL_ZONE = "servfail.example"
SHORT_TTL = 30


def build_zone(keys: Mapping[str, KeySpec]) -> Zone:
    """The test zone: every key's record at its selector, and the faults.

    ``revoked`` has an empty ``p=``; ``twokeys`` two DKIM records;
    ``notdkim`` one TXT record that is not a key record; ``ttl`` the RSA-2048
    record with a short TTL (changed by the cache tests); nothing exists at
    ``missing`` (NXDOMAIN).
    """
    records: Dict[str, Tuple[Union[str, List[str]], int]] = {}
    for k in keys.values():
        records["%s._domainkey" % k.selector] = (k.record, 3600)
    records["revoked._domainkey"] = ("v=DKIM1; k=rsa; p=", 3600)
    records["twokeys._domainkey"] = ([keys["rsa2048"].record, keys["rsa4096"].record], 3600)
    records["notdkim._domainkey"] = ("v=spf1 ip4:192.0.2.0/24 -all", 3600)
    records["ttl._domainkey"] = (keys["rsa2048"].record, SHORT_TTL)
    return Zone(DOMAIN, records)


def start_dns(workdir: Path, keys: Mapping[str, KeySpec]) -> KnotServer:
    return KnotServer(workdir, [build_zone(keys)], broken=[SERVFAIL_ZONE]).start()


@dataclass(frozen=True)
class Signed:
    signer: str
    message: str
    algorithm: str
    canon: str
    path: Path
    error: Optional[str]

    @property
    def label(self) -> str:
        return "%s %s %s by %s" % (self.message, self.algorithm, self.canon, self.signer)


def write_messages(workdir: Path, with_big: bool = True) -> Dict[str, Path]:
    workdir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, data in message_set().items():
        p = workdir / ("%s.eml" % name)
        p.write_bytes(data)
        paths[name] = p
    if with_big:
        paths[BIG] = big_message(workdir / ("%s.eml" % BIG))
    return paths


def sign_corpus(peer: Peer, keys: Mapping[str, KeySpec], messages: Mapping[str, Path], outdir: Path) -> List[Signed]:
    """Sign every message with every algorithm and canonicalization ``peer``
    supports; the big message once (rsa-sha256, relaxed/relaxed)."""
    outdir.mkdir(parents=True, exist_ok=True)
    jobs: List[SignJob] = []
    meta: List[Tuple[str, str, str]] = []
    for name, src in messages.items():
        for alg in (RSA, ED25519):
            if alg not in peer.algorithms:
                continue
            for canon in CANONS:
                if name == BIG and (alg, canon) != (RSA, "relaxed/relaxed"):
                    continue
                dst = outdir / ("%s.%s.%s.eml" % (name, alg, canon.replace("/", "-")))
                jobs.append(SignJob(keys[MATRIX_KEYS[alg]], canon, src, dst))
                meta.append((name, alg, canon))
    errors = peer.sign(jobs)
    return [Signed(peer.name, n, a, c, j.dst, e) for (n, a, c), j, e in zip(meta, jobs, errors)]


def verify_corpus(verifier: Peer, signed: Sequence[Signed]) -> List[Tuple[Signed, Outcome]]:
    """Verify what ``verifier`` can (algorithms it supports); items whose
    signing failed count as failures."""
    todo = [s for s in signed if s.algorithm in verifier.algorithms]
    ok = [s for s in todo if s.error is None]
    outcomes = dict(zip([s.path for s in ok], verifier.verify([s.path for s in ok])))
    return [(s, outcomes[s.path] if s.error is None else Outcome("error", "signing failed: %s" % s.error))
            for s in todo]


@dataclass
class Matrix:
    """passed/total per (signer, verifier); a string instead of counts for
    a peer that is unavailable."""

    peers: Sequence[str] = PEER_NAMES
    cells: Dict[Tuple[str, str], Tuple[int, int]] = field(default_factory=dict)
    #: (signer, verifier) -> deviation id -> how many outcomes it explains
    deviations: Dict[Tuple[str, str], Dict[str, int]] = field(default_factory=dict)
    #: (signer, verifier) -> outcomes that matched no expectation
    unexpected: Dict[Tuple[str, str], int] = field(default_factory=dict)
    missing: Dict[str, str] = field(default_factory=dict)
    algorithms: Dict[str, Sequence[str]] = field(default_factory=dict)

    def record(self, signer: str, verifier: str, results: Iterable[Tuple[Signed, Outcome]]) -> List[str]:
        """Count the outcomes; return a line for each one that is not what
        :func:`deviations.expected` allows."""
        results = list(results)
        self.cells[(signer, verifier)] = (sum(1 for _, o in results if o.status == "pass"), len(results))
        devs: Dict[str, int] = {}
        problems = []
        for s, o in results:
            ok, why = expected(signer, verifier, s.message, s.algorithm, s.canon)
            if o.status not in ok:
                problems.append("%s, verified by %s: %s; expected %s%s"
                                % (s.label, verifier, o, "/".join(sorted(ok)), " (%s)" % why if why else ""))
            elif o.status != "pass":
                key = why.split(":")[0]
                devs[key] = devs.get(key, 0) + 1
        self.deviations[(signer, verifier)] = devs
        self.unexpected[(signer, verifier)] = len(problems)
        return problems

    def format(self) -> str:
        width = max(12, max(len(p) for p in self.peers) + 2)
        head = "signer \\ verifier"
        first = max(len(head), width) + 2
        lines = ["DKIM interop matrix (rows: signer, columns: verifier; cells: passed/total)",
                 head.ljust(first) + "".join(p.rjust(width) for p in self.peers)]
        for s in self.peers:
            row = s.ljust(first)
            for v in self.peers:
                if s in self.missing or v in self.missing:
                    cell = "n/a"
                elif (s, v) in self.cells:
                    p, t = self.cells[(s, v)]
                    cell = "%d/%d" % (p, t)
                else:
                    cell = "-"
                row += cell.rjust(width)
            lines.append(row)
        if self.algorithms:
            lines.append("algorithms: " + "; ".join("%s %s" % (p, ", ".join(sorted(a)))
                                                   for p, a in self.algorithms.items()))
        lines.append("canonicalizations: %s; a cell counts the signatures made with algorithms both sides support"
                     % ", ".join(CANONS))
        notes = []
        for (s, v), devs in sorted(self.deviations.items()):
            if devs:
                notes.append("  %s -> %s: %s" % (s, v, ", ".join("%s x%d" % kv for kv in sorted(devs.items()))))
        if notes:
            lines.append("not passing, as documented for the peers (D1-D6 in tests/interop/deviations.py):")
            lines.extend(notes)
        bad = {k: n for k, n in self.unexpected.items() if n}
        lines.append("unexpected outcomes: %s" % (", ".join("%s->%s %d" % (s, v, n) for (s, v), n in sorted(bad.items()))
                                                  if bad else "none"))
        for p, why in self.missing.items():
            lines.append("n/a %s: %s" % (p, why))
        return "\n".join(lines)

    @property
    def as_expected(self) -> bool:
        return not any(self.unexpected.values())


def main(argv: Optional[Sequence[str]] = None) -> int:
    import argparse
    import tempfile
    import time

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--no-big", action="store_true", help="leave out the 20 MB message")
    ap.add_argument("-q", "--quiet", action="store_true", help="do not list unexpected outcomes")
    args = ap.parse_args(argv)
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="fastdkim-interop-") as tmp:
        work = Path(tmp)
        keys = make_keys(work / "keys")
        with start_dns(work / "dns", keys) as server:
            found = load_peers(server.address, work / "build")
            peers = {n: p for n, p in found.items() if isinstance(p, Peer)}
            matrix = Matrix(missing={n: p for n, p in found.items() if isinstance(p, str)},
                            algorithms={n: sorted(p.algorithms) for n, p in peers.items()})
            messages = write_messages(work / "messages", with_big=not args.no_big)
            corpora = {n: sign_corpus(p, keys, messages, work / "signed" / n) for n, p in peers.items()}
            failures = []
            for s in peers:
                for v, verifier in peers.items():
                    failures += matrix.record(s, v, verify_corpus(verifier, corpora[s]))
    print(matrix.format())
    if failures and not args.quiet:
        print("\n".join(failures))
    print("(%.1f s)" % (time.monotonic() - t0))
    return 0 if matrix.as_expected else 1


if __name__ == "__main__":
    sys.exit(main())
