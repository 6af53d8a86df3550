"""Upgrade in place: SIGUSR2 starts the binary at its path again with the
listening sockets; the old master drains once the new one is ready.
(make check-upgrade runs the same under load.)"""

import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
import unittest

from harness import (RECORD, Client, Smtpd, pid_alive, pid_children, read_pid,
                     smtpd_path, wait_for)


class UpgradeTest(unittest.TestCase):
    """smtpd runs from a copy in the test's directory, which the test
    replaces as install(1) would."""

    def setUp(self):
        self.d = Smtpd(RECORD + "\npidfile @TMP@/smtpd.pid", start=False,
                       unix_listen="lmtp.sock", unix_opts="lmtp")
        self.binary = os.path.join(self.d.tmp, "smtpd")
        shutil.copy2(smtpd_path(), self.binary)
        self.pidfile = os.path.join(self.d.tmp, "smtpd.pid")
        self.d.binary = self.binary
        self.d.start()
        self.assertTrue(wait_for(
            lambda: read_pid(self.pidfile) == self.d.pid, 5))

    def tearDown(self):
        pid = read_pid(self.pidfile)
        if pid is not None and pid != self.d.pid and pid_alive(pid):
            os.kill(pid, signal.SIGTERM)
            wait_for(lambda: not pid_alive(pid), 15)
        self.d.cleanup()

    def install(self, text=None):
        new = self.binary + ".new"
        if text is None:
            shutil.copy2(smtpd_path(), new)
        else:
            with open(new, "w") as f:
                f.write(text)
            os.chmod(new, 0o755)
        os.rename(new, self.binary)

    def upgrade(self):
        old = self.d.pid
        self.install()
        self.d.signal(signal.SIGUSR2)
        self.assertTrue(wait_for(
            lambda: read_pid(self.pidfile) not in (None, old), 15),
            self.d.log())
        return read_pid(self.pidfile)

    def test_upgrade(self):
        c = self.d.session()
        c.check("MAIL FROM:<a@example.org>", "250 OK")
        new = self.upgrade()
        self.assertTrue(self.d.wait_log(
            r"upgrade: new master %d is ready" % new))
        # The session on the old master goes on to the end.
        c.check("RCPT TO:<b@example.net>", "250 OK")
        c.check("DATA", "354 End data with <CR><LF>.<CR><LF>")
        c.send("Subject: t\r\n\r\nhi\r\n.\r\n")
        self.assertRegex(c.recv_reply(), r"^250 OK id=")
        c.check("QUIT", "221 Bye")
        # The old master exits, leaving the sockets and the pidfile.
        self.assertEqual(self.d.wait_exit(15), 0, self.d.log())
        self.assertEqual(read_pid(self.pidfile), new)
        self.assertTrue(stat.S_ISSOCK(os.stat(self.d.unix_listen).st_mode))
        self.assertTrue(stat.S_ISSOCK(os.stat(self.d.control).st_mode))
        c2 = self.d.connect()
        c2.check("QUIT", "221 Bye")
        c3 = Client(path=self.d.unix_listen)
        c3.expect("220 mx.test ESMTP smtpd")
        c3.close()
        rc, out = self.d.status()
        self.assertEqual(rc, 0, out)
        self.assertIn("pid %d," % new, out)
        self.assertIn("\nupgrades.ok", out)
        self.assertRegex(out, r"\nupgrades\.ok +1\n")
        self.assertRegex(out, r"\nmessages\.2xx +1\n")
        # And it upgrades again.
        self.d.pid = new
        self.d.signal = lambda sig: os.kill(new, sig)
        newer = self.upgrade()
        self.assertNotEqual(newer, new)
        self.assertTrue(wait_for(lambda: not pid_alive(new), 15))
        c4 = self.d.connect()
        c4.check("QUIT", "221 Bye")

    def test_limits_count_the_old_masters_sessions(self):
        # Until the old master has finished its sessions, they count for
        # max-clients-per-address in the new one as its own do.
        self.d.write_config(RECORD + "\npidfile @TMP@/smtpd.pid\n"
                            "max-clients-per-address 2")
        self.d.signal(signal.SIGHUP)
        self.assertTrue(self.d.wait_log(r"reloaded configuration"))
        held = [self.d.session() for _ in range(2)]
        new = self.upgrade()
        # From now on only the new master accepts.
        self.assertTrue(self.d.wait_log(
            r"draining: the new master has the sockets"), self.d.log())
        c = self.d.connect(greeting=False)
        self.assertEqual(c.recv_reply(), "421 mx.test Service not "
                         "available, too many connections")
        self.assertTrue(self.d.wait_log(r"\[%d\]: refused 127\.0\.0\.1" %
                                        new), self.d.log())
        # A third master would not count the first one's sessions.
        os.kill(new, signal.SIGUSR2)
        self.assertTrue(self.d.wait_log(
            r"SIGUSR2 ignored: the previous master still has sessions"))
        for h in held:
            h.check("QUIT", "221 Bye")
        self.assertEqual(self.d.wait_exit(15), 0, self.d.log())
        c2 = self.d.connect()
        c2.check("QUIT", "221 Bye")

    def test_failed_start_keeps_serving(self):
        self.install("#!/bin/sh\nexit 3\n")
        self.d.signal(signal.SIGUSR2)
        self.assertTrue(self.d.wait_log(
            r"upgrade failed: the new master exited before it was ready; "
            r"this master keeps serving"), self.d.log())
        self.assertTrue(self.d.wait_log(r"new master \d+ exited with "
                                        r"status 3"), self.d.log())
        self.assertEqual(read_pid(self.pidfile), self.d.pid)
        c = self.d.connect()
        c.check("QUIT", "221 Bye")
        self.assertRegex(self.d.status()[1], r"\nupgrades\.failed +1\n")

    def test_second_sigusr2_ignored(self):
        # A new binary slow to start: a script that waits, then runs it.
        self.install("#!/bin/sh\nsleep 1\nexec %s \"$@\"\n"
                     % os.path.abspath(smtpd_path()))
        self.d.signal(signal.SIGUSR2)
        time.sleep(0.2)
        self.d.signal(signal.SIGUSR2)
        self.assertTrue(self.d.wait_log(
            r"SIGUSR2 ignored: an upgrade is in progress"), self.d.log())
        self.assertTrue(wait_for(
            lambda: read_pid(self.pidfile) not in (None, self.d.pid), 15))
        self.assertEqual(self.d.wait_exit(15), 0)

    def test_sigterm_before_the_new_master_is_ready(self):
        # Stopped while the new master starts: it is stopped too (it used
        # to come up on the inherited sockets and serve on, with the
        # UNIX sockets unlinked and its pid in the pidfile).
        self.install("#!/bin/sh\nsleep 0.5\nexec %s \"$@\"\n"
                     % os.path.abspath(smtpd_path()))
        self.d.signal(signal.SIGUSR2)
        self.assertTrue(self.d.wait_log(r"upgrade: new master \d+ started"),
                        self.d.log())
        new = int(re.search(r"upgrade: new master (\d+) started",
                            self.d.log()).group(1))
        self.d.signal(signal.SIGTERM)
        self.assertEqual(self.d.wait_exit(15), 0, self.d.log())
        self.assertIn("upgrade: new master %d stopped: shutting down" % new,
                      self.d.log())
        self.assertTrue(wait_for(lambda: not pid_alive(new), 5))
        time.sleep(1)               # when the script would have run smtpd
        self.assertFalse(os.path.exists(self.pidfile))
        self.assertFalse(os.path.exists(self.d.control))
        self.assertFalse(os.path.exists(self.d.unix_listen))
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", self.d.port), 2).close()

    def test_signals_to_the_new_master_as_it_starts(self):
        # A signal to every process of the service while the new master
        # starts, before it has its handlers (here while the script that
        # runs it sleeps; not sh, which changes the signal mask):
        # SIGUSR2 is ignored, SIGHUP waits for them.  By their default
        # action they used to end it, and the upgrade.
        self.install("#!%s\nimport os, sys, time\ntime.sleep(1)\n"
                     "os.execv(%r, sys.argv)\n"
                     % (sys.executable, os.path.abspath(smtpd_path())))
        self.d.signal(signal.SIGUSR2)
        self.assertTrue(self.d.wait_log(r"upgrade: new master \d+ started"),
                        self.d.log())
        new = int(re.search(r"upgrade: new master (\d+) started",
                            self.d.log()).group(1))
        for sig in (signal.SIGUSR2, signal.SIGHUP):
            os.kill(new, sig)
        self.assertTrue(wait_for(lambda: read_pid(self.pidfile) == new, 15),
                        self.d.log())
        self.assertEqual(self.d.wait_exit(15), 0, self.d.log())
        # The held SIGHUP is taken once the new master has its handlers,
        # which may be after the old one has gone.
        self.assertTrue(self.d.wait_log(r"\[%d\]: reloaded configuration"
                                        % new), self.d.log())
        self.assertNotIn("upgrade failed", self.d.log())

    def test_sigterm_to_the_new_master_before_it_is_ready(self):
        # The new master is stopped once it has its handlers, before it
        # said it is ready: the old master serves on, and the UNIX
        # sockets it serves on stay (they used to be removed).
        def caught(pid):
            try:
                with open("/proc/%d/status" % pid) as f:
                    for line in f:
                        if line.startswith("SigCgt:"):
                            return int(line.split()[1], 16)
            except OSError:
                pass
            return 0
        old = set(pid_children(self.d.pid))
        self.install()
        self.d.signal(signal.SIGUSR2)
        new = wait_for(lambda: next(iter(set(pid_children(self.d.pid)) -
                                         old), None), 5, 0)
        self.assertIsNotNone(new)
        # Past execve() (nothing caught), then its handlers.
        term = 1 << (signal.SIGTERM - 1)
        wait_for(lambda: caught(new) == 0, 5, 0)
        wait_for(lambda: caught(new) & term, 5, 0)
        os.kill(new, signal.SIGTERM)
        self.assertTrue(self.d.wait_log(r"upgrade failed|upgrade: new "
                                        r"master \d+ is ready"), self.d.log())
        if "[%d]: upgrade: ready" % new in self.d.log():
            self.skipTest("the new master was ready before the signal")
        self.assertIn("[%d]: shutting down" % new, self.d.log())
        self.assertTrue(wait_for(lambda: not pid_alive(new), 5))
        self.assertEqual(read_pid(self.pidfile), self.d.pid)
        c = Client(path=self.d.unix_listen)
        c.expect("220 mx.test ESMTP smtpd")
        c.close()
        rc, out = self.d.status()
        self.assertEqual(rc, 0, out)
        self.assertIn("pid %d," % self.d.pid, out)

    def test_reload_during_failed_upgrade_moves_the_pidfile(self):
        # The pidfile a reload moved while an upgrade was under way is
        # where the configuration says once the upgrade has failed.
        self.install("#!/bin/sh\nsleep 1.5\nexit 3\n")
        self.d.signal(signal.SIGUSR2)
        self.assertTrue(self.d.wait_log(r"upgrade: new master \d+ started"))
        moved = os.path.join(self.d.tmp, "moved.pid")
        self.d.reload(RECORD + "\npidfile @TMP@/moved.pid")
        self.assertTrue(self.d.wait_log(r"reloaded configuration"))
        self.assertTrue(self.d.wait_log(r"upgrade failed"), self.d.log())
        self.assertTrue(wait_for(lambda: read_pid(moved) == self.d.pid, 5),
                        self.d.log())
        # Written there first, then the old one goes (a moment later).
        self.assertTrue(wait_for(lambda: not os.path.exists(self.pidfile),
                                 5))

    def test_paths_left_behind_are_removed(self):
        # The new configuration moves the pidfile and the control socket
        # and drops the UNIX listener: nothing of the old master's is left
        # at the old paths, as after a reload.
        moved = os.path.join(self.d.tmp, "moved.pid")
        text = "".join(
            "pidfile %s\n" % moved if l.startswith("pidfile ") else
            "control %s/moved.sock\n" % self.d.tmp
            if l.startswith("control ") else
            "" if l.startswith("listen on /") else l
            for l in self.d.config.splitlines(True))
        self.assertNotIn(self.d.unix_listen, text)
        self.d.write_config(text, raw=True)
        self.install()
        self.d.signal(signal.SIGUSR2)
        try:
            self.assertTrue(wait_for(lambda: read_pid(moved), 15),
                            self.d.log())
            self.assertEqual(self.d.wait_exit(15), 0, self.d.log())
            self.assertFalse(os.path.exists(self.pidfile))
            self.assertFalse(os.path.exists(self.d.unix_listen),
                             self.d.log())
            self.assertFalse(os.path.exists(self.d.control))
            self.assertTrue(stat.S_ISSOCK(os.stat(os.path.join(
                self.d.tmp, "moved.sock")).st_mode))
            self.assertIn("the old master's pidfile %s removed"
                          % self.pidfile, self.d.log())
        finally:
            new = read_pid(moved)
            if new is not None:
                os.kill(new, signal.SIGTERM)
                wait_for(lambda: not pid_alive(new), 15)

    def test_failed_upgrade_keeps_the_old_paths(self):
        # The new master drops the UNIX listener and moves the control
        # socket, then fails (its new port is taken): the old master
        # serves on, at its paths, which are still there.
        taken = socket.socket()
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        self.addCleanup(taken.close)
        text = "".join(
            "control %s/moved.sock\n" % self.d.tmp
            if l.startswith("control ") else
            "listen on 127.0.0.1 port %d\n" % taken.getsockname()[1]
            if l.startswith("listen on /") else l
            for l in self.d.config.splitlines(True))
        self.d.write_config(text, raw=True)
        self.install()
        self.d.signal(signal.SIGUSR2)
        self.assertTrue(self.d.wait_log(r"upgrade failed"), self.d.log())
        self.assertIn("no longer listened on", self.d.log())
        c = Client(path=self.d.unix_listen)
        c.expect("220 mx.test ESMTP smtpd")
        c.close()
        s = socket.socket(socket.AF_UNIX)
        s.connect(self.d.control)       # the old master answers there
        s.close()

    @unittest.skipUnless(socket.has_ipv6, "no IPv6")
    def test_widened_listener_binds_what_it_lacks(self):
        # 127.0.0.1 becomes localhost: the new master keeps the inherited
        # IPv4 socket and binds ::1 itself, as a fresh start would.
        try:
            socket.create_server(("::1", 0), family=socket.AF_INET6).close()
        except OSError:
            self.skipTest("no ::1")
        self.assertIn("listen on 127.0.0.1 port %d" % self.d.port,
                      self.d.config)
        self.d.write_config(self.d.config.replace(
            "listen on 127.0.0.1 port", "listen on localhost port"),
            raw=True)
        new = self.upgrade()
        self.assertTrue(self.d.wait_log(
            r"\[%d\]: listening on localhost:%d\n" % (new, self.d.port)),
            self.d.log())
        c = Client(self.d.port, host="::1")
        c.expect("220 mx.test ESMTP smtpd")
        c.close()
        c = Client(self.d.port)
        c.expect("220 mx.test ESMTP smtpd")
        c.close()

    def test_children_ignore_sigusr2(self):
        c = self.d.session()
        for pid in self.d.children():
            os.kill(pid, signal.SIGUSR2)
        time.sleep(0.2)
        self.assertTrue(all(pid_alive(p) for p in self.d.children()))
        c.check("NOOP", "250 OK")
        self.assertNotIn("upgrade", self.d.log())


class TestUpgradeStartedAs(unittest.TestCase):
    """What the new master is: the file at the path smtpd was started by,
    links unresolved; and where it runs."""

    def setUp(self):
        self.d = Smtpd(RECORD + "\npidfile @TMP@/smtpd.pid", start=False)
        self.pidfile = os.path.join(self.d.tmp, "smtpd.pid")
        os.mkdir(os.path.join(self.d.tmp, "v1"))
        os.mkdir(os.path.join(self.d.tmp, "sbin"))
        self.v1 = os.path.join(self.d.tmp, "v1", "smtpd")
        shutil.copy2(smtpd_path(), self.v1)
        self.binary = os.path.join(self.d.tmp, "sbin", "smtpd")
        os.symlink("../v1/smtpd", self.binary)
        self.pids = []

    def tearDown(self):
        for pid in self.pids + [read_pid(self.pidfile)]:
            if pid is not None and pid_alive(pid):
                os.kill(pid, signal.SIGTERM)
                wait_for(lambda: not pid_alive(pid), 15)
        self.d.cleanup()

    def upgrade(self, old):
        os.kill(old, signal.SIGUSR2)
        self.assertTrue(wait_for(
            lambda: read_pid(self.pidfile) not in (None, old), 15),
            self.d.log())
        new = read_pid(self.pidfile)
        self.pids.append(new)
        return new

    def test_link_replaced_by_install(self):
        self.d.binary = self.binary
        self.d.start()
        self.pids.append(self.d.pid)
        # install(1) puts a file where the link was
        shutil.copy2(smtpd_path(), self.binary + ".new")
        os.rename(self.binary + ".new", self.binary)
        new = self.upgrade(self.d.pid)
        self.assertEqual(os.readlink("/proc/%d/exe" % new), self.binary)

    def test_daemon_runs_in_root(self):
        # Without -d: the new master leaves the directory it was started
        # in, as daemon() did for the first.
        here = os.path.join(self.d.tmp, "here")
        os.mkdir(here)
        self.d.write_config(RECORD + "\npidfile @TMP@/smtpd.pid")
        subprocess.run([self.binary, "-f", self.d.conf], cwd=here,
                       check=True, timeout=10,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.assertTrue(wait_for(lambda: read_pid(self.pidfile), 5))
        old = read_pid(self.pidfile)
        self.pids.append(old)
        self.assertEqual(os.readlink("/proc/%d/cwd" % old), "/")
        new = self.upgrade(old)
        self.assertEqual(os.readlink("/proc/%d/cwd" % new), "/")
        self.assertTrue(wait_for(lambda: not pid_alive(old), 15))


if __name__ == "__main__":
    unittest.main()
