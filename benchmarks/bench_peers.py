"""The other DKIM implementations the benchmark measures fastdkim against.

Finding, building and starting each peer is the job of the one peer harness,
``tests/interop/peers.py``, which the interop tests use too; its programs are in
``tests/interop/peer_programs/``, each with a loop mode for the benchmark.
This module drives them and times them.

========== ============================================ ==============================================
peer       how it runs                                   how it gets keys without DNS
========== ============================================ ==============================================
dkimpy     in-process (PyPI ``dkimpy``; ed25519 needs    ``dnsfunc=`` of ``dkim.verify``: a function
           PyPI ``pynacl``)                              answering the key record's name only
opendkim   ``opendkim_peer.c loop`` over libopendkim     ``dkim_set_key_lookup``: a callback that hands
           (Debian ``libopendkim-dev``), compiled by     the library the record, no query is made
           the harness with ``cc``
mail-dkim  ``mail_dkim_peer.pl loop`` over Mail::DKIM    ``Mail::DKIM::DNS::query`` replaced by a
           (Debian ``libmail-dkim-perl``)                function answering the record's name only
mailauth   ``mailauth_peer.js loop`` over npm            the verifier's ``resolver`` option: a function
           ``mailauth`` (installed on demand into        answering the record's name only
           ``tests/interop/peer_programs/node_modules``;
           Node >= 20.18)
========== ============================================ ==============================================

External peers loop inside their own process (start-up is not timed) and
follow the loop protocol of ``opendkim_peer.c``: one operation whose product
the harness checks (fastdkim must verify what the peer signed; the peer must
pass what fastdkim signed) before it answers ``go`` and the timed rounds
start.  A peer that is not installed is reported as skipped with the reason,
never dropped; so is a single workload a peer cannot do (Mail::DKIM without
ed25519-sha256).

Run alone, it checks and times each peer on a 3 KB message (sign and verify,
both algorithms, relaxed/relaxed) beside fastdkim::

    python benchmarks/bench_peers.py [--peers opendkim,mail-dkim] [--no-npm-install]
"""
from __future__ import annotations

import argparse
import hashlib
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if (ROOT / "src" / "fastdkim").is_dir() and str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))
for _p in (HERE, ROOT / "tests"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from interop import peers as harness  # noqa: E402  (the one peer harness)

from bench_timing import Timing, measure  # noqa: E402
from bench_workloads import DOMAIN, SELECTORS, KeySet  # noqa: E402

PEER_NAMES = ("dkimpy", "opendkim", "mail-dkim", "mailauth")


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


def job_for(op: str, alg: str, canon: str, message: bytes, fd_sig: bytes) -> Job:
    """The peer job for ``message`` that fastdkim signed with ``fd_sig``: the
    peers sign the fields fastdkim signs by default (``h=``, the default and
    oversigned names)."""
    from fastdkim.signing import DEFAULT_HEADERS, DEFAULT_OVERSIGN

    m = re.search(rb"[; \t\r\n]h=([^;]*);", fd_sig)
    if m is None:
        raise ValueError("no h= tag in %r" % fd_sig[:80])
    h = [x.strip().decode() for x in re.sub(rb"\s+", b"", m.group(1)).split(b":")]
    return Job(op, alg, canon, message, h=h, headers=DEFAULT_HEADERS, oversign=DEFAULT_OVERSIGN)


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


def checker(verifier: Any) -> Checker:
    """The check of a peer's first product: fastdkim (``verifier``, a
    ``fastdkim.Verifier`` that has the keys) verifies what the peer signed,
    with the requested ``a=`` and ``c=``; a verifying peer must say ``pass``."""

    def check(job: Job, product: bytes) -> Optional[str]:
        if job.op == "verify":
            return None if product.strip() == b"pass" else "the peer did not pass the message: %r" % product[:80]
        if not product.startswith(b"DKIM-Signature:"):
            return "no DKIM-Signature field produced (got %r)" % product[:60]
        if not product.endswith(b"\r\n"):
            product += b"\r\n"
        res = verifier.verify(product + job.message)
        if len(res) != 1 or res[0].status != "pass":
            return "fastdkim does not verify the peer's signature: %s" % (res[0] if res else "no result")
        if res[0].algorithm != job.alg or res[0].canonicalization != job.canon:
            return "the peer signed with a=%s c=%s, not a=%s c=%s" % (
                res[0].algorithm, res[0].canonicalization, job.alg, job.canon)
        return None

    return check


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
        found = harness.find_dkimpy()
        if isinstance(found, str):
            self.skip_reason = found
            return
        self.version = found.version
        self.algorithms = found.algorithms
        self.keys = keys
        records = {(n + ".").encode(): keys.record[a].encode() for a, n in ((a, keys.name(a)) for a in keys.record)}

        def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
            return records.get(name.lower() if name.endswith(b".") else name.lower() + b".", b"")

        self.dnsfunc = dnsfunc

    def run(self, job: Job, settings: Settings, check: Checker) -> PeerResult:
        import dkim

        if job.alg not in self.algorithms:
            return PeerResult("skipped", reason="dkimpy cannot use %s: install %s"
                              % (job.alg, harness.PACKAGES["dkimpy-ed25519"]))
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
    """A peer driven through the loop mode of its program (the protocol is
    described at the top of ``tests/interop/peer_programs/opendkim_peer.c``)."""

    timeout = 300.0

    def __init__(self) -> None:
        super().__init__()
        self.work: Optional[Path] = None
        self._messages: Dict[str, Path] = {}
        self.program: Optional[harness.Program] = None

    def find(self, work: Path) -> Union[harness.Program, str]:
        """The peer's program (from the shared harness), or why it is unavailable."""
        raise NotImplementedError

    def probe(self, work: Path, keys: KeySet) -> None:
        found = self.find(work)
        if isinstance(found, str):
            self.skip_reason = found
            return
        self.program = found
        self.version = found.version
        self._setup_files(work, keys)

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
        assert self.work is not None and self.program is not None
        if job.alg not in self.program.algorithms:
            return PeerResult("skipped", reason="%s has no %s" % (self.version, job.alg))
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
            proc = subprocess.Popen(self.program.loop(*args), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=err, env=self.program.env, cwd=str(self.work))
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
    how_no_dns = "dkim_set_key_lookup() callback hands libopendkim the record; no query is made"

    def find(self, work: Path) -> Union[harness.Program, str]:
        return harness.build_opendkim(work / "opendkim-build")

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
    how_no_dns = "Mail::DKIM::DNS::query replaced in the loop script: answers the record's name from memory"

    def find(self, work: Path) -> Union[harness.Program, str]:
        return harness.find_mail_dkim()


class Mailauth(External):
    name = "mailauth"
    how_no_dns = "dkimVerify(resolver=...) answers the record's name from memory"

    def __init__(self, npm_install: bool = True) -> None:
        super().__init__()
        self.npm_install = npm_install

    def find(self, work: Path) -> Union[harness.Program, str]:
        return harness.find_mailauth(self.npm_install)


def make_peers(names: Sequence[str], npm_install: bool = True) -> List[Peer]:
    table = {"dkimpy": Dkimpy, "opendkim": OpenDKIM, "mail-dkim": MailDKIM}
    out: List[Peer] = []
    for n in names:
        out.append(Mailauth(npm_install) if n == "mailauth" else table[n]())
    return out


def workdir() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix="fastdkim-bench-")


# -- run alone ----------------------------------------------------------------------------


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Check and time each peer on a 3 KB message beside fastdkim; print the rates."""
    ap = argparse.ArgumentParser(description="Check and time each DKIM peer on a 3 KB message (sign and verify, "
                                 "rsa-sha256 and ed25519-sha256, relaxed/relaxed) beside fastdkim.  The full "
                                 "comparison is benchmarks/run.py.")
    ap.add_argument("--peers", default=",".join(PEER_NAMES),
                    help="comma-separated peers, or 'none' (default: %(default)s)")
    ap.add_argument("--no-npm-install", action="store_true",
                    help="do not install mailauth with npm when it is missing (it is then skipped)")
    ap.add_argument("--min-time", type=float, default=0.025, help="seconds per timed round (default 0.025)")
    ap.add_argument("--rounds", type=int, default=3, help="timed rounds (default 3)")
    args = ap.parse_args(argv)
    names = [] if args.peers.strip() in ("", "none") else [n.strip() for n in args.peers.split(",") if n.strip()]
    unknown = [n for n in names if n not in PEER_NAMES]
    if unknown:
        ap.error("unknown peer(s) %s; choose from %s" % (", ".join(unknown), ", ".join(PEER_NAMES)))

    import fastdkim

    import bench_workloads as W

    keys = W.make_keys()
    verifier = fastdkim.Verifier(keys=keys.mapping())
    check = checker(verifier)
    settings = Settings(args.min_time, args.rounds, max(1.0, 10 * args.min_time * args.rounds))
    message = W.small_message(3 * W.KB)
    peers = make_peers(names, not args.no_npm_install)
    failed = 0
    with workdir() as tmp:
        for peer in peers:
            peer.probe(Path(tmp), keys)
            print("%-9s %s" % (peer.name, ("skipped: " + peer.skip_reason) if peer.skip_reason
                                 else "ready (%s)" % peer.version), flush=True)
        print("\n%-28s %12s %s" % ("3 KB, relaxed/relaxed", "fastdkim", " ".join("%12s" % p.name for p in peers)))
        for alg in W.ALGORITHMS:
            signer = fastdkim.Signer(W.DOMAIN, W.SELECTORS[alg], keys.private[alg])
            sig = signer.sign(message)
            for op, subject in (("sign", message), ("verify", sig + message)):
                if op == "sign":
                    t, _ = measure(lambda: signer.sign(message), min_time=settings.min_time,
                                   rounds=settings.rounds, max_time=settings.max_time)
                else:
                    t, _ = measure(lambda: verifier.verify(subject), min_time=settings.min_time,
                                   rounds=settings.rounds, max_time=settings.max_time)
                cells = []
                for peer in peers:
                    if peer.skip_reason:
                        cells.append("skip")
                        continue
                    res = peer.run(job_for(op, alg, "relaxed/relaxed", subject, sig), settings, check)
                    if res.status == "ok" and res.timing is not None:
                        cells.append("%.0f/s%s" % (res.timing.rate(), "*" if res.note else ""))
                    else:
                        cells.append("skip" if res.status == "skipped" else "ERROR")
                        if res.status == "error":
                            failed += 1
                        print("  %s %s %s: %s: %s" % (peer.name, op, alg, res.status, res.reason), file=sys.stderr)
                print("%-28s %12s %s" % ("%s %s" % (op, alg), "%.0f/s" % t.rate(),
                                         " ".join("%12s" % c for c in cells)), flush=True)
        for peer in peers:
            peer.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
