"""smtpd.8 Process model and SYNOPSIS: connection limits, SIGHUP,
SIGTERM, child crashes, smtpd -n, the built-in default configuration."""

import os
import shutil
import signal
import socket
import subprocess
import time
import unittest

from harness import (OK_ID, RECORD, Smtpd, SmtpdTest, listening_tcp,
                     ehlo_lines, pid_alive, pid_title, smtpd_path,
                     socket_inode, wait_for)

TOO_MANY = "421 mx.test Service not available, too many connections"
DATA_354 = "354 End data with <CR><LF>.<CR><LF>"


def serving_child(d, client):
    """PID of the child that holds client's connection."""
    def find():
        inode = socket_inode(d.port, client.local_port)
        if inode is None:
            return None
        target = "socket:[%s]" % inode
        for pid in d.children():
            try:
                for fd in os.listdir("/proc/%d/fd" % pid):
                    try:
                        if os.readlink("/proc/%d/fd/%s" % (pid, fd)) == target:
                            return pid
                    except OSError:
                        pass
            except OSError:
                pass
        return None
    return wait_for(find, 3.0)


class TestMaxClients(SmtpdTest):
    CONFIG = RECORD + "\nmax-clients 1"
    OPTS = {"prefork": 1}

    def test_second_client_refused(self):
        c1 = self.connect()
        c1.check("EHLO client.test", ehlo_lines())
        c2 = self.connect(greeting=False)
        c2.expect(TOO_MANY)
        c2.expect_closed()
        c1.check("NOOP", "250 OK")       # the first session is unaffected
        c1.check("QUIT", "221 Bye")
        c1.expect_closed()
        c3, greeting = self.d.connect_retry()
        self.assertEqual(greeting, "220 mx.test ESMTP smtpd")
        c3.check("NOOP", "250 OK")


class TestIdleWithoutWake(SmtpdTest):
    """A child that ends its session is idle again for the master by the
    scoreboard, without a message that wakes it: the master wakes about
    once per connection, to accept it."""
    CONFIG = RECORD
    OPTS = {"prefork": 2}

    def switches(self):
        with open("/proc/%d/status" % self.d.pid) as f:
            for line in f:
                if line.startswith("voluntary_ctxt_switches"):
                    return int(line.split()[1])
        return 0

    def test_master_woken_once_per_connection(self):
        n = 40
        before = self.switches()
        for _ in range(n):
            c, greeting = self.d.connect_retry()
            self.assertEqual(greeting, "220 mx.test ESMTP smtpd")
            c.check("QUIT", "221 Bye")
            c.expect_closed()
        woken = self.switches() - before
        # A message from each child at the end of its session made it two.
        self.assertLess(woken, 1.5 * n, woken)


class TestChildTermedWithHandoff(SmtpdTest):
    """A child that gets SIGTERM with a connection already handed to it
    (the master counted it idle) answers that client 421, not a silent
    close."""
    CONFIG = RECORD
    OPTS = {"prefork": 1}

    def test_pending_connection_gets_421(self):
        # Every child idle (the harness's probe may still be ending in
        # one), then all stopped: the connection waits in one's socket.
        def all_idle():
            kids = self.d.children()
            if kids and all("idle" in pid_title(k) for k in kids):
                return kids
            return None
        stopped = wait_for(all_idle, 5.0)
        self.assertTrue(stopped, self.d.children())
        for pid in stopped:
            os.kill(pid, signal.SIGSTOP)
        try:
            c = self.connect(greeting=False)
            # Handed over: the master makes a child to be idle instead.
            self.assertTrue(wait_for(
                lambda: set(self.d.children()) - set(stopped), 5.0))
            for pid in stopped:
                os.kill(pid, signal.SIGTERM)
        finally:
            for pid in stopped:
                os.kill(pid, signal.SIGCONT)
        c.expect("421 mx.test Service shutting down")
        c.expect_closed()
        self.assertTrue(wait_for(
            lambda: not any(pid_alive(p) for p in stopped), 5.0))
        c2, greeting = self.d.connect_retry()
        self.assertEqual(greeting, "220 mx.test ESMTP smtpd")
        c2.check("QUIT", "221 Bye")


def _sched_testable():
    """Why the scheduling-class tests cannot run here, or None."""
    if not hasattr(os, "SCHED_BATCH"):
        return "no SCHED_BATCH on this system"
    if os.sched_getscheduler(0) != os.SCHED_OTHER:
        return "the tests run in a non-default scheduling class"
    if shutil.which("chrt") is None:
        return "no chrt(1)"
    return None


@unittest.skipIf(_sched_testable(), _sched_testable())
class TestSchedulingClass(unittest.TestCase):
    """smtpd.8 Process model: session children run in the batch
    scheduling class when smtpd starts in the default one (unless
    batch-scheduling is no); the master and the delivery broker (and so
    the programs it starts) are left as they are, and a class the
    administrator chose is kept everywhere."""

    def policies(self, config=RECORD, wrapper=()):
        with Smtpd(config, prefork=2, wrapper=wrapper) as d:
            c = d.connect()
            c.check("QUIT", "221 Bye")
            # A child titles itself idle once it has set its class.
            def all_idle():
                kids = d.children()
                if kids and all("idle" in pid_title(k) for k in kids):
                    return kids
                return None
            kids = wait_for(all_idle, 5.0)
            self.assertTrue(kids, d.children())
            return (os.sched_getscheduler(d.pid),
                    os.sched_getscheduler(d.broker()),
                    {os.sched_getscheduler(k) for k in kids})

    def test_children_batch(self):
        master, broker, kids = self.policies()
        self.assertEqual(master, os.SCHED_OTHER)
        self.assertEqual(broker, os.SCHED_OTHER)
        self.assertEqual(kids, {os.SCHED_BATCH})

    def test_turned_off(self):
        _, _, kids = self.policies(RECORD + "\nbatch-scheduling no")
        self.assertEqual(kids, {os.SCHED_OTHER})

    @unittest.skipUnless(os.geteuid() == 0,
                         "leaving SCHED_IDLE needs CAP_SYS_NICE: the "
                         "test could not fail")
    def test_chosen_class_kept(self):
        master, broker, kids = self.policies(wrapper=["chrt", "--idle", "0"])
        self.assertEqual(master, os.SCHED_IDLE)
        self.assertEqual(broker, os.SCHED_IDLE)
        self.assertEqual(kids, {os.SCHED_IDLE})

    @unittest.skipUnless(os.geteuid() == 0,
                         "a real-time class needs CAP_SYS_NICE")
    def test_reset_on_fork(self):
        # With reset-on-fork, fork(2) puts a child of a real-time master
        # in the default class: that is the administrator's choice too,
        # not one for the children to change.
        reset = getattr(os, "SCHED_RESET_ON_FORK", 0x40000000)
        master, broker, kids = self.policies(
            wrapper=["chrt", "--reset-on-fork", "--fifo", "1"])
        self.assertEqual(master, os.SCHED_FIFO | reset)
        self.assertEqual(broker, os.SCHED_OTHER)
        self.assertEqual(kids, {os.SCHED_OTHER})


class TestConcurrency(SmtpdTest):
    CONFIG = RECORD + "\nmax-clients 8\nreceived-header no"
    OPTS = {"prefork": 2}

    def test_pool_grows_to_max_clients(self):
        clients = [self.connect() for _ in range(8)]
        extra = self.connect(greeting=False)
        extra.expect(TOO_MANY)
        extra.expect_closed()
        for i, c in enumerate(clients):
            c.send(b"EHLO c%d\r\nMAIL FROM:<s%d@example.com>\r\n"
                   b"RCPT TO:<r@example.com>\r\nDATA\r\n" % (i, i))
        for i, c in enumerate(clients):
            c.expect(ehlo_lines())
            c.expect("250 OK")
            c.expect("250 OK")
            c.expect(DATA_354)
        for i, c in enumerate(clients):
            c.send(b"message %d\r\n.\r\nQUIT\r\n" % i)
        for c in clients:
            c.expect_match(OK_ID)
            c.expect("221 Bye")
            c.expect_closed()
        runs = self.d.deliveries()
        self.assertEqual(sorted(r["data"] for r in runs),
                         sorted(b"message %d\r\n" % i for i in range(8)))
        self.assertLessEqual(len(self.d.children()), 8)
        c, g = self.d.connect_retry()
        self.assertEqual(g, "220 mx.test ESMTP smtpd")


class TestMaxClientsPerAddress(SmtpdTest):
    CONFIG = RECORD + "\nmax-clients-per-address 1"
    OPTS = {"prefork": 3}

    def test_per_address(self):
        c1 = self.connect()
        c2 = self.connect(greeting=False)
        c2.expect(TOO_MANY)
        c2.expect_closed()
        # another source address is not affected
        c3 = self.connect(source="127.0.0.2")
        c3.check("NOOP", "250 OK")
        c1.check("QUIT", "221 Bye")
        c1.expect_closed()
        c4, greeting = self.d.connect_retry()
        self.assertEqual(greeting, "220 mx.test ESMTP smtpd")


class TestReload(unittest.TestCase):
    def setUp(self):
        self.d = Smtpd(RECORD)

    def tearDown(self):
        self.d.cleanup()

    def test_sighup_new_sessions_new_config(self):
        c1 = self.d.connect()
        c1.check("EHLO client.test", ehlo_lines())
        self.d.reload(RECORD + '\nbanner "Reloaded"\nmax-message-size 1K')

        def new_banner():
            c, g = self.d.connect_retry(1.0)
            c.close()
            return g == "220 mx.test Reloaded"
        self.assertTrue(wait_for(new_banner, 5.0, 0.1),
                        "new sessions do not see the new config\n"
                        + self.d.log())
        c2 = self.d.connect(greeting=False)
        c2.expect("220 mx.test Reloaded")
        c2.check("EHLO client.test", ehlo_lines(size=1024))
        # the open session goes on, on the old settings
        c1.check("NOOP", "250 OK")
        c1.check("EHLO client.test", ehlo_lines())
        c1.check("MAIL FROM:<a@example.com> SIZE=2000", "250 OK")
        c1.check("RCPT TO:<b@example.com>", "250 OK")
        c1.check("DATA", DATA_354)
        c1.send((b"y" * 98 + b"\r\n") * 15 + b".\r\n")    # > 1K
        c1.expect_match(OK_ID)
        c1.check("QUIT", "221 Bye")
        self.assertIsNone(self.d.proc.poll())

    def test_sighup_broken_config_keeps_old(self):
        conf = self.d.conf
        self.d.reload('hostname mx.test\nlisten on 127.0.0.1 port @PORT@\n'
                      'banner "Broken"\nfrobnicate yes\n', raw=True)
        self.assertTrue(self.d.wait_log(r"%s:4:" % conf),
                        "no file:line: error logged\n" + self.d.log())
        self.assertIsNone(self.d.proc.poll(), "smtpd exited on a bad reload")
        time.sleep(0.2)
        for _ in range(3):
            c = self.d.connect()             # old banner
            c.check("NOOP", "250 OK")
            c.close()
        # a good config afterwards is taken
        self.d.reload(RECORD + '\nbanner "Fixed"')

        def fixed():
            c, g = self.d.connect_retry(1.0)
            c.close()
            return g == "220 mx.test Fixed"
        self.assertTrue(wait_for(fixed, 5.0, 0.1), self.d.log())


class TestReloadRespelled(unittest.TestCase):
    def test_localhost_for_127_0_0_1(self):
        # The same socket under another name is kept, not bound again
        # (which failed: address in use); ::1 is added.
        with Smtpd(RECORD) as d:
            line = "listen on 127.0.0.1 port %d" % d.port
            self.assertIn(line, d.config)
            d.reload(d.config.replace(line, "listen on localhost port %d"
                                      % d.port), raw=True)
            self.assertTrue(d.wait_log(r"reloaded configuration"), d.log())
            self.assertNotIn("reload failed", d.log())
            # kept, so not "no longer listening"
            self.assertNotIn("no longer listening on 127.0.0.1:%d" % d.port,
                             d.log())
            hosts = ["127.0.0.1"]
            try:
                socket.create_server(("::1", 0),
                                     family=socket.AF_INET6).close()
                hosts.append("::1")
            except OSError:
                pass
            for host in hosts:
                c, g = d.connect_retry(host=host)
                self.assertEqual(g, "220 mx.test ESMTP smtpd", host)
                c.check("QUIT", "221 Bye")
            # and back: 127.0.0.1 is kept, ::1 closed
            d.reload(d.config.replace("listen on localhost port",
                                      "listen on 127.0.0.1 port"), raw=True)
            self.assertTrue(d.wait_log(r"reloaded configuration", 2),
                            d.log())
            c, g = d.connect_retry()
            self.assertEqual(g, "220 mx.test ESMTP smtpd")
            c.check("QUIT", "221 Bye")
            if len(hosts) > 1:
                with self.assertRaises(ConnectionRefusedError):
                    socket.create_connection(("::1", d.port), 2).close()


@unittest.skipUnless(shutil.which("strace"), "no strace")
class TestReloadNoResolver(unittest.TestCase):
    def test_reload_does_not_resolve(self):
        """The master never waits on DNS: a reload, without hostname (the
        default was looked up at start) or with one, asks no resolver (no
        nsswitch, hosts or resolv.conf, no socket to a name server)."""
        with Smtpd(RECORD, hostname=None) as d:
            trace = os.path.join(d.tmp, "strace.out")
            st = subprocess.Popen(["strace", "-qq", "-o", trace, "-e",
                                   "trace=openat,connect", "-p",
                                   str(d.pid)], stderr=subprocess.DEVNULL)
            try:
                time.sleep(0.5)             # attached
                d.reload(RECORD)
                self.assertTrue(d.wait_log(r"reloaded configuration"))
                d.reload(RECORD + "\nhostname mx.test")
                self.assertTrue(d.wait_log(r"reloaded configuration", 2))
            finally:
                st.terminate()
                st.wait()
            with open(trace) as f:
                text = f.read()
            self.assertIn("smtpd.conf", text)   # it did see the reloads
            for word in ("nsswitch.conf", "/etc/hosts", "resolv.conf",
                         "htons(53)"):
                self.assertNotIn(word, text)


class TestSigterm(unittest.TestCase):
    def setUp(self):
        self.d = Smtpd(RECORD + "\nreceived-header no")

    def tearDown(self):
        self.d.cleanup()

    def test_sigterm_idle(self):
        pids = self.d.descendants()
        t = time.monotonic()
        self.d.signal(signal.SIGTERM)
        self.assertEqual(self.d.wait_exit(10), 0, self.d.log())
        self.assertLess(time.monotonic() - t, 3.0)
        self.assertTrue(wait_for(lambda: not any(pid_alive(p) for p in pids),
                                 3.0), "children left behind")
        self.assertNotIn(self.d.port, listening_tcp())

    def test_sigint_idle(self):
        self.d.signal(signal.SIGINT)
        self.assertEqual(self.d.wait_exit(10), 0, self.d.log())

    def test_sigterm_with_open_session(self):
        c = self.d.connect()
        c.check("EHLO client.test", ehlo_lines())
        t = time.monotonic()
        self.d.signal(signal.SIGTERM)
        time.sleep(0.3)
        # smtpd.8 SIGNALS: sessions finish within the grace period; QUIT
        # is answered, or the session ends without a reply.
        c.send(b"QUIT\r\n")
        try:
            got = c.recv_reply()
        except AssertionError as e:
            self.assertIn("connection closed", str(e))
            self.assertEqual(c.buf, b"")
        else:
            self.assertEqual(got, "221 Bye", "reply to QUIT after SIGTERM")
        self.assertEqual(self.d.wait_exit(10), 0, self.d.log())
        self.assertLess(time.monotonic() - t, 8.0)

    def test_sigterm_idle_session_timeout_before_grace(self):
        """With the default shutdown-grace (30 s) an idle client's timeout
        (5 s here) ends its session first: no 421 then (TestShutdownGrace
        has the grace period itself)."""
        c = self.d.connect()
        c.check("EHLO client.test", ehlo_lines())
        self.d.signal(signal.SIGTERM)
        c.expect_closed(10)
        self.assertEqual(self.d.wait_exit(10), 0, self.d.log())
        self.assertRegex(self.d.log(), r"\S+ timeout\n")

    def test_sigterm_mid_data_completes(self):
        c = in_data(self.d)
        c.send(b"before\r\n")
        self.d.signal(signal.SIGTERM)
        time.sleep(0.3)
        c.send(b"after\r\n.\r\n")
        c.expect_match(OK_ID)
        self.assertEqual([r["data"] for r in self.d.deliveries()],
                         [b"before\r\nafter\r\n"])
        try:
            c.cmd("QUIT")
        except AssertionError:
            pass
        self.assertEqual(self.d.wait_exit(10), 0, self.d.log())


SHUTDOWN_421 = "421 mx.test Service shutting down"


def to_data(c):
    """Client c, past EHLO, once it has had DATA's 354 for one recipient."""
    c.check("MAIL FROM:<a@example.com>", "250 OK")
    c.check("RCPT TO:<b@example.com>", "250 OK")
    c.check("DATA", DATA_354)
    return c


def in_data(d):
    """A client of d that has had DATA's 354 for one recipient."""
    c = d.connect()
    c.check("EHLO client.test", ehlo_lines())
    return to_data(c)


class ShutdownGraceCases:
    """SIGTERM with shutdown-grace 1 and a session timeout of 30 s (what
    happens is the grace period's doing, not the timeout's), for the
    sessions that session() opens: a test case mixing this in makes
    self.d, whose config has "received-header no"."""

    def session(self):
        c = self.d.connect()
        c.check("EHLO client.test", ehlo_lines())
        return c

    def test_idle_session_421_when_grace_ends(self):
        c = self.session()
        t = time.monotonic()
        self.d.signal(signal.SIGTERM)
        c.expect(SHUTDOWN_421, timeout=5)
        dt = time.monotonic() - t
        self.assertGreaterEqual(dt, 0.9)
        self.assertLess(dt, 3.0)
        c.expect_closed()
        self.assertEqual(self.d.wait_exit(5), 0, self.d.log())

    def test_mid_data_finishes_then_421(self):
        c = to_data(self.session())
        c.send(b"before\r\n")
        self.d.signal(signal.SIGTERM)
        time.sleep(1.6)             # the grace period is over
        # the message is finished and answered; the NOOP sent with it is
        # not: the session ends with the 421
        c.send(b"after\r\n.\r\nNOOP\r\n")
        c.expect_match(OK_ID)
        c.expect(SHUTDOWN_421)
        c.expect_closed()
        self.assertEqual([r["data"] for r in self.d.deliveries()],
                         [b"before\r\nafter\r\n"])
        self.assertEqual(self.d.wait_exit(5), 0, self.d.log())


class TestShutdownGrace(ShutdownGraceCases, unittest.TestCase):

    def setUp(self):
        self.d = Smtpd(RECORD + "\nreceived-header no\nshutdown-grace 1",
                       timeout=30)

    def tearDown(self):
        self.d.cleanup()

    def test_delivery_killed_after_grace_and_kill_time(self):
        # SHUTDOWN_KILL (10 s) after the grace period, a delivery that
        # still runs is killed with its session, without a reply
        with open(os.path.join(self.d.out, "sleep"), "w") as f:
            f.write("60")
        c = in_data(self.d)
        c.send(b"slow\r\n.\r\n")
        self.assertTrue(wait_for(lambda: self.d.deliveries(), 5.0))
        t = time.monotonic()
        self.d.signal(signal.SIGTERM)
        c.expect_closed(20)
        self.assertEqual(self.d.wait_exit(20), 0, self.d.log())
        dt = time.monotonic() - t
        self.assertGreaterEqual(dt, 10.5)
        self.assertLess(dt, 15.0)
        self.assertIn("still running after 11 seconds; killed", self.d.log())


class TestChildCrash(SmtpdTest):
    CONFIG = RECORD
    OPTS = {"prefork": 2}

    def test_kill_busy_child(self):
        c = self.connect()
        c.check("EHLO client.test", ehlo_lines())
        pid = serving_child(self.d, c)
        self.assertTrue(pid, "cannot find the child serving the session")
        os.kill(pid, signal.SIGKILL)
        c.expect_closed()
        self.assertTrue(wait_for(lambda: not pid_alive(pid), 3.0))
        self.assertIsNone(self.d.proc.poll(), "master died")
        c2, g = self.d.connect_retry()
        self.assertEqual(g, "220 mx.test ESMTP smtpd")
        c2.check("EHLO client.test", ehlo_lines())
        self.assertEqual(self.transaction(c2, "a@example.com",
                                          ["b@example.com"])[:7], "250 OK ")
        self.assertTrue(wait_for(lambda: len(self.d.children()) >= 2, 3.0),
                        "pool not refilled: %s" % self.d.children())

    def test_kill_idle_children(self):
        for pid in self.d.children():
            os.kill(pid, signal.SIGKILL)
        c, g = self.d.connect_retry()
        self.assertEqual(g, "220 mx.test ESMTP smtpd")
        c.check("NOOP", "250 OK")
        self.assertIsNone(self.d.proc.poll(), "master died")


class TestPoolShrinks(SmtpdTest):
    # A burst grows the pool beyond prefork; children idle for
    # prefork-idle-time beyond prefork exit, and the pool stays at prefork.
    CONFIG = RECORD + "\nprefork-idle-time 1s"
    OPTS = {"prefork": 2}

    def burst(self, n):
        conns = [self.d.connect_retry()[0] for _ in range(n)]
        for c in conns:
            c.check("NOOP", "250 OK")
        self.assertGreaterEqual(len(self.d.children()), n)
        for c in conns:
            c.check("QUIT", "221 Bye")
            c.expect_closed()

    def test_back_to_prefork(self):
        self.burst(6)
        self.assertTrue(wait_for(lambda: len(self.d.children()) == 2, 8.0),
                        self.d.children())
        left = sorted(self.d.children())
        time.sleep(2.5)
        self.assertEqual(sorted(self.d.children()), left)
        c, g = self.d.connect_retry()
        self.assertEqual(g, "220 mx.test ESMTP smtpd")
        c.check("NOOP", "250 OK")


class TestPoolShrinksAfterReload(TestPoolShrinks):
    # A reload to a shorter prefork-idle-time: the pool grown after it
    # shrinks in that time, not when the old one would have looked.
    CONFIG = RECORD + "\nprefork-idle-time 1h"

    def test_back_to_prefork(self):
        self.burst(4)
        self.d.reload(RECORD + "\nprefork-idle-time 1s")
        self.d.wait_log("reloaded configuration")
        self.burst(6)
        self.assertTrue(wait_for(lambda: len(self.d.children()) == 2, 8.0),
                        self.d.children())


class TestPoolKept(TestPoolShrinks):
    CONFIG = RECORD + "\nprefork-idle-time 0"

    def test_back_to_prefork(self):
        self.burst(5)
        time.sleep(3)
        self.assertGreaterEqual(len(self.d.children()), 5)


class TestMaxSessionsPerChild(SmtpdTest):
    CONFIG = RECORD + "\nmax-sessions-per-child 2"
    OPTS = {"prefork": 1}

    def test_children_replaced(self):
        pids = set()
        for i in range(6):
            c, g = self.d.connect_retry()
            self.assertEqual(g, "220 mx.test ESMTP smtpd")
            pid = serving_child(self.d, c)
            if pid:
                pids.add(pid)
            c.check("QUIT", "221 Bye")
            c.expect_closed()
        self.assertGreaterEqual(len(pids), 3, pids)


class TestSpoolFailure(SmtpdTest):
    CONFIG = RECORD + "\nspool @TMP@/rospool\nreceived-header no"

    @classmethod
    def setUpClass(cls):
        if os.getuid() != 0:
            raise unittest.SkipTest("needs root (children run as nobody)")
        cls.d = Smtpd(cls.CONFIG, start=False)
        path = os.path.join(cls.d.tmp, "rospool")
        os.mkdir(path)
        # The start refuses a spool the children cannot write; one that
        # becomes so later (root's: children, nobody, cannot write).
        os.chmod(path, 0o777)
        try:
            cls.d.start()
        except Exception:
            cls.d.cleanup()
            raise
        os.chmod(path, 0o755)

    def test_452_when_spool_fails(self):
        c = self.session()
        c.check("MAIL FROM:<a@example.com>", "250 OK")
        c.check("RCPT TO:<b@example.com>", "250 OK")
        c.check("DATA", DATA_354)
        c.send((b"z" * 998 + b"\r\n") * 1000 + b".\r\n")    # ~1 MB
        c.expect("452 4.3.1 Insufficient system storage")
        self.assertEqual(self.d.deliveries(), [])
        # Logged as a delivery that could not be made, and counted so.
        self.assertTrue(self.d.wait_log(
            r"deliver id=\S+ from=<a@example\.com> rcpts=1 size=1000000 "
            r"status=452 exit=none "), self.d.log())
        rc, out = self.d.status()
        self.assertRegex(out, r"(?m)^deliveries\.none +1$")
        c.check("RCPT TO:<b@example.com>", "503 Error: need MAIL command")
        self.assertEqual(self.transaction(c, "a@example.com",
                                          ["b@example.com"])[:7], "250 OK ")


def run_smtpd(args, timeout=10):
    p = subprocess.run([smtpd_path()] + args, capture_output=True,
                       timeout=timeout)
    return p.returncode, p.stdout.decode("utf-8", "replace"), \
        p.stderr.decode("utf-8", "replace")


class TestCheckConfig(unittest.TestCase):
    def setUp(self):
        self.d = Smtpd(RECORD, start=False)

    def tearDown(self):
        self.d.cleanup()

    def write(self, text, name="check.conf"):
        path = os.path.join(self.d.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_good_config(self):
        rc, out, err = run_smtpd(["-n", "-f", self.d.conf])
        self.assertEqual(rc, 0, err)
        self.assertIn("mx.test", out)
        self.assertIn("listen", out)
        self.assertNotIn(self.d.port, listening_tcp())
        # the canonical form is itself a valid config, printed the same
        again = self.write(out, "canonical.conf")
        rc2, out2, err2 = run_smtpd(["-n", "-f", again])
        self.assertEqual(rc2, 0, err2)
        self.assertEqual(out2, out)

    def test_every_directive(self):
        text = """# every directive but TLS, AUTH and policy
hostname mx.test
banner "Hello world"   # trailing comment
user nobody
pidfile %(tmp)s/smtpd.pid
prefork 3
max-clients 10
max-clients-per-address 5
max-sessions-per-child 100
batch-scheduling no
max-message-size 10M
max-line-length 2000
max-local-part 64
max-recipients 50
timeout 5m
smtputf8 yes
command-limit NOOP 5
command-limit * 30
deliver "/bin/cat -- %%{sender} %%{recipients}"
deliver-timeout 1h
received-header no
spool %(tmp)s
listen on 127.0.0.1 port 2525
listen on 127.0.0.1 port 2524 lmtp
listen on %(tmp)s/lmtp.sock lmtp
""" % {"tmp": self.d.tmp}
        path = self.write(text)
        rc, out, err = run_smtpd(["-n", "-f", path])
        self.assertEqual(rc, 0, err)
        again = self.write(out, "canonical.conf")
        rc2, out2, err2 = run_smtpd(["-n", "-f", again])
        self.assertEqual(rc2, 0, err2)
        self.assertEqual(out2, out)
        for word in ("mx.test", "Hello world", "lmtp.sock", "2524"):
            self.assertIn(word, out)
        for alt in ("timeout 1h", "timeout 30", "deliver discard",
                    "max-message-size 1G", "max-message-size 512K",
                    "command-limit 7", "smtputf8 no", "received-header yes"):
            with self.subTest(alt=alt):
                path = self.write("listen on 127.0.0.1 port 2525\n%s\n"
                                  % alt)
                rc, out, err = run_smtpd(["-n", "-f", path])
                self.assertEqual(rc, 0, err)

    def test_bad_configs(self):
        head = "hostname mx.test\n# comment\n"
        cases = [
            ("frobnicate yes\nlisten on 127.0.0.1 port 2525\n", 3),
            ("listen on 127.0.0.1 port 2525\nprefork abc\n", 4),
            ("listen on 127.0.0.1 port 2525\nmax-message-size 12Q\n", 4),
            ("listen on 127.0.0.1 port 2525\ntimeout 5x\n", 4),
            ("listen on 127.0.0.1 port 2525\nsmtputf8 maybe\n", 4),
            ("listen on 127.0.0.1 port 2525\nbanner \"unterminated\n", 4),
            ("listen on 127.0.0.1 port 2525\ncommand-limit NOOP\n", 4),
            ("listen on 127.0.0.1 port 2525\nreceived-header perhaps\n", 4),
            ("listen on 127.0.0.1 port 99999\n", 3),
            ("listen on 127.0.0.1 port 2525 frob\n", 3),
            ("listen on 127.0.0.1 port 2525 tls\n", 3),
            ("listen on 127.0.0.1 port 2525 starttls\n", 3),
            ("listen on 127.0.0.1 port 2525 auth\n", 3),
            ("listen on 127.0.0.1 port 2525 require-auth\n", 3),
            ("\nlisten on 127.0.0.1 port 2525\n\nmax-recipients -1\n", 6),
        ]
        for text, line in cases:
            with self.subTest(config=text):
                path = self.write(head + text)
                rc, out, err = run_smtpd(["-n", "-f", path])
                self.assertEqual(rc, 1, "stdout %r stderr %r" % (out, err))
                self.assertIn("%s:%d:" % (path, line), err)

    def test_programs_checked(self):
        """-n and start-up refuse a delivery or checkpassword program that
        the user who runs it cannot execute, with file:line and why."""
        priv = os.path.join(self.d.tmp, "private")
        os.mkdir(priv, 0o700)
        prog = os.path.join(priv, "prog")
        shutil.copy("/bin/true", prog)
        plain = os.path.join(self.d.tmp, "plain")
        with open(plain, "w") as f:
            f.write("#!/bin/sh\n")
        os.chmod(plain, 0o644)
        head = "hostname mx.test\nlisten on 127.0.0.1 port %d\n" % self.d.port
        cases = [('deliver "/nonexistent/prog %{sender}"',
                  "deliver: /nonexistent/prog: No such file or directory"),
                 ('deliver "%s"' % plain, "deliver: %s: not executable"
                  % plain),
                 ('deliver "%s"' % self.d.tmp, "deliver: %s: not a regular "
                  "file" % self.d.tmp),
                 ('deliver discard\nauth checkpassword "%s"' % plain,
                  "auth checkpassword: %s: not executable" % plain)]
        def script(name, text):
            path = os.path.join(self.d.tmp, name)
            with open(path, "w") as f:
                f.write(text)
            os.chmod(path, 0o755)
            return path
        # scripts saved with CRLF line ends, and interpreters missing:
        # execve() says ENOENT, as for a missing program
        crlf = script("crlf", "#!/bin/sh\r\nexit 0\r\n")
        crlfarg = script("crlfarg", "#!/usr/bin/env sh\r\nexit 0\r\n")
        nointerp = script("nointerp", "#! /nonexistent/interp -x\nexit 0\n")
        bare = script("bare", "#!\nexit 0\n")
        cases += [('deliver "%s"' % crlf, 'deliver: %s: its #! line ends in '
                   'a CR (a script with CRLF line ends)' % crlf),
                  ('deliver "%s"' % crlfarg, 'deliver: %s: its #! line ends '
                   'in a CR' % crlfarg),
                  ('deliver "%s"' % bare, "deliver: %s: its #! line names no "
                   "interpreter" % bare),
                  ('deliver "%s"' % nointerp, "deliver: %s: its interpreter "
                   "/nonexistent/interp is missing or not executable"
                   % nointerp),
                  # the children spool there a message larger than memory
                  ("deliver discard\nspool /nonexistent/spool",
                   "spool /nonexistent/spool: No such file or directory"),
                  ("deliver discard\nspool %s" % plain,
                   "spool %s: not a directory" % plain),
                  # an rc script would find no pid of a running daemon
                  ("deliver discard\npidfile /nonexistent/dir/smtpd.pid",
                   "pidfile /nonexistent/dir/smtpd.pid: /nonexistent/dir: "
                   "No such file or directory")]
        if os.geteuid() == 0:
            # root can run it, the session user cannot reach it
            cases.append(('user nobody\ndeliver "%s"' % prog,
                          "deliver: %s: not executable for user nobody"
                          % prog))
            cases.append(("user nobody\ndeliver discard\nspool %s" % priv,
                          "spool %s: Permission denied for user nobody"
                          % priv))
            # the default spool, /tmp, inside a chroot that has none
            os.mkdir(os.path.join(self.d.tmp, "jail"))
            cases.append(("deliver discard\nchroot %s/jail" % self.d.tmp,
                          "spool /tmp (the default): No such file or "
                          "directory for user"))
            # every child would die at its chroot()
            cases.append(("deliver discard\nchroot /nonexistent/jail",
                          "chroot /nonexistent/jail: No such file or "
                          "directory"))
            cases.append(("deliver discard\nchroot %s" % plain,
                          "chroot %s: not a directory" % plain))
        for conf, why in cases:
            with self.subTest(conf=conf):
                path = self.write(head + conf + "\n")
                line = 3 + conf.count("\n")
                rc, out, err = run_smtpd(["-n", "-f", path])
                self.assertEqual(rc, 1, out)
                self.assertIn("%s:%d: %s" % (path, line, why), err)
                p = subprocess.run([smtpd_path(), "-d", "-f", path],
                                   capture_output=True, timeout=10)
                self.assertEqual(p.returncode, 1)
                self.assertIn("%s:%d: %s" % (path, line, why),
                              p.stderr.decode())
        path = self.write(head + 'deliver "/bin/cat"\n')
        rc, out, err = run_smtpd(["-n", "-f", path])
        self.assertEqual(rc, 0, err)

    def test_reload_refuses_bad_program(self):
        self.d.write_config(RECORD)
        self.d.start()
        self.d.reload(RECORD.replace("@RECORDER@", "/nonexistent/prog"))
        self.assertTrue(self.d.wait_log(
            r"deliver: /nonexistent/prog: No such file or directory"))
        self.assertTrue(self.d.wait_log(r"reload failed"))
        c = self.d.session()
        c.check("MAIL FROM:<a@example.com>", "250 OK")
        c.check("RCPT TO:<b@example.com>", "250 OK")
        c.check("DATA", DATA_354)
        c.send(b"Subject: t\r\n\r\nold program\r\n.\r\n")
        c.expect_match(OK_ID)

    def test_reload_does_not_read_a_pipe(self):
        # The file is a FIFO at the reload (as -f /dev/stdin would be):
        # opening it would block the master until a writer came.
        self.d.write_config(RECORD)
        self.d.start()
        os.unlink(self.d.conf)
        os.mkfifo(self.d.conf)
        self.addCleanup(self.unblock, self.d.conf)
        self.d.signal(signal.SIGHUP)
        self.assertTrue(self.d.wait_log(r"smtpd\.conf: not a regular file, "
                                        r"not read again"), self.d.log())
        self.assertTrue(self.d.wait_log(r"reload failed"))
        for _ in range(3):      # the master still hands out connections
            c = self.d.session()
            c.check("QUIT", "221 Bye")

    @staticmethod
    def unblock(path):
        """A master blocked in open() of the FIFO gets a writer and EOF."""
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass

    @unittest.skipUnless(os.geteuid() == 0, "chroot is for root only")
    def test_reload_refuses_missing_chroot(self):
        self.d.write_config(RECORD)
        self.d.start()
        self.d.reload(RECORD + "\nchroot /nonexistent/jail\n")
        self.assertTrue(self.d.wait_log(
            r"chroot /nonexistent/jail: No such file or directory"))
        self.assertTrue(self.d.wait_log(r"reload failed"))
        for _ in range(3):      # the old children, and new ones
            c = self.d.session()
            c.check("MAIL FROM:<a@example.com>", "250 OK")
            c.check("QUIT", "221 Bye")
        self.assertNotIn("fatal", self.d.log())

    def test_no_listener(self):
        path = self.write("hostname mx.test\n")
        rc, out, err = run_smtpd(["-n", "-f", path])
        self.assertEqual(rc, 1, out)
        self.assertTrue(err.strip())

    def test_missing_file(self):
        rc, out, err = run_smtpd(["-n", "-f", "/nonexistent/smtpd.conf"])
        self.assertEqual(rc, 1, out)
        self.assertIn("/nonexistent/smtpd.conf", err)

    def test_daemon_refuses_bad_config(self):
        path = self.write("hostname mx.test\nlisten on 127.0.0.1 port %d\n"
                          "bogus 1\n" % self.d.port)
        p = subprocess.run([smtpd_path(), "-d", "-f", path],
                           capture_output=True, timeout=10)
        self.assertEqual(p.returncode, 1)
        self.assertIn("%s:3:" % path, p.stderr.decode())


DEFAULT_CONF = "/usr/local/etc/smtpd.conf"


class TestDefaultConfig(unittest.TestCase):
    def test_builtin_default(self):
        if os.path.exists(DEFAULT_CONF):
            self.skipTest("%s exists" % DEFAULT_CONF)
        if 8025 in listening_tcp():
            self.skipTest("port 8025 in use")
        rc, out, err = run_smtpd(["-n"])
        self.assertEqual(rc, 0, err)
        self.assertIn("8025", out)
        with Smtpd("", noconf=True, hostname=None) as d:
            c = d.connect(greeting=False, port=8025)
            self.assertRegex(c.recv_reply(), r"^220 \S+ ESMTP smtpd$")
            c.cmd("EHLO client.test")
            c.check("MAIL FROM:<a@example.com>", "250 OK")
            c.check("RCPT TO:<b@example.com>", "250 OK")
            c.check("DATA", DATA_354)
            c.send(b"Subject: default\r\n\r\nbuilt-in sink 98765\r\n.\r\n")
            c.expect_match(OK_ID)
            c.check("QUIT", "221 Bye")
            self.assertTrue(wait_for(lambda: b"built-in sink 98765"
                                     in d.stdout(), 2.0))
            self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    unittest.main()
