"""Milters behind the same Postfix: messages per second and the milter's own
CPU time per message.

Run from the project root, as root (Postfix's master runs as root)::

    python benchmarks/bench_milter.py [--messages 2000] [--clients 10] [--sizes 3,100]
        [--rounds 3] [--milters none,fastdkim,opendkim,dkimpy-milter] [--json milter.json]

For each message size (KB) and each milter, a Postfix instance of its own on
127.0.0.1 (the tests' harness, ``tests/milter_harness.py``: own
config_directory and queue, delivery into a local Maildir) takes the
messages from ``--clients`` concurrent SMTP clients (one SMTP session per
message, as mail submission goes), with ``smtpd_milters`` pointing at:

* ``none``: no milter, the ceiling;
* ``null``: ``benchmarks/null_milter.py``, a milter on libmilter (pymilter)
  that takes every event a signer needs and does nothing: the floor of any
  signing milter, the MTA's own cost of the milter protocol;
* ``fastdkim``: ``python -m fastdkim.milter`` with a policy of one RSA-2048 key;
* ``opendkim``: OpenDKIM's ``opendkim`` (Debian ``opendkim``), the same key
  (``Domain``/``Selector``/``KeyFile``);
* ``dkimpy-milter``: ``dkimpy-milter`` (PyPI), the same key; looked up on
  ``PATH`` or given with ``--dkimpy-milter PATH``.

Every milter signs with relaxed/relaxed canonicalization; mail from
127.0.0.1 is internal to all.  The rate is the messages over the time from
the first submission until the last is delivered; the milter's CPU time
(user + system, from ``/proc/PID/stat``, over the same interval) is divided
by the messages.  The milters run in turn, ``--rounds`` times over (so that
a machine busy with other work for a while weighs on all of them alike); the
table gives each one's best round (highest rate, least CPU time), the JSON
every round.  One delivered message of each run is checked: it carries
a signature that verifies.  A ``memory`` line gives the fastdkim milter's
resident memory per idle connection (1000 connections, negotiated) and the
growth while 100 connections are each in the middle of a message.

Nothing passes or fails on speed; the table is printed and written as JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import smtplib
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if (ROOT / "src" / "fastdkim").is_dir():
    sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

import fastdkim  # noqa: E402
from fastdkim import mailgen  # noqa: E402

from milter_harness import MilterProcess, Postfix, free_port, make_keys  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` and its reaped children."""
    fields = Path("/proc/%d/stat" % pid).read_text().rsplit(")", 1)[1].split()
    return sum(int(v) for v in fields[11:15]) / TICK


def rss_bytes(pid: int) -> int:
    for line in Path("/proc/%d/status" % pid).read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS for %d" % pid)


class Milter:
    """A milter process to benchmark: its socket (Postfix form) and pid."""

    name = "none"
    pid: Optional[int] = None
    postfix_socket = ""

    def stop(self) -> None:
        pass


class FastdkimMilter(Milter):
    name = "fastdkim"

    def __init__(self, work: Path, keys: Any) -> None:
        self.proc = MilterProcess(work, ["--policy", keys.policy_rsa, "--log-level", "warning"])
        self.pid = self.proc.proc.pid
        self.postfix_socket = "inet:127.0.0.1:%d" % self.proc.port

    def stop(self) -> None:
        self.proc.stop()


class ProcessMilter(Milter):
    """A milter run as ``argv``, listening on ``port``."""

    def __init__(self, argv: List[str], port: int, work: Path) -> None:
        self.log = open(work / ("%s.log" % self.name), "wb")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT)
        self.pid = self.proc.pid
        self.postfix_socket = "inet:127.0.0.1:%d" % port
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("%s did not start: %s" % (self.name, (work / ("%s.log" % self.name))
                                                                 .read_text(errors="replace")))
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class OpenDKIM(ProcessMilter):
    name = "opendkim"

    def __init__(self, work: Path, keys: Any) -> None:
        exe = shutil.which("opendkim") or "/usr/sbin/opendkim"
        if not os.path.exists(exe):
            raise RuntimeError("opendkim is not installed (Debian package opendkim)")
        port = free_port()
        conf = work / "opendkim.conf"
        conf.write_text("\n".join([
            "Syslog no", "Mode s", "Canonicalization relaxed/relaxed", "Domain example.com", "Selector rsa1",
            "KeyFile %s" % (keys.dir / "rsa1.pem"), "InternalHosts 127.0.0.0/8", "Socket inet:%d@127.0.0.1" % port,
            "Background no", "UserID root", "RequireSafeKeys no", ""]))
        super().__init__([exe, "-f", "-x", str(conf)], port, work)


class DkimpyMilter(ProcessMilter):
    name = "dkimpy-milter"

    def __init__(self, work: Path, keys: Any, exe: Optional[str]) -> None:
        exe = exe or shutil.which("dkimpy-milter")
        if not exe:
            raise RuntimeError("dkimpy-milter is not installed (PyPI dkimpy-milter; or give --dkimpy-milter PATH)")
        port = free_port()
        conf = work / "dkimpy-milter.conf"
        conf.write_text("\n".join([
            "Syslog no", "Mode s", "Canonicalization relaxed/relaxed", "Domain example.com", "Selector rsa1",
            "KeyFile %s" % (keys.dir / "rsa1.pem"), "InternalHosts 127.0.0.1", "Socket inet:%d@127.0.0.1" % port,
            "UserID root", ""]))
        super().__init__([exe, str(conf)], port, work)


class NullMilter(ProcessMilter):
    """``benchmarks/null_milter.py``: every event a signer needs, no work."""

    name = "null"

    def __init__(self, work: Path) -> None:
        import importlib.util

        if importlib.util.find_spec("Milter") is None:
            raise RuntimeError("pymilter is not installed (PyPI pymilter; it builds against Debian's "
                               "libmilter-dev)")
        port = free_port()
        super().__init__([sys.executable, str(HERE / "null_milter.py"), "inet:%d@127.0.0.1" % port], port, work)


def submit(port: int, messages: List[bytes], clients: int) -> None:
    """Send ``messages`` from ``clients`` threads, one SMTP session per message."""
    errors: List[str] = []

    def client(part: List[bytes]) -> None:
        for msg in part:
            try:
                with smtplib.SMTP("127.0.0.1", port, timeout=60) as s:
                    s.sendmail("alice@example.com", ["rcpt@example.org"], msg)
            except (smtplib.SMTPException, OSError) as exc:
                errors.append(str(exc))

    threads = [threading.Thread(target=client, args=(messages[i::clients],)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError("%d submissions failed, first: %s" % (len(errors), errors[0]))


def wait_delivered(postfix: Postfix, count: int, timeout: float = 600) -> None:
    new = postfix.maildir / "new"
    deadline = time.monotonic() + timeout
    while True:
        n = len(os.listdir(new)) if new.exists() else 0
        if n >= count:
            return
        if time.monotonic() > deadline:
            raise RuntimeError("%d of %d delivered; Postfix log:\n%s" % (n, count, postfix.log()[-3000:]))
        time.sleep(0.01)


def run_one(kind: str, work: Path, keys: Any, size_kb: int, count: int, clients: int,
            dkimpy_exe: Optional[str]) -> Dict[str, Any]:
    milter: Milter
    if kind == "none":
        milter = Milter()
    elif kind == "null":
        milter = NullMilter(work)
    elif kind == "fastdkim":
        milter = FastdkimMilter(work, keys)
    elif kind == "opendkim":
        milter = OpenDKIM(work, keys)
    elif kind == "dkimpy-milter":
        milter = DkimpyMilter(work, keys, dkimpy_exe)
    else:
        raise ValueError(kind)
    postfix = None
    try:
        postfix = Postfix(milters=milter.postfix_socket, extra={"default_process_limit": "200"})
        body = mailgen.message(size_kb * 1024, seed=size_kb)
        warm = [body.replace(b"Subject:", b"Subject: warm %d" % i, 1) for i in range(20)]
        submit(postfix.port, warm, clients)
        wait_delivered(postfix, len(warm))
        msgs = [body.replace(b"Subject:", b"Subject: %d" % i, 1) for i in range(count)]
        cpu0 = cpu_seconds(milter.pid) if milter.pid else 0.0
        t0 = time.perf_counter()
        submit(postfix.port, msgs, clients)
        wait_delivered(postfix, len(warm) + count)
        elapsed = time.perf_counter() - t0
        cpu = (cpu_seconds(milter.pid) - cpu0) if milter.pid else 0.0
        sample = sorted((postfix.maildir / "new").iterdir())[-1].read_bytes().replace(b"\n", b"\r\n")
        signed = b"DKIM-Signature:" in sample
        ok = None
        if kind not in ("none", "null"):
            record = keys.records["rsa1._domainkey.example.com"]
            ok = [r.status for r in fastdkim.verify(sample, keys={"rsa1._domainkey.example.com": record})]
        return {"milter": kind, "size_kb": size_kb, "messages": count, "clients": clients,
                "seconds": elapsed, "rate": count / elapsed, "cpu_ms_per_message": 1000 * cpu / count,
                "signed": signed, "verified": ok}
    finally:
        if postfix is not None:
            postfix.stop()
        milter.stop()


def memory_per_connection(work: Path, keys: Any, idle: int = 1000, busy: int = 100) -> Dict[str, Any]:
    """Resident memory of the fastdkim milter per idle connection, and per
    connection in the middle of a message (headers and part of the body sent)."""
    from kilter.protocol import messages as m
    from kilter.protocol.buffer import SimpleBuffer

    def packet(msg: Any) -> bytes:
        buf = SimpleBuffer(1 << 16)
        msg.pack(buf)
        return buf[:].tobytes()

    import ipaddress

    hello = packet(m.Negotiate(6, m.ActionFlags.ALL, m.ProtocolFlags(0x1FFFFF))) + \
        packet(m.Connect("client", ipaddress.ip_address("127.0.0.1"), 1000))
    message = (packet(m.EnvelopeFrom(b"<a@example.com>"))
               + b"".join(packet(m.Header(n, v)) for n, v in (("From", b" a@example.com"), ("To", b" b@example.org"),
                                                             ("Subject", b" memory"), ("Date", b" today")))
               + packet(m.EndOfHeaders()) + packet(m.Body(b"x" * 60000 + b"\r\n")))
    milter = FastdkimMilter(work, keys)
    socks: List[socket.socket] = []
    try:
        time.sleep(0.5)
        base = rss_bytes(milter.pid)  # type: ignore[arg-type]
        for _ in range(idle):
            s = socket.create_connection(("127.0.0.1", milter.proc.port))
            s.sendall(hello)
            socks.append(s)
        for s in socks:
            s.recv(1 << 16)
        time.sleep(0.5)
        with_idle = rss_bytes(milter.pid)  # type: ignore[arg-type]
        for s in socks[:busy]:
            s.sendall(message)
        time.sleep(1.0)
        with_busy = rss_bytes(milter.pid)  # type: ignore[arg-type]
        return {"idle_connections": idle, "bytes_per_idle_connection": (with_idle - base) / idle,
                "busy_connections": busy, "bytes_per_busy_connection": (with_busy - with_idle) / busy,
                "base_rss": base}
    finally:
        for s in socks:
            s.close()
        milter.stop()


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--messages", type=int, default=2000)
    p.add_argument("--clients", type=int, default=10)
    p.add_argument("--rounds", type=int, default=3, help="rounds per milter, interleaved; the best is reported")
    p.add_argument("--sizes", default="3,100", help="message sizes in KB, comma-separated")
    p.add_argument("--milters", default="none,null,fastdkim,opendkim,dkimpy-milter")
    p.add_argument("--dkimpy-milter", dest="dkimpy_exe", help="the dkimpy-milter program")
    p.add_argument("--no-memory", action="store_true", help="leave out the memory per connection")
    p.add_argument("--json", default=str(HERE / "milter.json"))
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        print("bench_milter: run as root (the Postfix instances need it)", file=sys.stderr)
        return 2
    import tempfile

    work = Path(tempfile.mkdtemp(prefix="bench-milter-"))
    rows: List[Dict[str, Any]] = []
    memory: Optional[Dict[str, Any]] = None
    try:
        keys = make_keys(work / "keys")
        skipped = set()
        for size in [int(s) for s in args.sizes.split(",")]:
            best: Dict[str, Dict[str, Any]] = {}
            for round_ in range(args.rounds):  # the milters in turn, round after round: drift hits all alike
                for kind in args.milters.split(","):
                    if kind in skipped:
                        continue
                    try:
                        row = run_one(kind, work, keys, size, args.messages, args.clients, args.dkimpy_exe)
                    except RuntimeError as exc:
                        print("%-14s %4d KB  skipped: %s" % (kind, size, str(exc).splitlines()[0]), flush=True)
                        skipped.add(kind)
                        continue
                    print("%-14s %4d KB  round %d  %8.1f msg/s  %7.3f ms CPU/msg  signed=%s %s" % (
                        kind, size, round_ + 1, row["rate"], row["cpu_ms_per_message"], row["signed"],
                        row["verified"] or ""), flush=True)
                    prev = best.get(kind)
                    if prev is None:
                        best[kind] = dict(row, rates=[row["rate"]], cpu=[row["cpu_ms_per_message"]])
                    else:
                        prev["rates"].append(row["rate"])
                        prev["cpu"].append(row["cpu_ms_per_message"])
                        prev["rate"] = max(prev["rates"])
                        prev["cpu_ms_per_message"] = min(prev["cpu"])
            rows.extend(best.values())
        if not args.no_memory:
            memory = memory_per_connection(work, keys)
            print("memory: %.0f bytes per idle connection, %.0f bytes per connection in a message" % (
                memory["bytes_per_idle_connection"], memory["bytes_per_busy_connection"]))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    table(rows)
    Path(args.json).write_text(json.dumps({"runs": rows, "memory": memory}, indent=2))
    return 0


def table(rows: List[Dict[str, Any]]) -> None:
    """The Markdown table: rate and CPU per message, and ratios to the ceiling and to OpenDKIM."""
    print()
    print("| size | milter | msg/s | x no milter | milter CPU ms/msg | x OpenDKIM CPU |")
    print("| --- | --- | --- | --- | --- | --- |")
    for size in sorted({r["size_kb"] for r in rows}):
        group = {r["milter"]: r for r in rows if r["size_kb"] == size}
        ceiling = group.get("none")
        ref = group.get("opendkim")
        for r in group.values():
            x_ceiling = "%.2f" % (r["rate"] / ceiling["rate"]) if ceiling else "-"
            x_cpu = ("%.2f" % (r["cpu_ms_per_message"] / ref["cpu_ms_per_message"])
                     if ref and r["milter"] != "none" and ref["cpu_ms_per_message"] else "-")
            cpu = "%.3f" % r["cpu_ms_per_message"] if r["milter"] != "none" else "-"
            print("| %d KB | %s | %.0f | %s | %s | %s |" % (size, r["milter"], r["rate"], x_ceiling, cpu, x_cpu))


if __name__ == "__main__":
    sys.exit(main())
