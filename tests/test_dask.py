"""fastdkim.dask on a real distributed.LocalCluster (worker processes)."""
from __future__ import annotations

import os
import signal
import stat
import threading
import time

import pytest

pytest.importorskip("dask.bag", reason="the dask extra is not installed (pip install 'fastdkim[dask]')")
distributed = pytest.importorskip("distributed", reason="the dask extra is not installed (pip install 'fastdkim[dask]')")

import dask.bag as db  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ed25519  # noqa: E402

import fastdkim  # noqa: E402
from fastdkim.bulk import SignResult  # noqa: E402
from fastdkim.dask import PolicyFile, sign_bag, sign_files  # noqa: E402
from fastdkim.keys import public_key_record  # noqa: E402
from fastdkim.mailgen import generate_corpus  # noqa: E402
from fastdkim.policy import SigningPolicy  # noqa: E402
from fastdkim.signing import Signer  # noqa: E402

# one worker runs them all (in parallel runs), so that one cluster serves them
pytestmark = pytest.mark.xdist_group("dask")


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  silence_logs=50) as c:
        with distributed.Client(c) as client:
            yield c, client


@pytest.fixture(scope="module")
def signer(rsa_key):
    return Signer("example.com", "rsa", rsa_key)


@pytest.fixture(scope="module")
def keys(rsa_key):
    return {"rsa._domainkey.example.com": public_key_record(rsa_key.public_key())}


def _msg(i: int) -> bytes:
    return b"From: a%d@example.com\r\nTo: b@example.org\r\nSubject: %d\r\n\r\nbody %d\r\n" % (i, i, i)


def _passes(message: bytes, keys) -> bool:
    res = fastdkim.verify(message, keys=keys)
    return len(res) >= 1 and all(r.status == "pass" for r in res)


def test_sign_bag(cluster, signer, keys):
    _, client = cluster
    corpus = list(generate_corpus(60, seed=5, max_size=100_000))
    items = [("m%d" % i, m) for i, m in enumerate(corpus)] + [("bad", b"Subject: no author\r\n\r\nx\r\n")]
    results = sign_bag(db.from_sequence(items, npartitions=6), signer).compute()
    assert len(results) == len(items)
    assert all(isinstance(r, SignResult) for r in results)
    by_key = {r.key: r for r in results}
    assert set(by_key) == {k for k, _ in items}
    for k, m in items[:-1]:
        assert by_key[k].ok and by_key[k].message == by_key[k].headers + m
        assert _passes(by_key[k].message, keys)
    assert not by_key["bad"].ok and "From" in by_key["bad"].reason
    assert by_key["bad"].message == items[-1][1]  # unchanged, not dropped


def test_sign_bag_type_errors(signer):
    with pytest.raises(TypeError, match="Bag"):
        sign_bag([b"x"], signer)
    with pytest.raises(TypeError, match="signer"):
        sign_bag(db.from_sequence([b"x"]), "not a signer")


def _write_inputs(d, n, mode=0o600):
    os.makedirs(d / "sub", exist_ok=True)
    os.chmod(d / "sub", 0o700)
    paths = []
    for i in range(n):
        p = d / ("sub" if i % 2 else "") / ("m%05d.eml" % i)
        p.write_bytes(_msg(i))
        os.chmod(p, mode)
        paths.append(str(p))
    return paths


def test_sign_files_on_cluster(cluster, signer, keys, tmp_path):
    _, client = cluster
    src = tmp_path / "in"
    src.mkdir()
    paths = _write_inputs(src, 2000)
    bad = src / "bad.eml"
    bad.write_bytes(b"Subject: no author\r\n\r\nx\r\n")
    out = tmp_path / "out"
    summary = sign_files(paths + [str(bad), paths[3]], signer, out, client=client, per_task=100)
    assert summary.total == 2001 and summary.signed == 2000
    assert list(summary.unsigned) == [str(bad)]
    assert (out / "bad.eml").read_bytes() == bad.read_bytes()  # written unchanged
    for i, p in enumerate(paths):
        rel = os.path.relpath(p, src)
        o = out / rel
        assert summary.outputs[p] == str(o)
        data = o.read_bytes()
        assert data.endswith(_msg(i)) and _passes(data, keys)
        assert stat.S_IMODE(os.stat(o).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(out / "sub").st_mode) == 0o700
    assert sorted(os.listdir(out / "sub")) == sorted(os.path.basename(p) for p in paths if "/sub/" in p)


def test_policy_file_loaded_on_the_workers(cluster, tmp_path):
    _, client = cluster
    key = ed25519.Ed25519PrivateKey.generate()
    (tmp_path / "k.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    (tmp_path / "policy.toml").write_text('[domains."example.com"]\nkeys = [{ selector = "ed", key = "k.pem" }]\n')
    src = tmp_path / "in"
    src.mkdir()
    paths = _write_inputs(src, 50)
    summary = sign_files(paths, PolicyFile(tmp_path / "policy.toml"), tmp_path / "out", client=client, per_task=10)
    assert summary.signed == 50
    keys = {"ed._domainkey.example.com": public_key_record(key.public_key())}
    for p, o in summary.outputs.items():
        assert _passes(open(o, "rb").read(), keys)


def test_policy_object_scattered(cluster, signer, keys):
    _, client = cluster
    policy = SigningPolicy({"example.com": [signer]})
    results = sign_bag(db.from_sequence([_msg(i) for i in range(40)], npartitions=4), policy).compute()
    assert all(r.ok and _passes(r.message, keys) for r in results)


def test_worker_killed_midway_nothing_lost_or_duplicated(cluster, signer, keys, tmp_path):
    """A worker process killed by its pid while it signs: Dask runs its tasks
    again elsewhere; the output holds each input message exactly once.  (On
    the module's cluster, whose nanny starts the worker again; the last test
    of the module.)"""
    _, client = cluster
    src = tmp_path / "in"
    src.mkdir()
    paths = _write_inputs(src, 3000)
    out = tmp_path / "out"
    pids = list(client.run(os.getpid).values())
    assert len(pids) == 2
    box = {}

    def run():
        try:
            box["summary"] = sign_files(paths, signer, out, client=client, per_task=50)
        except BaseException as exc:  # pragma: no cover - reported below
            box["error"] = exc

    t = threading.Thread(target=run)
    t.start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        done = sum(len(files) for _, _, files in os.walk(out)) if out.exists() else 0
        if done >= 300:
            break
        time.sleep(0.01)
    os.kill(pids[0], signal.SIGKILL)
    at_kill = done
    t.join(300)
    assert not t.is_alive()
    assert "error" not in box, box.get("error")
    assert 300 <= at_kill < 2700, "the worker was not killed midway (%d outputs then)" % at_kill
    summary = box["summary"]
    assert summary.total == 3000 and summary.signed == 3000
    outputs = sorted(os.path.relpath(os.path.join(d, f), out) for d, _, files in os.walk(out) for f in files)
    assert outputs == sorted(os.path.relpath(p, src) for p in paths)  # each once, no temporaries left
    for i, p in enumerate(paths):
        data = (out / os.path.relpath(p, src)).read_bytes()
        assert data.count(b"DKIM-Signature:") == 1 and data.endswith(_msg(i)) and _passes(data, keys)


def _hash_thread_min():
    from fastdkim import _core

    return getattr(_core.core, "HASH_THREAD_MIN", None)


def test_workers_sharing_a_host_hash_on_their_own_threads(cluster, signer):
    """Two worker processes of one thread each on this host: once a task
    ran there, a worker hashes large bodies on the task's thread (the
    compiled core's count of cores in use cannot see the other worker)."""
    _, client = cluster
    bag = db.from_sequence([_msg(i) for i in range(4)], npartitions=4)
    assert all(r.ok for r in sign_bag(bag, signer).compute())
    seen = client.run(_hash_thread_min)
    if os.environ.get("FASTDKIM_HASH_THREAD") is None and (os.cpu_count() or 1) > 1:
        for addr, value in seen.items():
            assert value in (None, 0), (addr, value)  # None: the pure core, which has no thread
