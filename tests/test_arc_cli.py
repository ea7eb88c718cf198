"""``fastdkim arc-seal``, run in-process."""
from __future__ import annotations

import pytest

from fastdkim.arc import verify_chain
from fastdkim.keys import private_key_pem, public_key_record, zone_file_line

from helpers_cli import run

MESSAGE = b"From: a@example.com\r\nTo: b@example.org\r\nSubject: s\r\n\r\nbody\r\n"


@pytest.fixture
def setup(tmp_path, rsa_key):
    key = tmp_path / "arc.pem"
    key.write_bytes(private_key_pem(rsa_key))
    zone = tmp_path / "zone.txt"
    zone.write_text(zone_file_line("arc", "lists.example.org", public_key_record(rsa_key)) + "\n")
    msg = tmp_path / "m.eml"
    msg.write_bytes(MESSAGE)
    keys = {"arc._domainkey.lists.example.org": public_key_record(rsa_key)}
    base = ["arc-seal", "--domain", "lists.example.org", "--selector", "arc", "--key", key,
            "--authserv-id", "lists.example.org", "--keys", zone]
    return {"key": key, "zone": zone, "msg": msg, "keys": keys, "base": base, "dir": tmp_path}


def test_seal_a_file_to_stdout(setup):
    r = run(*setup["base"], setup["msg"])
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(b"ARC-Seal: ") and r.stdout.endswith(MESSAGE)
    assert b"arc=none" in r.stdout
    assert verify_chain(r.stdout, setup["keys"]).status == "pass"


def test_seal_stdin_with_results_and_remote_ip_then_a_second_hop(setup):
    r = run(*setup["base"], "--results", "spf=pass smtp.mailfrom=example.com", "--results", "dmarc=none",
            input=MESSAGE)
    assert r.returncode == 0, r.stderr
    assert b"i=1; lists.example.org;\r\n\tspf=pass smtp.mailfrom=example.com;\r\n\tdmarc=none\r\n" in r.stdout
    out = setup["dir"] / "sealed.eml"
    r2 = run(*setup["base"], "--remote-ip", "192.0.2.1", "--out", out, input=r.stdout)
    assert r2.returncode == 0, r2.stderr
    sealed = out.read_bytes()
    assert b"smtp.remote-ip=192.0.2.1" in sealed and b"cv=pass" in sealed
    result = verify_chain(sealed, setup["keys"])
    assert (result.status, result.instances) == ("pass", 2)
    r3 = run(*setup["base"], "--out", out, input=r.stdout)
    assert r3.returncode == 2 and b"exists" in r3.stderr
    assert run(*setup["base"], "--out", out, "--force", input=r.stdout).returncode == 0


def test_nothing_sealed_on_a_failed_chain(setup):
    once = run(*setup["base"], input=MESSAGE).stdout
    broken = once.replace(b"body\r\n", b"body changed\r\n")
    r = run(*setup["base"], input=broken)
    assert r.returncode == 0 and b"cv=fail" in r.stdout.split(b"ARC-Message-Signature")[0]
    r2 = run(*setup["base"], input=r.stdout)
    assert r2.returncode == 1 and r2.stdout == r.stdout and b"cv=fail" in r2.stderr


def test_usage_errors(setup):
    assert run(*setup["base"][:-2], "--authserv-id", "bad id", input=MESSAGE).returncode == 2
    r = run(*setup["base"], "--headers", "from:arc-seal", input=MESSAGE)
    assert r.returncode == 2 and b"ARC-Message-Signature cannot sign" in r.stderr
    r = run(*setup["base"], "--results", "x\r\nInjected: yes", input=MESSAGE)
    assert r.returncode == 2
    r = run(*setup["base"], "--remote-ip", "nope", input=MESSAGE)
    assert r.returncode == 2
    bad_key = setup["dir"] / "bad.pem"
    bad_key.write_bytes(b"not a key")
    r = run("arc-seal", "--domain", "a.example", "--selector", "s", "--key", bad_key, "--authserv-id", "a.example",
            input=MESSAGE)
    assert r.returncode == 2 and b"--key" in r.stderr
    r = run(*setup["base"], input=b"To: nobody@example.org\r\n\r\nno from\r\n")
    assert r.returncode == 1 and b"not sealed" in r.stderr


# -- fastdkim verify --arc ---------------------------------------------------------------------


def _two_hops(setup):
    once = run(*setup["base"], input=MESSAGE).stdout
    return run(*setup["base"], input=once).stdout


def test_verify_arc_prints_the_chain_beside_the_signatures(setup):
    sealed = setup["dir"] / "sealed.eml"
    sealed.write_bytes(_two_hops(setup))
    r = run("verify", "--arc", "--keys", setup["zone"], sealed)
    assert r.returncode == 1, r.stderr  # no DKIM signature: the exit status stays DKIM's
    out = r.stdout.decode()
    assert "none (no DKIM-Signature)" in out and "arc=pass i=2" in out


def test_verify_arc_json_and_authentication_results(setup):
    import json

    data = _two_hops(setup)
    r = run("verify", "--arc", "--json", "--keys", setup["zone"], input=data)
    doc = json.loads(r.stdout)
    assert doc["arc"]["status"] == "pass" and doc["arc"]["instances"] == 2
    r = run("verify", "--arc", "--ar", "mx.example.net", "--keys", setup["zone"], input=data)
    field = r.stdout.decode()
    assert field.startswith("Authentication-Results: mx.example.net;") and "dkim=none;\n\tarc=pass (i=2)" in field
    from fastdkim.authres import parse_authentication_results

    parsed = parse_authentication_results(field.strip())
    assert [m.method for m in parsed.results] == ["dkim", "arc"]


def test_verify_arc_tampered_chain_fails_with_a_reason(setup):
    tampered = _two_hops(setup).replace(b"body\r\n", b"body changed\r\n")
    r = run("verify", "--arc", "--ar", "mx.example.net", "--keys", setup["zone"], input=tampered)
    assert b"arc=fail (i=2) reason=" in r.stdout
    r = run("verify", "--arc", "--keys", setup["zone"], input=tampered)
    assert b"arc=fail i=2" in r.stdout


def test_verify_arc_add_writes_the_arc_result_into_the_message(setup):
    data = _two_hops(setup)
    r = run("verify", "--arc", "--ar", "mx.example.net", "--add", "--keys", setup["zone"], input=data)
    assert r.stdout.startswith(b"Authentication-Results: mx.example.net;") and r.stdout.endswith(data)
    assert b"arc=pass (i=2)" in r.stdout.split(b"ARC-Seal")[0]


def test_option_errors_name_the_command_line_options(setup):
    """Errors name the options as the user wrote them (--remote-ip,
    --results, --canonicalization, --headers), not the library's parameters."""
    r = run(*setup["base"], "--results", "spf=pass smtp.mailfrom=example.com", "--remote-ip", "192.0.2.1",
            input=MESSAGE)
    err = r.stderr.decode()
    assert r.returncode == 2 and err.startswith("fastdkim arc-seal: error: --remote-ip goes without --results"), err
    assert "remote_ip" not in err and "results=None" not in err
    cases = [(["--remote-ip", "nope"], "--remote-ip: 'nope' is not an IP address"),
             (["--results", " ; "], "--results: "),
             (["--canonicalization", "bogus"], "--canonicalization: unknown canonicalization 'bogus'"),
             (["--headers", "fr om:to"], "--headers: invalid header field name 'fr om'"),
             (["--headers", "from:arc-seal"], "--headers: an ARC-Message-Signature cannot sign arc-seal")]
    for extra, want in cases:
        r = run(*setup["base"], *extra, input=MESSAGE)
        err = r.stderr.decode()
        assert r.returncode == 2 and err.startswith("fastdkim arc-seal: error: " + want), (extra, err)
