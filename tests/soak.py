#!/usr/bin/env python3
"""make soak: 1000 concurrent SMTP sessions against smtpd for SOAK_SECONDS.

    SOAK_SECONDS=600 SOAK_SESSIONS=1000 python3 tests/soak.py

smtpd (SMTPD, default build/smtpd) runs in -d mode with max-clients 1100
and delivers with deliver-maildir (DELIVER_MAILDIR) into a Maildir on a
tmpfs (SOAK_TMP, default /dev/shm).  One asyncio loop keeps SOAK_SESSIONS
sessions open at once; each sends messages back to back (a unique
X-Soak-Id header each) and reconnects after a few, so that sessions and
children turn over too.  Every 10 s the master's RSS, the largest child
RSS, the number of processes under the master and of zombies are printed.

No session is refused (max-clients is above SOAK_SESSIONS).  Afterwards:
every message acknowledged with "250 OK id=..." is in the Maildir exactly
once, and nothing is there that was not acknowledged; no
zombie is left; the master holds the same descriptors as before the load
(one socketpair per child aside).  Prints a summary; exits 1 on any
failure.
"""

import asyncio
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "e2e"))
from harness import (built_path, pid_children, proc_state,  # noqa: E402
                     stop_process)
SMTPD = built_path("SMTPD")
MAILDIR_PROG = built_path("DELIVER_MAILDIR")
SECONDS = float(os.environ.get("SOAK_SECONDS", "600"))
SESSIONS = int(os.environ.get("SOAK_SESSIONS", "1000"))
TMPBASE = os.environ.get("SOAK_TMP", "/dev/shm")
SAMPLE = 10.0
MSGS_PER_SESSION = (5, 40)      # then QUIT and reconnect
REPLY_TIMEOUT = 120.0
# Pause of each session between its messages (seconds, uniform 0..2x):
# 1000 sessions then offer about 1000/PAUSE messages/s, which leaves the
# machine some air.  SOAK_PAUSE=0 drives smtpd flat out.
PAUSE = float(os.environ.get("SOAK_PAUSE", "0.5"))


def log(msg):
    print("soak: " + msg, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def descendants(pid):
    todo, seen = [pid], []
    while todo:
        for k in pid_children(todo.pop()):
            seen.append(k)
            todo.append(k)
    return seen



def rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def fds(pid):
    """The master's descriptors: {fd: target}."""
    out = {}
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            out[int(fd)] = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            pass
    return out


def fd_kinds(fdmap):
    """Sockets by kind aside: {'socket': n, other targets...}."""
    plain = {}
    nsock = 0
    for fd, target in fdmap.items():
        if target.startswith("socket:"):
            nsock += 1
        else:
            plain[fd] = target
    return nsock, plain


class Stats:
    def __init__(self):
        self.acked = {}             # soak id -> smtpd message id
        self.failed = {}            # soak id -> reply / error (not 250)
        self.latency = []           # seconds, dot -> 250
        self.sessions = 0
        self.open = 0
        self.peak_open = 0
        self.connect_errors = 0
        self.session_errors = []
        self.refused = 0
        self.seq = 0


class Session:
    def __init__(self, reader, writer):
        self.r = reader
        self.w = writer

    async def reply(self):
        lines = []
        while True:
            line = await asyncio.wait_for(self.r.readline(), REPLY_TIMEOUT)
            if not line.endswith(b"\r\n"):
                raise ConnectionError("connection closed: %r" % line)
            lines.append(line[:-2].decode("ascii", "replace"))
            if len(line) < 6 or line[3:4] != b"-":
                return "\n".join(lines)

    async def cmd(self, line, expect):
        self.w.write(line + b"\r\n")
        got = await self.reply()
        if not got.startswith(expect):
            raise ConnectionError("%r: %r" % (line, got))
        return got


async def worker(n, port, st, stop_at, started):
    body_pad = b"x" * 70 + b"\r\n"
    while time.monotonic() < stop_at:
        try:
            r, w = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", port), 30)
        except (OSError, asyncio.TimeoutError):
            st.connect_errors += 1
            await asyncio.sleep(0.5)
            continue
        st.sessions += 1
        st.open += 1
        st.peak_open = max(st.peak_open, st.open)
        s = Session(r, w)
        sid = None
        try:
            g = await s.reply()
            if not g.startswith("220 "):
                st.refused += 1
                raise ConnectionError("greeting %r" % g)
            await s.cmd(b"EHLO soak%d.test" % n, "250")
            started.add(n)
            for _ in range(random.randint(*MSGS_PER_SESSION)):
                if time.monotonic() >= stop_at:
                    break
                st.seq += 1
                sid = "%d.%d" % (n, st.seq)
                await s.cmd(b"MAIL FROM:<soak@example.com>", "250")
                await s.cmd(b"RCPT TO:<r%d@example.com>" % n, "250")
                await s.cmd(b"DATA", "354")
                lines = random.randint(2, 60)
                msg = (b"From: soak@example.com\r\nTo: r%d@example.com\r\n"
                       b"Subject: soak\r\nX-Soak-Id: %s\r\n\r\n"
                       % (n, sid.encode()) + body_pad * lines + b".\r\n")
                w.write(msg)
                t0 = time.monotonic()
                got = await s.reply()
                m = re.match(r"250 OK id=(\S+)$", got)
                if m:
                    st.latency.append(time.monotonic() - t0)
                    st.acked[sid] = m.group(1)
                else:
                    st.failed[sid] = got
                sid = None
                if PAUSE > 0:
                    await asyncio.sleep(random.uniform(0, 2 * PAUSE))
            await s.cmd(b"QUIT", "221")
        except (OSError, ConnectionError, asyncio.TimeoutError,
                asyncio.IncompleteReadError) as e:
            if sid is not None:
                st.failed[sid] = repr(e)
            if len(st.session_errors) < 20:
                st.session_errors.append(repr(e))
            await asyncio.sleep(0.2)
        finally:
            st.open -= 1
            w.close()
            try:
                await w.wait_closed()
            except (OSError, ConnectionError):
                pass


def sample(pid, t0, samples):
    procs = descendants(pid)
    states = [proc_state(p) for p in procs]
    kids = pid_children(pid)
    child_rss = [rss_kib(p) for p in kids]
    s = {
        "t": time.monotonic() - t0,
        "master_rss": rss_kib(pid),
        "child_rss_max": max(child_rss) if child_rss else 0,
        "child_rss_med": sorted(child_rss)[len(child_rss) // 2]
        if child_rss else 0,
        "procs": len(procs),
        "zombies": states.count("Z"),
        "master_fds": len(os.listdir("/proc/%d/fd" % pid)),
    }
    samples.append(s)
    return s


async def sampler(pid, t0, samples, st, done, harvest):
    loop = asyncio.get_running_loop()
    while not done.is_set():
        await loop.run_in_executor(None, harvest.run)
        s = sample(pid, t0, samples)
        log("t=%4.0fs master_rss=%dKiB child_rss(max/median)=%d/%dKiB "
            "procs=%d zombies=%d master_fds=%d open_sessions=%d acked=%d"
            % (s["t"], s["master_rss"], s["child_rss_max"],
               s["child_rss_med"], s["procs"], s["zombies"],
               s["master_fds"], st.open, len(st.acked)))
        try:
            await asyncio.wait_for(done.wait(), SAMPLE)
        except asyncio.TimeoutError:
            pass


async def drive(port, pid, samples, harvest):
    st = Stats()
    t0 = time.monotonic()
    stop_at = t0 + SECONDS
    done = asyncio.Event()
    started = set()
    mon = asyncio.ensure_future(sampler(pid, t0, samples, st, done, harvest))
    tasks = []
    for n in range(SESSIONS):
        tasks.append(asyncio.ensure_future(
            worker(n, port, st, stop_at, started)))
        if n % 50 == 49:
            await asyncio.sleep(0.05)     # a ramp, not a SYN flood
    await asyncio.gather(*tasks)
    done.set()
    await mon
    return st, time.monotonic() - t0


def pct(sorted_vals, p):
    if not sorted_vals:
        return float("nan")
    i = min(len(sorted_vals) - 1, int(round(p / 100.0 * (len(sorted_vals) - 1))))
    return sorted_vals[i]


class Harvest:
    """Counts the X-Soak-Id of each message in the Maildir and removes
    the file, so that the tmpfs does not fill over a long run."""

    def __init__(self, md):
        self.md = md
        self.ids = {}
        self.bad = []

    def run(self):
        for sub in ("new", "cur"):
            d = os.path.join(self.md, sub)
            try:
                names = os.listdir(d)
            except FileNotFoundError:
                continue
            for name in names:
                path = os.path.join(d, name)
                with open(path, "rb") as f:
                    head = f.read(4096)
                os.unlink(path)
                m = re.search(rb"\r?\nX-Soak-Id: (\S+)\r?\n", head)
                if not m:
                    self.bad.append(name)
                    continue
                k = m.group(1).decode()
                self.ids[k] = self.ids.get(k, 0) + 1

    def left_in_tmp(self):
        try:
            return os.listdir(os.path.join(self.md, "tmp"))
        except FileNotFoundError:
            return []


def main():
    for p in (SMTPD, MAILDIR_PROG):
        if not os.access(p, os.X_OK):
            log("%s missing: run make first" % p)
            return 2
    tmp = tempfile.mkdtemp(prefix="smtpd-soak-", dir=TMPBASE)
    os.chmod(tmp, 0o777)
    md = os.path.join(tmp, "Maildir")
    # The delivery user runs a copy: root's checkout may be private.
    prog = os.path.join(tmp, "deliver-maildir")
    shutil.copyfile(MAILDIR_PROG, prog)
    os.chmod(prog, 0o755)
    spool = os.path.join(tmp, "spool")
    os.mkdir(spool)
    os.chmod(spool, 0o1777)
    port = free_port()
    conf = os.path.join(tmp, "smtpd.conf")
    with open(conf, "w") as f:
        f.write("hostname soak.test\n"
                "listen on 127.0.0.1 port %d\n"
                "max-clients 1100\n"
                "max-clients-per-address 1100\n"
                "prefork 64\n"
                "max-sessions-per-child 200\n"
                "timeout 300\n"
                "spool %s\n"
                'deliver "%s -c %s"\n' % (port, spool, prog, md))
    logpath = os.path.join(tmp, "smtpd.log")
    logf = open(logpath, "wb")
    proc = subprocess.Popen([SMTPD, "-d", "-f", conf],
                            stdin=subprocess.DEVNULL, stdout=logf,
                            stderr=logf, cwd=tmp)
    pid = proc.pid
    failures = []
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log("smtpd did not start")
                    return 1
                time.sleep(0.05)
        time.sleep(1.0)
        nsock0, fds0 = fd_kinds(fds(pid))
        kids0 = len(pid_children(pid))
        log("smtpd pid %d port %d, %d sessions for %.0f s, maildir %s"
            % (pid, port, SESSIONS, SECONDS, md))
        log("master before: %d descriptors (%d sockets, %d children)"
            % (len(fds0) + nsock0, nsock0, kids0))
        samples = []
        harvest = Harvest(md)
        st, elapsed = asyncio.run(drive(port, pid, samples, harvest))

        # Let sessions end and children settle, then look again.
        time.sleep(3.0)
        s = sample(pid, 0, [])
        zombies = [p for p in descendants(pid) if proc_state(p) == "Z"]
        nsock1, fds1 = fd_kinds(fds(pid))
        kids1 = len(pid_children(pid))
        log("master after: %d descriptors (%d sockets, %d children)"
            % (len(fds1) + nsock1, nsock1, kids1))
        if proc.poll() is not None:
            failures.append("smtpd exited with %s" % proc.returncode)
        if fds1 != fds0:
            failures.append("master's non-socket descriptors changed: "
                            "%r -> %r" % (fds0, fds1))
        # listeners + one socketpair per child
        if nsock1 - kids1 != nsock0 - kids0:
            failures.append("master sockets: %d with %d children before, "
                            "%d with %d children after"
                            % (nsock0, kids0, nsock1, kids1))
        if zombies:
            failures.append("zombies: %r" % zombies)

        harvest.run()
        ids, bad, left = harvest.ids, harvest.bad, harvest.left_in_tmp()
        acked = set(st.acked)
        dup = sorted(k for k, v in ids.items() if v > 1)
        missing = sorted(acked - set(ids))
        extra = sorted(set(ids) - acked)
        if dup:
            failures.append("%d messages delivered more than once: %s"
                            % (len(dup), dup[:5]))
        if missing:
            failures.append("%d acknowledged messages missing: %s"
                            % (len(missing), missing[:5]))
        if extra:
            failures.append("%d messages delivered but not acknowledged: %s"
                            % (len(extra), extra[:5]))
        if bad:
            failures.append("%d files without X-Soak-Id" % len(bad))
        if left:
            failures.append("%d files left in Maildir/tmp" % len(left))
        # max-clients is over SOAK_SESSIONS: every session must be taken.
        if st.refused:
            failures.append("%d sessions refused below max-clients"
                            % st.refused)
        if st.failed:
            failures.append("%d messages not acknowledged: %s"
                            % (len(st.failed), list(st.failed.items())[:5]))
        if st.peak_open < SESSIONS:
            failures.append("only %d sessions open at once (want %d)"
                            % (st.peak_open, SESSIONS))
        with open(logpath, "rb") as f:
            logtext = f.read().decode("utf-8", "replace")
        warnings = [l for l in logtext.splitlines()
                    if re.search(r"refused|exited on signal|exited with "
                                 r"status|fatal|accept:|fork|socketpair",
                                 l)]

        lat = sorted(st.latency)
        after_1min = [x for x in samples if x["t"] >= 60]
        print()
        print("soak summary (%d s, %d concurrent sessions, 2 cores)"
              % (round(elapsed), SESSIONS))
        print("  sessions          %d (peak %d open at once; %d connect "
              "errors, %d refused, %d session errors)"
              % (st.sessions, st.peak_open, st.connect_errors, st.refused,
                 len(st.session_errors)))
        print("  messages          %d acknowledged, %d not, %d in Maildir"
              % (len(acked), len(st.failed), sum(ids.values())))
        print("  rate              %.1f msgs/s" % (len(acked) / elapsed))
        print("  latency dot->250  p50 %.1f ms, p99 %.1f ms, max %.1f ms"
              % (pct(lat, 50) * 1000, pct(lat, 99) * 1000,
                 (lat[-1] if lat else float("nan")) * 1000))
        print("  master RSS        peak %d KiB, final %d KiB%s"
              % (max(x["master_rss"] for x in samples), s["master_rss"],
                 " (after 1st minute: %d..%d KiB)"
                 % (min(x["master_rss"] for x in after_1min),
                    max(x["master_rss"] for x in after_1min))
                 if after_1min else ""))
        print("  child RSS         peak %d KiB, final max %d KiB, final "
              "median %d KiB"
              % (max(x["child_rss_max"] for x in samples),
                 s["child_rss_max"], s["child_rss_med"]))
        print("  processes         peak %d, final %d; zombies seen %d, "
              "final %d"
              % (max(x["procs"] for x in samples), s["procs"],
                 max(x["zombies"] for x in samples), len(zombies)))
        print("  master fds        before %d, after %d (children %d -> %d)"
              % (len(fds0) + nsock0, len(fds1) + nsock1, kids0, kids1))
        print("  log lines of note %d%s" % (len(warnings), "".join(
            "\n    " + l for l in warnings[:10])))
        for e in st.session_errors[:5]:
            print("  session error     %s" % e)
        if failures:
            print("\nsoak: FAILED")
            for f in failures:
                print("  - " + f)
            return 1
        print("\nsoak: OK")
        return 0
    finally:
        stop_process(proc, 30)
        logf.close()
        if os.environ.get("SOAK_KEEP"):
            log("kept %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
