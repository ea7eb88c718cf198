"""Keys through a real authoritative DNS server (Knot, see :mod:`dnsserver`),
with a zone built from fastdkim's own key generation and zone-file output.

fastdkim (``DNSKeySource(nameservers=["127.0.0.1:PORT"])``) must report:

=============================================== ==============
fault                                           result
=============================================== ==============
nothing listens on the port                     temperror
a server that drops every query                 temperror, within the timeout
NXDOMAIN (no record at the selector)            permerror
SERVFAIL (a zone the server cannot load)        temperror
two DKIM TXT records at the name                permerror
one TXT record that is not a DKIM key record    permerror
a revoked key (empty ``p=``)                    permerror
=============================================== ==============

and its cache must keep an answer for the record's TTL and no longer, and
keep a temporary failure only for ``error_ttl`` (seconds).  The cache tests
use a fake clock, so they take no wall-clock time, and a server of their own,
since they change zone data.  No test measures time: what a lookup waited
for is told by its tries (:mod:`dnstries`) and by the queries a server got.

The peers get the same faults; what they report is asserted as observed
(see ``PEER_FAULTS``).  Deviations from RFC 6376 section 6.1.2, as
observed (details in :mod:`deviations`):

* D5 dkimpy has only pass/fail (``verify()`` returns a bool), uses the first
  of two key records, and takes SERVFAIL for "no key";
* D6 Mail::DKIM reports SERVFAIL and timeouts as ``invalid`` (permerror),
  not temperror, and uses the first of two key records.

OpenDKIM reports each fault as fastdkim does.
"""
from __future__ import annotations

import socket
from pathlib import Path
from typing import Dict

import dns.rcode
import pytest

import fastdkim
from fastdkim.keys import parse_key_record

from dnstries import count_tries

from .dnsserver import KnotServer, Zone, find_knot, free_port
from .matrix import SERVFAIL_ZONE, build_zone
from .messages import DOMAIN, message_set
from .peers import PEER_NAMES, unavailable

TIMEOUT = 1.5
#: the timeout of lookups that nothing answers, which wait it out (short: no test measures time)
SILENT_TIMEOUT = 0.5

#: fault -> (selector, signing domain)
FAULTS = {
    "nxdomain": ("missing", DOMAIN),
    "servfail": ("rsa2048", SERVFAIL_ZONE),
    "two-records": ("twokeys", DOMAIN),
    "not-dkim": ("notdkim", DOMAIN),
    "revoked": ("revoked", DOMAIN),
}
FASTDKIM_FAULTS = {
    "nxdomain": "permerror",
    "servfail": "temperror",
    "two-records": "permerror",
    "not-dkim": "permerror",
    "revoked": "permerror",
    "no-listener": "temperror",
    "dropping-server": "temperror",
}
#: What each peer reports, as observed (installed versions; see deviations.py).
PEER_FAULTS: Dict[str, Dict[str, str]] = {
    "fastdkim": FASTDKIM_FAULTS,
    "opendkim": {
        "nxdomain": "permerror",
        "servfail": "temperror",
        "two-records": "permerror",
        "not-dkim": "permerror",
        "revoked": "permerror",
        "no-listener": "temperror",
        "dropping-server": "temperror",
    },
    "mail-dkim": {  # D6: DNS failures are "invalid", and the first of two records is used
        "nxdomain": "permerror",
        "servfail": "permerror",
        "two-records": "pass",
        "not-dkim": "permerror",
        "revoked": "permerror",
        "no-listener": "permerror",
        "dropping-server": "permerror",
    },
    # D5: only pass/fail, and the first of two records is used
    "dkimpy": dict({f: "fail" for f in FASTDKIM_FAULTS}, **{"two-records": "pass"}),
}


def _sign(key, selector: str, domain: str) -> bytes:
    msg = message_set()["plain"]
    return fastdkim.Signer(domain, selector, key).sign_message(msg)


@pytest.fixture(scope="module")
def fault_messages(keys, interop_dir) -> Dict[str, Path]:
    """fault -> a message signed for the selector/domain that provokes it."""
    work = interop_dir / "faults"
    work.mkdir(exist_ok=True)
    out = {}
    for fault, (selector, domain) in FAULTS.items():
        p = work / ("%s.eml" % fault)
        p.write_bytes(_sign(keys["rsa2048"].private, selector, domain))
        out[fault] = p
    good = work / "good.eml"
    good.write_bytes(_sign(keys["rsa2048"].private, "rsa2048", DOMAIN))
    out["no-listener"] = out["dropping-server"] = good
    return out


class DroppingServer:
    """A UDP and TCP socket on 127.0.0.1 that never answers (queries are
    received by the kernel and left unread; TCP connections are accepted by
    the backlog and never served) and counts, when asked, what it got."""

    def __enter__(self) -> "DroppingServer":
        # a port free for both: the UDP port the system picks may be taken for TCP
        # (other tests' servers and connections), so pick again until both bind
        for _ in range(100):
            self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.udp.bind(("127.0.0.1", 0))
            self.port = self.udp.getsockname()[1]
            self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                self.tcp.bind(("127.0.0.1", self.port))
                break
            except OSError:
                self.tcp.close()
                self.udp.close()
        else:
            raise RuntimeError("no port on 127.0.0.1 free for both UDP and TCP")
        self.tcp.listen(16)
        self.udp.setblocking(False)
        self.tcp.setblocking(False)
        self._datagrams = 0
        self._connections: list = []
        return self

    @property
    def address(self) -> str:
        return "127.0.0.1:%d" % self.port

    def queries(self) -> int:
        """The UDP queries and TCP connections received so far (taken off the
        sockets, still unanswered: connections stay open until the end)."""
        while True:
            try:
                self.udp.recv(65535)
            except BlockingIOError:
                break
            self._datagrams += 1
        while True:
            try:
                conn, _ = self.tcp.accept()
            except BlockingIOError:
                break
            self._connections.append(conn)
        return self._datagrams + len(self._connections)

    def __exit__(self, *exc: object) -> None:
        for conn in self._connections:
            conn.close()
        self.udp.close()
        self.tcp.close()


# -- the zone as served --------------------------------------------------------------------

def test_zone_from_keygen_is_served_as_written(dns_server, keys):
    """Every key record comes back byte for byte; records over 255 bytes as
    several character-strings that join to the record."""
    for k in keys.values():
        strings = dns_server.txt_strings("%s._domainkey.%s." % (k.selector, DOMAIN))
        assert len(strings) == 1
        assert all(len(s) <= 255 for s in strings[0])
        assert b"".join(strings[0]).decode() == k.record
        parse_key_record(b"".join(strings[0]))
        if len(k.record) > 255:
            assert len(strings[0]) == -(-len(k.record) // 255)
    assert len(dns_server.txt_strings("rsa4096._domainkey.%s." % DOMAIN)[0]) >= 3
    assert len(dns_server.txt_strings("twokeys._domainkey.%s." % DOMAIN)) == 2


def test_server_answers_faults_for_real(dns_server, keys):
    assert dns_server.query("missing._domainkey.%s." % DOMAIN).rcode() == dns.rcode.NXDOMAIN
    assert dns_server.query("rsa2048._domainkey.%s." % SERVFAIL_ZONE).rcode() == dns.rcode.SERVFAIL
    # Knot serves an RRset in canonical order: of the two records, the
    # RSA-2048 key (which signed the fault message) comes first, which is the
    # one peers that take the first record use (PEER_FAULTS["two-records"]).
    first, second = dns_server.txt_strings("twokeys._domainkey.%s." % DOMAIN)
    assert (b"".join(first).decode(), b"".join(second).decode()) == (keys["rsa2048"].record, keys["rsa4096"].record)


@pytest.mark.parametrize("key", ["rsa2048", "ed25519", "rsa4096"])
def test_fastdkim_verifies_through_the_server(key, dns_server, keys):
    k = keys[key]
    signed = _sign(k.private, k.selector, DOMAIN)
    source = fastdkim.DNSKeySource(nameservers=[dns_server.address], timeout=TIMEOUT)
    (r,) = fastdkim.verify(signed, keys=source)
    assert r.status == "pass", r
    assert source.lookup("%s._domainkey.%s" % (k.selector, DOMAIN)) == [k.record.encode()]


# -- faults, fastdkim ---------------------------------------------------------------------------

@pytest.mark.parametrize("fault", list(FAULTS))
def test_fastdkim_faults(fault, dns_server, fault_messages, monkeypatch):
    """Each fault is the server's answer: reported from it, without waiting
    for the timeout (every try was answered; none timed out)."""
    tries = count_tries(monkeypatch)
    source = fastdkim.DNSKeySource(nameservers=[dns_server.address], timeout=TIMEOUT)
    (r,) = fastdkim.verify(fault_messages[fault].read_bytes(), keys=source)
    assert r.status == FASTDKIM_FAULTS[fault], r
    assert tries and not tries.timed_out, tries


def test_fastdkim_no_listener(fault_messages, monkeypatch):
    """Bounded by the timeout: one try (two at most), none given longer."""
    port = free_port()  # nothing listens there
    tries = count_tries(monkeypatch)
    source = fastdkim.DNSKeySource(nameservers=["127.0.0.1:%d" % port], timeout=SILENT_TIMEOUT)
    (r,) = fastdkim.verify(fault_messages["no-listener"].read_bytes(), keys=source)
    assert r.status == "temperror", r
    assert 1 <= len(tries) <= 2, tries
    assert tries.longest_timeout() <= SILENT_TIMEOUT


def test_fastdkim_dropping_server_times_out(fault_messages, monkeypatch):
    """The query reaches the server and is waited for until the timeout (the
    lookup's, all tries included): one try, two at most, each of which timed
    out, none given longer than the timeout; a lookup that ignored it would
    try again and again."""
    tries = count_tries(monkeypatch)
    with DroppingServer() as server:
        source = fastdkim.DNSKeySource(nameservers=[server.address], timeout=SILENT_TIMEOUT)
        (r,) = fastdkim.verify(fault_messages["dropping-server"].read_bytes(), keys=source)
        got = server.queries()
    assert r.status == "temperror", r
    assert "timed out" in r.reason
    assert 1 <= len(tries) <= 2 and tries.timed_out == tries, tries
    assert tries.longest_timeout() <= SILENT_TIMEOUT
    assert source.resolver.lifetime == SILENT_TIMEOUT  # the whole timeout is the lookup's
    assert got == len(tries)


# -- faults, the peers ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", PEER_NAMES)
def test_peer_faults(name, peer, dns_server, fault_messages):
    p = peer(name)
    expected = PEER_FAULTS[name]
    got = {}
    faults = list(FAULTS)
    for fault, outcome in zip(faults, p.verify([fault_messages[f] for f in faults])):
        got[fault] = outcome
    dead = p.with_dns("127.0.0.1:%d" % free_port(), timeout=1)
    got["no-listener"] = dead.verify([fault_messages["no-listener"]])[0]
    with DroppingServer() as server:
        got["dropping-server"] = p.with_dns(server.address, timeout=1).verify([fault_messages["dropping-server"]])[0]
        asked = server.queries()
    assert asked >= 1, "%s never asked the dropping server" % name  # its result is that server's silence
    wrong = ["%s: %s, expected %s" % (f, o, expected[f]) for f, o in got.items() if o.status != expected[f]]
    assert not wrong, "\n".join(wrong)


# -- the cache ------------------------------------------------------------------------------------

class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def own_server(keys, tmp_path):
    """A Knot server of the test's own (the test changes its zones)."""
    if find_knot() is None:
        unavailable("Knot DNS (knotd, knotc) not found: install Debian package knot")
    server = KnotServer(tmp_path / "dns", [build_zone(keys)], broken=["flaky.example"])
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_cache_honours_ttl(own_server, keys):
    """An answer is reused for its TTL (30 s here) even after the zone has
    changed, and fetched again once the TTL has run out."""
    signed = _sign(keys["rsa2048"].private, "ttl", DOMAIN)
    clock = FakeClock()
    source = fastdkim.DNSKeySource(nameservers=[own_server.address], timeout=TIMEOUT, clock=clock)
    assert fastdkim.verify(signed, keys=source)[0].status == "pass"
    assert source.stats.misses == 1
    own_server.update(DOMAIN, {"ttl._domainkey": ("v=DKIM1; k=rsa; p=", 30)})  # revoke the key
    assert own_server.txt_strings("ttl._domainkey.%s." % DOMAIN) == [[b"v=DKIM1; k=rsa; p="]]
    clock.now += 29
    assert fastdkim.verify(signed, keys=source)[0].status == "pass"  # still the cached key
    assert (source.stats.hits, source.stats.misses) == (1, 1)
    clock.now += 2
    r = fastdkim.verify(signed, keys=source)[0]
    assert r.status == "permerror" and "revoked" in r.reason, r
    assert source.stats.misses == 2


def test_cache_keeps_temporary_failures_briefly(own_server, keys):
    """A SERVFAIL is remembered for ``error_ttl`` seconds only: once the zone
    loads, the key is found as soon as that has passed."""
    signed = _sign(keys["rsa2048"].private, "rsa2048", "flaky.example")
    clock = FakeClock()
    source = fastdkim.DNSKeySource(nameservers=[own_server.address], timeout=TIMEOUT, clock=clock)
    assert source.error_ttl <= 60, "temporary failures must not be cached for long"
    r = fastdkim.verify(signed, keys=source)[0]
    assert r.status == "temperror", r
    own_server.load_zone(Zone("flaky.example", {"rsa2048._domainkey": (keys["rsa2048"].record, 3600)}))
    assert own_server.txt_strings("rsa2048._domainkey.flaky.example.")
    clock.now += source.error_ttl / 2
    assert fastdkim.verify(signed, keys=source)[0].status == "temperror"  # remembered
    assert source.stats.hits == 1
    clock.now += source.error_ttl / 2 + 0.01
    assert fastdkim.verify(signed, keys=source)[0].status == "pass"


def test_cache_does_not_keep_timeouts_for_long(keys):
    """A timeout is not cached beyond ``error_ttl``: the next lookup after it
    asks again (and fails again, here, after the timeout)."""
    signed = _sign(keys["rsa2048"].private, "rsa2048", DOMAIN)
    clock = FakeClock()
    with DroppingServer() as server:
        source = fastdkim.DNSKeySource(nameservers=[server.address], timeout=0.5, error_ttl=2, clock=clock)
        assert fastdkim.verify(signed, keys=source)[0].status == "temperror"
        first = server.queries()
        assert first >= 1
        assert fastdkim.verify(signed, keys=source)[0].status == "temperror"
        assert server.queries() == first  # from the cache
        clock.now += 2.01
        assert fastdkim.verify(signed, keys=source)[0].status == "temperror"
        assert server.queries() > first  # asked the server again
    assert source.stats.misses == 2 and source.stats.hits == 1
