"""``fastdkim milter``: the DKIM milter (:mod:`fastdkim.milter`).

Every option of the configuration file can be given on the command line,
where it overrides the file; without ``--config`` the command line alone
configures the milter.
"""
from __future__ import annotations

import argparse
import sys
from typing import Any, Dict, Optional, Sequence

from ._common import EXIT_OK, EXIT_USAGE, FORMATTER

_DESCRIPTION = (
    "Run a DKIM milter for Postfix or Sendmail: mail from internal_hosts (or an authenticated SMTP session) is "
    "signed by the --policy, other mail is verified and gets an Authentication-Results field for --authserv-id "
    "(fields already claiming it are removed). SIGHUP reloads the configuration and keys without dropping "
    "connections; SIGTERM stops after the messages under way. With --check, load the configuration and keys, "
    "report, and exit (0: usable, 2: not).")
_EPILOG = (
    "examples:\n"
    "  fastdkim milter --config /etc/fastdkim/milter.toml\n"
    "  fastdkim milter --socket inet:8891@127.0.0.1 --policy dkim.toml --internal-hosts 127.0.0.0/8 \\\n"
    "      --authserv-id mx.example.net\n"
    "  fastdkim milter --config milter.toml --check\n"
    "  python -m fastdkim.milter --socket unix:/run/fastdkim/milter.sock --socket-mode 0660 --policy dkim.toml")


def _options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="TOML configuration file (options below override it)")
    p.add_argument("--check", action="store_true", help="load the configuration and keys, report, exit")
    p.add_argument("--socket", metavar="SPEC", help="inet:PORT@HOST, inet6:PORT@HOST or unix:/path "
                                                    "(default inet:8891@127.0.0.1)")
    p.add_argument("--socket-mode", metavar="MODE", help="permissions of a unix socket, e.g. 0660")
    p.add_argument("--socket-owner", metavar="USER[:GROUP]", help="owner of a unix socket")
    p.add_argument("--policy", metavar="FILE", help="TOML signing policy (as 'fastdkim sign --policy'); "
                                                    "without it nothing is signed")
    p.add_argument("--internal-hosts", metavar="NETS", help="networks whose mail is signed, comma-separated "
                                                            "(default 127.0.0.0/8,::1)")
    p.add_argument("--sign-authenticated", metavar="yes|no", help="sign mail of authenticated SMTP sessions "
                                                                  "({auth_authen}; default yes)")
    p.add_argument("--ignore-hosts", metavar="NETS", help="networks whose mail passes untouched")
    p.add_argument("--authserv-id", metavar="ID", help="verify other mail and add Authentication-Results "
                                                       "with this authserv-id; without it nothing is verified")
    p.add_argument("--remove-forged", metavar="yes|no", help="remove Authentication-Results fields claiming "
                                                             "the authserv-id (default yes)")
    p.add_argument("--keys", metavar="FILE", help="verification keys from a zone file instead of DNS")
    p.add_argument("--dns", metavar="IP[:PORT]", help="resolver to ask for verification keys")
    p.add_argument("--dns-timeout", metavar="SECONDS", help="longest key lookup (default 5)")
    p.add_argument("--on-error", metavar="accept|tempfail", help="answer to an internal error (default accept)")
    p.add_argument("--log", metavar="stderr|syslog", help="where the log goes (default stderr)")
    p.add_argument("--log-level", metavar="LEVEL", help="debug, info, warning or error (default info)")
    p.add_argument("--syslog-facility", metavar="NAME", help="syslog facility (default mail)")
    p.add_argument("--max-header-bytes", metavar="N", help="largest header block kept per message (default 1 MiB)")
    p.add_argument("--stop-timeout", metavar="SECONDS", help="how long SIGTERM waits for messages under way "
                                                             "(default 30)")
    p.add_argument("--idle-timeout", metavar="SECONDS", help="close a connection silent this long, in a message "
                                                             "or not (default 7210, as libmilter)")


def add_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser("milter", help="run a DKIM milter for Postfix or Sendmail", formatter_class=FORMATTER,
                       description=_DESCRIPTION, epilog=_EPILOG)
    _options(p)
    p.set_defaults(func=run)


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m fastdkim.milter``."""
    p = argparse.ArgumentParser(prog="fastdkim milter", formatter_class=FORMATTER, description=_DESCRIPTION,
                                epilog=_EPILOG)
    _options(p)
    return p


_OVERRIDES = ("socket", "socket_mode", "socket_owner", "policy", "internal_hosts", "sign_authenticated",
              "ignore_hosts", "authserv_id", "remove_forged", "keys", "dns", "dns_timeout", "on_error", "log",
              "log_level", "syslog_facility", "max_header_bytes", "stop_timeout", "idle_timeout")


def run(args: argparse.Namespace) -> int:
    """Check the configuration (``--check``) or serve until stopped.

    Configuration problems are reported in one line on stderr, exit status 2.
    """
    try:
        from ..milter.config import ConfigError, load_config
    except ImportError as exc:  # pragma: no cover (the milter extra is missing)
        print("fastdkim milter: error: %s (install it with: pip install 'fastdkim[milter]')" % exc, file=sys.stderr)
        return EXIT_USAGE
    overrides: Dict[str, Any] = {name: getattr(args, name) for name in _OVERRIDES}
    if not args.check:
        from ..milter import _hup

        _hup.defer()  # a reload asked for while starting must not end the milter
    try:
        if args.check:
            from ..milter.runtime import check_and_load, check_report

            loaded = check_and_load(args.config, overrides)  # (every problem named at once)
            for line in check_report(loaded):
                print(line)
            print("configuration OK")
            return EXIT_OK
        config = load_config(args.config, overrides)
        from ..milter.server import serve

        serve(config, args.config, overrides)
    except ImportError as exc:  # pragma: no cover (the milter extra is missing)
        print("fastdkim milter: error: %s (install it with: pip install 'fastdkim[milter]')" % exc, file=sys.stderr)
        return EXIT_USAGE
    except ConfigError as exc:
        print("fastdkim milter: error: %s" % exc, file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m fastdkim.milter``: parse ``argv`` and run; the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except KeyboardInterrupt:
        return 130
