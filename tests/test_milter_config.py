"""The milter's configuration (fastdkim.milter.config): the TOML file, the
command-line overrides, a clear error for every bad value; ``--check``."""
from __future__ import annotations

import ipaddress
import subprocess
import sys

import pytest

from fastdkim.cli import main
from fastdkim.milter.config import ConfigError, load_config, parse_socket

from conftest import child_env
from milter_harness import AUTHSERV_ID, make_keys


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return make_keys(tmp_path_factory.mktemp("keys"))


def _file(tmp_path, text: str):
    p = tmp_path / "milter.toml"
    p.write_text(text)
    return str(p)


def test_file_then_overrides(tmp_path):
    path = _file(tmp_path, 'socket = "unix:/run/x.sock"\nsocket_mode = "0660"\npolicy = "dkim.toml"\n'
                           'internal_hosts = ["10.0.0.0/8", "2001:db8::/32"]\nauthserv_id = "mx.example.net"\n'
                           'on_error = "TEMPFAIL"\ndns_timeout = 2\nsign_authenticated = false\n')
    c = load_config(path)
    assert parse_socket(c.socket) == ("unix", "/run/x.sock")
    assert c.socket_mode == 0o660
    assert c.policy == str(tmp_path / "dkim.toml")  # relative to the file
    assert c.internal_hosts == [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("2001:db8::/32")]
    assert (c.on_error, c.dns_timeout, c.sign_authenticated) == ("tempfail", 2, False)
    c = load_config(path, {"internal_hosts": "192.0.2.0/24, 127.0.0.1", "sign_authenticated": "yes",
                           "socket": "unix:/run/y.sock", "policy": None, "dns_timeout": "0.5"})
    assert c.internal_hosts == [ipaddress.ip_network("192.0.2.0/24"), ipaddress.ip_network("127.0.0.1/32")]
    assert c.sign_authenticated is True and c.dns_timeout == 0.5
    assert c.socket == "unix:/run/y.sock" and c.policy == str(tmp_path / "dkim.toml")


def test_defaults_from_the_command_line_alone():
    c = load_config(None, {"authserv_id": AUTHSERV_ID})
    assert parse_socket(c.socket) == ("inet", ("127.0.0.1", 8891))
    assert c.on_error == "accept" and c.log == "stderr" and c.remove_forged
    assert "verifies as mx.example.net" in c.summary()


@pytest.mark.parametrize("spec, want", [
    ("inet:8891@127.0.0.1", ("inet", ("127.0.0.1", 8891))),
    ("inet:25", ("inet", ("127.0.0.1", 25))),
    ("inet6:8891@[::1]", ("inet6", ("::1", 8891))),
    ("local:/run/m.sock", ("unix", "/run/m.sock")),
])
def test_parse_socket(spec, want):
    assert parse_socket(spec) == want


@pytest.mark.parametrize("text, message", [
    ('socket = "tcp:1@x"', "unknown kind 'tcp'"),
    ('socket = "inet:99999@x"', "port must be a number from 1 to 65535"),
    ('socket = "unix:relative"', "absolute path"),
    ('socket = "inet:25@"', "no host"),
    ('socket = 25', "must be a non-empty string"),
    ('socket = "unix:/x"\nsocket_mode = "rw"', "octal permission string"),
    ('socket = "unix:/x"\nsocket_owner = "a b"', "USER or USER:GROUP"),
    ('socket_mode = "0660"', "socket_mode applies to a unix socket only"),
    ('internal_hosts = ["10.0.0.0/33"]', "is not an IP address or CIDR network"),
    ('internal_hosts = "10.0.0.1"', None),
    ('internal_hosts = 10', "must be a list of networks"),
    ('ignore_hosts = [1]', "is not a network"),
    ('sign_authenticated = "yes"', "must be true or false"),
    ('authserv_id = "mx example"', "must be an authserv-id"),
    ('dns_timeout = 0', "must be a positive number of seconds"),
    ('dns_timeout = true', "must be a positive number of seconds"),
    ('max_header_bytes = 1.5', "must be a positive whole number"),
    ('on_error = "reject"', "must be one of accept, tempfail"),
    ('log = "file"', "must be one of stderr, syslog"),
    ('log_level = "loud"', "must be one of debug"),
    ('syslog_facility = "kern"', "must be one of mail"),
    ('dns = "not a server"', "option dns"),
    ('keys = "z.txt"\ndns = "127.0.0.1"', "either keys"),
    ('frobnicate = 1', "unknown option(s): frobnicate"),
    ('authserv_id = ', "not valid TOML"),
])
def test_bad_values(tmp_path, text, message):
    path = _file(tmp_path, 'authserv_id = "mx.example.net"\n' + text + "\n" if "authserv_id" not in text
                 else text + "\n")
    if message is None:
        load_config(path)
        return
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert message in str(info.value)
    assert "milter.toml" in str(info.value) or "either keys" in str(info.value) \
        or "unix socket only" in str(info.value)


@pytest.mark.parametrize("overrides, message", [
    ({"dns_timeout": "soon"}, "--dns-timeout must be a positive number"),
    ({"sign_authenticated": "maybe"}, "--sign-authenticated must be true or false"),
    ({"internal_hosts": "10.0.0.0/8,bogus"}, "'bogus' is not an IP address"),
    ({"max_header_bytes": "-1"}, "must be a positive whole number"),
])
def test_bad_command_line_values(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, dict(overrides, authserv_id=AUTHSERV_ID))


def test_unreadable_file_and_nothing_to_do(tmp_path):
    with pytest.raises(ConfigError, match="cannot read configuration"):
        load_config(str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigError, match="nothing to do"):
        load_config(_file(tmp_path, 'socket = "inet:1@127.0.0.1"\n'))


def test_check_reports_and_exits(keys, tmp_path, capsys):
    status = main(["milter", "--check", "--policy", str(keys.policy), "--authserv-id", AUTHSERV_ID,
                   "--keys", str(keys.zone), "--internal-hosts", "10.0.0.0/8"])
    out = capsys.readouterr().out
    assert status == 0
    assert "configuration OK" in out
    assert "example.com: rsa-sha256 s=rsa1 d=example.com, ed25519-sha256 s=ed1 d=example.com" in out
    assert "10.0.0.0/8" in out


def test_check_finds_problems(keys, tmp_path, capsys):
    bad_policy = tmp_path / "bad.toml"
    bad_policy.write_text('[domains."example.com"]\nkeys = [{ selector = "s", key = "missing.pem" }]\n')
    assert main(["milter", "--check", "--policy", str(bad_policy)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fastdkim milter: error: policy %s" % bad_policy) and "missing.pem" in err
    assert main(["milter", "--check", "--authserv-id", AUTHSERV_ID, "--keys", str(tmp_path / "nope.txt")]) == 2
    assert "keys %s" % (tmp_path / "nope.txt") in capsys.readouterr().err
    assert main(["milter", "--check", "--socket", "inet:0@x", "--authserv-id", AUTHSERV_ID]) == 2
    assert "port must be a number" in capsys.readouterr().err


def test_python_m_fastdkim_milter(keys):
    r = subprocess.run([sys.executable, "-m", "fastdkim.milter", "--check", "--policy", str(keys.policy)],
                       capture_output=True, text=True, env=child_env(), timeout=120)
    assert r.returncode == 0, r.stderr
    assert "configuration OK" in r.stdout


def test_socket_in_use_is_reported(keys, tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = subprocess.run([sys.executable, "-m", "fastdkim.milter", "--policy", str(keys.policy),
                            "--socket", "inet:%d@127.0.0.1" % port], capture_output=True, text=True,
                           env=child_env(), timeout=120)
    assert r.returncode == 2
    assert "cannot listen on inet:%d@127.0.0.1" % port in r.stderr


def test_every_bad_option_is_reported(tmp_path, capsys):
    """Several bad values (in the file and on the command line) and an
    unknown option: one error names each of them, not only the first."""
    path = _file(tmp_path, 'authserv_id = "mx.example.net"\ndns_timeout = -1\non_error = "drop"\n'
                           'frobnicate = 1\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, {"internal_hosts": "bogus", "max_header_bytes": "0"})
    text = str(info.value)
    assert text.startswith("5 problems: ")
    for part in ("unknown option(s): frobnicate", "option dns_timeout must be a positive number",
                 "option on_error must be one of accept, tempfail", "'bogus' is not an IP address",
                 "--max-header-bytes must be a positive whole number"):
        assert part in text
    assert main(["milter", "--check", "--config", path, "--socket", "inet:0@x"]) == 2
    err = capsys.readouterr().err
    assert "4 problems" in err and "frobnicate" in err and "socket" in err and len(err.splitlines()) == 1


def test_files_that_are_not_utf8_are_reported(keys, tmp_path, capsys):
    """A configuration or policy file that is not UTF-8 text: a one-line
    error naming it (``--check`` and start), and a reload that meets one
    keeps the configuration in use."""
    from fastdkim.milter.runtime import load
    from fastdkim.milter.server import MilterServer

    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00 not text")
    assert main(["milter", "--check", "--config", str(binary)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fastdkim milter: error: configuration %s is not valid TOML" % binary)
    assert main(["milter", "--check", "--policy", str(binary)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fastdkim milter: error: policy %s" % binary) and len(err.splitlines()) == 1

    config_path = _file(tmp_path, 'authserv_id = "mx.example.net"\npolicy = "%s"\n' % keys.policy)
    server = MilterServer(load(load_config(config_path)), config_path)
    before = server.loaded
    for text in ('authserv_id = "mx.example.net"\npolicy = "%s"\n' % binary, "\ufffe"):
        (tmp_path / "milter.toml").write_bytes(text.encode() if text != "\ufffe" else b"\xff\xfe")
        assert server.reload() is False
        assert server.loaded is before


def test_check_names_every_problem_at_once(tmp_path, capsys):
    """A bad socket, a bad on_error, an unknown option, a bad network and a
    policy file that is not there: --check names the five in one error, the
    missing policy file included (it is loaded although other options are bad)."""
    path = _file(tmp_path, 'socket = "tcp:1@x"\non_error = "drop"\nfrobnicate = 1\n'
                           'internal_hosts = ["10.0.0.0/33"]\npolicy = "nope.toml"\n')
    assert main(["milter", "--check", "--config", path]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fastdkim milter: error: 5 problems: ") and len(err.splitlines()) == 1, err
    for part in ("unknown kind 'tcp'", "on_error must be one of", "frobnicate", "'10.0.0.0/33'",
                 "policy %s" % (tmp_path / "nope.toml")):
        assert part in err, (part, err)
    assert "nothing to do" not in err  # (a policy was given: it is bad, not missing)


def test_options_that_go_together_are_checked_with_the_others(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(_file(tmp_path, 'socket = "inet:1@127.0.0.1"\nsocket_mode = "0660"\nsocket_owner = "a"\n'
                                    'on_error = "drop"\n'))
    text = str(info.value)
    assert text.startswith("4 problems: ")
    for part in ("on_error", "nothing to do", "socket_mode applies to a unix socket only",
                 "socket_owner applies to a unix socket only"):
        assert part in text
    # a bad socket is not also the wrong kind for socket_mode
    with pytest.raises(ConfigError) as info:
        load_config(_file(tmp_path, 'socket = "unix:relative"\nsocket_mode = "0660"\nauthserv_id = "mx.example.net"\n'))
    assert "absolute path" in str(info.value) and "unix socket only" not in str(info.value)


def test_no_password_is_shown(tmp_path, capsys):
    """A value holding a database URL with its password: never echoed."""
    assert main(["milter", "--check", "--policy", "dsn:mysql://user:S3cret@localhost/db",
                 "--dns", "mysql://user:S3cret@localhost"]) == 2
    err = capsys.readouterr().err
    assert "S3cret" not in err and "user:***@localhost" in err and "2 problems" in err, err
    with pytest.raises(ConfigError) as info:
        load_config(_file(tmp_path, 'authserv_id = "mx.example.net"\nsocket = "x://u:S3cret@h"\n'))
    assert "S3cret" not in str(info.value) and "u:***@h" in str(info.value)


def test_syslog_without_a_syslog_socket_is_a_clear_error(monkeypatch, milter_logger):
    """Where there is no /dev/log, log = "syslog" is refused at start
    rather than sent by UDP to a port nobody may listen on."""
    from fastdkim.milter import server as server_mod
    from fastdkim.milter.server import setup_logging

    real = server_mod.os.path.exists
    monkeypatch.setattr(server_mod.os.path, "exists", lambda p: False if p == "/dev/log" else real(p))
    with pytest.raises(ConfigError, match="no syslog socket at /dev/log"):
        setup_logging(load_config(None, {"log": "syslog", "authserv_id": AUTHSERV_ID}))


@pytest.fixture
def milter_logger():
    """The milter's logger as a test left it is put back as it was (its
    handlers, level and propagation, which setup_logging changes)."""
    import logging

    logger = logging.getLogger("fastdkim.milter")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield logger
    for h in list(logger.handlers):
        logger.removeHandler(h)
    for h in saved[0]:
        logger.addHandler(h)
    logger.setLevel(saved[1])
    logger.propagate = saved[2]


def test_reload_with_another_socket_says_it_still_listens_where_it_did(tmp_path, capsys, milter_logger):
    from fastdkim.milter.runtime import load
    from fastdkim.milter.server import MilterServer, setup_logging

    path = _file(tmp_path, 'socket = "inet:18891@127.0.0.1"\nauthserv_id = "mx.example.net"\n')
    config = load_config(path)
    setup_logging(config)  # (to standard error, which the reload's own setup writes to as well)
    server = MilterServer(load(config), path)
    _file(tmp_path, 'socket = "inet:18893@127.0.0.1"\nauthserv_id = "mx.example.net"\n')
    assert server.reload() is True
    err = capsys.readouterr().err
    reloaded = [line for line in err.splitlines() if "reloaded: " in line]
    assert len(reloaded) == 1 and "18891" in reloaded[0] and "18893" not in reloaded[0], err
    assert "it takes a restart to move" in err


def test_peers_are_logged_as_address_and_port():
    from fastdkim.milter.session import _peer_text

    assert _peer_text(("127.0.0.1", 47824)) == "127.0.0.1:47824"
    assert _peer_text(("::1", 47824, 0, 0)) == "[::1]:47824"
    assert _peer_text("") == "local" and _peer_text(None) == "local"
