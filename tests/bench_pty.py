#!/usr/bin/env python3
"""PTY output benchmark: a section of `make bench` (tests/bench.py), or
alone: python3 tests/bench_pty.py.

A text file of BENCH_PTY_MB MiB (default 256; lines of 40 to 120
printable characters) is printed by cat on a terminal, and the terminal's
output is read to its end by this process through a pipe, for:

  - sandd shell WORKER -- cat FILE: a session on the bench's worker; its
    output goes worker -> serve -> the shell client, which writes it to
    its stdout;
  - script -qfc 'cat FILE' /dev/null: the same on a local terminal;
  - ssh -tt 127.0.0.1 cat FILE: a private sshd on 127.0.0.1 (as for the
    file section's scp), default cipher.

Each variant runs BENCH_PTY_ROUNDS times (default 3) after one warm-up
round; the median is reported, with MB/s of the file's size (10^6
bytes/s), the CPU seconds of the client process (for script: script and
cat) and, for sandd, of serve and the worker, and the ratios to the local
terminal and to ssh. The byte count read must be the file's size plus one
per line (the terminal's \\r). Nothing here is asserted: it is measured.
"""

import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import bench as b  # noqa: E402

MB = b._env_int("BENCH_PTY_MB", 256)
ROUNDS = b._env_int("BENCH_PTY_ROUNDS", 3)
BUDGET = 300            # seconds the section may add to bench.py's watchdog


def make_text(path, size):
    """A text file of exactly size bytes; returns its number of lines."""
    import random
    rnd = random.Random(42)
    alphabet = "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ" \
        "0123456789 .,;:-_=+()[]{}<>/"
    lines = []
    for _ in range(4096):
        lines.append("".join(rnd.choice(alphabet) for _ in range(
            rnd.randint(40, 120))) + "\n")
    block = "".join(lines).encode()
    nl = 0
    with open(path, "wb") as f:
        left = size
        while left > 0:
            piece = block[:left]
            if left < len(block):
                # end the file with a newline
                piece = piece[:-1] + b"\n"
            f.write(piece)
            nl += piece.count(b"\n")
            left -= len(piece)
    return nl


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def read_all(argv, env=None):
    """Run argv with stdin /dev/null; read its stdout to the end. Returns
    (seconds, bytes, CPU seconds of it and its children)."""
    c0 = children_cpu()
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=env, start_new_session=True)
    n = 0
    fd = p.stdout.fileno()
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            break
        n += len(chunk)
    err = p.stderr.read()
    p.wait()
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError("%s exited %d: %s" % (argv[0], p.returncode,
                                                 err[-300:]))
    return dt, n, children_cpu() - c0


def pty_section(cl, rep=None, work=None):
    """The PTY output table, measured through cluster cl."""
    own = work is None
    if own:
        work = tempfile.mkdtemp(prefix="sandd-bench-pty-", dir="/tmp")
    src = os.path.join(work, "text.txt")
    size = MB * 1024 * 1024
    t0 = time.perf_counter()
    lines = make_text(src, size)
    gen = time.perf_counter() - t0
    want = size + lines
    env = dict(os.environ, SANDD_SOCKET=cl.control)
    variants = [
        ("sandd shell %s -- cat" % b.WORKER, "sandd",
         [h.SANDD, "shell", "-S", cl.control, b.WORKER, "--", "cat", src]),
        ("script -qfc cat (local terminal)", "script",
         ["script", "-qfc", "cat %s" % src, "/dev/null"]),
    ]
    failed, notes = {}, []
    ssh_name = "ssh -tt 127.0.0.1 cat (private sshd)"
    sshd = b.Sshd(os.path.join(work, "ssh-pty"))
    try:
        sshd.start()
        variants.append((ssh_name, "ssh", sshd.ssh_base("ssh") + [
            "-tt", "-p", str(sshd.port), sshd.target(), "cat", src]))
    except b.NotAvailable as e:
        failed["ssh"] = "n/a (%s)" % e
    times, cpu = {}, {}
    try:
        for rnd in range(ROUNDS + 1):
            for _, key, argv in variants:
                if key in failed:
                    continue
                m = b.CpuMeter(cl) if key == "sandd" else None
                try:
                    dt, n, ccpu = read_all(argv, env)
                except Exception as e:
                    failed[key] = "n/a (error)"
                    notes.append("%s: %s" % (key, b.first_line(e)))
                    continue
                if n != want:
                    failed[key] = "n/a (%d bytes, want %d)" % (n, want)
                    continue
                if rnd == 0:
                    continue
                times.setdefault(key, []).append(dt)
                d = m.done() if m else (None, None, None)
                cpu.setdefault(key, []).append((ccpu, d[1], d[2]))
    finally:
        sshd.stop()
        b.rm(src)
        if own:
            shutil.rmtree(work, ignore_errors=True)
    if rep is not None:
        rep.rss_after("pty output %d MiB" % MB, cl)

    def med(key):
        v = times.get(key)
        return statistics.median(v) if v and key not in failed else None

    def mbps(key):
        t = med(key)
        return size / 1e6 / t if t else None

    rows = []
    for name, key, _ in variants + ([(ssh_name, "ssh", None)]
                                    if "ssh" in failed else []):
        t = med(key)
        if t is None:
            rows.append([name, failed.get(key, "-"), "-", "-", "-", "-",
                         "-"])
            continue
        c = cpu[key]
        rng = "%.0f-%.0f" % (size / 1e6 / max(times[key]),
                             size / 1e6 / min(times[key]))
        rows.append([name, b.fmt(mbps(key), "%.0f"), rng, b.fmt(t, "%.2f")]
                    + [b.fmt(statistics.median([x[i] for x in c])
                             if all(x[i] is not None for x in c) else None,
                             "%.2f") for i in range(3)])
    b.table("PTY output of %d MiB of text (%d lines) through a terminal, "
            "read to the end: median of %d rounds after 1 warm-up "
            "(generated in %.1fs)" % (MB, lines, ROUNDS, gen),
            ["", "MB/s", "range MB/s", "seconds", "client CPU s",
             "serve CPU s", "worker CPU s"], rows)
    b.table("PTY ratios (>1: sandd is faster)", ["", "ratio"], [
        ["sandd shell / script -qfc (local)",
         b.fmt(b.ratio(mbps("sandd"), mbps("script")), "%.2fx")],
        ["sandd shell / ssh -tt",
         b.fmt(b.ratio(mbps("sandd"), mbps("ssh")), "%.2fx")]])
    print("  (each variant: stdin /dev/null, stdout a pipe read by this "
          "Python process in 1 MiB reads; client CPU s: the process run "
          "and its children (script: script and cat; ssh: the ssh client); "
          "sandd: cat runs under the worker, its CPU is in neither column)")
    for n in notes:
        print("  " + n)


def main():
    print("sandd PTY output benchmark (%d MiB, %d rounds)" % (MB, ROUNDS))
    b.machine()
    cl = b.BenchCluster(workers={b.WORKER: {}})
    try:
        cl.__enter__()
        pty_section(cl)
    finally:
        cl.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
