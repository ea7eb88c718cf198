"""The DKIM implementations the interop tests compare: fastdkim and its peers.

This module is also the one place that knows how to find, build and run the
peers' programs (``peer_programs/``, each with a jobs mode for these tests and
a loop mode for the benchmarks): :func:`build_opendkim`, :func:`find_mail_dkim`,
:func:`find_mailauth` and :func:`find_dkimpy` give a :class:`Program` or the
reason the peer is unavailable.  ``benchmarks/bench_peers.py`` uses them too.

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
import json
import logging
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, FrozenSet, List, NamedTuple, Optional, Sequence, Tuple, Union

from cryptography.hazmat.primitives import serialization

import fastdkim
from fastdkim.keys import generate_private_key, public_key_record

HERE = Path(__file__).resolve().parent
#: The peers' programs, each with a jobs mode (these tests) and a loop mode (the benchmarks).
PROGRAMS = HERE / "peer_programs"
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
    "mailauth": "Node.js >= 20.18 with npm (the npm package mailauth is installed on demand)",
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


# -- the peers' programs: finding, building, running ------------------------------------------

#: The oldest Node that the pinned mailauth accepts (its "engines" field).
MAILAUTH_MIN_NODE = (20, 18, 1)
#: Where the npm package mailauth is installed on demand (git-ignored).
NODE_MODULES = PROGRAMS / "node_modules"


@dataclass(frozen=True)
class Program:
    """A peer ready to run: how to start it, what it is, what it can sign with.

    ``command`` starts the peer's program (the program itself, or its
    interpreter and script); it is empty for a peer that runs in-process
    (dkimpy).  ``env`` is the environment to start it with (``None``: this
    process's).  mailauth's program has the loop mode only.
    """

    name: str
    command: Tuple[str, ...]
    version: str
    algorithms: FrozenSet[str]
    env: Optional[Dict[str, str]] = None

    def jobs(self, *options: str) -> List[str]:
        """The command line of the jobs mode (jobs on standard input, one answer line each)."""
        return [*self.command, *options]

    def loop(self, *args: str) -> List[str]:
        """The command line of the loop mode (the benchmarks' timing protocol;
        see ``peer_programs/opendkim_peer.c``)."""
        return [*self.command, "loop", *args]


def _line(text: str, index: int) -> str:
    """One line of a program's error output (0: the first, -1: the last)."""
    lines = text.strip().splitlines()
    return lines[index] if lines else "?"


def _dpkg_version(package: str) -> Optional[str]:
    """The installed version of a Debian package, or None."""
    if shutil.which("dpkg-query") is None:
        return None
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f", "${Status}\t${Version}", package],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0 or "install ok installed" not in out.stdout:
        return None
    return out.stdout.split("\t", 1)[1].strip()


def build_opendkim(workdir: Path) -> Union[Program, str]:
    """Compile ``peer_programs/opendkim_peer.c`` over libopendkim into ``workdir``.

    Returns the program, or why it cannot be built (naming the packages to
    install).  Raises ``subprocess.TimeoutExpired`` if the compiler takes more
    than two minutes.
    """
    header = Path("/usr/include/opendkim/dkim.h")
    cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if not header.exists():
        return "%s not found: install %s" % (header, PACKAGES["opendkim"])
    if cc is None:
        return "no C compiler: install %s" % PACKAGES["opendkim"]
    workdir.mkdir(parents=True, exist_ok=True)
    binary = workdir / "opendkim_peer"
    proc = subprocess.run(
        [cc, "-O2", "-o", str(binary), str(PROGRAMS / "opendkim_peer.c"), "-I/usr/include/opendkim",
         "-lopendkim", "-lresolv", "-lm"],
        capture_output=True, text=True, timeout=120,
    )
    if proc.returncode != 0:
        return "cannot build the libopendkim harness: %s: install %s" % (proc.stderr[-1500:], PACKAGES["opendkim"])
    version = _dpkg_version("libopendkim-dev")
    return Program("opendkim", (str(binary),), "libopendkim %s" % (version or "(version unknown)"),
                   frozenset({RSA, ED25519}))


def find_mail_dkim() -> Union[Program, str]:
    """``peer_programs/mail_dkim_peer.pl`` under the perl that can load Mail::DKIM.

    Returns the program (its algorithms as the installed Mail::DKIM offers
    them), or why it is unavailable (naming the package to install).  Raises
    ``subprocess.TimeoutExpired`` if perl takes more than a minute to load it.
    """
    perl = shutil.which("perl")
    if perl is None:
        return "perl not found: install Debian package perl and %s" % PACKAGES["mail-dkim"]
    probe = ("print $Mail::DKIM::VERSION, ' ', "
             "(eval { require Mail::DKIM::Algorithm::ed25519_sha256; 1 } ? 'ed25519' : '-')")
    proc = subprocess.run([perl, "-MMail::DKIM", "-MMail::DKIM::Signer", "-MMail::DKIM::Verifier", "-MNet::DNS",
                           "-e", probe], capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        return "Mail::DKIM unavailable (%s): install %s" % (_line(proc.stderr, 0), PACKAGES["mail-dkim"])
    version, _, ed = proc.stdout.strip().partition(" ")
    algorithms = {RSA, ED25519} if ed == "ed25519" else {RSA}
    return Program("mail-dkim", (perl, str(PROGRAMS / "mail_dkim_peer.pl")), "Mail::DKIM %s" % version,
                   frozenset(algorithms))


def _version_tuple(text: str) -> Tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", text)[:3])


def find_mailauth(npm_install: bool = True) -> Union[Program, str]:
    """``peer_programs/mailauth_peer.js`` under Node, with the npm package
    mailauth pinned in ``peer_programs/package.json``.

    When mailauth is not installed yet and ``npm_install`` is true, npm
    installs it into ``peer_programs/node_modules``.  Returns the program, or
    why it is unavailable.  Raises ``subprocess.TimeoutExpired`` if Node does
    not tell its version within a minute or npm does not finish within ten.
    """
    spec = json.loads((PROGRAMS / "package.json").read_text())["dependencies"]["mailauth"]
    node = shutil.which("node")
    if node is None:
        return "Node.js is not installed (the npm package mailauth runs on Node): install %s" % PACKAGES["mailauth"]
    nv = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=60).stdout.strip()
    if _version_tuple(nv) < MAILAUTH_MIN_NODE:
        return "Node %s is older than %s, which mailauth %s needs" % (
            nv, ".".join(map(str, MAILAUTH_MIN_NODE)), spec)
    pkg = NODE_MODULES / "mailauth" / "package.json"
    if not pkg.exists():
        if not npm_install:
            return "npm package mailauth is not installed (run: npm install --prefix %s)" % PROGRAMS
        npm = shutil.which("npm")
        if npm is None:
            return "npm package mailauth is not installed and npm is missing"
        print("installing the npm package mailauth into %s ..." % NODE_MODULES, file=sys.stderr)
        res = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--no-package-lock", "--omit=dev"],
                             cwd=str(PROGRAMS), capture_output=True, text=True, timeout=600)
        if res.returncode != 0 or not pkg.exists():
            return "npm could not install mailauth: %s" % _line(res.stderr, -1)
    version = json.loads(pkg.read_text())["version"]
    return Program("mailauth", (node, str(PROGRAMS / "mailauth_peer.js")),
                   "mailauth %s on Node %s" % (version, nv.lstrip("v")), frozenset({RSA, ED25519}),
                   env=dict(os.environ, NODE_PATH=str(NODE_MODULES)))


def find_dkimpy() -> Union[Program, str]:
    """dkimpy, which runs in-process (the program's command is empty); it
    signs with ed25519-sha256 only where pynacl is installed.

    Returns the program, or why it is unavailable (naming the package).
    """
    from importlib.metadata import PackageNotFoundError, version

    try:
        import dkim  # noqa: F401  (availability probe)
    except ImportError as exc:
        return "dkimpy unavailable (%s): install %s" % (exc, PACKAGES["dkimpy"])
    try:
        text = "dkimpy " + version("dkimpy")
    except PackageNotFoundError:
        text = "dkimpy (version unknown)"
    algorithms = {RSA}
    try:
        import nacl.signing  # noqa: F401

        algorithms.add(ED25519)
        text += ", pynacl " + version("pynacl")
    except (ImportError, PackageNotFoundError):
        pass
    return Program("dkimpy", (), text, frozenset(algorithms))


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
    """A peer driven through the jobs mode of its program: jobs in, one answer line per job out."""

    def __init__(self, dns: str, program: Program, timeout: float = 2.0) -> None:
        super().__init__(dns, timeout)
        self.program = program
        self.algorithms = program.algorithms

    def command(self) -> List[str]:
        return self.program.jobs("--dns", self.dns, "--timeout", str(max(1, int(self.timeout))),
                                 "--oversign", ",".join(OVERSIGN))

    def run(self, lines: Sequence[str], timeout: float = 600) -> List[str]:
        if not lines:
            return []
        proc = subprocess.run(
            self.command(), input="".join(line + "\n" for line in lines), capture_output=True,
            text=True, timeout=timeout, errors="replace", env=self.program.env,
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
    """libopendkim through ``peer_programs/opendkim_peer.c`` (see :func:`build_opendkim`)."""

    name = "opendkim"


class MailDKIM(_Driven):
    """Mail::DKIM through ``peer_programs/mail_dkim_peer.pl`` (see :func:`find_mail_dkim`)."""

    name = "mail-dkim"


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: List[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.INFO:
            self.messages.append(record.getMessage())


class DkimPy(Peer):
    """dkimpy, in-process (see :func:`find_dkimpy`)."""

    name = "dkimpy"

    def __init__(self, dns: str, program: Program, timeout: float = 2.0) -> None:
        super().__init__(dns, timeout)
        self.algorithms = program.algorithms

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
    found = (
        (OpenDKIM, build_opendkim(workdir / "opendkim")),
        (MailDKIM, find_mail_dkim()),
        (DkimPy, find_dkimpy()),
    )
    for cls, program in found:
        peers[cls.name] = cls(dns, program, timeout) if isinstance(program, Program) else program
    return peers
