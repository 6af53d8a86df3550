"""The delivery broker (smtpd.8, smtpd.conf.5 deliver-user): the program
runs as deliver-user, never as the sessions' user; the broker outlives
neither its master nor a SIGKILL without being replaced; no acknowledged
message is lost and none is acknowledged without its delivery."""

import base64
import os
import pwd
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from harness import (OK_ID, RECORD, OwnSmtpdTest, Smtpd, SmtpdTest,
                     no_leak_check_env, pid_alive, pid_children, pid_title,
                     proc_state, smtpd_path, socket_inode, wait_for)
from test_auth import crypt_hash
from test_master import serving_child
from test_privileges import dropped_children, ids, socket_fds

DATA_354 = "354 End data with <CR><LF>.<CR><LF>"
TOO_MANY = "421 mx.test Service not available, too many connections"


def may_renice():
    """Whether we have CAP_SYS_NICE (bit 23), which the daemon inherits."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) >> 23 & 1)
    return False


def check_config(text):
    """(exit status, stderr) of smtpd -n on a configuration."""
    with tempfile.NamedTemporaryFile("w", suffix=".conf") as f:
        f.write(text)
        f.flush()
        p = subprocess.run([smtpd_path(), "-n", "-f", f.name],
                           capture_output=True, text=True, timeout=10)
        return p.returncode, p.stderr.replace(f.name, "FILE")


@unittest.skipUnless(os.getuid() == 0, "needs root")
class TestDeliverUser(SmtpdTest):
    CONFIG = RECORD + "\nuser nobody\ndeliver-user daemon"

    def test_program_runs_as_deliver_user(self):
        daemon = pwd.getpwnam("daemon")
        run = self.message(self.session())
        self.assertEqual(run["uid"], daemon.pw_uid)
        self.assertEqual(run["gid"], daemon.pw_gid)
        self.assertEqual(run["groups"],
                         sorted(set(os.getgrouplist("daemon",
                                                    daemon.pw_gid))))
        want = daemon.pw_dir if os.path.isdir(daemon.pw_dir) else "/"
        self.assertEqual(os.path.realpath(run["cwd"]),
                         os.path.realpath(want))

    def test_priorities(self):
        # The broker runs 10 below the nice value the daemon was started
        # with, where it may; the program it starts has that value back
        # (smtpd.8).
        nice = os.getpriority(os.PRIO_PROCESS, self.d.pid)
        run = self.message(self.session())
        self.assertEqual(run["nice"], nice)
        self.assertEqual(os.getpriority(os.PRIO_PROCESS, self.d.broker()),
                         max(nice - 10, -20) if may_renice() else nice)
        for pid in dropped_children(self.d):
            self.assertEqual(os.getpriority(os.PRIO_PROCESS, pid), nice)

    def test_children_are_not_deliver_user(self):
        # What only deliver-user may read, no session child can open.
        daemon = pwd.getpwnam("daemon")
        secret = os.path.join(self.d.tmp, "secret")
        with open(secret, "w") as f:
            f.write("mail store\n")
        os.chown(secret, daemon.pw_uid, daemon.pw_gid)
        os.chmod(secret, 0o600)
        # Named once it runs: until then it looks like the master.
        broker = self.d.broker()
        self.assertIsNotNone(broker)
        kids = dropped_children(self.d)
        self.assertTrue(kids)
        for pid in kids:
            uids, gids, groups = ids(pid)
            self.assertNotIn(daemon.pw_uid, uids)
            self.assertNotIn(daemon.pw_gid, gids + groups)
            self.assertNotIn(0, uids + gids + groups)
        # The broker is none of them: it keeps root to change users.
        self.assertNotIn(broker, kids)
        self.assertEqual(ids(broker)[0][0], 0)

    def test_bdat_last_through_the_broker(self):
        # BDAT LAST ends a message as the final dot does: the same
        # request to the broker, the program as deliver-user.
        c = self.session()
        c.check("MAIL FROM:<a@example.com>", "250 OK")
        c.check("RCPT TO:<b@example.com>", "250 OK")
        c.send(b"BDAT 3 LAST\r\nx\r\n")
        c.expect_match(OK_ID)
        run = self.d.wait_deliveries(1)[0]
        self.assertEqual(run["uid"], pwd.getpwnam("daemon").pw_uid)
        self.assertTrue(run["data"].endswith(b"\r\nx\r\n"))

    def test_broker_has_no_client_socket(self):
        c = self.session()
        inode = wait_for(lambda: socket_inode(self.d.port, c.local_port),
                         3.0)
        self.assertIsNotNone(inode)
        self.assertNotIn(inode, socket_fds(self.d.broker()))
        c.check("QUIT", "221 Bye")


@unittest.skipUnless(os.getuid() == 0, "needs root")
class TestDeliverUserPerListener(SmtpdTest):
    CONFIG = (RECORD + "\nuser nobody\ndeliver-user daemon\n"
              "listen on 127.0.0.1 port @PORT@\n"
              "listen on 127.0.0.1 port @PORT2@ lmtp deliver-user nobody")

    def test_each_listener_its_user(self):
        run = self.message(self.session())
        self.assertEqual(run["uid"], pwd.getpwnam("daemon").pw_uid)
        self.d.clear_out()
        c = self.d.connect(port=self.d.port2)
        c.send(b"LHLO client.test\r\n")
        c.recv_reply()
        c.check("MAIL FROM:<a@example.com>", "250 OK")
        c.check("RCPT TO:<b@example.com>", "250 OK")
        c.check("DATA", DATA_354)
        c.send(b"x\r\n.\r\n")
        c.expect_match(OK_ID)
        runs = self.d.wait_deliveries(1)
        self.assertEqual(runs[0]["uid"], pwd.getpwnam("nobody").pw_uid)


class TestConfig(unittest.TestCase):
    def test_root_refused(self):
        st, err = check_config("listen on 127.0.0.1 port 2525\n"
                               "deliver-user root\n")
        self.assertEqual(st, 1)
        self.assertIn("FILE:2: deliver-user: \"root\" has uid 0", err)

    @unittest.skipUnless(os.getuid() == 0, "needs root")
    def test_session_user_errors_name_the_line(self):
        for user, why in (("root", "has uid 0; refusing to run sessions "
                                   "as root"),
                          ("no-such-user-here", "no such user")):
            with self.subTest(user=user):
                st, err = check_config("listen on 127.0.0.1 port 2525\n"
                                       "deliver discard\nuser %s\n" % user)
                self.assertEqual(st, 1)
                self.assertIn("FILE:3: user %s: %s" % (user, why), err)

    def test_missing_user(self):
        st, err = check_config("listen on 127.0.0.1 port 2525 "
                               "deliver-user no-such-user-here\n")
        self.assertEqual(st, 1)
        self.assertIn("FILE:1: listen: deliver-user: \"no-such-user-here\" "
                      "is not a user of this system", err)

    @unittest.skipUnless(os.getuid() == 0, "needs root")
    def test_program_checked_as_deliver_user(self):
        # The broker starts it as deliver-user, with its groups, outside
        # any chroot: -n checks it so, not as the sessions' user.
        top = tempfile.mkdtemp(prefix="smtpd-prog-")
        try:
            os.chmod(top, 0o755)
            prog = os.path.join(top, "prog")
            with open(prog, "w") as f:
                f.write("#!/bin/sh\n")
            nobody = pwd.getpwnam("nobody")
            os.chown(prog, nobody.pw_uid, nobody.pw_gid)
            os.chmod(prog, 0o700)
            jail = os.path.join(top, "jail")    # prog is not in it
            os.mkdir(jail)
            os.mkdir(os.path.join(jail, "spool"))   # the sessions' spool
            os.chmod(os.path.join(jail, "spool"), 0o1777)
            conf = ("listen on 127.0.0.1 port 2525\nuser %s\n"
                    "deliver-user %s\nchroot " + jail + "\n"
                    "deliver \"%s\"\nspool /spool\n")
            st, err = check_config(conf % ("daemon", "nobody", prog))
            self.assertEqual(st, 0, err)
            st, err = check_config(conf % ("nobody", "daemon", prog))
            self.assertEqual(st, 1)
            self.assertIn("FILE:5: deliver: %s: not executable for user "
                          "daemon" % prog, err)
        finally:
            subprocess.run(["rm", "-rf", top])

    def test_program_only_in_chroot(self):
        root = tempfile.mkdtemp(prefix="smtpd-chroot-")
        try:
            os.makedirs(os.path.join(root, "opt/deliver"))
            prog = os.path.join(root, "opt/deliver/prog")
            with open(prog, "w") as f:
                f.write("#!/bin/sh\n")
            os.chmod(prog, 0o755)
            _, err = check_config(
                "listen on 127.0.0.1 port 2525\nchroot %s\n"
                "deliver \"/opt/deliver/prog\"\n" % root)
            self.assertIn("/opt/deliver/prog exists only inside the "
                          "chroot", err)
            # checkpassword too: an AUTH worker of the broker starts it.
            _, err = check_config(
                "listen on 127.0.0.1 port 2525\nchroot %s\n"
                "auth checkpassword \"/opt/deliver/prog\"\n" % root)
            self.assertIn("/opt/deliver/prog exists only inside the "
                          "chroot", err)
        finally:
            subprocess.run(["rm", "-rf", root])


    def test_policy_socket_only_outside_chroot(self):
        # The sessions ask the policy server from inside the chroot.
        root = tempfile.mkdtemp(prefix="smtpd-chroot-")
        try:
            sock = os.path.join(root, "outside.sock")
            open(sock, "w").close()
            jail = os.path.join(root, "jail")
            os.mkdir(jail)
            conf = ("listen on 127.0.0.1 port 2525\nchroot %s\n"
                    "policy unix:%s\n")
            _, err = check_config(conf % (jail, sock))
            self.assertIn("policy unix:%s exists only outside the chroot "
                          "%s; the sessions look for it inside"
                          % (sock, jail), err)
            os.makedirs(jail + root)
            open(jail + sock, "w").close()
            _, err = check_config(conf % (jail, sock))
            self.assertNotIn("policy unix:", err)
        finally:
            subprocess.run(["rm", "-rf", root])


class BrokerFaults(OwnSmtpdTest):
    def in_data(self, d):
        """A session of d's up to its message's content: (client, the
        child serving it)."""
        c = d.connect()
        c.send(b"EHLO client.test\r\n")
        c.recv_reply()
        c.check("MAIL FROM:<a@example.com>", "250 OK")
        c.check("RCPT TO:<b@example.com>", "250 OK")
        c.check("DATA", DATA_354)
        child = serving_child(d, c)
        self.assertIsNotNone(child)
        return c, child

    def delivering(self, config, body):
        """A daemon whose program records body, then sleeps a second:
        (daemon, broker, client, child), the program under way."""
        self.d = d = Smtpd(RECORD + "\nreceived-header no" + config,
                           prefork=2)
        with open(os.path.join(d.out, "sleep"), "w") as f:
            f.write("1.0")
        broker = d.broker()
        c, child = self.in_data(d)
        c.send(body + b".\r\n")
        # The program runs (it recorded the message, then sleeps).
        self.assertTrue(wait_for(lambda: len(d.deliveries()) == 1, 5.0))
        return d, broker, c, child

    def send_one(self, c, tag):
        c.check("MAIL FROM:<a@example.com>", "250 OK")
        c.check("RCPT TO:<b@example.com>", "250 OK")
        c.check("DATA", DATA_354)
        c.send(tag.encode() + b"\r\n.\r\n")
        return c.recv_reply(timeout=15.0)


class TestBrokerKilled(BrokerFaults):
    CLIENTS = 4

    def client(self, n, stop, acked, failed):
        """Messages in a loop, a new session after any trouble."""
        i = 0
        c = None
        while not stop.is_set():
            i += 1
            tag = "msg-%d-%d" % (n, i)
            try:
                if c is None:
                    c, _ = self.d.connect_retry(timeout=10.0)
                    c.send(b"EHLO client.test\r\n")
                    c.recv_reply()
                reply = self.send_one(c, tag)
            except (AssertionError, OSError):
                if c is not None:
                    c.close()
                c = None
                continue
            if reply.startswith("250 "):
                acked.append((tag, time.monotonic()))
            else:
                # Try again later, as a client does: a new session, which
                # a child linked to the new broker takes.
                failed.append(reply)
                c.close()
                c = None
        if c is not None:
            c.close()

    def test_sigkill_under_load(self):
        self.d = d = Smtpd(RECORD + "\nreceived-header no", prefork=4)
        with open(os.path.join(d.out, "sleep"), "w") as f:
            f.write("0.05")
        old = d.broker()
        self.assertIsNotNone(old)
        stop = threading.Event()
        acked, failed = [], []
        threads = [threading.Thread(target=self.client,
                                    args=(n, stop, acked, failed))
                   for n in range(self.CLIENTS)]
        for t in threads:
            t.start()
        try:
            self.assertTrue(wait_for(lambda: len(acked) >= 8, 10.0))
            os.kill(old, signal.SIGKILL)
            killed = time.monotonic()
            # Generous bounds: the conditions, not the time, end the
            # waits, and a loaded machine may take long to meet them.
            new = wait_for(lambda: (d.broker(0.0) or old) != old
                           and d.broker(0.0), 30.0)
            self.assertTrue(new, d.log()[-3000:])
            self.assertTrue(wait_for(lambda: len(
                [a for a in acked if a[1] > killed + 0.5]) >= 8, 120.0),
                d.log()[-3000:])
        finally:
            stop.set()
            for t in threads:
                t.join(30.0)
        self.assertFalse(pid_alive(old))
        self.assertIsNone(d.proc.poll(), "master died")
        time.sleep(0.3)
        delivered = [r["data"].decode().strip() for r in d.deliveries()]
        # Every 250 has its delivery, exactly one.
        for tag, _ in acked:
            self.assertEqual(delivered.count(tag), 1, tag)
        self.assertEqual(len(set(delivered)), len(delivered))
        for reply in failed:
            self.assertTrue(reply.startswith("451 "), reply)
        self.assertTrue(d.wait_log(r"broker \d+ exited on signal 9"))
        # No child was made for the dead broker, so none failed at start;
        # those that saw it die say so, even before the master reaped it.
        self.assertNotIn("children fail at startup", d.log())
        self.assertNotIn("exited with status", d.log())
        self.assertIn("exited: no delivery broker", d.log())
        self.assertNotIn("had no room for it", d.log())

    def test_children_of_the_dead_broker_are_not_refused_ones(self):
        # A child of the killed broker that exits after the new broker
        # runs is no child the new one refused: no failure, no back-off.
        self.d = d = Smtpd(RECORD, prefork=2)
        old = d.broker()
        c = d.session()
        os.kill(old, signal.SIGKILL)
        self.assertTrue(wait_for(lambda: (d.broker(0.0) or old) != old,
                                 10.0), d.log())
        c.check("QUIT", "221 Bye")
        self.assertTrue(d.wait_log(r"exited: no delivery broker"), d.log())
        time.sleep(0.5)
        self.assertNotIn("had no room for it", d.log())
        rc, out = d.status()
        self.assertRegex(out, r"\nchild_failures +0\n")


class TestNoChildToBeMade(BrokerFaults):
    def test_refusal_says_why(self):
        # A broker that dies within a second of its start is made again a
        # second later, and no child before it: a client in that second
        # gets the 421 of a full server, far below max-clients, and the
        # log says that no child could be made, not "too many".
        self.d = d = Smtpd(RECORD + "\nmax-clients 50", prefork=1)
        old = d.broker()
        os.kill(old, signal.SIGKILL)
        new = wait_for(lambda: (d.broker(0.0) or old) != old
                       and d.broker(0.0), 10.0)
        self.assertTrue(new, d.log())
        os.kill(new, signal.SIGKILL)
        self.assertTrue(d.wait_log(r"broker %d exited on signal 9" % new))
        greetings = []
        for _ in range(5):
            with socket.create_connection(("127.0.0.1", d.port), 5) as c:
                greetings.append(c.recv(512).decode().rstrip("\r\n"))
            if greetings[-1].startswith("421 "):
                break
        self.assertIn(TOO_MANY, greetings)
        self.assertTrue(d.wait_log(r"refused 127\.0\.0\.1: no child free, "
                                   r"and none can be started now"), d.log())
        self.assertNotIn("too many connections", d.log())


class TestDiscard(BrokerFaults):
    def test_discard_never_reaches_the_broker(self):
        # A stopped broker answers nothing; deliver discard needs none.
        self.d = d = Smtpd("deliver discard", prefork=1)
        broker = d.broker()
        self.assertIsNotNone(broker)
        os.kill(broker, signal.SIGSTOP)
        try:
            c = d.connect()
            c.send(b"EHLO client.test\r\n")
            c.recv_reply()
            self.assertRegex(self.send_one(c, "gone"), OK_ID)
            c.check("QUIT", "221 Bye")
        finally:
            os.kill(broker, signal.SIGCONT)


class TestChildKilled(BrokerFaults):
    def test_child_killed_mid_delivery(self):
        d, broker, c, child = self.delivering("", b"orphan\r\n")
        os.kill(child, signal.SIGKILL)
        c.expect_closed()
        # It finishes; the message is delivered once, never acknowledged:
        # the client sends it again, and that is the second delivery.
        time.sleep(1.5)
        self.assertEqual([r["data"] for r in d.deliveries()],
                         [b"orphan\r\n"])
        self.assertEqual(d.broker(0.0), broker)
        os.unlink(os.path.join(d.out, "sleep"))
        c2, _ = d.connect_retry()
        c2.send(b"EHLO client.test\r\n")
        c2.recv_reply()
        self.assertRegex(self.send_one(c2, "after"), OK_ID)
        self.assertEqual(len(d.deliveries()), 2)


class TestTermEveryProcess(BrokerFaults):
    def test_delivery_survives_sigterm_to_all(self):
        # killall smtpd, systemctl kill: SIGTERM reaches the broker too.
        # The session finishes its delivery (smtpd.8 SIGTERM); a broker
        # that died of the signal killed the program midway, after it had
        # recorded the message, and the client was told 451.
        d, broker, c, _ = self.delivering("\nshutdown-grace 20s",
                                          b"once\r\n")
        for pid in [d.pid, broker] + d.children():
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass    # an idle child the master's shutdown ended first
        self.assertRegex(c.recv_reply(timeout=10.0), OK_ID)
        self.assertEqual([r["data"] for r in d.deliveries()], [b"once\r\n"])
        self.assertEqual(d.stop(), 0)
        self.assertTrue(wait_for(lambda: not pid_alive(broker), 5.0))


LEFTOVERS = """#!/bin/sh
# keep: leaves a process (timeout) in its session but in a group of its
# own, which the kill of its group at its exit misses, then exits 0;
# else: a child in its process group, and one (timeout) in a group of
# its own, then waits.
exec </dev/null >/dev/null 2>&1
case "$1" in
keep*)  timeout 60 sleep 61 & echo $! > %(dir)s/keep; sleep 0.3; exit 0 ;;
*)      sleep 60 & echo $! > %(dir)s/bg
        timeout 60 sleep 61 & echo $! > %(dir)s/grp
        wait ;;
esac
"""


class TestBrokerKilledLeftovers(BrokerFaults):
    """When the broker dies, what its running programs started dies with
    them (their client was told 451 and sends the message again); what
    a program of an acknowledged delivery left behind is not touched."""

    def setUp(self):
        super().setUp()
        self.tmp = tempfile.mkdtemp(prefix="smtpd-e2e-left-")
        os.chmod(self.tmp, 0o777)
        self.prog = os.path.join(self.tmp, "prog")
        with open(self.prog, "w") as f:
            f.write(LEFTOVERS % {"dir": self.tmp})
        os.chmod(self.prog, 0o755)

    def tearDown(self):
        # bg is a plain child; grp and keep lead a group with its sleep
        for name, kill in (("bg", os.kill), ("grp", os.killpg),
                           ("keep", os.killpg)):
            pid = self.pid_of(name, 0.0)
            if pid is not None and pid_alive(pid):
                try:
                    kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        subprocess.run(["rm", "-rf", self.tmp])
        super().tearDown()

    def pid_of(self, name, timeout=5.0):
        path = os.path.join(self.tmp, name)
        if not wait_for(lambda: os.path.exists(path) and
                        open(path).read().strip(), timeout):
            return None
        return int(open(path).read())

    def message(self, c, rcpt):
        c.check("MAIL FROM:<a@example.com>", "250 OK")
        c.check("RCPT TO:<%s>" % rcpt, "250 OK")
        c.check("DATA", DATA_354)
        c.send(b"x\r\n.\r\n")

    def start(self):
        """The daemon, its broker, a session after EHLO."""
        self.d = d = Smtpd('deliver "%s %%{recipients}"' % self.prog,
                           prefork=2)
        broker = d.broker()
        c = d.connect()
        c.send(b"EHLO client.test\r\n")
        c.recv_reply()
        return d, broker, c

    def test_running_programs_leftovers_die(self):
        d, broker, c = self.start()
        self.message(c, "keep@example.com")
        self.assertRegex(c.recv_reply(), OK_ID)
        keep = self.pid_of("keep")
        self.message(c, "b@example.com")
        bg, grp = self.pid_of("bg"), self.pid_of("grp")
        self.assertEqual([pid_alive(p) for p in (keep, bg, grp)],
                         [True] * 3, (keep, bg, grp))
        os.kill(broker, signal.SIGKILL)
        self.assertRegex(c.recv_reply(), "^451 ")
        self.assertTrue(wait_for(lambda: not pid_alive(bg) and
                                 not pid_alive(grp), 5.0), d.log()[-2000:])
        self.assertTrue(d.wait_log(r"broker \d+ gone: process %d of its "
                                   r"program" % grp, 1, 3.0), d.log())
        self.assertTrue(pid_alive(keep))

    def test_previous_brokers_leftovers_die(self):
        # After a reload the previous broker still serves the sessions
        # of the old configuration: its death is handled the same way.
        d, old, c = self.start()
        self.message(c, "b@example.com")
        bg, grp = self.pid_of("bg"), self.pid_of("grp")
        d.reload()

        def brokers():
            return [k for k in pid_children(d.pid)
                    if "broker" in pid_title(k)]
        self.assertTrue(wait_for(lambda: len(brokers()) == 2, 10.0),
                        d.log()[-2000:])
        self.assertTrue(pid_alive(old))
        os.kill(old, signal.SIGKILL)
        self.assertRegex(c.recv_reply(), "^451 ")
        self.assertTrue(wait_for(lambda: not pid_alive(bg) and
                                 not pid_alive(grp), 5.0), d.log()[-2000:])
        self.assertTrue(d.wait_log(r"broker %d gone: process %d of its "
                                   r"program" % (old, grp), 1, 3.0), d.log())


# A program that leaves a process (held) in its session, traced by one
# (tracer) that left it, with PTRACE_O_TRACEEXIT: killed, held stops at
# its exit until its tracer lets it go, and is still there at every
# sweep of /proc after its kill, as a process is on a busy machine until
# it gets a processor to exit on.
HELD = r"""
import ctypes, os, time
T = os.environ["T"]
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p,
                        ctypes.c_void_p]
r, w = os.pipe()
if os.fork() == 0:
    held = os.fork()
    if held == 0:
        time.sleep(60)
        os._exit(0)
    os.setsid()
    # PTRACE_SEIZE, PTRACE_O_TRACEEXIT
    if libc.ptrace(0x4206, held, None, ctypes.c_void_p(0x40)) != 0:
        os._exit(1)
    with open(T + "/held.new", "w") as f:
        f.write("%d %d\n" % (held, os.getpid()))
    os.rename(T + "/held.new", T + "/held")
    os.close(w)
    time.sleep(30)
    os._exit(0)
os.close(w)
os.read(r, 1)
time.sleep(60)
"""


class TestBrokerKilledHeld(BrokerFaults):
    def test_each_process_logged_once(self):
        # A process killed when the broker died that is not gone at the
        # next sweep is not killed, counted and logged again: one line.
        self.d = d = Smtpd('deliver "/usr/bin/env T=@TMP@ /usr/bin/python3 '
                           '@TMP@/held.py"')
        with open(os.path.join(d.tmp, "held.py"), "w") as f:
            f.write(HELD)
        path = os.path.join(d.tmp, "held")
        broker = d.broker()
        c, _ = self.in_data(d)
        c.send(b"x\r\n.\r\n")
        self.assertTrue(wait_for(lambda: os.path.exists(path), 5.0),
                        d.log())
        held, tracer = (int(x) for x in open(path).read().split())
        # The tracer lets held go as it dies.
        self.addCleanup(os.kill, tracer, signal.SIGKILL)
        os.kill(broker, signal.SIGKILL)
        self.assertRegex(c.recv_reply(), "^451 ")
        line = r"broker %d gone: process %d of its program" % (broker, held)
        self.assertTrue(d.wait_log(line, 1, 3.0), d.log())
        self.assertTrue(d.wait_log(r"broker %d exited" % broker, 1, 3.0))
        self.assertEqual(proc_state(held), "t")
        self.assertEqual(len(re.findall(line, d.log())), 1, d.log())


class TestStalledBroker(BrokerFaults):
    def test_request_of_a_dead_child_not_run(self):
        # A broker that was stopped finds the request of a child that is
        # gone (its client got no reply and will send again): not run.
        self.d = d = Smtpd(RECORD + "\nreceived-header no", prefork=2)
        broker = d.broker()
        c, child = self.in_data(d)
        os.kill(broker, signal.SIGSTOP)
        try:
            c.send(b"never\r\n.\r\n")
            c.assert_silent(0.5)
            os.kill(child, signal.SIGKILL)
            c.expect_closed()
        finally:
            os.kill(broker, signal.SIGCONT)
        self.assertTrue(d.wait_log(r"delivery request not run: its child "
                                   r"is gone", 1, 5.0), d.log())
        time.sleep(0.3)
        self.assertEqual(d.deliveries(), [])
        self.assertEqual(d.broker(0.0), broker)

    def crowd(self, n, reload=False):
        """n sessions, each on a child of its own, made while the broker
        is stopped (SIGHUP too, with reload); the broker runs again."""
        # timeout 30: the first session waits while the others are made
        # (5 s and more in the sanitizer build beside other tests).
        self.d = d = Smtpd(RECORD + "\nreceived-header no\nmax-clients 400"
                           "\nmax-clients-per-address 400", prefork=1,
                           timeout=30, env=no_leak_check_env())
        broker = d.broker()
        os.kill(broker, signal.SIGSTOP)
        conns = []
        try:
            for _ in range(n):
                c = d.connect(greeting=False)
                conns.append(c)
                self.assertRegex(c.recv_reply(), "^220 ")
            if reload:
                os.kill(d.pid, signal.SIGHUP)
                self.assertTrue(d.wait_log(r"reloaded configuration"),
                                d.log())
        finally:
            os.kill(broker, signal.SIGCONT)
        return conns

    def deliver_on(self, conns, which):
        """A message on each of conns[which]: all acknowledged."""
        for i in which:
            c = conns[i]
            c.send(b"EHLO client.test\r\n")
            c.recv_reply()
            self.assertRegex(self.send_one(c, "m%d" % i), "^" + OK_ID)
        self.assertEqual(len(self.d.deliveries()), len(which))
        for c in conns:
            c.close()
        self.assertNotIn("delivery broker", self.d.log())

    def test_children_made_while_the_broker_is_busy(self):
        # A broker busy with programs reads the master's socket late, and
        # the socket's buffer holds some 280 new children's sockets: the
        # master keeps the rest for it.  Before, each child over that was
        # not made, and its client got 421 "too many connections" far
        # below max-clients (make soak, 1000 sessions, saw hundreds).
        # Every child reaches the broker once it runs: the last one too.
        conns = self.crowd(350)
        self.deliver_on(conns, (0, len(conns) - 1))

    def test_reload_while_children_wait_for_the_broker(self):
        # The broker a reload replaces still gets the ends the master kept
        # for it: their sessions deliver (they got 451 when the reload
        # closed them).
        conns = self.crowd(330, reload=True)
        self.deliver_on(conns, (0, 300, len(conns) - 1))

    def test_ends_of_children_gone_are_not_kept(self):
        # While the broker does not read, children that are gone leave
        # nothing behind in the master: its descriptors stay within what
        # max-clients allows, however many sessions come and go.
        self.d = d = Smtpd(RECORD + "\nmax-clients 10"
                           "\nmax-sessions-per-child 1", prefork=1,
                           env=no_leak_check_env())
        broker = d.broker()
        os.kill(broker, signal.SIGSTOP)

        def sessions(n):
            for _ in range(n):
                c, g = d.connect_retry()
                self.assertRegex(g, "^220 ")
                c.check("QUIT", "221 Bye")
                c.close()
        try:
            # The broker's socket is full after some 280.
            sessions(300)
            time.sleep(0.3)
            before = len(os.listdir("/proc/%d/fd" % d.pid))
            sessions(100)
            time.sleep(0.3)
            after = len(os.listdir("/proc/%d/fd" % d.pid))
        finally:
            os.kill(broker, signal.SIGCONT)
        self.assertLess(after, before + 20, (before, after))


def memory_has(pid, needle):
    """Whether needle is anywhere in the readable memory of pid."""
    with open("/proc/%d/maps" % pid) as maps, \
            open("/proc/%d/mem" % pid, "rb", 0) as mem:
        for line in maps:
            f = line.split()
            if "r" not in f[1] or line.rstrip().endswith(
                    ("[vvar]", "[vsyscall]", "[vvar_vclock]")):
                continue
            lo, hi = (int(x, 16) for x in f[0].split("-"))
            # ASan's shadow is terabytes of mostly unmapped pages.
            if hi - lo > 1 << 30:
                continue
            tail = b""
            while lo < hi:
                try:
                    mem.seek(lo)
                    data = mem.read(min(hi - lo, 1 << 20))
                except (OSError, ValueError, OverflowError):
                    break
                if needle in tail + data:
                    return True
                tail = data[-len(needle):]
                lo += max(len(data), 1)
    return False


def auth_plain(c, user, password):
    c.send(("AUTH PLAIN %s\r\n" % base64.b64encode(
        ("\0%s\0%s" % (user, password)).encode()).decode()).encode())
    return c.recv_reply()


class AuthTest(SmtpdTest):
    """A passwd file with alice, written before the daemon starts."""
    PASSWORD = "Pw-helper-81xQ"
    LIMITS = "max-clients 1\nprefork 1"
    # The memory scans take seconds under ASan: the session must outlast
    # them.
    OPTS = {"start": False, "timeout": 60}
    hash = None

    @classmethod
    def setUpClass(cls):
        # Every client is 127.0.0.1: the master's per-address throttle,
        # which answers before the broker is asked, is off (test_auth).
        cls.CONFIG = ('deliver "@RECORDER@ @OUT@ %{user}"\nuser nobody\n'
                      "auth passwd @TMP@/passwd\nauth failure-delay 0\n"
                      "auth max-failures 1000\n"
                      "auth max-failures-per-address 0\n" + cls.LIMITS + "\n"
                      "listen on 127.0.0.1 port @PORT@ auth auth-plaintext")
        super().setUpClass()
        cls.hash = crypt_hash(cls.PASSWORD)
        path = os.path.join(cls.d.tmp, "passwd")
        with open(path, "w") as f:
            f.write("alice:%s\n" % cls.hash)
        os.chmod(path, 0o600)
        cls.d.start()

    def deliver(self, c):
        c.check("MAIL FROM:<a@example.com>", "250 OK")
        c.check("RCPT TO:<b@example.com>", "250 OK")
        c.check("DATA", DATA_354)
        c.send(b"x\r\n.\r\n")
        c.expect_match(OK_ID)


@unittest.skipUnless(os.getuid() == 0, "needs root")
class TestAuthHelper(AuthTest):
    """The passwd file lives in the broker's AUTH workers only."""

    def workers(self):
        return [k for k in pid_children(self.d.broker())
                if "auth" in pid_title(k)]

    def test_workers_at_the_daemons_priority(self):
        # Started by the broker, they do not share its priority: a flood
        # of password checks runs as any session does.
        nice = os.getpriority(os.PRIO_PROCESS, self.d.pid)
        workers = self.workers()
        self.assertTrue(workers)
        for pid in workers:
            self.assertEqual(os.getpriority(os.PRIO_PROCESS, pid), nice)
        if may_renice() and nice > -20:
            self.assertLess(os.getpriority(os.PRIO_PROCESS,
                                           self.d.broker()), nice)

    def test_no_hash_in_children(self):
        c = self.session()
        self.assertEqual(auth_plain(c, "alice", self.PASSWORD),
                         "235 2.7.0 Authentication successful")
        secret = self.hash.rsplit("$", 1)[1].encode()
        kids = self.d.children()
        self.assertTrue(kids)
        for pid in kids + [self.d.pid]:
            self.assertFalse(memory_has(pid, secret), pid)
        # The method finds it where it is: in the workers, a few of
        # them, as the sessions' user.
        workers = self.workers()
        self.assertEqual(len(workers), 3)
        self.assertTrue(memory_has(workers[0], secret))
        self.assertEqual(ids(workers[0])[0][0],
                         pwd.getpwnam("nobody").pw_uid)
        c.check("QUIT", "221 Bye")

    def test_user_is_what_the_broker_saw(self):
        # The same child (max-clients 1) first authenticated, then not:
        # %{user} follows the broker's record of each session.  The
        # child may still be ending the last test's session: retried.
        c, _ = self.d.connect_retry()
        c.send(b"EHLO client.test\r\n")
        c.recv_reply()
        self.assertEqual(auth_plain(c, "alice", self.PASSWORD),
                         "235 2.7.0 Authentication successful")
        self.deliver(c)
        c.check("QUIT", "221 Bye")
        c.expect_closed()
        c2, _ = self.d.connect_retry()
        c2.send(b"EHLO client.test\r\n")
        c2.recv_reply()
        self.deliver(c2)
        runs = self.d.wait_deliveries(2)
        self.assertEqual([r["argv"] for r in runs], [["alice"], [""]])
        self.assertEqual([r["env"]["SMTPD_AUTH_USER"] for r in runs],
                         ["alice", ""])


@unittest.skipUnless(os.getuid() == 0, "needs root")
class TestAuthFlood(AuthTest):
    LIMITS = "max-clients 10\nprefork 4"

    def test_flood_does_not_stall_others(self):
        # Three clients fail AUTH as fast as they can; a fourth still
        # gets its answers (one check per child at a time, three workers).
        stop = threading.Event()

        def flood():
            c = self.d.connect()
            c.send(b"EHLO client.test\r\n")
            c.recv_reply()
            while not stop.is_set():
                auth_plain(c, "alice", "wrong")
            c.close()
        threads = [threading.Thread(target=flood) for _ in range(3)]
        for t in threads:
            t.start()
        try:
            time.sleep(0.3)
            c = self.session()
            t0 = time.monotonic()
            for _ in range(3):
                self.assertEqual(auth_plain(c, "alice", self.PASSWORD)
                                 if _ == 2 else auth_plain(c, "zed", "x"),
                                 "235 2.7.0 Authentication successful"
                                 if _ == 2 else "535 5.7.8 Authentication "
                                 "credentials invalid")
            self.assertLess(time.monotonic() - t0, 5.0)
        finally:
            stop.set()
            for t in threads:
                t.join(10.0)


@unittest.skipUnless(os.getuid() == 0, "needs root")
class TestCheckpasswordHelper(SmtpdTest):
    """checkpassword is started by an AUTH worker of the broker, as the
    sessions' user, never by a session child."""
    OPTS = {"start": False}

    @classmethod
    def setUpClass(cls):
        cls.CONFIG = ("user nobody\nauth checkpassword @TMP@/cp.sh\n"
                      "auth failure-delay 0\n"
                      "auth max-failures-per-address 0\n"
                      "listen on 127.0.0.1 port @PORT@ auth auth-plaintext")
        super().setUpClass()
        path = os.path.join(cls.d.tmp, "cp.sh")
        with open(path, "w") as f:
            f.write("#!/bin/sh\necho \"$PPID $(id -u)\" > %s.ran\n"
                    "exit 1\n" % path)
        os.chmod(path, 0o755)
        os.chmod(cls.d.tmp, 0o777)
        cls.d.start()

    def test_started_by_a_worker(self):
        c = self.session()
        self.assertEqual(auth_plain(c, "alice", "pw"),
                         "535 5.7.8 Authentication credentials invalid")
        with open(os.path.join(self.d.tmp, "cp.sh.ran")) as f:
            ppid, uid = (int(x) for x in f.read().split())
        workers = [k for k in pid_children(self.d.broker())
                   if "auth" in pid_title(k)]
        self.assertIn(ppid, workers)
        self.assertNotIn(ppid, self.d.children())
        self.assertEqual(uid, pwd.getpwnam("nobody").pw_uid)


if __name__ == "__main__":
    unittest.main()
