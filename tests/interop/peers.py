"""The DKIM implementations the interop tests compare: fastdkim and its peers.

Each peer signs a batch of messages and verifies a batch of messages; the
external ones are spawned once per batch (jobs on standard input, one answer
line per job), not once per message.

========== ======================================= ===================== ===============================
peer       what drives it                          keys for verifying    algorithms (installed versions)
========== ======================================= ===================== ===============================
fastdkim   in-process                              the Knot server       rsa-sha256, ed25519-sha256
opendkim   ``opendkim_peer.c`` over libopendkim,   the Knot server       rsa-sha256, ed25519-sha256
           compiled by a fixture (Debian
           ``libopendkim-dev``; ``opendkim-testmsg``
           can neither choose the canonicalization
           nor ask a server on another port)
mail-dkim  ``mail_dkim_peer.pl`` over Mail::DKIM   the Knot server       rsa-sha256 (Debian 12's
           (Debian ``libmail-dkim-perl``)          (Net::DNS resolver    1.20230212 has no ed25519;
                                                   aimed at its port)    probed at run time)
dkimpy     in-process (PyPI ``dkimpy``;            the Knot server       rsa-sha256, ed25519-sha256
           ed25519 needs PyPI ``pynacl``)          (a ``dnsfunc`` like   (ed25519 only with pynacl)
                                                   its own, aimed at
                                                   its port)
========== ======================================= ===================== ===============================

No peer ever sends a query anywhere but the address it is given (always on
127.0.0.1); without one, lookups fail instead of reaching the system resolver.

Every signer is told to oversign From, To, Subject and Date (list each once
more than it occurs), the way fastdkim does by default.

Verification outcomes are normalised to ``pass``, ``fail``, ``permerror``,
``temperror``, ``none`` (no signature) or ``error`` (the driver failed).
"""
from __future__ import annotations

import base64
import logging
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

from cryptography.hazmat.primitives import serialization

import fastdkim
from fastdkim.keys import generate_private_key, public_key_record

HERE = Path(__file__).resolve().parent
RSA, ED25519 = "rsa-sha256", "ed25519-sha256"
CANONS = ("relaxed/relaxed", "simple/simple", "relaxed/simple", "simple/relaxed")
OVERSIGN = ("from", "to", "subject", "date")
PEER_NAMES = ("fastdkim", "opendkim", "mail-dkim", "dkimpy")

#: What to install for each peer (named in skip reasons).
PACKAGES = {
    "opendkim": "Debian packages libopendkim-dev and gcc (the C harness is built over libopendkim)",
    "mail-dkim": "Debian package libmail-dkim-perl",
    "dkimpy": "PyPI package dkimpy",
    "dkimpy-ed25519": "PyPI package pynacl",
}


IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")
#: Under CI a missing peer fails instead of skipping (.ci/install-peers.sh
#: installs them); FASTDKIM_INTEROP_OPTIONAL=1 turns that off.
STRICT = IN_CI and os.environ.get("FASTDKIM_INTEROP_OPTIONAL", "") in ("", "0")


def unavailable(reason: str) -> None:
    """Skip the test (under CI: fail it) because something is not installed."""
    import pytest

    if STRICT:
        pytest.fail("%s (CI installs it with .ci/install-peers.sh)" % reason, pytrace=False)
    pytest.skip(reason)


# -- keys ---------------------------------------------------------------------------------

@dataclass
class KeySpec:
    """One signing key, its files for the peers, and its published record."""

    name: str
    algorithm: str
    selector: str
    private: Any
    pem: Path  # RSA: PKCS#1 PEM; Ed25519: PKCS#8 PEM
    seed: Optional[Path]  # Ed25519 only: base64 of the 32-byte seed (dkimpy's format)
    record: str


def make_keys(workdir: Path) -> Dict[str, KeySpec]:
    """Fresh keys from fastdkim's own key generation: RSA-2048, Ed25519 and
    RSA-4096 (whose record is longer than one 255-byte character-string)."""
    workdir.mkdir(parents=True, exist_ok=True)
    keys: Dict[str, KeySpec] = {}
    for name, alg, bits in (("rsa2048", RSA, 2048), ("ed25519", ED25519, 0), ("rsa4096", RSA, 4096)):
        if alg == RSA:
            key = generate_private_key("rsa", bits)
            pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                    serialization.NoEncryption())
            seed = None
        else:
            key = generate_private_key("ed25519")
            pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
            raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                    serialization.NoEncryption())
            seed = workdir / ("%s.seed" % name)
            seed.write_bytes(base64.b64encode(raw))
        path = workdir / ("%s.pem" % name)
        path.write_bytes(pem)
        os.chmod(path, 0o600)
        keys[name] = KeySpec(name, alg, name, key, path, seed, public_key_record(key))
    return keys


# -- jobs and outcomes -------------------------------------------------------------------------

@dataclass(frozen=True)
class SignJob:
    key: KeySpec
    canon: str
    src: Path
    dst: Path
    domain: str = "interop.example"


class Outcome(NamedTuple):
    status: str
    detail: str

    def __str__(self) -> str:
        return "%s (%s)" % (self.status, self.detail)


# -- the peers ---------------------------------------------------------------------------------

class Peer:
    name = ""
    algorithms: frozenset = frozenset()

    def __init__(self, dns: str, timeout: float = 2.0) -> None:
        self.dns = dns
        self.timeout = timeout

    def with_dns(self, dns: str, timeout: Optional[float] = None) -> "Peer":
        """The same peer asking another DNS server."""
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.dns = dns
        if timeout is not None:
            clone.timeout = timeout
        return clone

    def sign(self, jobs: Sequence[SignJob]) -> List[Optional[str]]:
        """Sign every job's ``src`` into its ``dst``; ``None`` or an error per job."""
        raise NotImplementedError

    def verify(self, paths: Sequence[Path]) -> List[Outcome]:
        """The outcome for the first signature of each message."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return "<%s peer via %s>" % (self.name, self.dns)


class FastDKIM(Peer):
    name = "fastdkim"
    algorithms = frozenset({RSA, ED25519})

    def sign(self, jobs: Sequence[SignJob]) -> List[Optional[str]]:
        out: List[Optional[str]] = []
        signers: Dict[Tuple[str, str, str], fastdkim.Signer] = {}
        for job in jobs:
            try:
                k = (job.key.name, job.canon, job.domain)
                if k not in signers:
                    signers[k] = fastdkim.Signer(job.domain, job.key.selector, job.key.private, canonicalization=job.canon)
                signers[k].sign_file(job.src, job.dst, overwrite=True)
                out.append(None)
            except Exception as exc:
                out.append("%s: %s" % (type(exc).__name__, exc))
        return out

    def key_source(self) -> fastdkim.DNSKeySource:
        return fastdkim.DNSKeySource(nameservers=[self.dns], timeout=self.timeout)

    def verify(self, paths: Sequence[Path]) -> List[Outcome]:
        keys = self.key_source()
        out = []
        for p in paths:
            with open(p, "rb") as fh:
                results = fastdkim.verify(fh, keys=keys)
            out.append(Outcome(results[0].status, results[0].reason) if results else Outcome("none", "no signature"))
        return out


class _Driven(Peer):
    """A peer driven through a helper program: jobs in, one answer line per job out."""

    def command(self) -> List[str]:
        raise NotImplementedError

    def run(self, lines: Sequence[str], timeout: float = 600) -> List[str]:
        if not lines:
            return []
        proc = subprocess.run(
            self.command(), input="".join(line + "\n" for line in lines), capture_output=True,
            text=True, timeout=timeout, errors="replace",
        )
        answers = proc.stdout.splitlines()
        if proc.returncode != 0 or len(answers) != len(lines):
            raise RuntimeError(
                "%s driver failed (exit %s, %d answers for %d jobs): %s"
                % (self.name, proc.returncode, len(answers), len(lines), proc.stderr[-2000:])
            )
        return answers

    def sign(self, jobs: Sequence[SignJob]) -> List[Optional[str]]:
        lines = []
        for j in jobs:
            hc, bc = j.canon.split("/")
            lines.append("\t".join(["sign", j.key.algorithm, hc, bc, str(j.key.pem), j.domain, j.key.selector,
                                    str(j.src), str(j.dst)]))
        return [None if a == "ok" else a.partition("\t")[2] or a for a in self.run(lines)]

    def verify(self, paths: Sequence[Path]) -> List[Outcome]:
        answers = self.run(["verify\t%s" % p for p in paths])
        out = []
        for a in answers:
            status, _, detail = a.partition("\t")
            out.append(Outcome(status, detail))
        return out


class OpenDKIM(_Driven):
    name = "opendkim"
    algorithms = frozenset({RSA, ED25519})

    def __init__(self, dns: str, binary: Path, timeout: float = 2.0) -> None:
        super().__init__(dns, timeout)
        self.binary = binary

    def command(self) -> List[str]:
        return [str(self.binary), "--dns", self.dns, "--timeout", str(max(1, int(self.timeout))),
                "--oversign", ",".join(OVERSIGN)]

    @staticmethod
    def build(workdir: Path) -> Tuple[Optional[Path], str]:
        """Compile the harness; ``(path, "")`` or ``(None, why not)``."""
        header = Path("/usr/include/opendkim/dkim.h")
        cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
        if not header.exists():
            return None, "%s not found" % header
        if cc is None:
            return None, "no C compiler"
        workdir.mkdir(parents=True, exist_ok=True)
        binary = workdir / "opendkim_peer"
        proc = subprocess.run(
            [cc, "-O1", "-o", str(binary), str(HERE / "opendkim_peer.c"), "-I/usr/include/opendkim",
             "-lopendkim", "-lresolv"],
            capture_output=True, text=True, timeout=120,
        )
        if proc.returncode != 0:
            return None, "cannot build the libopendkim harness: %s" % proc.stderr[-1500:]
        return binary, ""


class MailDKIM(_Driven):
    name = "mail-dkim"

    def __init__(self, dns: str, timeout: float = 2.0) -> None:
        super().__init__(dns, timeout)
        self.algorithms = frozenset(self.run(["caps"])[0].split())

    def command(self) -> List[str]:
        return ["perl", str(HERE / "mail_dkim_peer.pl"), "--dns", self.dns,
                "--timeout", str(max(1, int(self.timeout))), "--oversign", ",".join(OVERSIGN)]

    @staticmethod
    def probe() -> str:
        """``""`` if Mail::DKIM can be loaded, else why not."""
        if shutil.which("perl") is None:
            return "perl not found"
        proc = subprocess.run(["perl", "-MMail::DKIM::Signer", "-MMail::DKIM::Verifier", "-MNet::DNS", "-e", "1"],
                              capture_output=True, text=True, timeout=60)
        return "" if proc.returncode == 0 else proc.stderr.strip().splitlines()[0]


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: List[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.INFO:
            self.messages.append(record.getMessage())


class DkimPy(Peer):
    name = "dkimpy"

    def __init__(self, dns: str, timeout: float = 2.0) -> None:
        super().__init__(dns, timeout)
        import dkim  # noqa: F401

        algs = {RSA}
        try:
            import nacl.signing  # noqa: F401

            algs.add(ED25519)
        except ImportError:
            pass
        self.algorithms = frozenset(algs)

    def txt(self, name: Union[str, bytes], timeout: float = 5) -> Optional[bytes]:
        """dkimpy's ``dnsfunc``: what its own dnspython plug does (the first TXT
        record, its strings joined; ``None`` for NXDOMAIN or a failed server;
        a timeout raised as ``DnsTimeoutError``), asked of our server only."""
        import dkim
        import dns.exception
        import dns.rdatatype
        import dns.resolver

        if isinstance(name, bytes):
            name = name.decode("ascii")
        resolver = dns.resolver.Resolver(configure=False)
        host, _, port = self.dns.rpartition(":")
        resolver.nameservers = [host]
        resolver.port = int(port)
        resolver.lifetime = resolver.timeout = min(timeout, self.timeout)
        try:
            a = resolver.resolve(name, dns.rdatatype.TXT, raise_on_no_answer=False, search=False)
            for r in a.response.answer:
                if r.rdtype == dns.rdatatype.TXT:
                    return b"".join(list(r.items)[0].strings)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoNameservers):
            pass
        except dns.exception.Timeout as e:
            raise dkim.DnsTimeoutError("dns.exception.Timeout: {0}".format(e))
        return None

    def sign(self, jobs: Sequence[SignJob]) -> List[Optional[str]]:
        import dkim

        out: List[Optional[str]] = []
        for job in jobs:
            try:
                message = job.src.read_bytes()
                if job.key.algorithm == ED25519:
                    assert job.key.seed is not None
                    priv = job.key.seed.read_bytes()
                else:
                    priv = job.key.pem.read_bytes()
                hc, bc = job.canon.split("/")
                d = dkim.DKIM(message, signature_algorithm=job.key.algorithm.encode(), linesep=b"\r\n")
                d.add_frozen([h.encode() for h in OVERSIGN])
                sig = d.sign(job.key.selector.encode(), job.domain.encode(), priv,
                             canonicalize=(hc.encode(), bc.encode()))
                job.dst.write_bytes(sig + message)
                out.append(None)
            except Exception as exc:
                out.append("%s: %s" % (type(exc).__name__, exc))
        return out

    def verify(self, paths: Sequence[Path]) -> List[Outcome]:
        import dkim

        out = []
        for p in paths:
            logger = logging.getLogger("interop.dkimpy")
            logger.propagate = False
            logger.setLevel(logging.DEBUG)
            cap = _Capture()
            logger.addHandler(cap)
            try:
                d = dkim.DKIM(p.read_bytes(), logger=logger, timeout=self.timeout)
                try:
                    ok = d.verify(dnsfunc=self.txt)
                    out.append(Outcome("pass" if ok else "fail", "; ".join(cap.messages) or "verify() returned False"))
                except dkim.DKIMException as exc:
                    # dkimpy raises for what it cannot parse; it has no permerror/temperror
                    out.append(Outcome("fail", "%s: %s" % (type(exc).__name__, exc)))
            finally:
                logger.removeHandler(cap)
        return out


# -- finding what is installed -------------------------------------------------------------------

def load_peers(dns: str, workdir: Path, timeout: float = 2.0) -> Dict[str, Union[Peer, str]]:
    """Name -> peer, or -> the reason it is unavailable (naming the package)."""
    peers: Dict[str, Union[Peer, str]] = {"fastdkim": FastDKIM(dns, timeout)}
    binary, why = OpenDKIM.build(workdir / "opendkim")
    peers["opendkim"] = OpenDKIM(dns, binary, timeout) if binary else "%s: install %s" % (why, PACKAGES["opendkim"])
    why = MailDKIM.probe()
    if why:
        peers["mail-dkim"] = "Mail::DKIM unavailable (%s): install %s" % (why, PACKAGES["mail-dkim"])
    else:
        peers["mail-dkim"] = MailDKIM(dns, timeout)
    try:
        peers["dkimpy"] = DkimPy(dns, timeout)
    except ImportError as exc:
        peers["dkimpy"] = "dkimpy unavailable (%s): install %s" % (exc, PACKAGES["dkimpy"])
    return peers
