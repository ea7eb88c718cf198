"""What a program pays for at start-up: the package root, the command line
and the bulk workers load only the modules they use.

Each check runs in a fresh interpreter (this one has loaded everything).
"""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

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


def test_workers_forked_from_a_caller_that_allows_it_only_while_it_runs_no_other_thread() -> None:
    """``fork``: workers are forked from the caller itself (no server process
    to start), but only while it runs no other thread; otherwise, and by
    default, they come from the server process."""
    out = _run("""
        import multiprocessing, threading, time
        if __name__ == "__main__":
            from fastdkim._engine import _context
            server = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
            assert _context().get_start_method() == server
            assert _context(fork=True).get_start_method() == "fork"
            stop = threading.Event()
            t = threading.Thread(target=stop.wait)
            t.start()
            try:
                assert _context(fork=True).get_start_method() == server
            finally:
                stop.set()
                t.join()
            print("ok")
    """)
    assert out.strip() == "ok"


def test_command_line_workers_are_its_own_children_and_sign(tmp_path: Path) -> None:
    """``fastdkim sign --jobs 2`` over a Maildir: the workers are forked from
    the command's process (their parent is it, not a server process), do
    not keep its signal handlers, and every message comes out signed."""
    import os

    from fastdkim.keys import generate_private_key, private_key_pem

    key = tmp_path / "k.pem"
    key.write_bytes(private_key_pem(generate_private_key("ed25519")))
    os.chmod(key, 0o600)
    md = tmp_path / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (md / sub).mkdir(parents=True)
    for i in range(40):
        (md / "new" / ("%d.M%d.host" % (i, i))).write_bytes(b"From: a@example.com\\r\\nSubject: %d\\r\\n\\r\\nbody\\r\\n" % i)
    log = tmp_path / "workers.log"
    out = _run("""
        import os, signal, sys
        if __name__ == "__main__":
            from fastdkim import _work
            from fastdkim.cli import main
            real = _work._sign_into_chunk

            def spy(ref, items, option):
                with open(%r, "a") as fh:
                    fh.write("%%d %%d %%d\\n" %% (os.getpid(), os.getppid(),
                                                signal.getsignal(signal.SIGTERM) is signal.SIG_DFL))
                return real(ref, items, option)

            # (the workers are forked from this process, so they run this spy)
            import fastdkim._into as into
            into._sign_into_chunk = spy
            rc = main(["sign", "--domain", "example.com", "--selector", "s", "--key", %r, "--jobs", "2",
                       "--quiet", "--out", %r, %r])
            assert rc == 0, rc
            rows = [tuple(map(int, line.split())) for line in open(%r)]
            assert rows and all(ppid == os.getpid() and pid != os.getpid() and default for pid, ppid, default in rows), rows
            print("ok")
    """ % (str(log), str(key), str(tmp_path / "out"), str(md), str(log)))
    assert out.strip() == "ok"
    signed = [(tmp_path / "out" / "new" / n).read_bytes() for n in os.listdir(tmp_path / "out" / "new")]
    assert len(signed) == 40 and all(m.startswith(b"DKIM-Signature:") for m in signed)


def test_importing_every_module_warns_of_nothing() -> None:
    """Warnings at import reach every user's program (a deprecated name of a
    dependency among them, as newer releases deprecate them)."""
    code = textwrap.dedent("""
        import importlib, pkgutil, warnings
        warnings.simplefilter("error")
        import fastdkim
        for mod in pkgutil.walk_packages(fastdkim.__path__, "fastdkim."):
            if mod.name.startswith("fastdkim.dask") or mod.name.endswith("__main__"):
                continue  # (an optional extra: its own imports; the command line, run)
            importlib.import_module(mod.name)
        print("ok")
    """)
    got = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=child_env())
    assert got.returncode == 0 and got.stdout.strip() == "ok", got.stderr
