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
sys.path.insert(0, os.path.join(REPO, "tests", "e2e"))
from harness import built_path, stop_process  # noqa: E402
SMTPD = built_path("SMTPD")
STARTS = int(os.environ.get("RACER_STARTS", "300"))


# The racer in C: a Python loop is too slow to land between two system
# calls.  It counts its swaps in the file argv[3].
RACER_C = r"""
#include <sys/stat.h>
#include <stdio.h>
#include <unistd.h>
int
main(int argc, char *argv[])
{
	struct stat	 st;
	char		 tmp[4096];
	long		 swaps = 0;
	FILE		*f;

	(void)argc;
	snprintf(tmp, sizeof(tmp), "%s.link", argv[1]);
	(void)unlink(tmp);
	(void)symlink(argv[2], tmp);
	for (;;) {
		if (lstat(argv[1], &st) == 0 && S_ISSOCK(st.st_mode) &&
		    rename(tmp, argv[1]) == 0) {
			(void)symlink(argv[2], tmp);
			if (++swaps % 8 == 1 && (f = fopen(argv[3], "w"))) {
				fprintf(f, "%ld", swaps);
				fclose(f);
			}
		}
	}
}
"""


def racer(prog, path, victim, counter):
    """In a child, as nobody: replace the socket by a link to victim."""
    nobody = pwd.getpwnam("nobody")
    os.setgroups([])
    os.setgid(nobody.pw_gid)
    os.setuid(nobody.pw_uid)
    os.execv(prog, [prog, path, victim, counter])


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
    stop_process(p, 10)
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
    prog = os.path.join(tmp, "racer")
    with open(prog + ".c", "w") as f:
        f.write(RACER_C)
    subprocess.run(["cc", "-O2", "-o", prog, prog + ".c"], check=True)
    conf = os.path.join(tmp, "smtpd.conf")
    with open(conf, "w") as f:
        f.write("hostname racer.test\nprefork 1\ndeliver discard\n"
                "spool %s\ncontrol %s/control.sock\n"
                "listen on %s lmtp mode 0666 owner nobody\n"
                % (tmp, tmp, path))
    log = os.path.join(tmp, "smtpd.log")
    pid = os.fork()
    if pid == 0:
        try:
            racer(prog, path, victim, counter)
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
    if os.environ.get("RACER_KEEP"):
        print("racer: kept " + tmp)
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if changed == 0 and intact else 1


if __name__ == "__main__":
    sys.exit(main())
