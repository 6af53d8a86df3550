#!/usr/bin/env python3
"""make racer: a UNIX socket listener under attack while smtpd starts.

The socket's directory belongs to nobody, who is also the socket's owner
(so smtpd accepts the directory), and nobody runs a racer that swaps the
socket, as soon as it appears, for a symbolic link to a file of root's
(mode 0600) -- between smtpd's bind() and its setting of the mode and
owner.  smtpd (as root) is started RACER_STARTS times (default 300); the
victim's mode, owner and content must never change.  Prints the figures:
starts, starts that came up, starts refused, swaps the racer made.
"""

import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMTPD = os.path.join(REPO, os.environ.get("SMTPD", "build/smtpd"))
STARTS = int(os.environ.get("RACER_STARTS", "300"))


def racer(path, victim, counter):
    """In a child, as nobody: replace the socket by a link to victim."""
    nobody = pwd.getpwnam("nobody")
    os.setgroups([])
    os.setgid(nobody.pw_gid)
    os.setuid(nobody.pw_uid)
    swaps = 0
    tmp = path + ".link"
    while True:
        try:
            if stat.S_ISSOCK(os.lstat(path).st_mode):
                try:
                    os.unlink(tmp)
                except FileNotFoundError:
                    pass
                os.symlink(victim, tmp)
                os.rename(tmp, path)
                swaps += 1
                with open(counter, "w") as f:
                    f.write(str(swaps))
        except OSError:
            pass


def start_once(conf, path, log):
    """One start: until it listens on path or exits; then stopped."""
    with open(log, "ab") as out:
        p = subprocess.Popen([SMTPD, "-d", "-f", conf],
                             stdin=subprocess.DEVNULL, stdout=out,
                             stderr=out)
    up = False
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and p.poll() is None:
        with open("/proc/net/unix") as f:
            if any(line.rstrip().endswith(" " + path) for line in f):
                up = True
                break
        time.sleep(0.005)
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    return up


def main():
    if os.geteuid() != 0:
        print("racer: needs root (skipped)")
        return 0
    nobody = pwd.getpwnam("nobody")
    tmp = tempfile.mkdtemp(prefix="smtpd-racer-")
    os.chmod(tmp, 0o755)
    sockdir = os.path.join(tmp, "run")
    os.mkdir(sockdir, 0o755)
    os.chown(sockdir, nobody.pw_uid, nobody.pw_gid)
    path = os.path.join(sockdir, "s.sock")
    victim = os.path.join(tmp, "victim")
    with open(victim, "w") as f:
        f.write("root's secret\n")
    os.chmod(victim, 0o600)
    before = os.stat(victim)
    counter = os.path.join(sockdir, "swaps")
    conf = os.path.join(tmp, "smtpd.conf")
    with open(conf, "w") as f:
        f.write("hostname racer.test\nprefork 1\ndeliver discard\n"
                "spool %s\nlisten on %s lmtp mode 0666 owner nobody\n"
                % (tmp, path))
    log = os.path.join(tmp, "smtpd.log")
    pid = os.fork()
    if pid == 0:
        try:
            racer(path, victim, counter)
        finally:
            os._exit(0)
    up = changed = 0
    try:
        for _ in range(STARTS):
            if start_once(conf, path, log):
                up += 1
            st = os.stat(victim)
            if (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) != \
                    (stat.S_IMODE(before.st_mode), before.st_uid,
                     before.st_gid):
                changed += 1
                os.chmod(victim, 0o600)
                os.chown(victim, 0, 0)
            # what the racer left is not a socket: smtpd would refuse it
            try:
                if not stat.S_ISSOCK(os.lstat(path).st_mode):
                    os.unlink(path)
            except FileNotFoundError:
                pass
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    try:
        with open(counter) as f:
            swaps = int(f.read() or 0)
    except (OSError, ValueError):
        swaps = 0
    with open(victim) as f:
        intact = f.read() == "root's secret\n"
    print("racer: %d starts, %d came up, %d refused, %d swaps by the "
          "racer, victim changed %d times%s"
          % (STARTS, up, STARTS - up, swaps, changed,
             "" if intact else ", CONTENT CHANGED"))
    shutil.rmtree(tmp, ignore_errors=True)
    return 0 if changed == 0 and intact else 1


if __name__ == "__main__":
    sys.exit(main())
