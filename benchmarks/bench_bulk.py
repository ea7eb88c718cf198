"""Bulk signing: cores, threads, the command line, a Dask cluster, memory.

Run from the project root (compiled core built in place)::

    python benchmarks/bench_bulk.py [--quick] [--json bulk.json] [--only cores,threads,cli,dask,memory]

Every figure is a ratio to a baseline measured in the same run, the timed
rounds of the two interleaved (best round of each):

* ``cores``: ``sign_many`` over generated 3 KB messages (RSA-2048) with
  ``jobs=1`` against a plain loop over ``Signer.sign``, and with two worker
  processes against ``jobs=1``;
* ``threads``: ``sign_many`` of 10 MB messages on a ``ThreadPoolExecutor``
  of two threads against one thread (the compiled core releases the GIL while
  it hashes);
* ``cli``: ``fastdkim sign --out`` of a Maildir of small messages on tmpfs
  against the in-process ``sign_many`` rate with the same jobs;
* ``dask``: ``fastdkim.dask.sign_bag`` on a ``LocalCluster`` of two worker
  processes beside ``sign_many``;
* ``memory``: peak RSS growth signing a 1 GiB message from a file through
  the API and through the command line, and the peak RSS of the command
  line signing mboxes of N/4 and N messages.

Nothing passes or fails on speed; the numbers are printed and written as JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Dict, List, Sequence

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if (ROOT / "src" / "fastdkim").is_dir():
    sys.path.insert(0, str(ROOT / "src"))


def _as_installed() -> None:
    """Run the package from compiled bytecode, as an installed package runs
    (pip compiles it at install time), in this process and in every process
    it starts (the command line, the workers' server), even where the
    environment says not to write bytecode (PYTHONDONTWRITEBYTECODE, common
    in containers): the bytecode goes to a cache of the benchmark's own,
    never into the source tree.  Without it the command line would compile
    the package from source at each start."""
    import compileall

    prefix = os.path.join(tempfile.gettempdir(), "fastdkim-bench-pycache")
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["PYTHONPYCACHEPREFIX"] = prefix
    sys.dont_write_bytecode = False
    sys.pycache_prefix = prefix
    for where in sys.path:
        if where and os.path.isfile(os.path.join(where, "fastdkim", "__init__.py")):
            compileall.compile_dir(os.path.join(where, "fastdkim"), quiet=1)
            break


_as_installed()

import fastdkim  # noqa: E402
from fastdkim import mailgen  # noqa: E402
from fastdkim.bulk import sign_many  # noqa: E402
from fastdkim.keys import generate_private_key  # noqa: E402

TMPFS = "/dev/shm" if os.path.isdir("/dev/shm") else None


def _rounds(n: float, fns: Sequence[Callable[[], Any]], rounds: int = 3) -> List[List[float]]:
    """The rate of each of ``fns`` in each of ``rounds`` rounds, the rounds
    interleaved (one of each in turn), so that a spell of load elsewhere on
    the machine falls on all of them alike: per round, units per second in
    the order of ``fns``.  A function that returns a number says how long
    the part to be timed took (it has work of its own to do before or
    after, such as cleaning up)."""
    out = []
    for _ in range(rounds):
        row = []
        for fn in fns:
            t0 = time.perf_counter()
            took = fn()
            if not isinstance(took, float):  # (what it made, not how long it took)
                took = time.perf_counter() - t0
            row.append(n / took)
        out.append(row)
    return out


def _rates(n: float, fns: Sequence[Callable[[], Any]], rounds: int = 3) -> List[float]:
    """Best of ``rounds`` interleaved rounds (see :func:`_rounds`) for each of
    ``fns``: units per second, in the order of ``fns``."""
    return _best(_rounds(n, fns, rounds))


def _paired(table: List[List[float]], a: int, b: int) -> float:
    """The median over rounds of column ``a``'s rate over column ``b``'s in
    the same round: the ratio least moved by the machine's speed drifting
    during the benchmark (the ratio of two best rates may take them from
    different moments)."""
    return statistics.median(row[a] / row[b] for row in table)


def _best(table: List[List[float]]) -> List[float]:
    """Each column's best rate over the rounds of *table*."""
    return [max(col) for col in zip(*table)]


def _signer() -> fastdkim.Signer:
    return fastdkim.Signer("example.com", "bench", generate_private_key("rsa", 2048))


def _consume(results: Any) -> None:
    for r in results:
        if not r.ok:
            raise SystemExit("benchmark message not signed: %s" % r.reason)


def bench_cores(quick: bool, out: Dict[str, Any]) -> None:
    n = 4000 if quick else 20_000
    signer = _signer()
    msgs = [mailgen.message(3000, total=True, seed=i % 64) for i in range(n)]
    table = _rounds(n, [lambda: [signer.sign(m) for m in msgs],
                        lambda: _consume(sign_many(msgs, signer, jobs=1)),
                        lambda: _consume(sign_many(msgs, signer, jobs=2)),
                        lambda: _two_loops(signer, msgs)], rounds=3 if quick else 5)
    loop, one, two, bare = _best(table)
    one_loop, two_one, bare_loop = _paired(table, 1, 0), _paired(table, 2, 1), _paired(table, 3, 0)
    out["cores"] = {"messages": n, "loop_msg_s": loop, "jobs1_msg_s": one, "jobs2_msg_s": two,
                    "jobs1_over_loop": one_loop, "jobs2_over_jobs1": two_one, "two_loops_over_loop": bare_loop}
    print("cores    %d x 3 KB RSA-2048: loop %.0f msg/s; sign_many jobs=1 %.0f (%.2fx loop); "
          "jobs=2 %.0f (%.2fx jobs=1); limit: two forked loops %.2fx one"
          % (n, loop, one, one_loop, two, two_one, bare_loop))


def _two_loops(signer: fastdkim.Signer, msgs: List[bytes]) -> None:
    """Two processes forked from this one, each a plain loop over half of
    ``msgs``: what two cores of this machine give, with nothing shared."""
    half = len(msgs) // 2
    pids = []
    for part in (msgs[:half], msgs[half:]):
        pid = os.fork()
        if pid == 0:
            try:
                for m in part:
                    signer.sign(m)
            finally:
                os._exit(0)
        pids.append(pid)
    for pid in pids:
        os.waitpid(pid, 0)


def bench_threads(quick: bool, out: Dict[str, Any]) -> None:
    n = 4 if quick else 8
    big = mailgen.message(10_000_000, kind="mixed", total=True)
    signer = fastdkim.Signer("example.com", "bench", generate_private_key("ed25519"))
    msgs = [big] * n
    mb = n * len(big) / 1e6

    with ThreadPoolExecutor(1) as ex1, ThreadPoolExecutor(2) as ex2:
        table = _rounds(mb, [lambda: _consume(sign_many(msgs, signer, executor=ex1, window=n)),
                             lambda: _consume(sign_many(msgs, signer, executor=ex2, window=n))],
                        rounds=3 if quick else 5)
    one, two = _best(table)
    ratio = _paired(table, 1, 0)
    out["threads"] = {"messages": n, "size": len(big), "thread1_mb_s": one, "thread2_mb_s": two,
                      "thread2_over_thread1": ratio}
    print("threads  %d x 10 MB: 1 thread %.0f MB/s; 2 threads %.0f MB/s (%.2fx)" % (n, one, two, ratio))


def _fastdkim_cmd() -> List[str]:
    return [sys.executable, "-c", "import sys; sys.path.insert(0, %r); from fastdkim.cli import main; "
            "sys.exit(main())" % str(ROOT / "src")]


def bench_cli(quick: bool, out: Dict[str, Any]) -> None:
    n = 2000 if quick else 10_000
    jobs = 2
    base = tempfile.mkdtemp(prefix="fastdkim-bench-", dir=TMPFS)
    key = generate_private_key("rsa", 2048)
    signer = fastdkim.Signer("example.com", "bench", key)
    keyfile = os.path.join(base, "key.pem")
    from fastdkim.keys import private_key_pem

    with open(keyfile, "wb") as fh:
        fh.write(private_key_pem(key))
    os.chmod(keyfile, 0o600)  # (as a user keeps a private key; else the command warns at each start)
    md = os.path.join(base, "Maildir")
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(md, sub))
    paths = []
    for i, m in enumerate(mailgen.generate_corpus(n, seed=7, min_size=1000, max_size=6000)):
        p = os.path.join(md, "new", "%d.M%d.bench" % (1_700_000_000 + i, i))
        with open(p, "wb") as fh:
            fh.write(m)
        paths.append(p)
    runs = iter(range(1 << 30))

    def cli() -> float:
        dst = os.path.join(base, "out%d" % next(runs))
        t0 = time.perf_counter()
        subprocess.run(_fastdkim_cmd() + ["sign", "--domain", "example.com", "--selector", "bench", "--key", keyfile,
                                          "--jobs", str(jobs), "--quiet", "--out", dst, md], check=True,
                       stderr=subprocess.DEVNULL)
        took = time.perf_counter() - t0
        subprocess.run(["rm", "-rf", dst], check=False)  # (the outputs' removal is not the command's time)
        return took

    table = _rounds(n, [lambda: _consume(sign_many(paths, signer, jobs=jobs)), cli], rounds=3 if quick else 7)
    subprocess.run(["rm", "-rf", base], check=False)
    inproc, best = _best(table)
    paired = _paired(table, 1, 0)  # (each round's command against the sign_many run just before it)
    out["cli"] = {"messages": n, "jobs": jobs, "sign_many_msg_s": inproc, "cli_msg_s": best,
                  "cli_over_sign_many": paired, "best_over_best": best / inproc, "tmpfs": TMPFS is not None}
    print("cli      Maildir of %d on %s, %d jobs: fastdkim sign %.0f msg/s; sign_many %.0f msg/s (best of %d); "
          "%.2fx (median of each round's ratio; %.2fx best over best)"
          % (n, "tmpfs" if TMPFS else "disk", jobs, best, inproc, len(table), paired, best / inproc))


def bench_dask(quick: bool, out: Dict[str, Any]) -> None:
    try:
        import dask.bag as db
        import distributed
    except ImportError as exc:
        print("dask     skipped: %s" % exc)
        out["dask"] = {"skipped": str(exc)}
        return
    from fastdkim.dask import sign_bag

    n = 4000 if quick else 20_000
    signer = _signer()
    msgs = [mailgen.message(3000, total=True, seed=i % 64) for i in range(n)]
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  silence_logs=50) as c, distributed.Client(c):
        bag = db.from_sequence(msgs, npartitions=16)  # the messages travel with the task graph
        import warnings

        warnings.filterwarnings("ignore", message="Sending large graph")  # (that is the point here)
        two, rate = _rates(n, [lambda: _consume(sign_many(msgs, signer, jobs=2)),
                               lambda: _consume(sign_bag(bag, signer, include_message=False).compute())], rounds=2)
    out["dask"] = {"messages": n, "sign_many_jobs2_msg_s": two, "local_cluster_msg_s": rate,
                   "cluster_over_sign_many": rate / two}
    print("dask     %d x 3 KB: LocalCluster(2 workers) %.0f msg/s; sign_many jobs=2 %.0f msg/s (%.2fx)"
          % (n, rate, two, rate / two))


_RSS_API = textwrap.dedent("""
    import resource, sys
    sys.path.insert(0, %(src)r)
    import fastdkim
    from fastdkim.bulk import sign_many
    from fastdkim.keys import load_private_key
    def status(field):
        with open("/proc/self/status") as fh:
            return next(int(l.split()[1]) for l in fh if l.startswith(field + ":"))
    signer = fastdkim.Signer("example.com", "bench", load_private_key(%(key)r))
    before = status("VmRSS")
    (r,) = sign_many([%(path)r], signer, jobs=1)
    assert r.ok, r.reason
    print(status("VmHWM") - before)  # peak during the signing, over the resident size before it
""")


#: Runs a command and prints its peak RSS (KiB).  It runs in a small process
#: of its own: a child forked from this benchmark would start out sharing
#: its hundreds of MiB, and the kernel's peak for the child would be those.
_PEAK_OF = textwrap.dedent("""
    import os, sys
    pid = os.fork()
    if pid == 0:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.execv(sys.argv[1], sys.argv[1:])
    _, status, usage = os.wait4(pid, 0)
    print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)
""")


def _peak_kib_of_child(cmd: List[str]) -> int:
    """Peak RSS (KiB) of the command's largest process (itself, or one of
    the processes it waited for: its workers), via wait4."""
    r = subprocess.run([sys.executable, "-c", _PEAK_OF, *cmd], check=True, capture_output=True, text=True)
    code, peak = map(int, r.stdout.split())
    if code not in (0, 1):
        raise SystemExit("%s failed (%d)" % (cmd, code))
    return peak


def bench_memory(quick: bool, out: Dict[str, Any]) -> None:
    size = (256 if quick else 1024) << 20
    n_mbox = 20_000 if quick else 100_000
    base = tempfile.mkdtemp(prefix="fastdkim-bench-")
    from fastdkim.keys import private_key_pem

    keyfile = os.path.join(base, "key.pem")
    with open(keyfile, "wb") as fh:
        fh.write(private_key_pem(generate_private_key("ed25519")))
    os.chmod(keyfile, 0o600)
    big = os.path.join(base, "big.eml")
    piece = mailgen.body("plain", 1 << 20, seed=3)
    with open(big, "wb") as fh:
        fh.write(b"From: a@example.com\r\nTo: b@example.org\r\nSubject: big\r\n\r\n")
        for _ in range(size // len(piece)):
            fh.write(piece)
    api = subprocess.run([sys.executable, "-c", _RSS_API % {"src": str(ROOT / "src"), "key": keyfile, "path": big}],
                         check=True, capture_output=True, text=True)
    api_growth = int(api.stdout.strip())
    small = os.path.join(base, "small.eml")
    with open(small, "wb") as fh:
        fh.write(b"From: a@example.com\r\nTo: b@example.org\r\nSubject: small\r\n\r\nbody\r\n")
    # the baseline: the same command on a small message (same imports, same start-up)
    baseline = _peak_kib_of_child(_fastdkim_cmd() + ["sign", "--domain", "example.com", "--selector", "bench",
                                                    "--key", keyfile, "--out", os.path.join(base, "small.out"),
                                                    small])
    cli_peak = _peak_kib_of_child(_fastdkim_cmd() + ["sign", "--domain", "example.com", "--selector", "bench",
                                                    "--key", keyfile, "--out", os.path.join(base, "big.out"), big])
    os.unlink(big)
    peaks = {}
    for count in (n_mbox // 4, n_mbox):
        mbox = os.path.join(base, "m%d.mbox" % count)
        with open(mbox, "wb") as fh:
            for i in range(count):
                fh.write(b"From sender@example.com Thu Jan  1 00:00:00 2026\n"
                         b"From: a%d@example.com\nTo: b@example.org\nSubject: %d\n\nbody %d\n\n" % (i, i, i))
        peaks[count] = _peak_kib_of_child(_fastdkim_cmd() + [
            "sign", "--domain", "example.com", "--selector", "bench", "--key", keyfile, "--quiet", "--jobs", "2",
            "--out", mbox + ".out", mbox])
    subprocess.run(["rm", "-rf", base], check=False)
    out["memory"] = {"message_bytes": size, "api_rss_growth_kib": api_growth,
                     "cli_rss_growth_kib": cli_peak - baseline, "mbox_peak_kib": peaks}
    print("memory   %d MiB message: API peak RSS growth %.1f MiB; command line %.1f MiB over signing a small one"
          % (size >> 20, api_growth / 1024, (cli_peak - baseline) / 1024))
    a, b = sorted(peaks)
    print("memory   mbox of %d messages: command line peak RSS %.1f MiB; of %d: %.1f MiB"
          % (a, peaks[a] / 1024, b, peaks[b] / 1024))


SECTIONS = {"cores": bench_cores, "threads": bench_threads, "cli": bench_cli, "dask": bench_dask,
            "memory": bench_memory}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller corpora (about a minute)")
    ap.add_argument("--only", help="comma-separated sections: " + ",".join(SECTIONS))
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args()
    if not fastdkim.ACCELERATED:
        print("the compiled core is not in use: build it first (python setup.py build_ext --inplace)", file=sys.stderr)
        return 2
    chosen = args.only.split(",") if args.only else list(SECTIONS)
    out: Dict[str, Any] = {"cpu_count": os.cpu_count(), "quick": args.quick}
    for name in chosen:
        SECTIONS[name](args.quick, out)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
