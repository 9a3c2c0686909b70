#!/usr/bin/env python3
"""Run the sandd integration tests.

    python3 tests/run.py [-k SUBSTR]... [-j N] [-x] [files...]

Each tests/test_*.py file runs in its own subprocess (2 at a time by
default); each prints one line per test (PASS/FAIL/SKIP name (seconds)),
and for failures the traceback and the tail of the daemons' logs. Ends with
`N passed, N failed, N skipped`; exits 1 if anything failed.
Environment: SANDD_BIN, SANDD_TEST_TIMEOUT (deadline multiplier),
SANDD_KEEP_TMP.
"""

import argparse
import glob
import os
import re
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SUMMARY = re.compile(r"^(\d+) passed, (\d+) failed, (\d+) skipped$")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-k", action="append", default=[],
                    help="only tests whose name contains SUBSTR")
    ap.add_argument("-j", type=int, default=2, help="files run at once")
    ap.add_argument("-x", action="store_true",
                    help="stop a file at its first failure")
    ap.add_argument("files", nargs="*")
    a = ap.parse_args()

    files = a.files or sorted(glob.glob(os.path.join(HERE, "test_*.py")))
    files = [os.path.abspath(f) if os.path.exists(f)
             else os.path.join(HERE, f) for f in files]
    if not files:
        print("no test files")
        return 1

    lock = threading.Lock()
    totals = [0, 0, 0]
    queue = list(files)
    t_start = time.monotonic()

    def run_one(path):
        cmd = [sys.executable, "-u", path]
        for k in a.k:
            cmd += ["-k", k]
        if a.x:
            cmd.append("-x")
        try:
            r = subprocess.run(cmd, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, cwd=HERE,
                               start_new_session=True)
            text = r.stdout.decode("utf-8", "replace")
            rc = r.returncode
        except Exception as e:  # pragma: no cover
            text, rc = "runner error: %r\n" % (e,), 1
        counts = None
        lines = text.rstrip("\n").splitlines()
        for line in reversed(lines):
            m = SUMMARY.match(line.strip())
            if m:
                counts = [int(m.group(i)) for i in (1, 2, 3)]
                lines.remove(line)
                break
        with lock:
            print("## %s" % os.path.basename(path))
            for line in lines:
                print(line)
            if counts is None:
                print("FAIL %s (file crashed, status %s)"
                      % (os.path.basename(path), rc))
                counts = [0, 1, 0]
            for i in range(3):
                totals[i] += counts[i]
            sys.stdout.flush()

    def worker():
        while True:
            with lock:
                if not queue:
                    return
                path = queue.pop(0)
            run_one(path)

    threads = [threading.Thread(target=worker) for _ in range(max(1, a.j))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("(%.1fs)" % (time.monotonic() - t_start))
    print("%d passed, %d failed, %d skipped" % tuple(totals))
    return 1 if totals[1] else 0


if __name__ == "__main__":
    sys.exit(main())
