"""Key sources: value conventions, name validation, and DNSKeySource against a
small DNS server run by the tests on 127.0.0.1."""
from __future__ import annotations

import socket
import threading
import time
import types

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TXT
import dns.resolver
import dns.rrset
import pytest

from fastdkim import dns as fdns
from fastdkim.dns import (
    CallableKeySource,
    DNSKeySource,
    KeySource,
    MappingKeySource,
    as_key_source,
)
from fastdkim.errors import KeyLookupError, TemporaryLookupError

# -- a tiny authoritative server --------------------------------------------------------

from dnstries import count_tries
from fakedns import Cname, FakeDNS, Neg, Truncate, Txt

LONG_STRINGS = [b"v=DKIM1; k=rsa; p=" + b"A" * 237, b"B" * 255, b"C" * 200]  # 692 octets in 3 strings


ZONE = {
    "sel._domainkey.example.com": Txt(["v=DKIM1; p=short"], ttl=60),
    "long._domainkey.example.com": Txt(LONG_STRINGS, ttl=300),
    "two._domainkey.example.com": Txt(["v=DKIM1; p=one"], ["v=DKIM1; p=two"], ttl=300),
    "big-ttl._domainkey.example.com": Txt(["v=DKIM1; p=big"], ttl=10**6),
    "zero-ttl._domainkey.example.com": Txt(["v=DKIM1; p=zero"], ttl=0),
    "alias._domainkey.example.com": Cname("target._domainkey.example.com", ttl=20),
    "target._domainkey.example.com": Txt(["v=DKIM1; p=target"], ttl=600),
    "trunc._domainkey.example.com": Truncate(Txt(LONG_STRINGS, ["v=DKIM1; p=second"], ttl=300)),
    "sel._domainkey.xn--bcher-kva.example": Txt(["v=DKIM1; p=idn"], ttl=300),
    "nx._domainkey.example.com": Neg(dns.rcode.NXDOMAIN, soa=(3600, 3600)),
    "nx-short._domainkey.example.com": Neg(dns.rcode.NXDOMAIN, soa=(3600, 30)),
    "nodata._domainkey.example.com": Neg(dns.rcode.NOERROR, soa=(40, 7200)),
    "nodata-nosoa._domainkey.example.com": Neg(dns.rcode.NOERROR),
    "servfail._domainkey.example.com": dns.rcode.SERVFAIL,
    "refused._domainkey.example.com": dns.rcode.REFUSED,
    "drop._domainkey.example.com": "drop",
}
for _i in range(6):
    ZONE["k%d._domainkey.example.com" % _i] = Txt(["v=DKIM1; p=k%d" % _i], ttl=300)



class Clock:
    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now


@pytest.fixture
def server():
    srv = FakeDNS(ZONE)
    yield srv
    srv.stop()
    assert not srv.thread.is_alive()


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def source(server, clock):
    def make(**options):
        options.setdefault("nameservers", [server.address])
        options.setdefault("timeout", 2.0)
        options.setdefault("clock", clock)
        return DNSKeySource(**options)

    return make


def n(label):
    return "%s._domainkey.example.com" % label


# -- MappingKeySource -------------------------------------------------------------------


def test_mapping_case_and_trailing_dot():
    keys = MappingKeySource({"Sel._DomainKey.Example.COM.": "v=DKIM1; p=x"})
    for name in ("sel._domainkey.example.com", "SEL._domainkey.example.com.", "sel._DOMAINKEY.EXAMPLE.com"):
        assert keys.lookup(name) == [b"v=DKIM1; p=x"]
    assert keys.lookup("other._domainkey.example.com") == []


def test_mapping_value_conventions():
    keys = MappingKeySource(
        {
            "s.example": "v=DKIM1; p=s",
            "b.example": b"v=DKIM1; p=b",
            "l.example": ["one", b"two"],
            "t.example": ("three",),
            "none.example": None,
            "empty.example": [],
            "emptystr.example": "",
            "utf8.example": "n=caf\u00e9",
        }
    )
    assert keys.lookup("s.example") == [b"v=DKIM1; p=s"]
    assert keys.lookup("b.example") == [b"v=DKIM1; p=b"]
    assert keys.lookup("l.example") == [b"one", b"two"]
    assert keys.lookup("t.example") == [b"three"]
    assert keys.lookup("none.example") == []
    assert keys.lookup("empty.example") == []
    assert keys.lookup("emptystr.example") == [b""]
    assert keys.lookup("utf8.example") == ["n=caf\u00e9".encode()]
    assert all(type(r) is bytes for r in keys.lookup("l.example"))


def test_mapping_returns_fresh_lists_and_copies_the_mapping():
    source = {"a.example": ["x"]}
    keys = MappingKeySource(source)
    keys.lookup("a.example").append(b"junk")
    source["b.example"] = "y"
    assert keys.lookup("a.example") == [b"x"]
    assert keys.lookup("b.example") == []


def test_mapping_rejects_bad_entries():
    with pytest.raises(ValueError, match="twice"):
        MappingKeySource({"a.example": "x", "A.example.": "y"})
    with pytest.raises(ValueError, match="empty label"):
        MappingKeySource({"a..example": "x"})
    with pytest.raises(TypeError, match="str or bytes"):
        MappingKeySource({"a.example": 42})
    with pytest.raises(TypeError, match="str or bytes"):
        MappingKeySource({"a.example": ["x", None]})
    with pytest.raises(TypeError):
        MappingKeySource({42: "x"})


# -- CallableKeySource ------------------------------------------------------------------


def test_callable_gets_normalized_name_and_conventions():
    seen = []
    values = {
        "s.example": "v=DKIM1; p=s",
        "b.example": b"v=DKIM1; p=b",
        "l.example": ["one", b"two"],
        "t.example": ("three",),
    }

    def f(name):
        seen.append(name)
        return values.get(name)

    keys = CallableKeySource(f)
    assert keys.lookup("S.Example.") == [b"v=DKIM1; p=s"]
    assert keys.lookup("b.example") == [b"v=DKIM1; p=b"]
    assert keys.lookup("l.example") == [b"one", b"two"]
    assert keys.lookup("t.example") == [b"three"]
    assert keys.lookup("missing.example") == []
    assert keys.lookup("sel._domainkey.B\u00fccher.example") == []
    assert seen == ["s.example", "b.example", "l.example", "t.example", "missing.example",
                    "sel._domainkey.xn--bcher-kva.example"]


def test_callable_buggy_callback_is_temporary():
    def f(name):
        raise ValueError("boom")

    with pytest.raises(TemporaryLookupError, match="ValueError: boom") as info:
        CallableKeySource(f).lookup("a.example")
    assert "a.example" in str(info.value)
    assert isinstance(info.value.__cause__, ValueError)


def test_callable_bad_return_type_is_temporary():
    with pytest.raises(TemporaryLookupError, match="unusable value"):
        CallableKeySource(lambda name: 42).lookup("a.example")
    with pytest.raises(TemporaryLookupError, match="unusable value"):
        CallableKeySource(lambda name: [b"ok", 3.5]).lookup("a.example")


@pytest.mark.parametrize("exc", [KeyLookupError("permanent"), TemporaryLookupError("transient")])
def test_callable_lookup_errors_propagate(exc):
    def f(name):
        raise exc

    with pytest.raises(type(exc)) as info:
        CallableKeySource(f).lookup("a.example")
    assert info.value is exc


def test_callable_not_called_for_invalid_name():
    called = []
    keys = CallableKeySource(lambda name: called.append(name))
    with pytest.raises(KeyLookupError):
        keys.lookup("a..example")
    assert called == []


def test_callable_requires_callable():
    with pytest.raises(TypeError):
        CallableKeySource("not callable")


# -- as_key_source ----------------------------------------------------------------------


class Custom:
    def lookup(self, name):
        return []


def test_as_key_source_dispatch():
    custom = Custom()
    assert as_key_source(custom) is custom
    mapping_source = MappingKeySource({})
    assert as_key_source(mapping_source) is mapping_source
    dns_source = DNSKeySource(nameservers=["127.0.0.1"])
    assert as_key_source(dns_source) is dns_source

    from_dict = as_key_source({"a.example": "v=DKIM1"})
    assert isinstance(from_dict, MappingKeySource)
    assert from_dict.lookup("A.example") == [b"v=DKIM1"]
    proxy = as_key_source(types.MappingProxyType({"a.example": "x"}))
    assert isinstance(proxy, MappingKeySource)

    from_func = as_key_source(lambda name: "v=DKIM1")
    assert isinstance(from_func, CallableKeySource)
    assert from_func.lookup("a.example") == [b"v=DKIM1"]

    for src in (custom, mapping_source, dns_source, from_dict, from_func):
        assert isinstance(src, KeySource)


def test_as_key_source_none_is_shared_default(monkeypatch):
    monkeypatch.setattr(fdns, "_default", None)
    results = []
    barrier = threading.Barrier(16)

    def worker():
        barrier.wait()
        results.append(as_key_source(None))

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 16
    assert isinstance(results[0], DNSKeySource)
    assert all(r is results[0] for r in results)
    assert as_key_source(None) is results[0]


@pytest.mark.parametrize("bad", [42, "sel._domainkey.example.com", b"bytes", ["a", "b"], object(), DNSKeySource, Custom])
def test_as_key_source_rejects(bad):
    with pytest.raises(TypeError, match="keys must be"):
        as_key_source(bad)


# -- name validation --------------------------------------------------------------------

INVALID_NAMES = [
    "",
    ".",
    "..",
    "a..example",
    ".a.example",
    "a.example..",
    "x" * 64 + "._domainkey.example.com",
    ".".join(["abcdefghi"] * 25) + ".abcd",  # 254 octets
    "sel._domainkey.\ufffe.example",  # a noncharacter
    "sel._domainkey.a\udcffb.example",
    "sel._domainkey.xn--\u00e9.example",
    "\u00e9" * 300 + ".example",
    "a." * 2000 + "example",
]


def _sources(server_address):
    return [
        MappingKeySource({"a.example": "x"}),
        CallableKeySource(lambda name: "x"),
        DNSKeySource(nameservers=[server_address], timeout=0.5),
    ]


@pytest.fixture(params=["idna-package", "builtin-codec"])
def idna_codec(request, monkeypatch):
    """Run a test with IDNA 2008 (the idna package) and with the built-in IDNA 2003 codec."""
    import fastdkim._text as text

    if request.param == "idna-package":
        if text._idna_package() is None:
            pytest.skip("the idna package is not installed")
    else:
        monkeypatch.setattr(text, "_idna", None)
    return request.param


@pytest.mark.parametrize("name", INVALID_NAMES, ids=range(len(INVALID_NAMES)))
def test_invalid_names_are_permanent_errors(server, idna_codec, name):
    for keys in _sources(server.address):
        with pytest.raises(KeyLookupError) as info:
            keys.lookup(name)
        assert not isinstance(info.value, TemporaryLookupError)
        assert len(str(info.value)) < 600
    assert sum(server.counts.values()) == 0


def test_valid_edge_names(idna_codec):
    keys = MappingKeySource({})
    assert keys.lookup("x" * 63 + ".example") == []
    assert keys.lookup(".".join(["abcdefghi"] * 25) + ".abc") == []  # 253 octets
    assert keys.lookup("sel._domainkey.B\u00fccher.example.") == []
    assert keys.lookup(b"sel._domainkey.example.com") == []
    with pytest.raises(KeyLookupError):
        keys.lookup(b"sel._domainkey.\xc3\xa9.example")
    with pytest.raises(TypeError):
        keys.lookup(42)


def test_mapping_matches_unicode_and_alabel(idna_codec):
    keys = MappingKeySource({"sel._domainkey.b\u00fccher.example": "v=DKIM1"})
    assert keys.lookup("sel._domainkey.xn--bcher-kva.example") == [b"v=DKIM1"]
    assert keys.lookup("SEL._domainkey.B\u00dcCHER.example") == [b"v=DKIM1"]


# -- nameserver option ------------------------------------------------------------------


@pytest.mark.parametrize(
    "entry, expected",
    [
        ("127.0.0.1", ("127.0.0.1", 5300)),
        ("127.0.0.1:5353", ("127.0.0.1", 5353)),
        (" 10.0.0.1:53 ", ("10.0.0.1", 53)),
        ("::1", ("::1", 5300)),
        ("[::1]", ("::1", 5300)),
        ("[2001:db8::1]:5353", ("2001:db8::1", 5353)),
    ],
)
def test_parse_nameserver(entry, expected):
    assert fdns._parse_nameserver(entry, 5300) == expected


@pytest.mark.parametrize(
    "entry",
    ["localhost", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:70000", "127.0.0.1:ab", "[::1", "[::1]5353",
     "[127.0.0.1]:53", "1.2.3.4.5", ""],
)
def test_parse_nameserver_rejects(entry):
    with pytest.raises(ValueError, match="nameserver"):
        DNSKeySource(nameservers=[entry])


def test_nameservers_configure_resolver():
    src = DNSKeySource(nameservers="127.0.0.1:5353", timeout=1.5)
    (ns,) = src.resolver.nameservers
    assert (ns.address, ns.port) == ("127.0.0.1", 5353)
    assert src.resolver.lifetime == 1.5
    src = DNSKeySource(nameservers=["[::1]:5354", "192.0.2.1"], port=5300)
    assert [(ns.address, ns.port) for ns in src.resolver.nameservers] == [("::1", 5354), ("192.0.2.1", 5300)]


@pytest.mark.parametrize(
    "options",
    [
        {"nameservers": []},
        {"nameservers": ["127.0.0.1"], "resolver": dns.resolver.Resolver(configure=False)},
        {"port": 0},
        {"port": 65536},
        {"timeout": 0},
        {"cache_size": -1},
        {"negative_ttl": -1},
        {"error_ttl": -1},
        {"max_ttl": -1},
    ],
)
def test_bad_options(options):
    with pytest.raises(ValueError):
        DNSKeySource(**options)


def test_missing_resolv_conf_fails_at_lookup(monkeypatch):
    def missing(self, f):
        raise dns.resolver.NoResolverConfiguration("cannot open %s" % f)

    monkeypatch.setattr(dns.resolver.Resolver, "read_resolv_conf", missing)
    src = DNSKeySource()
    with pytest.raises(TemporaryLookupError, match="no usable resolver configuration") as info:
        src.lookup("sel._domainkey.example.com")
    assert "sel._domainkey.example.com" in str(info.value)


# -- DNSKeySource against the test server ----------------------------------------------


def test_dns_simple_record(server, source):
    src = source()
    assert src.lookup(n("sel")) == [b"v=DKIM1; p=short"]
    assert server.count(n("sel"), "udp") == 1


def test_dns_joins_character_strings(server, source):
    (record,) = source().lookup(n("long"))
    assert record == b"".join(LONG_STRINGS)
    assert len(record) > 255


def test_dns_several_records(source):
    assert sorted(source().lookup(n("two"))) == [b"v=DKIM1; p=one", b"v=DKIM1; p=two"]


def test_dns_idn_name(source, idna_codec):
    assert source().lookup("sel._domainkey.b\u00fccher.example") == [b"v=DKIM1; p=idn"]


def test_dns_cname_followed(source):
    assert source().lookup(n("alias")) == [b"v=DKIM1; p=target"]


@pytest.mark.parametrize("label", ["nx", "nodata", "nodata-nosoa", "unknown"])
def test_dns_negative_answers(source, label):
    assert source().lookup(n(label)) == []


@pytest.mark.parametrize("label, rcode", [("servfail", "SERVFAIL"), ("refused", "REFUSED")])
def test_dns_server_failures_are_temporary(server, source, label, rcode):
    with pytest.raises(TemporaryLookupError) as info:
        source().lookup(n(label))
    message = str(info.value)
    assert n(label) in message and rcode in message and server.address.split(":")[0] in message


def test_dns_timeout(server, source, monkeypatch):
    """A server that never answers: the lookup ends with its timeout (the
    whole lookup's, retries included).  Told by the tries, not by a clock: one
    (two at most), none given more than the timeout; a lookup that ignored its
    timeout would try again and again, for the resolver's default 5 seconds."""
    tries = count_tries(monkeypatch)
    src = source(timeout=0.5)
    with pytest.raises(TemporaryLookupError, match="timed out") as info:
        src.lookup(n("drop"))
    assert n("drop") in str(info.value)
    assert 1 <= server.count(n("drop")) <= 2
    assert 1 <= len(tries) <= 2 and tries.timed_out == tries
    assert tries.longest_timeout() <= 0.5


def test_dns_nobody_listening(monkeypatch):
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    tries = count_tries(monkeypatch)
    src = DNSKeySource(nameservers=["127.0.0.1:%d" % port], timeout=0.5)
    with pytest.raises(TemporaryLookupError):
        src.lookup(n("sel"))
    # bounded by the timeout: one try (two at most), none given longer
    assert 1 <= len(tries) <= 2
    assert tries.longest_timeout() <= 0.5


def test_dns_truncation_falls_back_to_tcp(server, source):
    records = source().lookup(n("trunc"))
    assert sorted(records) == sorted([b"".join(LONG_STRINGS), b"v=DKIM1; p=second"])
    assert server.count(n("trunc"), "udp") == 1
    assert server.count(n("trunc"), "tcp") == 1


def test_dns_port_option_and_injected_resolver(server):
    src = DNSKeySource(nameservers=["127.0.0.1"], port=server.port, timeout=2)
    assert src.lookup(n("sel")) == [b"v=DKIM1; p=short"]
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = server.port
    resolver.lifetime = 2
    src = DNSKeySource(resolver=resolver)
    assert src.resolver is resolver
    assert src.lookup(n("sel")) == [b"v=DKIM1; p=short"]


# -- caching ----------------------------------------------------------------------------


def test_ttl_honoured(server, source, clock):
    src = source()  # the record's TTL is 60
    name = n("sel")
    assert src.lookup(name) == [b"v=DKIM1; p=short"]
    clock.now += 59.9
    assert src.lookup(name.upper() + ".") == [b"v=DKIM1; p=short"]
    assert server.count(name) == 1
    clock.now += 0.1
    assert src.lookup(name) == [b"v=DKIM1; p=short"]
    assert server.count(name) == 2
    stats = src.stats
    assert (stats.lookups, stats.hits, stats.misses, stats.size) == (3, 1, 2, 1)


def test_max_ttl_caps_positive_answers(server, source, clock):
    src = source(max_ttl=100)
    src.lookup(n("big-ttl"))
    clock.now += 99
    src.lookup(n("big-ttl"))
    assert server.count(n("big-ttl")) == 1
    clock.now += 1
    src.lookup(n("big-ttl"))
    assert server.count(n("big-ttl")) == 2


def test_zero_ttl_not_cached(server, source):
    src = source()
    src.lookup(n("zero-ttl"))
    src.lookup(n("zero-ttl"))
    assert server.count(n("zero-ttl")) == 2


def test_cname_ttl_limits_caching(server, source, clock):
    src = source()
    src.lookup(n("alias"))
    clock.now += 19
    src.lookup(n("alias"))
    assert server.count(n("alias")) == 1
    clock.now += 1
    src.lookup(n("alias"))
    assert server.count(n("alias")) == 2


@pytest.mark.parametrize(
    "label, expected_ttl",
    [
        ("nx", 300),  # SOA says 3600: capped by negative_ttl
        ("nx-short", 30),  # SOA MINIMUM 30
        ("nodata", 40),  # SOA TTL 40 below its MINIMUM
        ("nodata-nosoa", 7),  # no SOA (RFC 2308 section 5: not to be cached): error_ttl
        ("unknown", 7),  # (the test server: NXDOMAIN without an SOA)
    ],
)
def test_negative_caching(server, source, clock, label, expected_ttl):
    src = source(negative_ttl=300, error_ttl=7)
    name = n(label)
    assert src.lookup(name) == []
    clock.now += expected_ttl - 0.5
    assert src.lookup(name) == []
    assert server.count(name) == 1
    clock.now += 0.5
    assert src.lookup(name) == []
    assert server.count(name) == 2


def test_errors_remembered_for_error_ttl(server, source, clock):
    src = source(error_ttl=5)
    name = n("servfail")
    with pytest.raises(TemporaryLookupError):
        src.lookup(name)
    clock.now += 4.9
    with pytest.raises(TemporaryLookupError, match="SERVFAIL"):
        src.lookup(name)
    assert server.count(name) == 1
    clock.now += 0.1
    with pytest.raises(TemporaryLookupError):
        src.lookup(name)
    assert server.count(name) == 2


def test_errors_not_remembered_with_zero_error_ttl(server, source):
    src = source(error_ttl=0)
    for _ in range(3):
        with pytest.raises(TemporaryLookupError):
            src.lookup(n("refused"))
    assert server.count(n("refused")) == 3


def test_cache_disabled(server, source):
    src = source(cache_size=0)
    for _ in range(3):
        assert src.lookup(n("sel")) == [b"v=DKIM1; p=short"]
    assert server.count(n("sel")) == 3
    assert src.stats.size == 0 and src.stats.misses == 3


def test_lru_eviction(server, source):
    src = source(cache_size=2)
    a, b, c = n("k0"), n("k1"), n("k2")
    for name in (a, b, a, c):  # a is used again, so b is the least recent when c arrives
        src.lookup(name)
    assert (server.count(a), server.count(b), server.count(c)) == (1, 1, 1)
    src.lookup(a)
    src.lookup(c)
    assert (server.count(a), server.count(c)) == (1, 1)
    src.lookup(b)  # evicted: queried again, evicts a
    assert server.count(b) == 2
    src.lookup(a)
    assert server.count(a) == 2
    stats = src.stats
    assert stats.size == 2 and stats.evictions == 3
    assert stats.lookups == stats.hits + stats.misses == 8


def test_cache_clear(server, source):
    src = source()
    src.lookup(n("sel"))
    src.cache_clear()
    assert src.stats == fdns.CacheStats(0, 0, 0, 0, 0)
    src.lookup(n("sel"))
    assert server.count(n("sel")) == 2


def test_invalid_name_not_counted(source):
    src = source()
    with pytest.raises(KeyLookupError):
        src.lookup("a..b")
    assert src.stats.lookups == 0


def test_thread_safety(server, source):
    names = [n("k%d" % i) for i in range(6)] + [n("nx"), n("long")]
    expected = {name: [b"v=DKIM1; p=k%d" % i] for i, name in enumerate(names[:6])}
    expected[n("nx")] = []
    expected[n("long")] = [b"".join(LONG_STRINGS)]
    src = source(cache_size=4)  # smaller than the working set: constant eviction
    errors = []
    barrier = threading.Barrier(24)

    def worker(seed):
        try:
            barrier.wait()
            for j in range(40):
                name = names[(seed + j * 7) % len(names)]
                got = src.lookup(name.upper() if j % 2 else name)
                if got != expected[name]:
                    errors.append((name, got))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    stats = src.stats
    assert stats.lookups == 24 * 40 == stats.hits + stats.misses
    assert stats.size <= 4
    assert sum(server.count(name) for name in names) == stats.misses


class _SlowResolver(dns.resolver.Resolver):
    """A resolver that takes its time, so that lookups overlap."""

    def __init__(self, delay, **kw):
        super().__init__(**kw)
        self.delay = delay
        self.calls = 0
        self._calls_lock = threading.Lock()

    def resolve(self, *args, **kwargs):
        with self._calls_lock:
            self.calls += 1
        time.sleep(self.delay)
        return super().resolve(*args, **kwargs)


def _slow_source(server, delay=0.3):
    resolver = _SlowResolver(delay, configure=False)
    host, port = server.address.split(":")
    resolver.nameservers = [host]
    resolver.port = int(port)
    resolver.lifetime = 2.0
    return DNSKeySource(resolver=resolver, timeout=2.0), resolver


def _together(count, fn):
    barrier = threading.Barrier(count)
    results = [None] * count

    def run(i):
        barrier.wait()
        try:
            results[i] = ("ok", fn())
        except Exception as exc:
            results[i] = ("error", type(exc), str(exc))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert not any(t.is_alive() for t in threads)
    return results


def test_concurrent_misses_send_one_query(server):
    src, resolver = _slow_source(server)
    results = _together(8, lambda: src.lookup(n("k1")))
    assert results == [("ok", [b"v=DKIM1; p=k1"])] * 8
    assert resolver.calls == 1 and server.count(n("k1")) == 1
    stats = src.stats
    assert (stats.lookups, stats.misses, stats.hits) == (8, 1, 7)
    # every caller got its own list
    got = [r[1] for r in results]
    assert len({id(g) for g in got}) == 8


def test_concurrent_misses_share_a_failure_and_no_cache_still_shares(server):
    src, resolver = _slow_source(server)
    results = _together(6, lambda: src.lookup(n("servfail")))
    assert all(r[0] == "error" and r[1] is TemporaryLookupError and "SERVFAIL" in r[2] for r in results)
    assert resolver.calls == 1
    src2, resolver2 = _slow_source(server)
    src2.cache_size = 0
    results = _together(4, lambda: src2.lookup(n("nx")))
    assert results == [("ok", [])] * 4 and resolver2.calls == 1
    # nothing was cached: the next lookup asks again
    assert src2.lookup(n("nx")) == [] and resolver2.calls == 2


def test_dnspython_loads_only_for_dns_keys():
    """Signing, and verifying with keys of one's own, never load dnspython
    (it is a good part of a command's start-up); the DNS key source's names
    still answer from every place they always did."""
    import subprocess
    import sys

    code = ("import sys, fastdkim, fastdkim.cli\n"
            "assert 'dns.resolver' not in sys.modules, 'dnspython loaded at import'\n"
            "from fastdkim import DNSKeySource\n"
            "import fastdkim.keysources as ks, fastdkim.dns as old\n"
            "assert ks.DNSKeySource is DNSKeySource is old.DNSKeySource is fastdkim.DNSKeySource\n"
            "assert ks.CacheStats is not None and callable(ks._parse_nameserver)\n"
            "assert 'dns.resolver' in sys.modules\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
