#!/usr/bin/env python3
"""A delivery program for the end-to-end tests: records what smtpd gave it.

    recorder.py OUTDIR ARGS...

Writes OUTDIR/N.data (standard input, bytes) and OUTDIR/N.json
({"argv": ARGS, "env": {...}, "uid": ..., "gid": ..., "groups": [...],
"cwd": ..., "nice": ..., "n": N}) for a new number N.
The environment is read from /proc/self/environ: exactly what smtpd passed
(Python itself may add LC_CTYPE to os.environ).

Then, R being the only recipient of the run (SMTPD_RECIPIENTS without a
newline, "/" replaced by "_"):
    OUTDIR/stdout.R or OUTDIR/stdout   copied to standard output
    OUTDIR/sleep                       seconds to sleep before exiting
    OUTDIR/exit.R or OUTDIR/exit       exit status (default 0), or "kill"
                                       to die by SIGKILL
"""

import json
import os
import signal
import sys
import time


def read_env():
    try:
        with open("/proc/self/environ", "rb") as f:
            raw = f.read()
    except OSError:
        return dict(os.environ)
    env = {}
    for item in raw.split(b"\0"):
        if not item:
            continue
        k, _, v = item.partition(b"=")
        env[k.decode("utf-8", "surrogateescape")] = v.decode(
            "utf-8", "surrogateescape")
    return env


def pick(outdir, base, rcpt):
    if rcpt is not None:
        p = os.path.join(outdir, base + "." + rcpt.replace("/", "_"))
        if os.path.exists(p):
            return p
    p = os.path.join(outdir, base)
    return p if os.path.exists(p) else None


def main():
    outdir = sys.argv[1]
    args = [os.fsdecode(a) for a in sys.argv[2:]]
    env = read_env()
    data = sys.stdin.buffer.read()
    n = 1
    while True:
        try:
            fd = os.open(os.path.join(outdir, "%d.claim" % n),
                         os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            os.close(fd)
            break
        except FileExistsError:
            n += 1
    with open(os.path.join(outdir, "%d.data" % n), "wb") as f:
        f.write(data)
    rec = {"argv": args, "env": env, "uid": os.getuid(), "gid": os.getgid(),
           "groups": sorted(os.getgroups()), "cwd": os.getcwd(),
           "nice": os.getpriority(os.PRIO_PROCESS, 0), "n": n}
    tmp = os.path.join(outdir, "%d.json.tmp" % n)
    with open(tmp, "w") as f:
        json.dump(rec, f)
    os.rename(tmp, os.path.join(outdir, "%d.json" % n))

    rcpts = env.get("SMTPD_RECIPIENTS", "")
    rcpt = rcpts if rcpts and "\n" not in rcpts else None
    p = pick(outdir, "stdout", rcpt)
    if p:
        with open(p, "rb") as f:
            sys.stdout.buffer.write(f.read())
        sys.stdout.flush()
    p = pick(outdir, "sleep", None)
    if p:
        with open(p) as f:
            time.sleep(float(f.read().strip()))
    status = 0
    p = pick(outdir, "exit", rcpt)
    if p:
        with open(p) as f:
            word = f.read().strip()
        if word == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        status = int(word)
    sys.exit(status)


if __name__ == "__main__":
    main()
