"""`fastdkim sign` on the bulk engine, and fastdkim.bulk.sign_files_into: files
signed and written by the workers, put in place in batches with one flush each;
modes kept; a message that cannot be signed never swallowed; an mbox read once;
and every process of the command ending with it, however it is stopped."""
from __future__ import annotations

import io
import os
import signal
import stat
import subprocess
import sys
import threading
import time
import uuid

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

import fastdkim
from fastdkim import _into, bulk
from fastdkim.errors import ReplacedMeanwhile
from fastdkim.keys import private_key_pem, public_key_record
from fastdkim.signing import Signer

from conftest import child_env
from helpers_cli import run

MSG = b"From: Joe <joe@example.com>\nTo: x@example.org\nSubject: hi\n\nHello there.\n"
NO_FROM = b"To: x@example.org\nSubject: no author\n\nbody\n"


@pytest.fixture(scope="module")
def key(tmp_path_factory):
    k = ed25519.Ed25519PrivateKey.generate()
    d = tmp_path_factory.mktemp("key")
    path = d / "ed.pem"
    path.write_bytes(private_key_pem(k))
    return {"path": path, "key": k, "keys": {"ed._domainkey.example.com": public_key_record(k.public_key())}}


def sign_args(key):
    return ["--domain", "example.com", "--selector", "ed", "--key", key["path"]]


def _verifies(data: bytes, key) -> bool:
    res = fastdkim.verify(data, keys=key["keys"])
    return len(res) == 1 and res[0].status == "pass"


def _temporaries(root) -> list:
    return [p for p in root.rglob(".fastdkim-*")]


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


# -- one message that cannot be signed: written out unchanged, reported, status 1 -------------------


def test_unsignable_message_is_written_unchanged_to_stdout(key, tmp_path):
    m = tmp_path / "nofrom.eml"
    m.write_bytes(NO_FROM)
    r = run("sign", *sign_args(key), m)
    assert r.returncode == 1 and r.stdout == NO_FROM
    assert b"not signed" in r.stderr and b"From" in r.stderr and b"unchanged" in r.stderr
    r = run("sign", *sign_args(key), input=NO_FROM)  # a filter on standard input
    assert r.returncode == 1 and r.stdout == NO_FROM and b"From" in r.stderr


def test_unsignable_message_is_written_unchanged_to_out(key, tmp_path):
    m = tmp_path / "nofrom.eml"
    m.write_bytes(NO_FROM)
    out = tmp_path / "out.eml"
    r = run("sign", *sign_args(key), "--out", out, m)
    assert r.returncode == 1 and out.read_bytes() == NO_FROM and b"From" in r.stderr


def test_small_inputs_are_signed_without_worker_processes(key, tmp_path, monkeypatch):
    from fastdkim import _engine

    def no_pool(*a, **k):
        raise AssertionError("a pool was started for a small input")

    monkeypatch.setattr(_engine, "_start_pool", no_pool)
    m = tmp_path / "m.eml"
    m.write_bytes(MSG)
    box = tmp_path / "in.mbox"
    box.write_bytes(_mbox(3))
    assert run("sign", *sign_args(key), "--jobs", "2", "--in-place", m).returncode == 0
    assert run("sign", *sign_args(key), "--jobs", "2", "--in-place", box).returncode == 0
    r = run("sign", *sign_args(key), "--jobs", "2", input=box.read_bytes())
    assert r.returncode == 0 and r.stdout.count(b"DKIM-Signature:") == 6


def test_help_says_unsignable_messages_are_written_unchanged():
    r = run("sign", "--help")
    text = b" ".join(r.stdout.split())
    assert r.returncode == 0 and b"written out unchanged" in text and b"SIGTERM" in text


# -- modes ------------------------------------------------------------------------------------------


def _private_maildir(root, n=5):
    for sub in ("cur", "new", "tmp"):
        (root / sub).mkdir(parents=True)
    for i in range(n):
        p = root / ("cur" if i % 2 else "new") / ("%d.M%d.host" % (1700000000 + i, i))
        p.write_bytes(MSG)
        p.chmod(0o600)
    (root / "new" / "nofrom").write_bytes(NO_FROM)
    (root / "new" / "nofrom").chmod(0o600)
    for sub in ("cur", "new", "tmp"):
        (root / sub).chmod(0o700)
    root.chmod(0o700)


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_out_keeps_the_modes_of_a_private_maildir(key, tmp_path, umask_022, jobs):
    md = tmp_path / "Maildir"
    _private_maildir(md, 20)  # (more than a few: with --jobs 2, worker processes write them)
    out = tmp_path / "deeper" / "signed"
    r = run("sign", *sign_args(key), "--out", out, "--jobs", jobs, "--quiet", md)
    assert r.returncode == 1 and b"signed 20 of 21 messages" in r.stderr, r.stderr
    for d in (out, out / "cur", out / "new", out / "tmp"):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700, d
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) == 21
    for p in files:
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
    assert (out / "new" / "nofrom").read_bytes() == NO_FROM  # written out unchanged
    assert stat.S_IMODE((tmp_path / "deeper").stat().st_mode) == 0o755  # a parent above the output: as usual
    assert _temporaries(tmp_path) == []


def test_out_of_a_directory_tree_makes_each_directory_like_its_input(key, tmp_path, umask_022):
    src = tmp_path / "queue"
    (src / "a" / "b").mkdir(parents=True)
    (src / "a" / "b" / "m.eml").write_bytes(MSG)
    (src / "a" / "b" / "m.eml").chmod(0o640)
    for i in range(20):
        (src / ("top%d.eml" % i)).write_bytes(MSG)
    (src / "a" / "b").chmod(0o750)
    (src / "a").chmod(0o710)
    src.chmod(0o711)
    out = tmp_path / "out"
    r = run("sign", *sign_args(key), "--out", out, "--jobs", "2", "--quiet", src)
    assert r.returncode == 0, r.stderr
    assert [stat.S_IMODE(d.stat().st_mode) for d in (out, out / "a", out / "a" / "b")] == [0o711, 0o710, 0o750]
    assert stat.S_IMODE((out / "a" / "b" / "m.eml").stat().st_mode) == 0o640
    assert _verifies((out / "a" / "b" / "m.eml").read_bytes(), key)


def test_one_message_and_an_mbox_out_keep_the_input_mode(key, tmp_path, umask_022):
    m = tmp_path / "m.eml"
    m.write_bytes(MSG)
    m.chmod(0o600)
    r = run("sign", *sign_args(key), "--out", tmp_path / "new" / "s.eml", m)
    assert r.returncode == 0, r.stderr
    assert stat.S_IMODE((tmp_path / "new" / "s.eml").stat().st_mode) == 0o600
    box = tmp_path / "in.mbox"
    box.write_bytes(b"From x@example.com Mon Jan  1 00:00:00 2029\n" + MSG + b"\n")
    box.chmod(0o600)
    r = run("sign", *sign_args(key), "--out", tmp_path / "out.mbox", "--jobs", "1", box)
    assert r.returncode == 0, r.stderr
    assert stat.S_IMODE((tmp_path / "out.mbox").stat().st_mode) == 0o600


def test_in_place_keeps_the_mode(key, tmp_path):
    md = tmp_path / "Maildir"
    _private_maildir(md, 20)
    r = run("sign", *sign_args(key), "--in-place", "--jobs", "2", "--quiet", md)
    assert r.returncode == 1, r.stderr  # the message without From is left as it is, and reported
    assert (md / "new" / "nofrom").read_bytes() == NO_FROM
    for p in md.rglob("*"):
        if p.is_file():
            assert stat.S_IMODE(p.stat().st_mode) == 0o600
    assert _temporaries(tmp_path) == []


# -- an mbox is read once -----------------------------------------------------------------------------


def _mbox(n: int, extra: bytes = b"") -> bytes:
    return b"".join(b"From x@example.com Mon Jan  1 00:00:00 2029\n" + MSG.replace(b"hi", b"hi %d" % i) + extra + b"\n"
                    for i in range(n))


def test_an_mbox_is_read_once(key, tmp_path, monkeypatch):
    from fastdkim import mailstore

    box = tmp_path / "in.mbox"
    box.write_bytes(_mbox(30))
    real = mailstore.iter_mbox
    reads = []

    def counting(fh):
        reads.append(fh)
        return real(fh)

    monkeypatch.setattr(mailstore, "iter_mbox", counting)
    for extra in (["--out", tmp_path / "o.mbox"], ["--in-place"], []):
        reads.clear()
        r = run("sign", *sign_args(key), "--jobs", "1", *extra, box)
        assert r.returncode == 0, r.stderr
        assert len(reads) == 1, extra


def test_mbox_progress_goes_by_bytes_without_counting_first(key, tmp_path, monkeypatch, capsys):
    import argparse

    from fastdkim import mailstore
    from fastdkim.cli._sign_mbox import sign_mbox
    from fastdkim.mailstore import Summary

    box = tmp_path / "in.mbox"
    box.write_bytes(_mbox(20))
    real = mailstore.iter_mbox
    reads = []
    monkeypatch.setattr(mailstore, "iter_mbox", lambda fh: reads.append(fh) or real(fh))
    args = argparse.Namespace(in_place=False, out=None, force=False, lock_timeout=1.0)
    out = io.BytesIO()
    summary = Summary()
    sign_mbox(str(box), args, (Signer("example.com", "ed", key["key"]),), 1, summary, True, to=out)
    assert len(reads) == 1 and summary.signed == 20
    shown = capsys.readouterr().err
    assert "20 msgs" in shown and "MB" in shown and "#" * 30 in shown  # full once every octet was read
    assert out.getvalue().count(b"DKIM-Signature:") == 20


def test_mbox_messages_in_flight_are_bounded_in_octets(key):
    """The engine's ``max_bytes``: however large the window, at most that many
    octets of messages are in flight (an mbox of large messages stays small
    in memory)."""
    big = MSG + b"x" * 200_000 + b"\n"
    consumed = 0

    def gen():
        nonlocal consumed
        for _ in range(60):
            consumed += len(big)
            yield big

    signer = Signer("example.com", "ed", key["key"])
    seen = 0
    limit = 1 << 20
    for r in bulk._sign_many(gen(), (signer,), 2, None, 1000, max_bytes=limit):
        assert r.ok
        seen += len(big)
        assert consumed - seen <= limit + bulk.CHUNK_BYTES + len(big), (consumed, seen)
    assert seen == 60 * len(big)


# -- sign_files_into -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def signer(key):
    return Signer("example.com", "ed", key["key"])


def _files(d, n, bad=()):
    d.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        p = d / ("m%03d.eml" % i)
        p.write_bytes(NO_FROM if i in bad else MSG.replace(b"hi", b"hi %d" % i))
        paths.append(p)
    return paths


@pytest.mark.parametrize("jobs", [1, 2])
def test_sign_files_into_results_in_order_and_outputs_in_place(signer, key, tmp_path, jobs):
    srcs = _files(tmp_path / "in", 40, bad={7})
    out = tmp_path / "out"
    pairs = [(p, out / "sub" / p.name) for p in srcs] + [42, (tmp_path / "in" / "missing", out / "missing")]
    results = list(bulk.sign_files_into(pairs, signer, jobs=jobs, window=16))
    assert [r.index for r in results] == list(range(42))
    for r, p in zip(results, srcs):
        data = (out / "sub" / p.name).read_bytes()
        assert r.written and r.size == p.stat().st_size
        if r.index == 7:
            assert not r.signed and data == NO_FROM and "From" in r.reason
        else:
            assert r.ok and _verifies(data, key), r.reason
    assert isinstance(results[40].error, TypeError) and not results[40].written
    assert isinstance(results[41].error, FileNotFoundError) and not (out / "missing").exists()
    again = list(bulk.sign_files_into(pairs[:3], signer, jobs=jobs))
    assert all(isinstance(r.error, FileExistsError) and not r.written for r in again)
    assert all(r.ok for r in bulk.sign_files_into(pairs[:3], signer, jobs=jobs, overwrite=True))
    assert _temporaries(tmp_path) == []


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_sign_files_into_reads_a_fifo_whole_and_reports_a_directory(signer, key, tmp_path):
    """A message file is read whole through its descriptor: a FIFO is read
    to its end (its size says nothing), a directory is an I/O error of its
    own, and modes other than the umask's come through."""
    import threading

    srcs = _files(tmp_path / "in", 2)
    srcs[1].chmod(0o666)
    fifo = tmp_path / "in" / "fifo.eml"
    os.mkfifo(fifo)
    body = MSG.replace(b"hi", b"hi " + b"x" * 200_000)  # more than a pipe holds at once

    def feed():
        with open(fifo, "wb") as fh:
            fh.write(body)

    t = threading.Thread(target=feed)
    t.start()
    (tmp_path / "in" / "adir").mkdir()
    out = tmp_path / "out"
    names = [srcs[0].name, srcs[1].name, "fifo.eml", "adir"]
    results = list(bulk.sign_files_into([(tmp_path / "in" / n, out / n) for n in names], signer, jobs=1))
    t.join()
    assert [r.ok for r in results] == [True, True, True, False]
    assert _verifies((out / "fifo.eml").read_bytes(), key) and results[2].size == 0
    assert (out / "fifo.eml").read_bytes().endswith(body)
    assert isinstance(results[3].error, IsADirectoryError) and not (out / "adir").exists()
    assert stat.S_IMODE((out / srcs[1].name).stat().st_mode) == 0o666
    assert _temporaries(tmp_path) == []


def test_sign_files_into_flushes_once_a_batch_not_once_a_file(signer, tmp_path, monkeypatch):
    srcs = _files(tmp_path / "in", 40)
    monkeypatch.setattr(_into, "BATCH_SECONDS", 3600.0)  # batches by count only, however slow the machine
    syncs, fsyncs = [], []
    real_sync, real_fsync = _into.sync_file_systems, os.fsync
    monkeypatch.setattr(_into, "sync_file_systems", lambda dirs: syncs.append(set(dirs)) or real_sync(dirs))
    monkeypatch.setattr(os, "fsync", lambda fd: fsyncs.append(fd) or real_fsync(fd))
    out = tmp_path / "out"
    results = list(bulk.sign_files_into([(p, out / p.name) for p in srcs], signer, jobs=1))
    assert all(r.ok for r in results)
    # batches of 16 then 32 (the last one cut short): two flushes of the file
    # system, and one flush of the directory after each batch's renames
    assert len(syncs) == 2 and len(fsyncs) == 2


def test_sign_files_into_in_place(signer, key, tmp_path):
    srcs = _files(tmp_path / "q", 6, bad={2})
    srcs[0].chmod(0o640)
    results = list(bulk.sign_files_into(srcs, signer, jobs=2, in_place=True))
    assert [r.ok for r in results] == [True, True, False, True, True, True]
    assert not results[2].written and srcs[2].read_bytes() == NO_FROM  # left as it is
    assert stat.S_IMODE(srcs[0].stat().st_mode) == 0o640
    assert all(_verifies(p.read_bytes(), key) for i, p in enumerate(srcs) if i != 2)
    assert isinstance(list(bulk.sign_files_into([(srcs[0], srcs[1])], signer, jobs=1, in_place=True))[0].error,
                      TypeError)
    assert _temporaries(tmp_path) == []


def test_in_place_a_file_filed_away_meanwhile_is_not_written_back(signer, tmp_path, monkeypatch):
    srcs = _files(tmp_path / "q", 3)
    real = _into._Batch.commit

    def client_files_one_first(self):
        if self.rows and self.rows[0].tmp is not None:
            os.rename(str(srcs[1]), str(srcs[1]) + ":2,S")  # a mail client filing it
        return real(self)

    monkeypatch.setattr(_into._Batch, "commit", client_files_one_first)
    results = list(bulk.sign_files_into(srcs, signer, jobs=1, in_place=True))
    assert [r.ok for r in results] == [True, False, True]
    assert isinstance(results[1].error, ReplacedMeanwhile)
    assert sorted(os.listdir(tmp_path / "q")) == ["m000.eml", "m001.eml:2,S", "m002.eml"]
    assert (tmp_path / "q" / "m001.eml:2,S").read_bytes() == MSG.replace(b"hi", b"hi 1")


@pytest.mark.parametrize("jobs", [1, 2])
def test_stopping_early_puts_what_is_signed_in_place_and_leaves_no_temporary(signer, key, tmp_path, jobs):
    srcs = _files(tmp_path / "q", 300)
    it = bulk.sign_files_into(srcs, signer, jobs=jobs, in_place=True, window=64)
    first = [next(it) for _ in range(5)]
    it.close()
    assert all(r.ok for r in first)
    states = []
    for p in srcs:
        data = p.read_bytes()
        states.append("original" if data.startswith(b"From:") else "signed")
        if data.startswith(b"DKIM"):
            assert _verifies(data, key)
    assert states[:5] == ["signed"] * 5
    assert _temporaries(tmp_path) == []


def test_leftovers_of_a_killed_run_are_swept(signer, tmp_path):
    srcs = _files(tmp_path / "q", 2)
    from fastdkim import _owner

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / "q" / (".fastdkim-%s.%d.abc_x.tmp" % (_owner.host(), int(dead.stdout)))
    stale.write_bytes(b"half a message")
    assert all(r.ok for r in bulk.sign_files_into(srcs, signer, jobs=1, in_place=True))
    assert not stale.exists()


def test_scan_files_tells_links_and_lists_as_list_files(tmp_path):
    from fastdkim.mailstore import detect, list_files, scan_files

    d = tmp_path / "d"
    (d / "sub").mkdir(parents=True)
    (d / "b.eml").write_bytes(MSG)
    (d / "a.eml").symlink_to(d / "b.eml")
    (d / ".hidden").write_bytes(MSG)
    (d / "sub" / "c.eml").write_bytes(MSG)
    (d / "linked").symlink_to(d / "sub")  # a link to a directory: not followed
    src = detect(str(d))
    assert scan_files(src) == [("a.eml", True), ("b.eml", False), (os.path.join("sub", "c.eml"), False)]
    assert list_files(src) == [name for name, _ in scan_files(src)]


def test_same_file_through_a_link_is_signed_once(key, tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    (d / "b.eml").write_bytes(MSG)
    (d / "a.eml").symlink_to(d / "b.eml")
    r = run("sign", *sign_args(key), "--in-place", "--jobs", "1", "--quiet", d, d / "b.eml")
    assert r.returncode == 0 and b"signed 1 of 1" in r.stderr, r.stderr
    assert (d / "a.eml").is_symlink() and (d / "b.eml").read_bytes().count(b"DKIM-Signature:") == 1


def test_sign_files_into_argument_errors(signer):
    with pytest.raises(TypeError, match="signer"):
        bulk.sign_files_into([], "example.com")
    with pytest.raises(fastdkim.errors.OptionError, match="jobs"):
        bulk.sign_files_into([], signer, jobs=0)


# -- every process ends with the command ----------------------------------------------------------


def _tagged_processes(tag: str):
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/environ" % pid, "rb") as fh:
                if tag.encode() in fh.read():
                    found.append(int(pid))
        except OSError:
            pass
    return found


@pytest.fixture(scope="module")
def big_mbox(tmp_path_factory):
    box = tmp_path_factory.mktemp("big") / "big.mbox"
    box.write_bytes(_mbox(20_000, b"some more body text to sign\n" * 4))
    return box


def _start(key, box):
    tag = "FASTDKIM_CLI_BULK_%s" % uuid.uuid4().hex
    env = dict(child_env(), **{tag: "1"})
    p = subprocess.Popen([sys.executable, "-m", "fastdkim", "sign", *map(str, sign_args(key)), "--jobs", "2", str(box)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    first = p.stdout.read(4096)  # signed output flows: the workers are at work
    assert first.startswith(b"From x@example.com"), p.stderr.read()
    time.sleep(0.3)  # the pipe fills up and the command waits on it
    return p, tag


def _gone_within(tag: str, seconds: float) -> dict:
    deadline = time.monotonic() + seconds
    while _tagged_processes(tag) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = {}
    for pid in _tagged_processes(tag):
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as fh:
                left[pid] = fh.read().replace(b"\0", b" ")[:200]
        except OSError:
            pass
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return left


@pytest.mark.skipif(sys.platform != "linux", reason="looks for leftover processes in /proc")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=["TERM", "INT", "HUP"])
def test_a_signal_ends_every_process_and_the_pipe(key, big_mbox, sig):
    p, tag = _start(key, big_mbox)
    eof = threading.Event()

    def drain():
        while p.stdout.read(1 << 16):
            pass
        eof.set()

    p.send_signal(sig)
    threading.Thread(target=drain, daemon=True).start()
    try:
        assert eof.wait(15), "the pipe stayed open: some process still holds it"
        p.wait(timeout=15)
    finally:
        if p.poll() is None:
            p.kill()
    err = p.stderr.read()
    assert p.returncode == 128 + sig, (p.returncode, err)
    assert b"Traceback" not in err, err
    assert _gone_within(tag, 5) == {}


@pytest.mark.skipif(sys.platform != "linux", reason="looks for leftover processes in /proc")
def test_a_closed_stdout_ends_every_process(key, big_mbox):
    p, tag = _start(key, big_mbox)
    p.stdout.close()  # the reader goes away (`... | head -c 4096`)
    try:
        p.wait(timeout=15)
    finally:
        if p.poll() is None:
            p.kill()
    err = p.stderr.read()
    assert p.returncode == 141 and b"Traceback" not in err and b"closed" in err, (p.returncode, err)
    assert _gone_within(tag, 5) == {}


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_files_named_without_a_directory_are_signed_in_place_and_into(key, tmp_path, monkeypatch, jobs):
    """Message files named relative to the current directory, with no
    directory part (`fastdkim sign --in-place a.eml b.eml`), are signed like
    any others: their outputs are put in place in the current directory."""
    monkeypatch.chdir(tmp_path)
    names = ["a.eml", "b.eml", "c.eml"]
    for i, n in enumerate(names):
        (tmp_path / n).write_bytes(MSG.replace(b"hi", b"hi %d" % i))
    r = run("sign", *sign_args(key), "--jobs", jobs, "--in-place", *names)
    assert r.returncode == 0, r.stderr
    assert all(_verifies((tmp_path / n).read_bytes(), key) for n in names)
    for i, n in enumerate(names):  # (unsigned again, for the library's turn)
        (tmp_path / n).write_bytes(MSG.replace(b"hi", b"hi %d" % i))
    pairs = [(n, "out-" + n) for n in names]
    results = list(bulk.sign_files_into(pairs, Signer("example.com", "ed", key["key"]), jobs=int(jobs)))
    assert all(res.ok for res in results), [res.reason for res in results]
    assert all(_verifies((tmp_path / ("out-" + n)).read_bytes(), key) for n in names)
    assert _temporaries(tmp_path) == []


def test_progress_total_counts_each_file_once(key, tmp_path, monkeypatch):
    """A directory named twice, a file of it named too, a link to another:
    each message is signed once, and the progress bar's total says so."""
    from fastdkim.cli import _common

    d = tmp_path / "in"
    d.mkdir()
    for i in range(20):
        (d / ("m%02d.eml" % i)).write_bytes(MSG)
    (d / "link.eml").symlink_to(d / "m00.eml")
    totals = []

    class Recording(_common._Progress):
        def __init__(self, label, total, *rest, **kw):
            totals.append(total)
            super().__init__(label, total, *rest, **kw)

    monkeypatch.setattr(_common, "_Progress", Recording)  # (imported by the command when it runs)
    r = run("sign", *sign_args(key), "--jobs", "1", "--in-place", d, d, d / "m03.eml")
    assert r.returncode == 0, r.stderr
    assert totals == [20]
    assert all(p.read_bytes().count(b"DKIM-Signature:") == 1 for p in d.iterdir())
    totals.clear()
    out = tmp_path / "out"
    (d / "link.eml").unlink()
    r = run("sign", *sign_args(key), "--jobs", "1", "--out", out, d)  # nothing named twice: listed as it is
    assert r.returncode == 0, r.stderr
    assert totals == [20] and len(list(out.iterdir())) == 20
