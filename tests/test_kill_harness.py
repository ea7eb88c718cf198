"""`fastdkim sign --in-place` killed with SIGKILL at many moments, on an mbox and
on a Maildir, then `fastdkim recover`: every message is present exactly once,
either as it was or signed and verifying, and no lock, journal, temporary file
or process is left behind.

The moments are spread over the whole run (fractions of the time an
uninterrupted run takes) and packed densely over the rewrite of the mbox
itself (measured from the moment its journal appears).  The messages are
read back with Python's own ``mailbox`` module, not with fastdkim's.

The signer killed is a process of its own; ``recover`` (and ``keygen``) run
in this process (``cli.main``), as nothing they check needs a process of
their own.
"""
from __future__ import annotations

import ctypes
import fcntl
import mailbox
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import uuid

import pytest

import fastdkim
from fastdkim.dns import zone_file_key_source

from helpers_cli import run as fastdkim_in_process

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the harness looks for leftover processes in /proc")

N_MBOX = 600
N_MAILDIR = 300
PR_SET_CHILD_SUBREAPER = 36


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    r = fastdkim_in_process("keygen", "--domain", "example.com", "--selector", "rsa", "--out", d)
    assert r.returncode == 0, r.stderr
    return {"key": d / "rsa._domainkey.example.com.pem",
            "source": zone_file_key_source(str(d / "rsa._domainkey.example.com.txt"))}


def _message(i: int, rng: random.Random) -> bytes:
    body = b"".join(b"line %d of message %d, some words to sign\n" % (j, i) for j in range(rng.randint(3, 400)))
    return (b"From: Sender <sender@example.com>\nTo: rcpt@example.org\nSubject: message %d\n"
            b"Message-ID: <m%d@example.com>\nDate: Mon, 1 Jan 2029 00:00:00 +0000\n\n" % (i, i)) + body


def _sign_args(keys):
    return ["sign", "--domain", "example.com", "--selector", "rsa", "--key", keys["key"], "--in-place",
            "--jobs", "2", "--quiet"]


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


def _run_and_kill(cmd, cwd, kill_at, anchor=None):
    """Start ``cmd``; SIGKILL it ``kill_at`` seconds after it starts or, with
    ``anchor`` (a function of no arguments), after ``anchor()`` first returns
    true.  Returns whether it was killed before finishing, and asserts that no
    process it started outlives it.

    While it runs, this process is the reaper of the orphans it leaves (not
    init, which may take a second or more to reap them): its processes are
    gone, not zombies, when this returns, as ``recover`` (which leaves alone
    the temporary files of processes that still exist) must find them."""
    tag = "FASTDKIM_HARNESS_%s" % uuid.uuid4().hex
    env = dict(os.environ, **{tag: "1"})
    _child_subreaper(True)
    try:
        p = subprocess.Popen([sys.executable, "-m", "fastdkim", *map(str, cmd)], cwd=cwd, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        t0 = time.monotonic()
        if anchor is not None:
            while not anchor() and p.poll() is None and time.monotonic() - t0 < 120:
                time.sleep(0.0002)
            t0 = time.monotonic()
        while time.monotonic() - t0 < kill_at and p.poll() is None:
            time.sleep(0.0005)
        killed = p.poll() is None
        if killed:
            p.send_signal(signal.SIGKILL)
        p.wait(timeout=120)
        seen = set()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            seen.update(_tagged_processes(tag))
            for pid in seen:
                try:
                    os.waitpid(pid, os.WNOHANG)  # an orphan that came to this process
                except ChildProcessError:
                    pass  # not (or no longer) a child of this process
            if not _tagged_processes(tag) and not any(os.path.exists("/proc/%d" % pid) for pid in seen):
                break
            time.sleep(0.05)
    finally:
        _child_subreaper(False)
    left = {pid: _cmdline(pid) for pid in _tagged_processes(tag)}
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    err = p.stderr.read()
    p.stderr.close()
    assert left == {}, "processes outlived the killed fastdkim: %s" % left
    assert killed or p.returncode == 0, err
    return killed


def _child_subreaper(on: bool) -> None:
    """Make this process the reaper of its descendants' orphans, or stop
    (Linux ``prctl(PR_SET_CHILD_SUBREAPER)``).

    :raises OSError: the system refused."""
    if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def _cmdline(pid: int) -> str:
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace")[:300]
    except OSError:
        return "?"


def _check_message(data: bytes, original: bytes, keys) -> str:
    if data == original:
        return "original"
    assert data.startswith(b"DKIM-Signature:") and data.endswith(original), data[:300]
    res = fastdkim.verify(data, keys=keys["source"])
    assert [r.status for r in res] == ["pass"], [(r.status, r.reason) for r in res]
    return "signed"


def _mbox_messages(path):
    box = mailbox.mbox(str(path), create=False)
    try:
        out = {}
        for key in box.keys():
            data = box.get_bytes(key)
            mid = mailbox.mboxMessage(data)["Message-ID"]
            assert mid not in out, "message %s present twice" % mid
            out[mid] = data
        return out
    finally:
        box.close()


def _mbox_trials():
    trials = [("run", f) for f in (0.1, 0.25, 0.4, 0.55, 0.7, 0.85, 0.95)]
    trials += [("rewrite", d) for d in (0, 0.0005, 0.001, 0.002, 0.004, 0.007, 0.01, 0.015, 0.02, 0.03, 0.05)]
    return trials


def test_mbox_in_place_killed_anywhere_loses_nothing(keys, tmp_path):
    rng = random.Random(7)
    pristine = tmp_path / "pristine.mbox"
    with open(pristine, "wb") as fh:
        for i in range(N_MBOX):
            fh.write(b"From sender@example.com Mon Jan  1 00:00:00 2029\n" + _message(i, rng) + b"\n")
    originals = _mbox_messages(pristine)
    assert len(originals) == N_MBOX
    late = b"From late@example.com Mon Jan  1 00:00:00 2029\n" + _message(N_MBOX, rng) + b"\n"
    late_original = _mbox_messages_of_bytes(tmp_path, late)

    # how long an uninterrupted run takes
    work = tmp_path / "timing"
    work.mkdir()
    shutil.copy(pristine, work / "box.mbox")
    t0 = time.monotonic()
    assert not _run_and_kill(_sign_args(keys) + ["box.mbox"], work, 600)
    full = time.monotonic() - t0
    assert set(_mbox_messages(work / "box.mbox")) == set(originals)

    outcomes = []
    for n, (kind, at) in enumerate(_mbox_trials()):
        work = tmp_path / ("t%d" % n)
        work.mkdir()
        box = work / "box.mbox"
        shutil.copy(pristine, box)
        if kind == "run":
            killed = _run_and_kill(_sign_args(keys) + ["box.mbox"], work, at * full)
        else:
            journal = work / ".box.mbox.fastdkim-journal"
            killed = _run_and_kill(_sign_args(keys) + ["box.mbox"], work, at, anchor=lambda: os.path.exists(journal))
        delivered = n % 2 == 1
        if delivered:  # a delivery agent that locks with fcntl only appends while fastdkim is dead
            with open(box, "ab") as fh:
                fcntl.lockf(fh, fcntl.LOCK_EX)
                fh.write(late)
        r = fastdkim_in_process("recover", box)
        assert r.returncode == 0, r.stderr
        assert sorted(os.listdir(work)) == ["box.mbox"], (kind, at, os.listdir(work))
        got = _mbox_messages(box)
        expected = dict(originals, **(late_original if delivered else {}))
        assert set(got) == set(expected), (kind, at, set(expected) ^ set(got))
        states = [_check_message(got[mid], expected[mid], keys) for mid in sorted(expected)]
        outcomes.append((kind, at, killed, states.count("signed")))
    # the trials did hit the run at different stages: before, during and after the rewrite
    signed_counts = {c for _, _, k, c in outcomes if k}
    assert 0 in signed_counts and any(c > 0 for c in signed_counts), outcomes


def _mbox_messages_of_bytes(tmp_path, data):
    p = tmp_path / "one.mbox"
    p.write_bytes(data)
    return _mbox_messages(p)


def test_maildir_in_place_killed_anywhere_loses_nothing(keys, tmp_path):
    rng = random.Random(8)
    pristine = tmp_path / "pristine"
    for sub in ("cur", "new", "tmp"):
        (pristine / sub).mkdir(parents=True)
    originals = {}
    for i in range(N_MAILDIR):
        name = "%d.M%dP1.host%s" % (1700000000 + i, i, ":2,S" if i % 2 else "")
        sub = "cur" if i % 2 else "new"
        data = _message(i, rng)
        (pristine / sub / name).write_bytes(data)
        originals[os.path.join(sub, name)] = data

    work = tmp_path / "timing"
    shutil.copytree(pristine, work / "Maildir")
    t0 = time.monotonic()
    assert not _run_and_kill(_sign_args(keys) + ["Maildir"], work, 600)
    full = time.monotonic() - t0

    signed_seen = set()
    for n, (kind, at) in enumerate(_maildir_trials()):
        work = tmp_path / ("t%d" % n)
        shutil.copytree(pristine, work / "Maildir")
        if kind == "run":
            killed = _run_and_kill(_sign_args(keys) + ["Maildir"], work, at * full)
        else:
            killed = _run_and_kill(_sign_args(keys) + ["Maildir"], work, 0,
                                   anchor=_replaced(work / "Maildir", pristine, originals, at))
        r = fastdkim_in_process("recover", work / "Maildir")
        assert r.returncode == 0, r.stderr
        files = {os.path.join(sub, f) for sub in ("cur", "new", "tmp") for f in os.listdir(work / "Maildir" / sub)}
        assert files == set(originals), files ^ set(originals)  # no temporary file, no message lost or doubled
        states = [_check_message((work / "Maildir" / rel).read_bytes(), data, keys) for rel, data in originals.items()]
        if killed:
            signed_seen.add(states.count("signed"))
            if kind == "replaced":
                assert states.count("signed") >= at, (at, states.count("signed"))
    # the trials did hit the run at different stages: before and during the signing
    assert len(signed_seen) > 1, signed_seen


def _maildir_trials():
    """Fractions of an uninterrupted run (the start of which is the program
    starting, before any message is signed); then, since how much of the run
    is signing varies with the machine and its load, kills as soon as the
    first message and half the messages have been replaced by signed ones."""
    trials = [("run", f) for f in (0.15, 0.3, 0.45, 0.6, 0.75, 0.9)]
    trials += [("replaced", k) for k in (1, N_MAILDIR // 2)]
    return trials


def _replaced(maildir, pristine, originals, at_least: int):
    """A function telling whether ``at_least`` of the messages in the copy
    ``maildir`` of ``pristine`` have been replaced (a file of another size
    under the message's name: signed).  It looks at the files again only
    when a directory has changed since it last did, or 5 ms later (it is
    called every fraction of a millisecond, beside the run it watches)."""
    sizes = {rel: os.path.getsize(pristine / rel) for rel in originals}
    dirs = [(sub, os.path.join(maildir, sub)) for sub in ("cur", "new")]
    last = {"stamp": None, "at": 0.0}

    def done() -> bool:
        stamp = tuple(os.stat(d).st_mtime_ns for _, d in dirs)
        now = time.monotonic()
        if stamp == last["stamp"] and now - last["at"] < 0.005:
            return False
        last["stamp"], last["at"] = stamp, now
        n = 0
        for sub, d in dirs:
            with os.scandir(d) as it:
                for entry in it:
                    size = sizes.get(os.path.join(sub, entry.name))
                    if size is not None and entry.stat().st_size != size:
                        n += 1
                        if n >= at_least:
                            return True
        return False

    return done
