"""What a program pays for at start-up: the package root, the command line
and the bulk workers load only the modules they use.

Each check runs in a fresh interpreter (this one has loaded everything).
"""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from conftest import child_env


def _run(code: str) -> str:
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                       env=child_env(), timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_package_root_loads_its_modules_on_first_use() -> None:
    out = _run("""
        import sys
        import fastdkim
        loaded = sorted(m for m in sys.modules if m.startswith("fastdkim."))
        assert set(loaded) <= {"fastdkim._core", "fastdkim._canon", "fastdkim._canon_py", "fastdkim._version",
                               "fastdkim.errors"}, loaded
        assert "cryptography" not in sys.modules
        # every public name still answers, and is what its module holds
        from fastdkim import Signer, verify, sign_many, SigningPolicy, KeyRecord, Verifier
        import fastdkim.signing, fastdkim.verification, fastdkim.bulk, fastdkim.policy, fastdkim.keys
        assert Signer is fastdkim.signing.Signer is fastdkim.Signer
        assert verify is fastdkim.verification.verify and sign_many is fastdkim.bulk.sign_many
        assert SigningPolicy is fastdkim.policy.SigningPolicy and KeyRecord is fastdkim.keys.KeyRecord
        assert Verifier is fastdkim.Verifier
        for name in fastdkim.__all__:
            assert getattr(fastdkim, name) is not None, name
        assert set(fastdkim.__all__) <= set(dir(fastdkim))
        print("ok")
    """)
    assert out.strip() == "ok"


def test_package_modules_reachable_as_attributes() -> None:
    """``import fastdkim`` then ``fastdkim.keys.…`` works as it did when the
    root loaded everything; a name that is neither a module nor an export
    is an AttributeError (as ``hasattr`` expects), and a module that fails
    to import says why."""
    _run("""
        import fastdkim
        assert fastdkim.keys.parse_key_record is fastdkim.parse_key_record
        assert fastdkim.mailgen.generate_corpus
        assert not hasattr(fastdkim, "no_such_thing")
        try:
            fastdkim.no_such_thing
        except AttributeError as exc:
            assert "no_such_thing" in str(exc)
        else:
            raise AssertionError("no AttributeError")
    """)


@pytest.mark.parametrize("command", ["sign", "keygen"])
def test_a_command_loads_neither_verification_nor_arc_nor_the_milter(command: str) -> None:
    _run("""
        import sys
        from fastdkim.cli import main
        try:
            main([%r, "--help"])
        except SystemExit:
            pass
        loaded = set(sys.modules)
        for name in ("fastdkim.verification", "fastdkim.arc", "fastdkim.arc_chain", "fastdkim.milter",
                     "fastdkim.dmarc", "fastdkim.authres", "fastdkim.cli.verify", "fastdkim.cli.arc_seal",
                     "dns.resolver"):
            assert name not in loaded, name
    """ % command)


def test_every_command_is_listed_and_reachable() -> None:
    out = _run("""
        import contextlib, io
        from fastdkim.cli import COMMANDS, main, build_parser
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            assert main([]) == 2
        for name in COMMANDS:
            assert name in err.getvalue(), name
        with contextlib.redirect_stderr(io.StringIO()):
            try:
                main(["no-such-command"])
            except SystemExit as exc:
                assert exc.code == 2
        import fastdkim.cli as cli
        assert cli.sign.run and cli._SignSetup and cli.generate_corpus
        print(len(COMMANDS))
    """)
    assert out.strip() == "8"


def test_workers_server_preloads_only_what_workers_run() -> None:
    """The server that bulk workers are forked from imports what a worker
    runs (signing), not verification or the engine that drives them."""
    _run("""
        import sys
        if __name__ == "__main__":
            from fastdkim._engine import _context
            ctx = _context()
            if ctx.get_start_method() == "forkserver":
                from multiprocessing import forkserver
                assert forkserver._forkserver._preload_modules == ["fastdkim._work"]
            import fastdkim._work
            assert "fastdkim.verification" not in sys.modules
    """)
