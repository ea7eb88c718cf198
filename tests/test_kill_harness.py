"""`fastdkim sign --in-place` killed with SIGKILL at many moments, on an mbox and
on a Maildir, then `fastdkim recover`: every message is present exactly once,
either as it was or signed and verifying, and no lock, journal, temporary file
or process is left behind.

The moments are spread over the whole run (fractions of the time an
uninterrupted run takes) and packed densely over the rewrite of the mbox
itself (measured from the moment its journal appears).  The messages are
read back with Python's own ``mailbox`` module, not with fastdkim's.
"""
from __future__ import annotations

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

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the harness looks for leftover processes in /proc")

N_MBOX = 600
N_MAILDIR = 300


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    r = _fastdkim("keygen", "--domain", "example.com", "--selector", "rsa", "--out", d)
    assert r.returncode == 0, r.stderr
    return {"key": d / "rsa._domainkey.example.com.pem",
            "source": zone_file_key_source(str(d / "rsa._domainkey.example.com.txt"))}


def _fastdkim(*args, env=None):
    return subprocess.run([sys.executable, "-m", "fastdkim", *map(str, args)], capture_output=True, timeout=300,
                          env=env)


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


def _run_and_kill(cmd, cwd, kill_at, journal=None):
    """Start ``cmd``; SIGKILL it ``kill_at`` seconds after it starts or, with
    ``journal``, after that file appears.  Returns whether it was killed
    before finishing, and asserts that no process it started outlives it."""
    tag = "FASTDKIM_HARNESS_%s" % uuid.uuid4().hex
    env = dict(os.environ, **{tag: "1"})
    p = subprocess.Popen([sys.executable, "-m", "fastdkim", *map(str, cmd)], cwd=cwd, env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    t0 = time.monotonic()
    if journal is not None:
        while not os.path.exists(journal) and p.poll() is None and time.monotonic() - t0 < 120:
            time.sleep(0.0002)
        t0 = time.monotonic()
    while time.monotonic() - t0 < kill_at and p.poll() is None:
        time.sleep(0.0005)
    killed = p.poll() is None
    if killed:
        p.send_signal(signal.SIGKILL)
    p.wait(timeout=120)
    deadline = time.monotonic() + 10
    while _tagged_processes(tag) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = {pid: _cmdline(pid) for pid in _tagged_processes(tag)}
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    err = p.stderr.read()
    p.stderr.close()
    assert left == {}, "processes outlived the killed fastdkim: %s" % left
    assert killed or p.returncode == 0, err
    return killed


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
            killed = _run_and_kill(_sign_args(keys) + ["box.mbox"], work, at,
                                   journal=work / ".box.mbox.fastdkim-journal")
        delivered = n % 2 == 1
        if delivered:  # a delivery agent that locks with fcntl only appends while fastdkim is dead
            with open(box, "ab") as fh:
                fcntl.lockf(fh, fcntl.LOCK_EX)
                fh.write(late)
        r = _fastdkim("recover", box)
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
    for n, frac in enumerate((0.15, 0.3, 0.45, 0.6, 0.75, 0.9)):
        work = tmp_path / ("t%d" % n)
        shutil.copytree(pristine, work / "Maildir")
        killed = _run_and_kill(_sign_args(keys) + ["Maildir"], work, frac * full)
        r = _fastdkim("recover", work / "Maildir")
        assert r.returncode == 0, r.stderr
        files = {os.path.join(sub, f) for sub in ("cur", "new", "tmp") for f in os.listdir(work / "Maildir" / sub)}
        assert files == set(originals), files ^ set(originals)  # no temporary file, no message lost or doubled
        states = [_check_message((work / "Maildir" / rel).read_bytes(), data, keys) for rel, data in originals.items()]
        if killed:
            signed_seen.add(states.count("signed"))
    assert len(signed_seen) > 1, signed_seen
