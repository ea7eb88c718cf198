"""Writing files safely (fastdkim._files): through a temporary file moved into
place, never a partial file, never a temporary file left behind."""
from __future__ import annotations

import errno
import io
import os
import stat
import threading

import pytest

from fastdkim import _files
from fastdkim._files import ReplacedMeanwhile, atomic_write, current_umask, file_identity, write_signed


def _writes(data: bytes):
    def write(out):
        out.write(data)
    return write


def _leftovers(directory) -> list:
    return sorted(n for n in os.listdir(directory) if n.startswith(".fastdkim-"))


def test_current_umask_reads_without_changing_it():
    old = os.umask(0o027)
    try:
        assert current_umask() == 0o027
        assert current_umask() == 0o027  # still: it was read, not reset
    finally:
        os.umask(old)


def test_new_file_gets_the_umask_or_the_mode_asked_for(tmp_path):
    p = tmp_path / "new"
    atomic_write(str(p), _writes(b"data"), overwrite=False)
    assert p.read_bytes() == b"data"
    assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~current_umask()
    q = tmp_path / "secret"
    atomic_write(str(q), _writes(b"k"), overwrite=False, mode=0o600)
    assert stat.S_IMODE(q.stat().st_mode) == 0o600
    assert _leftovers(tmp_path) == []


def test_an_existing_file_is_kept_without_overwrite(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(b"old")
    with pytest.raises(FileExistsError):
        atomic_write(str(p), _writes(b"new"), overwrite=False)
    assert p.read_bytes() == b"old"
    dangling = tmp_path / "link"
    dangling.symlink_to(tmp_path / "nowhere")
    with pytest.raises(FileExistsError):  # a link, even to nothing, is an existing name
        atomic_write(str(dangling), _writes(b"new"), overwrite=False)
    assert not (tmp_path / "nowhere").exists()
    assert _leftovers(tmp_path) == []


def test_overwrite_keeps_the_mode_and_follows_links(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(b"old")
    p.chmod(0o640)
    ino = p.stat().st_ino
    atomic_write(str(p), _writes(b"new"), overwrite=True)
    assert p.read_bytes() == b"new" and stat.S_IMODE(p.stat().st_mode) == 0o640
    assert p.stat().st_ino != ino  # a new file moved into place, not the old one written over
    link = tmp_path / "link"
    link.symlink_to(p)
    atomic_write(str(link), _writes(b"through the link"), overwrite=True)
    assert link.is_symlink() and p.read_bytes() == b"through the link"
    assert _leftovers(tmp_path) == []


def test_missing_directories_are_made(tmp_path):
    p = tmp_path / "a" / "b" / "f"
    atomic_write(str(p), _writes(b"x"), overwrite=False)
    assert p.read_bytes() == b"x"


def test_a_directory_is_refused(tmp_path):
    for overwrite in (False, True):
        with pytest.raises(IsADirectoryError):
            atomic_write(str(tmp_path), _writes(b"x"), overwrite=overwrite)
    assert _leftovers(tmp_path) == []


def test_a_failing_writer_leaves_the_old_file_and_no_temporary(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(b"old")

    def boom(out):
        out.write(b"partial")
        raise RuntimeError("boom")

    for overwrite in (True, False):
        target = p if overwrite else tmp_path / "fresh"
        with pytest.raises(RuntimeError, match="boom"):
            atomic_write(str(target), boom, overwrite=overwrite)
    assert p.read_bytes() == b"old" and not (tmp_path / "fresh").exists()
    with pytest.raises(KeyboardInterrupt):  # an interrupt too
        atomic_write(str(p), lambda out: (_ for _ in ()).throw(KeyboardInterrupt()), overwrite=True)
    assert p.read_bytes() == b"old"
    assert _leftovers(tmp_path) == []


def test_a_directory_that_refuses_temporary_files_names_the_target(tmp_path, monkeypatch):
    from fastdkim import _owner

    def refuse(directory):
        raise PermissionError(errno.EACCES, "Permission denied", directory)

    monkeypatch.setattr(_owner, "mkstemp", refuse)
    target = tmp_path / "f"
    with pytest.raises(PermissionError) as info:
        atomic_write(str(target), _writes(b"x"), overwrite=False)
    assert info.value.filename == str(target)


def test_a_fifo_or_device_is_written_into(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    got = {}

    def reader():
        with open(fifo, "rb") as fh:
            got["data"] = fh.read()

    t = threading.Thread(target=reader)
    t.start()
    atomic_write(str(fifo), _writes(b"into the pipe"), overwrite=False)  # nothing to replace: no overwrite needed
    t.join(60)
    assert got == {"data": b"into the pipe"} and stat.S_ISFIFO(fifo.stat().st_mode)
    atomic_write(os.devnull, _writes(b"gone"), overwrite=False)
    assert _leftovers(tmp_path) == []


def test_expect_replaces_only_the_file_that_was_read(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(b"old")
    st = p.stat()
    p.unlink()  # moved away by another program meanwhile
    with pytest.raises(ReplacedMeanwhile) as info:
        atomic_write(str(p), _writes(b"new"), overwrite=True, expect=file_identity(st))
    assert info.value.errno == errno.ENOENT and not p.exists()
    assert isinstance(info.value, OSError)
    assert _leftovers(tmp_path) == []


def test_expect_without_an_atomic_swap(tmp_path, monkeypatch):
    """Where the system cannot swap two files, the check comes just before the replace."""
    monkeypatch.setattr(_files, "_exchange", lambda a, b: False)
    p = tmp_path / "f"
    p.write_bytes(b"old")
    st = p.stat()
    atomic_write(str(p), _writes(b"new"), overwrite=True, expect=file_identity(st))
    assert p.read_bytes() == b"new"
    with pytest.raises(ReplacedMeanwhile) as info:  # p is now another file than the one read
        atomic_write(str(p), _writes(b"newer"), overwrite=True, expect=file_identity(st))
    assert info.value.errno == errno.ESTALE and p.read_bytes() == b"new"
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("swap", [True, False], ids=["atomic-swap", "check-then-replace"])
@pytest.mark.parametrize("change", ["appended", "same-size"])
def test_expect_keeps_a_file_written_to_since_it_was_read(tmp_path, monkeypatch, swap, change):
    """The same file under the same name, but written to after it was read
    (a longer file, or one rewritten to the same size at another time): it
    stays as the other program left it."""
    if not swap:
        monkeypatch.setattr(_files, "_exchange", lambda a, b: False)
    p = tmp_path / "f"
    p.write_bytes(b"old")
    st = p.stat()
    if change == "appended":
        with open(str(p), "ab") as fh:
            fh.write(b" and more")
        kept = b"old and more"
    else:
        p.write_bytes(b"new")
        os.utime(str(p), ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
        kept = b"new"
    assert p.stat().st_ino == st.st_ino
    with pytest.raises(ReplacedMeanwhile, match="changed by another program") as info:
        atomic_write(str(p), _writes(b"signed"), overwrite=True, expect=file_identity(st))
    assert info.value.errno == errno.ESTALE and p.read_bytes() == kept
    assert _leftovers(tmp_path) == []


def test_write_signed_copies_the_rest_of_the_message():
    out = io.BytesIO()
    src = io.BytesIO(b"From x\n" + b"message " * 300_000)
    src.readline()  # positioned past an envelope line
    write_signed(out, b"DKIM-Signature: v=1\r\n", src)
    assert out.getvalue() == b"DKIM-Signature: v=1\r\n" + b"message " * 300_000
    empty = io.BytesIO()
    write_signed(empty, b"H\r\n", io.BytesIO(b""))
    assert empty.getvalue() == b"H\r\n"


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads process states from /proc")
def test_process_gone_counts_a_zombie_and_a_reused_pid_as_ended():
    import time

    from fastdkim._owner import process_gone

    assert not process_gone(os.getpid())
    # the pid's holder started after the mark was left: another process
    assert process_gone(os.getpid(), since=time.time() - 3600)
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    try:
        while open("/proc/%d/stat" % pid, "rb").read().rsplit(b")", 1)[1].split()[0] != b"Z":
            time.sleep(0.01)  # (ends at once; no bound asserted)
        assert process_gone(pid)  # ended, not yet reaped
    finally:
        os.waitpid(pid, 0)
    assert process_gone(pid)


@pytest.mark.parametrize("mode, umask", [(0o644, 0o022), (0o600, 0o077), (0o666, 0o022), (0o640, 0o027),
                                         (0o755, 0o077), (0o2750, 0o022)])
def test_a_temporary_file_gets_its_mode_whatever_the_umask(tmp_path, mode, umask):
    """A temporary file is made with ``mode`` at once where the umask leaves
    it whole, and set to it otherwise: the result is ``mode`` either way."""
    old = os.umask(umask)
    try:
        fd, tmp = _files.new_temporary(str(tmp_path / "out.eml"), mode=mode, prefix=".x-", umask=umask)
    finally:
        os.umask(old)
    os.close(fd)
    assert stat.S_IMODE(os.stat(tmp).st_mode) == mode
    assert os.path.dirname(tmp) == str(tmp_path) and os.path.basename(tmp).startswith(".x-")


def test_a_stale_umask_never_loosens_a_temporary_file(tmp_path):
    """Told a umask that is no longer the process's, a temporary file may end
    up stricter than asked, never looser."""
    old = os.umask(0o077)
    try:
        fd, tmp = _files.new_temporary(str(tmp_path / "out.eml"), mode=0o644, prefix=".x-", umask=0o022)
    finally:
        os.umask(old)
    os.close(fd)
    assert stat.S_IMODE(os.stat(tmp).st_mode) & ~0o644 == 0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_temporary_names_carry_the_pid_of_the_process_making_them(tmp_path):
    fd, first = _files._open_new(str(tmp_path), ".p-")
    os.close(fd)
    assert "-%d_" % os.getpid() in first
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its own pid in the names it makes
        try:
            cfd, name = _files._open_new(str(tmp_path), ".p-")
            os.close(cfd)
            os.write(w, ("%d %s" % (os.getpid(), name)).encode())
        finally:
            os._exit(0)
    os.close(w)
    os.waitpid(pid, 0)
    with os.fdopen(r, "rb") as fh:
        child, name = fh.read().decode().split(" ", 1)
    assert child == str(pid) and "-%s_" % child in name


def test_a_file_that_cannot_be_swapped_back_is_kept_not_removed(tmp_path, monkeypatch):
    """Another program replaced the file while it was signed (C), then moved
    the name (a client filing it as read) before the swap back: C, which
    the first swap left under the temporary name, is kept beside, never
    removed with that temporary name."""
    p = tmp_path / "msg"
    p.write_bytes(b"A")
    st = p.stat()
    os.rename(p, tmp_path / "A, kept by the other program")
    p.write_bytes(b"C, the other program's")  # replaced meanwhile
    real = _files._exchange
    calls = []

    def exchange(a, b):
        calls.append((a, b))
        if len(calls) == 1:
            got = real(a, b)
            os.rename(b, str(b) + ":2,S")  # the client files what is now at the name
            return got
        return real(a, b)  # the swap back: the name is gone
    monkeypatch.setattr(_files, "_exchange", exchange)
    with pytest.raises(ReplacedMeanwhile) as info:
        atomic_write(str(p), _writes(b"signed A"), overwrite=True, expect=file_identity(st))
    assert info.value.theirs == str(p)  # the name was free again: C is back under it
    assert p.read_bytes() == b"C, the other program's"
    assert (tmp_path / "msg:2,S").read_bytes() == b"signed A"
    assert _leftovers(tmp_path) == []
    # and where the name is taken again too, C goes beside it under a name of its own
    p.write_bytes(b"A2")
    st = p.stat()
    os.rename(p, tmp_path / "A2, kept")
    p.write_bytes(b"C2")
    calls.clear()

    def exchange2(a, b):
        calls.append((a, b))
        if len(calls) == 1:
            got = real(a, b)
            os.rename(b, str(b) + ":2,S")  # filed by the client
            with open(b, "wb") as fh:  # and yet another file takes the name
                fh.write(b"D")
            return got
        raise FileNotFoundError(errno.ENOENT, "changed again", b)  # the swap back fails
    monkeypatch.setattr(_files, "_exchange", exchange2)
    with pytest.raises(ReplacedMeanwhile) as info:
        atomic_write(str(p), _writes(b"signed A2"), overwrite=True, expect=file_identity(st))
    assert info.value.theirs == str(p) + ".fastdkim-kept-0"
    assert (tmp_path / "msg.fastdkim-kept-0").read_bytes() == b"C2"
    assert p.read_bytes() == b"D" and (tmp_path / "msg:2,S").read_bytes() == b"signed A2"
    assert _leftovers(tmp_path) == []
