"""The other DKIM implementations the benchmark measures fastdkim against.

========== ============================================ ==============================================
peer       how it runs                                   how it gets keys without DNS
========== ============================================ ==============================================
dkimpy     in-process (PyPI ``dkimpy``; ed25519 needs    ``dnsfunc=`` of ``dkim.verify``: a function
           PyPI ``pynacl``)                              answering the key record's name only
opendkim   ``peer_programs/opendkim_loop.c`` over        ``dkim_set_key_lookup``: a callback that hands
           libopendkim (Debian ``libopendkim-dev``),     the library the record, no query is made
           compiled by the benchmark with ``cc``
mail-dkim  ``peer_programs/mail_dkim_loop.pl`` over      ``Mail::DKIM::DNS::query`` replaced by a
           Mail::DKIM (Debian ``libmail-dkim-perl``)     function answering the record's name only
mailauth   ``peer_programs/mailauth_loop.js`` over npm   the verifier's ``resolver`` option: a function
           ``mailauth`` (installed on demand into        answering the record's name only
           ``benchmarks/node_modules``; Node >= 20.18)
========== ============================================ ==============================================

External peers loop inside their own process (start-up is not timed) and
follow the protocol of ``opendkim_loop.c``: one operation whose product the
harness checks (fastdkim must verify what the peer signed; the peer must pass
what fastdkim signed) before it answers ``go`` and the timed rounds start.
A peer that is not installed is reported as skipped with the reason, never
dropped; so is a single workload a peer cannot do (Mail::DKIM without
ed25519-sha256).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from bench_timing import Timing, measure
from bench_workloads import DOMAIN, SELECTORS, KeySet

HERE = Path(__file__).resolve().parent
PROGRAMS = HERE / "peer_programs"
PEER_NAMES = ("dkimpy", "opendkim", "mail-dkim", "mailauth")
MAILAUTH_SPEC = json.loads((HERE / "package.json").read_text())["dependencies"]["mailauth"]
#: the oldest Node that the pinned mailauth accepts (its "engines" field)
MAILAUTH_MIN_NODE = (20, 18, 1)


@dataclass
class Job:
    """One peer workload: sign ``message``, or verify the signed ``message``."""

    op: str  # "sign" or "verify"
    alg: str
    canon: str
    message: bytes
    #: the h= list of fastdkim's signature of this message (peers that take an
    #: explicit list sign the same fields)
    h: Sequence[str] = ()
    headers: Sequence[str] = ()
    oversign: Sequence[str] = ()


@dataclass
class Settings:
    min_time: float
    rounds: int
    max_time: float


@dataclass
class PeerResult:
    status: str  # "ok", "skipped" or "error"
    timing: Optional[Timing] = None
    reason: str = ""
    #: a known defect of the peer's output that the check worked around
    note: str = ""


#: check(job, product) -> None if the product is right, else what is wrong.
#: ``product`` is the DKIM-Signature field (sign) or the peer's verdict (verify).
Checker = Callable[[Job, bytes], Optional[str]]


def _dpkg_status(package: str) -> Optional[str]:
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


class Peer:
    name = ""
    how_no_dns = ""

    def __init__(self) -> None:
        self.version = ""
        self.skip_reason: Optional[str] = None

    def probe(self, work: Path, keys: KeySet) -> None:
        """Find out whether the peer can run; sets ``skip_reason`` if not."""

    def run(self, job: Job, settings: Settings, check: Checker) -> PeerResult:
        raise NotImplementedError

    def repair(self, job: Job, product: bytes) -> Optional[Tuple[bytes, str]]:
        """A known, documented defect of the peer's output, undone: (product, note)."""
        return None

    def close(self) -> None:
        pass


# -- dkimpy (in-process) ---------------------------------------------------------------


class Dkimpy(Peer):
    name = "dkimpy"
    how_no_dns = "dkim.verify(dnsfunc=...) answers the key record's name from memory"

    def probe(self, work: Path, keys: KeySet) -> None:
        try:
            import dkim  # noqa: F401  (availability probe)
        except ImportError:
            self.skip_reason = "PyPI package dkimpy is not installed (pip install '.[bench]')"
            return
        from importlib.metadata import PackageNotFoundError, version

        try:
            self.version = "dkimpy " + version("dkimpy")
        except PackageNotFoundError:
            self.version = "unknown"
        try:
            import nacl  # noqa: F401

            self.nacl = True
            self.version += ", pynacl " + version("pynacl")
        except (ImportError, PackageNotFoundError):
            self.nacl = False
        self.keys = keys
        records = {(n + ".").encode(): keys.record[a].encode() for a, n in ((a, keys.name(a)) for a in keys.record)}

        def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
            return records.get(name.lower() if name.endswith(b".") else name.lower() + b".", b"")

        self.dnsfunc = dnsfunc

    def run(self, job: Job, settings: Settings, check: Checker) -> PeerResult:
        import dkim

        if job.alg == "ed25519-sha256" and not self.nacl:
            return PeerResult("skipped", reason="PyPI package pynacl is not installed (dkimpy needs it for ed25519)")
        hc, bc = (c.encode() for c in job.canon.split("/"))
        if job.op == "sign":
            key = self.keys.pem[job.alg] if job.alg == "rsa-sha256" else self.keys.seed_b64
            sel = SELECTORS[job.alg].encode()
            include = [n.encode() for n in job.h]
            msg = job.message

            def fn() -> bytes:
                return dkim.sign(msg, sel, DOMAIN.encode(), key, canonicalize=(hc, bc),
                                 signature_algorithm=job.alg.encode(), include_headers=include)
        else:
            msg = job.message
            dnsfunc = self.dnsfunc

            def fn() -> bytes:
                if not dkim.verify(msg, dnsfunc=dnsfunc):
                    raise AssertionError("dkimpy did not verify the message")
                return b"pass"

        try:
            product = fn()
        except Exception as exc:  # a peer failing is reported, not fatal
            return PeerResult("error", reason="%s: %s" % (type(exc).__name__, exc))
        problem = check(job, product)
        if problem:
            return PeerResult("error", reason=problem)
        try:
            timing, _ = measure(fn, min_time=settings.min_time, rounds=settings.rounds, max_time=settings.max_time)
        except Exception as exc:
            return PeerResult("error", reason="%s: %s" % (type(exc).__name__, exc))
        return PeerResult("ok", timing)


# -- external peers --------------------------------------------------------------------


class External(Peer):
    """A peer driven through a loop program (see ``peer_programs/opendkim_loop.c``)."""

    timeout = 300.0

    def __init__(self) -> None:
        super().__init__()
        self.work: Optional[Path] = None
        self._messages: Dict[str, Path] = {}
        self.env: Optional[Dict[str, str]] = None

    def command(self) -> List[str]:
        raise NotImplementedError

    def _setup_files(self, work: Path, keys: KeySet) -> None:
        self.work = work / self.name
        self.work.mkdir(parents=True, exist_ok=True)
        for alg in keys.pem:
            (self.work / ("%s.pem" % alg)).write_bytes(keys.pem[alg])
            (self.work / ("%s.txt" % alg)).write_text(keys.record[alg] + "\n")

    def _message_file(self, data: bytes) -> Path:
        assert self.work is not None
        digest = hashlib.sha256(data).hexdigest()[:20]
        path = self._messages.get(digest)
        if path is None:
            path = self.work / ("msg-%s.eml" % digest)
            path.write_bytes(data)
            self._messages[digest] = path
        return path

    def run(self, job: Job, settings: Settings, check: Checker) -> PeerResult:
        assert self.work is not None
        out = self.work / "product"
        if out.exists():
            out.unlink()
        args = [
            job.op, job.alg, job.canon, DOMAIN, SELECTORS[job.alg],
            str(self.work / ("%s.pem" % job.alg)), str(self.work / ("%s.txt" % job.alg)),
            str(self._message_file(job.message)), str(out),
            ",".join(job.headers) or "-", ",".join(job.oversign) or "-",
            repr(settings.min_time), str(settings.rounds), repr(settings.max_time),
        ]
        err_path = self.work / "stderr"
        with open(err_path, "w+b") as err:
            proc = subprocess.Popen(self.command() + args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=err, env=self.env, cwd=str(self.work))
            try:
                return self._drive(proc, job, out, check, err)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()

    def _drive(self, proc: subprocess.Popen, job: Job, out: Path, check: Checker, err: Any) -> PeerResult:
        assert proc.stdout is not None and proc.stdin is not None

        def stderr_text() -> str:
            err.flush()
            err.seek(0)
            text = err.read().decode("utf-8", "replace").strip()
            return text.splitlines()[-1] if text else ""

        line = proc.stdout.readline().decode("ascii", "replace")
        if not line.startswith("ready"):
            rc = proc.wait(timeout=self.timeout)
            why = stderr_text() or ("exit status %d" % rc)
            if rc == 4:  # the peer cannot do this (e.g. an algorithm it lacks)
                return PeerResult("skipped", reason=why)
            return PeerResult("error", reason=why)
        product = out.read_bytes() if out.exists() else b""
        problem = check(job, product)
        note = ""
        fixed = self.repair(job, product) if problem else None
        if fixed is not None and check(job, fixed[0]) is None:
            problem, note = None, fixed[1]
        if problem:
            proc.stdin.write(b"stop\n")
            proc.stdin.close()
            proc.wait(timeout=self.timeout)
            return PeerResult("error", reason=problem)
        proc.stdin.write(b"go\n")
        proc.stdin.flush()
        try:
            stdout, _ = proc.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            return PeerResult("error", reason="no answer within %d s" % self.timeout)
        if proc.returncode != 0:
            return PeerResult("error", reason=stderr_text() or "exit status %d" % proc.returncode)
        n, times = 0, []
        for ln in stdout.decode("ascii", "replace").splitlines():
            parts = ln.split()
            if len(parts) == 3 and parts[0] == "round":
                n = int(parts[1])
                times.append(float(parts[2]))
        if not times:
            return PeerResult("error", reason="no timings reported")
        return PeerResult("ok", Timing(n, times, float(line.split()[1])), note=note)


class OpenDKIM(External):
    name = "opendkim"
    package = "libopendkim-dev"
    how_no_dns = "dkim_set_key_lookup() callback hands libopendkim the record; no query is made"

    def probe(self, work: Path, keys: KeySet) -> None:
        version = _dpkg_status(self.package)
        header = Path("/usr/include/opendkim/dkim.h")
        if not header.exists():
            self.skip_reason = "Debian package %s is not installed (no %s)" % (self.package, header)
            return
        cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
        if cc is None:
            self.skip_reason = "no C compiler (cc) to build the libopendkim loop program (Debian package gcc)"
            return
        self._setup_files(work, keys)
        assert self.work is not None
        exe = self.work / "opendkim_loop"
        res = subprocess.run([cc, "-O2", "-o", str(exe), str(PROGRAMS / "opendkim_loop.c"), "-lopendkim", "-lm"],
                             capture_output=True, text=True)
        if res.returncode != 0:
            tail = (res.stderr.strip().splitlines() or ["?"])[-1]
            self.skip_reason = "cannot build the libopendkim loop program (%s is needed): %s" % (self.package, tail)
            return
        self.exe = exe
        self.version = "libopendkim %s" % (version or "(version unknown)")

    def command(self) -> List[str]:
        return [str(self.exe)]

    def repair(self, job: Job, product: bytes) -> Optional[Tuple[bytes, str]]:
        # libopendkim (2.11.0~beta2) computes an ed25519 signature with simple
        # header canonicalization over the field with " b=" at the end of the
        # h= line, then emits it with b= folded onto a line of its own; simple
        # canonicalization keeps folding, so the emitted field verifies nowhere.
        # Moved back, it verifies: the work timed is the right work.
        if job.alg != "ed25519-sha256" or not job.canon.startswith("simple/"):
            return None
        return (product.replace(b";\r\n\tb=", b"; b=", 1),
                "its ed25519 signatures with simple header canonicalization verify only with b= moved back "
                "onto the h= line (libopendkim folds b= after signing); timed as emitted")


class MailDKIM(External):
    name = "mail-dkim"
    package = "libmail-dkim-perl"
    how_no_dns = "Mail::DKIM::DNS::query replaced in the loop script: answers the record's name from memory"

    def probe(self, work: Path, keys: KeySet) -> None:
        perl = shutil.which("perl")
        if perl is None:
            self.skip_reason = "perl is not installed (Debian packages perl and %s)" % self.package
            return
        res = subprocess.run([perl, "-MMail::DKIM", "-MNet::DNS", "-e", "print $Mail::DKIM::VERSION"],
                             capture_output=True, text=True)
        if res.returncode != 0:
            self.skip_reason = "Debian package %s is not installed (Perl cannot load Mail::DKIM)" % self.package
            return
        self.version = "Mail::DKIM %s" % res.stdout.strip()
        self.perl = perl
        self._setup_files(work, keys)

    def command(self) -> List[str]:
        return [self.perl, str(PROGRAMS / "mail_dkim_loop.pl")]


def _version_tuple(text: str) -> tuple:
    return tuple(int(x) for x in re.findall(r"\d+", text)[:3])


class Mailauth(External):
    name = "mailauth"
    how_no_dns = "dkimVerify(resolver=...) answers the record's name from memory"

    def __init__(self, npm_install: bool = True) -> None:
        super().__init__()
        self.npm_install = npm_install

    def probe(self, work: Path, keys: KeySet) -> None:
        node = shutil.which("node")
        if node is None:
            self.skip_reason = "Node.js is not installed (the npm package mailauth runs on Node)"
            return
        nv = subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
        if _version_tuple(nv) < MAILAUTH_MIN_NODE:
            self.skip_reason = "Node %s is older than %s, which mailauth %s needs" % (
                nv, ".".join(map(str, MAILAUTH_MIN_NODE)), MAILAUTH_SPEC)
            return
        pkg = HERE / "node_modules" / "mailauth" / "package.json"
        if not pkg.exists():
            if not self.npm_install:
                self.skip_reason = "npm package mailauth is not installed (run: npm install --prefix benchmarks)"
                return
            npm = shutil.which("npm")
            if npm is None:
                self.skip_reason = "npm package mailauth is not installed and npm is missing"
                return
            print("installing the npm package mailauth into %s ..." % (HERE / "node_modules"), file=sys.stderr)
            res = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--no-package-lock", "--omit=dev"],
                                 cwd=str(HERE), capture_output=True, text=True, timeout=600)
            if res.returncode != 0 or not pkg.exists():
                tail = (res.stderr.strip().splitlines() or ["?"])[-1]
                self.skip_reason = "npm could not install mailauth: %s" % tail
                return
        self.version = "mailauth %s on Node %s" % (json.loads(pkg.read_text())["version"], nv.lstrip("v"))
        self.node = node
        self.env = dict(os.environ, NODE_PATH=str(HERE / "node_modules"))
        self._setup_files(work, keys)

    def command(self) -> List[str]:
        return [self.node, str(PROGRAMS / "mailauth_loop.js")]


def make_peers(names: Sequence[str], npm_install: bool = True) -> List[Peer]:
    table = {"dkimpy": Dkimpy, "opendkim": OpenDKIM, "mail-dkim": MailDKIM}
    out: List[Peer] = []
    for n in names:
        out.append(Mailauth(npm_install) if n == "mailauth" else table[n]())
    return out


def workdir() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix="fastdkim-bench-")
