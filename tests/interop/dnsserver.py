"""A real authoritative DNS server for the interop tests: Knot DNS.

Why Knot (Debian package ``knot``) rather than NSD or dnsmasq:

* it runs in the foreground from a configuration file of our own, as an
  ordinary child process, with every file (configuration, zone files,
  database, control socket) in a temporary directory; nothing under /etc or
  /var is touched and no system service is involved;
* ``knotc -b zone-reload`` reloads one zone and waits until the new data is
  served, which the TTL tests need (NSD needs ``nsd-control`` keys set up
  first; dnsmasq is a forwarder whose authoritative mode is not the point);
* a zone that is configured but whose zone file cannot be parsed is answered
  with SERVFAIL, a real way to provoke the temporary failure a verifier must
  report as ``temperror`` (zones the server is not configured for get
  REFUSED, also a failure to resolvers, but not the one asked for).

The server listens on 127.0.0.1 only, on a free port chosen at start, with
one UDP and one TCP worker (CI has two cores).  :meth:`KnotServer.stop`
asks it to stop, waits, and kills it if it does not exit in time; the pytest
fixture always calls it, so no server is left running.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype

from fastdkim.keys import zone_file_line

#: Debian package that provides the server.
PACKAGE = "knot"

Record = Union[str, Sequence[str]]  # one TXT value, or several records at one name


def find_knot() -> Optional[Tuple[str, str]]:
    """Paths of ``knotd`` and ``knotc``, or ``None`` if Knot is not installed."""
    path = os.environ.get("PATH", "") + os.pathsep + "/usr/sbin" + os.pathsep + "/sbin"
    knotd = shutil.which("knotd", path=path)
    knotc = shutil.which("knotc", path=path)
    return (knotd, knotc) if knotd and knotc else None


def free_port() -> int:
    """A port on 127.0.0.1 that is free for both UDP and TCP right now."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free port on 127.0.0.1")


class Zone:
    """The contents of one zone: TXT records by owner name relative to the origin."""

    def __init__(self, origin: str, records: Optional[Dict[str, Tuple[Record, int]]] = None) -> None:
        self.origin = origin.rstrip(".")
        self.serial = 1
        #: relative owner name -> (value or list of values, TTL)
        self.records: Dict[str, Tuple[Record, int]] = dict(records or {})

    def text(self) -> str:
        o = self.origin + "."
        lines = [
            "$ORIGIN %s" % o,
            "@ 3600 IN SOA ns.%s hostmaster.%s %d 3600 600 86400 60" % (o, o, self.serial),
            "@ 3600 IN NS ns.%s" % o,
            "ns 3600 IN A 127.0.0.1",
        ]
        for owner, (value, ttl) in sorted(self.records.items()):
            values = [value] if isinstance(value, str) else list(value)
            for v in values:
                if owner.endswith("._domainkey"):
                    # fastdkim's own zone-file form: the absolute name, the
                    # value split into character-strings of <= 255 bytes
                    lines.append(zone_file_line(owner[: -len("._domainkey")], self.origin, v, ttl=ttl))
                else:
                    lines.append(_plain_txt_line("%s.%s" % (owner, o), v, ttl))
        return "\n".join(lines) + "\n"


def _plain_txt_line(name: str, value: str, ttl: int) -> str:
    data = value.encode("ascii")
    parts = [data[i:i + 255].decode("ascii") for i in range(0, len(data), 255)] or [""]
    quoted = " ".join('"%s"' % p.replace("\\", "\\\\").replace('"', '\\"') for p in parts)
    return "%s %d IN TXT %s" % (name, ttl, quoted)


class KnotServer:
    """``knotd`` serving some zones on 127.0.0.1:``port`` from ``workdir``.

    :param zones: the zones to serve.
    :param broken: origins of zones that are configured but whose zone file
        is unparsable: the server answers SERVFAIL for every name in them.
    """

    def __init__(self, workdir: Path, zones: Iterable[Zone], broken: Iterable[str] = ()) -> None:
        found = find_knot()
        if found is None:
            raise RuntimeError("knotd/knotc not found: install the Debian package %s" % PACKAGE)
        self.knotd, self.knotc = found
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.zones: Dict[str, Zone] = {z.origin: z for z in zones}
        self.broken = [b.rstrip(".") for b in broken]
        self.port = 0
        self.proc: Optional[subprocess.Popen] = None
        self.log_path = self.workdir / "knotd.log"
        self.conf = self.workdir / "knot.conf"
        self.socket_path = self.workdir / "knot.sock"

    @property
    def address(self) -> str:
        """``"127.0.0.1:PORT"``, as ``DNSKeySource(nameservers=[...])`` takes it."""
        return "127.0.0.1:%d" % self.port

    # -- files ----------------------------------------------------------------------

    def _zone_file(self, origin: str) -> Path:
        return self.workdir / ("%s.zone" % origin)

    def _write_config(self) -> None:
        w = self.workdir
        zones = "\n".join("  - domain: %s." % o for o in list(self.zones) + self.broken)
        self.conf.write_text(
            "server:\n"
            "    rundir: %(w)s\n"
            "    listen: 127.0.0.1@%(port)d\n"
            "    udp-workers: 1\n"
            "    tcp-workers: 1\n"
            "    background-workers: 1\n"
            "control:\n"
            "    listen: %(sock)s\n"
            "log:\n"
            "  - target: stderr\n"
            "    any: info\n"
            "database:\n"
            "    storage: %(w)s/db\n"
            "template:\n"
            "  - id: default\n"
            "    storage: %(w)s\n"
            "    file: \"%%s.zone\"\n"
            "    zonefile-sync: -1\n"
            "    zonefile-load: whole\n"
            "    journal-content: none\n"
            "    semantic-checks: off\n"
            "zone:\n%(zones)s\n" % {"w": w, "port": self.port, "sock": self.socket_path, "zones": zones}
        )
        for origin, zone in self.zones.items():
            self._zone_file(origin).write_text(zone.text())
        for origin in self.broken:
            self._zone_file(origin).write_text("this is not a zone file {\n")

    # -- life cycle -------------------------------------------------------------------

    def start(self, timeout: float = 15.0) -> "KnotServer":
        if self.proc is not None and self.proc.poll() is None:
            return self
        last_error = ""
        for _ in range(3):  # a port taken between free_port() and bind: try another
            self.port = free_port()
            self._write_config()
            log = open(self.log_path, "ab")
            try:
                self.proc = subprocess.Popen(
                    [self.knotd, "-c", str(self.conf)],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    cwd=str(self.workdir),
                )
            finally:
                log.close()
            deadline = time.monotonic() + timeout
            origin = next(iter(self.zones))
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    last_error = "knotd exited with status %s" % self.proc.returncode
                    break
                try:
                    r = self.query("%s." % origin, "SOA", timeout=0.5)
                    if r.rcode() == dns.rcode.NOERROR and r.answer:
                        return self
                except Exception as exc:  # not listening yet
                    last_error = "%s: %s" % (type(exc).__name__, exc)
                time.sleep(0.05)
            else:
                last_error = "knotd did not answer within %.0f s" % timeout
            self.stop()
        raise RuntimeError("cannot start knotd (%s); log:\n%s" % (last_error, self.log()))

    def stop(self, timeout: float = 10.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def __enter__(self) -> "KnotServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- changing data ----------------------------------------------------------------

    def update(self, origin: str, changes: Dict[str, Optional[Tuple[Record, int]]]) -> None:
        """Change records of a zone (owner -> (value, TTL), or ``None`` to
        remove), then reload it and wait until the server serves the new data."""
        zone = self.zones[origin.rstrip(".")]
        for owner, value in changes.items():
            if value is None:
                zone.records.pop(owner, None)
            else:
                zone.records[owner] = value
        self.load_zone(zone)

    def load_zone(self, zone: Zone) -> None:
        """Serve ``zone`` (new contents for a zone the server is configured
        for, possibly one that was broken), and wait until it is loaded."""
        if zone.origin not in self.zones and zone.origin not in self.broken:
            raise ValueError("knotd is not configured for %s" % zone.origin)
        if zone.origin in self.broken:
            self.broken.remove(zone.origin)
        self.zones[zone.origin] = zone
        zone.serial += 1
        self._zone_file(zone.origin).write_text(zone.text())
        self.control("zone-reload", zone.origin + ".")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            r = self.query(zone.origin + ".", "SOA")
            if r.answer and r.answer[0][0].serial == zone.serial:
                return
            time.sleep(0.05)
        raise RuntimeError("knotd did not load serial %d of %s; log:\n%s" % (zone.serial, zone.origin, self.log()))

    def control(self, *args: str) -> str:
        out = subprocess.run(
            [self.knotc, "-c", str(self.conf), "-s", str(self.socket_path), "-b", "-t", "20"] + list(args),
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30,
        )
        if out.returncode != 0:
            raise RuntimeError("knotc %s failed: %s%s" % (" ".join(args), out.stdout, out.stderr))
        return out.stdout

    # -- asking it directly ---------------------------------------------------------------

    def query(self, name: str, rdtype: str = "TXT", timeout: float = 2.0) -> dns.message.Message:
        """Ask the server directly (over UDP, then TCP if the answer is truncated)."""
        q = dns.message.make_query(name, dns.rdatatype.from_text(rdtype), use_edns=0, payload=1232)
        return dns.query.udp_with_fallback(q, "127.0.0.1", port=self.port, timeout=timeout)[0]

    def txt_strings(self, name: str) -> List[List[bytes]]:
        """The character-strings of each TXT record at ``name``, as served."""
        r = self.query(name)
        return [list(rd.strings) for rrset in r.answer for rd in rrset if rrset.rdtype == dns.rdatatype.TXT]
