#!/usr/bin/env python3
"""make check-upgrade: the binary replaced under load (SIGUSR2).

    UPGRADE_SECONDS=20 UPGRADE_SESSIONS=20 UPGRADE_TIMES=3 \
        python3 tests/upgrade_load.py

smtpd (a copy of SMTPD, default build/smtpd, in a temporary directory) runs
in -d mode with a pidfile and delivers with deliver-maildir
(DELIVER_MAILDIR) into a Maildir.  UPGRADE_SESSIONS sessions are kept busy
for UPGRADE_SECONDS: each sends messages back to back (a unique X-Load-Id
header each) and reconnects after a few.  UPGRADE_TIMES times during the
run the binary is replaced the way install(1) does it (a new file renamed
over the old) and the serving master gets SIGUSR2; the next one waits
until the pidfile names the new master.

Afterwards: no connection was refused, no session failed, every message
acknowledged with "250 OK id=..." is in the Maildir exactly once and
nothing else is; every old master has exited.  Exits 1 on any failure.
"""

import asyncio
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "e2e"))
from harness import built_path, free_port, pid_alive as alive, \
    read_pid  # noqa: E402
SMTPD = built_path("SMTPD")
MAILDIR_PROG = built_path("DELIVER_MAILDIR")
SECONDS = float(os.environ.get("UPGRADE_SECONDS", "20"))
SESSIONS = int(os.environ.get("UPGRADE_SESSIONS", "20"))
TIMES = int(os.environ.get("UPGRADE_TIMES", "3"))
MSGS_PER_SESSION = (3, 12)
REPLY_TIMEOUT = 60.0


def log(msg):
    print("upgrade: " + msg, flush=True)




class Stats:
    def __init__(self):
        self.acked = set()
        self.failed = {}
        self.sessions = 0
        self.errors = []
        self.refused = 0
        self.seq = 0


async def reply(r):
    lines = []
    while True:
        line = await asyncio.wait_for(r.readline(), REPLY_TIMEOUT)
        if not line.endswith(b"\r\n"):
            raise ConnectionError("connection closed: %r" % line)
        lines.append(line[:-2].decode("ascii", "replace"))
        if len(line) < 6 or line[3:4] != b"-":
            return "\n".join(lines)


async def cmd(r, w, line, expect):
    w.write(line + b"\r\n")
    got = await reply(r)
    if not got.startswith(expect):
        raise ConnectionError("%r: %r" % (line, got))
    return got


async def message(r, w, n, st):
    st.seq += 1
    lid = "%d.%d" % (n, st.seq)
    await cmd(r, w, b"MAIL FROM:<load@example.com>", "250")
    await cmd(r, w, b"RCPT TO:<r%d@example.com>" % n, "250")
    await cmd(r, w, b"DATA", "354")
    w.write(b"Subject: load\r\nX-Load-Id: %s\r\n\r\n" % lid.encode() +
            b"y" * 70 + b"\r\n.\r\n")
    got = await reply(r)
    if re.match(r"250 OK id=\S+$", got):
        st.acked.add(lid)
    else:
        st.failed[lid] = got
        raise ConnectionError("message %s: %r" % (lid, got))


async def worker(n, port, st, stop_at):
    while time.monotonic() < stop_at:
        try:
            r, w = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", port), 10)
        except (OSError, asyncio.TimeoutError) as e:
            st.refused += 1
            st.errors.append("connect: %r" % e)
            await asyncio.sleep(0.2)
            continue
        st.sessions += 1
        try:
            g = await reply(r)
            if not g.startswith("220 "):
                st.refused += 1
                raise ConnectionError("greeting %r" % g)
            await cmd(r, w, b"EHLO load%d.test" % n, "250")
            for _ in range(random.randint(*MSGS_PER_SESSION)):
                if time.monotonic() >= stop_at:
                    break
                await message(r, w, n, st)
                await asyncio.sleep(random.uniform(0, 0.1))
            await cmd(r, w, b"QUIT", "221")
        except (OSError, ConnectionError, asyncio.TimeoutError,
                asyncio.IncompleteReadError) as e:
            st.errors.append("session: %r" % e)
            await asyncio.sleep(0.2)
        finally:
            w.close()
            try:
                await w.wait_closed()
            except (OSError, ConnectionError):
                pass


def replace_binary(path):
    """As install(1) does: a new file renamed over the old one."""
    new = path + ".new"
    shutil.copy2(SMTPD, new)
    os.rename(new, path)


async def upgrader(binary, pidfile, stop_at, masters, results):
    loop = asyncio.get_running_loop()
    for i in range(TIMES):
        at = stop_at - SECONDS + SECONDS * (i + 1) / (TIMES + 1)
        await asyncio.sleep(max(0, at - time.monotonic()))
        old = read_pid(pidfile)
        await loop.run_in_executor(None, replace_binary, binary)
        os.kill(old, signal.SIGUSR2)
        t0 = time.monotonic()
        while time.monotonic() - t0 < 30:
            new = read_pid(pidfile)
            if new is not None and new != old:
                break
            await asyncio.sleep(0.02)
        else:
            results.append("upgrade %d: pidfile still names %d" % (i + 1,
                                                                    old))
            return
        masters.append(new)
        log("upgrade %d: master %d -> %d in %.2f s"
            % (i + 1, old, new, time.monotonic() - t0))


async def drive(port, binary, pidfile, masters, results):
    st = Stats()
    stop_at = time.monotonic() + SECONDS
    tasks = [asyncio.ensure_future(worker(n, port, st, stop_at))
             for n in range(SESSIONS)]
    tasks.append(asyncio.ensure_future(
        upgrader(binary, pidfile, stop_at, masters, results)))
    await asyncio.gather(*tasks)
    return st


def delivered(md):
    ids, bad = {}, []
    for sub in ("new", "cur"):
        d = os.path.join(md, sub)
        for name in os.listdir(d) if os.path.isdir(d) else []:
            with open(os.path.join(d, name), "rb") as f:
                m = re.search(rb"\nX-Load-Id: (\S+)\r?\n", f.read(4096))
            if not m:
                bad.append(name)
                continue
            k = m.group(1).decode()
            ids[k] = ids.get(k, 0) + 1
    return ids, bad


def start(tmp, port, md):
    binary = os.path.join(tmp, "smtpd")
    shutil.copy2(SMTPD, binary)
    pidfile = os.path.join(tmp, "smtpd.pid")
    conf = os.path.join(tmp, "smtpd.conf")
    spool = os.path.join(tmp, "spool")
    os.mkdir(spool)
    os.chmod(spool, 0o1777)
    with open(conf, "w") as f:
        f.write("hostname load.test\nlisten on 127.0.0.1 port %d\n"
                "control %s/control.sock\npidfile %s\nprefork 8\n"
                "max-clients 100\nmax-clients-per-address 100\n"
                "spool %s\ndeliver \"%s -c %s\"\n"
                % (port, tmp, pidfile, spool, MAILDIR_PROG, md))
    logf = open(os.path.join(tmp, "smtpd.log"), "wb")
    proc = subprocess.Popen([binary, "-d", "-f", conf],
                            stdin=subprocess.DEVNULL, stdout=logf,
                            stderr=logf, cwd=tmp)
    deadline = time.monotonic() + 10
    while read_pid(pidfile) != proc.pid:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("smtpd did not start")
        time.sleep(0.05)
    time.sleep(0.5)
    return proc, binary, pidfile


def check(st, md, masters, results):
    failures = list(results)
    ids, bad = delivered(md)
    dup = sorted(k for k, v in ids.items() if v > 1)
    missing = sorted(st.acked - set(ids))
    extra = sorted(set(ids) - st.acked)
    log("%d sessions, %d messages acknowledged, %d delivered, %d upgrades"
        % (st.sessions, len(st.acked), sum(ids.values()), len(masters) - 1))
    if len(masters) != TIMES + 1:
        failures.append("%d upgrades of %d" % (len(masters) - 1, TIMES))
    if st.refused:
        failures.append("%d connections refused" % st.refused)
    if st.errors:
        failures.append("%d sessions failed: %s" % (len(st.errors),
                                                     st.errors[:5]))
    for what, v in (("delivered twice", dup), ("acked, not delivered",
                    missing), ("delivered, not acked", extra),
                    ("without an id", bad)):
        if v:
            failures.append("%d %s: %s" % (len(v), what, v[:5]))
    for pid in masters[:-1]:
        deadline = time.monotonic() + 45
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if alive(pid):
            failures.append("old master %d still running" % pid)
    return failures


def main():
    for p in (SMTPD, MAILDIR_PROG):
        if not os.access(p, os.X_OK):
            log("%s missing: run make first" % p)
            return 2
    tmp = tempfile.mkdtemp(prefix="smtpd-upgrade-")
    os.chmod(tmp, 0o777)
    md = os.path.join(tmp, "Maildir")
    port = free_port()
    proc, binary, pidfile = start(tmp, port, md)
    masters, results = [proc.pid], []
    try:
        log("smtpd pid %d port %d, %d sessions for %.0f s, %d upgrades"
            % (proc.pid, port, SESSIONS, SECONDS, TIMES))
        st = asyncio.run(drive(port, binary, pidfile, masters, results))
        failures = check(st, md, masters, results)
    finally:
        pid = read_pid(pidfile)
        for p in set([pid, proc.pid] + masters):
            if p is not None and alive(p):
                os.kill(p, signal.SIGTERM)
        proc.wait(60)
        deadline = time.monotonic() + 30
        while pid is not None and alive(pid) and \
                time.monotonic() < deadline:
            time.sleep(0.1)
    with open(os.path.join(tmp, "smtpd.log"), "rb") as f:
        text = f.read().decode("utf-8", "replace")
    for line in text.splitlines():
        if "upgrade" in line or "fatal" in line:
            log("log: " + line)
    if failures:
        for f in failures:
            log("FAIL: " + f)
        log("left in %s" % tmp)
        return 1
    shutil.rmtree(tmp, ignore_errors=True)
    log("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
