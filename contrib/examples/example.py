#!/usr/bin/env python3
"""A tour of the Python client (contrib/python/sandd/).

Usage: SANDD_CONTROL=/path/to/control.sock example.py [WORKER]

Connects to a running controller (``$SANDD_CONTROL``, else the default
socket path), lists the workers, and on WORKER (default: the first one
listed) runs a command, streams another one, and copies a small file
there and back. Exit status 0 when all of that worked.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))

import sandd  # noqa: E402


def main() -> int:
    with sandd.Client() as c:
        hello = c.hello()
        print("controller %s, protocol %s" % (hello["version"],
                                               hello["protocol"]))

        workers = c.list_daemons()
        for w in workers:
            labels = ",".join("%s=%s" % kv for kv in sorted(w.labels.items()))
            print("worker %-12s %s/%s %-8s busy=%s labels=%s" % (
                w.id, w.os, w.arch, w.version, w.is_busy, labels or "-"))
        if not workers:
            print("no workers connected", file=sys.stderr)
            return 1
        target = sys.argv[1] if len(sys.argv) > 1 else workers[0].id

        # Run a command and wait for its result.
        r = c.exec(target, "uname -sm; echo to-stderr >&2", timeout=30)
        print("exec: exit %s in %.1f ms: %r / %r" % (
            r.exit_code, r.duration_ms, r.stdout, r.stderr))
        if not r.success:
            return 1

        # A command's own timeout raises CommandTimeout (a TimeoutError)
        # that carries the partial output.
        try:
            c.exec(target, "echo partial; sleep 10", timeout=0.5)
        except sandd.CommandTimeout as e:
            print("timeout: kept %r" % e.result.stdout)

        # Stream output as it is printed.
        for ev in c.exec_stream(target, "for i in 1 2 3; do echo line $i; "
                                "sleep 0.1; done"):
            if ev.type == "stdout":
                sys.stdout.write("stream: " + ev.text)
            elif ev.type == "result" and ev.result is not None:
                print("stream: exit %s" % ev.result.exit_code)

        # Copy a file there and back (raw payloads, streamed).
        path = "/tmp/sandd-example-%d.txt" % os.getpid()
        try:
            c.upload_file(target, path, b"hello from example.py\n")
            back = c.download_file(target, path)
            print("file: %r" % back)
        except sandd.SanddError as e:
            print("file transfer not available: %s" % e)
        finally:
            try:
                c.exec(target, ["rm", "-f", path], timeout=10)
            except sandd.SanddError:
                pass

        # Unknown workers raise WorkerNotFound (a ValueError).
        try:
            c.exec("no-such-worker", "true")
        except sandd.WorkerNotFound as e:
            print("error: %s (code %s)" % (e, e.code))
    return 0


if __name__ == "__main__":
    sys.exit(main())
