"""A small authoritative DNS server for tests, built on dnspython's message API.

It answers from a dict (name -> Txt / Neg / Cname / Truncate / rcode / "drop")
over UDP and TCP on a free port of 127.0.0.1, in a background thread, and
counts queries per (name, transport).
"""
import collections
import selectors
import socket
import struct
import threading

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TXT
import dns.rrset


class Txt:
    """TXT records at a name: each record is a list of character-strings."""

    def __init__(self, *records, ttl=300):
        self.records = [[s.encode() if isinstance(s, str) else s for s in r] for r in records]
        self.ttl = ttl


class Neg:
    """NXDOMAIN or NODATA, with an SOA (TTL, MINIMUM) in the authority section or none."""

    def __init__(self, rcode, soa=None):
        self.rcode = rcode
        self.soa = soa


class Cname:
    def __init__(self, target, ttl):
        self.target = target
        self.ttl = ttl


class Truncate:
    """Over UDP: an empty answer with TC set; over TCP: the records."""

    def __init__(self, txt):
        self.txt = txt


SOA_OWNER = dns.name.from_text("example.com.")


class FakeDNS:
    """Answers queries from ZONE over UDP and TCP on one free port of 127.0.0.1,
    and counts them per (name, transport)."""

    def __init__(self, zone):
        self.zone = zone
        self.counts = collections.Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        for _ in range(50):
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp.bind(("127.0.0.1", 0))
            port = udp.getsockname()[1]
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                tcp.bind(("127.0.0.1", port))
            except OSError:
                udp.close()
                tcp.close()
                continue
            tcp.listen(16)
            break
        else:  # pragma: no cover
            raise RuntimeError("no free port for both UDP and TCP")
        self.udp, self.tcp, self.port = udp, tcp, port
        self.address = "127.0.0.1:%d" % port
        self.thread = threading.Thread(target=self._serve, name="fake-dns", daemon=True)
        self.thread.start()

    def count(self, name, transport=None):
        with self._lock:
            if transport:
                return self.counts[(name, transport)]
            return self.counts[(name, "udp")] + self.counts[(name, "tcp")]

    def stop(self):
        self._stop.set()
        self.thread.join(5)
        self.udp.close()
        self.tcp.close()

    def _serve(self):
        with selectors.DefaultSelector() as sel:
            sel.register(self.udp, selectors.EVENT_READ)
            sel.register(self.tcp, selectors.EVENT_READ)
            while not self._stop.is_set():
                for key, _ in sel.select(0.05):
                    if key.fileobj is self.udp:
                        wire, peer = self.udp.recvfrom(65535)
                        reply = self._answer(wire, "udp")
                        if reply is not None:
                            self.udp.sendto(reply, peer)
                    else:
                        conn, _ = self.tcp.accept()
                        with conn:
                            self._serve_tcp(conn)

    def _serve_tcp(self, conn):
        conn.settimeout(2)

        def read(n):
            data = b""
            while len(data) < n:
                chunk = conn.recv(n - len(data))
                if not chunk:
                    raise EOFError
                data += chunk
            return data

        try:
            (length,) = struct.unpack("!H", read(2))
            reply = self._answer(read(length), "tcp")
            if reply is not None:
                conn.sendall(struct.pack("!H", len(reply)) + reply)
        except (OSError, EOFError):
            pass

    def _answer(self, wire, transport):
        try:
            query = dns.message.from_wire(wire)
        except Exception:
            return None
        qname = query.question[0].name
        name = qname.to_text(omit_final_dot=True).lower()
        with self._lock:
            self.counts[(name, transport)] += 1
        spec = self.zone.get(name)
        response = dns.message.make_response(query)
        if spec == "drop":
            return None
        if isinstance(spec, Truncate):
            if transport == "udp":
                response.flags |= dns.flags.TC
                return response.to_wire()
            spec = spec.txt
        if isinstance(spec, int):
            response.set_rcode(spec)
        elif isinstance(spec, Cname):
            target = dns.name.from_text(spec.target)
            response.answer.append(
                dns.rrset.from_rdata(qname, spec.ttl, dns.rdata.from_text("IN", "CNAME", spec.target + "."))
            )
            self._add_txt(response, target, self.zone[spec.target])
        elif isinstance(spec, Txt):
            self._add_txt(response, qname, spec)
        else:
            neg = spec if isinstance(spec, Neg) else Neg(dns.rcode.NXDOMAIN)
            response.set_rcode(neg.rcode)
            if neg.soa:
                ttl, minimum = neg.soa
                soa = dns.rdata.from_text("IN", "SOA", "ns.example.com. admin.example.com. 1 3600 600 86400 %d" % minimum)
                response.authority.append(dns.rrset.from_rdata(SOA_OWNER, ttl, soa))
        return response.to_wire()

    @staticmethod
    def _add_txt(response, owner, txt):
        rdatas = [
            dns.rdtypes.ANY.TXT.TXT(dns.rdataclass.IN, dns.rdatatype.TXT, strings) for strings in txt.records
        ]
        response.answer.append(dns.rrset.from_rdata_list(owner, txt.ttl, rdatas))
