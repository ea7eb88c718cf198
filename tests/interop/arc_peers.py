"""The ARC implementations the ARC interop tests compare: fastdkim, dkimpy
(``arc_sign``/``arc_verify``, in-process), Mail::DKIM's ARC signer and
verifier (``peer_programs/arc_mail_dkim_peer.pl``) and mailauth's
(``peer_programs/arc_mailauth_peer.js``).

Every peer seals the same way: it validates the chain of the message as it
arrived, then seals the message it is given to seal (the arrival, or the
arrival with a mailing-list footer added) with the ``cv=`` that validation
gave, as a list does.  Sealing and verifying use the ``rsa2048`` key of the
interop zone (and its ``ed25519`` key for fastdkim's Ed25519 seals, which
no peer handles: deviation A3), looked up in the Knot server and nowhere
else.
"""
from __future__ import annotations

import logging
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import fastdkim
from fastdkim.arc import ARCSealer, verify_chain

from .deviations import NO_RESULT
from .peers import PROGRAMS, DkimPy, KeySpec, Outcome, Program, find_dkimpy, find_mail_dkim, find_mailauth

DOMAIN = "interop.example"


@dataclass(frozen=True)
class SealJob:
    """Seal ``to_seal`` as a hop whose authserv-id is ``srv_id``, after
    validating ``arrival``; write the sealed message to ``dst``."""

    key: KeySpec
    srv_id: str
    arrival: Path
    to_seal: Path
    dst: Path


class ArcPeer:
    name = ""

    def __init__(self, dns: str, timeout: float = 2.0) -> None:
        self.dns = dns
        self.timeout = timeout

    def seal(self, jobs: Sequence[SealJob]) -> List[Optional[str]]:
        """``None`` per job sealed, else why not."""
        raise NotImplementedError

    def verify(self, paths: Sequence[Path]) -> List[Outcome]:
        """The chain validation result of each message."""
        raise NotImplementedError


class FastArc(ArcPeer):
    name = "fastdkim"

    def key_source(self) -> fastdkim.DNSKeySource:
        return fastdkim.DNSKeySource(nameservers=[self.dns], timeout=self.timeout)

    def seal(self, jobs: Sequence[SealJob]) -> List[Optional[str]]:
        out: List[Optional[str]] = []
        keys = self.key_source()
        for job in jobs:
            try:
                sealer = ARCSealer(DOMAIN, job.key.selector, job.key.private, authserv_id=job.srv_id, keys=keys)
                arrival = verify_chain(job.arrival.read_bytes(), keys)
                fields = sealer.seal(job.to_seal.read_bytes(), chain=arrival)
                if not fields:
                    out.append("nothing sealed: %s" % arrival.reason)
                    continue
                job.dst.write_bytes(b"".join(fields) + job.to_seal.read_bytes())
                out.append(None)
            except Exception as exc:
                out.append("%s: %s" % (type(exc).__name__, exc))
        return out

    def verify(self, paths: Sequence[Path]) -> List[Outcome]:
        keys = self.key_source()
        out = []
        for p in paths:
            r = verify_chain(p.read_bytes(), keys)
            out.append(Outcome(r.status, r.reason))
        return out


class DkimPyArc(ArcPeer):
    """dkimpy's ``arc_sign`` and ``arc_verify``, in-process; keys through
    :meth:`peers.DkimPy.txt` (its DNS plug, aimed at the Knot server)."""

    name = "dkimpy"

    def __init__(self, dns: str, program: Program, timeout: float = 2.0) -> None:
        super().__init__(dns, timeout)
        self._dns = DkimPy(dns, program, timeout)

    def _verify(self, message: bytes) -> Outcome:
        import dkim

        logger = logging.getLogger("interop.dkimpy.arc")
        logger.propagate = False
        try:
            cv, _, comment = dkim.arc_verify(message, logger=logger, dnsfunc=self._dns.txt, timeout=self.timeout)
        except dkim.DKIMException as exc:  # dkimpy raises for what it cannot parse
            return Outcome("fail", "%s: %s" % (type(exc).__name__, exc))
        if cv is None:  # deviation A1
            return Outcome(NO_RESULT, str(comment))
        return Outcome(cv.decode("ascii").lower(), str(comment))

    def seal(self, jobs: Sequence[SealJob]) -> List[Optional[str]]:
        import dkim

        out: List[Optional[str]] = []
        for job in jobs:
            try:
                cv = self._verify(job.arrival.read_bytes()).status
                # arc_sign takes cv= from the arc= result of its own Authentication-Results
                message = ("Authentication-Results: %s; arc=%s\r\n" % (job.srv_id, cv)).encode() + \
                    job.to_seal.read_bytes()
                private = job.key.seed if job.key.seed is not None else job.key.pem  # dkimpy's Ed25519 form: the seed
                fields = dkim.arc_sign(message, job.key.selector.encode(), DOMAIN.encode(), private.read_bytes(),
                                       job.srv_id.encode(), signature_algorithm=job.key.algorithm.encode(),
                                       linesep=b"\r\n")
                if not fields:
                    out.append("dkimpy sealed nothing (cv=%s)" % cv)
                    continue
                job.dst.write_bytes(b"".join(fields) + message)
                out.append(None)
            except Exception as exc:
                out.append("%s: %s" % (type(exc).__name__, exc))
        return out

    def verify(self, paths: Sequence[Path]) -> List[Outcome]:
        return [self._verify(p.read_bytes()) for p in paths]


class _DrivenArc(ArcPeer):
    """A peer program in jobs mode: jobs in, one answer line per job out."""

    script = ""

    def __init__(self, dns: str, program: Program, timeout: float = 2.0) -> None:
        super().__init__(dns, timeout)
        self.program = program
        self.version = program.version

    def run(self, lines: Sequence[str]) -> List[str]:
        if not lines:
            return []
        interpreter = self.program.command[0]
        proc = subprocess.run([interpreter, str(PROGRAMS / self.script), "--dns", self.dns],
                              input="".join(line + "\n" for line in lines), capture_output=True, text=True,
                              timeout=600, errors="replace", env=self.program.env)
        answers = proc.stdout.splitlines()
        if proc.returncode != 0 or len(answers) != len(lines):
            raise RuntimeError("%s driver failed (exit %s, %d answers for %d jobs): %s" % (
                self.name, proc.returncode, len(answers), len(lines), proc.stderr[-2000:]))
        return answers

    def seal(self, jobs: Sequence[SealJob]) -> List[Optional[str]]:
        lines = ["\t".join(["seal", j.key.algorithm, str(j.key.pem), DOMAIN, j.key.selector, j.srv_id, str(j.arrival),
                            str(j.to_seal), str(j.dst)]) for j in jobs]
        return [None if a.startswith("ok") else a.replace("\t", ": ") for a in self.run(lines)]

    def verify(self, paths: Sequence[Path]) -> List[Outcome]:
        out = []
        for a in self.run(["verify\t%s" % p for p in paths]):
            status, _, detail = a.partition("\t")
            out.append(Outcome(status, detail))
        return out


class MailDKIMArc(_DrivenArc):
    name = "mail-dkim"
    script = "arc_mail_dkim_peer.pl"


class MailauthArc(_DrivenArc):
    name = "mailauth"
    script = "arc_mailauth_peer.js"


def load_arc_peers(dns: str) -> Dict[str, Union[ArcPeer, str]]:
    """Name -> ARC peer, or -> the reason it is unavailable (naming the package)."""
    peers: Dict[str, Union[ArcPeer, str]] = {"fastdkim": FastArc(dns)}
    dkimpy = find_dkimpy()
    if isinstance(dkimpy, Program):
        try:
            import authres  # noqa: F401  (dkimpy's arc_sign needs it)
        except ImportError:
            peers["dkimpy"] = "dkimpy's ARC signing needs PyPI package authres"
        else:
            peers["dkimpy"] = DkimPyArc(dns, dkimpy)
    else:
        peers["dkimpy"] = dkimpy
    mail_dkim = find_mail_dkim()
    peers["mail-dkim"] = MailDKIMArc(dns, mail_dkim) if isinstance(mail_dkim, Program) else mail_dkim
    mailauth = find_mailauth()
    peers["mailauth"] = MailauthArc(dns, mailauth) if isinstance(mailauth, Program) else mailauth
    return peers
